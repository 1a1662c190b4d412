//! The censor list: media ranges in the syntax of HTTP's `Accept` (RFC 9110 section 12.5.1).
//!
//! `image/*, image/png;q=0` censors every image but PNG: `*/*`, `type/*` and `type/subtype`
//! ranges, comma-separated, optional whitespace around commas and semicolons, empty elements
//! tolerated, case-insensitive. For a media type, the most specific matching range decides
//! (`type/subtype` over `type/*` over `*/*`); a range with `q=0` exempts, any other weight
//! censors. Between equally specific ranges that disagree, `q=0` wins: an exemption is always
//! deliberate. Parameters other than `q` are checked for syntax and otherwise ignored.
//!
//! Invariant: a [`MediaRanges`] holds only well-formed ranges, lowercased; a list that does not
//! parse is an [`Error`] naming the element and the reason, never a silently smaller list.

use std::fmt;

/// A parsed censor list. The empty list censors nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaRanges {
    ranges: Vec<Range>,
}

/// One media range: `None` stands for `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    kind: Option<String>,
    subtype: Option<String>,
    /// `q=0`: the range exempts what it matches.
    exempt: bool,
}

/// Why a censor list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The element (1-based) that is wrong.
    pub element: usize,
    /// The element's text.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "media range {} ({:?}): {}",
            self.element, self.text, self.reason
        )
    }
}

impl std::error::Error for Error {}

/// A token character (RFC 9110 section 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

impl MediaRanges {
    /// Parses a comma-separated list of media ranges. An empty list (or one of only commas
    /// and whitespace) is valid and censors nothing.
    pub fn parse(list: &str) -> Result<MediaRanges, Error> {
        let mut ranges = Vec::new();
        for (i, element) in split_outside_quotes(list, b',').into_iter().enumerate() {
            let element = trim_ows(element);
            if element.is_empty() {
                continue;
            }
            let err = |reason| Error {
                element: i + 1,
                text: element.to_string(),
                reason,
            };
            ranges.push(parse_range(element).map_err(err)?);
        }
        Ok(MediaRanges { ranges })
    }

    /// True when the list has no range (nothing is censored).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `media_type` (`type/subtype`, any case, parameters allowed after `;`) is to be
    /// censored. Something that is not a media type is never censored.
    pub fn censors(&self, media_type: &str) -> bool {
        let essence = media_type.split(';').next().unwrap_or("");
        match essence.split_once('/') {
            Some((kind, subtype)) => {
                self.censors_parts(trim_ows(kind).as_bytes(), trim_ows(subtype).as_bytes())
            }
            None => false,
        }
    }

    /// Whether the media type `kind/subtype` is censored; both are compared ignoring ASCII
    /// case.
    pub fn censors_parts(&self, kind: &[u8], subtype: &[u8]) -> bool {
        // (specificity, exempt) of the best match so far.
        let mut best: Option<(u8, bool)> = None;
        for r in &self.ranges {
            let specificity = match (&r.kind, &r.subtype) {
                (None, _) => 0,
                (Some(k), None) if k.as_bytes().eq_ignore_ascii_case(kind) => 1,
                (Some(k), Some(s))
                    if k.as_bytes().eq_ignore_ascii_case(kind)
                        && s.as_bytes().eq_ignore_ascii_case(subtype) =>
                {
                    2
                }
                _ => continue,
            };
            best = match best {
                Some((s, exempt)) if s > specificity || (s == specificity && exempt) => {
                    Some((s, exempt))
                }
                _ => Some((specificity, r.exempt)),
            };
        }
        matches!(best, Some((_, false)))
    }
}

impl fmt::Display for MediaRanges {
    /// The list in normal form: lowercase, `, ` between ranges, `;q=0` on exemptions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let kind = r.kind.as_deref().unwrap_or("*");
            let subtype = r.subtype.as_deref().unwrap_or("*");
            write!(f, "{kind}/{subtype}")?;
            if r.exempt {
                f.write_str(";q=0")?;
            }
        }
        Ok(())
    }
}

/// Splits `s` at `sep` where it is not inside a quoted string.
fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

fn token(s: &str) -> Result<String, &'static str> {
    if s.is_empty() {
        Err("empty type or subtype")
    } else if !s.bytes().all(is_tchar) {
        Err("a type or subtype has a character that is not allowed")
    } else {
        Ok(s.to_ascii_lowercase())
    }
}

fn parse_range(element: &str) -> Result<Range, &'static str> {
    let mut pieces = split_outside_quotes(element, b';').into_iter();
    let essence = trim_ows(pieces.next().unwrap_or(""));
    let (kind, subtype) = essence.split_once('/').ok_or("not type/subtype (no '/')")?;
    if kind.bytes().any(is_ows) || subtype.bytes().any(is_ows) {
        return Err("whitespace inside type/subtype");
    }
    let (kind, subtype) = match (kind, subtype) {
        ("*", "*") => (None, None),
        ("*", _) => return Err("'*/subtype' is not a media range"),
        (k, "*") => (Some(token(k)?), None),
        (k, s) => (Some(token(k)?), Some(token(s)?)),
    };
    let mut exempt = false;
    for param in pieces {
        let param = trim_ows(param);
        let (name, value) = param
            .split_once('=')
            .ok_or("a parameter without '=' (expected name=value)")?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err("a parameter name that is not a token");
        }
        if !value.bytes().all(is_tchar) && !is_quoted_string(value) {
            return Err("a parameter value that is neither a token nor a quoted string");
        }
        if name.eq_ignore_ascii_case("q") {
            exempt = parse_weight(value)?;
        }
    }
    Ok(Range {
        kind,
        subtype,
        exempt,
    })
}

fn is_quoted_string(s: &str) -> bool {
    s.len() >= 2 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].ends_with('\\')
}

/// Parses a qvalue (`0`, `0.5`, `1.000`…); true when it is zero.
fn parse_weight(value: &str) -> Result<bool, &'static str> {
    const BAD: &str = "q must be a number from 0 to 1 with at most three decimals";
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    match int {
        "0" => Ok(frac.bytes().all(|b| b == b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => Ok(false),
        _ => Err(BAD),
    }
}

#[cfg(test)]
mod tests;
