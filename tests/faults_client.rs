//! Fault injection on the client side (issue 6): clients that die, never
//! read, send nothing or half-close. The real daemon in front of the real
//! Dovecot (or a scripted origin where what reaches the origin must be
//! seen), with raw clients that misbehave. What such clients send (over-long
//! lines, garbage, pipelined floods) is in `tests/faults_client_input.rs`.
//!
//! Every case first runs one complete session and takes the daemon's
//! baseline (descriptors, children, VmRSS); after the fault it asserts what
//! the client saw, that nothing leaked (descriptors back to the baseline, no
//! child, no zombie) and that a new complete session is served.
//!
//! Proves that: a client that dies (FIN or reset) in the middle of a 20 MiB
//! RETR, with or without a filter running, leaves nothing behind (the filter
//! is killed and reaped); a client that never reads while the origin has
//! 20 MiB to send does not grow the daemon's memory, others are served
//! meanwhile, and everything is released when it goes; a client that sends
//! nothing is told `-ERR` and closed at the inactivity timeout, the origin
//! closed without QUIT; a client that half-closes after QUIT (or after
//! other commands, even a 20 MiB RETR, filtered or not) still gets every
//! reply, then the close (and, without QUIT, none is sent on its behalf).

mod common;
mod faults_support;

use common::dovecot;
use faults_support::{
    assert_serves, children, direct_replies, direct_session, eventually, has_quit, s, small_retr,
    small_stat, start_for_dovecot, start_scripted, still_serves_dovecot, still_serves_scripted,
    tagged, unique_tag, Client, Origin, RssWatch,
};
use std::thread;
use std::time::{Duration, Instant};

/// A client that reads 1 MiB of the 20 MiB message and then vanishes.
fn client_dies_mid_retr(filter: bool, reset: bool) {
    let tag = unique_tag("client-dies");
    let mut extra = vec!["-m", tag.as_str()];
    if filter {
        extra.extend(["-t", "cat"]);
    }
    let (proxy, base) = start_for_dovecot(&extra);
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    let mut first = Vec::new();
    let got = c.skip(1 << 20, |b| {
        if first.len() < 64 {
            first.extend_from_slice(&b[..b.len().min(64)]);
        }
    });
    assert_eq!(got, 1 << 20, "the first MiB of the message arrives");
    assert!(first.starts_with(b"+OK"), "{}", s(&first));
    if filter {
        let running = children(proxy.pid());
        assert!(
            !running.is_empty() && !tagged(&tag).is_empty(),
            "a filter runs while the message flows: children {running:?}"
        );
    }
    if reset {
        faults_support::set_linger_zero(&c.stream);
    }
    drop(c);
    let what = format!(
        "a client {} mid-RETR{}",
        if reset { "reset" } else { "closed" },
        if filter { " with -t cat" } else { "" }
    );
    base.assert_no_leak(&what);
    assert!(
        eventually(Duration::from_secs(3), || tagged(&tag).is_empty()),
        "{what}: filter processes remain: {:?}",
        tagged(&tag)
    );
    still_serves_dovecot(&proxy, &base, &what);
}

#[test]
fn client_closing_mid_retr_leaves_nothing() {
    client_dies_mid_retr(false, false);
}

#[test]
fn client_reset_mid_retr_leaves_nothing() {
    client_dies_mid_retr(false, true);
}

#[test]
fn client_closing_mid_filtered_retr_kills_and_reaps_the_filter() {
    client_dies_mid_retr(true, false);
}

#[test]
fn client_reset_mid_filtered_retr_kills_and_reaps_the_filter() {
    client_dies_mid_retr(true, true);
}

#[test]
fn client_that_never_reads_keeps_the_daemon_memory_bounded() {
    let (proxy, base) = start_for_dovecot(&[]);
    let rss = RssWatch::start(proxy.pid());
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    // Others are served while it hangs on.
    let (stat, retr) = direct_session();
    assert_serves(proxy.port, stat, retr);
    thread::sleep(Duration::from_secs(2));
    let peak = rss.peak();
    faults_support::assert_rss_bounded(&base, peak, 4096, "a client that never reads");
    // It did get something: the proxy is blocked on it, not idle.
    let mut first = Vec::new();
    c.skip(3, |b| first.extend_from_slice(b));
    assert_eq!(s(&first), "+OK");
    drop(c);
    let peak = rss.stop();
    faults_support::assert_rss_bounded(&base, peak, 4096, "a client that never reads");
    still_serves_dovecot(&proxy, &base, "a client that never read");
}

#[test]
fn client_sending_nothing_is_closed_at_the_timeout() {
    let origin = Origin::normal();
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let started = Instant::now();
    let mut c = Client::connect(proxy.port);
    let greeting = c.line();
    assert_eq!(s(&greeting), s(faults_support::GREETING));
    let got = c.read_to_close(Duration::from_secs(5));
    let elapsed = started.elapsed();
    assert!(got.ended(), "not closed within 5 s: {}", s(&got.bytes));
    assert_eq!(
        s(&got.bytes),
        "-ERR Disconnected for inactivity\r\n",
        "what the silent client reads before the close"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?} with -T 1"
    );
    assert!(
        origin.wait_done(1, Duration::from_secs(3)),
        "the origin connection stays open"
    );
    assert!(
        !has_quit(&origin.commands(1)),
        "QUIT sent on the client's behalf: {:?}",
        origin.commands(1)
    );
    still_serves_scripted(&proxy, &base, "a silent client");
}

#[test]
fn client_sending_nothing_at_all_is_closed_at_the_timeout() {
    // Not even reading the greeting: the close still comes at the timeout.
    let (proxy, base) = start_for_dovecot(&["-T", "1"]);
    let mut c = Client::connect(proxy.port);
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "not closed within 5 s: {}", s(&got.bytes));
    assert!(
        got.elapsed < Duration::from_secs(3),
        "closed after {:?}",
        got.elapsed
    );
    let text = String::from_utf8_lossy(&got.bytes).into_owned();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("+OK")
            && lines[1] == "-ERR Disconnected for inactivity\r\n",
        "greeting then -ERR expected: {text:?}"
    );
    still_serves_dovecot(&proxy, &base, "a silent client");
}

#[test]
fn client_half_closing_after_quit_gets_the_reply_then_eof() {
    let (proxy, base) = start_for_dovecot(&[]);
    let want = direct_replies(&[("STAT", false), ("LIST", true), ("QUIT", false)]);
    // QUIT alone, then half-close.
    let mut c = Client::session(proxy.port, "alice");
    c.send(b"QUIT\r\n");
    c.shutdown_write();
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended() && got.error.is_none(), "{got:?}");
    assert_eq!(s(&got.bytes), s(&want[2]), "the QUIT reply, then EOF");
    // Pipelined commands and QUIT, then half-close.
    let mut c = Client::session(proxy.port, "alice");
    c.send(b"STAT\r\nLIST\r\nQUIT\r\n");
    c.shutdown_write();
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended() && got.error.is_none(), "{got:?}");
    assert_eq!(s(&got.bytes), s(&want.concat()), "every reply, then EOF");
    still_serves_dovecot(&proxy, &base, "half-closed clients");
}

#[test]
fn client_half_closing_without_quit_gets_its_replies_and_commits_nothing() {
    let origin = Origin::normal();
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::session(proxy.port, "alice");
    c.send(b"STAT\r\nRETR 2\r\nDELE 1\r\n");
    c.shutdown_write();
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended() && got.error.is_none(), "{got:?}");
    let want = [small_stat(), small_retr(2), b"+OK\r\n".to_vec()].concat();
    assert_eq!(s(&got.bytes), s(&want), "every owed reply, then EOF");
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    let commands = origin.commands(1);
    assert_eq!(commands.last().map(String::as_str), Some("DELE 1"));
    assert!(
        !has_quit(&commands),
        "QUIT on the client's behalf: {commands:?}"
    );
    still_serves_scripted(&proxy, &base, "a half-closed client without QUIT");
}

/// RETR of the 20 MiB message, then the client half-closes: it still gets
/// the whole message and its terminator, then EOF.
fn half_close_after_big_retr(extra: &[&str]) {
    let (proxy, base) = start_for_dovecot(extra);
    let mut direct = Client::session(dovecot().port, "big");
    direct.cmd("RETR 1");
    let want = direct.multi_large();
    let mut c = Client::session(proxy.port, "big");
    c.send(b"RETR 1\r\n");
    c.shutdown_write();
    let got = c.read_to_close(Duration::from_secs(20));
    assert!(
        got.ended(),
        "{extra:?}: not closed ({} bytes)",
        got.bytes.len()
    );
    assert!(
        got.bytes == want,
        "{extra:?}: {} bytes ending {}, expected {} bytes",
        got.bytes.len(),
        faults_support::tail(&got.bytes, 80),
        want.len()
    );
    still_serves_dovecot(&proxy, &base, "a client half-closed after RETR of 20 MiB");
}

#[test]
fn client_half_closing_after_a_big_retr_gets_the_whole_message() {
    half_close_after_big_retr(&[]);
}

#[test]
fn client_half_closing_after_a_big_filtered_retr_gets_the_whole_message() {
    half_close_after_big_retr(&["-t", "cat"]);
}
