//! The fields the censor reads: Content-Type (media type and `boundary`) and
//! Content-Transfer-Encoding.
//!
//! Content-Type is parsed as RFC 2045 writes it and as real mail bends it: comments and folding
//! anywhere, any case, no space needed after the colon, parameters in any order, a bad
//! parameter skipped up to the next `;`. The boundary may be plain (`boundary=x`,
//! `boundary="x"`), an RFC 2231 extended value (`boundary*=us-ascii'en'x%2Dy`: the charset and
//! language are dropped, `%XX` is decoded) or RFC 2231 continuations (`boundary*0="ab"`,
//! `boundary*1*=%2D`, in any order); a plain one wins over the RFC 2231 forms, as in CPython.
//! Nothing is decoded beyond that: an RFC 2047 encoded word is a boundary like any other text.
//!
//! Invariant: a boundary, once found, is 1 to [`crate::MAX_BOUNDARY`] bytes and has no line
//! end in it; it is written into a caller's buffer that never grows past that.

use crate::header::{unquote, Lexer};
use crate::MAX_BOUNDARY;

/// A media type: `kind/subtype` as they were written (compare ignoring ASCII case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaType<'a> {
    pub(crate) kind: &'a [u8],
    pub(crate) subtype: &'a [u8],
}

/// Parses the media type at the start of a Content-Type value; `None` when it is not
/// `token/token`.
pub(crate) fn media_type(value: &[u8]) -> Option<MediaType<'_>> {
    let mut l = Lexer::new(value);
    l.skip_cfws();
    let kind = l.token();
    l.skip_cfws();
    if kind.is_empty() || !l.eat(b'/') {
        return None;
    }
    l.skip_cfws();
    let subtype = l.token();
    if subtype.is_empty() {
        return None;
    }
    l.skip_cfws();
    // Anything else before the parameters makes the field invalid.
    match l.peek() {
        None | Some(b';') => Some(MediaType { kind, subtype }),
        _ => None,
    }
}

/// Why no usable boundary came out of a multipart's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoundaryError {
    /// No `boundary` parameter (or an empty one).
    Missing,
    /// Longer than [`MAX_BOUNDARY`] bytes.
    TooLong,
}

/// Most RFC 2231 sections of one boundary that are looked at.
const MAX_SECTIONS: usize = 16;

/// A `boundary*N` or `boundary*N*` parameter: its number, whether it is extended, its raw
/// value and whether that value was quoted.
#[derive(Debug, Clone, Copy, Default)]
struct Section<'a> {
    number: u32,
    extended: bool,
    value: &'a [u8],
    quoted: bool,
}

/// Finds the boundary in a Content-Type value and writes it into `out` (cleared first).
pub(crate) fn boundary(value: &[u8], out: &mut Vec<u8>) -> Result<(), BoundaryError> {
    out.clear();
    let mut sections = [Section::default(); MAX_SECTIONS];
    let mut count = 0;
    let mut extended: Option<Section> = None;
    let mut l = Lexer::new(value);
    // The media type before the first `;` was read by `media_type`.
    while l.skip_past(b';') {
        l.skip_cfws();
        let name = l.token();
        l.skip_cfws();
        if !l.eat(b'=') {
            continue;
        }
        l.skip_cfws();
        let (raw, quoted) = match l.quoted() {
            Some(raw) => (raw, true),
            None => (l.value_token(), false),
        };
        let Some(kind) = boundary_param(name) else {
            continue;
        };
        let section = Section {
            value: raw,
            quoted,
            ..Section::default()
        };
        match kind {
            Param::Plain => {
                return finish(out, |push| decode_plain(section, push));
            }
            Param::Extended if extended.is_none() => extended = Some(section),
            Param::Section(number, ext) if count < MAX_SECTIONS => {
                sections[count] = Section {
                    number,
                    extended: ext,
                    ..section
                };
                count += 1;
            }
            _ => {}
        }
    }
    if let Some(section) = extended {
        return finish(out, |push| decode_extended(section.value, true, push));
    }
    let sections = &mut sections[..count];
    sections.sort_by_key(|s| s.number);
    finish(out, |push| {
        // Sections 0, 1, 2… in order; a gap ends the value.
        for (i, s) in sections.iter().enumerate() {
            if s.number as usize != i {
                break;
            }
            if s.extended {
                decode_extended(s.value, i == 0, &mut *push);
            } else {
                decode_plain(*s, &mut *push);
            }
        }
    })
}

/// Runs `fill` with a pusher into `out` that stops at the cap, then checks the result.
fn finish(out: &mut Vec<u8>, fill: impl FnOnce(&mut dyn FnMut(u8))) -> Result<(), BoundaryError> {
    let mut too_long = false;
    fill(&mut |b| {
        if b == b'\r' || b == b'\n' {
            return;
        }
        if out.len() < MAX_BOUNDARY {
            out.push(b);
        } else {
            too_long = true;
        }
    });
    if too_long {
        out.clear();
        Err(BoundaryError::TooLong)
    } else if out.is_empty() {
        Err(BoundaryError::Missing)
    } else {
        Ok(())
    }
}

/// Which form of the boundary parameter a name is.
enum Param {
    Plain,
    Extended,
    Section(u32, bool),
}

fn boundary_param(name: &[u8]) -> Option<Param> {
    const B: &[u8] = b"boundary";
    if name.len() < B.len() || !name[..B.len()].eq_ignore_ascii_case(B) {
        return None;
    }
    let rest = &name[B.len()..];
    if rest.is_empty() {
        return Some(Param::Plain);
    }
    let rest = rest.strip_prefix(b"*")?;
    if rest.is_empty() {
        return Some(Param::Extended);
    }
    let (digits, ext) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // No leading zeros but for 0 itself (RFC 2231).
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    let number = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some(Param::Section(number, ext))
}

fn decode_plain(s: Section, push: &mut dyn FnMut(u8)) {
    if s.quoted {
        unquote(s.value, push);
    } else {
        s.value.iter().for_each(|&b| push(b));
    }
}

/// An RFC 2231 extended value: `charset'language'` (on the first section only) then
/// `%XX`-encoded bytes. A value quoted against the rules is taken from inside its quotes.
fn decode_extended(value: &[u8], first: bool, push: &mut dyn FnMut(u8)) {
    let mut text = value;
    if first {
        // charset'language'value; without both quotes, the whole is the value.
        let mut quotes = text.iter().enumerate().filter(|(_, &b)| b == b'\'');
        if let (Some(_), Some((second, _))) = (quotes.next(), quotes.next()) {
            text = &text[second + 1..];
        }
    }
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let hex = |at: usize| text.get(at).and_then(|&c| (c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'\\', _, _) => i += 1, // a stray escape from a quoted value
            _ => {
                push(b);
                i += 1;
            }
        }
    }
}

/// Whether a Content-Transfer-Encoding value is an identity encoding (`7bit`, `8bit`,
/// `binary`), so that a message inside can be parsed as it is.
pub(crate) fn is_identity_encoding(value: &[u8]) -> bool {
    let mut l = Lexer::new(value);
    l.skip_cfws();
    let token = l.token();
    l.skip_cfws();
    l.at_end()
        && [&b"7bit"[..], b"8bit", b"binary"]
            .iter()
            .any(|e| token.eq_ignore_ascii_case(e))
}

#[cfg(test)]
mod tests;
