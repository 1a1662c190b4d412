//! Throughput of the codecs over ~64 MiB bodies, release mode:
//! `cargo test --release --bin pop3filter -- --ignored --nocapture dotstuff_throughput`.

use super::super::*;
use std::hint::black_box;
use std::time::Instant;

const SIZE: usize = 64 << 20;
const WINDOW: usize = 64 << 10;

/// CRLF lines of 76 base64 characters, no dots.
fn base64_body() -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = crate::testutil::Rng::new(0x5eed_0b64);
    let mut body = Vec::with_capacity(SIZE + 80);
    while body.len() < SIZE {
        for _ in 0..76 {
            body.push(alphabet[rng.below(alphabet.len())]);
        }
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// CRLF text lines of varied length with dots inside, one line in 16 starting with a dot.
fn text_body() -> Vec<u8> {
    let mut rng = crate::testutil::Rng::new(0x5eed_7e47);
    let mut body = Vec::with_capacity(SIZE + 200);
    let mut n = 0usize;
    while body.len() < SIZE {
        n += 1;
        if n & 15 == 0 {
            body.push(b'.');
        }
        let len = 20 + rng.below(60);
        for k in 0..len {
            body.push(match k % 13 {
                12 => b' ',
                7 if n % 3 == 1 => b'.',
                _ => b'a' + (k % 26) as u8,
            });
        }
        body.extend_from_slice(b"\r\n");
    }
    body
}

fn stuff_all(msg: &[u8], out: &mut [u8]) -> usize {
    let mut s = Stuffer::default();
    let mut total = 0;
    for part in msg.chunks(WINDOW) {
        let mut rest = part;
        while !rest.is_empty() {
            let (i, o) = s.encode(rest, out);
            rest = &rest[i..];
            total += black_box(&out[..o]).len();
        }
    }
    total + s.finish(out)
}

fn unstuff_all(wire: &[u8], out: &mut [u8]) -> usize {
    let mut u = Unstuffer::default();
    let mut total = 0;
    for part in wire.chunks(WINDOW) {
        let mut rest = part;
        while !rest.is_empty() && !u.is_done() {
            let (i, o) = u.decode(rest, out);
            rest = &rest[i..];
            total += black_box(&out[..o]).len();
        }
    }
    assert!(u.is_done());
    total
}

fn rate(bytes: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    bytes as f64 / best / 1e6
}

#[test]
#[ignore]
fn dotstuff_throughput() {
    let mut out = vec![0u8; WINDOW];
    for (name, msg) in [("base64", base64_body()), ("text", text_body())] {
        let mut wire = vec![0u8; msg.len() * 2 + 8];
        let mut s = Stuffer::default();
        let (i, mut n) = s.encode(&msg, &mut wire);
        assert_eq!(i, msg.len());
        n += s.finish(&mut wire[n..]);
        assert!(s.is_finished());
        wire.truncate(n);
        assert_eq!(stuff_all(&msg, &mut out), wire.len());
        assert_eq!(unstuff_all(&wire, &mut out), msg.len());
        let st = rate(msg.len(), || stuff_all(&msg, &mut out));
        let un = rate(wire.len(), || unstuff_all(&wire, &mut out));
        println!("dotstuff_throughput {name:6}: Stuffer {st:8.0} MB/s, Unstuffer {un:8.0} MB/s");
    }
}
