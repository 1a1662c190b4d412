//! The fleet of issue 12, with real parts: HAProxy (Debian's, `mode tcp`, `balance
//! leastconn`, `send-proxy-v2`, health checks by the greeting through a PROXY v2 LOCAL header)
//! in front of two pop3filter instances (`--proxy-from 127.0.0.0/8 --origin-xclient`) in front
//! of one Dovecot that trusts them (`login_trusted_networks = 127.0.0.0/8`). Clients connect
//! from their own loopback addresses (127.0.0.11, .12, …).
//!
//! * Each instance's access log and Dovecot's log name the client's own address; sessions
//!   are spread over both instances; the health checks keep both up without a warning.
//! * Dovecot's per-IP auth penalty: one failed login from one address does not slow a login
//!   from another one with XCLIENT (it does without: the figures are printed).
//! * SIGKILL of one instance in a steady run: HAProxy marks it down, new sessions go to the
//!   other, every session that completed got every byte of its message right.

mod common;
mod fleet_support;

use common::{
    connect_from, excerpt, free_port, lf_to_crlf, start_dovecot_env, unstuff, Dovecot, Pop3, Proxy,
    PASSWORD,
};
use fleet_support::{connected, dovecot_logins, eventually, fleet_config, rip, Haproxy};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The Dovecot shared by the tests of this file that do not need the auth penalty: it trusts
/// 127.0.0.0/8 for XCLIENT (and has no penalty, as every test Dovecot).
fn trusted_dovecot() -> &'static Dovecot {
    static SHARED: OnceLock<Dovecot> = OnceLock::new();
    SHARED.get_or_init(|| {
        start_dovecot_env(&[("DOVECOT_TRUSTED_NETWORKS", "127.0.0.0/8".to_string())])
    })
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// HAProxy and two instances `a` and `b` in front of 127.0.0.1:`origin_port`.
struct Fleet {
    a: Proxy,
    b: Proxy,
    haproxy: Haproxy,
}

impl Fleet {
    /// Starts both instances with `--proxy-from 127.0.0.0/8` and `extra`, then HAProxy, and
    /// waits until HAProxy's checks have passed on both.
    fn start(origin_port: u16, extra: &[&str]) -> Fleet {
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
    fn client(&self, from: Ipv4Addr) -> Pop3 {
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
    fn served_by(&self, client: SocketAddr) -> Option<&'static str> {
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

/// What a client gets for a stored message once unstuffed: CRLF line ends, plus the CRLF
/// Dovecot adds when the file does not end with a newline.
fn wire_form(file: &[u8]) -> Vec<u8> {
    let mut data = lf_to_crlf(file);
    if !data.is_empty() && !data.ends_with(b"\n") {
        data.extend_from_slice(b"\r\n");
    }
    data
}

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

/// Whether process `pid` (our child) has exited and waits to be reaped.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
        .unwrap_or(true)
}

/// How one session of the steady run went.
struct Outcome {
    started: Instant,
    client: Option<SocketAddr>,
    result: Result<Vec<u8>, String>,
}

/// Greeting, login, RETR `msg` (the unstuffed body), QUIT, without panicking.
fn retr_session(
    from: Ipv4Addr,
    port: u16,
    msg: usize,
) -> (Option<SocketAddr>, Result<Vec<u8>, String>) {
    let stream = match connect_from(from, port) {
        Ok(s) => s,
        Err(e) => return (None, Err(format!("connect: {e}"))),
    };
    let local = stream.local_addr().ok();
    let run = || -> Result<Vec<u8>, String> {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut w = stream.try_clone().map_err(|e| e.to_string())?;
        let mut r = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut line = Vec::new();
        let read_line = |r: &mut BufReader<_>, line: &mut Vec<u8>| -> Result<(), String> {
            line.clear();
            match r.read_until(b'\n', line) {
                Ok(0) => Err("closed".to_string()),
                Ok(_) if line.ends_with(b"\n") => Ok(()),
                Ok(_) => Err(format!("closed mid-line: {}", excerpt(line))),
                Err(e) => Err(e.to_string()),
            }
        };
        read_line(&mut r, &mut line)?;
        if !line.starts_with(b"+OK") {
            return Err(format!("greeting {}", excerpt(&line)));
        }
        for cmd in ["USER alice", "PASS secret"] {
            w.write_all(format!("{cmd}\r\n").as_bytes())
                .map_err(|e| e.to_string())?;
            read_line(&mut r, &mut line)?;
            if !line.starts_with(b"+OK") {
                return Err(format!("{cmd}: {}", excerpt(&line)));
            }
        }
        w.write_all(format!("RETR {msg}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        read_line(&mut r, &mut line)?;
        reply.extend_from_slice(&line);
        if !line.starts_with(b"+OK") {
            return Err(format!("RETR: {}", excerpt(&line)));
        }
        loop {
            read_line(&mut r, &mut line).map_err(|e| format!("in RETR: {e}"))?;
            reply.extend_from_slice(&line);
            if line == b".\r\n" {
                break;
            }
        }
        w.write_all(b"QUIT\r\n").map_err(|e| e.to_string())?;
        read_line(&mut r, &mut line)?;
        if !line.starts_with(b"+OK") {
            return Err(format!("QUIT: {}", excerpt(&line)));
        }
        Ok(unstuff(&reply))
    };
    (local, run())
}

/// A steady run of sessions (four clients, each one session after another, RETR of an 86 KB
/// dot-stuffed message); instance `a` is SIGKILLed in the middle. HAProxy marks it down,
/// every session that started after that is served by `b` and succeeds, and every session
/// that completed (before, during or after) got the message byte for byte.
#[test]
fn killing_an_instance_moves_new_sessions_to_the_other() {
    let d = trusted_dovecot();
    let fleet = Fleet::start(d.port, &["--origin-xclient"]);
    let expected = Arc::new(wire_form(&d.message("alice", 8)));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let port = fleet.haproxy.port;
    let workers: Vec<_> = (0..4u8)
        .map(|i| {
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let (client, result) = retr_session(ip(31 + i), port, 8);
                    outcomes.lock().unwrap().push(Outcome {
                        started,
                        client,
                        result,
                    });
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    let count = || outcomes.lock().unwrap().len();
    let warmed = eventually(Duration::from_secs(10), || count() >= 12);
    assert!(warmed, "the steady run did not get going");
    let served_by_a = connected(&fleet.a.log())
        .iter()
        .filter(|e| e.client != e.peer)
        .count();
    assert!(served_by_a > 0, "instance a served nothing before the kill");

    // SAFETY: kill(2) on the pid of a child this test started.
    unsafe { libc::kill(fleet.a.pid() as libc::pid_t, libc::SIGKILL) };
    // Dead (a zombie, its sockets closed) from here on.
    let gone = eventually(Duration::from_secs(5), || is_zombie(fleet.a.pid()));
    assert!(gone, "instance a did not die");
    let killed = Instant::now();
    let down = fleet
        .haproxy
        .wait_status(&["a"], "DOWN", Duration::from_secs(5));
    let marked_down = Instant::now();
    assert!(
        down,
        "HAProxy did not mark the killed instance down: {:?}\n{}",
        fleet.haproxy.servers(),
        fleet.haproxy.log()
    );
    let after_down = eventually(Duration::from_secs(10), || {
        outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.started > marked_down)
            .count()
            >= 12
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert!(after_down, "fewer than 12 sessions after the kill");

    let outcomes = outcomes.lock().unwrap();
    let (mut completed, mut broken, mut later) = (0, Vec::new(), 0);
    let b_clients: HashSet<SocketAddr> = connected(&fleet.b.log())
        .into_iter()
        .map(|e| e.client)
        .collect();
    for o in outcomes.iter() {
        match &o.result {
            Ok(body) => {
                completed += 1;
                assert!(
                    body == &*expected,
                    "a session that completed got {} bytes that differ from the {} of the \
                     message",
                    body.len(),
                    expected.len()
                );
            }
            Err(e) => broken.push((o.started.saturating_duration_since(killed), e.clone())),
        }
        if o.started > marked_down {
            later += 1;
            assert!(
                o.result.is_ok(),
                "a session started after HAProxy marked a down failed: {:?}",
                o.result.as_ref().err()
            );
            let client = o.client.unwrap();
            assert!(
                b_clients.contains(&client)
                    || eventually(Duration::from_secs(3), || {
                        connected(&fleet.b.log()).iter().any(|e| e.client == client)
                    }),
                "the session of {client} (after the kill) is not in b's log"
            );
        }
    }
    eprintln!(
        "steady run: {} sessions, {completed} completed (every byte right), {} broken by the \
         kill, {later} after HAProxy marked a down {:?} after the SIGKILL; a served {served_by_a} \
         before; broken: {broken:?}",
        outcomes.len(),
        broken.len(),
        marked_down - killed
    );
    // Only sessions in flight on a when it died may have broken.
    for (since_kill, e) in &broken {
        assert!(
            *since_kill == Duration::ZERO,
            "a session started {since_kill:?} after the kill broke: {e}"
        );
    }
    let hlog = fleet.haproxy.log();
    assert!(hlog.contains("Server pop3filters/a is DOWN"), "{hlog}");
    assert!(!hlog.contains("Server pop3filters/b is DOWN"), "{hlog}");
}
