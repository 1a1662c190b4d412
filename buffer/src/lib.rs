//! buffer crate.
