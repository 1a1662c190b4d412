//! The metrics endpoint (`--metrics`, issue 12): the real daemon in front of the real Dovecot,
//! known traffic, and `/metrics` read by Python's `prometheus_client` parsers
//! (`tests/metrics_support/`).
//!
//! Proves: after three sessions (two RETRs, one of them through `-t cat` set over SPCP; one
//! QUIT; one client that closes; one failed login) every counter and gauge says exactly that,
//! bytes to the byte, and SPCP's totals agree; the RETR histogram counts both RETRs; the same
//! numbers come in OpenMetrics when `Accept` asks for it (content type, `_total` samples of
//! counter families, `# EOF`), as the OpenMetrics parser checks; HEAD, 404, 405, 400 and 431;
//! an unreachable origin is an origin connect failure and an `origin_error` ending; TLS
//! handshakes completed and failed are counted on each side; the censor's counts match the
//! access log's. Hostile scrapers are in `metrics_hostile.rs`.

mod common;
mod metrics_support;
mod spcp_support;
mod tls_support;

use common::{certs, dovecot, dovecot_tls, free_port, Pop3, Proxy};
use metrics_support::{get, http, parse, scrape, scrape_until, start, Samples};
use spcp_support::{Spcp, ACCESSES, BYTES, CONNS};
use std::io::Write;
use std::net::TcpStream;

const OUTCOMES: [&str; 6] = [
    "quit",
    "client_closed",
    "origin_error",
    "timeout",
    "error",
    "shutdown",
];

fn ended(s: &Samples, outcome: &str) -> u64 {
    s.n(&format!(
        "pop3filter_sessions_ended_total{{outcome={outcome}}}"
    ))
}

fn ended_all(s: &Samples) -> u64 {
    OUTCOMES.iter().map(|o| ended(s, o)).sum()
}

/// Runs `commands` (each with whether its reply is multi-line) after the greeting; returns
/// every byte the client received.
fn converse(c: &mut Pop3, commands: &[(&str, bool)]) -> usize {
    let mut got = c.greeting().len();
    for &(command, multi) in commands {
        c.cmd(command);
        let reply = c.response(multi);
        got += reply.len();
    }
    got
}

#[test]
fn known_traffic_is_counted_exactly() {
    let (proxy, port) = start(dovecot().port, &["-u", "admin:s3cr3t"]);
    let fresh = scrape(port);
    assert!(fresh.values.values().all(|&v| v == 0.0), "{fresh:#?}");

    // A: a plain RETR, then QUIT.
    let mut a = proxy.connect();
    let a_cmds = [
        ("USER alice", false),
        ("PASS secret", false),
        ("RETR 1", true),
        ("QUIT", false),
    ];
    let mut to_client = converse(&mut a, &a_cmds);
    // B: a RETR through `cat` (set over SPCP, whose connection stays open), then the client
    // closes without QUIT.
    let mut mgmt = Spcp::login(proxy.mgmt_port);
    mgmt.script(r#"11 "cat" > 00"#);
    let mut b = proxy.connect();
    let b_cmds = [
        ("USER alice", false),
        ("PASS secret", false),
        ("RETR 1", true),
    ];
    to_client += converse(&mut b, &b_cmds);
    drop(b);
    // C: a failed login; stays open.
    let mut c = proxy.connect();
    let c_cmds = [("USER alice", false), ("PASS wrong", false)];
    to_client += converse(&mut c, &c_cmds);
    // What went to the origin: each session's CAPA probe and every command, in normal form.
    let commands = a_cmds.iter().chain(&b_cmds).chain(&c_cmds);
    let to_origin: usize = commands.map(|(c, _)| c.len() + 2).sum::<usize>() + 3 * 6;

    let s = scrape_until(port, "two sessions ended", |s| ended_all(s) == 2);
    assert_eq!(s.n("pop3filter_sessions_accepted_total"), 3);
    assert_eq!(s.n("pop3filter_sessions_open"), 1);
    assert_eq!(ended(&s, "quit"), 1);
    assert_eq!(ended(&s, "client_closed"), 1);
    let bytes = |d: &str| s.n(&format!("pop3filter_bytes_total{{direction={d}}}"));
    assert_eq!(bytes("to_client"), to_client as u64);
    assert_eq!(bytes("to_origin"), to_origin as u64);
    assert_eq!(s.n("pop3filter_retr_total"), 2);
    assert_eq!(s.n("pop3filter_retr_duration_seconds_count"), 2);
    assert_eq!(s.n("pop3filter_retr_duration_seconds_bucket{le=+Inf}"), 2);
    let sum = s.get("pop3filter_retr_duration_seconds_sum");
    assert!(sum > 0.0 && sum < 20.0, "sum {sum}");
    let buckets: Vec<f64> = s
        .values
        .iter()
        .filter(|(k, _)| k.starts_with("pop3filter_retr_duration_seconds_bucket"))
        .map(|(_, &v)| v)
        .collect();
    assert_eq!(buckets.len(), 14);
    assert_eq!(s.n("pop3filter_messages_transformed_total"), 1);
    assert_eq!(s.n("pop3filter_transformation_failures_total"), 0);
    assert_eq!(s.n("pop3filter_origin_connect_failures_total"), 0);
    for side in ["client", "origin"] {
        assert_eq!(
            s.n(&format!("pop3filter_tls_handshakes_total{{side={side}}}")),
            0
        );
    }
    assert_eq!(s.n("pop3filter_censored_parts_total"), 0);
    assert_eq!(s.n("pop3filter_management_connections_open"), 1);
    assert_eq!(s.n("pop3filter_filters_running"), 0);
    // Every family has its help and type.
    for (name, (kind, help)) in &s.families {
        assert!(name.starts_with("pop3filter_"), "{name}");
        assert!(!help.is_empty() && !kind.is_empty(), "{name}");
    }
    assert_eq!(
        s.families["pop3filter_retr_duration_seconds"].0,
        "histogram"
    );
    assert_eq!(s.families["pop3filter_sessions_open"].0, "gauge");
    assert_eq!(s.families["pop3filter_sessions_ended"].0, "counter");
    // SPCP's totals keep their meaning.
    assert_eq!(mgmt.num(CONNS), 1);
    assert_eq!(mgmt.num(ACCESSES), 3);
    assert_eq!(mgmt.num(BYTES), (to_client + to_origin) as u64);

    // OpenMetrics says the same.
    let om = get(
        port,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(
        om.header("Content-Type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = om.text();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert!(text.contains("# TYPE pop3filter_retr counter\n"));
    let o = parse(&text, true);
    assert_eq!(o.n("pop3filter_retr_total"), 2);
    assert_eq!(o.n("pop3filter_sessions_accepted_total"), 3);
    assert_eq!(o.n("pop3filter_retr_duration_seconds_count"), 2);
    assert_eq!(o.families["pop3filter_bytes"].0, "counter");

    // C and the management connection go: nothing is open, C counted as closed by its client.
    drop(c);
    drop(mgmt);
    let s = scrape_until(port, "everything closed", |s| {
        s.n("pop3filter_sessions_open") == 0 && s.n("pop3filter_management_connections_open") == 0
    });
    assert_eq!(ended(&s, "client_closed"), 2);
    assert_eq!(ended_all(&s), s.n("pop3filter_sessions_accepted_total"));
    assert_eq!(
        s.n("pop3filter_bytes_total{direction=to_client}"),
        to_client as u64,
        "C had nothing more"
    );
}

#[test]
fn the_prometheus_format_unless_openmetrics_is_asked_for() {
    let (_proxy, port) = start(dovecot().port, &[]);
    let plain_type = "text/plain; version=0.0.4; charset=utf-8";
    for accept in [
        None,
        Some("*/*"),
        Some("text/plain"),
        Some("application/json"),
    ] {
        let r = get(port, accept);
        assert_eq!(r.header("Content-Type"), Some(plain_type), "{accept:?}");
        assert!(!r.text().contains("# EOF"), "{accept:?}");
    }
    let r = get(port, Some("application/openmetrics-text"));
    assert!(r.text().ends_with("# EOF\n"));
    parse(&r.text(), true);
    // HTTP/1.0, absolute form, a query: the same.
    let r = http(port, b"GET http://x/metrics?debug=1 HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
}

#[test]
fn head_404_405_400_431() {
    let (proxy, port) = start(dovecot().port, &[]);
    let get_len = get(port, None).body.len();
    let head = http(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    assert_eq!(
        head.header("Content-Length"),
        Some(get_len.to_string().as_str())
    );
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /x HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
            405,
        ),
        (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics\r\n\r\n", 400),
        (b"USER alice\r\n", 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
    ];
    for &(request, status) in cases {
        let r = http(port, request);
        assert_eq!(
            r.status,
            status,
            "{:?}: {}",
            String::from_utf8_lossy(request),
            r.head
        );
        assert_eq!(r.header("Connection"), Some("close"));
        assert!(String::from_utf8_lossy(&r.body).starts_with(&status.to_string()));
    }
    let r = http(port, b"PUT /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    // 9 KiB of header: 431, whether the scraper stops there or goes on sending.
    let mut long = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    long.resize(9 * 1024, b'a');
    assert_eq!(http(port, &long).status, 431);
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(http(port, &long).status, 431);
    // Nothing of this reached the POP3 side.
    let s = scrape(port);
    assert_eq!(s.n("pop3filter_sessions_accepted_total"), 0);
    drop(proxy);
}

#[test]
fn an_unreachable_origin_is_a_connect_failure() {
    let (proxy, port) = start(free_port(), &[]);
    let mut c = proxy.connect();
    let greeting = c.greeting();
    assert!(greeting.starts_with(b"-ERR"), "{greeting:?}");
    let s = scrape_until(port, "the session ended", |s| ended_all(s) == 1);
    assert_eq!(ended(&s, "origin_error"), 1);
    assert_eq!(s.n("pop3filter_origin_connect_failures_total"), 1);
    assert_eq!(
        s.n("pop3filter_bytes_total{direction=to_client}"),
        greeting.len() as u64
    );
}

#[test]
fn tls_handshakes_are_counted_on_each_side() {
    let ca_a = certs().a.ca.display().to_string();
    let port = free_port().to_string();
    let origin = dovecot_tls().pop3s_port.unwrap();
    let extra = [
        "--origin-tls",
        "implicit",
        "--origin-ca",
        &ca_a,
        "--metrics",
        &port,
    ];
    let proxy = tls_support::tls_proxy(origin, &extra);
    let port: u16 = port.parse().unwrap();
    let mut good = tls_support::Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca).unwrap();
    good.line();
    good.login("alice");
    good.quit();
    // Not TLS on the POP3S port: a failed handshake on the client's side.
    let mut bad = TcpStream::connect(("127.0.0.1", proxy.pop3s_port.unwrap())).unwrap();
    bad.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let s = scrape_until(port, "two sessions ended", |s| ended_all(s) == 2);
    let n = |what: &str, side: &str| s.n(&format!("pop3filter_{what}_total{{side={side}}}"));
    assert_eq!(n("tls_handshakes", "client"), 1);
    // The second session ended before its origin connection got to TLS.
    assert_eq!(n("tls_handshakes", "origin"), 1);
    assert_eq!(n("tls_handshake_failures", "client"), 1);
    assert_eq!(n("tls_handshake_failures", "origin"), 0);
    assert_eq!((ended(&s, "quit"), ended(&s, "error")), (1, 1));
    drop(bad);

    // An origin whose certificate is not trusted: a failure on the origin's side.
    let ca_b = certs().b.ca.display().to_string();
    let (distrust, port) = start(origin, &["--origin-tls", "implicit", "--origin-ca", &ca_b]);
    let greeting = distrust.connect().greeting();
    assert!(greeting.starts_with(b"-ERR"), "{greeting:?}");
    let s = scrape_until(port, "the session ended", |s| ended_all(s) == 1);
    assert_eq!(
        s.n("pop3filter_tls_handshake_failures_total{side=origin}"),
        1
    );
    assert_eq!(s.n("pop3filter_tls_handshakes_total{side=origin}"), 0);
    assert_eq!(ended(&s, "origin_error"), 1);
}

#[test]
fn the_censor_counts_what_the_access_log_says() {
    let (proxy, port) = start(dovecot().port, &["-M", "image/*"]);
    let count = dovecot().messages("mime").len();
    let mut c = proxy.connect();
    c.greeting();
    c.login("mime", "secret");
    for n in 1..=count {
        c.cmd(&format!("RETR {n}"));
        c.multi();
    }
    c.cmd("QUIT");
    c.line();
    let s = scrape_until(port, "the session ended", |s| ended(s, "quit") == 1);
    let log = proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("censored parts"))
        .unwrap_or_else(|| panic!("no closing line in {log}"));
    let after = |word: &str| -> u64 {
        let rest = &line[line.find(word).unwrap() + word.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let parts = after("censored parts ");
    assert!(parts > 0, "{line}");
    assert_eq!(s.n("pop3filter_censored_parts_total"), parts);
    assert_eq!(
        s.n("pop3filter_censored_messages_total"),
        after(" messages ")
    );
    assert_eq!(s.n("pop3filter_retr_total"), count as u64);
    assert_eq!(s.n("pop3filter_retr_duration_seconds_count"), count as u64);
    assert_eq!(s.n("pop3filter_messages_transformed_total"), 0, "no -t");
}

#[test]
fn no_metrics_listener_without_the_option() {
    let port = free_port();
    let proxy = Proxy::for_dovecot(&[]);
    assert!(!proxy.log().contains("(metrics)"));
    let _ = proxy.connect().greeting();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
