//! The proxy's own TLS toward clients: STLS and CAPA (the origin's STLS never
//! shown, STLS only before login, not inside TLS, not on POP3S) and
//! `--require-tls`. Raw sessions use `tls_support::Client` (rustls, trusting
//! CA A only); the require-TLS login is also done with openssl s_client.
//! The certificate itself (SIGHUP, bad files) is `tls_certificates.rs`.

mod common;
mod tls_support;

use common::{certs, dovecot, dovecot_tls, unstuff, Proxy};
use tls_support::*;

/// The capability lines of a CAPA reply (status line and terminator
/// checked and dropped), sorted.
fn capabilities(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply).into_owned();
    assert!(
        text.starts_with("+OK") && text.ends_with("\r\n.\r\n"),
        "CAPA reply {text:?}"
    );
    let mut lines: Vec<String> = text
        .split_inclusive("\r\n")
        .skip(1)
        .filter(|l| *l != ".\r\n")
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// Dovecot's own capabilities before login, on `port`, sorted.
fn origin_capabilities(port: u16) -> Vec<String> {
    let mut c = Client::plain(port);
    c.line();
    c.cmd("CAPA");
    let caps = capabilities(&c.multi());
    c.quit();
    caps
}

fn without(caps: &[String], drop: &[&str]) -> Vec<String> {
    caps.iter()
        .filter(|l| !drop.iter().any(|d| l.starts_with(d)))
        .cloned()
        .collect()
}

fn with(caps: &[String], add: &str) -> Vec<String> {
    let mut out = caps.to_vec();
    out.push(format!("{add}\r\n"));
    out.sort();
    out
}

/// In front of the TLS Dovecot (which offers STLS itself): CAPA before STLS
/// lists the proxy's STLS once, after the handshake none, and the rest is
/// the origin's; STLS inside TLS is refused; login and RETR work in TLS.
#[test]
fn capa_lists_stls_before_the_handshake_and_not_after() {
    let origin = dovecot_tls();
    let theirs = origin_capabilities(origin.port);
    assert!(theirs.contains(&"STLS\r\n".to_string()), "{theirs:?}");
    let plain_caps = without(&theirs, &["STLS"]);
    let proxy = tls_proxy(origin.port, &[]);

    let mut c = Client::plain(proxy.port);
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("CAPA");
    assert_eq!(
        capabilities(&c.multi()),
        with(&plain_caps, "STLS"),
        "CAPA before STLS"
    );
    let mut c = c.stls(&certs().a.ca);
    c.cmd("CAPA");
    assert_eq!(capabilities(&c.multi()), plain_caps, "CAPA after STLS");
    c.cmd("STLS");
    assert_eq!(s(&c.line()), "-ERR Already in TLS\r\n", "STLS inside TLS");
    c.login("alice");
    c.cmd("RETR 1");
    let body = unstuff(&c.multi());
    assert!(
        body == wire_form(&origin.message("alice", 1)),
        "RETR 1 in TLS: {}",
        s(&body)
    );
    let addr = c.local_addr();
    c.quit();
    let l = session_of(&proxy, addr);
    assert_tls("client side", &l.client_tls, &l.line);
    assert_eq!(l.origin_tls, "plain", "{}", l.line);
}

/// Without a certificate the proxy neither offers STLS nor shows the
/// origin's, and refuses the command; the session goes on in the clear.
#[test]
fn without_a_certificate_no_stls_not_even_the_origins() {
    let origin = dovecot_tls();
    let theirs = origin_capabilities(origin.port);
    let proxy = Proxy::for_origin(origin.port, &[]);
    let mut c = Client::plain(proxy.port);
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("CAPA");
    assert_eq!(
        capabilities(&c.multi()),
        without(&theirs, &["STLS"]),
        "CAPA without a certificate"
    );
    c.cmd("STLS");
    assert_eq!(
        s(&c.line()),
        "-ERR STLS is not available through this proxy\r\n"
    );
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), origin.stat_line("alice"));
    c.quit();
}

#[test]
fn stls_after_user_is_refused_and_the_session_goes_on() {
    let proxy = tls_proxy(dovecot().port, &[]);
    let mut c = Client::plain(proxy.port);
    c.line();
    c.cmd("USER alice");
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("STLS");
    assert_eq!(s(&c.line()), "-ERR STLS only before login\r\n");
    c.cmd("PASS secret");
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("STAT");
    assert_eq!(s(&c.line()), dovecot().stat_line("alice"));
    c.quit();
}

/// On the POP3S port: no STLS in CAPA, STLS refused as already in TLS.
#[test]
fn pop3s_listener_offers_no_stls() {
    let d = dovecot();
    let proxy = tls_proxy(d.port, &[]);
    let mut c = Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca).unwrap();
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("CAPA");
    let caps = capabilities(&c.multi());
    assert_eq!(caps, without(&origin_capabilities(d.port), &["STLS"]));
    c.cmd("STLS");
    assert_eq!(s(&c.line()), "-ERR Already in TLS\r\n", "STLS on POP3S");
    c.login("alice");
    c.quit();
}

const NEEDS_TLS: &str = "-ERR [AUTH] TLS required: use STLS first\r\n";

/// --require-tls: before STLS no login method in CAPA and every login
/// command refused by the proxy itself (Dovecot never sees the name); after
/// STLS the methods are back and the login works (rustls and s_client);
/// POP3S needs no STLS.
#[test]
fn require_tls_refuses_logins_until_stls() {
    let d = dovecot();
    let theirs = origin_capabilities(d.port);
    let proxy = tls_proxy(d.port, &["--require-tls"]);
    let user = unique("cleartext");

    let mut c = Client::plain(proxy.port);
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("CAPA");
    assert_eq!(
        capabilities(&c.multi()),
        with(&without(&theirs, &["STLS", "USER", "SASL"]), "STLS"),
        "CAPA before STLS with --require-tls"
    );
    for command in [
        format!("USER {user}"),
        "PASS secret".to_string(),
        format!("APOP {user} 0123456789abcdef0123456789abcdef"),
        "AUTH PLAIN".to_string(),
        "AUTH PLAIN AGFsaWNlAHNlY3JldA==".to_string(),
    ] {
        c.cmd(&command);
        assert_eq!(s(&c.line()), NEEDS_TLS, "{command} before STLS");
    }
    // Still usable: STLS now, then the login.
    let mut c = c.stls(&certs().a.ca);
    c.cmd("CAPA");
    assert_eq!(
        capabilities(&c.multi()),
        without(&theirs, &["STLS"]),
        "CAPA after STLS with --require-tls"
    );
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), d.stat_line("alice"));
    c.quit();
    settle_log(d);
    assert!(
        !d.log().contains(&user),
        "Dovecot saw {user}, refused before STLS:\n{}",
        d.log()
    );

    // openssl s_client does the STLS.
    let addr = format!("127.0.0.1:{}", proxy.port);
    let ca = certs().a.ca.display().to_string();
    let input = b"CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n";
    if let Some(out) = s_client(
        &["-starttls", "pop3", "-connect", &addr, "-CAfile", &ca],
        input,
    ) {
        let r = split_replies(&out, &[true, false, false, false, false]);
        assert_eq!(capabilities(&r[0]), without(&theirs, &["STLS"]));
        assert!(
            r[1].starts_with(b"+OK") && r[2].starts_with(b"+OK"),
            "{}",
            s(&out)
        );
        assert_eq!(s(&r[3]), d.stat_line("alice"));
        assert!(r[4].starts_with(b"+OK"), "{}", s(&r[4]));
    }

    // POP3S is TLS from the start: login at once.
    let mut c = Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca).unwrap();
    c.line();
    c.login("alice");
    c.quit();
}
