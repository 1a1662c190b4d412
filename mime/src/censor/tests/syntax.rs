//! MIME syntax, rule by rule: Content-Type's shapes, RFC 2231 boundaries, defaults, exact
//! delimiters, nesting, message parts, header blocks that end oddly, notes and line ends.

use super::*;

#[test]
fn content_type_in_every_shape() {
    for field in [
        "Content-Type: image/png",
        "content-type:image/png",
        "CONTENT-TYPE:   IMAGE/PNG",
        "Content-Type: (a comment) image/png (another); name=x",
        "Content-Type:\n image/png;\n\tname=\"x\"",
        "Content-type: image\n /png",
    ] {
        let msg = format!(
            "Content-Type: multipart/mixed;\n boundary=\"b\"\n\n--b\n{field}\nX-Keep: yes\n\nPNG\n--b--\n"
        );
        let want = format!(
            "Content-Type: multipart/mixed;\n boundary=\"b\"\n\n--b\n{}--b--\n",
            note_part("X-Keep: yes\n", "image/png")
        );
        check("image/png", &msg, &want);
    }
}

#[test]
fn rfc2231_boundaries_and_encoded_words() {
    for ct in [
        "multipart/mixed; boundary*0=\"ab\"; boundary*1=\"cd\"",
        "multipart/mixed; boundary*1=cd; boundary*0=ab",
        "multipart/mixed; boundary*=us-ascii'en'ab%63d",
        "multipart/mixed;\n boundary*0*=''a%62;\n boundary*1=cd",
    ] {
        let msg =
            format!("Content-Type: {ct}\n\n--abcd\nContent-Type: image/png\n\nPNG\n--abcd--\n");
        let want = format!(
            "Content-Type: {ct}\n\n--abcd\n{}--abcd--\n",
            note_part("", "image/png")
        );
        check("image/png", &msg, &want);
    }
    // An encoded word is a boundary like any other: not decoded.
    let msg = "Content-Type: multipart/mixed; boundary=\"=?utf-8?q?b?=\"\n\n--b\n\
               Content-Type: image/png\n\nPNG\n--b--\n";
    let c = unchanged("image/png", msg);
    assert_eq!(c.problems, 1, "the multipart never closes");
    let msg = msg.replace("--b", "--=?utf-8?q?b?=");
    let want = msg.replace(
        "Content-Type: image/png\n\nPNG\n",
        &note_part("", "image/png"),
    );
    check("image/png", &msg, &want);
}

#[test]
fn defaults_plain_and_digest() {
    // No Content-Type: text/plain; an invalid one: text/plain too (and a problem).
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nplain\n--b\n\
               Content-Type: garbage\n\nbad\n--b--\n";
    let want = format!(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\n{}--b\n{}--b--\n",
        note_part("", "text/plain"),
        note_part("", "text/plain")
    );
    let c = check("text/plain", msg, &want);
    assert_eq!((c.parts_censored, c.problems), (2, 1));
    // In a digest, a part without Content-Type is a message/rfc822, and is looked inside.
    let msg = "Content-Type: multipart/digest; boundary=d\n\n--d\n\n\
               Subject: one\nContent-Type: image/gif\n\nGIF\n--d\nContent-Type: text/plain\n\nplain\n--d--\n";
    let want = msg.replace(
        "Content-Type: image/gif\n\nGIF\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/gif]\n",
    );
    check("image/gif", msg, &want);
    let want = msg.replace(
        "\nSubject: one\nContent-Type: image/gif\n\nGIF\n",
        &note_part("", "message/rfc822"),
    );
    check("message/rfc822", msg, &want);
}

#[test]
fn delimiters_match_exactly() {
    // Trailing spaces and tabs are allowed; anything else after the boundary is body text.
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b \t\nContent-Type: image/png\n\n\
               PNG\n--bx\n--b \n-- b\n--B\nmore\n--b-- \n";
    let want = "Content-Type: multipart/mixed; boundary=b\n\n--b \t\nContent-Type: text/plain\n\
                Content-Transfer-Encoding: 7bit\n\n[removed image/png]\n--b-- \n";
    // `--b ` opened a part without Content-Type (text/plain, kept).
    let want_text_kept = want.replace(
        "[removed image/png]\n--b-- \n",
        "[removed image/png]\n--b \n-- b\n--B\nmore\n--b-- \n",
    );
    check("image/png", msg, &want_text_kept);
}

#[test]
fn preamble_epilogue_and_nesting() {
    let msg = "Content-Type: multipart/mixed; boundary=\"o\"\n\npre --o not\n--o\n\
               Content-Type: multipart/related; boundary=\"i\"\n\nin-pre\n--i\n\
               Content-Type: image/png\n\nPNG\n--i--\nin-epi\n--o\n\
               Content-Type: image/png\n\nPNG2\n--o--\nepi\n--o\n";
    let want = msg
        .replace(
            "Content-Type: image/png\n\nPNG\n",
            &note_part("", "image/png"),
        )
        .replace(
            "Content-Type: image/png\n\nPNG2\n",
            &note_part("", "image/png"),
        );
    let c = check("image/png", msg, &want);
    assert_eq!((c.parts_censored, c.problems), (2, 0));
}

#[test]
fn a_truncated_inner_multipart_ends_at_an_outer_delimiter() {
    let msg = "Content-Type: multipart/mixed; boundary=o\n\n--o\n\
               Content-Type: multipart/mixed; boundary=i\n\n--i\nContent-Type: image/png\n\nPNG\n\
               --o\nContent-Type: image/png\n\nPNG2\n--o--\n";
    let want = msg
        .replace(
            "Content-Type: image/png\n\nPNG\n",
            &note_part("", "image/png"),
        )
        .replace(
            "Content-Type: image/png\n\nPNG2\n",
            &note_part("", "image/png"),
        );
    let c = check("image/png", msg, &want);
    assert_eq!((c.parts_censored, c.problems), (2, 1));
    // And at the end of input, with the outer one unclosed too.
    let cut = &msg[..msg.find("--o\nContent-Type: image/png").unwrap()];
    let want = cut.replace(
        "Content-Type: image/png\n\nPNG\n",
        &note_part("", "image/png"),
    );
    let c = check("image/png", cut, &want);
    assert_eq!((c.parts_censored, c.problems), (1, 2));
}

#[test]
fn message_parts_looked_inside_or_not() {
    let inner = "Content-Type: image/png\n\nPNG\n";
    let censored_inner =
        "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/png]\n";
    for (ct, looked) in [
        ("message/rfc822", true),
        ("message/global", true),
        ("message/rfc822\nContent-Transfer-Encoding: 8bit", true),
        ("message/global\nContent-Transfer-Encoding: binary", true),
        ("message/partial; id=x; number=1", false),
        ("message/external-body", false),
        ("message/rfc822\nContent-Transfer-Encoding: base64", false),
        (
            "message/global\nContent-Transfer-Encoding: quoted-printable",
            false,
        ),
    ] {
        let msg = format!("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: {ct}\n\n{inner}--b--\n");
        let want = if looked {
            msg.replace(inner, censored_inner)
        } else {
            msg.clone()
        };
        let c = check("image/png", &msg, &want);
        let encoded = ct.contains("base64") || ct.contains("quoted");
        assert_eq!(c.problems, u64::from(encoded), "{ct}");
    }
}

#[test]
fn header_blocks_ended_without_a_blank_line() {
    // By a delimiter: the part's body is empty.
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/png\n--b\n\
               Content-Type: image/png\nX-A: 1\n--b--\n";
    let want = format!(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\n{}--b\n{}--b--\n",
        note_part("", "image/png"),
        note_part("X-A: 1\n", "image/png")
    );
    check("image/png", msg, &want);
    // By a line that is no field: it is the body's first line.
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/png\nPNG data\n--b--\n";
    let want = format!(
        "Content-Type: multipart/mixed; boundary=b\n\n--b\n{}--b--\n",
        note_part("", "image/png")
    );
    check("image/png", msg, &want);
    // A multipart whose first delimiter follows its fields at once.
    let msg =
        "Content-Type: multipart/mixed; boundary=b\n--b\nContent-Type: image/png\n\nPNG\n--b--\n";
    let want = msg.replace(
        "Content-Type: image/png\n\nPNG\n",
        &note_part("", "image/png"),
    );
    check("image/png", msg, &want);
    // A message/rfc822 whose message starts with an mbox From line right after the fields.
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\
               From x@y Mon Jan  1 00:00:00 2024\nContent-Type: image/png\n\nPNG\n--b--\n";
    let want = msg.replace(
        "Content-Type: image/png\n\nPNG\n",
        "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/png]\n",
    );
    check("image/png", msg, &want);
    // At the end of input.
    check("image/png", "Subject: x\nContent-Type: image/png", "Subject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\n[removed image/png]\n");
}

#[test]
fn a_note_that_is_not_ascii_and_several_paragraphs() {
    let mut c = Censor::new(
        MediaRanges::parse("image/*").unwrap(),
        Note::new(["Quitado: %s.", "Segundo párrafo."]),
    );
    let msg = b"Content-Type: image/png\r\n\r\nPNG\r\n";
    let mut out = vec![0u8; 512];
    let (_, mut n) = c.feed(msg, &mut out);
    n += c.finish(&mut out[n..]);
    assert!(c.is_finished());
    assert_eq!(
        String::from_utf8_lossy(&out[..n]),
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Quitado: image/png.\r\n\r\nSegundo párrafo.\r\n"
    );
}

#[test]
fn line_ends_kept_as_they_come() {
    // Mixed line ends: every byte outside the censored part stays; the note follows the
    // line end of its own header block.
    let msg =
        b"Content-Type: multipart/mixed; boundary=b\r\n\n--b\nContent-Type: image/png\r\n\r\n\
                PNG\n--b\r\nX: y\n\nz\r\n--b--\n"
            .to_vec();
    let want = b"Content-Type: multipart/mixed; boundary=b\r\n\n--b\nContent-Type: text/plain\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\n[removed image/png]\r\n--b\r\nX: y\n\nz\r\n--b--\n";
    assert_eq!(
        String::from_utf8_lossy(&whole("image/png", &msg).0),
        String::from_utf8_lossy(want)
    );
}
