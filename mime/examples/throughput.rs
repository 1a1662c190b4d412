//! Measures [`mime::Censor::feed`] throughput on input it censors nothing of, in MB/s: a
//! multipart whose big part is base64 (76-byte lines, no `-` at any line start), a plain
//! text message (no boundary in force: the pass-through path), and a multipart of text
//! whose lines often start with `-`. Not a timed assertion: a figure to compare.
//!
//! `cargo run --release -p mime --example throughput [MiB] [window KiB]`

use mime::{Censor, MediaRanges, Note};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(64, |a| a.parse().expect("MiB"));
    let window: usize = args.next().map_or(256, |a| a.parse().expect("KiB")) * 1024;
    let size = mib * 1024 * 1024;
    let head = b"Content-Type: multipart/mixed; boundary=XYZ\n\n--XYZ\n\
                 Content-Type: application/x-cd-image\nContent-Transfer-Encoding: base64\n\n";
    let base64_line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n";
    let text_line = b"The quick brown fox jumps over the lazy dog, and some more text.\n";
    let dash_line = b"- a list item, or a signature separator line\n";
    let inputs: [(&str, Vec<u8>); 3] = [
        (
            "multipart, base64 part",
            message(head, &[base64_line], size),
        ),
        (
            "plain text, no MIME",
            message(b"Subject: x\n\n", &[text_line], size),
        ),
        (
            "multipart, text with dashes",
            message(head, &[text_line, dash_line], size),
        ),
    ];
    for (name, input) in &inputs {
        let mut best = f64::MAX;
        for _ in 0..5 {
            best = best.min(run(input, window));
        }
        let mbs = input.len() as f64 / best / 1e6;
        println!(
            "{name:30} {mbs:8.0} MB/s ({:.1} ms, window {} KiB)",
            best * 1e3,
            window / 1024
        );
    }
}

fn message(head: &[u8], lines: &[&[u8]], size: usize) -> Vec<u8> {
    let mut m = head.to_vec();
    while m.len() < size {
        for l in lines {
            m.extend_from_slice(l);
        }
    }
    m.extend_from_slice(b"--XYZ--\n");
    m
}

/// Censors `input` with `image/*` through an output window of `window` bytes; returns seconds.
fn run(input: &[u8], window: usize) -> f64 {
    let ranges = MediaRanges::parse("image/*").expect("ranges");
    let mut censor = Censor::new(ranges, Note::default());
    let mut out = vec![0u8; window];
    let mut sum = 0usize;
    let start = Instant::now();
    let mut rest = input;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(window)];
        let (used, written) = censor.feed(chunk, &mut out);
        sum += written;
        rest = &rest[used..];
    }
    while !censor.is_finished() {
        sum += censor.finish(&mut out);
    }
    let t = start.elapsed().as_secs_f64();
    assert_eq!(sum, input.len(), "nothing is censored");
    t
}
