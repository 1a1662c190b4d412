//! Broken and hostile input: it passes through, is counted as a problem, never panics, and
//! never makes the censor hold more than its fixed storage.

use super::splits::Rng;
use super::*;
use crate::{KEPT_PROBLEMS, MAX_DEPTH};

/// The most storage a censor may hold with [`NOTE`], whatever the input.
fn cap() -> usize {
    let fresh = censor("image/png").footprint();
    fresh + 2 * MAX_BOUNDARY + NOTE.len() + 64
}

/// Censors `input` in chunks of `chunk` bytes through a window of `window` bytes, checking
/// the storage after every call; returns the output, the counters and the problems taken.
fn stream(
    list: &str,
    input: &[u8],
    chunk: usize,
    window: usize,
) -> (Vec<u8>, Counters, Vec<Problem>) {
    let mut c = censor(list);
    let (mut got, mut problems) = (Vec::new(), Vec::new());
    let mut out = vec![0u8; window];
    for piece in input.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (i, o) = c.feed(rest, &mut out);
            got.extend_from_slice(&out[..o]);
            rest = &rest[i..];
            assert!(c.footprint() <= cap(), "storage grew to {}", c.footprint());
            problems.extend(std::iter::from_fn(|| c.take_problem()));
        }
    }
    while !c.is_finished() {
        let o = c.finish(&mut out);
        got.extend_from_slice(&out[..o]);
    }
    problems.extend(std::iter::from_fn(|| c.take_problem()));
    (got, c.counters(), problems)
}

fn kinds(problems: &[Problem]) -> Vec<ProblemKind> {
    problems.iter().map(|p| p.kind).collect()
}

/// A multipart whose first part is `first`, then an image part that must still be censored.
fn with_image_after(first: &str) -> (String, String) {
    let head = "Content-Type: multipart/mixed; boundary=b\n\n--b\n";
    let tail = "--b\nContent-Type: image/png\n\nPNG\n--b--\n";
    let note = "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/png]\n--b--\n";
    (
        format!("{head}{first}{tail}"),
        format!("{head}{first}{note}"),
    )
}

#[test]
fn a_header_block_past_the_cap_passes_through() {
    let fields = "X-Pad: ".to_string() + &"p".repeat(70) + "\n";
    let first = format!(
        "Content-Type: image/png\n{}\nPNG\n",
        fields.repeat(MAX_HEADER / 78 + 2)
    );
    let (msg, want) = with_image_after(&first);
    for (chunk, window) in [(msg.len(), 1 << 20), (1, 1), (4096, 3), (100_000, 7)] {
        let (got, c, problems) = stream("image/png", msg.as_bytes(), chunk, window);
        assert!(got == want.as_bytes(), "chunk {chunk} window {window}");
        assert_eq!((c.parts_censored, c.problems), (1, 1));
        assert_eq!(kinds(&problems), [ProblemKind::HeaderTooLong]);
        assert_eq!(
            problems[0].offset,
            msg.find("Content-Type: image/png").unwrap() as u64
        );
    }
    // One line longer than the cap, and a candidate delimiter cut by the cap.
    let first = format!("X-Long: {}\n\nbody\n", "l".repeat(MAX_HEADER * 2));
    let (msg, want) = with_image_after(&first);
    let (got, c, _) = stream("image/png", msg.as_bytes(), 5000, 4096);
    assert!(got == want.as_bytes());
    assert_eq!(c.problems, 1);
    let first = format!(
        "X-Pad: {}\n--b\nContent-Type: image/png\n\nPNG\n",
        "p".repeat(MAX_HEADER - 10)
    );
    let (msg, _) = with_image_after(&first);
    let (got, c, _) = stream("image/png", msg.as_bytes(), 3, 5);
    assert_eq!(
        c.parts_censored, 2,
        "the delimiter cut by the cap still counts"
    );
    assert_eq!(got, whole("image/png", msg.as_bytes()).0);
}

#[test]
fn nesting_past_the_cap_is_not_looked_inside() {
    let depth = MAX_DEPTH + 8;
    let mut msg = String::new();
    for d in 0..depth {
        msg += &format!("Content-Type: multipart/mixed; boundary=b{d}\n\n--b{d}\n");
    }
    msg += "Content-Type: image/png\n\nPNG\n";
    for d in (0..depth).rev() {
        msg += &format!("--b{d}--\n");
        if d == 2 {
            msg += "--b1\nContent-Type: image/png\n\nPNG\n";
        }
    }
    let (got, c, problems) = stream("image/png", msg.as_bytes(), 7, 11);
    let want = msg.replacen(
        "--b1\nContent-Type: image/png\n\nPNG\n",
        "--b1\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/png]\n",
        1,
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "the deep image stays, the shallow one goes"
    );
    assert_eq!(kinds(&problems), [ProblemKind::TooDeep]);
    assert_eq!(c.parts_censored, 1);
}

#[test]
fn boundaries_missing_too_long_or_never_coming() {
    let long = "x".repeat(MAX_BOUNDARY + 1);
    for (ct, kind) in [
        ("multipart/mixed".to_string(), ProblemKind::NoBoundary),
        (
            "multipart/mixed; boundary=\"\"".to_string(),
            ProblemKind::NoBoundary,
        ),
        (
            format!("multipart/mixed; boundary={long}"),
            ProblemKind::BoundaryTooLong,
        ),
        (
            "multipart/mixed; boundary=never".to_string(),
            ProblemKind::Unterminated,
        ),
    ] {
        let msg =
            format!("Content-Type: {ct}\n\n--{long}\nContent-Type: image/png\n\nPNG\n--{long}--\n");
        let (got, c, problems) = stream("image/png", msg.as_bytes(), 13, 17);
        assert!(got == msg.as_bytes(), "{ct}: passed through");
        assert_eq!(kinds(&problems), [kind], "{ct}");
        assert_eq!(c.parts_censored, 0);
    }
    // At the cap it works.
    let at = "y".repeat(MAX_BOUNDARY);
    let msg = format!("Content-Type: multipart/mixed; boundary={at}\n\n--{at}\nContent-Type: image/png\n\nPNG\n--{at}--\n");
    assert_eq!(
        stream("image/png", msg.as_bytes(), 13, 17).1.parts_censored,
        1
    );
}

#[test]
fn a_long_media_type_is_cut_in_the_note() {
    let kind = "x".repeat(MAX_HEADER / 2);
    let msg = format!("Content-Type: image/{kind}\n\nbody\n");
    let (got, c, _) = stream("image/*", msg.as_bytes(), 1000, 1000);
    assert_eq!(c.parts_censored, 1);
    let shown = format!("image/{}", &kind[..MAX_BOUNDARY - 6]);
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!(
            "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed\n{shown}]\n"
        )
    );
}

#[test]
fn nul_bytes_and_8bit_garbage() {
    let first = "Content-Type: text/plain; charset=\"\u{0}\u{ff}\"\nX-\u{0}: \u{e9}\u{0}\n\n\u{0}\u{0}\u{ff}\u{fe}\n";
    let (msg, want) = with_image_after(first);
    let (got, c, _) = stream("image/png", msg.as_bytes(), 3, 2);
    assert!(got == want.as_bytes());
    assert_eq!(c.parts_censored, 1);
    // Raw bytes that are not UTF-8 anywhere.
    let mut raw = b"Content-Type: multipart/mixed; boundary=\xff\xfe\n\n--\xff\xfe\n".to_vec();
    raw.extend_from_slice(b"Content-Type: image/\xe9png\n\n\x00\x01\x02\n--\xff\xfe\nContent-Type: image/png\n\n\x80\n--\xff\xfe--\n");
    let (got, c, problems) = stream("image/png", &raw, 5, 3);
    assert_eq!(c.parts_censored, 1);
    assert_eq!(kinds(&problems), [ProblemKind::InvalidContentType]);
    assert_eq!(got, whole("image/png", &raw).0);
    assert!(got.starts_with(&raw[..raw.len() - 30]));
}

#[test]
fn huge_lines_in_dropped_and_copied_bodies() {
    let first = format!(
        "Content-Type: image/png\n\n{}\n-{}\n",
        "A".repeat(3 << 20),
        "-".repeat(1 << 20)
    );
    let (msg, _) = with_image_after(&first);
    let (got, c, _) = stream("image/png", msg.as_bytes(), 65536, 32768);
    assert_eq!(c.parts_censored, 2);
    assert!(got.len() < 600, "the big body was dropped: {}", got.len());
    let (got, c, _) = stream("text/html", msg.as_bytes(), 65536, 32768);
    assert!(got == msg.as_bytes());
    assert_eq!(c, Counters::default());
}

#[test]
fn problems_are_counted_past_the_few_kept() {
    let part = "--b\nContent-Type: bad\n\nx\n";
    let msg = format!(
        "Content-Type: multipart/mixed; boundary=b\n\n{}--b--\n",
        part.repeat(100)
    );
    let (_, c, _) = stream("image/png", msg.as_bytes(), msg.len(), 1 << 16);
    assert_eq!(c.problems, 100);
    let mut censor = censor("image/png");
    let mut out = vec![0u8; 1 << 16];
    censor.feed(msg.as_bytes(), &mut out);
    let kept: Vec<Problem> = std::iter::from_fn(|| censor.take_problem()).collect();
    assert_eq!(kept.len(), KEPT_PROBLEMS);
    assert!(
        kept[0].to_string().contains("invalid Content-Type"),
        "{}",
        kept[0]
    );
}

/// Random bytes shaped like MIME: fields, boundaries, delimiters, nesting, garbage.
fn soup(rng: &mut Rng) -> Vec<u8> {
    const PIECES: [&[u8]; 22] = [
        b"Content-Type: multipart/mixed; boundary=a\n",
        b"Content-Type: multipart/digest; boundary=\"b\"\r\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Type: image/png\n",
        b"Content-Type: text/plain\r\n",
        b"Content-Type: (x\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Disposition: attachment\n",
        b"\n",
        b"\r\n",
        b"--a\n",
        b"--a--\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"-",
        b" folded\n",
        b"From x\n",
        b"body text\n",
        b"\x00\xff\r",
        b":\n",
        b"X: y",
        b"--a",
    ];
    let n = rng.below(40);
    (0..n)
        .flat_map(|_| PIECES[rng.below(PIECES.len())].to_vec())
        .collect()
}

#[test]
fn random_soup_never_panics_and_splits_agree() {
    let mut rng = Rng::new(0x0b20_ce11);
    for case in 0..3000 {
        let msg = soup(&mut rng);
        let list = [
            "image/png",
            "multipart/digest",
            "message/*",
            "text/plain",
            "*/*",
            "x/none",
        ][case % 6];
        let want = whole(list, &msg);
        if list == "x/none" {
            assert!(
                want.0 == msg,
                "case {case}: nothing censored, nothing changed"
            );
        }
        let (chunk, window) = (1 + rng.below(8), 1 + rng.below(8));
        let got = stream(list, &msg, chunk, window);
        assert!(
            (&got.0, got.1) == (&want.0, want.1),
            "case {case} {list} chunk {chunk} window {window}: {:?}",
            String::from_utf8_lossy(&msg)
        );
    }
}
