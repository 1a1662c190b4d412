//! PROXY headers that do not come right (issue 12), from a raw client bound to 127.0.0.11 (the
//! "load balancer" of `--proxy-from 127.0.0.11/32`; `fleet_support::client_address`).
//!
//! Proves: malformed and too long headers (and HTTP, POP3 or a TLS ClientHello instead of
//! one) are closed at once, not one byte sent, and logged as bad PROXY headers; a missing,
//! half or trickled header is closed 3 s after the connection, not one byte sent, and the
//! origin never sees a connection; until the header's last byte there is no greeting and no
//! connection to the origin.

mod common;
mod fleet_support;
mod tls_support;

use common::{connect_from, excerpt, Pop3};
use fleet_support::client_address::{assert_silent, header_proxy, proxy_to, sa, LB, LB_NET};
use fleet_support::{connected, eventually, read_all, v1, v2, write_split, End, V2_SIG};
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

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
