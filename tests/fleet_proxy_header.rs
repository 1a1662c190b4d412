//! The client's real address (issue 12), without HAProxy: PROXY headers written by hand by a
//! raw client bound to 127.0.0.11 (the "load balancer" of `--proxy-from 127.0.0.11/32`),
//! and what reaches the origin, a Dovecot that trusts 127.0.0.0/8 for XCLIENT and has a
//! `haproxy = yes` listener for `--origin-proxy-protocol`.
//!
//! * PROXY in: v1 and v2 split byte by byte and at every split point, IPv6, LOCAL and
//!   UNKNOWN, TLVs, bytes behind the header kept for POP3, malformed and too long headers,
//!   a missing or half header (3 s), no greeting and no origin connection before the header
//!   is whole, a header from an untrusted address (a bad command), a POP3S listener (header,
//!   then TLS).
//! * Out: `--origin-proxy-protocol` (Dovecot's rip= and lip= are the header's), XCLIENT
//!   (`--origin-xclient`: rip= the client; without it nothing sent), and a client's own
//!   XCLIENT / XOIP refused by the proxy, never seen by Dovecot.

mod common;
mod fleet_support;
mod tls_support;

use common::{certs, connect_from, excerpt, free_port, start_dovecot_env, Dovecot, Pop3, Proxy};
use fleet_support::{
    closing_line, connected, dovecot_logins, eventually, read_all, rip, v1, v2, v2_local,
    write_split, End, V2_SIG,
};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The address the tests' "load balancer" connects from.
const LB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const LB_NET: &str = "127.0.0.11/32";
const REFUSED: &[u8] = b"-ERR XCLIENT is not allowed through this proxy\r\n";

/// The Dovecot of this file: XCLIENT for 127.0.0.0/8 on its POP3 port, and a listener that
/// takes a PROXY header first on `.1`.
fn origin() -> &'static (Dovecot, u16) {
    static ORIGIN: OnceLock<(Dovecot, u16)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        let haproxy_port = free_port();
        let d = start_dovecot_env(&[
            ("DOVECOT_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()),
            ("DOVECOT_HAPROXY_PORT", haproxy_port.to_string()),
        ]);
        (d, haproxy_port)
    })
}

fn dovecot() -> &'static Dovecot {
    &origin().0
}

/// The daemon on 127.0.0.1 in front of 127.0.0.1:`origin_port`; `extra` before the origin.
fn proxy_to(origin_port: u16, extra: &[&str]) -> Proxy {
    Proxy::for_origin(origin_port, extra)
}

/// The daemon in front of this file's Dovecot, taking PROXY headers from 127.0.0.11 and
/// telling Dovecot the client's address with XCLIENT.
fn header_proxy() -> Proxy {
    proxy_to(
        dovecot().port,
        &["--proxy-from", LB_NET, "--origin-xclient"],
    )
}

/// Dovecot's greeting as a proxy shows it: Dovecot's own without the `[XCLIENT] ` code it
/// gives trusted peers (every test client is one).
fn expected_greeting() -> Vec<u8> {
    let mut c = Pop3::connect(dovecot().port);
    let g = String::from_utf8(c.greeting()).unwrap();
    assert!(g.starts_with("+OK [XCLIENT] "), "Dovecot's greeting: {g:?}");
    c.cmd("QUIT");
    c.read_to_end();
    g.replacen("[XCLIENT] ", "", 1).into_bytes()
}

/// Waits (5 s) for a Dovecot login line that `pred` accepts.
fn dovecot_login(pred: impl Fn(&str) -> bool) -> String {
    let mut found = None;
    eventually(Duration::from_secs(5), || {
        found = dovecot_logins(&dovecot().log())
            .into_iter()
            .find(|l| pred(l))
            .map(str::to_string);
        found.is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no such login in Dovecot's log:\n{}",
            dovecot_logins(&dovecot().log()).join("\n")
        )
    })
}

/// A login with `rip=<ip>` for `user`.
fn login_from(ip: &str, user: &str) -> String {
    dovecot_login(|l| rip(l) == Some(ip) && l.contains(&format!("user=<{user}>")))
}

/// Greeting (checked), login, STAT (checked against the maildir), QUIT.
fn pop3_session(c: &mut Pop3, user: &str) {
    let g = c.greeting();
    assert_eq!(excerpt(&g), excerpt(&expected_greeting()), "greeting");
    pop3_after_greeting(c, user);
}

fn pop3_after_greeting(c: &mut Pop3, user: &str) {
    c.login(user, common::PASSWORD);
    c.cmd("STAT");
    assert_eq!(
        excerpt(&c.line()),
        excerpt(dovecot().stat_line(user).as_bytes())
    );
    c.cmd("QUIT");
    let bye = c.line();
    assert!(bye.starts_with(b"+OK"), "QUIT: {}", excerpt(&bye));
    assert!(c.read_to_end().is_empty());
}

/// The "connected (PROXY header from …)" entry for the connection whose local end is `peer`
/// (waits up to 5 s).
fn entry_for_peer(proxy: &Proxy, peer: SocketAddr) -> fleet_support::Connected {
    let mut found = None;
    eventually(Duration::from_secs(5), || {
        // The latest: a local port may have served an earlier connection too.
        found = connected(&proxy.log())
            .into_iter()
            .rfind(|c| c.peer == peer);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no PROXY session from {peer} in the log:\n{}", proxy.log()))
}

/// Asserts that nothing arrives on `s` for `wait` (the connection stays open).
fn assert_silent(s: &mut TcpStream, wait: Duration, what: &str) {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("{what}: the proxy closed the connection"),
        Ok(n) => panic!("{what}: the proxy sent {:?}", excerpt(&b[..n])),
        Err(e) => panic!("{what}: {e}"),
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------
// PROXY in

/// Sends `header` to a fresh `--proxy-from` proxy one byte at a time (10 ms apart) with
/// `behind` in the same write as its last byte, checks that nothing came back before that
/// last byte, and returns the client (greeting not read) and the proxy.
fn header_byte_by_byte(header: &[u8], behind: &[u8]) -> (Pop3, Proxy, SocketAddr) {
    let proxy = header_proxy();
    let mut s = connect_from(LB, proxy.port).unwrap();
    let local = s.local_addr().unwrap();
    let (head, last) = header.split_at(header.len() - 1);
    write_split(&mut s, head, 1, Duration::from_millis(10));
    assert_silent(
        &mut s,
        Duration::from_millis(300),
        "before the header's last byte",
    );
    let mut tail = last.to_vec();
    tail.extend_from_slice(behind);
    s.write_all(&tail).unwrap();
    (Pop3::from_stream(s), proxy, local)
}

#[test]
fn v1_header_byte_by_byte_names_the_client() {
    let src = sa("192.0.2.7:40001");
    let header = v1(src, sa("192.0.2.200:110"));
    let (mut c, proxy, local) = header_byte_by_byte(&header, b"");
    pop3_session(&mut c, "alice");
    let e = entry_for_peer(&proxy, local);
    assert_eq!(e.client, src, "the session's client");
    let closing = eventually_closing(&proxy, e.serial);
    assert!(
        closing.contains("client 192.0.2.7:40001 (plain)") && closing.contains("user alice"),
        "{closing}"
    );
    let login = login_from("192.0.2.7", "alice");
    assert!(
        login.contains(&format!("session=<pop3filter-{}>", e.serial)),
        "{login}"
    );
}

fn eventually_closing(proxy: &Proxy, serial: u64) -> String {
    let mut line = None;
    eventually(Duration::from_secs(5), || {
        line = closing_line(&proxy.log(), serial);
        line.is_some()
    });
    line.unwrap_or_else(|| panic!("session {serial} never closed:\n{}", proxy.log()))
}

#[test]
fn v2_header_with_tlvs_byte_by_byte_then_pipelined_pop3() {
    let src = sa("198.51.100.9:40002");
    let unique_id = [0x5au8; 16];
    let custom = [0xc3u8; 100];
    let tlvs: [(u8, &[u8]); 5] = [
        (0x01, b"pop3"),             // ALPN
        (0x02, b"mail.example.org"), // AUTHORITY
        (0x04, &[0u8; 7]),           // NOOP
        (0x05, &unique_id),          // UNIQUE_ID
        (0xe1, &custom),             // a custom type
    ];
    let header = v2(src, sa("198.51.100.1:110"), &tlvs);
    // "USER alice" right behind the header, in the same segment: it is the session's.
    let (mut c, proxy, local) = header_byte_by_byte(&header, b"USER alice\r\n");
    let g = c.greeting();
    assert_eq!(excerpt(&g), excerpt(&expected_greeting()));
    let user = c.line();
    assert!(
        user.starts_with(b"+OK"),
        "USER behind the header: {}",
        excerpt(&user)
    );
    c.cmd("PASS secret");
    let pass = c.line();
    assert!(pass.starts_with(b"+OK"), "PASS: {}", excerpt(&pass));
    c.cmd("STAT");
    assert_eq!(
        excerpt(&c.line()),
        excerpt(dovecot().stat_line("alice").as_bytes())
    );
    c.cmd("QUIT");
    c.line();
    assert_eq!(entry_for_peer(&proxy, local).client, src);
    login_from("198.51.100.9", "alice");
}

/// Every split point of a v1 and of a v2 header (two writes 5 ms apart, QUIT right behind
/// the header): each session is greeted, says goodbye, and is logged with the header's source
/// (a distinct port for each split).
#[test]
fn v1_and_v2_split_at_every_byte() {
    let proxy = header_proxy();
    let dst = sa("192.0.2.250:110");
    let mut expected = Vec::new();
    for version in [1u16, 2] {
        // Five-digit source ports: every v1 line of a round has the same length.
        let header_for = |port: u16| {
            let src = SocketAddr::new("192.0.2.77".parse().unwrap(), port);
            let h = if version == 1 {
                v1(src, dst)
            } else {
                v2(src, dst, &[(0x04, b"xyz")])
            };
            (src, h)
        };
        let len = header_for(version * 10_000).1.len();
        for k in 1..len {
            let (src, header) = header_for(version * 10_000 + k as u16);
            assert_eq!(header.len(), len);
            let mut s = connect_from(LB, proxy.port).unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(&header[..k]).unwrap();
            thread::sleep(Duration::from_millis(5));
            let mut rest = header[k..].to_vec();
            rest.extend_from_slice(b"QUIT\r\n");
            s.write_all(&rest).unwrap();
            let (bytes, end) = read_all(&mut s, Duration::from_secs(5));
            let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
            assert!(
                lines.len() == 2
                    && lines
                        .iter()
                        .all(|l| l.starts_with(b"+OK ") && l.ends_with(b"\r\n"))
                    && end == End::Closed,
                "v{version} split after {k} bytes: {:?} ({end:?})\n{}",
                excerpt(&bytes),
                proxy.log()
            );
            expected.push((s.local_addr().unwrap(), src));
        }
    }
    let mut entries = Vec::new();
    eventually(Duration::from_secs(5), || {
        entries = connected(&proxy.log());
        entries.len() >= expected.len()
    });
    // (A local port may come back for a later connection: look for the pair.)
    for (peer, src) in &expected {
        assert!(
            entries.iter().any(|e| e.peer == *peer && e.client == *src),
            "no session from {peer} with the header's {src}: {:?}",
            entries
                .iter()
                .filter(|e| e.peer == *peer)
                .collect::<Vec<_>>()
        );
    }
    eprintln!("{} split headers, each parsed right", expected.len());
}

#[test]
fn ipv6_sources_in_v1_and_v2() {
    let proxy = header_proxy();
    for (header, src) in [
        (
            v1(sa("[2001:db8::25]:40003"), sa("[2001:db8::1]:110")),
            "2001:db8::25",
        ),
        (
            v2(sa("[2001:db8::26]:40004"), sa("[2001:db8::1]:110"), &[]),
            "2001:db8::26",
        ),
    ] {
        let mut s = connect_from(LB, proxy.port).unwrap();
        let local = s.local_addr().unwrap();
        write_split(&mut s, &header, 7, Duration::from_millis(5));
        let mut c = Pop3::from_stream(s);
        pop3_session(&mut c, "alice");
        let e = entry_for_peer(&proxy, local);
        assert_eq!(e.client.ip().to_string(), src);
        let closing = eventually_closing(&proxy, e.serial);
        assert!(closing.contains(&format!("client [{src}]:")), "{closing}");
        login_from(src, "alice");
    }
}

/// v2 LOCAL (HAProxy's health checks), v1 UNKNOWN, and v2 PROXY with an address family that
/// is not TCP over IP (UNSPEC, UNIX): the session's client is the TCP peer.
#[test]
fn v2_local_and_v1_unknown_mean_the_tcp_peer() {
    let proxy = header_proxy();
    let mut unspec = V2_SIG.to_vec();
    unspec.extend_from_slice(&[0x21, 0x00, 0x00, 0x00]);
    let mut unix = V2_SIG.to_vec();
    unix.extend_from_slice(&[0x21, 0x31, 0x00, 216]);
    unix.extend_from_slice(&[0u8; 216]);
    for header in [v2_local(), b"PROXY UNKNOWN\r\n".to_vec(), unspec, unix] {
        let mut s = connect_from(LB, proxy.port).unwrap();
        let local = s.local_addr().unwrap();
        write_split(
            &mut s,
            &header,
            (header.len() / 5).max(3),
            Duration::from_millis(5),
        );
        let mut c = Pop3::from_stream(s);
        pop3_session(&mut c, "alice");
        let e = entry_for_peer(&proxy, local);
        assert_eq!(e.client, local, "{:?}", excerpt(&header));
    }
    login_from("127.0.0.11", "alice");
}

/// Headers that are not headers: each connection is closed with not one byte sent, at once
/// (not after the 3 s limit), and logged as a bad PROXY header. The close is a FIN when the
/// proxy had taken every byte sent, a reset when bytes behind the point of refusal were left
/// unread (the header reader takes no byte past it): both are accepted.
#[test]
fn malformed_headers_are_closed_without_a_byte() {
    let proxy = header_proxy();
    let mut bad_version = v2(sa("192.0.2.1:1"), sa("192.0.2.2:2"), &[]);
    bad_version[12] = 0x31;
    let mut bad_command = v2(sa("192.0.2.1:1"), sa("192.0.2.2:2"), &[]);
    bad_command[12] = 0x2f;
    let mut short_block = V2_SIG.to_vec();
    short_block.extend_from_slice(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
    let huge = vec![0u8; 2000];
    let too_long_v2 = v2(sa("192.0.2.1:1"), sa("192.0.2.2:2"), &[(0xe0, &huge)]);
    let too_long_v1 = format!("PROXY UNKNOWN {}\r\n", "x".repeat(200)).into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("HTTP", b"GET / HTTP/1.0\r\n\r\n".to_vec()),
        ("POP3 without a header", b"USER alice\r\n".to_vec()),
        ("a TLS ClientHello", tls_support::client_hello()),
        (
            "v1 bad address",
            b"PROXY TCP4 256.1.1.1 192.0.2.2 1000 110\r\n".to_vec(),
        ),
        (
            "v1 bad port",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 70000 110\r\n".to_vec(),
        ),
        (
            "v1 bad family",
            b"PROXY TCP5 192.0.2.1 192.0.2.2 1000 110\r\n".to_vec(),
        ),
        (
            "v1 IPv6 in TCP4",
            b"PROXY TCP4 2001:db8::1 2001:db8::2 1000 110\r\n".to_vec(),
        ),
        ("v1 too long", too_long_v1),
        ("v2 version 3", bad_version),
        ("v2 command 15", bad_command),
        ("v2 address block too short", short_block),
        ("v2 longer than 1 KiB", too_long_v2),
    ];
    let mut peers = Vec::new();
    for (what, bytes) in &cases {
        let mut s = connect_from(LB, proxy.port).unwrap();
        let started = Instant::now();
        // Some of it may be refused already (a reset): that is fine.
        let _ = s.write_all(bytes);
        let (got, end) = read_all(&mut s, Duration::from_secs(5));
        let took = started.elapsed();
        eprintln!("{what}: {end:?} after {took:?}");
        assert!(got.is_empty(), "{what}: the proxy sent {:?}", excerpt(&got));
        assert!(
            matches!(end, End::Closed | End::Error(_)),
            "{what}: not closed ({end:?})"
        );
        assert!(
            took < Duration::from_secs(2),
            "{what}: closed only after {took:?}"
        );
        peers.push((*what, s.local_addr().unwrap()));
    }
    let mut log = String::new();
    let all_logged = eventually(Duration::from_secs(5), || {
        log = proxy.log();
        peers.iter().all(|(_, p)| {
            log.lines()
                .any(|l| l.contains(&format!("{p} sent a bad PROXY header")))
        })
    });
    assert!(all_logged, "not every bad header was logged:\n{log}");
    assert!(connected(&log).is_empty(), "a session began:\n{log}");
}

/// No header at all, half of one, or one trickled a byte every 400 ms: each is closed 3 s
/// after it connected (the limit is for the whole header, not between bytes), not one byte
/// sent, and the origin (a bare listener here) never sees a connection.
#[test]
fn a_missing_half_or_trickled_header_is_closed_after_3_s() {
    let origin = TcpListener::bind("127.0.0.1:0").unwrap();
    origin.set_nonblocking(true).unwrap();
    let proxy = proxy_to(
        origin.local_addr().unwrap().port(),
        &["--proxy-from", LB_NET],
    );
    let half = v2(sa("192.0.2.1:1"), sa("192.0.2.2:2"), &[]);
    let half = half[..half.len() / 2].to_vec();
    let trickled = v1(sa("192.0.2.1:1"), sa("192.0.2.2:2"));
    let port = proxy.port;
    let clients: Vec<_> = [
        ("nothing", Vec::new()),
        ("half a v2 header", half),
        ("a trickled v1 header", trickled),
    ]
    .into_iter()
    .map(|(what, sent)| {
        thread::spawn(move || {
            let started = Instant::now();
            let mut s = connect_from(LB, port).unwrap();
            let mut w = s.try_clone().unwrap();
            let trickle = what.contains("trickled");
            let writer = thread::spawn(move || {
                if trickle {
                    for b in sent {
                        if w.write_all(&[b]).is_err() {
                            break;
                        }
                        thread::sleep(Duration::from_millis(400));
                    }
                } else {
                    w.write_all(&sent).unwrap();
                }
            });
            let (got, end) = read_all(&mut s, Duration::from_secs(8));
            let took = started.elapsed();
            writer.join().unwrap();
            (what, s.local_addr().unwrap(), got, end, took)
        })
    })
    .collect();
    for c in clients {
        let (what, peer, got, end, took) = c.join().unwrap();
        eprintln!("{what}: closed after {took:?} ({end:?})");
        assert!(got.is_empty(), "{what}: got {:?}", excerpt(&got));
        // Every byte sent was taken: a plain close (FIN), not a reset.
        assert_eq!(end, End::Closed, "{what}");
        assert!(
            took > Duration::from_millis(2500) && took < Duration::from_secs(5),
            "{what}: closed after {took:?}, expected 3 s"
        );
        let needle = format!("no PROXY header from {peer} within 3 s");
        assert!(
            eventually(Duration::from_secs(2), || proxy.log().contains(&needle)),
            "{needle:?} not logged:\n{}",
            proxy.log()
        );
    }
    match origin.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the origin saw a connection: {other:?}"),
    }
}

/// Until the header's last byte: no greeting, and no connection to the origin (a bare
/// listener that counts them); then one, and the origin's greeting comes through.
#[test]
fn no_greeting_and_no_origin_connection_before_the_header_is_whole() {
    let origin = TcpListener::bind("127.0.0.1:0").unwrap();
    origin.set_nonblocking(true).unwrap();
    let proxy = proxy_to(
        origin.local_addr().unwrap().port(),
        &["--proxy-from", LB_NET],
    );
    let header = v2(sa("192.0.2.33:40033"), sa("192.0.2.34:110"), &[]);
    let mut s = connect_from(LB, proxy.port).unwrap();
    let (head, last) = header.split_at(header.len() - 1);
    write_split(&mut s, head, 4, Duration::from_millis(20));
    assert_silent(
        &mut s,
        Duration::from_millis(500),
        "before the header is whole",
    );
    match origin.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the proxy reached the origin before the header was whole: {other:?}"),
    }
    s.write_all(last).unwrap();
    let mut conn = None;
    eventually(Duration::from_secs(3), || {
        conn = origin.accept().ok();
        conn.is_some()
    });
    let (mut conn, _) = conn.expect("no origin connection once the header was whole");
    conn.set_nonblocking(false).unwrap();
    conn.write_all(b"+OK scripted origin\r\n").unwrap();
    let mut c = Pop3::from_stream(s);
    assert_eq!(c.greeting(), b"+OK scripted origin\r\n");
}

/// From an address outside --proxy-from a PROXY line is just a command: Dovecot answers it
/// -ERR and the session goes on as any other, under the TCP peer's address.
#[test]
fn a_header_from_an_untrusted_address_is_a_bad_command() {
    let proxy = header_proxy();
    for from in [Ipv4Addr::LOCALHOST, Ipv4Addr::new(127, 0, 0, 12)] {
        let mut c = Pop3::connect_from(from, proxy.port);
        let local = c.stream().local_addr().unwrap();
        let g = c.greeting();
        assert_eq!(excerpt(&g), excerpt(&expected_greeting()), "from {from}");
        c.send(&v1(sa("192.0.2.99:40099"), sa("192.0.2.98:110")));
        let reply = c.line();
        assert!(
            reply.starts_with(b"-ERR"),
            "PROXY line: {}",
            excerpt(&reply)
        );
        pop3_after_greeting(&mut c, "alice");
        let log = proxy.log();
        assert!(
            log.contains(&format!("client {local} connected, origin")),
            "{log}"
        );
        login_from(&from.to_string(), "alice");
    }
    assert!(connected(&proxy.log()).is_empty(), "{}", proxy.log());
    assert!(!dovecot().log().contains("192.0.2.99"));
}

/// On a POP3S listener the header comes first, then the TLS handshake (rustls), then POP3.
/// A ClientHello without a header is a bad header; an untrusted client does TLS as usual.
#[test]
fn pop3s_listener_header_then_tls() {
    let a = &certs().a;
    let pop3s = free_port().to_string();
    let (cert, key) = (a.cert.display().to_string(), a.key.display().to_string());
    let proxy = proxy_to(
        dovecot().port,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--pop3s-port",
            &pop3s,
            "--proxy-from",
            LB_NET,
            "--origin-xclient",
        ],
    );
    let pop3s = proxy.pop3s_port.unwrap();
    let cases = [
        (
            Some(v2(sa("192.0.2.44:40044"), sa("192.0.2.45:995"), &[])),
            "192.0.2.44:40044",
            LB,
        ),
        (
            Some(v1(sa("192.0.2.46:40046"), sa("192.0.2.45:995"))),
            "192.0.2.46:40046",
            LB,
        ),
        (None, "", Ipv4Addr::new(127, 0, 0, 12)),
    ];
    for (header, client, from) in cases {
        let mut s = connect_from(from, pop3s).unwrap();
        let local = s.local_addr().unwrap();
        if let Some(h) = &header {
            write_split(&mut s, h, 5, Duration::from_millis(5));
        }
        let tls = tls_support::handshake(s, &a.ca, "localhost")
            .unwrap_or_else(|e| panic!("handshake after {header:?}: {e}\n{}", proxy.log()));
        let mut r = BufReader::new(tls);
        let mut line = String::new();
        let mut ask = |r: &mut BufReader<_>, cmd: &str| -> String {
            if !cmd.is_empty() {
                let w: &mut rustls::StreamOwned<_, _> = r.get_mut();
                w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
                w.flush().unwrap();
            }
            line.clear();
            r.read_line(&mut line).unwrap();
            line.clone()
        };
        let g = ask(&mut r, "");
        assert!(
            g.starts_with("+OK ") && !g.contains("XCLIENT"),
            "greeting {g:?}"
        );
        assert!(ask(&mut r, "USER alice").starts_with("+OK"));
        assert!(ask(&mut r, "PASS secret").starts_with("+OK"));
        assert_eq!(ask(&mut r, "STAT"), dovecot().stat_line("alice"));
        assert!(ask(&mut r, "QUIT").starts_with("+OK"));
        let expected_client = if header.is_some() {
            let e = entry_for_peer(&proxy, local);
            assert_eq!(e.client.to_string(), client);
            client.to_string()
        } else {
            local.to_string()
        };
        let mut closing = None;
        eventually(Duration::from_secs(5), || {
            closing = fleet_support::closing_lines(&proxy.log())
                .into_iter()
                .find(|l| l.contains(&format!("client {expected_client} (")))
                .map(str::to_string);
            closing.is_some()
        });
        let closing = closing.unwrap_or_else(|| panic!("no closing line:\n{}", proxy.log()));
        assert!(closing.contains(" (TLSv1_"), "{closing}");
        let ip = expected_client.rsplit_once(':').unwrap().0.to_string();
        login_from(&ip, "alice");
    }
    // A ClientHello from the load balancer's address is no PROXY header.
    let mut s = connect_from(LB, pop3s).unwrap();
    assert!(tls_support::handshake(s.try_clone().unwrap(), &a.ca, "localhost").is_err());
    let (got, _) = read_all(&mut s, Duration::from_secs(2));
    assert!(got.is_empty(), "{:?}", excerpt(&got));
}

// ---------------------------------------------------------------------------
// Out to the origin

/// `--origin-proxy-protocol` toward Dovecot's `haproxy = yes` listener: Dovecot sees the
/// header's source (rip=) and destination (lip=) for a proxied client, and the TCP peer and
/// the proxy's own address for a direct one.
#[test]
fn origin_proxy_protocol_names_the_client_to_dovecot() {
    let haproxy_port = origin().1;
    let proxy = proxy_to(
        haproxy_port,
        &["--proxy-from", LB_NET, "--origin-proxy-protocol"],
    );
    let mut s = connect_from(LB, proxy.port).unwrap();
    s.write_all(&v1(sa("203.0.113.5:40009"), sa("198.51.100.77:110")))
        .unwrap();
    let mut c = Pop3::from_stream(s);
    let g = c.greeting();
    assert!(
        g.starts_with(b"+OK ") && !excerpt(&g).contains("XCLIENT"),
        "{}",
        excerpt(&g)
    );
    pop3_after_greeting(&mut c, "mime");
    let login = login_from("203.0.113.5", "mime");
    assert!(login.contains("lip=198.51.100.77,"), "{login}");

    // IPv6 in the header, IPv4 to Dovecot: the v2 header toward it says IPv6.
    let mut s = connect_from(LB, proxy.port).unwrap();
    s.write_all(&v2(sa("[2001:db8::5]:40010"), sa("[2001:db8::1]:110"), &[]))
        .unwrap();
    let mut c = Pop3::from_stream(s);
    c.greeting();
    pop3_after_greeting(&mut c, "mime");
    let login = login_from("2001:db8::5", "mime");
    assert!(login.contains("lip=2001:db8::1,"), "{login}");

    let mut c = Pop3::connect_from(Ipv4Addr::new(127, 0, 0, 12), proxy.port);
    c.greeting();
    pop3_after_greeting(&mut c, "empty");
    let login = login_from("127.0.0.12", "empty");
    assert!(login.contains("lip=127.0.0.1,"), "{login}");
}

/// XCLIENT goes to Dovecot before anything the client sends, even a whole session pipelined
/// before the greeting arrived: Dovecot logs the login under the client's address.
#[test]
fn xclient_goes_before_commands_pipelined_before_the_greeting() {
    let proxy = proxy_to(dovecot().port, &["--origin-xclient"]);
    let mut c = Pop3::connect_from(Ipv4Addr::new(127, 0, 0, 17), proxy.port);
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n");
    assert_eq!(excerpt(&c.greeting()), excerpt(&expected_greeting()));
    assert!(c.line().starts_with(b"+OK"), "USER");
    assert!(c.line().starts_with(b"+OK"), "PASS");
    assert_eq!(
        excerpt(&c.line()),
        excerpt(dovecot().stat_line("alice").as_bytes())
    );
    assert!(c.line().starts_with(b"+OK"), "QUIT");
    assert!(c.read_to_end().is_empty());
    login_from("127.0.0.17", "alice");
}

/// `--origin-xclient`: Dovecot logs the client's own address and the proxy's session id; the
/// client's greeting has no `[XCLIENT]`.
#[test]
fn origin_xclient_names_the_client_to_dovecot() {
    let proxy = proxy_to(dovecot().port, &["--origin-xclient"]);
    let mut c = Pop3::connect_from(Ipv4Addr::new(127, 0, 0, 13), proxy.port);
    let local = c.stream().local_addr().unwrap();
    pop3_session(&mut c, "alice");
    let log = proxy.log();
    let serial = log
        .lines()
        .find(|l| l.contains(&format!("client {local} connected")))
        .and_then(|l| l.split("session ").nth(1))
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("{log}"))
        .to_string();
    let login = login_from("127.0.0.13", "alice");
    assert!(
        login.contains(&format!("session=<pop3filter-{serial}>")),
        "{login}"
    );
    assert!(!log.contains("does not offer XCLIENT"), "{log}");
}

/// Without `--origin-xclient`, before a Dovecot that offers it: the greeting still has no
/// `[XCLIENT]`, and nothing is sent (Dovecot sees the proxy's address).
#[test]
fn without_origin_xclient_nothing_is_sent() {
    let proxy = proxy_to(dovecot().port, &[]);
    let mut c = Pop3::connect_from(Ipv4Addr::new(127, 0, 0, 14), proxy.port);
    pop3_session(&mut c, "empty");
    let login = login_from("127.0.0.1", "empty");
    assert!(!login.contains("session=<pop3filter-"), "{login}");
    assert!(
        !dovecot().log().contains("rip=127.0.0.14"),
        "{}",
        dovecot().log()
    );
}

/// A client's XCLIENT or XOIP, in any case, before or after login, alone or pipelined, is
/// answered by the proxy and never reaches Dovecot (which trusts the proxy and would obey):
/// Dovecot's log has the real address, never the claimed one.
#[test]
fn a_clients_xclient_or_xoip_is_refused() {
    for (extra, from, seen) in [
        (&["--origin-xclient"][..], 15u8, "127.0.0.15"),
        (&[][..], 16u8, "127.0.0.1"),
    ] {
        let proxy = proxy_to(dovecot().port, extra);
        let mut c = Pop3::connect_from(Ipv4Addr::new(127, 0, 0, from), proxy.port);
        let g = c.greeting();
        assert_eq!(excerpt(&g), excerpt(&expected_greeting()));
        for cmd in [
            "XCLIENT ADDR=1.2.3.4",
            "XOIP 1.2.3.4",
            "xclient addr=1.2.3.4 port=4242",
            "XoIp 1.2.3.4",
        ] {
            c.cmd(cmd);
            assert_eq!(excerpt(&c.line()), excerpt(REFUSED), "{cmd}");
        }
        c.send(b"CAPA\r\nXCLIENT ADDR=1.2.3.4 PORT=1\r\nUSER alice\r\n");
        let capa = c.multi();
        assert!(capa.starts_with(b"+OK"), "{}", excerpt(&capa));
        assert_eq!(excerpt(&c.line()), excerpt(REFUSED), "pipelined");
        assert!(c.line().starts_with(b"+OK"), "USER behind it");
        c.cmd("PASS secret");
        assert!(c.line().starts_with(b"+OK"));
        c.cmd("XCLIENT ADDR=5.6.7.8");
        assert_eq!(excerpt(&c.line()), excerpt(REFUSED), "after login");
        c.cmd("STAT");
        assert_eq!(
            excerpt(&c.line()),
            excerpt(dovecot().stat_line("alice").as_bytes())
        );
        c.cmd("QUIT");
        c.line();
        let login = dovecot_login(|l| {
            rip(l) == Some(seen)
                && l.contains("user=<alice>")
                && (from != 15 || l.contains("session=<pop3filter-"))
        });
        assert!(!login.contains("1.2.3.4"), "{login}");
    }
    let log = dovecot().log();
    assert!(
        !log.contains("1.2.3.4") && !log.contains("5.6.7.8"),
        "a client's XCLIENT reached Dovecot:\n{log}"
    );
}
