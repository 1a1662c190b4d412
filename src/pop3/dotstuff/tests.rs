//! Tests of the dot-stuffing codecs: split input, output windows of every size, real ring buffers.

use super::*;
use buffer::RingBuffer;

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
    finish_all(&mut s, &mut wire);
    wire
}

/// Runs [`Stuffer::finish`] to the end through 1-byte windows, appending to `wire`.
fn finish_all(s: &mut Stuffer, wire: &mut Vec<u8>) {
    while !s.is_finished() {
        let mut out = [0u8; 1];
        let n = s.finish(&mut out);
        assert_eq!(n, 1, "finish makes progress in a 1-byte window");
        wire.extend_from_slice(&out[..n]);
    }
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
fn a_pair_cut_by_the_window_is_owed_not_lost() {
    let mut s = Stuffer::default();
    let mut out = [0u8; 1];
    assert_eq!(
        s.encode(b".", &mut out),
        (1, 1),
        "the dot is taken, half its pair written"
    );
    assert_eq!(&out, b".");
    assert_eq!(s.encode(b"", &mut out), (0, 1), "the owed dot comes first");
    assert_eq!(&out, b".");
    assert_eq!(s.encode(b"\n", &mut out), (1, 1));
    assert_eq!(&out, b"\r");
    assert_eq!(
        s.encode(b"", &mut []),
        (0, 0),
        "an empty window changes nothing"
    );
    let mut wire = Vec::new();
    finish_all(&mut s, &mut wire);
    assert_eq!(wire, b"\n.\r\n", "the owed LF, then the terminator");
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
        finish_all(&mut s, &mut norm);
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
        finish_all(&mut s, &mut wire);
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

// ---- against simple references, through windows of every size and real ring buffers ----

/// What stuffing must produce, written the obvious way over the whole message.
fn reference_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line_start = true;
    for (i, &b) in msg.iter().enumerate() {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && (i == 0 || msg[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !line_start {
        out.extend_from_slice(if msg.ends_with(b"\r") { b"\n" } else { b"\r\n" });
    }
    out.extend_from_slice(TERMINATOR);
    out
}

/// What un-stuffing must produce: (message, bytes up to and with the terminator), line by
/// line; `None` when `wire` has no terminator.
fn reference_unstuff(wire: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut msg = Vec::new();
    let mut at = 0;
    while let Some(lf) = wire[at..].iter().position(|&b| b == b'\n') {
        let line = &wire[at..at + lf + 1];
        at += lf + 1;
        if line == b".\r\n" || line == b".\n" {
            return Some((msg, at));
        }
        msg.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    None
}

/// Messages that put dots, CRs and LFs at every place a window or a wrap can fall.
fn dotty_messages() -> Vec<Vec<u8>> {
    let mut msgs: Vec<Vec<u8>> = [
        &b""[..],
        b".",
        b"..",
        b".\r\n",
        b".\n.\n",
        b"...x\r\n.\r\n..\r\n",
        b"\n\n.\n",
        b"a\r",
        b"a\rb\n.\r.\n",
        b".x\r\n\r\n.\r\n...\r\nend",
    ]
    .iter()
    .map(|m| m.to_vec())
    .collect();
    let mut rng = crate::testutil::Rng::new(0x5eed_0009);
    for _ in 0..40 {
        let len = rng.below(40);
        msgs.push(rng.bytes(len, b"..\r\nx"));
    }
    msgs
}

/// Stuffs `msg` split at `cut`, through windows whose sizes follow `windows` in turn (0
/// included), and checks that an empty window changes nothing and any other one moves.
fn stuff_through(msg: &[u8], cut: usize, windows: &[usize]) -> Vec<u8> {
    let mut s = Stuffer::default();
    let mut wire = Vec::new();
    let mut turn = 0;
    let mut next_window = || {
        turn += 1;
        windows[turn % windows.len()]
    };
    for part in [&msg[..cut], &msg[cut..]] {
        let mut rest = part;
        while !rest.is_empty() {
            let mut out = vec![0u8; next_window()];
            let (i, o) = s.encode(rest, &mut out);
            if out.is_empty() {
                assert_eq!((i, o), (0, 0), "an empty window takes nothing");
            } else {
                assert!(o > 0, "a window of {} bytes got nothing", out.len());
            }
            wire.extend_from_slice(&out[..o]);
            rest = &rest[i..];
        }
    }
    while !s.is_finished() {
        let mut out = vec![0u8; next_window()];
        let o = s.finish(&mut out);
        assert!(out.is_empty() || o > 0);
        wire.extend_from_slice(&out[..o]);
    }
    wire
}

#[test]
fn stuffer_matches_the_reference_in_every_window_at_every_split() {
    for msg in dotty_messages() {
        let want = reference_stuff(&msg);
        for cut in 0..=msg.len() {
            for w in 1..=want.len() + 1 {
                assert_eq!(
                    stuff_through(&msg, cut, &[w]),
                    want,
                    "{msg:?} cut {cut} window {w}"
                );
            }
            for windows in [&[0, 1][..], &[1, 0, 2], &[3, 0, 0, 1, 2], &[2, 1]] {
                let got = stuff_through(&msg, cut, windows);
                assert_eq!(got, want, "{msg:?} cut {cut} windows {windows:?}");
            }
        }
    }
}

#[test]
fn unstuffer_matches_the_reference_in_every_window_at_every_split() {
    for msg in dotty_messages() {
        let mut wire = reference_stuff(&msg);
        let (want, end) = reference_unstuff(&wire).expect("stuffed has a terminator");
        wire.extend_from_slice(b"+OK next\r\n");
        for cut in 0..=wire.len() {
            for w in 1..=want.len() + 2 {
                let (got, taken) = unstuff(&wire, cut, w);
                assert_eq!(
                    (got.as_slice(), taken),
                    (want.as_slice(), end),
                    "{wire:?} {cut} {w}"
                );
            }
            // An empty window: nothing is written, and at most a stuffing dot (and the CR
            // that follows it) or a terminator is taken.
            let mut u = Unstuffer::default();
            let (i, o) = u.decode(&wire[cut..], &mut []);
            assert!(o == 0 && (i <= 2 || u.is_done()), "{wire:?} {cut}: {i}");
        }
    }
}

/// A ring buffer of `cap` bytes whose cursors sit at `at` and that holds the one byte `first`.
fn ring_at(cap: usize, at: usize, first: u8) -> RingBuffer {
    let mut ring = RingBuffer::new(cap);
    let mut fill = vec![b'#'; at];
    fill.push(first);
    assert_eq!(ring.push(&fill), fill.len());
    ring.consume(at);
    ring
}

/// Runs `input` through `step` between two ring buffers of `cap` bytes, the producer pushing
/// `p` bytes and the consumer taking `q` bytes a turn; the output buffer starts with `junk`
/// bytes in it (dropped), so its cursors and its wrap fall at every offset. `done` says when
/// the codec has written everything.
fn through_rings<C>(
    input: &[u8],
    cap: usize,
    junk: usize,
    (p, q): (usize, usize),
    codec: &mut C,
    step: fn(&mut C, &mut RingBuffer, &mut RingBuffer, bool) -> bool,
) -> Vec<u8> {
    let (mut from, mut rest) = match input.split_first() {
        Some((&b, rest)) => (ring_at(cap, junk % cap, b), rest),
        None => (RingBuffer::new(cap), input),
    };
    let mut to = RingBuffer::new(cap);
    to.push(&vec![b'#'; junk]);
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let n = from.push(&rest[..rest.len().min(p)]);
        rest = &rest[n..];
        let all_in = rest.is_empty();
        let done = step(codec, &mut from, &mut to, all_in);
        let take = to.len().min(q);
        let mut got = vec![0u8; take];
        to.peek_into(&mut got);
        to.consume(take);
        out.extend_from_slice(&got);
        if done && to.is_empty() {
            return out.split_off(junk);
        }
    }
    panic!("no progress: cap {cap} junk {junk} p {p} q {q}");
}

fn stuff_step(s: &mut Stuffer, from: &mut RingBuffer, to: &mut RingBuffer, all_in: bool) -> bool {
    s.pump(from, to);
    all_in && from.is_empty() && s.finish_into(to)
}

fn unstuff_step(u: &mut Unstuffer, from: &mut RingBuffer, to: &mut RingBuffer, _: bool) -> bool {
    u.pump(from, to);
    u.is_done()
}

#[test]
fn stuffer_through_ring_buffers_with_the_wrap_everywhere() {
    for msg in dotty_messages() {
        let want = reference_stuff(&msg);
        for cap in 1..=9 {
            for junk in 0..cap {
                for pq in [(1, 1), (cap, 1), (1, cap), (3, 2), (cap, cap)] {
                    let got =
                        through_rings(&msg, cap, junk, pq, &mut Stuffer::default(), stuff_step);
                    assert_eq!(got, want, "{msg:?} cap {cap} junk {junk} {pq:?}");
                }
            }
        }
    }
}

#[test]
fn unstuffer_through_ring_buffers_with_the_wrap_everywhere() {
    for msg in dotty_messages() {
        let wire = reference_stuff(&msg);
        let (want, _) = reference_unstuff(&wire).unwrap();
        for cap in 1..=9 {
            for junk in 0..cap {
                for pq in [(1, 1), (cap, 1), (1, cap), (3, 2), (cap, cap)] {
                    let mut u = Unstuffer::default();
                    let got = through_rings(&wire, cap, junk, pq, &mut u, unstuff_step);
                    assert_eq!(got, want, "{wire:?} cap {cap} junk {junk} {pq:?}");
                }
            }
        }
    }
}

/// The message of issue 9: 20 000 short lines of `.`, `.x`, `..` and `a`, through a filter's
/// output buffers of the sizes the daemon uses, read by a fast and by a slow client.
#[test]
fn the_dot_heavy_message_survives_every_buffer_size() {
    let mut msg = Vec::new();
    let lines: [&[u8]; 6] = [b".", b".x", b"..", b"a", b"...x", b""];
    let mut rng = crate::testutil::Rng::new(0x5eed_0019);
    for _ in 0..20_000 {
        msg.extend_from_slice(lines[rng.below(lines.len())]);
        msg.extend_from_slice(b"\r\n");
    }
    let want = reference_stuff(&msg);
    let (back, _) = reference_unstuff(&want).unwrap();
    assert_eq!(back, msg);
    for cap in [512, 4096, 32768] {
        for pq in [(cap, cap), (cap, 7), (1000, 3000)] {
            let got = through_rings(&msg, cap, 0, pq, &mut Stuffer::default(), stuff_step);
            assert!(got == want, "stuffing: cap {cap} {pq:?}");
            let mut u = Unstuffer::default();
            let got = through_rings(&want, cap, 0, pq, &mut u, unstuff_step);
            assert!(got == msg, "un-stuffing: cap {cap} {pq:?}");
        }
    }
}
