//! The `stripmime` program, end to end: its command line and exit statuses, the course's
//! cases on messages made here, a 200 MB message streamed through it (unchanged, and with its
//! big part censored) with its memory checked, broken input of every kind with its memory
//! checked, and an oracle nobody here wrote: CPython's `email` parser over random MIME trees
//! and over CPython's own test messages (tests/mime_oracle.py).

mod stripmime_support;

use std::fs::File;
use std::process::{Command, Stdio};
use stripmime_support::messages::{base64_block, cd_image_message, garbage};
use stripmime_support::{command, run, stream_through, Stream};

/// The most memory stripmime may use, whatever the input (its buffers are 64 KiB each and the
/// censor's storage under 100 KiB; the rest is the program itself).
const MEMORY_CAP_KIB: u64 = 20 * 1024;

const NOTE: &str = "Removed: %s.";

fn s(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The course's message: some text and three pictures.
const PICTURES: &str = "From: Ana <ana@example.org>\r\n\
To: Bruno <bruno@example.org>\r\n\
Subject: pictures\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"----=_Part_1\"\r\n\
\r\n\
This is a multi-part message in MIME format.\r\n\
------=_Part_1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Here they are.\r\n\
------=_Part_1\r\n\
Content-Type: image/png; name=\"a.png\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"a.png\"\r\n\
\r\n\
iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\r\n\
------=_Part_1\r\n\
Content-Type: image/jpeg; name=\"b.jpg\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////\r\n\
------=_Part_1\r\n\
Content-Type: image/gif\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7\r\n\
------=_Part_1--\r\n";

/// The part of [`PICTURES`] that holds `kind`: from its Content-Type to its body's end.
fn part_of(kind: &str) -> String {
    let start = PICTURES.find(&format!("Content-Type: {kind}")).unwrap();
    let end = start + PICTURES[start..].find("\r\n------=_Part_1").unwrap() + 2;
    PICTURES[start..end].to_string()
}

/// What a censored part of `kind` becomes with [`NOTE`] (CRLF).
fn note_part(kind: &str) -> String {
    format!(
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nRemoved: {kind}.\r\n"
    )
}

fn censored(kinds: &[&str]) -> String {
    kinds.iter().fold(PICTURES.to_string(), |msg, kind| {
        msg.replace(&part_of(kind), &note_part(kind))
    })
}

fn check(medias: &str, input: &str, want: &str) {
    let r = run(Some(medias), Some(NOTE), input.as_bytes());
    assert!(r.status.success(), "{medias}: {:?} {}", r.status, r.stderr);
    assert_eq!(r.stderr, "", "{medias}: nothing to report");
    assert_eq!(s(&r.stdout), want, "{medias}");
}

#[test]
fn course_a_type_absent_leaves_the_message_byte_identical() {
    for medias in [
        "audio/*",
        "application/pdf",
        "image/x-icon, video/*",
        "image/*;q=0",
    ] {
        check(medias, PICTURES, PICTURES);
    }
}

#[test]
fn course_image_png() {
    check("image/png", PICTURES, &censored(&["image/png"]));
}

#[test]
fn course_image_png_and_jpeg() {
    check(
        "image/png,image/jpeg",
        PICTURES,
        &censored(&["image/png", "image/jpeg"]),
    );
}

#[test]
fn course_every_image() {
    let want = censored(&["image/png", "image/jpeg", "image/gif"]);
    check("image/*", PICTURES, &want);
    // And q=0 exempts one.
    check(
        "image/*, image/gif;q=0",
        PICTURES,
        &censored(&["image/png", "image/jpeg"]),
    );
}

#[test]
fn course_every_image_in_a_forwarded_message() {
    let forward = format!(
        "From: Bruno <bruno@example.org>\r\nSubject: Fwd: pictures\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"fwd\"\r\n\r\n--fwd\r\n\
         Content-Type: text/plain\r\n\r\nSee the message below.\r\n--fwd\r\n\
         Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n{PICTURES}--fwd--\r\n"
    );
    let want = forward.replace(
        PICTURES,
        &censored(&["image/png", "image/jpeg", "image/gif"]),
    );
    check("image/*", &forward, &want);
}

#[test]
fn the_default_note_and_paragraphs() {
    let r = run(Some("image/gif"), None, PICTURES.as_bytes());
    assert!(s(&r.stdout).contains(
        "\r\n\r\nThis part of the message was removed by the mail proxy: its type (image/gif)\r\n\
         is not allowed.\r\n------=_Part_1--"
    ));
    let r = run(
        Some("image/gif"),
        Some("One %s\nTwo\n"),
        PICTURES.as_bytes(),
    );
    assert!(s(&r.stdout).contains("\r\n\r\nOne image/gif\r\n\r\nTwo\r\n------=_Part_1--"));
    let r = run(Some("image/gif"), Some("Sin imágenes"), PICTURES.as_bytes());
    assert!(s(&r.stdout).contains(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Sin imágenes\r\n"
    ));
}

#[test]
fn help_version_and_bad_arguments() {
    let out = command(None, None).arg("--help").output().unwrap();
    assert!(out.status.success());
    let usage = s(&out.stdout);
    assert!(usage.starts_with("Usage: stripmime") && usage.contains("FILTER_MEDIAS"));
    assert!(usage.contains("FILTER_MSG"));
    let out = command(None, None).arg("-v").output().unwrap();
    assert!(out.status.success() && s(&out.stdout).starts_with("stripmime "));
    let out = command(None, None)
        .arg("--bogus")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty() && s(&out.stderr).contains("--bogus"));
}

#[test]
fn a_list_that_does_not_parse_is_exit_2_before_any_output() {
    for medias in ["image", "image/png;q=2", "*/png", "image/png, text"] {
        let r = run(Some(medias), None, PICTURES.as_bytes());
        assert_eq!(r.status.code(), Some(2), "{medias}");
        assert!(r.stdout.is_empty(), "{medias}: no output");
        assert!(r.stderr.contains("FILTER_MEDIAS"), "{medias}: {}", r.stderr);
    }
    // Unset or empty: nothing is censored.
    for medias in [None, Some(""), Some(" , ")] {
        let r = run(medias, None, PICTURES.as_bytes());
        assert!(r.status.success());
        assert_eq!(r.stdout, PICTURES.as_bytes());
    }
}

#[test]
fn read_and_write_failures_are_exit_1() {
    // Standard input is a directory: reading fails.
    let out = command(Some("image/*"), None)
        .stdin(File::open("/").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(s(&out.stderr).contains("reading"), "{}", s(&out.stderr));
    // Standard output is a pipe nobody reads: writing fails.
    let mut child = command(Some("image/*"), None)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    let _ = std::io::Write::write_all(&mut stdin, PICTURES.as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(s(&out.stderr).contains("writing"), "{}", s(&out.stderr));
}

#[test]
fn parse_problems_are_reported_and_passed_through() {
    let broken = "Content-Type: multipart/mixed; boundary=never\r\n\r\n--other\r\n\
                  Content-Type: image/png\r\n\r\nPNG\r\n";
    let r = run(Some("image/png"), None, broken.as_bytes());
    assert!(r.status.success());
    assert_eq!(r.stdout, broken.as_bytes());
    assert!(
        r.stderr.contains("passed through") && r.stderr.contains("close delimiter"),
        "{}",
        r.stderr
    );
}

// ---- big messages, streamed ----------------------------------------------------------------

fn assert_streamed(what: &str, r: &stripmime_support::Streamed) {
    assert!(r.status.success(), "{what}: {:?} {}", r.status, r.stderr);
    assert_eq!(r.mismatch, None, "{what}");
    assert!(
        r.peak_kib < MEMORY_CAP_KIB,
        "{what}: peak memory {} KiB",
        r.peak_kib
    );
}

#[test]
fn course_200_mb_with_a_list_that_does_not_match_is_byte_identical() {
    let (message, _) = cd_image_message(200);
    assert!(message.len() > 200_000_000);
    let r = stream_through("image/*, audio/*", Some(NOTE), &message, &message);
    assert_streamed("200 MB unchanged", &r);
    assert_eq!(r.out_len, message.len());
    assert_eq!(r.stderr, "");
    eprintln!("200 MB unchanged: peak memory {} KiB", r.peak_kib);
}

#[test]
fn course_200_mb_with_its_cd_image_censored() {
    let (message, censored) = cd_image_message(200);
    let r = stream_through("application/x-cd-image", Some(NOTE), &message, &censored);
    assert_streamed("200 MB censored", &r);
    assert_eq!(r.out_len, censored.len());
    eprintln!("200 MB censored: peak memory {} KiB", r.peak_kib);
}

#[test]
fn broken_input_passes_through_in_fixed_memory() {
    let mib = 1 << 20;
    let open = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n";
    let png = "--b\r\nContent-Type: image/png\r\n\r\nPNG\r\n--b--\r\n";
    let png_note = "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
                    Removed: image/png.\r\n--b--\r\n";
    let line = vec![b'x'; mib];
    let nested = (0..100_000).fold(Stream::new(), |s, i| {
        s.add(format!(
            "Content-Type: multipart/mixed; boundary=n{i}\r\n\r\n--n{i}\r\n"
        ))
    });
    let cases: Vec<(&str, Stream, Stream)> = vec![
        (
            "a 64 MB line without a line end in a kept part",
            Stream::new()
                .add(open)
                .add("\r\n")
                .repeat(&line, 64)
                .add("\r\n")
                .add(png),
            Stream::new()
                .add(open)
                .add("\r\n")
                .repeat(&line, 64)
                .add("\r\n")
                .add(png_note),
        ),
        (
            "a 64 MB line in a censored part",
            Stream::new()
                .add(open)
                .add("Content-Type: image/png\r\n\r\n")
                .repeat(&line, 64)
                .add("\r\n")
                .add(png),
            Stream::new()
                .add(open)
                .add("Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
                .add("Removed: image/png.\r\n")
                .add(png_note),
        ),
        (
            "a 32 MB header block",
            Stream::new()
                .add(open)
                .add("Content-Type: image/png\r\n")
                .repeat(
                    "X-Pad: padding padding padding padding padding\r\n",
                    640_000,
                )
                .add("\r\nPNG\r\n")
                .add(png),
            Stream::new()
                .add(open)
                .add("Content-Type: image/png\r\n")
                .repeat(
                    "X-Pad: padding padding padding padding padding\r\n",
                    640_000,
                )
                .add("\r\nPNG\r\n")
                .add(png_note),
        ),
        (
            "a boundary that never comes, after 32 MB",
            Stream::new().add(open).repeat(base64_block("\r\n"), 32),
            Stream::new().add(open).repeat(base64_block("\r\n"), 32),
        ),
        (
            "100 000 nested multiparts, each with a boundary of its own",
            nested.clone().add("Content-Type: image/png\r\n\r\nPNG\r\n"),
            nested.add("Content-Type: image/png\r\n\r\nPNG\r\n"),
        ),
        (
            // Past the depth cap a multipart is not looked inside, but its delimiter `--n`
            // is the enclosing one's: each is a new part at that depth, and so is the image.
            "100 000 nested multiparts, all with the same boundary",
            Stream::new()
                .repeat(
                    "Content-Type: multipart/mixed; boundary=n\r\n\r\n--n\r\n",
                    100_000,
                )
                .add("Content-Type: image/png\r\n\r\nPNG\r\n"),
            Stream::new()
                .repeat(
                    "Content-Type: multipart/mixed; boundary=n\r\n\r\n--n\r\n",
                    100_000,
                )
                .add("Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
                .add("Removed: image/png.\r\n"),
        ),
        (
            "NUL bytes and 8-bit garbage, 16 MB",
            Stream::new()
                .add(open)
                .repeat(garbage(), 16)
                .add("\r\n")
                .add(png),
            Stream::new()
                .add(open)
                .repeat(garbage(), 16)
                .add("\r\n")
                .add(png_note),
        ),
    ];
    for (what, input, want) in cases {
        let r = stream_through("image/png", Some(NOTE), &input, &want);
        assert_streamed(what, &r);
        eprintln!("{what}: peak memory {} KiB", r.peak_kib);
    }
}

// ---- the oracle ---------------------------------------------------------------------------

#[test]
fn python_email_agrees_on_random_trees_and_cpythons_own_messages() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mime_oracle.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(stripmime_support::bin())
        .args(["--cases", "400"])
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs it)");
    let report = format!("{}{}", s(&out.stdout), s(&out.stderr));
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "the oracle found a difference:\n{report}"
    );
    assert!(report.contains("random trees"), "{report}");
}
