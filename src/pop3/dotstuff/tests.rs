//! Tests of the dot-stuffing codecs: split input, output windows of every size, real ring buffers.

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

mod reference;
mod throughput;

/// The block scan stops where the line scan alone would, wherever the LFs, CRs and dots fall
/// around the block edges.
#[test]
fn plain_run_block_scan_matches_line_scan() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"\r\n.a";
    for len in 0..200 {
        for _ in 0..200 {
            let window: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    // Mostly CRLF-safe bytes, so runs reach past several blocks.
                    match seed % 64 {
                        0 => alphabet[(seed >> 8) as usize % 4],
                        1..=8 => b'\r',
                        _ => b'x',
                    }
                })
                .collect();
            // Turn each "\r" into "\r\n" often enough that LFs are mostly preceded by CR.
            let window: Vec<u8> = window
                .iter()
                .flat_map(|&b| {
                    if b == b'\r' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect();
            for after_cr in [false, true] {
                assert_eq!(
                    plain_run(&window, after_cr),
                    line_run(&window, after_cr, 0),
                    "{window:?} after_cr={after_cr}"
                );
            }
        }
    }
}
