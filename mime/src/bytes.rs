//! The two searches the censor does on every byte it copies: for a line end, and for a line
//! start where a delimiter may begin.
//!
//! Std has no public `memchr`. [`find_lf`] is the word-at-a-time form: eight bytes are tested
//! for a LF at once, and only the word that has one is looked at byte by byte.
//! [`find_dashed_line`] compares blocks of [`BLOCK`] bytes in loops with no branch, which the
//! compiler turns into vector compares: first for a `-` alone (base64 has none), then, in a
//! block that has one, for LF `-` `-`; it looks byte by byte only at a block with a hit.
//!
//! Invariant: the answers are exactly what a byte loop would give.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LFS: u64 = LO * b'\n' as u64;

/// The offset of the first LF in `hay`.
pub(crate) fn find_lf(hay: &[u8]) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ LFS;
        // A zero byte in `word` (a LF in the chunk) sets its high bit here.
        if word.wrapping_sub(LO) & !word & HI != 0 {
            return chunk.iter().position(|&b| b == b'\n').map(|p| base + p);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| base + p)
}

/// Bytes compared at once by [`find_dashed_line`].
const BLOCK: usize = 64;

/// The offset just past the first LF in `hay` that `--` follows, or that runs into the end of
/// `hay` before two bytes follow it that are not `--` (`\n` or `\n-` at the very end: what
/// comes next may be `--`); `hay.len()` if there is none.
pub(crate) fn find_dashed_line(hay: &[u8]) -> usize {
    let mut start = 0;
    // Each block looks two bytes past its end, so the blocks stop two bytes short.
    while start + BLOCK + 2 <= hay.len() {
        let block = |from: usize| -> &[u8; BLOCK] {
            hay[from..from + BLOCK].try_into().expect("BLOCK bytes")
        };
        // Most blocks have no `-` where a delimiter's first one would be: one compare per
        // byte says so. Only a block that has one is checked for LF, `-`, `-`.
        let dash = block(start + 1);
        let mut dashes = 0u8;
        for &b in dash {
            dashes |= u8::from(b == b'-');
        }
        if dashes != 0 {
            let (lf, dash2) = (block(start), block(start + 2));
            let mut hits = 0u8;
            for ((&a, &b), &c) in lf.iter().zip(dash).zip(dash2) {
                hits |= u8::from(a == b'\n') & u8::from(b == b'-') & u8::from(c == b'-');
            }
            if hits != 0 {
                break;
            }
        }
        start += BLOCK;
    }
    for i in start..hay.len() {
        if hay[i] == b'\n' && hay[i + 1..].iter().take(2).all(|&b| b == b'-') {
            return i + 1;
        }
    }
    hay.len()
}

#[cfg(test)]
mod tests {
    use super::{find_dashed_line, find_lf};

    /// What [`find_dashed_line`] must answer, a byte at a time.
    fn dashed_line_slowly(hay: &[u8]) -> usize {
        (0..hay.len())
            .find(|&i| {
                hay[i] == b'\n' && {
                    let after = &hay[i + 1..(i + 3).min(hay.len())];
                    b"--".starts_with(after)
                }
            })
            .map_or(hay.len(), |i| i + 1)
    }

    #[test]
    fn dashed_lines_agree_with_a_byte_loop() {
        let pieces: [&[u8]; 5] = [b"\n--", b"\n-x", b"\n", b"-", b"ab-\n"];
        for len in [0, 1, 2, 3, 33, 34, 35, 65, 66, 67, 100, 131] {
            let mut hay = vec![b'x'; len];
            assert_eq!(find_dashed_line(&hay), dashed_line_slowly(&hay));
            for at in 0..len {
                for piece in pieces {
                    let mut h = hay.clone();
                    let end = (at + piece.len()).min(len);
                    h[at..end].copy_from_slice(&piece[..end - at]);
                    for start in 0..=at {
                        let got = find_dashed_line(&h[start..]);
                        assert_eq!(got, dashed_line_slowly(&h[start..]), "{len} {at} {start}");
                    }
                }
            }
            hay.fill(b'\n');
            assert_eq!(find_dashed_line(&hay), dashed_line_slowly(&hay));
        }
    }

    #[test]
    fn agrees_with_a_byte_loop() {
        let mut hay = vec![b'x'; 40];
        assert_eq!(find_lf(&hay), None);
        assert_eq!(find_lf(b""), None);
        for at in 0..40 {
            hay[at] = b'\n';
            for start in 0..=at {
                assert_eq!(find_lf(&hay[start..]), Some(at - start), "{at} {start}");
            }
            hay[at] = 0x8a; // a byte with the high bit set and LF's low bits
        }
        assert_eq!(find_lf(&hay), None);
        assert_eq!(find_lf(&[0x0b, 0x09, 0xff, 0x00, 0x0a]), Some(4));
    }
}
