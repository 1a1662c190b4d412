//! Dot-stuffing, both ways, as streams split at any byte (RFC 1939 section 3).
//!
//! [`Unstuffer`] turns the body of a multi-line reply (after its status line) back into the
//! message: a line that starts with `.` loses that dot, and the line that is a single `.` ends
//! it. [`Stuffer`] does the reverse for what a filter writes: a leading `.` is doubled, a bare
//! LF becomes CRLF, and [`Stuffer::finish`] ends the last line if needed and adds the
//! terminator. Both keep a few bits of state and never buffer.

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
    /// written). `out` must hold at least 2 bytes for progress to be guaranteed. Stops right
    /// after the terminator: the bytes behind it belong to the next reply.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0, 0);
        while i < input.len() {
            match self.at {
                At::InLine => {
                    // Copy up to the end of the line in one go.
                    let room = out.len() - o;
                    if room == 0 {
                        break;
                    }
                    let chunk = &input[i..input.len().min(i + room)];
                    let n = crate::bytes::find(b'\n', chunk).map_or(chunk.len(), |p| p + 1);
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

/// Adds dot-stuffing and CRLF line ends to a message on its way to a client.
#[derive(Debug, Clone)]
pub struct Stuffer {
    line_start: bool,
    after_cr: bool,
    empty: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            line_start: true,
            after_cr: false,
            empty: true,
        }
    }
}

/// The line that ends a multi-line reply.
pub const TERMINATOR: &[u8] = b".\r\n";

impl Stuffer {
    /// Encodes `input` into `out`; returns (bytes consumed, bytes written). Each input byte
    /// takes at most 2 output bytes, so an `out` twice as long as `input` takes it all.
    pub fn encode(&mut self, input: &[u8], out: &mut [u8]) -> (usize, usize) {
        let (mut i, mut o) = (0, 0);
        while i < input.len() {
            if self.line_start && input[i] == b'.' {
                // A leading dot is doubled.
                if out.len() - o < 2 {
                    break;
                }
                out[o..o + 2].copy_from_slice(b"..");
                o += 2;
                i += 1;
                self.line_start = false;
                self.after_cr = false;
                self.empty = false;
                continue;
            }
            // Copy the rest of the line (up to and without its LF) in one go.
            let rest = &input[i..];
            let run = crate::bytes::find(b'\n', rest).unwrap_or(rest.len());
            let n = run.min(out.len() - o);
            if n > 0 {
                out[o..o + n].copy_from_slice(&rest[..n]);
                self.after_cr = rest[n - 1] == b'\r';
                self.line_start = false;
                self.empty = false;
                i += n;
                o += n;
            }
            if n < run || i == input.len() {
                break; // out is full, or the input ended inside the line
            }
            // The LF itself: a bare one becomes CRLF.
            let eol: &[u8] = if self.after_cr { b"\n" } else { b"\r\n" };
            if out.len() - o < eol.len() {
                break;
            }
            out[o..o + eol.len()].copy_from_slice(eol);
            o += eol.len();
            i += 1;
            self.line_start = true;
            self.after_cr = false;
            self.empty = false;
        }
        (i, o)
    }

    /// What closes the message: the end of its last line if it has none, then `.` CRLF.
    pub fn finish(&self) -> &'static [u8] {
        if self.line_start || self.empty {
            TERMINATOR
        } else if self.after_cr {
            b"\n.\r\n"
        } else {
            b"\r\n.\r\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Un-stuffs `input` given in two parts split at `cut`, through an output window of `room`
    /// bytes; returns (message, bytes consumed).
    fn unstuff(input: &[u8], cut: usize, room: usize) -> (Vec<u8>, usize) {
        let mut u = Unstuffer::default();
        let mut msg = Vec::new();
        let mut taken = 0;
        for part in [&input[..cut], &input[cut..]] {
            let mut rest = part;
            while !rest.is_empty() && !u.is_done() {
                let mut out = vec![0u8; room];
                let (i, o) = u.decode(rest, &mut out);
                assert!(i > 0 || o > 0, "no progress");
                msg.extend_from_slice(&out[..o]);
                rest = &rest[i..];
                taken += i;
            }
        }
        assert!(u.is_done());
        (msg, taken)
    }

    fn stuff(msg: &[u8], cut: usize) -> Vec<u8> {
        let mut s = Stuffer::default();
        let mut wire = Vec::new();
        for part in [&msg[..cut], &msg[cut..]] {
            let mut out = vec![0u8; part.len() * 2];
            let (i, o) = s.encode(part, &mut out);
            assert_eq!(i, part.len());
            wire.extend_from_slice(&out[..o]);
        }
        wire.extend_from_slice(s.finish());
        wire
    }

    #[test]
    fn unstuffs_at_every_split_and_window() {
        let body = b"a\r\n..hola\r\n..\r\n...\r\n.x\r\n\r\nend\r\n.\r\nNEXT";
        let want = b"a\r\n.hola\r\n.\r\n..\r\nx\r\n\r\nend\r\n";
        for cut in 0..=body.len() {
            for room in [2, 3, 7, 64] {
                let (msg, taken) = unstuff(body, cut, room);
                assert_eq!(msg, want, "cut {cut} room {room}");
                assert_eq!(taken, body.len() - 4, "stops before the next reply");
            }
        }
    }

    #[test]
    fn empty_body_and_bare_lf_terminator() {
        assert_eq!(unstuff(b".\r\n", 1, 4).0, b"");
        assert_eq!(unstuff(b"x\n.\n", 2, 4).0, b"x\n");
        assert_eq!(unstuff(b".\rX\r\n.\r\n", 2, 4).0, b"\rX\r\n");
    }

    #[test]
    fn stuffs_dots_and_line_ends() {
        let msg = b".hola\n.\nplain\r\n..\nlast";
        let want = b"..hola\r\n..\r\nplain\r\n...\r\nlast\r\n.\r\n";
        for cut in 0..=msg.len() {
            assert_eq!(stuff(msg, cut), want, "cut {cut}");
        }
        assert_eq!(stuff(b"", 0), b".\r\n");
        assert_eq!(stuff(b"x\r", 1), b"x\r\n.\r\n");
        assert_eq!(stuff(b"x\r\n", 1), b"x\r\n.\r\n");
    }

    #[test]
    fn small_windows_never_split_a_pair() {
        let mut s = Stuffer::default();
        let mut out = [0u8; 1];
        assert_eq!(
            s.encode(b".", &mut out),
            (0, 0),
            "a stuffed dot needs two bytes"
        );
        assert_eq!(s.encode(b"a", &mut out), (1, 1));
    }

    #[test]
    fn round_trip_of_arbitrary_bytes() {
        // un-stuff(stuff(x)) == x for messages whose lines end in CRLF and whose last line
        // is complete (what stuffing preserves exactly).
        let mut seed = 0x2545_f491_u32;
        for _ in 0..300 {
            let len = (seed % 200) as usize;
            let mut msg = Vec::with_capacity(len + 2);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                msg.push(match seed % 6 {
                    0 => b'.',
                    1 => b'\n',
                    2 => b'\r',
                    _ => (seed >> 8) as u8,
                });
            }
            // Normalise to what a client can receive: CRLF lines, complete last line.
            let mut norm = Vec::new();
            let mut s = Stuffer::default();
            let mut out = vec![0u8; msg.len() * 2];
            let (_, o) = s.encode(&msg, &mut out);
            norm.extend_from_slice(&out[..o]);
            norm.extend_from_slice(s.finish());
            let unstuffed = unstuff(&norm, norm.len() / 2, 5).0;
            let restuffed = stuff(&unstuffed, unstuffed.len() / 3);
            assert_eq!(restuffed, norm);
        }
    }

    /// What a client can receive for `msg`: CRLF line ends, the last line ended.
    fn normal(msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in msg.iter().enumerate() {
            if b == b'\n' && (i == 0 || msg[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        if !out.is_empty() && !out.ends_with(b"\r\n") {
            if out.ends_with(b"\r") {
                out.push(b'\n');
            } else {
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    #[test]
    fn unstuff_of_stuff_is_identity_at_random_splits() {
        // un-stuff(stuff(x)) == x for any bytes x, up to the line-end normalisation that
        // stuffing promises (bare LF -> CRLF, last line ended); exactly x when x is normal.
        let mut rng = crate::testutil::Rng::new(0x5eed_0002);
        for case in 0..3000 {
            let len = rng.below(150);
            let x = rng.bytes(len, b".\r\nab");
            let mut s = Stuffer::default();
            let mut wire = Vec::new();
            for chunk in rng.chunks(&x, 7) {
                let mut out = vec![0u8; chunk.len() * 2];
                let (used, n) = s.encode(chunk, &mut out);
                assert_eq!(used, chunk.len());
                wire.extend_from_slice(&out[..n]);
            }
            wire.extend_from_slice(s.finish());
            let mut u = Unstuffer::default();
            let mut back = Vec::new();
            for chunk in rng.chunks(&wire, 11) {
                let mut rest = chunk;
                while !rest.is_empty() && !u.is_done() {
                    let mut out = [0u8; 5];
                    let (i, o) = u.decode(rest, &mut out);
                    back.extend_from_slice(&out[..o]);
                    rest = &rest[i..];
                }
            }
            assert!(u.is_done(), "case {case}");
            assert_eq!(back, normal(&x), "case {case}: {x:?}");
            if normal(&x) == x {
                assert_eq!(back, x);
            }
        }
    }

    #[test]
    fn unstuffer_survives_any_bytes() {
        let mut rng = crate::testutil::Rng::new(0x5eed_0003);
        for _ in 0..2000 {
            let len = rng.below(100);
            let input = rng.bytes(len, b".\r\nz");
            let mut whole = Unstuffer::default();
            let mut out = vec![0u8; 256];
            let (wi, wo) = whole.decode(&input, &mut out);
            let expected = out[..wo].to_vec();
            let mut u = Unstuffer::default();
            let (mut taken, mut got) = (0, Vec::new());
            for chunk in rng.chunks(&input, 5) {
                let mut rest = chunk;
                while !rest.is_empty() && !u.is_done() {
                    let mut small = [0u8; 3];
                    let (i, o) = u.decode(rest, &mut small);
                    got.extend_from_slice(&small[..o]);
                    taken += i;
                    rest = &rest[i..];
                }
            }
            assert_eq!((taken, got, u.is_done()), (wi, expected, whole.is_done()));
        }
    }
}
