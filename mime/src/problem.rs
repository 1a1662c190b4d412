//! What the censor counts and what it says about input it could not parse.
//!
//! Broken input is never an error: the censor passes through what it cannot parse and records
//! a [`Problem`], which the caller may log (`stripmime` prints them on stderr). The last few
//! problems are kept for that; older ones are only counted.
//!
//! Invariant: the record of problems never holds more than [`KEPT_PROBLEMS`] entries.

use std::collections::VecDeque;
use std::fmt;

use crate::{MAX_BOUNDARY, MAX_DEPTH, MAX_HEADER};

/// How many problems not yet taken are kept (the count goes on past it).
pub const KEPT_PROBLEMS: usize = 16;

/// What the censor did to one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Parts replaced by the note (a replaced subtree counts once).
    pub parts_censored: u64,
    /// 1 when anything in the message was censored, else 0.
    pub messages_censored: u64,
    /// Places where the input could not be parsed and was passed through as it was.
    pub problems: u64,
}

/// A kind of input the censor could not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// A header block past [`MAX_HEADER`] bytes: the entity was passed through unparsed.
    HeaderTooLong,
    /// Nesting past [`MAX_DEPTH`]: the entity was passed through without looking inside.
    TooDeep,
    /// A multipart without a boundary: passed through as one part.
    NoBoundary,
    /// A boundary past [`MAX_BOUNDARY`] bytes: the multipart was passed through as one part.
    BoundaryTooLong,
    /// A Content-Type that does not parse: the part was taken for `text/plain`.
    InvalidContentType,
    /// A message whose transfer encoding is not 7bit, 8bit or binary: not looked inside.
    EncodedMessage,
    /// A multipart ended (by an outer delimiter or the end of input) without its close
    /// delimiter.
    Unterminated,
}

/// One problem and where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    /// Its kind.
    pub kind: ProblemKind,
    /// The input offset (bytes from the start of the message) where it was seen.
    pub offset: u64,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::HeaderTooLong => write!(
                f,
                "header block longer than {MAX_HEADER} bytes: part passed through unparsed"
            ),
            ProblemKind::TooDeep => write!(
                f,
                "nested deeper than {MAX_DEPTH}: part passed through without looking inside"
            ),
            ProblemKind::NoBoundary => f.write_str("multipart without a boundary: passed through"),
            ProblemKind::BoundaryTooLong => write!(
                f,
                "boundary longer than {MAX_BOUNDARY} bytes: multipart passed through"
            ),
            ProblemKind::InvalidContentType => {
                f.write_str("invalid Content-Type: part taken for text/plain")
            }
            ProblemKind::EncodedMessage => {
                f.write_str("encoded message/* part: passed through without looking inside")
            }
            ProblemKind::Unterminated => f.write_str("multipart without its close delimiter"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.kind)
    }
}

/// The counters and the last problems of one message.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) counters: Counters,
    kept: VecDeque<Problem>,
}

impl Record {
    pub(crate) fn new() -> Record {
        Record {
            counters: Counters::default(),
            kept: VecDeque::with_capacity(KEPT_PROBLEMS),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.counters = Counters::default();
        self.kept.clear();
    }

    /// Counts a problem and keeps it, forgetting the oldest kept one if need be.
    pub(crate) fn problem(&mut self, kind: ProblemKind, offset: u64) {
        self.counters.problems += 1;
        if self.kept.len() == KEPT_PROBLEMS {
            self.kept.pop_front();
        }
        self.kept.push_back(Problem { kind, offset });
    }

    /// Counts a censored part.
    pub(crate) fn censored(&mut self) {
        self.counters.parts_censored += 1;
        self.counters.messages_censored = 1;
    }

    /// The oldest problem not yet taken.
    pub(crate) fn take(&mut self) -> Option<Problem> {
        self.kept.pop_front()
    }
}
