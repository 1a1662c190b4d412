//! The transformation (`-t CMD`) under load: the 20 MiB message of user
//! `big`, many sessions at once, slow and vanishing clients.
//!
//! Proves that: a filter that reads the whole 20 MiB before writing, and one
//! that writes before reading (`echo first; cat`), deliver exactly the right
//! bytes; a filter that ignores its 20 MiB input and prints a fixed text gets
//! exactly that text to the client, and one that fails (`exit 1`) gets one
//! `-ERR` line, with the session going on either way (the unread body is
//! drained, not leaked into the next reply); 20 concurrent sessions through
//! `cat` each get the exact message; a client reading at ~200 KiB/s does not
//! make the daemon buffer the message (its resident memory grows by less than
//! 4 MiB while 20 MiB are pending); and a client that vanishes mid-RETR
//! leaves no filter process or zombie behind and does not disturb the next
//! session.

mod common;
mod filter_support;

use common::{excerpt, hex, sha256, Proxy};
use filter_support::{
    assert_no_children, big_reference, children, eventually, rss_kib, unstuff_body, Raw, TempDir,
};
use std::thread;
use std::time::{Duration, Instant};

/// Sessions in the concurrency test.
const SESSIONS: usize = 20;

/// `STAT` of `big` through `c`, which must be the origin's `+OK 1 <size>`.
fn assert_stat(c: &mut Raw) {
    c.cmd("STAT");
    let stat = c.line();
    let size = unstuff_body(big_reference()).len();
    assert_eq!(excerpt(&stat), format!("+OK 1 {size}\r\n"));
}

/// RETR 1 of `big` through `port`: asserts a `+OK` status line and returns
/// the rest (through the terminator) and the client.
fn retr_big(port: u16) -> (Vec<u8>, Raw) {
    let mut c = Raw::login(port, "big");
    c.cmd("RETR 1");
    let status = c.line();
    assert!(status.starts_with(b"+OK"), "{:?}", excerpt(&status));
    (c.body(), c)
}

#[test]
fn filter_reading_all_first_passes_20_mib_exactly() {
    let tmp = TempDir::new("lazy-big");
    let proxy = Proxy::for_dovecot(&["-t", &tmp.lazy_filter()]);
    let started = Instant::now();
    let (body, mut c) = retr_big(proxy.port);
    eprintln!("lazy filter, 20 MiB: {:?}", started.elapsed());
    let want = big_reference();
    assert_eq!(
        (hex(&sha256(&body)), body.len()),
        (hex(&sha256(want)), want.len())
    );
    assert_stat(&mut c);
    assert_eq!(
        tmp.entries(),
        Vec::<String>::new(),
        "the filter removed its file"
    );
}

#[test]
fn filter_writing_before_reading_passes_20_mib_exactly() {
    let proxy = Proxy::for_dovecot(&["-t", "echo first; cat"]);
    let mut c = Raw::login(proxy.port, "big");
    c.cmd("RETR 1");
    assert!(c.line().starts_with(b"+OK"));
    c.expect(b"first\r\n").unwrap();
    c.expect(big_reference()).unwrap();
    assert_stat(&mut c);
}

#[test]
fn filter_ignoring_20_mib_input_answers_its_own_text() {
    let proxy = Proxy::for_dovecot(&["-t", "echo fixed text"]);
    let (body, mut c) = retr_big(proxy.port);
    assert_eq!(excerpt(&body), "fixed text\r\n.\r\n");
    assert_stat(&mut c);
    // Again in the same session: the first body was drained completely.
    c.cmd("RETR 1");
    assert!(c.line().starts_with(b"+OK"));
    assert_eq!(excerpt(&c.body()), "fixed text\r\n.\r\n");
    assert_stat(&mut c);
}

#[test]
fn filter_failing_on_20_mib_input_answers_err() {
    let proxy = Proxy::for_dovecot(&["-t", "exit 1"]);
    let mut c = Raw::login(proxy.port, "big");
    for _ in 0..2 {
        c.cmd("RETR 1");
        let reply = c.line();
        assert!(reply.starts_with(b"-ERR"), "{:?}", excerpt(&reply));
        assert_stat(&mut c);
    }
}

#[test]
fn concurrent_sessions_through_cat_each_get_the_exact_message() {
    let want = big_reference();
    let digest = hex(&sha256(want));
    let proxy = Proxy::for_dovecot(&["-t", "cat"]);
    let port = proxy.port;
    let started = Instant::now();
    let sessions: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let digest = digest.clone();
            thread::spawn(move || {
                let mut c = Raw::login(port, "big");
                c.cmd("RETR 1");
                let status = c.line();
                assert!(
                    status.starts_with(b"+OK"),
                    "session {i}: {:?}",
                    excerpt(&status)
                );
                // Compared as it streams in: equal bytes, equal SHA-256.
                if let Err(e) = c.expect(big_reference()) {
                    panic!("session {i}: not the message with SHA-256 {digest}: {e}");
                }
                c.cmd("QUIT");
                assert!(c.line().starts_with(b"+OK"), "session {i}: QUIT");
            })
        })
        .collect();
    let failed = sessions.into_iter().filter_map(|s| s.join().err()).count();
    let elapsed = started.elapsed();
    eprintln!(
        "{SESSIONS} x {} bytes through cat in {elapsed:?}",
        want.len()
    );
    assert_eq!(failed, 0, "{failed} of {SESSIONS} sessions failed");
    assert_no_children(proxy.pid(), Duration::from_secs(2));
}

#[test]
fn slow_client_does_not_make_the_daemon_buffer_the_message() {
    let proxy = Proxy::for_dovecot(&["-t", "cat"]);
    // Warm up the filter path (first-use code pages, allocator arenas).
    {
        let mut c = Raw::login(proxy.port, "big");
        c.cmd("RETR 1");
        assert!(c.line().starts_with(b"+OK"));
        assert_eq!(c.skip(1 << 20), 1 << 20);
    }
    assert_no_children(proxy.pid(), Duration::from_secs(2));
    let mut c = Raw::login(proxy.port, "big");
    let before = rss_kib(proxy.pid());
    c.cmd("RETR 1");
    assert!(c.line().starts_with(b"+OK"));
    // ~200 KiB/s: 20 KiB, then 100 ms of nothing, for 3 MiB.
    let want = big_reference();
    let mut at = 0;
    let mut peak = before;
    while at < 3 << 20 {
        c.expect(&want[at..at + 20 * 1024]).unwrap();
        at += 20 * 1024;
        peak = peak.max(rss_kib(proxy.pid()));
        thread::sleep(Duration::from_millis(100));
    }
    // Bound: the session's buffers are a few x 16 KiB and the filter's pipe
    // buffers live in the kernel (not in VmRSS); a proxy that buffered the
    // pending message would grow by ~20 MiB. 4 MiB leaves room for noise.
    eprintln!("VmRSS before {before} KiB, peak {peak} KiB during a slow 3 MiB read");
    assert!(
        peak < before + 4 * 1024,
        "VmRSS grew from {before} KiB to {peak} KiB"
    );
    drop(c);
    assert_no_children(proxy.pid(), Duration::from_secs(2));
}

#[test]
fn client_vanishing_mid_retr_leaves_no_filter_behind() {
    let proxy = Proxy::for_dovecot(&["-t", "cat"]);
    let mut c = Raw::login(proxy.port, "big");
    c.cmd("RETR 1");
    assert!(c.line().starts_with(b"+OK"));
    c.expect(&big_reference()[..1 << 20]).unwrap();
    let filters = children(proxy.pid());
    assert!(
        filters.iter().any(|p| p.state != 'Z'),
        "the filter runs while the client reads: {filters:?}"
    );
    drop(c);
    assert_no_children(proxy.pid(), Duration::from_secs(2));
    // The next session gets the whole message.
    let mut next = Raw::login(proxy.port, "big");
    next.cmd("RETR 1");
    assert!(next.line().starts_with(b"+OK"));
    next.expect(big_reference()).unwrap();
    assert_stat(&mut next);
    assert!(eventually(Duration::from_secs(2), || children(proxy.pid()).is_empty()));
}
