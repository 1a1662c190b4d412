//! The streaming censor: a push parser that copies a message from its input to its output,
//! replacing the entities whose media type is censored with the note.
//!
//! The message comes in chunks split anywhere and goes out into windows of any size, down to
//! one byte, as it arrives. The censor is in one of three modes:
//!
//! ```text
//!            header block ends, entity kept        delimiter of a part / end of input
//!  HEADERS ------------------------------------> COPY ------------------------------+
//!    ^  |    (multipart: its preamble; leaf:        (copied byte for byte)           |
//!    |  |     its body; message/rfc822: HEADERS                                      |
//!    |  |     again, for the message inside)                                         |
//!    |  |    header block ends, entity censored                                      |
//!    |  +----------------------------------------> DROP ------------------------------+
//!    |       (rewritten headers and the note        (dropped, but for delimiters)     |
//!    |        are owed)                                                               |
//!    +------------------------------- `--boundary` of a multipart in force -----------+
//!                                     (`--boundary--`: COPY, its epilogue)
//! ```
//!
//! A header block is held (up to [`MAX_HEADER`] bytes) until it ends, because its
//! Content-Type may come last and a censored entity's headers are rewritten. Body lines are
//! never held, but for a line that may be a delimiter (it starts with `-` while a boundary is
//! in force) whose bytes are kept, up to [`MAX_LINE`], until its end says what it is. Output
//! that is decided but did not fit (headers, the note, a delimiter line kept from a dropped
//! body) is *owed*, and paid before any more input is read, so the state always describes
//! what was really written.
//!
//! Invariant: memory is what [`Censor::new`] reserved plus the rendered note, whatever the
//! message; output is the input byte for byte except where an entity was censored.

mod headers;

use crate::frames::{Delimiter, Frames};
use crate::problem::{Counters, Problem, ProblemKind, Record};
use crate::{MediaRanges, Note, MAX_BOUNDARY, MAX_HEADER, MAX_LINE};
use std::ops::Range;

/// Bytes a rewritten header block may need beyond what it held (the new Content-Type and
/// Content-Transfer-Encoding fields, and line ends).
const HEADER_SLACK: usize = 128;

/// What kind of entity a header block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entity {
    /// The top-level message or one inside a `message/rfc822` part: when censored, all its
    /// `Content-*` fields go (a body part loses only those the note replaces).
    message: bool,
    /// A part of a `multipart/digest`: `message/rfc822` when it has no Content-Type.
    in_digest: bool,
}

/// Where the censor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Collecting the header block of an entity.
    Headers(Entity),
    /// In a body that is copied: a leaf's, a preamble or an epilogue.
    Copy,
    /// In the body of a censored entity: nothing is written but delimiters.
    Drop,
}

/// What must happen to the header buffer before more input goes into it: it may still be
/// owed when the next header block starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// Empty it.
    Reset,
    /// Keep only its bytes from this offset on (a line that turned out to begin the next
    /// header block), then look at that line again.
    Replay(usize),
}

/// The streaming MIME censor for one message. See the module documentation.
#[derive(Debug, Clone)]
pub struct Censor {
    ranges: MediaRanges,
    note: Note,
    mode: Mode,
    frames: Frames,
    /// The header block being collected, and the start of its last (maybe partial) line.
    hdr: Vec<u8>,
    hdr_line: usize,
    pending: Pending,
    /// In a body: whether the next byte starts a line; whether the line so far may be a
    /// delimiter, and then its bytes.
    at_line_start: bool,
    candidate: bool,
    held: Vec<u8>,
    /// The note rendered for the last censored entity.
    rendered: Vec<u8>,
    /// Room for a boundary or a media type's name.
    scratch: Vec<u8>,
    /// Output owed, paid in this order: header bytes, the note, held bytes.
    owed_hdr: Range<usize>,
    owed_note: Range<usize>,
    owed_held: Range<usize>,
    /// Whether the last line end seen in a header block or delimiter was CRLF.
    crlf: bool,
    /// Bytes of input consumed.
    offset: u64,
    record: Record,
    closing: bool,
}

impl Censor {
    /// A censor for one message that replaces the entities `ranges` censors with `note`.
    pub fn new(ranges: MediaRanges, note: Note) -> Censor {
        Censor {
            ranges,
            note,
            mode: Mode::Headers(Entity {
                message: true,
                in_digest: false,
            }),
            frames: Frames::new(),
            hdr: Vec::with_capacity(MAX_HEADER + HEADER_SLACK),
            hdr_line: 0,
            pending: Pending::Nothing,
            at_line_start: true,
            candidate: false,
            held: Vec::with_capacity(MAX_LINE),
            rendered: Vec::new(),
            scratch: Vec::with_capacity(MAX_BOUNDARY),
            owed_hdr: 0..0,
            owed_note: 0..0,
            owed_held: 0..0,
            crlf: true,
            offset: 0,
            record: Record::new(),
            closing: false,
        }
    }

    /// Makes the censor ready for another message, keeping its list, note and storage.
    pub fn reset(&mut self) {
        self.mode = Mode::Headers(Entity {
            message: true,
            in_digest: false,
        });
        self.frames.clear();
        self.hdr.clear();
        self.hdr_line = 0;
        self.pending = Pending::Nothing;
        self.at_line_start = true;
        self.candidate = false;
        self.held.clear();
        self.owed_hdr = 0..0;
        self.owed_note = 0..0;
        self.owed_held = 0..0;
        self.crlf = true;
        self.offset = 0;
        self.record.clear();
        self.closing = false;
    }

    /// The censor list in use.
    pub fn ranges(&self) -> &MediaRanges {
        &self.ranges
    }

    /// The note in use.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// What was censored and how many problems were passed through, so far.
    pub fn counters(&self) -> Counters {
        self.record.counters
    }

    /// The oldest problem not yet taken (at most [`crate::KEPT_PROBLEMS`] are kept).
    pub fn take_problem(&mut self) -> Option<Problem> {
        self.record.take()
    }

    /// Censors from `input` into `out` as far as both allow; returns (bytes consumed, bytes
    /// written). Output owed from before comes first. Any call with input or owed output left
    /// and a window of one byte or more makes progress; with an empty window, only bytes that
    /// are dropped or held may be consumed.
    pub fn feed(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        self.run(input, out, false)
    }

    /// Takes the bytes at the start of `input` that go out unchanged, without writing them
    /// anywhere: returns how many, and the caller writes `input[..n]` itself, after what
    /// earlier calls wrote. A body that is kept is taken up to the end of the delimiter line
    /// that ends it (or all of `input`). 0 means the next bytes need
    /// [`Censor::feed_until_pass`] (a header block, a censored body, output owed).
    ///
    /// The pair saves a program that writes from its own input buffer the copy of what it
    /// keeps into a window, which is most of the censor's work on a message it keeps.
    pub fn pass(&mut self, input: &[u8]) -> usize {
        debug_assert!(!self.closing, "pass after finish");
        if self.ranges.is_empty() {
            return input.len();
        }
        let mut i = 0;
        while i < input.len() && !self.owes() {
            if self.settle() {
                continue;
            }
            if self.mode != Mode::Copy {
                break;
            }
            i += self.take_body(&input[i..], false);
        }
        i
    }

    /// [`Censor::feed`], but it stops where the next bytes would go out unchanged, for
    /// [`Censor::pass`] to take them; (0, 0) right there. Between them, a call of each with
    /// input left and a window of one byte or more makes progress.
    pub fn feed_until_pass(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        self.run(input, out, true)
    }

    /// [`Censor::feed`]; with `stop_at_pass`, it returns at a body it would copy.
    fn run(&mut self, input: &[u8], out: &mut [u8], stop_at_pass: bool) -> (usize, usize) {
        debug_assert!(!self.closing, "feed after finish");
        if self.ranges.is_empty() {
            let n = if stop_at_pass {
                0
            } else {
                input.len().min(out.len())
            };
            out[..n].copy_from_slice(&input[..n]);
            return (n, n);
        }
        let (mut i, mut o) = (0, 0);
        loop {
            o += self.pay(&mut out[o..]);
            if self.owes() {
                break;
            }
            if self.settle() {
                continue;
            }
            let rest = &input[i..];
            if rest.is_empty() {
                break;
            }
            i += match self.mode {
                Mode::Copy if stop_at_pass || o == out.len() => break,
                Mode::Copy => {
                    let n = self.copy(rest, &mut out[o..]);
                    o += n;
                    n
                }
                Mode::Drop => self.drop_body(rest),
                Mode::Headers(entity) => self.collect(rest, entity),
            };
        }
        (i, o)
    }

    /// Writes what ends the message into `out` as far as it allows (a header block still
    /// held, with the note if it is censored); returns the bytes written. Call it (with fresh
    /// room) until [`Censor::is_finished`]; no [`Censor::feed`] after it.
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        let mut o = 0;
        loop {
            o += self.pay(&mut out[o..]);
            if self.owes() || self.closing {
                return o;
            }
            if self.settle() {
                continue;
            }
            if let Mode::Headers(entity) = self.mode {
                self.end_of_input_in_headers(entity);
            }
            for _ in 0..self.frames.truncate(0) {
                self.problem(ProblemKind::Unterminated);
            }
            self.closing = true;
        }
    }

    /// True once [`Censor::finish`] has written everything.
    pub fn is_finished(&self) -> bool {
        self.closing && !self.owes()
    }

    /// The bytes of storage the censor holds (for the tests that check it never grows).
    #[cfg(test)]
    fn footprint(&self) -> usize {
        self.hdr.capacity()
            + self.held.capacity()
            + self.rendered.capacity()
            + self.scratch.capacity()
            + self.frames.footprint()
    }

    fn owes(&self) -> bool {
        !(self.owed_hdr.is_empty() && self.owed_note.is_empty() && self.owed_held.is_empty())
    }

    /// Writes owed output into `out`; returns how much.
    fn pay(&mut self, out: &mut [u8]) -> usize {
        let mut o = 0;
        for (range, src) in [
            (&mut self.owed_hdr, &self.hdr),
            (&mut self.owed_note, &self.rendered),
            (&mut self.owed_held, &self.held),
        ] {
            let n = range.len().min(out.len() - o);
            if n > 0 {
                out[o..o + n].copy_from_slice(&src[range.start..range.start + n]);
                range.start += n;
                o += n;
            }
        }
        o
    }

    fn problem(&mut self, kind: ProblemKind) {
        self.record.problem(kind, self.offset);
    }

    /// Does what waits on the header buffer being paid; true if it did anything.
    fn settle(&mut self) -> bool {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Nothing => false,
            Pending::Reset => {
                self.hdr.clear();
                self.hdr_line = 0;
                true
            }
            Pending::Replay(from) => {
                self.hdr.drain(..from);
                self.hdr_line = 0;
                if let Mode::Headers(entity) = self.mode {
                    self.header_line(entity);
                }
                true
            }
        }
    }

    /// Whether the byte at a line start may begin a delimiter.
    fn may_be_delimiter(&self, first: u8) -> bool {
        first == b'-' && self.frames.has_boundaries()
    }

    /// COPY: copies up to the end of `rest` or of `out` (not empty), stopping after a line end
    /// that a `-` follows, or after a candidate line's end; returns the bytes copied.
    fn copy(&mut self, rest: &[u8], out: &mut [u8]) -> usize {
        let avail = &rest[..rest.len().min(out.len())];
        let n = self.take_body(avail, false);
        out[..n].copy_from_slice(&avail[..n]);
        n
    }

    /// DROP: drops up to the end of `rest` the same way; a delimiter line is kept and owed.
    fn drop_body(&mut self, rest: &[u8]) -> usize {
        self.take_body(rest, true)
    }

    /// Takes one body step from `avail` (not empty), copied or dropped; returns its length.
    fn take_body(&mut self, avail: &[u8], dropping: bool) -> usize {
        let n = self.body_step(avail);
        self.offset += n as u64;
        self.after_body_step(&avail[..n], dropping);
        n
    }

    /// How far the next body step goes in `avail` (not empty): to the end of a candidate
    /// line, or to the next line start where a delimiter may begin. A line is a candidate
    /// only if it starts with `--` (or with `-` and `avail` ends there): every delimiter does,
    /// so the lines of a text that start with one `-` are copied in the same run as the rest.
    fn body_step(&mut self, avail: &[u8]) -> usize {
        if self.at_line_start
            && self.may_be_delimiter(avail[0])
            && avail.get(1).is_none_or(|&b| b == b'-')
        {
            self.candidate = true;
            self.held.clear();
        }
        self.at_line_start = false;
        if self.candidate {
            return crate::bytes::find_lf(avail).map_or(avail.len(), |p| p + 1);
        }
        if !self.frames.has_boundaries() {
            return avail.len();
        }
        crate::bytes::find_dashed_line(avail)
    }

    /// Notes what a body step took: the line start, a candidate's bytes, and a delimiter at
    /// its end (owed first when the body is dropped).
    fn after_body_step(&mut self, taken: &[u8], dropping: bool) {
        let ended = taken.last() == Some(&b'\n');
        self.at_line_start = ended;
        if !self.candidate {
            return;
        }
        if self.held.len() + taken.len() > MAX_LINE {
            self.candidate = false;
            return;
        }
        self.held.extend_from_slice(taken);
        if !ended {
            return;
        }
        self.candidate = false;
        if let Some(d) = self.frames.delimiter(&self.held) {
            self.crlf = self.held.ends_with(b"\r\n");
            if dropping {
                self.owed_held = 0..self.held.len();
            }
            self.enter_part(d);
        }
    }

    /// A delimiter line was taken: closes the frames inside its multipart and starts the
    /// next part's header block, or the epilogue.
    fn enter_part(&mut self, d: Delimiter) {
        let unterminated = self.frames.truncate(d.level + 1);
        for _ in 0..unterminated {
            self.problem(ProblemKind::Unterminated);
        }
        if d.close {
            self.frames.truncate(d.level);
            self.mode = Mode::Copy;
            self.at_line_start = true;
        } else {
            self.mode = Mode::Headers(Entity {
                message: false,
                in_digest: self.frames.is_digest(d.level),
            });
            self.pending = Pending::Reset;
        }
    }
}

#[cfg(test)]
mod tests;
