//! mime: a streaming MIME censor (work in progress): the censor list so far.
#![deny(missing_docs)]

mod ranges;

pub use ranges::{Error, MediaRanges};
