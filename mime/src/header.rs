//! Header blocks: which line is a field, a continuation, the blank line or the start of a body,
//! and the structured-field lexer (RFC 5322 CFWS, RFC 2045 tokens, quoted strings) that
//! [`crate::content_type`] builds on.
//!
//! A header block is classified line by line as it arrives, the way CPython's `email` parser
//! does it (so the tests' oracle and the censor agree on where a body starts): a field is a run
//! of printable ASCII without spaces, then `:`; a continuation starts with space or tab; the
//! first line of an entity may be an mbox `From ` line; a line that is none of these ends the
//! block and is the first line of the body. Folding is never undone by copying: the lexer reads
//! the raw bytes of a field, taking CR and LF for whitespace (and dropping them inside quoted
//! strings and comments), so a field of any shape is parsed in place, and nothing is ever
//! decoded (RFC 2047 encoded words stay as they are).
//!
//! Invariant: nothing here allocates or looks past the slice it is given.

/// What a line of a header block is. Lines are given with their line end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// Just a line end: the block ends, the body follows.
    Blank,
    /// `Name:` and a value.
    Field,
    /// Starts with space or tab: more of the field before it.
    Continuation,
    /// Anything else: the block ended without a blank line and this is the body's first line.
    Other,
}

/// Classifies one line of a header block; `first` says it is the entity's first line.
pub(crate) fn classify(line: &[u8], first: bool) -> LineKind {
    let content = strip_eol(line);
    if content.is_empty() && line.ends_with(b"\n") {
        return LineKind::Blank;
    }
    match line.first() {
        Some(b' ' | b'\t') => return LineKind::Continuation,
        None => return LineKind::Other,
        _ => {}
    }
    if first && line.starts_with(b"From ") {
        return LineKind::Field;
    }
    let name_len = line
        .iter()
        .position(|&b| !(0x21..=0x7e).contains(&b) || b == b':');
    match name_len {
        Some(n) if line[n] == b':' => LineKind::Field,
        _ => LineKind::Other,
    }
}

/// The line without its LF or CRLF.
pub(crate) fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The name of a field (the bytes before its colon), or `None` for an mbox `From ` line.
pub(crate) fn field_name(field: &[u8]) -> Option<&[u8]> {
    let colon = field.iter().position(|&b| b == b':')?;
    let name = &field[..colon];
    name.iter()
        .all(|&b| (0x21..=0x7e).contains(&b))
        .then_some(name)
}

/// The value of a field: everything after the colon, continuation lines included.
pub(crate) fn field_value(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == b':') {
        Some(colon) => &field[colon + 1..],
        None => b"",
    }
}

/// RFC 2045 `tspecials`.
fn is_tspecial(b: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// An RFC 2045 token character: printable ASCII but space and the tspecials.
pub(crate) fn is_token_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !is_tspecial(b)
}

/// A cursor over the raw value of a structured field.
#[derive(Debug, Clone)]
pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`.
    pub(crate) fn new(src: &'a [u8]) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    /// The next byte, if any, without taking it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// Takes `b` if it is next; says whether it did.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.pos += usize::from(found);
        found
    }

    /// True at the end of the value.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Skips whitespace (line ends of folding included) and comments, nested or not; an
    /// unterminated comment runs to the end.
    pub(crate) fn skip_cfws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn skip_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos = (self.pos + 1).min(self.src.len()),
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes a run of token characters (possibly empty) and returns it.
    pub(crate) fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// Takes a parameter value that is not quoted: token characters, and 8-bit bytes too (not
    /// RFC 2045, but what mail parsers take).
    pub(crate) fn value_token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| is_token_char(b) || b >= 0x80) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// At a `"`: takes the quoted string and returns its raw inside (quotes off, escapes and
    /// folding still in: see [`unquote`]). `None`, taking nothing, when no quote is next. An
    /// unterminated string runs to the end.
    pub(crate) fn quoted(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    let inside = &self.src[start..self.pos];
                    self.pos += 1;
                    return Some(inside);
                }
                b'\\' => self.pos = (self.pos + 2).min(self.src.len()),
                _ => self.pos += 1,
            }
        }
        Some(&self.src[start..])
    }

    /// Skips to just past the next `c` that is outside quoted strings and comments, or to the
    /// end; says whether one was found.
    pub(crate) fn skip_past(&mut self, c: u8) -> bool {
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.quoted();
                }
                b'(' => self.skip_comment(),
                _ if b == c => {
                    self.pos += 1;
                    return true;
                }
                _ => self.pos += 1,
            }
        }
        false
    }
}

/// The bytes of a quoted string's raw inside: backslash escapes resolved, line ends of
/// folding dropped. Calls `push` for each byte, so the caller chooses where they go.
pub(crate) fn unquote(raw: &[u8], mut push: impl FnMut(u8)) {
    let mut escaped = false;
    for &b in raw {
        if escaped {
            escaped = false;
            push(b);
        } else if b == b'\\' {
            escaped = true;
        } else if b != b'\r' && b != b'\n' {
            push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines_like_cpython() {
        use LineKind::*;
        let cases: [(&[u8], bool, LineKind); 14] = [
            (b"\r\n", false, Blank),
            (b"\n", false, Blank),
            (b"Subject: x\r\n", false, Field),
            (b"Content-Type:text/plain\n", false, Field),
            (b":odd\n", false, Field),
            (b" folded\r\n", false, Continuation),
            (b"\tfolded\n", false, Continuation),
            (b"From a@b Mon Jan  1 00:00:00 2024\n", true, Field),
            (b"From a@b Mon Jan  1 00:00:00 2024\n", false, Other),
            (b"Name with space: x\n", false, Other),
            (b"no colon at all\r\n", false, Other),
            (b"X\x00: nul\n", false, Other),
            (b"\r\r\n", false, Other),
            (b"Unended: x", false, Field),
        ];
        for (line, first, want) in cases {
            assert_eq!(
                classify(line, first),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn names_and_values() {
        assert_eq!(
            field_name(b"Content-Type: a/b\r\n"),
            Some(&b"Content-Type"[..])
        );
        assert_eq!(field_name(b"From x y\n"), None);
        assert_eq!(field_value(b"A:b\r\n c\r\n"), b"b\r\n c\r\n");
    }

    #[test]
    fn lexes_comments_tokens_and_quoted_strings() {
        let mut l = Lexer::new(b" (a (nested) \\) comment)\r\n\t text/plain ; x=\"q\\\"\r\n o\"");
        l.skip_cfws();
        assert_eq!(l.token(), b"text");
        assert!(l.eat(b'/'));
        assert_eq!(l.token(), b"plain");
        l.skip_cfws();
        assert!(l.eat(b';'));
        l.skip_cfws();
        assert_eq!(l.token(), b"x");
        assert!(l.eat(b'='));
        let raw = l.quoted().unwrap();
        let mut v = Vec::new();
        unquote(raw, |b| v.push(b));
        assert_eq!(v, b"q\" o");
        assert!(l.at_end());
        let mut l = Lexer::new(b"\"unterminated");
        assert_eq!(l.quoted(), Some(&b"unterminated"[..]));
        let mut l = Lexer::new(b"(unterminated comment");
        l.skip_cfws();
        assert!(l.at_end());
        let mut l = Lexer::new(b"a=\"x;y\"(;); b");
        assert!(l.skip_past(b';'));
        assert_eq!(l.token(), b"");
        l.skip_cfws();
        assert_eq!(l.token(), b"b");
    }
}
