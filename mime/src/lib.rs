//! mime: a streaming MIME censor. It copies a mail message through, byte for byte, but for the
//! entities (parts, or the whole message) whose media type is on a censor list: those become a
//! `text/plain` note. It knows nothing of POP3; pop3filter's `-M` and the `stripmime` program
//! drive it.
//!
//! ```
//! use mime::{Censor, MediaRanges, Note};
//!
//! let ranges = MediaRanges::parse("image/*, image/png;q=0").unwrap();
//! let mut censor = Censor::new(ranges, Note::new(["Removed: %s"]));
//! let msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/gif\n\nGIF89a\n--b--\n";
//! let mut out = vec![0; 256];
//! let (used, mut n) = censor.feed(msg, &mut out);
//! assert_eq!(used, msg.len());
//! while !censor.is_finished() {
//!     n += censor.finish(&mut out[n..]);
//! }
//! assert_eq!(
//!     &out[..n],
//!     &b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\
//!        Content-Transfer-Encoding: 7bit\n\nRemoved: image/gif\n--b--\n"[..]
//! );
//! assert_eq!(censor.counters().parts_censored, 1);
//! ```
//!
//! # What it does
//! - The censor list ([`MediaRanges`]) is HTTP `Accept` syntax; the most specific range
//!   decides and `q=0` exempts.
//! - MIME as RFC 2045/2046 have it: Content-Type with folding, comments, quoted strings, any
//!   case and RFC 2231 boundaries; no Content-Type (or an invalid one) is `text/plain`, and
//!   `message/rfc822` in a `multipart/digest`. Content-Type counts without MIME-Version. RFC 2047
//!   encoded words are never decoded.
//! - Multiparts are looked inside at any depth (up to [`MAX_DEPTH`]), and so are
//!   `message/rfc822` and `message/global` parts with an identity transfer encoding (none,
//!   `7bit`, `8bit`, `binary`); `message/partial` and encoded messages are not.
//! - **Delimiter lines match exactly**: `--boundary`, optionally `--`, then only spaces and
//!   tabs to the line end, as CPython's `email` and Thunderbird read them; not by prefix (RFC
//!   2046's implementors' note), which would let `--abcd` end a multipart whose boundary is
//!   `abc`. Every boundary in force is tried at every line start, so an inner multipart cut
//!   short ends at an outer delimiter or at the end of input. Boundaries are case-sensitive.
//! - A censored entity keeps its headers but Content-Type, Content-Transfer-Encoding,
//!   Content-Disposition and Content-MD5 (a message, top-level or encapsulated, loses every
//!   `Content-*` field); it gets `Content-Type: text/plain` (with `charset=utf-8` when the
//!   note is not ASCII) and `Content-Transfer-Encoding: 7bit` (or `8bit`), and its body is the
//!   [`Note`] (by default [`DEFAULT_NOTE`]). A censored `multipart/*` or `message/*` is
//!   replaced whole by one note. Delimiters, the close one too, always stay.
//! - Everything else is byte-identical: headers, preambles, epilogues, line ends (CRLF and LF,
//!   mixed as they come; the note uses the line end of the block it follows).
//! - Input it cannot parse is passed through and counted ([`Counters::problems`], with a
//!   [`Problem`] saying what and where): a header block over [`MAX_HEADER`] bytes, nesting over
//!   [`MAX_DEPTH`], a multipart without a usable boundary (none, or over [`MAX_BOUNDARY`]
//!   bytes), a multipart without its close delimiter, an encoded message part, an invalid
//!   Content-Type.
//!
//! # Memory
//! Fixed whatever the message: a header block of at most [`MAX_HEADER`] bytes, one body line
//! of at most [`MAX_LINE`] bytes (only a line that may be a delimiter is held), at most
//! [`MAX_DEPTH`] open entities with boundaries of at most [`MAX_BOUNDARY`] bytes, and the
//! rendered note.
#![deny(missing_docs)]

mod bytes;
mod censor;
mod content_type;
mod frames;
mod header;
mod note;
mod problem;
mod ranges;

pub use censor::Censor;
pub use note::{Note, DEFAULT_NOTE, WRAP};
pub use problem::{Counters, Problem, ProblemKind, KEPT_PROBLEMS};
pub use ranges::{Error, MediaRanges};

/// The largest header block held, in bytes: one past it is passed through unparsed.
pub const MAX_HEADER: usize = 64 * 1024;

/// The longest line that can be a delimiter, line end included (RFC 5322's 998 characters and
/// CRLF; a delimiter is at most `--`, [`MAX_BOUNDARY`] bytes, `--` and its spaces).
pub const MAX_LINE: usize = 1000;

/// The most entities (multiparts and encapsulated messages) open at once; one deeper is not
/// looked inside.
pub const MAX_DEPTH: usize = 32;

/// The longest boundary accepted, in bytes (RFC 2046 allows 70; real mail sometimes has more).
pub const MAX_BOUNDARY: usize = 200;
