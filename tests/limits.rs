//! Running out of descriptors: the daemon keeps serving the sessions it has and accepts the
//! waiting clients once descriptors are free again (issue 2, "Many clients").

mod common;

use common::{dovecot, free_port, Pop3, Proxy};
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Reads a greeting line, or nothing if none comes within `wait`.
fn try_greeting(s: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        match s.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            _ => return if line.is_empty() { None } else { Some(line) },
        }
    }
    Some(line)
}

/// Two limits one apart: sessions take two descriptors each, so with one of them the daemon
/// runs out at accept() and with the other at the connect() to the origin (which of the two
/// depends on how many descriptors the daemon was started with, e.g. whether it has a stdin).
#[test]
fn out_of_descriptors_serves_existing_sessions_and_retries() {
    let logs: Vec<String> = [40, 41].into_iter().map(out_of_descriptors).collect();
    let at_accept = logs
        .iter()
        .any(|l| l.contains("cannot accept: Too many open files"));
    let at_connect = logs
        .iter()
        .any(|l| l.contains("Too many open files (os error 24); the client waits"));
    assert!(
        at_accept && at_connect,
        "both ways of running out: {logs:?}"
    );
}

/// Runs out of descriptors under `limit`; returns the daemon's log.
fn out_of_descriptors(limit: u64) -> String {
    let port = free_port().to_string();
    let origin = dovecot().port.to_string();
    // A dozen descriptors for the daemon itself, two per session.
    let proxy = Proxy::start_limited(
        limit,
        &["-l", "127.0.0.1", "-p", &port, "-P", &origin, "127.0.0.1"],
    );
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let mut s = Pop3::connect(proxy.port);
        assert!(s.greeting().starts_with(b"+OK"));
        s.login("alice", "secret");
        sessions.push(s);
    }
    // More clients than descriptors: some wait in the kernel's queue, one may wait inside
    // the daemon for a descriptor to reach the origin with; none is turned away.
    let mut waiting: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut unanswered = Vec::new();
    for (i, s) in waiting.iter_mut().enumerate() {
        match try_greeting(s, Duration::from_millis(10)) {
            None => unanswered.push(i),
            Some(g) => assert!(
                g.starts_with(b"+OK"),
                "limit {limit}: client {i} turned away: {}",
                String::from_utf8_lossy(&g)
            ),
        }
    }
    assert!(
        !unanswered.is_empty(),
        "the limit was not reached; the test proves nothing"
    );
    assert!(
        proxy.log().contains("Too many open files"),
        "log: {}",
        proxy.log()
    );
    // The sessions it has are served all along.
    let stat = dovecot().stat_line("alice");
    for s in &mut sessions {
        s.cmd("STAT");
        assert_eq!(s.line(), stat.as_bytes());
    }
    // Free descriptors: the waiting clients are taken now.
    for mut s in sessions.drain(..) {
        s.cmd("QUIT");
        assert!(s.line().starts_with(b"+OK"));
    }
    let started = Instant::now();
    // Ten sessions ended: at least the first five waiting clients fit in what they freed.
    for &i in unanswered.iter().take(5) {
        let greeting = try_greeting(&mut waiting[i], Duration::from_secs(5));
        assert!(
            greeting.is_some_and(|g| g.starts_with(b"+OK")),
            "limit {limit}: client {i} still waits"
        );
    }
    drop(waiting);
    let mut late = Pop3::connect(proxy.port);
    assert!(
        late.greeting().starts_with(b"+OK"),
        "a new client is served again"
    );
    late.login("alice", "secret");
    late.cmd("STAT");
    assert_eq!(late.line(), stat.as_bytes());
    assert!(started.elapsed() < Duration::from_secs(5));
    proxy.log()
}
