//! The big messages the stripmime tests stream: made piece by piece, never held whole.

use super::Stream;

/// One MiB (about) of base64 lines, different from line to line.
pub fn base64_block(eol: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut block = Vec::with_capacity(1 << 20);
    while block.len() + 76 + eol.len() <= 1 << 20 {
        for _ in 0..76 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            block.push(ALPHABET[(seed % 64) as usize]);
        }
        block.extend_from_slice(eol.as_bytes());
    }
    block
}

/// The course's big message: a text part, a CD image of `mib` MiB, a last text part.
/// Returns (message, what it becomes with the CD image censored with the note `Removed: %s.`).
pub fn cd_image_message(mib: u64) -> (Stream, Stream) {
    let head = "From: Ana <ana@example.org>\r\nSubject: the disc\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=\"=_big\"\r\n\r\n--=_big\r\n\
                Content-Type: text/plain\r\n\r\nHere is the CD image.\r\n--=_big\r\n";
    let cd = "Content-Type: application/x-cd-image; name=\"disc.iso\"\r\n\
              Content-Disposition: attachment; filename=\"disc.iso\"\r\n\
              Content-Transfer-Encoding: base64\r\n\r\n";
    let tail = "--=_big\r\nContent-Type: text/plain\r\n\r\nThe end.\r\n--=_big--\r\n";
    let message = Stream::new()
        .add(head)
        .add(cd)
        .repeat(base64_block("\r\n"), mib)
        .add(tail);
    let censored = Stream::new()
        .add(head)
        .add(
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
             Removed: application/x-cd-image.\r\n",
        )
        .add(tail);
    (message, censored)
}

/// A MiB of NULs, bytes with the high bit set, CRs and LFs, and dashes at line starts.
pub fn garbage() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..1 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            match seed % 16 {
                0 => 0,
                1 => b'\n',
                2 => b'-',
                3 => b'\r',
                _ => (seed >> 32) as u8 | 0x80,
            }
        })
        .collect()
}
