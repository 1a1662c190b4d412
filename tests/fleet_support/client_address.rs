//! The setting of the client-address tests without HAProxy (`tests/fleet_proxy_header.rs`,
//! `tests/fleet_proxy_header_bad.rs`, `tests/fleet_origin_address.rs`): the "load balancer"
//! address, a Dovecot that trusts 127.0.0.0/8 for XCLIENT and has a `haproxy = yes`
//! listener, the daemon in front of it, and the checks of a session through it (greeting,
//! STAT, Dovecot's login line).

use super::{dovecot_logins, eventually, rip};
use crate::common::{excerpt, free_port, start_dovecot_env, Dovecot, Pop3, Proxy};
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

/// The address the tests' "load balancer" connects from.
pub const LB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
pub const LB_NET: &str = "127.0.0.11/32";

/// The Dovecot of these tests: XCLIENT for 127.0.0.0/8 on its POP3 port, and a listener that
/// takes a PROXY header first on `.1`.
pub fn origin() -> &'static (Dovecot, u16) {
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

pub fn dovecot() -> &'static Dovecot {
    &origin().0
}

/// The daemon on 127.0.0.1 in front of 127.0.0.1:`origin_port`; `extra` before the origin.
pub fn proxy_to(origin_port: u16, extra: &[&str]) -> Proxy {
    Proxy::for_origin(origin_port, extra)
}

/// The daemon in front of this file's Dovecot, taking PROXY headers from 127.0.0.11 and
/// telling Dovecot the client's address with XCLIENT.
pub fn header_proxy() -> Proxy {
    proxy_to(
        dovecot().port,
        &["--proxy-from", LB_NET, "--origin-xclient"],
    )
}

/// Dovecot's greeting as a proxy shows it: Dovecot's own without the `[XCLIENT] ` code it
/// gives trusted peers (every test client is one).
pub fn expected_greeting() -> Vec<u8> {
    let mut c = Pop3::connect(dovecot().port);
    let g = String::from_utf8(c.greeting()).unwrap();
    assert!(g.starts_with("+OK [XCLIENT] "), "Dovecot's greeting: {g:?}");
    c.cmd("QUIT");
    c.read_to_end();
    g.replacen("[XCLIENT] ", "", 1).into_bytes()
}

/// Waits (5 s) for a Dovecot login line that `pred` accepts.
pub fn dovecot_login(pred: impl Fn(&str) -> bool) -> String {
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
pub fn login_from(ip: &str, user: &str) -> String {
    dovecot_login(|l| rip(l) == Some(ip) && l.contains(&format!("user=<{user}>")))
}

/// Greeting (checked), login, STAT (checked against the maildir), QUIT.
pub fn pop3_session(c: &mut Pop3, user: &str) {
    let g = c.greeting();
    assert_eq!(excerpt(&g), excerpt(&expected_greeting()), "greeting");
    pop3_after_greeting(c, user);
}

pub fn pop3_after_greeting(c: &mut Pop3, user: &str) {
    c.login(user, crate::common::PASSWORD);
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

/// Asserts that nothing arrives on `s` for `wait` (the connection stays open).
pub fn assert_silent(s: &mut TcpStream, wait: Duration, what: &str) {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("{what}: the proxy closed the connection"),
        Ok(n) => panic!("{what}: the proxy sent {:?}", excerpt(&b[..n])),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A socket address from its text.
pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
