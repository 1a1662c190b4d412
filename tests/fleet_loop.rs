//! Loops (issue 12): a proxy pointed at itself answers `-ERR … (a loop)` at once, and a loop
//! through another relay unwinds by itself once descriptors run out, leaving both daemons
//! with the descriptors they started with and still answering.

mod common;
mod fleet_support;

use common::{excerpt, free_port, Proxy};
use fleet_support::{fd_count, read_all, settled_fd_count, End};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Sessions the daemon logged as connected (plain, no PROXY header).
fn sessions_opened(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(": client ") && l.contains(" connected, origin "))
        .count()
}

/// A client to 127.0.0.1:`port` that reads until the daemon closes (up to `within`).
fn answer(port: u16, within: Duration) -> (Vec<u8>, End, Duration) {
    let started = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (bytes, end) = read_all(&mut c, within);
    (bytes, end, started.elapsed())
}

/// Asserts `bytes` is exactly one `-ERR pop3filter: … (a loop)` line and the connection was
/// closed behind it.
fn assert_loop_err(bytes: &[u8], end: &End, took: Duration, proxy: &Proxy) {
    let text = excerpt(bytes);
    assert!(
        bytes.starts_with(b"-ERR pop3filter: ")
            && bytes.ends_with(b"(a loop)\r\n")
            && bytes.iter().filter(|&&b| b == b'\n').count() == 1,
        "expected one `-ERR pop3filter: … (a loop)` line, got {text:?} ({end:?}, after {took:?})\n{}",
        proxy.log()
    );
    assert_eq!(*end, End::Closed, "not closed after {text:?}");
    assert!(
        took < Duration::from_secs(1),
        "the loop was answered after {took:?}, not at once: {text:?}"
    );
}

fn self_loop(origin_host: &str) {
    let port = free_port().to_string();
    let proxy = Proxy::start(&["-l", "127.0.0.1", "-p", &port, "-P", &port, origin_host]);
    let base = settled_fd_count(proxy.pid());

    // One client, three times in a row.
    for _ in 0..3 {
        let (bytes, end, took) = answer(proxy.port, Duration::from_secs(5));
        assert_loop_err(&bytes, &end, took, &proxy);
    }
    // Twenty at once.
    let port = proxy.port;
    let clients: Vec<_> = (0..20)
        .map(|_| thread::spawn(move || answer(port, Duration::from_secs(5))))
        .collect();
    for c in clients {
        let (bytes, end, took) = c.join().unwrap();
        assert_loop_err(&bytes, &end, took, &proxy);
    }
    // Each client's session and at most the one of the proxy's own connection to itself.
    let opened = sessions_opened(&proxy.log());
    eprintln!("self loop via {origin_host}: {opened} sessions for 23 clients");
    assert!(
        opened <= 2 * 23,
        "{opened} sessions for 23 clients: the self-connections went on\n{}",
        proxy.log()
    );
    // Nothing is left behind.
    let mut now = 0;
    let back = fleet_support::eventually(Duration::from_secs(3), || {
        now = fd_count(proxy.pid());
        now == base
    });
    assert!(
        back,
        "descriptors: {base} before, {now} after the loops\n{}",
        proxy.log()
    );
    // And it still answers at once.
    let (bytes, end, took) = answer(proxy.port, Duration::from_secs(5));
    assert_loop_err(&bytes, &end, took, &proxy);
}

#[test]
fn a_proxy_pointed_at_its_own_port_answers_err_at_once() {
    self_loop("127.0.0.1");
}

/// The origin by name: `localhost` resolves to ::1 (nobody listens there: refused, the next
/// address is tried) and 127.0.0.1 (the proxy itself).
#[test]
fn a_proxy_pointed_at_itself_by_name_answers_err_at_once() {
    self_loop("localhost");
}

/// A (-P B's port) and B (-P A's port), each with `nofile` descriptors: one client to A. The
/// chain of sessions A→B→A→… grows until descriptors run out; then it must unwind by itself
/// (the client gets -ERR or EOF within seconds), both daemons get back to the descriptors they
/// started with, and a second client is answered the same way.
fn loop_through_another_relay(nofile: u64) {
    let pa = free_port();
    let mut pb = free_port();
    while pb == pa {
        pb = free_port();
    }
    let (sa, sb) = (pa.to_string(), pb.to_string());
    let a = Proxy::start_limited(
        nofile,
        &["-l", "127.0.0.1", "-p", &sa, "-P", &sb, "127.0.0.1"],
    );
    let b = Proxy::start_limited(
        nofile,
        &["-l", "127.0.0.1", "-p", &sb, "-P", &sa, "127.0.0.1"],
    );
    let (base_a, base_b) = (settled_fd_count(a.pid()), settled_fd_count(b.pid()));
    for attempt in 1..=2 {
        let (bytes, end, took) = answer(a.port, Duration::from_secs(12));
        let (fa, fb) = (fd_count(a.pid()), fd_count(b.pid()));
        eprintln!(
            "nofile {nofile}, client {attempt}: {:?} ({end:?}) after {took:?}; descriptors A {fa}, B {fb}",
            excerpt(&bytes)
        );
        assert!(
            end != End::Silent,
            "nofile {nofile}, client {attempt}: no answer and no close within {took:?} \
             (descriptors: A {fa}/{nofile}, B {fb}/{nofile}; {} and {} sessions opened): \
             the loop did not unwind",
            sessions_opened(&a.log()),
            sessions_opened(&b.log())
        );
        assert!(
            bytes.is_empty() || bytes.starts_with(b"-ERR"),
            "nofile {nofile}, client {attempt}: got {:?}",
            excerpt(&bytes)
        );
        let (mut na, mut nb) = (0, 0);
        let back = fleet_support::eventually(Duration::from_secs(15), || {
            na = fd_count(a.pid());
            nb = fd_count(b.pid());
            na == base_a && nb == base_b
        });
        assert!(
            back,
            "nofile {nofile}, after client {attempt}: descriptors A {na} (was {base_a}), \
             B {nb} (was {base_b})"
        );
    }
}

#[test]
fn a_loop_through_another_relay_unwinds_63_descriptors() {
    loop_through_another_relay(63);
}

#[test]
fn a_loop_through_another_relay_unwinds_64_descriptors() {
    loop_through_another_relay(64);
}
