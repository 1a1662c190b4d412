//! The stack of entities around the current point of a message: the multiparts whose
//! boundaries are in force and the encapsulated messages (`message/rfc822`) between them.
//!
//! A delimiter line is matched *exactly*, as CPython's `email` and Thunderbird do: `--`, the
//! boundary, optionally `--` (the close delimiter), then only spaces and tabs up to the line
//! end. RFC 2046 adds a note that a line need only *begin* with the delimiter; that reading
//! makes `--abcd` close a multipart whose boundary is `abc`, and generators that build inner
//! boundaries from outer ones rely on it not happening, so the censor (like the parsers mail
//! clients use) does not take it. Every boundary in force is tried, innermost first, so an
//! inner multipart cut short ends at an outer delimiter. Boundaries are case-sensitive.
//!
//! Invariant: at most [`MAX_DEPTH`] frames and at most [`MAX_BOUNDARY`] bytes of boundary per
//! frame, in storage reserved once.

use crate::header::strip_eol;
use crate::{MAX_BOUNDARY, MAX_DEPTH};

/// One entity being looked inside.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Where its boundary is in `Frames::bytes` (empty for an encapsulated message).
    start: usize,
    len: usize,
    multipart: bool,
    /// A `multipart/digest`: its parts default to `message/rfc822`.
    digest: bool,
}

/// A delimiter line found: the depth of the multipart it belongs to, and whether it closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delimiter {
    pub(crate) level: usize,
    pub(crate) close: bool,
}

/// The frames, innermost last.
#[derive(Debug, Clone)]
pub(crate) struct Frames {
    frames: Vec<Frame>,
    bytes: Vec<u8>,
    multiparts: usize,
}

impl Frames {
    /// An empty stack with its storage reserved.
    pub(crate) fn new() -> Frames {
        Frames {
            frames: Vec::with_capacity(MAX_DEPTH),
            bytes: Vec::with_capacity(MAX_DEPTH * MAX_BOUNDARY),
            multiparts: 0,
        }
    }

    /// The bytes of storage held.
    #[cfg(test)]
    pub(crate) fn footprint(&self) -> usize {
        self.frames.capacity() * std::mem::size_of::<Frame>() + self.bytes.capacity()
    }

    /// Forgets every frame.
    pub(crate) fn clear(&mut self) {
        self.truncate(0);
    }

    /// How many entities are open around the current point.
    pub(crate) fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Whether any boundary is in force (else no line can be a delimiter).
    pub(crate) fn has_boundaries(&self) -> bool {
        self.multiparts > 0
    }

    /// Opens a multipart; `boundary` is 1 to [`MAX_BOUNDARY`] bytes and there is room.
    pub(crate) fn push_multipart(&mut self, boundary: &[u8], digest: bool) {
        debug_assert!(self.depth() < MAX_DEPTH && boundary.len() <= MAX_BOUNDARY);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(boundary);
        self.frames.push(Frame {
            start,
            len: boundary.len(),
            multipart: true,
            digest,
        });
        self.multiparts += 1;
    }

    /// Opens an encapsulated message.
    pub(crate) fn push_message(&mut self) {
        debug_assert!(self.depth() < MAX_DEPTH);
        self.frames.push(Frame {
            start: self.bytes.len(),
            len: 0,
            multipart: false,
            digest: false,
        });
    }

    /// Whether the frame at `level` is a `multipart/digest`.
    pub(crate) fn is_digest(&self, level: usize) -> bool {
        self.frames[level].digest
    }

    /// Closes every frame from `level` on; returns how many multiparts that closed.
    pub(crate) fn truncate(&mut self, level: usize) -> usize {
        let mut closed = 0;
        while self.frames.len() > level {
            let f = self.frames.pop().expect("len > level");
            self.bytes.truncate(f.start);
            closed += usize::from(f.multipart);
        }
        self.multiparts -= closed;
        closed
    }

    /// Whether `line` (with its line end) is a delimiter of a multipart in force.
    pub(crate) fn delimiter(&self, line: &[u8]) -> Option<Delimiter> {
        let rest = strip_eol(line).strip_prefix(b"--")?;
        for (level, f) in self.frames.iter().enumerate().rev() {
            let boundary = &self.bytes[f.start..f.start + f.len];
            if !f.multipart || !rest.starts_with(boundary) {
                continue;
            }
            let after = &rest[f.len..];
            let (close, after) = match after.strip_prefix(b"--") {
                Some(a) => (true, a),
                None => (false, after),
            };
            if after.iter().all(|&b| b == b' ' || b == b'\t') {
                return Some(Delimiter { level, close });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(level: usize, close: bool) -> Option<Delimiter> {
        Some(Delimiter { level, close })
    }

    #[test]
    fn exact_delimiters_at_every_depth() {
        let mut f = Frames::new();
        assert_eq!(f.delimiter(b"--a\r\n"), None);
        f.push_multipart(b"a", false);
        f.push_message();
        f.push_multipart(b"inner", true);
        assert!(f.has_boundaries() && f.is_digest(2) && !f.is_digest(0));
        assert_eq!(f.delimiter(b"--inner\r\n"), d(2, false));
        assert_eq!(f.delimiter(b"--inner--\n"), d(2, true));
        assert_eq!(f.delimiter(b"--inner-- \t\r\n"), d(2, true));
        assert_eq!(f.delimiter(b"--inner \n"), d(2, false));
        assert_eq!(f.delimiter(b"--inner"), d(2, false), "at the end of input");
        assert_eq!(f.delimiter(b"--a\n"), d(0, false));
        assert_eq!(f.delimiter(b"--a--\n"), d(0, true));
        for no in [
            &b"--innerx\n"[..],
            b"--inner--x\n",
            b"--INNER\n",
            b"-inner\n",
            b" --inner\n",
            b"--inner ---\n",
            b"--inner\r\r\n",
            b"--in\n",
            b"--\n",
        ] {
            assert_eq!(f.delimiter(no), None, "{:?}", String::from_utf8_lossy(no));
        }
        assert_eq!(f.truncate(1), 1);
        assert_eq!(f.depth(), 1);
        assert_eq!(f.delimiter(b"--inner\n"), None);
        assert_eq!(f.truncate(0), 1);
        assert!(!f.has_boundaries());
    }

    #[test]
    fn innermost_first_and_boundaries_ending_in_dashes() {
        let mut f = Frames::new();
        f.push_multipart(b"x", false);
        f.push_multipart(b"x--", false);
        assert_eq!(f.delimiter(b"--x--\n"), d(1, false));
        assert_eq!(f.delimiter(b"--x----\n"), d(1, true));
        f.push_multipart(b"x", false);
        assert_eq!(
            f.delimiter(b"--x\n"),
            d(2, false),
            "the same boundary twice: innermost"
        );
    }
}
