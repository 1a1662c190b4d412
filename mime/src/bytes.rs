//! Finding line ends, the one search the censor does on every byte of a body.
//!
//! Std has no public `memchr`, so this is the word-at-a-time form: eight bytes are tested for
//! a LF at once, and only the word that has one is looked at byte by byte.
//!
//! Invariant: the answer is the offset of the first LF, exactly as a byte loop would give it.

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

#[cfg(test)]
mod tests {
    use super::find_lf;

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
