use super::*;

const PROMETHEUS: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9100\r\n\
User-Agent: Prometheus/2.53.0\r\nAccept: application/openmetrics-text;version=1.0.0,\
application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\
Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";

fn parse(input: &[u8]) -> Parse {
    RequestParser::default().feed(input)
}

fn request(method: Method, path: &str, openmetrics: bool) -> Parse {
    Parse::Done(Request {
        method,
        path: path.to_string(),
        openmetrics,
    })
}

/// Feeds `input` cut at `cut` (first part, then the whole), and byte by byte; both must end
/// as the whole input does at once. A prefix may decide only what the whole decides (a bad
/// request line, or a complete head followed by a body).
fn same_at_every_split(input: &[u8]) -> Parse {
    let whole = parse(input);
    for cut in 0..input.len() {
        let mut p = RequestParser::default();
        let first = p.feed(&input[..cut]);
        match (&first, &whole) {
            (Parse::Incomplete, _) => assert_eq!(p.feed(input), whole, "cut at {cut}"),
            (Parse::Bad(_), Parse::Bad(_)) | (Parse::Done(_), Parse::Done(_)) => {
                assert_eq!(first, whole, "cut at {cut}")
            }
            _ => panic!("cut at {cut}: the prefix gave {first:?}, the whole {whole:?}"),
        }
    }
    let mut p = RequestParser::default();
    let mut last = Parse::Incomplete;
    for end in 1..=input.len() {
        last = p.feed(&input[..end]);
        if last != Parse::Incomplete {
            assert_eq!(last, whole, "byte by byte, at {end}");
            return whole;
        }
    }
    assert_eq!(last, whole, "byte by byte");
    whole
}

#[test]
fn a_prometheus_scrape_split_at_every_byte() {
    assert_eq!(
        same_at_every_split(PROMETHEUS),
        request(Method::Get, "/metrics", true)
    );
}

#[test]
fn requests_that_are_taken() {
    let cases: &[(&[u8], Parse)] = &[
        (
            b"GET /metrics HTTP/1.0\r\n\r\n",
            request(Method::Get, "/metrics", false),
        ),
        (
            b"HEAD /metrics HTTP/1.1\nHost: x\n\n",
            request(Method::Head, "/metrics", false),
        ),
        (
            b"\r\n\r\nGET /metrics?x=1 HTTP/1.1\r\nhOsT:x\r\n\r\n",
            request(Method::Get, "/metrics", false),
        ),
        (
            b"GET http://h:1/metrics HTTP/1.1\r\nHost: h:1\r\n\r\n",
            request(Method::Get, "/metrics", false),
        ),
        (
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
            request(Method::Other, "/metrics", false),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n",
            request(Method::Get, "/", false),
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.2\r\n\
              Accept: application/openmetrics-text; version=1.0.0\r\n\r\n",
            request(Method::Get, "/metrics", true),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            &same_at_every_split(input),
            want,
            "{}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn malformed_requests_are_refused() {
    let cases: &[&[u8]] = &[
        b"GET /metrics\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET /metrics http/1.1\r\nHost: x\r\n\r\n",
        b"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /met\x01rics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nA: \x00\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
    ];
    for input in cases {
        assert_eq!(
            same_at_every_split(input),
            Parse::Bad(Status::BadRequest),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn a_bad_request_line_is_refused_before_the_head_ends() {
    assert_eq!(
        parse(b"SSH-2.0-OpenSSH_9.2\r\n"),
        Parse::Bad(Status::BadRequest)
    );
    assert_eq!(
        parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
        Parse::Incomplete
    );
}

#[test]
fn a_head_too_long_is_refused_once_the_buffer_is_full() {
    let mut input = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    input.resize(MAX_REQUEST - 1, b'a');
    assert_eq!(parse(&input), Parse::Incomplete);
    input.push(b'a');
    assert_eq!(parse(&input), Parse::Bad(Status::TooLarge));
    // A request line that never ends, too.
    assert_eq!(
        parse(&vec![b'G'; MAX_REQUEST]),
        Parse::Bad(Status::TooLarge)
    );
    // The same, fed in pieces of a connection's reads.
    let mut p = RequestParser::default();
    for end in (1..MAX_REQUEST).step_by(1000) {
        assert_eq!(p.feed(&input[..end]), Parse::Incomplete);
    }
    assert_eq!(p.feed(&input), Parse::Bad(Status::TooLarge));
}

#[test]
fn negotiation_follows_the_weights() {
    let om = [
        "application/openmetrics-text",
        "Application/OpenMetrics-Text; version=1.0.0",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "text/plain;q=0.5, application/openmetrics-text;q=0.5",
        "application/openmetrics-text;q=0.3, */*;q=0.2",
    ];
    let text = [
        "",
        "*/*",
        "text/plain",
        "text/*, application/openmetrics-text;q=0.9",
        "application/openmetrics-text;q=0",
        "application/openmetrics-text;q=0.5, */*",
        "application/openmetrics-text;q=x",
        "application/openmetrics-text;q=2",
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;q=0.7,\
         text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    ];
    for a in om {
        assert!(prefers_openmetrics(a), "{a}");
    }
    for a in text {
        assert!(!prefers_openmetrics(a), "{a}");
    }
}

#[test]
fn responses_close_and_say_their_length() {
    let mut out = Vec::new();
    response(&mut out, Status::Ok, "text/plain", b"body\n", false);
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
          Connection: close\r\n\r\nbody\n"
    );
    out.clear();
    response(
        &mut out,
        Status::MethodNotAllowed,
        "text/plain",
        b"no\n",
        true,
    );
    assert_eq!(
        out,
        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\
          Allow: GET, HEAD\r\nConnection: close\r\n\r\n"
    );
}
