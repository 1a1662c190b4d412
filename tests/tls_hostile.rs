//! Hostile and broken TLS clients: cleartext POP3 on the POP3S port, a
//! ClientHello that stops halfway, garbage instead of a ClientHello, commands
//! pipelined behind STLS in the clear (they must be discarded, never run),
//! clients vanishing in the handshake and in the middle of a 20 MiB RETR in
//! TLS. Each case has its own daemon (`-T 2`): the session ends (at once, or
//! at the inactivity timeout where the client just stalls), the daemon's
//! descriptors return to what they were after a first complete session, and
//! a new TLS session works.

mod common;
mod tls_support;

use common::{certs, dovecot, unstuff, Proxy};
use std::io::Read;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tls_support::*;

/// A complete POP3S session: greeting, login, STAT and RETR 1 exact, QUIT.
fn full_tls_session(proxy: &Proxy) {
    let d = dovecot();
    let mut c = Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca)
        .unwrap_or_else(|e| panic!("POP3S handshake: {e}"));
    assert!(c.line().starts_with(b"+OK"));
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), d.stat_line("alice"));
    c.cmd("RETR 1");
    let body = unstuff(&c.multi());
    assert!(
        body == wire_form(&d.message("alice", 1)),
        "RETR 1: {}",
        s(&body)
    );
    c.quit();
}

/// The daemon with -T 2, a first POP3S and a first STLS session, and its
/// descriptors then.
fn start() -> (Proxy, FdBaseline) {
    let proxy = tls_proxy(dovecot().port, &["-T", "2"]);
    full_tls_session(&proxy);
    let mut c = Client::plain(proxy.port);
    c.line();
    let mut c = c.stls(&certs().a.ca);
    c.login("alice");
    c.quit();
    wait_sessions(&proxy, 2);
    let base = FdBaseline::take(proxy.pid());
    (proxy, base)
}

/// After the fault: descriptors back to the baseline, and a new session.
fn assert_recovered(proxy: &Proxy, base: &FdBaseline, after: &str) {
    base.assert_back(Duration::from_secs(5), after);
    full_tls_session(proxy);
    base.assert_back(Duration::from_secs(5), &format!("{after}, then a session"));
}

/// What a TLS server may send a client that is not speaking TLS: nothing,
/// or alert records (content type 21) — never a POP3 line.
fn assert_no_cleartext(got: &[u8], what: &str) {
    assert!(
        got.is_empty() || got[0] == 0x15,
        "{what}: the server sent {:?}",
        s(got)
    );
}

#[test]
fn cleartext_pop3_on_the_pop3s_port_gets_no_greeting() {
    let (proxy, base) = start();
    let pop3s = proxy.pop3s_port.unwrap();

    // A client waiting for a greeting: none comes; closed at the timeout.
    let started = Instant::now();
    let mut c = Client::plain(pop3s);
    let (got, end) = c.read_to_end_within(Duration::from_secs(8));
    assert_eq!(end, End::Closed, "waiting client: {:?}", s(&got));
    assert_no_cleartext(&got, "waiting client");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "closed after {waited:?}, -T 2"
    );

    // A client that talks POP3 at once: closed (at once or at the timeout),
    // and never answered in the clear.
    let mut c = Client::plain(pop3s);
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n");
    let (got, end) = c.read_to_end_within(Duration::from_secs(8));
    assert!(
        matches!(end, End::Closed | End::Error(_)),
        "talking client: {end:?}"
    );
    assert_no_cleartext(&got, "talking client");
    assert_recovered(&proxy, &base, "cleartext POP3 on the POP3S port");
}

#[test]
fn half_a_client_hello_is_closed_at_the_timeout() {
    let (proxy, base) = start();
    let hello = client_hello();
    for port in [proxy.pop3s_port.unwrap(), proxy.port] {
        let mut c = Client::plain(port);
        if port == proxy.port {
            c.line();
            c.cmd("STLS");
            assert_eq!(s(&c.line()), "+OK Begin TLS negotiation\r\n");
        }
        let started = Instant::now();
        c.send(&hello[..hello.len() / 2]);
        let (got, end) = c.read_to_end_within(Duration::from_secs(8));
        let waited = started.elapsed();
        assert_eq!(end, End::Closed, "port {port}: {:?}", s(&got));
        assert_no_cleartext(&got, "half a ClientHello");
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
            "port {port}: closed after {waited:?}, -T 2"
        );
    }
    assert_recovered(&proxy, &base, "half a ClientHello");
}

#[test]
fn garbage_instead_of_a_client_hello_is_closed_at_once() {
    let (proxy, base) = start();
    let mut garbage = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    garbage.extend((0..=255u8).cycle().take(2000));
    for port in [proxy.pop3s_port.unwrap(), proxy.port] {
        let mut c = Client::plain(port);
        if port == proxy.port {
            c.line();
            c.cmd("STLS");
            assert_eq!(s(&c.line()), "+OK Begin TLS negotiation\r\n");
        }
        let started = Instant::now();
        // The daemon may close while we are still writing.
        c.try_send(&garbage);
        let (got, end) = c.read_to_end_within(Duration::from_secs(8));
        let waited = started.elapsed();
        assert!(
            matches!(end, End::Closed | End::Error(_)),
            "port {port}: {end:?}"
        );
        assert_no_cleartext(&got, "garbage");
        assert!(
            waited < Duration::from_millis(1500),
            "port {port}: garbage closed only after {waited:?} (-T 2): not at once"
        );
    }
    assert_recovered(&proxy, &base, "garbage instead of a ClientHello");
}

/// `STLS\r\nUSER <evil>\r\n` in one write: after the handshake the session
/// is still before USER (Dovecot answers PASS "no username"), and Dovecot
/// never heard of the name.
#[test]
fn commands_pipelined_behind_stls_are_discarded() {
    let d = dovecot();
    let (proxy, base) = start();
    let evil = unique("evil");
    let mut c = Client::plain(proxy.port);
    assert!(c.line().starts_with(b"+OK"));
    c.send(format!("STLS\r\nUSER {evil}\r\n").as_bytes());
    assert_eq!(s(&c.line()), "+OK Begin TLS negotiation\r\n");
    // start_tls also asserts that nothing else came in the clear.
    let mut c = c
        .start_tls(&certs().a.ca, "127.0.0.1")
        .unwrap_or_else(|e| panic!("handshake after STLS: {e}"));
    c.cmd("PASS secret");
    assert_eq!(
        s(&c.line()),
        "-ERR No username given.\r\n",
        "PASS right after the handshake: USER {evil} was taken"
    );
    c.cmd("CAPA");
    let capa = c.multi();
    assert!(!s(&capa).contains("STLS"), "{}", s(&capa));
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), d.stat_line("alice"));
    let addr = c.local_addr();
    c.quit();
    let l = session_of(&proxy, addr);
    assert_eq!(l.user, "alice", "{}", l.line);
    assert_tls("client side", &l.client_tls, &l.line);
    settle_log(d);
    assert!(!d.log().contains(&evil), "Dovecot saw {evil}:\n{}", d.log());
    assert_recovered(&proxy, &base, "commands pipelined behind STLS");
}

/// Closes with a reset instead of a FIN.
fn reset(tcp: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[test]
fn client_vanishing_mid_handshake_leaves_nothing_behind() {
    let (proxy, base) = start();
    let hello = client_hello();
    for (port, stls) in [(proxy.pop3s_port.unwrap(), false), (proxy.port, true)] {
        for rst in [false, true] {
            let mut c = Client::plain(port);
            if stls {
                c.line();
                c.cmd("STLS");
                assert_eq!(s(&c.line()), "+OK Begin TLS negotiation\r\n");
            }
            c.send(&hello);
            // The server's first flight (ServerHello ...), then gone.
            let mut first = [0u8; 5];
            let mut tcp = c.tcp().try_clone().unwrap();
            tcp.read_exact(&mut first).unwrap();
            assert_eq!(first[0], 0x16, "a handshake record: {first:?}");
            if rst {
                reset(c.tcp());
            }
            drop(tcp);
            drop(c);
        }
    }
    // Every one of the four ended at once, not at the timeout.
    let started = Instant::now();
    let l = wait_sessions(&proxy, 6);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "sessions ended only at the timeout:\n{}",
        proxy.log()
    );
    assert_eq!(l.len(), 6, "{}", proxy.log());
    assert_recovered(&proxy, &base, "clients gone mid-handshake");
}

#[test]
fn client_vanishing_mid_retr_of_the_big_message_over_tls() {
    let (proxy, base) = start();
    for rst in [false, true] {
        let mut c = Client::pop3s(proxy.pop3s_port.unwrap(), &certs().a.ca).unwrap();
        c.line();
        c.login("big");
        c.cmd("RETR 1");
        let status = c.line();
        assert!(status.starts_with(b"+OK "), "{}", s(&status));
        let mut received = status.len();
        while received < 1024 * 1024 {
            received += c.line().len();
        }
        let addr = c.local_addr();
        if rst {
            reset(c.tcp());
        }
        drop(c); // gone, with most of the 20 MiB still to come
        let started = Instant::now();
        let l = session_of(&proxy, addr);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "the session ended only after {:?}: {}",
            started.elapsed(),
            l.line
        );
        assert_eq!(l.user, "big", "{}", l.line);
    }
    assert_recovered(&proxy, &base, "clients gone mid-RETR");
    assert_eq!(dovecot().messages("big").len(), 1, "mailbox unchanged");
}
