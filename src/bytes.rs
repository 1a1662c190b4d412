//! Byte searches on the hot path.
//!
//! Every relayed message body is scanned for line ends (to find the terminating `.` line, to
//! un-stuff or stuff dots); a byte-at-a-time loop was the largest cost of the plain relay. The C
//! library's `memchr` is vectorised, so the scans for one byte go through it. The scan for a
//! line that begins with a given byte ([`find_line_start`]) compares blocks of [`BLOCK`] bytes
//! in loops with no branch, which the compiler turns into vector compares: a `memchr` per line
//! cost more than the rest of the relay's work on a body of short lines.

/// The offset of the first `byte` in `hay`.
pub fn find(byte: u8, hay: &[u8]) -> Option<usize> {
    if hay.is_empty() {
        return None;
    }
    // SAFETY: memchr reads at most `hay.len()` bytes from `hay`, which is valid for reads, and
    // returns null or a pointer into it.
    let found = unsafe { libc::memchr(hay.as_ptr().cast(), byte as libc::c_int, hay.len()) };
    if found.is_null() {
        None
    } else {
        Some(found as usize - hay.as_ptr() as usize)
    }
}

/// Bytes compared at once by [`find_line_start`].
const BLOCK: usize = 64;

/// The offset of the first `byte` in `hay` that an LF comes just before (so never 0): where a
/// line in `hay` begins with `byte`.
pub fn find_line_start(byte: u8, hay: &[u8]) -> Option<usize> {
    let at = |i: usize| hay[i - 1] == b'\n' && hay[i] == byte;
    let mut start = 1;
    while start + BLOCK <= hay.len() {
        let block = |from: usize| -> &[u8; BLOCK] {
            hay[from..from + BLOCK].try_into().expect("BLOCK bytes")
        };
        // Most blocks have no `byte` at all: one compare per byte says so.
        let cur = block(start);
        let mut any = 0u8;
        for &c in cur {
            any |= u8::from(c == byte);
        }
        if any != 0 {
            let mut hits = 0u8;
            for (&p, &c) in block(start - 1).iter().zip(cur) {
                hits |= u8::from(p == b'\n') & u8::from(c == byte);
            }
            if hits != 0 {
                return (start..start + BLOCK).find(|&i| at(i));
            }
        }
        start += BLOCK;
    }
    (start..hay.len()).find(|&i| at(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first() {
        assert_eq!(find(b'\n', b""), None);
        assert_eq!(find(b'\n', b"abc"), None);
        assert_eq!(find(b'\n', b"\nabc\n"), Some(0));
        assert_eq!(find(b'\n', b"abc\nd\n"), Some(3));
        let long: Vec<u8> = (0..10_000)
            .map(|i| if i == 9_999 { b'\n' } else { b'x' })
            .collect();
        assert_eq!(find(b'\n', &long), Some(9_999));
        assert_eq!(find(0xff, &[0, 0xff]), Some(1));
    }

    /// What [`find_line_start`] must answer, a byte at a time.
    fn line_start_slowly(byte: u8, hay: &[u8]) -> Option<usize> {
        (1..hay.len()).find(|&i| hay[i - 1] == b'\n' && hay[i] == byte)
    }

    #[test]
    fn line_starts_agree_with_a_byte_loop() {
        let pieces: [&[u8]; 5] = [b"\n.", b".", b"\n", b"x.", b"\n\n."];
        for len in [0, 1, 2, 3, 63, 64, 65, 66, 127, 128, 129, 200] {
            let hay = vec![b'x'; len];
            assert_eq!(find_line_start(b'.', &hay), None);
            for at in 0..len {
                for piece in pieces {
                    let mut h = hay.clone();
                    let end = (at + piece.len()).min(len);
                    h[at..end].copy_from_slice(&piece[..end - at]);
                    for start in [0, 1, at.saturating_sub(1), at] {
                        let h = &h[start.min(at)..];
                        assert_eq!(
                            find_line_start(b'.', h),
                            line_start_slowly(b'.', h),
                            "{len} {at} {start}"
                        );
                    }
                }
            }
        }
        // Many candidates, few hits: a `.` in every block, an LF before only one of them.
        let mut h: Vec<u8> = (0..1000)
            .map(|i| if i % 50 == 7 { b'.' } else { b'a' })
            .collect();
        h[756] = b'\n';
        assert_eq!(find_line_start(b'.', &h), Some(757));
        assert_eq!(line_start_slowly(b'.', &h), Some(757));
    }
}
