//! Byte searches on the hot path.
//!
//! Every relayed message body is scanned for line ends (to find the terminating `.` line, to
//! un-stuff or stuff dots); a byte-at-a-time loop was the largest cost of the plain relay. The C
//! library's `memchr` is vectorised, so the scans go through it.

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
}
