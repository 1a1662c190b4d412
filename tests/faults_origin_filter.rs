//! Fault injection on the origin side (issue 6) during a filtered RETR
//! (`-t CMD`), against scripted origins (`faults_support::Origin`) so each
//! fault is timed exactly. The faults without a filter are in
//! `tests/faults_origin.rs`.
//!
//! Every case first runs one complete session (without RETR where RETR is
//! the fault) and takes the daemon's baseline (descriptors, children,
//! VmRSS); then the fault happens on the origin's connection 1; then it
//! asserts what the client saw, that nothing leaked (descriptors back to the
//! baseline, no child, no zombie) and that a new session is served.
//!
//! Proves that: an origin that closes or stalls in the middle of a filtered
//! RETR after the filter's output began closes the client without the
//! terminator; one that closes or stalls before that output must give
//! `-ERR` (those two cases found daemon bugs, since fixed: the -ERR was
//! staged but never written, and a stalled origin was waited for forever);
//! a stalled origin receives no QUIT the client did not send.

mod common;
mod faults_support;

use common::Proxy;
use faults_support::{
    assert_cut_reply, assert_one_err_line, assert_serves, big_retr_head, dies_mid_big_retr,
    has_quit, has_terminator, s, small_retr, small_stat, stalled_retr_part, stalls_mid_retr,
    start_scripted, still_serves_scripted, Baseline, Client, Origin,
};
use std::time::Duration;

#[test]
fn origin_closing_mid_filtered_retr_closes_the_client_without_terminator() {
    const SENT: usize = 3_000_000;
    let origin = Origin::faulty(dies_mid_big_retr(SENT, false));
    let (proxy, base) = start_scripted(&origin, &["-t", "cat"]);
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(15));
    assert!(got.ended(), "not closed ({} bytes)", got.bytes.len());
    let sent = big_retr_head(SENT);
    assert_cut_reply(&got.bytes, &sent, "origin died mid filtered RETR");
    eprintln!(
        "origin died mid filtered RETR: {} of {} bytes",
        got.bytes.len(),
        sent.len()
    );
    still_serves_scripted(&proxy, &base, "an origin that died mid filtered RETR");
}

/// A session of alice with STAT and QUIT only.
fn stat_session(port: u16, what: &str) {
    let mut c = Client::session(port, "alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), s(&small_stat()), "{what}");
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
}

/// An origin that sends the status line and 2000 bytes of a RETR body and
/// then stalls, with a filter (-T 1): the client is closed without the
/// terminator if the filter's output began, and gets `-ERR` if not.
fn origin_stalling_mid_filtered_retr(filter: &str, output_begins: bool) {
    let origin = Origin::faulty(stalls_mid_retr);
    let proxy = Proxy::for_origin(origin.port, &["-T", "1", "-t", filter]);
    // First session without RETR: RETR is the fault here.
    stat_session(proxy.port, "the first session");
    let base = Baseline::take(proxy.pid());
    let mut c = Client::session(proxy.port, "alice");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(6));
    eprintln!(
        "{filter}: the client got {} bytes in {:?}: {}",
        got.bytes.len(),
        got.elapsed,
        s(&got.bytes)
    );
    if output_begins {
        assert!(
            got.ended(),
            "{filter}: not closed within 6 s: {}",
            s(&got.bytes)
        );
        let want = stalled_retr_part();
        assert!(
            want.starts_with(&got.bytes) && got.bytes.starts_with(b"+OK"),
            "{filter}: {}",
            s(&got.bytes)
        );
    } else {
        // Nothing of the reply was relayed: -ERR (the session may go on, or
        // be closed).
        assert!(
            got.bytes.starts_with(b"-ERR"),
            "{filter}: nothing but silence for {:?} (-T 1): {}",
            got.elapsed,
            s(&got.bytes)
        );
    }
    assert!(
        got.elapsed < Duration::from_secs(4),
        "{filter}: the stalled RETR ended after {:?} with -T 1",
        got.elapsed
    );
    assert!(!has_terminator(&got.bytes));
    drop(c);
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert!(!has_quit(&origin.commands(1)), "{:?}", origin.commands(1));
    base.assert_no_leak(filter);
    stat_session(proxy.port, "a new session is served");
    base.assert_no_leak(&format!("the session after {filter}"));
}

#[test]
fn origin_stalling_mid_filtered_retr_after_output_closes_without_terminator() {
    origin_stalling_mid_filtered_retr("cat", true);
}

#[test]
fn origin_stalling_mid_filtered_retr_before_output_gives_err() {
    origin_stalling_mid_filtered_retr("cat >/dev/null; echo done", false);
}

#[test]
fn origin_closing_mid_filtered_retr_before_output_gives_err() {
    // The filter writes nothing until its input ends, so nothing of the
    // reply has gone to the client when the origin goes: the client must be
    // told -ERR (docs/pop3-session.md, FILTER: "the origin disconnects
    // mid-body: -ERR (before output)").
    let origin = Origin::faulty(dies_mid_big_retr(100_000, false));
    let proxy = Proxy::for_origin(origin.port, &["-t", "cat >/dev/null; echo done"]);
    // RETR 1 through this filter: the origin's status line, then "done".
    let retr = small_retr(1);
    let status_end = retr.iter().position(|&b| b == b'\n').unwrap() + 1;
    let filtered = [&retr[..status_end], b"done\r\n.\r\n"].concat();
    assert_serves(proxy.port, &small_stat(), &filtered);
    let base = Baseline::take(proxy.pid());
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "not closed: {}", s(&got.bytes));
    assert_one_err_line(&got.bytes, "origin closed before the filter's output");
    base.assert_no_leak("an origin that died before the filter wrote");
    assert_serves(proxy.port, &small_stat(), &filtered);
    base.assert_no_leak("the session after an origin that died before the filter wrote");
}
