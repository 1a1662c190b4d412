//! The client's real address (issue 12), without HAProxy: well-formed PROXY headers written
//! by hand by a raw client bound to 127.0.0.11 (the "load balancer" of
//! `--proxy-from 127.0.0.11/32`), in front of a Dovecot that trusts 127.0.0.0/8 for XCLIENT
//! (`fleet_support::client_address`).
//!
//! Proves: v1 and v2 split byte by byte and at every split point, IPv6, LOCAL and UNKNOWN,
//! TLVs, bytes behind the header kept for POP3; the access log and Dovecot's login name the
//! session's client (the header's source; the TCP peer for LOCAL and UNKNOWN); a header from
//! an untrusted address is a bad command; on a POP3S listener the header comes first, then
//! TLS. Bad and missing headers: `tests/fleet_proxy_header_bad.rs`; what the origin is told:
//! `tests/fleet_origin_address.rs`.

mod common;
mod fleet_support;
mod tls_support;

use common::{certs, connect_from, excerpt, free_port, Pop3, Proxy};
use fleet_support::client_address::{
    assert_silent, dovecot, expected_greeting, header_proxy, login_from, pop3_after_greeting,
    pop3_session, proxy_to, sa, LB, LB_NET,
};
use fleet_support::{
    closing_line, connected, eventually, read_all, v1, v2, v2_local, write_split, End, V2_SIG,
};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

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
