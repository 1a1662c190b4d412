//! Every split and every output window: the same output and counters as the whole input at
//! once, for small messages at every offset and through windows of every size (0 included),
//! and for big ones at random splits.

use super::*;

/// A seeded xorshift generator, so a failure names a case that fails again.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Censors `input` cut at `cut`, through windows whose sizes follow `windows` in turn; checks
/// that any window but an empty one makes progress and that an empty one writes nothing.
/// With `passing`, the bytes [`Censor::pass`] takes go straight to the output, and the rest
/// through [`Censor::feed_until_pass`].
fn through_with(
    list: &str,
    input: &[u8],
    cut: usize,
    windows: &[usize],
    passing: bool,
) -> (Vec<u8>, Counters) {
    let mut c = censor(list);
    let mut got = Vec::new();
    let mut turn = 0;
    let mut next = || {
        turn += 1;
        windows[turn % windows.len()]
    };
    for part in [&input[..cut], &input[cut..]] {
        let mut rest = part;
        while !rest.is_empty() {
            let mut out = vec![0u8; next()];
            let passed = if passing { c.pass(rest) } else { 0 };
            got.extend_from_slice(&rest[..passed]);
            rest = &rest[passed..];
            let (i, o) = if passing {
                c.feed_until_pass(rest, &mut out)
            } else {
                c.feed(rest, &mut out)
            };
            if out.is_empty() {
                assert_eq!(o, 0, "an empty window gets nothing");
            } else {
                assert!(
                    i > 0 || o > 0 || passed > 0 || rest.is_empty(),
                    "a window of {} made no progress",
                    out.len()
                );
            }
            got.extend_from_slice(&out[..o]);
            rest = &rest[i..];
        }
    }
    while !c.is_finished() {
        let mut out = vec![0u8; next()];
        let o = c.finish(&mut out);
        assert!(
            out.is_empty() || o > 0 || c.is_finished(),
            "finish made no progress"
        );
        got.extend_from_slice(&out[..o]);
    }
    (got, c.counters())
}

/// [`through_with`] both ways; checks that they agree.
fn through(list: &str, input: &[u8], cut: usize, windows: &[usize]) -> (Vec<u8>, Counters) {
    let fed = through_with(list, input, cut, windows, false);
    let passed = through_with(list, input, cut, windows, true);
    assert_eq!(
        (String::from_utf8_lossy(&passed.0), passed.1),
        (String::from_utf8_lossy(&fed.0), fed.1),
        "{list} cut {cut} windows {windows:?}: pass and feed_until_pass differ from feed"
    );
    fed
}

/// The small messages: every rule's shape, LF and CRLF.
fn small() -> Vec<(&'static str, Vec<u8>)> {
    let msgs: [(&str, &str); 10] = [
        ("image/png", MIXED),
        ("image/*, image/png;q=0", MIXED),
        ("multipart/*", MIXED),
        ("image/gif", "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\
                       Content-Type: image/gif\n\nGIF\n--d\nContent-Type: text/plain\n\nplain\n--d--\n"),
        ("image/png", "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed;\n\
                       boundary=i\n\n--i\nContent-Type: image/png\n--i \n--o\nContent-Type: image/png\nPNG\n"),
        ("image/png", "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\
                       From x@y Mon\nContent-Type: image/png\n\nPNG\n-\n--b--\n"),
        ("text/plain", "From: a\n\nbody\n--x\n"),
        ("image/png", "Subject: x\nContent-Type: image/png"),
        ("image/png", "Content-Type: multipart/mixed; boundary=b\n--b\nContent-Type: image/png\n\
                       X: y\n--b\n--b-\n--b--\n---\n"),
        ("*/*;q=0, application/*", "Content-Type: multipart/mixed; boundary=\"x y\"\n\n\
                       --x y\nContent-Type: application/pdf\n\n%PDF\n--x y\n\nkept\n--x y--"),
    ];
    let mut all = Vec::new();
    for (list, msg) in msgs {
        all.push((list, text(msg, false)));
        all.push((list, text(msg, true)));
    }
    all
}

#[test]
fn every_split_in_windows_of_many_sizes() {
    for (list, msg) in small() {
        let want = whole(list, &msg);
        for cut in 0..=msg.len() {
            for windows in [
                &[1][..],
                &[2],
                &[3],
                &[7],
                &[0, 1],
                &[1, 0, 2],
                &[5, 0, 0, 1, 64],
                &[4096],
            ] {
                let got = through(list, &msg, cut, windows);
                assert_eq!(
                    (String::from_utf8_lossy(&got.0), got.1),
                    (String::from_utf8_lossy(&want.0), want.1),
                    "{list} cut {cut} windows {windows:?} in {:?}",
                    String::from_utf8_lossy(&msg)
                );
            }
        }
    }
}

#[test]
fn every_window_size() {
    for (list, msg) in small() {
        let want = whole(list, &msg);
        for cut in [0, msg.len() / 3, msg.len()] {
            for w in 1..=want.0.len() + 1 {
                assert_eq!(
                    through(list, &msg, cut, &[w]),
                    want,
                    "{list} cut {cut} window {w}"
                );
            }
        }
    }
}

/// A big message: parts of many kinds and sizes, long lines, lines that begin with `-`.
pub(super) fn big(rng: &mut Rng, crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut m =
        format!("Subject: big{eol}Content-Type: multipart/mixed; boundary=\"=_o\"{eol}{eol}");
    for i in 0..40 {
        let kind = [
            "image/png",
            "text/plain",
            "application/octet-stream",
            "image/jpeg",
        ][rng.below(4)];
        m += &format!("--=_o{eol}Content-Type: {kind}; name=\"p{i}\"{eol}X-Part: {i}{eol}{eol}");
        for _ in 0..rng.below(200) {
            let line: String = match rng.below(5) {
                0 => "-".repeat(rng.below(300)),
                1 => format!("--=_o{}", "x".repeat(rng.below(3))),
                2 => "A".repeat(rng.below(3000)),
                _ => "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2".to_string(),
            };
            m += &line;
            m += eol;
        }
        if rng.below(5) == 0 {
            m += &format!(
                "--=_o{eol}Content-Type: message/rfc822{eol}{eol}Subject: in{eol}\
                Content-Type: multipart/alternative; boundary=i{eol}{eol}--i{eol}\
                Content-Type: image/png{eol}{eol}PNG{eol}--i--{eol}"
            );
        }
    }
    m += &format!("--=_o--{eol}");
    m.into_bytes()
}

#[test]
fn big_messages_at_random_splits() {
    let mut rng = Rng::new(0x05ee_db16);
    for case in 0..6 {
        let msg = big(&mut rng, case % 2 == 0);
        let list = [
            "image/png",
            "image/*, text/plain",
            "application/octet-stream",
        ][case % 3];
        let want = whole(list, &msg);
        assert!(want.1.parts_censored > 0, "the case censors something");
        for _ in 0..8 {
            let mut c = censor(list);
            let mut got = Vec::new();
            let mut rest = &msg[..];
            while !rest.is_empty() {
                let chunk = &rest[..rest.len().min(1 + rng.below(9000))];
                let mut taken = 0;
                let passing = rng.below(2) == 0;
                while taken < chunk.len() {
                    if passing {
                        let p = c.pass(&chunk[taken..]);
                        got.extend_from_slice(&chunk[taken..taken + p]);
                        taken += p;
                    }
                    let mut out = vec![0u8; [0, 1, 2, 100, 4096, 65536][rng.below(6)]];
                    let (i, o) = if passing {
                        c.feed_until_pass(&chunk[taken..], &mut out)
                    } else {
                        c.feed(&chunk[taken..], &mut out)
                    };
                    got.extend_from_slice(&out[..o]);
                    taken += i;
                }
                rest = &rest[chunk.len()..];
            }
            while !c.is_finished() {
                let mut out = vec![0u8; 1 + rng.below(50)];
                let o = c.finish(&mut out);
                got.extend_from_slice(&out[..o]);
            }
            assert!(got == want.0, "case {case}: output differs");
            assert_eq!(c.counters(), want.1, "case {case}");
        }
    }
}

#[test]
fn pass_takes_a_kept_body_to_its_delimiter() {
    let body = "QUJD\n".repeat(20_000);
    let msg = format!(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/png\n\nPNG\n\
         --b\nContent-Type: application/pdf\n\n{body}--b--\nafter\n"
    );
    let msg = msg.as_bytes();
    let mut c = censor("image/png");
    let mut out = vec![0u8; 4096];
    // The top-level header block goes through a window; pass takes the empty preamble and
    // the delimiter after it.
    assert_eq!(c.pass(msg), 0, "a header block is not passed");
    let (i, o) = c.feed_until_pass(msg, &mut out);
    assert_eq!(&out[..o], &msg[..i]);
    let mut at = i + c.pass(&msg[i..]);
    assert!(msg[at..].starts_with(b"Content-Type: image/png"));
    // The censored PNG part (headers rewritten, body dropped, its delimiter owed) and the PDF
    // part's header block, through the window.
    let (i, o) = c.feed_until_pass(&msg[at..], &mut out);
    at += i;
    assert!(String::from_utf8_lossy(&out[..o]).ends_with("--b\nContent-Type: application/pdf\n\n"));
    // Then the PDF's whole body, the close delimiter and the epilogue in one pass.
    assert!(msg[at..].starts_with(b"QUJD"));
    assert_eq!(c.pass(&msg[at..]), msg.len() - at);
    assert_eq!(c.feed_until_pass(&[], &mut out), (0, 0));
}

#[test]
fn an_empty_list_passes_everything() {
    let msg = text(MIXED, true);
    let mut c = censor("");
    assert_eq!(c.pass(&msg), msg.len());
    assert_eq!(c.feed_until_pass(&msg, &mut [0u8; 64]), (0, 0));
}
