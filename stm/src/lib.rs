//! stm crate.
