//! Dot-stuffing, both ways, as streams split at any byte (RFC 1939 section 3).
//!
//! [`Unstuffer`] turns the body of a multi-line reply (after its status line) back into the
//! message: a line that starts with `.` loses that dot, and the line that is a single `.` ends
//! it. [`Stuffer`] does the reverse for what a filter writes: a leading `.` is doubled, a bare
//! LF becomes CRLF, and [`Stuffer::finish`] ends the last line if needed and adds the
//! terminator. Both keep a few bits of state and never buffer.
//!
//! Both take input split at any offset and write into output windows of any size, down to one
//! byte, and their state changes only together with output that was really written: a
//! caller may hand them the space before a ring buffer's wrap, whatever its size. `pump`
//! moves bytes between two [`RingBuffer`]s that way.

use buffer::RingBuffer;

/// Where the un-stuffer is in the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    LineStart,
    InLine,
    /// A line that began with `.` (not yet emitted).
    Dot,
    /// `.` then CR at the start of a line (neither emitted yet).
    DotCr,
    /// The terminating line was seen.
    End,
}

/// Removes dot-stuffing from a reply body and finds its end.
#[derive(Debug, Clone)]
pub struct Unstuffer {
    at: At,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Unstuffer { at: At::LineStart }
    }
}

impl Unstuffer {
    /// True once the terminating `.` line was consumed.
    pub fn is_done(&self) -> bool {
        self.at == At::End
    }

    /// Decodes from `input` into `out` as far as both allow. Returns (bytes consumed, bytes
    /// written). Any window of one byte or more makes progress (an empty one may still consume
    /// a stuffing dot). Stops right after the terminator: the bytes behind it belong to the
    /// next reply.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0, 0);
        while i < input.len() {
            match self.at {
                At::InLine => {
                    // Copy up to the next line that begins with a dot in one go: the lines
                    // between need no work (a body without dots is one copy per window).
                    let room = out.len() - o;
                    if room == 0 {
                        break;
                    }
                    let chunk = &input[i..input.len().min(i + room)];
                    let n = crate::bytes::find_line_start(b'.', chunk).unwrap_or(chunk.len());
                    out[o..o + n].copy_from_slice(&chunk[..n]);
                    if chunk[n - 1] == b'\n' {
                        self.at = At::LineStart;
                    }
                    i += n;
                    o += n;
                }
                At::LineStart if input[i] == b'.' => {
                    self.at = At::Dot;
                    i += 1;
                }
                // The byte is content: the InLine arm copies it.
                At::LineStart => self.at = At::InLine,
                At::Dot => match input[i] {
                    b'\r' => {
                        self.at = At::DotCr;
                        i += 1;
                    }
                    b'\n' => {
                        self.at = At::End;
                        i += 1;
                    }
                    // The dot was stuffing: dropped; what follows is content.
                    _ => self.at = At::InLine,
                },
                At::DotCr if input[i] == b'\n' => {
                    self.at = At::End;
                    i += 1;
                }
                At::DotCr => {
                    // ".\rX" is no terminator: the dot was stuffing and CR is content.
                    if o == out.len() {
                        break;
                    }
                    out[o] = b'\r';
                    o += 1;
                    self.at = At::InLine;
                }
                At::End => break,
            }
        }
        (i, o)
    }
}

impl Unstuffer {
    /// Un-stuffs `from` into `to` as far as both allow, across the wrap of either, up to the
    /// terminator; returns whether anything moved.
    pub fn pump(&mut self, from: &mut RingBuffer, to: &mut RingBuffer) -> bool {
        // Once done, `decode` takes nothing more: the pump stops there.
        from.pump_into(to, |input, out| self.decode(input, out))
    }

    /// Un-stuffs `from` into nothing, up to the terminator (the rest of a body nobody wants).
    pub fn discard(&mut self, from: &mut RingBuffer) -> bool {
        let mut progress = false;
        let mut sink = [0u8; 4096];
        while !self.is_done() && !from.is_empty() {
            let (used, _) = self.decode(from.data().0, &mut sink);
            from.consume(used);
            progress |= used > 0;
        }
        progress
    }
}

/// Adds dot-stuffing and CRLF line ends to a message on its way to a client.
///
/// It writes into output windows of any size, down to one byte: when only the first byte of a
/// pair fits (a doubled dot, the CR of a CRLF), the input byte is consumed and the second
/// byte is *owed*, written first by the next call. The state thus always describes exactly the
/// output that was written, never output that a caller may still drop.
#[derive(Debug, Clone)]
pub struct Stuffer {
    line_start: bool,
    after_cr: bool,
    empty: bool,
    /// Output already decided on (its input consumed) but not yet written.
    owed: &'static [u8],
    /// [`Stuffer::finish`] has begun: `owed` holds the rest of the closing lines.
    closing: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            line_start: true,
            after_cr: false,
            empty: true,
            owed: b"",
            closing: false,
        }
    }
}

/// The line that ends a multi-line reply.
pub const TERMINATOR: &[u8] = b".\r\n";

impl Stuffer {
    /// Encodes `input` into `out`; returns (bytes consumed, bytes written). Any window makes
    /// progress unless it is empty; output owed from the last call comes first.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        debug_assert!(!self.closing, "encode after finish");
        let (mut i, mut o) = (0, self.pay(out));
        while i < input.len() && o < out.len() {
            if self.line_start && input[i] == b'.' {
                // A leading dot is doubled.
                o += self.emit(b"..", &mut out[o..]);
                i += 1;
                self.line_start = false;
                self.after_cr = false;
                self.empty = false;
                continue;
            }
            // Copy in one go up to the next place that needs work: a bare LF, or a dot
            // that begins a line (CRLF lines without leading dots are copied as they are).
            let rest = &input[i..];
            let window = &rest[..rest.len().min(out.len() - o)];
            let (n, bare_lf) = plain_run(window, self.after_cr);
            if n > 0 {
                out[o..o + n].copy_from_slice(&window[..n]);
                self.after_cr = window[n - 1] == b'\r';
                self.line_start = window[n - 1] == b'\n';
                self.empty = false;
                i += n;
                o += n;
            }
            if !bare_lf {
                continue; // out is full, the input ended, or a line begins with a dot
            }
            // A bare LF becomes CRLF.
            o += self.emit(b"\r\n", &mut out[o..]);
            i += 1;
            self.line_start = true;
            self.after_cr = false;
            self.empty = false;
        }
        (i, o)
    }

    /// Writes what closes the message into `out` — the end of its last line if it has none,
    /// then `.` CRLF — as far as `out` allows; returns the bytes written. Call it (with fresh
    /// room) until [`Stuffer::is_finished`]; no [`Stuffer::encode`] after it.
    pub fn finish(&mut self, out: &mut [u8]) -> usize {
        let mut o = self.pay(out);
        if self.owed.is_empty() && !self.closing {
            self.closing = true;
            self.owed = if self.line_start || self.empty {
                TERMINATOR
            } else if self.after_cr {
                b"\n.\r\n"
            } else {
                b"\r\n.\r\n"
            };
            o += self.pay(&mut out[o..]);
        }
        o
    }

    /// True once the whole terminator has been written by [`Stuffer::finish`].
    pub fn is_finished(&self) -> bool {
        self.closing && self.owed.is_empty()
    }

    /// Stuffs `from` into `to` as far as both allow, across the wrap of either; returns
    /// whether anything moved.
    pub fn pump(&mut self, from: &mut RingBuffer, to: &mut RingBuffer) -> bool {
        self.pump_at_most(from, usize::MAX, to).1
    }

    /// [`Stuffer::pump`] of at most `limit` bytes of `from`; returns how many it took, and
    /// whether anything moved (owed bytes paid count).
    pub fn pump_at_most(
        &mut self,
        from: &mut RingBuffer,
        limit: usize,
        to: &mut RingBuffer,
    ) -> (usize, bool) {
        let (mut taken, mut progress) = (0, false);
        while !self.closing
            && ((taken < limit && !from.is_empty()) || !self.owed.is_empty())
            && !to.is_full()
        {
            let (used, written) = {
                let (input, _) = from.data();
                let (space, _) = to.space();
                self.encode(&input[..input.len().min(limit - taken)], space)
            };
            from.consume(used);
            to.commit(written);
            taken += used;
            progress = true;
        }
        (taken, progress)
    }

    /// Writes the closing lines into `to` as far as it has room; true once all are in.
    pub fn finish_into(&mut self, to: &mut RingBuffer) -> bool {
        while !self.is_finished() && !to.is_full() {
            let (space, _) = to.space();
            let n = self.finish(space);
            to.commit(n);
        }
        self.is_finished()
    }

    /// Writes owed output into `out`; returns how much.
    fn pay(&mut self, out: &mut [u8]) -> usize {
        let n = self.owed.len().min(out.len());
        out[..n].copy_from_slice(&self.owed[..n]);
        self.owed = &self.owed[n..];
        n
    }

    /// Writes `bytes` into `out` as far as it fits and owes the rest.
    fn emit(&mut self, bytes: &'static [u8], out: &mut [u8]) -> usize {
        self.owed = bytes;
        self.pay(out)
    }
}

/// Bytes looked at together by [`plain_run`]'s block scan.
const BLOCK: usize = 32;

/// How many bytes at the start of `window` the stuffer copies as they are, and whether a bare
/// LF follows them. The run stops before a bare LF (its CR is missing: before `window`, that is
/// `after_cr`), after an LF that a dot follows, or at the end of `window`.
fn plain_run(window: &[u8], after_cr: bool) -> (usize, bool) {
    // Skip whole blocks with no LF that is bare or followed by a dot. Each block looks one byte
    // before it (so the scan starts at byte 1; byte 0 needs work only if it is an LF, whose CR
    // would be `after_cr`, and then the line scan takes it) and one past it (so it stops a byte
    // short: an LF at the very end cannot yet tell whether a dot follows).
    let mut start = 0;
    if window.len() > BLOCK && window[0] != b'\n' {
        start = 1;
        while start + BLOCK < window.len() {
            let block = |from: usize| -> &[u8; BLOCK] {
                window[from..from + BLOCK].try_into().expect("BLOCK bytes")
            };
            let (prev, cur, next) = (block(start - 1), block(start), block(start + 1));
            let mut hits = 0u8;
            for ((&p, &c), &n) in prev.iter().zip(cur).zip(next) {
                hits |= u8::from(c == b'\n') & (u8::from(p != b'\r') | u8::from(n == b'.'));
            }
            if hits != 0 {
                break;
            }
            start += BLOCK;
        }
    }
    line_run(window, after_cr, start)
}

/// [`plain_run`] line by line, from `from` (every LF before it needs no work).
fn line_run(window: &[u8], after_cr: bool, mut from: usize) -> (usize, bool) {
    while let Some(q) = crate::bytes::find(b'\n', &window[from..]) {
        let lf = from + q;
        let cr = if lf == 0 {
            after_cr
        } else {
            window[lf - 1] == b'\r'
        };
        if !cr {
            return (lf, true);
        }
        if window.get(lf + 1) == Some(&b'.') {
            return (lf + 1, false);
        }
        from = lf + 1;
    }
    (window.len(), false)
}

#[cfg(test)]
mod tests;
