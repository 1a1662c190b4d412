//! Starting filters: off the loop, at most `--max-filters` at once (the rest wait their turn,
//! in order, and every message still comes through whole), and commands without shell syntax
//! run directly, failing as before when the program does not exist.

mod common;
mod filter_support;

use common::Proxy;
use filter_support::{children, direct_retr, retr_through, session};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

#[test]
fn beyond_the_cap_retrs_wait_their_turn_and_all_come_through() {
    // Each filter holds its place for 0.3 s; 6 sessions at once through a cap of 2.
    let proxy = Proxy::for_dovecot(&["-t", "sleep 0.3; cat", "--max-filters", "2"]);
    let pid = proxy.pid();
    let want: Vec<Vec<u8>> = (1..=3).map(direct_retr).collect();
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (most, done) = (Arc::clone(&most), Arc::clone(&done));
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // Filters are the daemon's children (each a process group leader: /bin/sh).
                let n = children(pid).len();
                most.fetch_max(n, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let port = proxy.port;
    let clients: Vec<_> = (0..6)
        .map(|i| {
            thread::spawn(move || {
                let mut c = session(port, "alice");
                let n = 1 + i % 3;
                c.cmd(&format!("RETR {n}"));
                let reply = c.multi();
                c.cmd("QUIT");
                (n, reply, c.line())
            })
        })
        .collect();
    for client in clients {
        let (n, reply, quit) = client.join().unwrap();
        assert!(reply == want[n - 1], "RETR {n} differs from Dovecot's");
        assert!(
            quit.starts_with(b"+OK"),
            "{}",
            String::from_utf8_lossy(&quit)
        );
    }
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let most = most.load(Ordering::Relaxed);
    assert!(most <= 2, "{most} filters ran at once with --max-filters 2");
    assert!(most >= 1, "no filter was seen running");
}

#[test]
fn a_program_that_does_not_exist_is_refused_as_before() {
    // Run directly (no shell syntax) it cannot exec; through the shell it exits 127: -ERR.
    let reply = retr_through("/nonexistent/pop3filter-filter", 1);
    assert_eq!(reply, b"-ERR The message could not be transformed\r\n");
}

#[test]
fn a_plain_command_runs_without_a_shell() {
    let proxy = Proxy::for_dovecot(&["-t", "sleep 2"]);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    thread::sleep(Duration::from_millis(500));
    let kids = children(proxy.pid());
    assert_eq!(kids.len(), 1, "one filter: {kids:?}");
    assert_eq!(kids[0].comm, "sleep", "run directly, not through /bin/sh");
    drop(c);
}

#[test]
fn max_filters_must_be_a_positive_number() {
    for bad in ["0", "x", "-1"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3filter"))
            .args(["--max-filters", bad, "127.0.0.1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--max-filters {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--max-filters"), "{err}");
    }
}
