//! TLS toward the origin, against the TLS Dovecot (`common::dovecot_tls()`,
//! CA A's leaf for localhost and 127.0.0.1): `--origin-tls implicit` to its
//! POP3S port and `--origin-tls starttls` to its plain port, verified with
//! `--origin-ca`; a wrong `--origin-name`, an untrusted CA, an origin without
//! STLS: the client's first line is `-ERR pop3filter: <reason>` and nothing
//! of the client's reaches the origin; `--origin-insecure`; TLS on both
//! sides, with and without `-t cat`.

mod common;
mod tls_support;

use common::{certs, dovecot_tls, hex, sha256, start_dovecot, unstuff, Proxy};
use std::time::Duration;
use tls_support::*;

fn ca_a() -> String {
    certs().a.ca.display().to_string()
}

/// The origin port of the TLS Dovecot for `mode`.
fn origin_port(mode: &str) -> u16 {
    let d = dovecot_tls();
    match mode {
        "implicit" => d.pop3s_port.unwrap(),
        _ => d.port,
    }
}

/// A plain client logs in as alice, fetches every message (exact), QUITs;
/// the log shows TLS toward the origin.
fn assert_full_session(proxy: &Proxy, what: &str) {
    let d = dovecot_tls();
    let mut c = Client::plain(proxy.port);
    let greeting = c.line();
    assert!(
        greeting.starts_with(b"+OK Dovecot"),
        "{what}: greeting {}",
        s(&greeting)
    );
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), d.stat_line("alice"), "{what}: STAT");
    for (i, body) in alice_wire().iter().enumerate() {
        c.cmd(&format!("RETR {}", i + 1));
        let got = unstuff(&c.multi());
        assert!(
            &got == body,
            "{what}: RETR {}: {} bytes {:?}, want {} bytes",
            i + 1,
            got.len(),
            s(&got),
            body.len()
        );
    }
    let addr = c.local_addr();
    c.quit();
    let l = session_of(proxy, addr);
    assert_eq!(l.client_tls, "plain", "{what}: {}", l.line);
    assert_tls(what, &l.origin_tls, &l.line);
    assert_eq!(l.user, "alice", "{}", l.line);
}

#[test]
fn implicit_and_starttls_to_the_origin_relay_exactly() {
    for mode in ["implicit", "starttls"] {
        let proxy = Proxy::for_origin(
            origin_port(mode),
            &["--origin-tls", mode, "--origin-ca", &ca_a()],
        );
        assert_full_session(&proxy, mode);
        // The name in the certificate: DNS:localhost as well as IP:127.0.0.1.
        let proxy = Proxy::for_origin(
            origin_port(mode),
            &[
                "--origin-tls",
                mode,
                "--origin-ca",
                &ca_a(),
                "--origin-name",
                "localhost",
            ],
        );
        assert_full_session(&proxy, &format!("{mode} --origin-name localhost"));
    }
}

/// In starttls mode the client sees neither the origin's STLS nor a
/// difference in CAPA but for it.
#[test]
fn starttls_origin_capa_shows_no_stls() {
    let proxy = Proxy::for_origin(
        origin_port("starttls"),
        &["--origin-tls", "starttls", "--origin-ca", &ca_a()],
    );
    let mut c = Client::plain(proxy.port);
    c.line();
    c.cmd("CAPA");
    let capa = String::from_utf8_lossy(&c.multi()).into_owned();
    assert!(
        capa.starts_with("+OK") && capa.contains("\r\nUSER\r\n"),
        "{capa:?}"
    );
    assert!(!capa.contains("STLS"), "the origin's STLS shown: {capa:?}");
    c.cmd("STLS");
    assert_eq!(
        s(&c.line()),
        "-ERR STLS is not available through this proxy\r\n"
    );
    c.quit();
}

/// The client's first line is `-ERR pop3filter: ...` containing one of
/// `reasons`, then the connection ends; a USER/PASS sent anyway reaches
/// nobody.
fn assert_refused(proxy: &Proxy, reasons: &[&str], what: &str) -> String {
    let user = unique("leak");
    let mut c = Client::plain(proxy.port);
    let first = c.line();
    let text = String::from_utf8_lossy(&first).into_owned();
    assert!(
        text.starts_with("-ERR pop3filter: ")
            && reasons.iter().any(|r| text.contains(r))
            && text.ends_with("\r\n"),
        "{what}: first line {text:?}, want -ERR naming {reasons:?}"
    );
    // A careless client sends its credentials anyway.
    c.try_send(format!("USER {user}\r\nPASS secret\r\n").as_bytes());
    let (rest, end) = c.read_to_end_within(Duration::from_secs(5));
    assert!(
        rest.is_empty() && matches!(end, End::Closed | End::Error(_)),
        "{what}: after the -ERR: {end:?} {:?}",
        s(&rest)
    );
    let l = wait_sessions(proxy, 1);
    assert_eq!(l[0].user, "-", "{what}: {}", l[0].line);
    user
}

#[test]
fn wrong_origin_name_is_refused() {
    for mode in ["implicit", "starttls"] {
        let proxy = Proxy::for_origin(
            origin_port(mode),
            &[
                "--origin-tls",
                mode,
                "--origin-ca",
                &ca_a(),
                "--origin-name",
                "other.example",
            ],
        );
        let user = assert_refused(&proxy, &["NotValidForName", "not valid for name"], mode);
        settle_log(dovecot_tls());
        assert!(
            !dovecot_tls().log().contains(&user),
            "{mode}: {user} leaked"
        );
    }
}

#[test]
fn untrusted_origin_ca_is_refused_unless_insecure() {
    let ca_b = certs().b.ca.display().to_string();
    for mode in ["implicit", "starttls"] {
        let proxy = Proxy::for_origin(
            origin_port(mode),
            &["--origin-tls", mode, "--origin-ca", &ca_b],
        );
        let user = assert_refused(&proxy, &["UnknownIssuer"], mode);
        settle_log(dovecot_tls());
        assert!(
            !dovecot_tls().log().contains(&user),
            "{mode}: {user} leaked"
        );

        let proxy = Proxy::for_origin(
            origin_port(mode),
            &["--origin-tls", mode, "--origin-insecure"],
        );
        assert_full_session(&proxy, &format!("{mode} --origin-insecure"));
        assert!(
            proxy.log().contains("origin-insecure"),
            "no warning about --origin-insecure:\n{}",
            proxy.log()
        );
    }
}

/// starttls mode against a Dovecot without TLS: `-ERR`, and Dovecot saw no
/// login attempt at all (the client never got a greeting to answer).
#[test]
fn starttls_to_an_origin_without_stls_fails_closed() {
    let plain = start_dovecot();
    let proxy = Proxy::for_origin(
        plain.port,
        &["--origin-tls", "starttls", "--origin-ca", &ca_a()],
    );
    let user = assert_refused(&proxy, &["origin refused STLS"], "origin without STLS");
    settle_log(&plain);
    let log = plain.log();
    assert!(!log.contains(&user), "{user} reached Dovecot:\n{log}");
    assert!(!log.contains("Login:"), "a login at Dovecot:\n{log}");
    assert_eq!(
        log.matches("auth failed").count(),
        1,
        "only settle_log's own failed login:\n{log}"
    );
}

/// POP3S client <-> proxy <-> implicit TLS origin, plain relay and -t cat;
/// and the 20 MiB message through both TLS legs.
#[test]
fn tls_on_both_sides_with_and_without_a_filter() {
    let d = dovecot_tls();
    for extra in [&[][..], &["-t", "cat"][..]] {
        let mut args = vec!["--origin-tls", "implicit"];
        let ca = ca_a();
        args.extend(["--origin-ca", &ca]);
        args.extend_from_slice(extra);
        let proxy = tls_proxy(d.pop3s_port.unwrap(), &args);
        let mut c = Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca).unwrap();
        assert!(c.line().starts_with(b"+OK Dovecot"));
        c.login("alice");
        for (i, body) in alice_wire().iter().enumerate() {
            c.cmd(&format!("RETR {}", i + 1));
            let got = unstuff(&c.multi());
            assert!(
                &got == body,
                "{extra:?} RETR {}: {} bytes {:?}, want {} bytes",
                i + 1,
                got.len(),
                s(&got),
                body.len()
            );
        }
        let addr = c.local_addr();
        c.quit();
        let l = session_of(&proxy, addr);
        assert_tls("client side", &l.client_tls, &l.line);
        assert_tls("origin side", &l.origin_tls, &l.line);

        let url = format!("pop3s://127.0.0.1:{}/1", proxy.pop3s_port.unwrap());
        let Some(got) = curl(&["--cacert", &ca, "-u", "big:secret", &url]) else {
            continue;
        };
        let file = wire_form(&d.message("big", 1));
        assert_eq!(
            (hex(&sha256(&got)), got.len()),
            (hex(&sha256(&file)), file.len()),
            "{extra:?}: the 20 MiB message through TLS on both sides"
        );
    }
}
