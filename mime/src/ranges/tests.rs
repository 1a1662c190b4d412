//! Tests of the censor list: the examples, weights, specificity and every error.

use super::*;

fn list(s: &str) -> MediaRanges {
    MediaRanges::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn exact_type_and_subtype() {
    let r = list("image/png");
    assert!(r.censors("image/png"));
    assert!(r.censors("IMAGE/PNG"));
    assert!(r.censors("image/png; name=x.png"));
    assert!(!r.censors("image/jpeg"));
    assert!(!r.censors("text/png"));
    assert!(!r.censors("image/pngx"));
}

#[test]
fn several_types_with_and_without_spaces() {
    for s in [
        "image/png,image/jpeg",
        "image/png, image/jpeg",
        " image/png ,\timage/jpeg ",
    ] {
        let r = list(s);
        assert!(r.censors("image/png") && r.censors("image/jpeg"), "{s}");
        assert!(!r.censors("image/gif"), "{s}");
    }
}

#[test]
fn wildcards() {
    let r = list("image/*");
    assert!(r.censors("image/png") && r.censors("image/x-whatever"));
    assert!(!r.censors("text/plain"));
    let all = list("*/*");
    assert!(all.censors("text/plain") && all.censors("application/octet-stream"));
    assert!(!all.censors("nonsense"), "something that is no media type");
}

#[test]
fn q_zero_exempts_and_the_most_specific_decides() {
    let r = list("image/*, image/png;q=0");
    assert!(r.censors("image/jpeg"));
    assert!(!r.censors("image/png"));
    // The order does not matter.
    let r = list("image/png;q=0,image/*");
    assert!(!r.censors("image/png") && r.censors("image/gif"));
    // A type-wide exemption beats */*, and a subtype beats the exemption.
    let r = list("*/*, text/*;q=0, text/html");
    assert!(r.censors("image/png"));
    assert!(!r.censors("text/plain"));
    assert!(r.censors("text/html"));
    // Any weight above zero censors.
    for q in ["1", "0.5", "0.001", "1.000", "1."] {
        assert!(
            list(&format!("image/png;q={q}")).censors("image/png"),
            "q={q}"
        );
    }
    for q in ["0", "0.0", "0.000", "0."] {
        assert!(
            !list(&format!("image/png; q={q}")).censors("image/png"),
            "q={q}"
        );
        assert!(
            !list(&format!("image/png;Q={q}")).censors("image/png"),
            "Q={q}"
        );
    }
    // A q=0 alone censors nothing.
    assert!(!list("*/*;q=0").censors("image/png"));
}

#[test]
fn ties_go_to_the_exemption() {
    assert!(!list("image/png, image/png;q=0").censors("image/png"));
    assert!(!list("image/png;q=0, image/png").censors("image/png"));
    assert!(!list("image/*;q=0, image/*").censors("image/gif"));
}

#[test]
fn other_parameters_are_ignored() {
    let r = list("text/plain;charset=utf-8, text/html ; level=1 ;q=1; foo=\"a,b;c\"");
    assert!(r.censors("text/plain; charset=iso-8859-1"));
    assert!(r.censors("text/html"));
    assert_eq!(r.to_string(), "text/plain, text/html");
}

#[test]
fn case_insensitive_and_normal_form() {
    let r = list("Image/PNG;Q=0, IMAGE/*");
    assert_eq!(r.to_string(), "image/png;q=0, image/*");
    assert!(r.censors("image/Gif") && !r.censors("iMage/pNg"));
    assert!(r.censors_parts(b"IMAGE", b"gif"));
}

#[test]
fn empty_lists_censor_nothing() {
    for s in ["", " ", ",", " , ,\t,", "image/png,,", ",image/png"] {
        let r = list(s);
        assert!(!r.censors("text/plain"), "{s:?}");
        assert_eq!(r.is_empty(), !s.contains('/'), "{s:?}");
    }
    assert_eq!(list("image/png,,").to_string(), "image/png");
}

#[test]
fn errors_name_the_element_and_the_reason() {
    let cases = [
        ("image", 1, "no '/'"),
        ("image/png, text", 2, "no '/'"),
        ("*/png", 1, "'*/subtype'"),
        ("image/", 1, "empty"),
        ("/png", 1, "empty"),
        ("ima ge/png", 1, "whitespace"),
        ("image /png", 1, "whitespace"),
        ("image/png;q", 1, "without '='"),
        ("image/png;q=2", 1, "q must be"),
        ("image/png;q=0.0001", 1, "q must be"),
        ("image/png;q=-0", 1, "q must be"),
        ("image/png;q=", 1, "q must be"),
        ("image/png;q=1.5", 1, "q must be"),
        ("im@ge/png", 1, "not allowed"),
        ("image/pn\u{e9}", 1, "not allowed"),
        ("a/b, c/d, e/f;=x", 3, "not a token"),
        ("a/b;x=a b", 1, "neither a token"),
        ("a/b;x=\"open", 1, "neither a token"),
    ];
    for (s, element, reason) in cases {
        let e = MediaRanges::parse(s).expect_err(s);
        assert_eq!(e.element, element, "{s}: {e}");
        assert!(e.to_string().contains(reason), "{s}: {e}");
    }
}
