//! The fleet of issue 12, with real parts: HAProxy (Debian's, `mode tcp`, `balance
//! leastconn`, `send-proxy-v2`, health checks by the greeting through a PROXY v2 LOCAL header)
//! in front of two pop3filter instances (`--proxy-from 127.0.0.0/8 --origin-xclient`) in front
//! of one Dovecot that trusts them (`login_trusted_networks = 127.0.0.0/8`). Clients connect
//! from their own loopback addresses (127.0.0.11, .12, …). The fleet is
//! `fleet_support::haproxy_fleet`; one instance killed: `tests/fleet_haproxy_kill.rs`.
//!
//! * Each instance's access log and Dovecot's log name the client's own address; sessions
//!   are spread over both instances; the health checks keep both up without a warning.
//! * Dovecot's per-IP auth penalty: one failed login from one address does not slow a login
//!   from another one with XCLIENT (it does without: the figures are printed).

mod common;
mod fleet_support;

use common::wire_form;
use common::{excerpt, start_dovecot_env, unstuff, PASSWORD};
use fleet_support::haproxy_fleet::{ip, trusted_dovecot, Fleet};
use fleet_support::{connected, dovecot_logins, eventually, rip};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Warnings of an instance's log, but the one every test instance has at start.
fn warnings(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" WARN ") && !l.contains("no management credentials"))
        .collect()
}

#[test]
fn the_clients_address_reaches_both_instances_and_dovecot() {
    let d = trusted_dovecot();
    let fleet = Fleet::start(d.port, &["--origin-xclient"]);
    let expected = wire_form(&d.message("alice", 1));
    let mut clients: Vec<SocketAddr> = Vec::new();

    // Twelve sessions one after the other, from 127.0.0.11 to .22.
    for last in 11..=22 {
        let mut c = fleet.client(ip(last));
        clients.push(c.stream().local_addr().unwrap());
        c.login("alice", PASSWORD);
        c.cmd("RETR 1");
        assert_eq!(unstuff(&c.multi()), expected, "RETR 1 from {}", ip(last));
        c.cmd("QUIT");
        assert!(c.line().starts_with(b"+OK"));
    }
    // Six at once, from .23 to .28, all logged in before any leaves.
    let mut open = Vec::new();
    for last in 23..=28 {
        let mut c = fleet.client(ip(last));
        c.login("alice", PASSWORD);
        clients.push(c.stream().local_addr().unwrap());
        open.push(c);
    }
    let concurrent: Vec<SocketAddr> = clients[12..].to_vec();
    for mut c in open {
        c.cmd("QUIT");
        assert!(c.line().starts_with(b"+OK"));
    }

    // Each instance's log has the client's own address and port, HAProxy's as the peer.
    let mut per_instance = [0usize; 2];
    let mut concurrent_per_instance = [0usize; 2];
    for client in &clients {
        let mut by = None;
        eventually(Duration::from_secs(5), || {
            by = fleet.served_by(*client);
            by.is_some()
        });
        let by = by.unwrap_or_else(|| {
            panic!(
                "no instance logged the client {client}\n--- a ---\n{}\n--- b ---\n{}",
                fleet.a.log(),
                fleet.b.log()
            )
        });
        let (i, p) = if by == "a" {
            (0, &fleet.a)
        } else {
            (1, &fleet.b)
        };
        per_instance[i] += 1;
        if concurrent.contains(client) {
            concurrent_per_instance[i] += 1;
        }
        let entry = connected(&p.log())
            .into_iter()
            .find(|e| e.client == *client)
            .unwrap();
        assert_eq!(
            entry.peer.ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "{entry:?}"
        );
        assert_ne!(entry.peer, *client);
    }
    eprintln!(
        "sessions per instance: a {}, b {} (of the 6 concurrent ones: a {}, b {})",
        per_instance[0], per_instance[1], concurrent_per_instance[0], concurrent_per_instance[1]
    );
    assert!(
        per_instance.iter().all(|&n| n >= 4) && concurrent_per_instance.iter().all(|&n| n >= 2),
        "sessions not spread over both instances: {per_instance:?}, concurrent \
         {concurrent_per_instance:?}"
    );

    // Dovecot's log has each client's own address, once.
    for client in &clients {
        let needle = client.ip().to_string();
        let mut logins = Vec::new();
        eventually(Duration::from_secs(5), || {
            logins = dovecot_logins(&d.log())
                .into_iter()
                .filter(|l| rip(l) == Some(needle.as_str()))
                .map(str::to_string)
                .collect();
            !logins.is_empty()
        });
        assert_eq!(
            logins.len(),
            1,
            "logins from {needle} in Dovecot's log: {logins:?}"
        );
        assert!(logins[0].contains("session=<pop3filter-"), "{}", logins[0]);
    }

    // The health checks: a LOCAL header (the session's client is HAProxy itself), greeting,
    // QUIT; no warning on either side, both servers up all along.
    for (name, p) in [("a", &fleet.a), ("b", &fleet.b)] {
        let checks = |log: &str| -> Vec<u64> {
            connected(log)
                .into_iter()
                .filter(|e| e.client == e.peer)
                .map(|e| e.serial)
                .collect()
        };
        // Every 300 ms: three of them within a few seconds.
        eventually(Duration::from_secs(5), || checks(&p.log()).len() >= 3);
        let log = p.log();
        let serials = checks(&log);
        eprintln!("instance {name}: health checks in sessions {serials:?}");
        assert!(
            serials.len() >= 3,
            "health checks on {name}: {serials:?}\n{log}"
        );
        for serial in serials {
            if let Some(line) = fleet_support::closing_line(&log, serial) {
                assert!(line.ends_with(": quit"), "a health check ended so: {line}");
            }
        }
        assert!(
            warnings(&log).is_empty(),
            "instance {name} warned: {:?}",
            warnings(&log)
        );
    }
    let hlog = fleet.haproxy.log();
    assert!(!hlog.contains(" is DOWN"), "{hlog}");
    assert!(fleet.haproxy.wait_status(&["a", "b"], "UP", Duration::ZERO));
}

/// The time a correct login of `mime` from `good` takes (USER to PASS's +OK), right after a
/// failed login of `alice` from `bad`, through `fleet`.
fn login_after_failure(fleet: &Fleet, bad: Ipv4Addr, good: Ipv4Addr) -> (Duration, Duration) {
    let mut c = fleet.client(bad);
    let started = Instant::now();
    c.cmd("USER alice");
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("PASS wrong");
    let reply = c.line();
    assert!(reply.starts_with(b"-ERR"), "{}", excerpt(&reply));
    let failed = started.elapsed();
    c.cmd("QUIT");
    c.read_to_end();

    let mut c = fleet.client(good);
    let started = Instant::now();
    c.login("mime", PASSWORD);
    let took = started.elapsed();
    c.cmd("QUIT");
    c.line();
    (failed, took)
}

/// Dovecot with its per-IP auth penalty on: a failed login of one user from 127.0.0.41 does
/// not slow another user's login from 127.0.0.42 when the instances forward the client's
/// address with XCLIENT (while the failing address itself is slowed: the penalty is on and
/// follows the forwarded address). Without XCLIENT every login comes from the proxy's address,
/// so the same login is slowed: printed, and checked only loosely (a fact about Dovecot).
#[test]
fn a_failed_login_elsewhere_does_not_slow_a_login_with_xclient() {
    let d = start_dovecot_env(&[
        ("DOVECOT_TRUSTED_NETWORKS", "127.0.0.0/8".to_string()),
        ("DOVECOT_AUTH_PENALTY", "yes".to_string()),
    ]);
    let with = Fleet::start(d.port, &["--origin-xclient"]);
    let without = Fleet::start(d.port, &[]);

    let (failed, fast) = login_after_failure(&with, ip(41), ip(42));
    // The control: the failing address itself is delayed, so the penalty is on.
    let (_, same_address) = login_after_failure(&with, ip(43), ip(43));
    let (_, slow) = login_after_failure(&without, ip(44), ip(45));
    eprintln!(
        "penalty: a failed login took {failed:?}; the next login from another address took \
         {fast:?} with XCLIENT, {slow:?} without; from the failing address itself with \
         XCLIENT {same_address:?}"
    );
    assert!(
        fast < Duration::from_secs(1),
        "with XCLIENT, a login from another address after a failure took {fast:?}\n{}",
        d.log()
    );
    assert!(
        same_address >= Duration::from_secs(1),
        "with XCLIENT, a login from the failing address took only {same_address:?}: is \
         Dovecot's penalty on? (then the figure above proves nothing)"
    );
    assert!(
        slow > fast,
        "without XCLIENT the login took {slow:?}, with {fast:?}: expected Dovecot's penalty"
    );
    let logins = dovecot_logins(&d.log()).join("\n");
    for address in ["127.0.0.42", "127.0.0.43"] {
        assert!(logins.contains(&format!("rip={address},")), "{logins}");
    }
    assert!(!logins.contains("rip=127.0.0.45,"), "{logins}");
}
