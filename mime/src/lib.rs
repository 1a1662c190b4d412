//! mime: a streaming MIME censor (work in progress): the censor list and the note so far.
#![deny(missing_docs)]

mod note;
mod ranges;

pub use note::{Note, DEFAULT_NOTE, WRAP};
pub use ranges::{Error, MediaRanges};
