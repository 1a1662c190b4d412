//! The fleet of `tests/fleet_haproxy.rs` and `tests/fleet_haproxy_kill.rs`: HAProxy (with
//! `fleet_config`) in front of two pop3filter instances in front of 127.0.0.1:`origin_port`,
//! both up by HAProxy's checks before a test begins; a Dovecot that trusts 127.0.0.0/8 for
//! XCLIENT; client addresses; a stored message as a client gets it.

use super::{connected, eventually, fleet_config, Haproxy};
use crate::common::{excerpt, free_port, start_dovecot_env, Dovecot, Pop3, Proxy};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

/// The Dovecot shared by the tests of a binary that do not need the auth penalty: it trusts
/// 127.0.0.0/8 for XCLIENT (and has no penalty, as every test Dovecot).
pub fn trusted_dovecot() -> &'static Dovecot {
    static SHARED: OnceLock<Dovecot> = OnceLock::new();
    SHARED.get_or_init(|| {
        start_dovecot_env(&[("DOVECOT_TRUSTED_NETWORKS", "127.0.0.0/8".to_string())])
    })
}

/// The loopback address 127.0.0.`last`, a client's own.
pub fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// HAProxy and two instances `a` and `b` in front of 127.0.0.1:`origin_port`.
pub struct Fleet {
    pub a: Proxy,
    pub b: Proxy,
    pub haproxy: Haproxy,
}

impl Fleet {
    /// Starts both instances with `--proxy-from 127.0.0.0/8` and `extra`, then HAProxy, and
    /// waits until HAProxy's checks have passed on both.
    pub fn start(origin_port: u16, extra: &[&str]) -> Fleet {
        let instance = || {
            let mut args = vec!["--proxy-from", "127.0.0.0/8"];
            args.extend_from_slice(extra);
            Proxy::for_origin(origin_port, &args)
        };
        let (a, b) = (instance(), instance());
        let port = free_port();
        let haproxy = Haproxy::start(port, &fleet_config(port, &[("a", a.port), ("b", b.port)]));
        let fleet = Fleet { a, b, haproxy };
        let up = eventually(Duration::from_secs(10), || {
            let s = fleet.haproxy.servers();
            ["a", "b"].iter().all(|n| {
                s.get(*n).is_some_and(|r| {
                    r.get("status").map(String::as_str) == Some("UP")
                        && r.get("check_status").map(String::as_str) == Some("L7OK")
                })
            })
        });
        assert!(
            up,
            "HAProxy's checks did not pass on both instances: {:?}\n{}\n--- a ---\n{}\n--- b ---\n{}",
            fleet.haproxy.servers(),
            fleet.haproxy.log(),
            fleet.a.log(),
            fleet.b.log()
        );
        fleet
    }

    /// A client from `from` to HAProxy, greeting read and checked.
    pub fn client(&self, from: Ipv4Addr) -> Pop3 {
        let mut c = Pop3::connect_from(from, self.haproxy.port);
        let g = c.greeting();
        assert!(
            g.starts_with(b"+OK ") && !excerpt(&g).contains("XCLIENT"),
            "greeting through the fleet: {}",
            excerpt(&g)
        );
        c
    }

    /// Which instance logged the client whose TCP address (as HAProxy saw it) is `client`.
    pub fn served_by(&self, client: SocketAddr) -> Option<&'static str> {
        let has = |p: &Proxy| connected(&p.log()).iter().any(|e| e.client == client);
        if has(&self.a) {
            Some("a")
        } else if has(&self.b) {
            Some("b")
        } else {
            None
        }
    }
}
