//! The replacement note: the text a censored part's body becomes.
//!
//! A note is a list of paragraphs (the daemon's `-m` is repeatable, each text one paragraph;
//! `stripmime` takes one paragraph per line of `FILTER_MSG`). It is rendered for each censored
//! part: `%s` becomes the part's media type (`image/png`), `%%` a single `%`; a line longer
//! than [`WRAP`] characters is wrapped at spaces; lines end with the message's own line ends
//! (CRLF or LF), paragraphs are separated by an empty line, and the last line is ended. With
//! no paragraph (or only empty ones) the note is [`DEFAULT_NOTE`].
//!
//! Invariant: the rendered note is valid UTF-8 whatever the media type (bytes of the type that
//! are not printable ASCII print as `?`), and [`Note::is_ascii`] says truly whether it is
//! ASCII, so the censor can label it 7bit or 8bit with `charset=utf-8`.

use std::fmt;

/// The note used when none is given.
pub const DEFAULT_NOTE: &str =
    "This part of the message was removed by the mail proxy: its type (%s) is not allowed.";

/// Lines of a note are wrapped at spaces to at most this many characters where they can be.
pub const WRAP: usize = 76;

/// The replacement text, as paragraphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    paragraphs: Vec<String>,
    ascii: bool,
}

impl Default for Note {
    fn default() -> Self {
        Note::new(Vec::<String>::new())
    }
}

impl Note {
    /// A note of these paragraphs; the default note when there are none, or all are empty.
    /// A paragraph may itself hold several lines (separated by LF or CRLF).
    pub fn new<I, S>(paragraphs: I) -> Note
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut paragraphs: Vec<String> = paragraphs.into_iter().map(Into::into).collect();
        if paragraphs.iter().all(|p| p.trim().is_empty()) {
            paragraphs = vec![DEFAULT_NOTE.to_string()];
        }
        let ascii = paragraphs.iter().all(|p| p.is_ascii());
        Note { paragraphs, ascii }
    }

    /// A note from one text whose lines are its paragraphs (how `FILTER_MSG` is read); empty
    /// lines are skipped.
    pub fn from_lines(text: &str) -> Note {
        Note::new(text.lines().filter(|l| !l.trim().is_empty()))
    }

    /// The paragraphs, as given (or the default).
    pub fn paragraphs(&self) -> &[String] {
        &self.paragraphs
    }

    /// Whether every rendering is ASCII (then the part is 7bit, else 8bit UTF-8).
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// Renders the note for a part of `media_type` into `out` (cleared first), every line
    /// ended with CRLF when `crlf`, else LF.
    pub fn render(&self, media_type: &[u8], crlf: bool, out: &mut Vec<u8>) {
        out.clear();
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let shown: String = media_type
            .iter()
            .map(|&b| {
                if (0x21..0x7f).contains(&b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect();
        let mut text = String::new();
        for (i, paragraph) in self.paragraphs.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(eol);
            }
            text.clear();
            substitute(paragraph, &shown, &mut text);
            for line in text.lines() {
                wrap(line, |piece| {
                    out.extend_from_slice(piece.as_bytes());
                    out.extend_from_slice(eol);
                });
            }
        }
    }
}

impl fmt::Display for Note {
    /// The paragraphs, one per line, before substitution.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.paragraphs.join("\n"))
    }
}

/// Replaces `%s` with `media_type` and `%%` with `%`; other `%` stay.
fn substitute(template: &str, media_type: &str, out: &mut String) {
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        match rest.as_bytes().get(at + 1) {
            Some(b's') => out.push_str(media_type),
            Some(b'%') => out.push('%'),
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
}

/// Calls `emit` with the pieces of `line` wrapped at spaces to at most [`WRAP`] characters; a
/// word longer than that stays whole. The spaces where a line is broken are dropped.
fn wrap(line: &str, mut emit: impl FnMut(&str)) {
    let mut rest = line;
    while rest.chars().count() > WRAP {
        // The byte offset just past the WRAP-th character.
        let limit = rest.char_indices().nth(WRAP).map_or(rest.len(), |(i, _)| i);
        let cut = rest[..=limit]
            .rfind(' ')
            .filter(|&i| i > 0)
            .or_else(|| rest[limit..].find(' ').map(|i| i + limit));
        let Some(cut) = cut else {
            break;
        };
        emit(&rest[..cut]);
        rest = &rest[cut + 1..];
    }
    emit(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(note: &Note, kind: &[u8], crlf: bool) -> String {
        let mut out = Vec::new();
        note.render(kind, crlf, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn default_note_names_the_type() {
        for note in [Note::default(), Note::new([""]), Note::new(["", "  "])] {
            assert_eq!(
                render(&note, b"image/png", true),
                "This part of the message was removed by the mail proxy: its type (image/png)\r\n\
                 is not allowed.\r\n"
            );
            assert!(note.is_ascii());
        }
    }

    #[test]
    fn paragraphs_and_line_ends() {
        let note = Note::new(["First.", "Second\r\nline two."]);
        assert_eq!(
            render(&note, b"a/b", false),
            "First.\n\nSecond\nline two.\n"
        );
        assert_eq!(
            render(&note, b"a/b", true),
            "First.\r\n\r\nSecond\r\nline two.\r\n"
        );
        assert_eq!(note.to_string(), "First.\nSecond\r\nline two.");
        assert_eq!(Note::from_lines("a\nb\r\n").paragraphs(), ["a", "b"]);
        assert_eq!(Note::from_lines("a\n\n \nb").paragraphs(), ["a", "b"]);
    }

    #[test]
    fn substitution() {
        let note = Note::new(["%s removed; 100% sure, %%s literal, 50%"]);
        assert_eq!(
            render(&note, b"image/gif", false),
            "image/gif removed; 100% sure, %s literal, 50%\n"
        );
        assert_eq!(
            render(&Note::new(["[%s]"]), b"x/\xff\x01y", false),
            "[x/??y]\n"
        );
    }

    #[test]
    fn non_ascii_notes() {
        let note = Note::new(["Se quitó un adjunto (%s)."]);
        assert!(!note.is_ascii());
        assert_eq!(
            render(&note, b"image/png", false),
            "Se quitó un adjunto (image/png).\n"
        );
    }

    #[test]
    fn wrapping() {
        let words = "word ".repeat(40);
        let out = render(&Note::new([words.trim()]), b"", false);
        assert!(out.lines().all(|l| l.chars().count() <= WRAP), "{out}");
        assert_eq!(out.replace('\n', " ").trim(), words.trim());
        let long = "x".repeat(100);
        let out = render(&Note::new([format!("a {long} b")]), b"", false);
        assert_eq!(out, format!("a\n{long}\nb\n"));
        let wide = "ñ".repeat(WRAP);
        assert_eq!(
            render(&Note::new([wide.as_str()]), b"", false),
            format!("{wide}\n")
        );
    }
}
