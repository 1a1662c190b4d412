//! Real mail clients through the proxy's TLS (client side), against the
//! cleartext Dovecot: curl (POP3S and STLS, and the 20 MiB message), openssl
//! s_client (-starttls pop3 and POP3S), Python's poplib (POP3_SSL and
//! stls(), verifying), mpop (GnuTLS; POP3S and STLS) and fetchmail (POP3S
//! and STLS, certificate checked). Every message of alice must arrive byte
//! for byte as the maildir files (or a direct cleartext fetch) say, and the
//! proxy's access log must show TLS on the client side of every session.
//! Also a slow TLS reader behind a small TCP window gets the 20 MiB message
//! whole (the proxy's TLS writes block over and over), and curl refuses the
//! proxy's certificate when it names another host or comes from another CA.
//! The certificates come from `common::certs()` (CA A's leaf for localhost
//! and 127.0.0.1); clients trust CA A only. A client that is not installed is
//! skipped with a message; `make test` installs them.

mod common;
mod tls_support;

use common::{certs, dovecot, hex, sha256, unstuff, Proxy};
use std::time::Duration;
use tls_support::*;

/// Every session the proxy closed had TLS toward the client, and there were
/// `n` of them.
fn assert_all_client_tls(proxy: &Proxy, n: usize) {
    let got = wait_sessions(proxy, n);
    assert_eq!(got.len(), n, "sessions:\n{}", proxy.log());
    for l in &got {
        assert_tls("client side", &l.client_tls, &l.line);
        assert_eq!(l.origin_tls, "plain", "{}", l.line);
        assert_eq!(l.user, "alice", "{}", l.line);
    }
}

fn ca() -> String {
    certs().a.ca.display().to_string()
}

#[test]
fn curl_pop3s_and_stls_fetch_every_message_exactly() {
    let proxy = tls_proxy(dovecot().port, &[]);
    let pop3s = proxy.pop3s_port.unwrap();
    let want = alice_wire();
    for (i, body) in want.iter().enumerate() {
        let n = i + 1;
        let url = format!("pop3s://127.0.0.1:{pop3s}/{n}");
        let Some(got) = curl(&["--cacert", &ca(), "-u", "alice:secret", &url]) else {
            return;
        };
        assert!(
            &got == body,
            "curl {url}: {} bytes {:?}, want {} bytes",
            got.len(),
            s(&got),
            body.len()
        );
        let url = format!("pop3://127.0.0.1:{}/{n}", proxy.port);
        let got = curl(&["--ssl-reqd", "--cacert", &ca(), "-u", "alice:secret", &url]).unwrap();
        assert!(
            &got == body,
            "curl --ssl-reqd {url}: {} bytes {:?}, want {} bytes",
            got.len(),
            s(&got),
            body.len()
        );
    }
    assert_all_client_tls(&proxy, 2 * want.len());
}

#[test]
fn curl_pop3s_big_message_has_the_same_digest() {
    let d = dovecot();
    let proxy = tls_proxy(d.port, &[]);
    let url = format!("pop3s://127.0.0.1:{}/1", proxy.pop3s_port.unwrap());
    let Some(got) = curl(&["--cacert", &ca(), "-u", "big:secret", &url]) else {
        return;
    };
    let file = wire_form(&d.message("big", 1));
    assert!(file.len() > 20 * 1024 * 1024, "{} bytes", file.len());
    assert_eq!(
        (hex(&sha256(&got)), got.len()),
        (hex(&sha256(&file)), file.len()),
        "the 20 MiB message through POP3S vs the maildir file"
    );
    let l = wait_sessions(&proxy, 1);
    assert_tls("client side", &l[0].client_tls, &l[0].line);
}

/// USER, PASS, RETR of every message and QUIT in one go.
fn retr_all_input(count: usize) -> (Vec<u8>, Vec<bool>) {
    let mut input = b"USER alice\r\nPASS secret\r\n".to_vec();
    let mut multi = vec![false, false];
    for n in 1..=count {
        input.extend(format!("RETR {n}\r\n").bytes());
        multi.push(true);
    }
    input.extend(b"QUIT\r\n");
    multi.push(false);
    (input, multi)
}

/// The replies of `retr_all_input`: +OK to the login, every message exact.
fn check_retr_all(replies: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    assert!(
        replies[0].starts_with(b"+OK"),
        "{what} USER: {}",
        s(&replies[0])
    );
    assert!(
        replies[1].starts_with(b"+OK"),
        "{what} PASS: {}",
        s(&replies[1])
    );
    for (i, body) in want.iter().enumerate() {
        let got = unstuff(&replies[2 + i]);
        assert!(
            &got == body,
            "{what} RETR {}: {} bytes {:?}, want {} bytes",
            i + 1,
            got.len(),
            s(&got),
            body.len()
        );
    }
    let quit = replies.last().unwrap();
    assert!(quit.starts_with(b"+OK"), "{what} QUIT: {}", s(quit));
}

#[test]
fn openssl_s_client_starttls_and_pop3s_fetch_every_message_exactly() {
    let proxy = tls_proxy(dovecot().port, &[]);
    let want = alice_wire();
    let (input, multi) = retr_all_input(want.len());
    let verify = ["-CAfile", &ca(), "-verify_ip", "127.0.0.1"];

    // -starttls pop3: s_client reads the greeting and does STLS itself; its
    // stdout is what came through TLS.
    let addr = format!("127.0.0.1:{}", proxy.port);
    let mut args = vec!["-starttls", "pop3", "-connect", &addr];
    args.extend(verify);
    let Some(out) = s_client(&args, &input) else {
        return;
    };
    check_retr_all(&split_replies(&out, &multi), &want, "s_client -starttls");

    let addr = format!("127.0.0.1:{}", proxy.pop3s_port.unwrap());
    let mut args = vec!["-connect", &addr];
    args.extend(verify);
    let out = s_client(&args, &input).unwrap();
    let mut multi = multi.clone();
    multi.insert(0, false);
    let replies = split_replies(&out, &multi);
    assert!(
        replies[0].starts_with(b"+OK"),
        "greeting {}",
        s(&replies[0])
    );
    check_retr_all(&replies[1..], &want, "s_client POP3S");
    assert_all_client_tls(&proxy, 2);
}

#[test]
fn python_poplib_pop3_ssl_and_stls_fetch_every_message_exactly() {
    let proxy = tls_proxy(dovecot().port, &[]);
    let want = poplib_want();
    let Some(got) = poplib(proxy.pop3s_port.unwrap(), "ssl", &certs().a.ca) else {
        return;
    };
    assert!(
        got == want,
        "POP3_SSL: {} bytes {:?}, want {} bytes",
        got.len(),
        s(&got),
        want.len()
    );
    let got = poplib(proxy.port, "stls", &certs().a.ca).unwrap();
    assert!(
        got == want,
        "stls(): {} bytes {:?}, want {} bytes",
        got.len(),
        s(&got),
        want.len()
    );
    assert_all_client_tls(&proxy, 2);
}

#[test]
fn mpop_pop3s_and_stls_get_the_same_mail_as_directly() {
    let Some(direct) = mpop(dovecot().port, &["--tls=off"]) else {
        return;
    };
    assert_eq!(direct.len(), alice_wire().len(), "mpop directly");
    let proxy = tls_proxy(dovecot().port, &[]);
    let trust = format!("--tls-trust-file={}", ca());
    let pop3s = mpop(
        proxy.pop3s_port.unwrap(),
        &["--tls=on", "--tls-starttls=off", &trust],
    )
    .unwrap();
    assert!(pop3s == direct, "mpop over POP3S differs from directly");
    let stls = mpop(proxy.port, &["--tls=on", "--tls-starttls=on", &trust]).unwrap();
    assert!(stls == direct, "mpop with STLS differs from directly");
    assert_all_client_tls(&proxy, 2);
}

#[test]
fn fetchmail_ssl_and_stls_get_the_same_mail_as_directly() {
    let Some(direct) = fetchmail(dovecot().port, "sslproto ''") else {
        return;
    };
    assert_eq!(direct.len(), alice_wire().len(), "fetchmail directly");
    let proxy = tls_proxy(dovecot().port, &[]);
    let check = format!("sslcertck sslcertfile \"{}\" sslcommonname localhost", ca());
    let ssl = fetchmail(proxy.pop3s_port.unwrap(), &format!("ssl {check}")).unwrap();
    assert!(ssl == direct, "fetchmail --ssl differs from directly");
    let stls = fetchmail(proxy.port, &format!("sslproto 'tls1.2+' {check}")).unwrap();
    assert!(stls == direct, "fetchmail with STLS differs from directly");
    assert_all_client_tls(&proxy, 2);
}

/// The positive cases above mean something only if the clients do check:
/// a leaf for another name, or from CA B, is refused by curl and poplib.
#[test]
fn clients_refuse_a_wrong_name_or_an_unknown_ca() {
    for (pair, why) in [(&certs().other_name, "other.example"), (&certs().b, "CA B")] {
        let (port, pop3s) = (common::free_port(), common::free_port());
        let proxy = Proxy::start(&[
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--pop3s-port",
            &pop3s.to_string(),
            "--tls-cert",
            &pair.cert.display().to_string(),
            "--tls-key",
            &pair.key.display().to_string(),
            "-P",
            &dovecot().port.to_string(),
            "127.0.0.1",
        ]);
        let url = format!("pop3s://127.0.0.1:{pop3s}/1");
        let Some(out) = curl_output(&["--cacert", &ca(), "-u", "alice:secret", &url]) else {
            return;
        };
        // 60: "Peer certificate cannot be authenticated with known CA
        // certificates" (and the name mismatch).
        assert_eq!(
            out.status.code(),
            Some(60),
            "curl with a leaf of {why}: {:?}; stderr {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{}", s(&out.stdout));
        drop(proxy);
    }
}

/// A reader slower than the proxy, behind a small TCP window (the proxy's
/// TLS writes block again and again): the 20 MiB message still arrives
/// whole, over POP3S and after STLS. (A stall here ends in a read timeout
/// after 10 s of silence, "Silent inside a multi-line reply".)
#[test]
fn slow_tls_reader_gets_the_big_message_whole() {
    let d = dovecot();
    let proxy = tls_proxy(d.port, &[]);
    let want = wire_form(&d.message("big", 1));
    let ca = &certs().a.ca;
    for stls in [false, true] {
        let slow = |port| Client::plain_slow(port, 16 * 1024, Duration::from_micros(200));
        let mut c = if stls {
            let mut c = slow(proxy.port);
            c.line();
            c.stls(ca)
        } else {
            let mut c = slow(proxy.pop3s_port.unwrap())
                .start_tls(ca, "127.0.0.1")
                .unwrap();
            c.line();
            c
        };
        c.login("big");
        c.cmd("RETR 1");
        let got = unstuff(&c.multi());
        assert!(
            got == want,
            "stls {stls}: {} bytes, want {}",
            got.len(),
            want.len()
        );
        c.quit();
    }
}
