//! The codecs against simple references, through windows of every size (0 included) at
//! every split, and through real ring buffers with the wrap at every offset (issue 9).

use super::super::*;
use super::unstuff;
use buffer::RingBuffer;

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

/// [`stuff_step`] through `pump_at_most`, at most 2 bytes a call; checks the limit holds.
fn stuff_step_by_two(
    s: &mut Stuffer,
    from: &mut RingBuffer,
    to: &mut RingBuffer,
    all_in: bool,
) -> bool {
    let before = from.len();
    let (taken, _) = s.pump_at_most(from, 2, to);
    assert!(taken <= 2 && taken == before - from.len(), "took {taken}");
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
fn stuffer_at_most_some_bytes_a_call_through_ring_buffers() {
    for msg in dotty_messages() {
        let want = reference_stuff(&msg);
        for cap in 1..=9 {
            for junk in 0..cap {
                for pq in [(1, 1), (cap, 1), (3, 2), (cap, cap)] {
                    let mut s = Stuffer::default();
                    let got = through_rings(&msg, cap, junk, pq, &mut s, stuff_step_by_two);
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

/// Long dot-free CRLF lines (one bare LF among them) with a dot at every offset, replacing a
/// byte or inserted: the long runs copied in one go must stop exactly where work is needed.
#[test]
fn rare_dots_in_long_runs_at_every_offset() {
    let mut body = Vec::new();
    for line in 0..5u8 {
        body.extend((0..40u8).map(|k| b'A' + (k + line) % 26));
        body.extend_from_slice(if line == 3 { b"\n" } else { b"\r\n" });
    }
    for p in 0..=body.len() {
        let mut replaced = body.clone();
        if p < body.len() {
            replaced[p] = b'.';
        }
        let mut inserted = body.clone();
        inserted.insert(p, b'.');
        for msg in [replaced, inserted] {
            let want = reference_stuff(&msg);
            let cuts = [0, p.saturating_sub(1), p, p + 1, msg.len() / 2, msg.len()];
            for cut in cuts.map(|c| c.min(msg.len())) {
                for w in [1, 2, 3, 5, 41, 42, 43, 64, 1000] {
                    assert_eq!(stuff_through(&msg, cut, &[w]), want, "{p} {cut} {w}");
                }
            }
            let mut wire = want.clone();
            let (want_msg, end) = reference_unstuff(&wire).expect("stuffed has a terminator");
            wire.extend_from_slice(b"+OK next\r\n");
            let cuts = [0, p, p + 1, p + 2, wire.len() / 2, wire.len()];
            for cut in cuts.map(|c| c.min(wire.len())) {
                for w in [1, 2, 3, 5, 41, 42, 43, 64, 1000] {
                    let (got, taken) = unstuff(&wire, cut, w);
                    assert_eq!((got, taken), (want_msg.clone(), end), "{p} {cut} {w}");
                }
            }
        }
    }
}
