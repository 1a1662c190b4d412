//! What the scripted origin serves: its greeting and CAPA, the small mailbox
//! of every user but `big` and the 20 MiB message of `big`, byte for byte.

/// The scripted origin's greeting.
pub const GREETING: &[u8] = b"+OK scripted origin ready\r\n";
/// Its CAPA reply.
pub const CAPA: &[u8] = b"+OK\r\nUSER\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n";
/// Size the origin announces for the big message (it sends `big_body` bytes).
pub const BIG_SIZE: usize = 20 << 20;

/// Message `n` (1 or 2) of the small mailbox (every user but `big`), on the
/// wire: CRLF, dot-stuffed, without the terminator.
pub fn small_body(n: usize) -> Vec<u8> {
    let mut body = format!(
        "From: origin@example.org\r\nTo: alice@example.org\r\nSubject: message {n}\r\n\r\n"
    )
    .into_bytes();
    for i in 0..(40 * n) {
        body.extend_from_slice(format!("line {i:04} of message {n}\r\n").as_bytes());
    }
    // A line that starts with a dot, stuffed.
    body.extend_from_slice(b"..a line that starts with a dot\r\nend\r\n");
    body
}

/// The scripted origin's reply to `RETR n` for a small mailbox user.
pub fn small_retr(n: usize) -> Vec<u8> {
    let body = small_body(n);
    let mut reply = format!("+OK {} octets\r\n", body.len()).into_bytes();
    reply.extend_from_slice(&body);
    reply.extend_from_slice(b".\r\n");
    reply
}

/// The scripted origin's STAT line for a small mailbox user.
pub fn small_stat() -> Vec<u8> {
    let total = small_body(1).len() + small_body(2).len();
    format!("+OK 2 {total}\r\n").into_bytes()
}

/// Bytes `from..to` of the big message body (lines of 100 bytes, no dots).
pub fn big_body_range(from: usize, to: usize) -> Vec<u8> {
    const LINE: usize = 100;
    let mut out = Vec::with_capacity(to - from);
    let mut i = from / LINE;
    while out.len() < to - from {
        let line = format!(
            "{i:010} {:<87}\r\n",
            "the big message, one hundred bytes a line"
        );
        debug_assert_eq!(line.len(), LINE);
        let start = if i == from / LINE { from % LINE } else { 0 };
        let want = (to - from - out.len()).min(LINE - start);
        out.extend_from_slice(&line.as_bytes()[start..start + want]);
        i += 1;
    }
    out
}

/// The first `len` bytes of the big message body.
pub fn big_body(len: usize) -> Vec<u8> {
    big_body_range(0, len)
}

/// The start of a reply to RETR of the big message: the status line and the
/// first `len` bytes of the body (what an origin that dies mid-RETR sent).
pub fn big_retr_head(len: usize) -> Vec<u8> {
    let mut data = format!("+OK {BIG_SIZE} octets\r\n").into_bytes();
    data.extend_from_slice(&big_body(len));
    data
}

/// What an origin that stalls mid-reply sent: a RETR status line announcing
/// 5000 octets, and the first 2000 of them.
pub fn stalled_retr_part() -> Vec<u8> {
    let mut data = b"+OK 5000 octets\r\n".to_vec();
    data.extend_from_slice(&big_body(2000));
    data
}
