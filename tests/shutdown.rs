//! Shutdown on SIGTERM and SIGINT, and SIGPIPE (issue 6), against a scripted
//! origin that records every line the proxy sends it (so a QUIT sent on a
//! client's behalf would show).
//!
//! Proves that: on SIGTERM (and the same on SIGINT) with a 20 MiB filtered
//! RETR going to a slow reader, an idle session and a working one, new
//! connections are refused at once; the working session is still served
//! during the grace period (its own QUIT reaches the origin); the idle one
//! and the slow RETR are closed at the end of the grace period (`-g 1`),
//! the RETR without its terminator, and no QUIT reaches the origin for them;
//! the daemon exits 0 within grace + 2 s and no filter process remains; a
//! second signal ends the grace period at once; a daemon with no session
//! left exits at once (without waiting for the grace period); SIGPIPE does
//! not kill it and it keeps serving without leaking.

mod common;
mod faults_support;

use common::Proxy;
use faults_support::{
    alive, children, eventually, has_quit, has_terminator, s, signal, small_retr, small_stat,
    tagged, unique_tag, wait_exit, Baseline, Client, Exit, Origin,
};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Waits up to `within` for connections to 127.0.0.1:`port` to be refused.
fn refused_within(port: u16, within: Duration) -> bool {
    eventually(within, || {
        matches!(
            TcpStream::connect(("127.0.0.1", port)),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused
        )
    })
}

/// What the slow reader of the big RETR saw.
struct SlowRead {
    bytes: usize,
    tail: Vec<u8>,
    ended: bool,
}

/// Reads 16 KiB every 20 ms (about 800 KiB/s) until `hurry` is set, then
/// as fast as it can, until the connection ends or 10 s pass.
fn slow_reader(mut c: Client, hurry: Arc<AtomicBool>) -> thread::JoinHandle<SlowRead> {
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut bytes = 0;
        let mut tail = Vec::new();
        while Instant::now() < deadline {
            let max = if hurry.load(Ordering::SeqCst) {
                1 << 20
            } else {
                16 * 1024
            };
            let part = match c.read_some(max, Duration::from_millis(20)) {
                Ok(part) => part,
                Err(_) => {
                    return SlowRead {
                        bytes,
                        tail,
                        ended: true,
                    }
                }
            };
            bytes += part.len();
            tail.extend_from_slice(&part);
            if tail.len() > 64 {
                tail.drain(..tail.len() - 64);
            }
            if !hurry.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        SlowRead {
            bytes,
            tail,
            ended: false,
        }
    })
}

fn shutdown_in_the_middle_of_sessions(sig: libc::c_int, name: &str) {
    let origin = Origin::normal();
    let tag = unique_tag("shutdown");
    let proxy = Proxy::for_origin(origin.port, &["-g", "1", "-m", &tag, "-t", "cat"]);
    let pid = proxy.pid();

    // Origin connection 0: a 20 MiB RETR through `cat`, to a slow reader.
    let mut a = Client::session(proxy.port, "big");
    a.cmd("RETR 1");
    let status = a.line();
    assert!(status.starts_with(b"+OK"), "{}", s(&status));
    assert!(
        eventually(Duration::from_secs(2), || !tagged(&tag).is_empty()),
        "no filter runs for the RETR"
    );
    let hurry = Arc::new(AtomicBool::new(false));
    let reader = slow_reader(a, hurry.clone());
    // Origin connection 1: logged in, idle.
    let mut idle = Client::session(proxy.port, "alice");
    // Origin connection 2: works during the grace period.
    let mut busy = Client::session(proxy.port, "alice");
    assert!(eventually(Duration::from_secs(2), || origin.accepted() == 3));

    let signalled = Instant::now();
    signal(pid, sig);
    assert!(
        refused_within(proxy.port, Duration::from_millis(500)),
        "{name}: new connections are still accepted after 500 ms"
    );
    assert!(
        alive(pid),
        "{name}: the daemon exited before the grace period"
    );

    // Sessions in progress are served during the grace period.
    busy.cmd("STAT");
    assert_eq!(
        s(&busy.line()),
        s(&small_stat()),
        "{name}: STAT during the grace period"
    );
    busy.cmd("RETR 1");
    assert_eq!(
        s(&busy.multi()),
        s(&small_retr(1)),
        "{name}: RETR during the grace period"
    );
    busy.cmd("QUIT");
    assert_eq!(s(&busy.line()), "+OK bye\r\n");

    // The idle one is closed at the end of the grace period.
    let got = idle.read_to_close(Duration::from_secs(4));
    let closed_at = signalled.elapsed();
    assert!(got.ended(), "{name}: the idle session was not closed");
    assert!(
        got.bytes.is_empty() || got.bytes.starts_with(b"-ERR"),
        "{name}: the idle client got {}",
        s(&got.bytes)
    );
    assert!(
        closed_at >= Duration::from_millis(800) && closed_at < Duration::from_millis(2500),
        "{name}: idle session closed {closed_at:?} after the signal, with -g 1"
    );

    let exit = wait_exit(
        pid,
        Duration::from_secs(3).saturating_sub(signalled.elapsed()),
    );
    let exited_at = signalled.elapsed();
    assert_eq!(
        exit,
        Some(Exit::Code(0)),
        "{name}: exit within grace + 2 s (after {exited_at:?})"
    );

    // The daemon is gone: what is left in the socket buffers can be read at
    // full speed.
    hurry.store(true, Ordering::SeqCst);
    let slow = reader.join().unwrap();
    eprintln!(
        "{name}: idle closed after {closed_at:?}, exit after {exited_at:?}; the slow reader got \
         {} bytes",
        slow.bytes
    );
    assert!(slow.ended, "{name}: the slow RETR was not closed");
    assert!(
        slow.bytes < 20 << 20 && !has_terminator(&slow.tail),
        "{name}: the unfinished RETR ended with a terminator ({} bytes, ending {})",
        slow.bytes,
        s(&slow.tail)
    );

    for n in 0..3 {
        assert!(
            origin.wait_done(n, Duration::from_secs(3)),
            "{name}: origin connection {n} still open"
        );
    }
    for n in [0, 1] {
        assert!(
            !has_quit(&origin.commands(n)),
            "{name}: QUIT sent for a session closed at shutdown: {:?}",
            origin.commands(n)
        );
    }
    assert_eq!(
        origin.commands(2).last().map(String::as_str),
        Some("QUIT"),
        "{name}: the client's own QUIT"
    );
    let mut left = Vec::new();
    assert!(
        eventually(Duration::from_secs(1), || {
            left = tagged(&tag);
            left.is_empty()
        }),
        "{name}: filter processes outlive the daemon: {left:?}"
    );
    assert!(children(pid).is_empty(), "{name}: {:?}", children(pid));
    let log = proxy.log();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn sigterm_refuses_new_clients_finishes_the_grace_period_and_exits_0() {
    shutdown_in_the_middle_of_sessions(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_behaves_like_sigterm() {
    shutdown_in_the_middle_of_sessions(libc::SIGINT, "SIGINT");
}

#[test]
fn a_second_signal_ends_the_grace_period_at_once() {
    let origin = Origin::normal();
    let proxy = Proxy::for_origin(origin.port, &["-g", "10"]);
    let pid = proxy.pid();
    let mut idle = Client::session(proxy.port, "alice");
    signal(pid, libc::SIGTERM);
    assert!(refused_within(proxy.port, Duration::from_millis(500)));
    assert!(
        idle.silent_for(Duration::from_millis(300)),
        "closed before the second signal"
    );
    assert!(alive(pid), "exited before the grace period ended");
    let second = Instant::now();
    signal(pid, libc::SIGINT);
    let exit = wait_exit(pid, Duration::from_secs(2));
    assert_eq!(exit, Some(Exit::Code(0)), "after the second signal");
    assert!(
        second.elapsed() < Duration::from_secs(1),
        "exit {:?} after the second signal",
        second.elapsed()
    );
    let got = idle.read_to_close(Duration::from_secs(2));
    assert!(got.ended(), "the idle session stays open");
    assert!(
        got.bytes.is_empty() || got.bytes.starts_with(b"-ERR"),
        "{}",
        s(&got.bytes)
    );
    assert!(origin.wait_done(0, Duration::from_secs(3)));
    assert!(!has_quit(&origin.commands(0)), "{:?}", origin.commands(0));
}

#[test]
fn without_sessions_the_daemon_exits_at_once() {
    let origin = Origin::normal();
    let proxy = Proxy::for_origin(origin.port, &["-g", "10"]);
    faults_support::assert_serves(proxy.port, &small_stat(), &small_retr(1));
    let started = Instant::now();
    signal(proxy.pid(), libc::SIGTERM);
    let exit = wait_exit(proxy.pid(), Duration::from_secs(3));
    assert_eq!(exit, Some(Exit::Code(0)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_last_session_ending_within_the_grace_period_ends_the_daemon() {
    let origin = Origin::normal();
    let proxy = Proxy::for_origin(origin.port, &["-g", "10"]);
    let pid = proxy.pid();
    let mut c = Client::session(proxy.port, "alice");
    signal(pid, libc::SIGTERM);
    assert!(refused_within(proxy.port, Duration::from_millis(500)));
    c.cmd("RETR 2");
    assert_eq!(s(&c.multi()), s(&small_retr(2)));
    c.cmd("QUIT");
    assert_eq!(s(&c.line()), "+OK bye\r\n");
    let quit = Instant::now();
    let got = c.read_to_close(Duration::from_secs(2));
    assert!(got.ended() && got.bytes.is_empty(), "{got:?}");
    let exit = wait_exit(pid, Duration::from_secs(3));
    assert_eq!(exit, Some(Exit::Code(0)));
    assert!(
        quit.elapsed() < Duration::from_secs(1),
        "exit {:?} after the last session ended (grace 10 s)",
        quit.elapsed()
    );
    assert!(origin.wait_done(0, Duration::from_secs(2)));
    assert_eq!(origin.commands(0).last().map(String::as_str), Some("QUIT"));
}

#[test]
fn sigpipe_does_not_kill_the_daemon() {
    let origin = Origin::normal();
    let proxy = Proxy::for_origin(origin.port, &[]);
    faults_support::assert_serves(proxy.port, &small_stat(), &small_retr(1));
    let base = Baseline::take(proxy.pid());
    // During a session, and while idle.
    let mut c = Client::session(proxy.port, "alice");
    for _ in 0..3 {
        signal(proxy.pid(), libc::SIGPIPE);
    }
    thread::sleep(Duration::from_millis(200));
    assert!(alive(proxy.pid()), "SIGPIPE killed the daemon");
    c.cmd("RETR 1");
    assert_eq!(s(&c.multi()), s(&small_retr(1)));
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    drop(c);
    signal(proxy.pid(), libc::SIGPIPE);
    thread::sleep(Duration::from_millis(200));
    assert!(alive(proxy.pid()), "SIGPIPE killed the daemon");
    assert_eq!(wait_exit(proxy.pid(), Duration::ZERO), None);
    base.assert_no_leak("SIGPIPE");
    faults_support::assert_serves(proxy.port, &small_stat(), &small_retr(1));
    base.assert_no_leak("the session after SIGPIPE");
}
