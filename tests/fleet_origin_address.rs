//! What the origin is told of the client's address (issue 12), without HAProxy: a Dovecot
//! that trusts 127.0.0.0/8 for XCLIENT and has a `haproxy = yes` listener
//! (`fleet_support::client_address`), clients from their own loopback addresses.
//!
//! Proves: `--origin-proxy-protocol` (Dovecot's rip= and lip= are the header's); XCLIENT
//! (`--origin-xclient`: rip= the client, sent before commands pipelined ahead of the greeting;
//! without it nothing is sent); a client's own XCLIENT / XOIP is refused by the proxy and never
//! seen by Dovecot.

mod common;
mod fleet_support;

use common::{connect_from, excerpt, Pop3};
use fleet_support::client_address::{
    dovecot, dovecot_login, expected_greeting, login_from, origin, pop3_after_greeting,
    pop3_session, proxy_to, sa, LB, LB_NET,
};
use fleet_support::{rip, v1, v2};
use std::io::Write;
use std::net::Ipv4Addr;

const REFUSED: &[u8] = b"-ERR XCLIENT is not allowed through this proxy\r\n";

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
