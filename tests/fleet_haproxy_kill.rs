//! One instance of the HAProxy fleet (issue 12; `fleet_support::haproxy_fleet`: HAProxy in
//! front of two pop3filter instances with `--origin-xclient`, in front of one Dovecot that
//! trusts them) SIGKILLed in a steady run of sessions.
//!
//! Proves: HAProxy marks the killed instance down and new sessions go to the other one, every
//! one of them served and right; only sessions in flight on the killed instance may break, and
//! every session that completed (before, during or after) got every byte of its message right.

mod common;
mod fleet_support;

use common::wire_form;
use common::{connect_from, excerpt, unstuff};
use fleet_support::haproxy_fleet::{ip, trusted_dovecot, Fleet};
use fleet_support::{connected, eventually};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
