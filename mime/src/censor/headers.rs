//! HEADERS: collecting an entity's header block, deciding at its end whether the entity is
//! censored, looked inside or copied, and rewriting the block of a censored one.
//!
//! A header block ends at a blank line, at a line that is no header field (the body's first
//! line), at a delimiter of a multipart in force, or at the end of input. Kept, it is owed as
//! it came, byte for byte. Censored, its fields but Content-Type, Content-Transfer-Encoding,
//! Content-Disposition and Content-MD5 are kept in order (for a message, top-level or inside a
//! `message/rfc822`, every `Content-*` field goes), then come `Content-Type: text/plain`
//! (`; charset=utf-8` when the note is not ASCII), `Content-Transfer-Encoding: 7bit` (or
//! `8bit`), the blank line and the note, all with the block's own line ends.
//!
//! Invariant: the header buffer never holds more than [`MAX_HEADER`] bytes of input (plus the
//! few bytes a rewrite adds); a block that would pass that is passed through unparsed.

use super::{Censor, Entity, Mode, Pending, HEADER_SLACK};
use crate::bytes::find_lf;
use crate::content_type::{boundary, is_identity_encoding, media_type, BoundaryError, MediaType};
use crate::frames::Delimiter;
use crate::header::{classify, field_name, field_value, LineKind};
use crate::problem::ProblemKind;
use crate::{MAX_BOUNDARY, MAX_DEPTH, MAX_HEADER, MAX_LINE};
use std::ops::Range;

/// How a header block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// At a blank line (its last line).
    Blank,
    /// At a line that is no field (its last line, which belongs to the body).
    Body,
    /// At a delimiter line of a multipart in force (its last line).
    Delimiter(Delimiter),
    /// At the end of input: the fields are the bytes before this offset.
    Eof(usize),
}

/// What a kept entity turned out to be.
enum Inside {
    Leaf,
    Multipart,
    Message,
}

impl Censor {
    /// HEADERS: takes bytes up to a line end into the header block; returns how many.
    pub(super) fn collect(&mut self, rest: &[u8], entity: Entity) -> usize {
        let n = find_lf(rest).map_or(rest.len(), |p| p + 1);
        if self.hdr.len() + n > MAX_HEADER {
            self.overflow();
            return 0;
        }
        self.hdr.extend_from_slice(&rest[..n]);
        self.offset += n as u64;
        if rest[n - 1] == b'\n' {
            self.header_line(entity);
        }
        n
    }

    /// The block is too long to hold: it is owed as it is, and the rest of the entity copied.
    fn overflow(&mut self) {
        let start = self.offset - self.hdr.len() as u64;
        self.record.problem(ProblemKind::HeaderTooLong, start);
        self.owed_hdr = 0..self.hdr.len();
        self.pending = Pending::Reset;
        self.mode = Mode::Copy;
        let partial = &self.hdr[self.hdr_line..];
        self.at_line_start = partial.is_empty();
        self.candidate = partial.len() <= MAX_LINE
            && partial.first() == Some(&b'-')
            && self.frames.has_boundaries();
        if self.candidate {
            self.held.clear();
            self.held.extend_from_slice(partial);
        }
    }

    /// A whole line is at the end of the header block: does it end the block?
    pub(super) fn header_line(&mut self, entity: Entity) {
        let line = &self.hdr[self.hdr_line..];
        self.crlf = line.ends_with(b"\r\n");
        if line.len() <= MAX_LINE && self.may_be_delimiter(line[0]) {
            if let Some(d) = self.frames.delimiter(line) {
                return self.end_headers(entity, End::Delimiter(d));
            }
        }
        match classify(line, self.hdr_line == 0) {
            LineKind::Blank => self.end_headers(entity, End::Blank),
            LineKind::Field | LineKind::Continuation => self.hdr_line = self.hdr.len(),
            LineKind::Other => self.end_headers(entity, End::Body),
        }
    }

    /// The input ended inside a header block.
    pub(super) fn end_of_input_in_headers(&mut self, entity: Entity) {
        if self.hdr.is_empty() {
            return; // no entity at all
        }
        let partial = &self.hdr[self.hdr_line..];
        if partial.is_empty() {
            return self.end_headers(entity, End::Eof(self.hdr.len()));
        }
        if partial.len() <= MAX_LINE && self.may_be_delimiter(partial[0]) {
            if let Some(d) = self.frames.delimiter(partial) {
                return self.end_headers(entity, End::Delimiter(d));
            }
        }
        let fields_end = match classify(partial, self.hdr_line == 0) {
            LineKind::Field | LineKind::Continuation => self.hdr.len(),
            _ => self.hdr_line,
        };
        self.end_headers(entity, End::Eof(fields_end));
    }

    /// The block ended: censor the entity, look inside it or copy it.
    fn end_headers(&mut self, entity: Entity, end: End) {
        let fields_end = match end {
            End::Eof(at) => at,
            _ => self.hdr_line,
        };
        let (ct, cte) = content_fields(&self.hdr[..fields_end]);
        let default = if entity.in_digest {
            MediaType {
                kind: b"message",
                subtype: b"rfc822",
            }
        } else {
            MediaType {
                kind: b"text",
                subtype: b"plain",
            }
        };
        let mt = match &ct {
            None => default,
            Some(value) => media_type(&self.hdr[value.clone()]).unwrap_or_else(|| {
                self.record
                    .problem(ProblemKind::InvalidContentType, self.offset);
                MediaType {
                    kind: b"text",
                    subtype: b"plain",
                }
            }),
        };
        if self.ranges.censors_parts(mt.kind, mt.subtype) {
            // The name the note shows, cut to the scratch buffer's size.
            let name = mt.kind.iter().chain(b"/").chain(mt.subtype);
            self.scratch.clear();
            self.scratch
                .extend(name.map(u8::to_ascii_lowercase).take(MAX_BOUNDARY));
            return self.censor_entity(entity, fields_end, end);
        }
        let is = |value: &[u8], name: &[u8]| value.eq_ignore_ascii_case(name);
        let inside = if matches!(end, End::Eof(_)) {
            Inside::Leaf // nothing follows: no need to look inside
        } else if is(mt.kind, b"multipart") {
            let digest = is(mt.subtype, b"digest");
            let value = ct.map_or(&b""[..], |v| &self.hdr[v]);
            match boundary(value, &mut self.scratch) {
                Err(BoundaryError::Missing) => self.leaf(ProblemKind::NoBoundary),
                Err(BoundaryError::TooLong) => self.leaf(ProblemKind::BoundaryTooLong),
                Ok(()) if self.frames.depth() >= MAX_DEPTH => self.leaf(ProblemKind::TooDeep),
                Ok(()) => {
                    self.frames.push_multipart(&self.scratch, digest);
                    Inside::Multipart
                }
            }
        } else if is(mt.kind, b"message")
            && (is(mt.subtype, b"rfc822") || is(mt.subtype, b"global"))
        {
            match cte {
                Some(v) if !is_identity_encoding(&self.hdr[v.clone()]) => {
                    self.leaf(ProblemKind::EncodedMessage)
                }
                _ if self.frames.depth() >= MAX_DEPTH => self.leaf(ProblemKind::TooDeep),
                _ => {
                    self.frames.push_message();
                    Inside::Message
                }
            }
        } else {
            Inside::Leaf
        };
        self.keep_entity(end, inside);
    }

    fn leaf(&mut self, problem: ProblemKind) -> Inside {
        self.record.problem(problem, self.offset);
        Inside::Leaf
    }

    /// Owes the block as it came and goes on into the entity's body.
    fn keep_entity(&mut self, end: End, inside: Inside) {
        let message = Entity {
            message: true,
            in_digest: false,
        };
        self.owed_hdr = 0..self.hdr.len();
        self.pending = Pending::Reset;
        self.mode = match inside {
            Inside::Message => Mode::Headers(message),
            _ => Mode::Copy,
        };
        self.at_line_start = true;
        self.candidate = false;
        match end {
            End::Blank | End::Eof(_) => {}
            End::Delimiter(d) => self.enter_part(d),
            End::Body => match inside {
                Inside::Leaf => {}
                // The line may be the new multipart's first delimiter.
                Inside::Multipart => {
                    let line = &self.hdr[self.hdr_line..];
                    let d = (line.len() <= MAX_LINE)
                        .then(|| self.frames.delimiter(line))
                        .flatten();
                    if let Some(d) = d {
                        self.enter_part(d);
                    }
                }
                // The line begins the message inside: it is read again as its first line.
                Inside::Message => {
                    self.owed_hdr = 0..self.hdr_line;
                    self.pending = Pending::Replay(self.hdr_line);
                }
            },
        }
    }

    /// Rewrites the block of a censored entity (whose media type is in `scratch`), owes it
    /// with the note, and drops the body.
    fn censor_entity(&mut self, entity: Entity, fields_end: usize, end: End) {
        self.record.censored();
        self.note
            .render(&self.scratch, self.crlf, &mut self.rendered);
        if let End::Delimiter(_) = end {
            // The delimiter line is written after the note.
            self.held.clear();
            self.held.extend_from_slice(&self.hdr[fields_end..]);
            self.owed_held = 0..self.held.len();
        }
        let (mut write, mut read) = (0, 0);
        // Fields move only towards the start: a field is read before anything is written over it.
        while let Some(span) = next_field(&self.hdr[..fields_end], read) {
            read = span.end;
            if keeps(entity, &self.hdr[span.clone()]) {
                let len = span.len();
                self.hdr.copy_within(span, write);
                write += len;
            }
        }
        self.hdr.truncate(write);
        let eol: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        if write > 0 && self.hdr[write - 1] != b'\n' {
            self.hdr.extend_from_slice(eol);
        }
        let (charset, cte): (&[u8], &[u8]) = if self.note.is_ascii() {
            (b"", b"7bit")
        } else {
            (b"; charset=utf-8", b"8bit")
        };
        for piece in [
            &b"Content-Type: text/plain"[..],
            charset,
            eol,
            b"Content-Transfer-Encoding: ",
            cte,
            eol,
            eol,
        ] {
            self.hdr.extend_from_slice(piece);
        }
        debug_assert!(self.hdr.len() <= MAX_HEADER + HEADER_SLACK);
        self.owed_hdr = 0..self.hdr.len();
        self.owed_note = 0..self.rendered.len();
        self.pending = Pending::Reset;
        self.mode = Mode::Drop;
        self.at_line_start = true;
        self.candidate = false;
        if let End::Delimiter(d) = end {
            self.enter_part(d);
        }
    }
}

/// Whether a field of a censored entity stays.
fn keeps(entity: Entity, field: &[u8]) -> bool {
    let Some(name) = field_name(field) else {
        return true; // an mbox From line, or a stray continuation
    };
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if entity.message {
        !(name.len() >= 8 && name[..8].eq_ignore_ascii_case(b"content-"))
    } else {
        !(is("content-type")
            || is("content-transfer-encoding")
            || is("content-disposition")
            || is("content-md5"))
    }
}

/// The values of the first Content-Type and Content-Transfer-Encoding fields of `block`.
fn content_fields(block: &[u8]) -> (Option<Range<usize>>, Option<Range<usize>>) {
    let (mut ct, mut cte) = (None, None);
    for span in field_spans(block) {
        let field = &block[span.clone()];
        let Some(name) = field_name(field) else {
            continue;
        };
        let value_start = span.end - field_value(field).len();
        let slot = if name.eq_ignore_ascii_case(b"content-type") {
            &mut ct
        } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
            &mut cte
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = Some(value_start..span.end);
        }
    }
    (ct, cte)
}

/// The fields of a header block: each line that does not start with space or tab begins one,
/// and the lines that do belong to it.
fn field_spans(block: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let span = next_field(block, at)?;
        at = span.end;
        Some(span)
    })
}

/// The field of `block` that starts at `start`, if any is left.
fn next_field(block: &[u8], start: usize) -> Option<Range<usize>> {
    if start >= block.len() {
        return None;
    }
    let mut at = start;
    loop {
        at = find_lf(&block[at..]).map_or(block.len(), |p| at + p + 1);
        if !matches!(block.get(at), Some(b' ' | b'\t')) {
            return Some(start..at);
        }
    }
}
