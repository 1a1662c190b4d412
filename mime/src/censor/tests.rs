//! Tests of the censor: what is censored and how, with exact expected bytes (here), MIME
//! syntax rule by rule (`syntax.rs`), every split and window size against the whole-input
//! reference (`splits.rs`), and broken or hostile input (`broken.rs`).

mod broken;
mod splits;
mod syntax;

use super::*;

/// The note the tests use: short, with the type in it.
pub(super) const NOTE: &str = "[removed %s]";

/// A censor for `list` with [`NOTE`].
pub(super) fn censor(list: &str) -> Censor {
    Censor::new(MediaRanges::parse(list).unwrap(), Note::new([NOTE]))
}

/// The reference: the whole input at once into a window large enough for anything.
pub(super) fn whole(list: &str, input: &[u8]) -> (Vec<u8>, Counters) {
    let mut c = censor(list);
    let mut out = vec![0u8; input.len() * 2 + 4096];
    let (used, mut n) = c.feed(input, &mut out);
    assert_eq!(used, input.len(), "a large window takes all the input");
    while !c.is_finished() {
        n += c.finish(&mut out[n..]);
    }
    out.truncate(n);
    (out, c.counters())
}

/// Text with LF line ends as bytes, or with CRLF when `crlf`.
pub(super) fn text(s: &str, crlf: bool) -> Vec<u8> {
    if crlf {
        s.replace('\n', "\r\n").into_bytes()
    } else {
        s.as_bytes().to_vec()
    }
}

/// Checks the output of `list` on `input` (both written with LF; run with LF and CRLF).
pub(super) fn check(list: &str, input: &str, want: &str) -> Counters {
    let mut counters = None;
    for crlf in [false, true] {
        let (got, c) = whole(list, &text(input, crlf));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&text(want, crlf)),
            "list {list:?}, crlf {crlf}"
        );
        counters = Some(c);
    }
    counters.unwrap()
}

/// Checks that `list` leaves `input` byte-identical.
pub(super) fn unchanged(list: &str, input: &str) -> Counters {
    check(list, input, input)
}

/// What a censored body part of `kind` becomes, `extra` being its kept fields.
pub(super) fn note_part(extra: &str, kind: &str) -> String {
    format!(
        "{extra}Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed {kind}]\n"
    )
}

pub(super) const MIXED: &str = "From: a@example.org\n\
Subject: pictures\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"==b1\"\n\
\n\
preamble\n\
--==b1\n\
Content-Type: text/plain\n\
\n\
Hello.\n\
--==b1\n\
Content-Type: image/png; name=\"a.png\"\n\
Content-Disposition: attachment; filename=\"a.png\"\n\
Content-Transfer-Encoding: base64\n\
Content-ID: <a@b>\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
\n\
iVBORw0KGgo=\n\
--==b1\n\
Content-Type: image/jpeg\n\
\n\
/9j/4AAQ\n\
--==b1--\n\
epilogue\n";

#[test]
fn a_type_absent_changes_nothing() {
    for list in [
        "",
        "audio/*",
        "image/gif",
        "application/pdf, video/*",
        "image/png;q=0",
    ] {
        let c = unchanged(list, MIXED);
        assert_eq!(c, Counters::default(), "{list}");
    }
}

#[test]
fn one_type() {
    let want = MIXED.replace(
        "Content-Type: image/png; name=\"a.png\"\n\
         Content-Disposition: attachment; filename=\"a.png\"\n\
         Content-Transfer-Encoding: base64\n\
         Content-ID: <a@b>\n\
         Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
         \n\
         iVBORw0KGgo=\n",
        &note_part("Content-ID: <a@b>\n", "image/png"),
    );
    let c = check("image/png", MIXED, &want);
    assert_eq!(
        c,
        Counters {
            parts_censored: 1,
            messages_censored: 1,
            problems: 0
        }
    );
}

#[test]
fn two_types_and_a_wildcard_keep_every_delimiter() {
    let want = MIXED
        .replace(
            "Content-Type: image/png; name=\"a.png\"\n\
             Content-Disposition: attachment; filename=\"a.png\"\n\
             Content-Transfer-Encoding: base64\n\
             Content-ID: <a@b>\n\
             Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\
             \n\
             iVBORw0KGgo=\n",
            &note_part("Content-ID: <a@b>\n", "image/png"),
        )
        .replace(
            "Content-Type: image/jpeg\n\n/9j/4AAQ\n",
            &note_part("", "image/jpeg"),
        );
    for list in ["image/png,image/jpeg", "image/*", "IMAGE/*, text/html"] {
        let c = check(list, MIXED, &want);
        assert_eq!(c.parts_censored, 2);
        assert_eq!(c.messages_censored, 1);
    }
    // q=0 exempts the PNG.
    let c = check(
        "image/*, image/png;q=0",
        MIXED,
        &MIXED.replace(
            "Content-Type: image/jpeg\n\n/9j/4AAQ\n",
            &note_part("", "image/jpeg"),
        ),
    );
    assert_eq!(c.parts_censored, 1);
}

#[test]
fn a_forwarded_message_is_looked_inside() {
    let inner = "From: b@example.org\nSubject: pic\nContent-Type: image/gif\n\nR0lGODlh\n";
    let msg = format!(
        "Subject: fwd\nContent-Type: multipart/mixed; boundary=out\n\n--out\n\nsee below\n\
         --out\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n{inner}--out--\n"
    );
    // The message inside is a message: its Content-* fields go, the others stay.
    let want = msg.replace(
        inner,
        "From: b@example.org\nSubject: pic\nContent-Type: text/plain\n\
         Content-Transfer-Encoding: 7bit\n\n[removed image/gif]\n",
    );
    check("image/*", &msg, &want);
    // Censoring message/rfc822 replaces the whole forwarded message with one note.
    let want = msg.replace(
        &format!("Content-Type: message/rfc822\nContent-Disposition: inline\n\n{inner}"),
        &note_part("", "message/rfc822"),
    );
    let c = check("message/rfc822", &msg, &want);
    assert_eq!(c.parts_censored, 1);
}

#[test]
fn the_top_level_message_itself() {
    let msg = "From: a\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\
               Content-Description: a picture\nMIME-Version: 1.0\n\niVBOR\nw0KG\n";
    let want = "From: a\nMIME-Version: 1.0\nContent-Type: text/plain\n\
                Content-Transfer-Encoding: 7bit\n\n[removed image/png]\n";
    check("image/png", msg, want);
    // A message without Content-Type is text/plain, without MIME-Version too.
    check("text/plain", "Subject: hi\n\nbody\n", "Subject: hi\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed text/plain]\n");
    // A whole multipart message censored: its parts are gone.
    let c = check(
        "multipart/*",
        MIXED,
        "From: a@example.org\nSubject: pictures\nMIME-Version: 1.0\nContent-Type: text/plain\n\
         Content-Transfer-Encoding: 7bit\n\n[removed multipart/mixed]\n",
    );
    assert_eq!(c.parts_censored, 1);
}

#[test]
fn a_censored_multipart_is_one_note() {
    let msg = "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nhi\n\
               --o\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\ntext\n--i\n\
               Content-Type: text/html\n\n<p>html</p>\n--i--\n--o--\n";
    let want = format!(
        "Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: text/plain\n\nhi\n--o\n{}--o--\n",
        note_part("", "multipart/alternative")
    );
    let c = check("multipart/alternative", msg, &want);
    assert_eq!((c.parts_censored, c.problems), (1, 0));
    // Inside it, only the html part.
    let want = msg.replace(
        "Content-Type: text/html\n\n<p>html</p>\n",
        &note_part("", "text/html"),
    );
    check("text/html", msg, &want);
}

#[test]
fn reset_serves_the_next_message() {
    let mut c = censor("image/png");
    let mut out = vec![0u8; 4096];
    for _ in 0..3 {
        let (_, mut n) = c.feed(MIXED.as_bytes(), &mut out);
        n += c.finish(&mut out[n..]);
        assert!(c.is_finished());
        assert_eq!(c.counters().parts_censored, 1);
        assert_eq!(out[..n].to_vec(), whole("image/png", MIXED.as_bytes()).0);
        c.reset();
    }
}
