//! Tests of Content-Type and Content-Transfer-Encoding parsing on the shapes real mail has.

use super::*;

fn mt(value: &str) -> Option<(String, String)> {
    media_type(value.as_bytes()).map(|m| {
        (
            String::from_utf8_lossy(m.kind).into_owned(),
            String::from_utf8_lossy(m.subtype).into_owned(),
        )
    })
}

fn b(value: &str) -> Result<String, BoundaryError> {
    let mut out = Vec::new();
    boundary(value.as_bytes(), &mut out).map(|()| String::from_utf8_lossy(&out).into_owned())
}

fn pair(k: &str, s: &str) -> Option<(String, String)> {
    Some((k.to_string(), s.to_string()))
}

#[test]
fn media_types_in_every_shape() {
    assert_eq!(mt(" text/plain\r\n"), pair("text", "plain"));
    assert_eq!(mt("image/PNG"), pair("image", "PNG"));
    assert_eq!(mt("IMAGE/png; name=\"a.png\""), pair("IMAGE", "png"));
    assert_eq!(mt("(c) image (d)/ (e) png (f);x=y"), pair("image", "png"));
    assert_eq!(mt("\r\n image/png\r\n ;\r\n\tname=x"), pair("image", "png"));
    assert_eq!(mt("multipart/mixed;boundary=x"), pair("multipart", "mixed"));
    assert_eq!(
        mt("application/vnd.ms-excel"),
        pair("application", "vnd.ms-excel")
    );
}

#[test]
fn invalid_media_types() {
    for v in [
        "",
        " ",
        "text",
        "text/",
        "/plain",
        "text/plain garbage",
        "text plain",
        "\"text/plain\"",
        "=?utf-8?q?image/png?=",
        "t\u{e9}xt/plain",
        "text/pl\u{e9}in",
        "(unterminated text/plain",
    ] {
        assert_eq!(mt(v), None, "{v:?}");
    }
}

#[test]
fn plain_boundaries() {
    assert_eq!(b("multipart/mixed; boundary=abc").unwrap(), "abc");
    assert_eq!(b("multipart/mixed;BOUNDARY=\"a b:c\"").unwrap(), "a b:c");
    assert_eq!(
        b("multipart/mixed;\r\n boundary=\"----=_Part_1\"").unwrap(),
        "----=_Part_1"
    );
    assert_eq!(
        b("multipart/mixed; boundary = \"x\" (comment)").unwrap(),
        "x"
    );
    assert_eq!(b("multipart/mixed; (c;) boundary=x").unwrap(), "x");
    assert_eq!(
        b("multipart/mixed; a=\"b;boundary=no\"; boundary=yes").unwrap(),
        "yes"
    );
    assert_eq!(b("multipart/mixed; boundary=\"q\\\"e\"").unwrap(), "q\"e");
    assert_eq!(
        b("multipart/mixed; boundary=\"fol\r\n ded\"").unwrap(),
        "fol ded"
    );
    assert_eq!(b("multipart/mixed; charset; boundary=x").unwrap(), "x");
    assert_eq!(
        b("multipart/mixed; boundary=first; boundary=second").unwrap(),
        "first"
    );
    // 8-bit bytes in a value that is not quoted are taken as they are.
    assert_eq!(
        b("multipart/mixed; boundary=\u{e9}t\u{e9}").unwrap(),
        "\u{e9}t\u{e9}"
    );
    // Encoded words are not decoded.
    assert_eq!(
        b("multipart/mixed; boundary=\"=?utf-8?q?x?=\"").unwrap(),
        "=?utf-8?q?x?="
    );
}

#[test]
fn rfc2231_boundaries() {
    assert_eq!(
        b("multipart/mixed; boundary*0=ab; boundary*1=cd").unwrap(),
        "abcd"
    );
    assert_eq!(
        b("multipart/mixed; boundary*1=\"cd\"; boundary*0=\"ab\"").unwrap(),
        "abcd"
    );
    assert_eq!(
        b("multipart/mixed; boundary*=us-ascii'en'a%2Db").unwrap(),
        "a-b"
    );
    assert_eq!(b("multipart/mixed; boundary*=''x%3dy").unwrap(), "x=y");
    assert_eq!(
        b("multipart/mixed; boundary*0*=utf-8''a%20; boundary*1*=%2Db; boundary*2=c%20").unwrap(),
        "a -bc%20"
    );
    // A gap ends the value; sections past it are ignored.
    assert_eq!(
        b("multipart/mixed; boundary*0=a; boundary*2=c").unwrap(),
        "a"
    );
    // A plain boundary wins over the RFC 2231 forms.
    assert_eq!(
        b("multipart/mixed; boundary*=''x; boundary=plain").unwrap(),
        "plain"
    );
    // Bad percent escapes stay as they are; leading zeros are not sections.
    assert_eq!(b("multipart/mixed; boundary*=''a%zz%4").unwrap(), "a%zz%4");
    assert_eq!(
        b("multipart/mixed; boundary*00=x"),
        Err(BoundaryError::Missing)
    );
    assert_eq!(
        b("multipart/mixed; boundary*1=x"),
        Err(BoundaryError::Missing)
    );
}

#[test]
fn missing_and_too_long_boundaries() {
    assert_eq!(b("multipart/mixed"), Err(BoundaryError::Missing));
    assert_eq!(
        b("multipart/mixed; boundary=\"\""),
        Err(BoundaryError::Missing)
    );
    assert_eq!(b("multipart/mixed; boundary="), Err(BoundaryError::Missing));
    assert_eq!(
        b("multipart/mixed; boundaryx=y"),
        Err(BoundaryError::Missing)
    );
    let at_cap = "b".repeat(MAX_BOUNDARY);
    assert_eq!(
        b(&format!("multipart/mixed; boundary={at_cap}")).unwrap(),
        at_cap
    );
    let over = "b".repeat(MAX_BOUNDARY + 1);
    assert_eq!(
        b(&format!("multipart/mixed; boundary=\"{over}\"")),
        Err(BoundaryError::TooLong)
    );
    let half = "c".repeat(MAX_BOUNDARY / 2 + 1);
    assert_eq!(
        b(&format!(
            "multipart/mixed; boundary*0={half}; boundary*1={half}"
        )),
        Err(BoundaryError::TooLong)
    );
}

#[test]
fn identity_encodings() {
    for v in [" 7bit", "8BIT\r\n", "binary (raw)", "(c) 8bit"] {
        assert!(is_identity_encoding(v.as_bytes()), "{v:?}");
    }
    for v in ["base64", "quoted-printable", "", "7bit x", "x-uuencode"] {
        assert!(!is_identity_encoding(v.as_bytes()), "{v:?}");
    }
}
