//! Fault injection on the origin side (issue 6), against scripted origins
//! (`faults_support::Origin`) so each fault is timed exactly. The faults
//! during a filtered RETR are in `tests/faults_origin_filter.rs`.
//!
//! Every case first runs one complete session (the origin's connection 0)
//! and takes the daemon's baseline (descriptors, children, VmRSS); then the
//! fault happens on connection 1; then it asserts what the client saw, that
//! nothing leaked (descriptors back to the baseline, no child, no zombie) and
//! that a new complete session is served.
//!
//! Proves that: an origin that refuses gives the client one `-ERR` greeting
//! line and a close; one that accepts and never greets gives a `-ERR` line
//! at the inactivity timeout; a `-ERR` greeting is relayed as it is (and no
//! CAPA probe follows it); a greeting line without end is relayed or cut
//! with the daemon's memory bounded, and ends at the timeout; an origin that
//! dies while a session is idle is seen by the client as its farewell and a
//! close; one that dies in the middle of a 20 MiB RETR closes the client
//! without the terminator; garbage in reply to LIST (random bytes, and lines
//! that look like replies) is relayed byte for byte and then closed; an
//! origin that stalls in the middle of a reply past the timeout closes the
//! client without the terminator, and one that stalls before the reply gives
//! `-ERR`; in no case does the origin receive a QUIT it was not sent by the
//! client. An origin that never answers the proxy's CAPA probe ends the
//! session at the timeout.

mod common;
mod faults_support;

use faults_support::{
    assert_cut_reply, assert_one_err_line, big_retr_head, dies_mid_big_retr, has_quit, is_retr, s,
    stalled_retr_part, stalls_mid_retr, start_scripted, still_serves_scripted, Client, Origin,
    OriginConn, RssWatch,
};
use std::time::{Duration, Instant};

#[test]
fn origin_refusing_gives_an_err_greeting_then_close() {
    let origin = Origin::normal();
    let (proxy, base) = start_scripted(&origin, &[]);
    origin.set_refusing(true);
    let mut c = Client::connect(proxy.port);
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "the client was not closed: {got:?}");
    assert!(got.error.is_none(), "closed with {:?}", got.error);
    assert_one_err_line(&got.bytes, "origin refusing");
    let want = format!(
        "-ERR pop3filter: cannot connect to 127.0.0.1:{}",
        origin.port
    );
    assert!(
        got.bytes.starts_with(want.as_bytes()),
        "greeting {}, expected it to start with {want:?}",
        s(&got.bytes)
    );
    assert!(
        got.elapsed < Duration::from_secs(2),
        "took {:?}",
        got.elapsed
    );
    origin.set_refusing(false);
    still_serves_scripted(&proxy, &base, "a refused connection");
}

#[test]
fn origin_accepting_and_never_greeting_gives_err_at_the_timeout() {
    let origin = Origin::faulty(|c: &mut OriginConn| {
        c.wait_close(Duration::from_secs(15));
    });
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let started = Instant::now();
    let mut c = Client::connect(proxy.port);
    let got = c.read_to_close(Duration::from_secs(6));
    let elapsed = started.elapsed();
    assert!(got.ended(), "not closed within 6 s: {}", s(&got.bytes));
    assert_one_err_line(&got.bytes, "origin never greets");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "-ERR and close after {elapsed:?} with -T 1"
    );
    assert!(
        origin.wait_done(1, Duration::from_secs(3)),
        "the proxy kept its connection to the silent origin open"
    );
    assert_eq!(
        origin.commands(1),
        Vec::<String>::new(),
        "nothing is sent to an origin that never greeted"
    );
    still_serves_scripted(&proxy, &base, "an origin that never greets");
}

#[test]
fn origin_err_greeting_is_relayed_unchanged() {
    const ERR_GREETING: &[u8] = b"-ERR [SYS/TEMP] too busy, try later\r\n";
    let origin = Origin::faulty(|c: &mut OriginConn| {
        c.send(ERR_GREETING);
        // A proxy that probed with CAPA now would show up here.
        c.wait_close(Duration::from_millis(400));
    });
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::connect(proxy.port);
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "not closed: {}", s(&got.bytes));
    assert_eq!(
        s(&got.bytes),
        s(ERR_GREETING),
        "the client sees the greeting"
    );
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert_eq!(
        origin.commands(1),
        Vec::<String>::new(),
        "no CAPA probe after a -ERR greeting"
    );
    still_serves_scripted(&proxy, &base, "a -ERR greeting");
}

#[test]
fn origin_endless_greeting_line_keeps_memory_bounded() {
    const SIZE: usize = 8 << 20;
    let origin = Origin::faulty(|c: &mut OriginConn| {
        if !c.send(b"+OK ") {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..SIZE / chunk.len() {
            if !c.send(&chunk) {
                return;
            }
        }
        // Then silence, without ever ending the line.
        c.wait_close(Duration::from_secs(15));
    });
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let rss = RssWatch::start(proxy.pid());
    let mut c = Client::connect(proxy.port);
    let got = c.read_to_close(Duration::from_secs(12));
    let peak = rss.stop();
    eprintln!(
        "endless greeting: the client got {} bytes in {:?}, ended with {:?}",
        got.bytes.len(),
        got.elapsed,
        got.error
    );
    assert!(
        got.ended(),
        "the client was never closed ({} bytes)",
        got.bytes.len()
    );
    let mut sent = b"+OK ".to_vec();
    sent.resize(4 + SIZE, b'x');
    let relayed_prefix = sent.starts_with(&got.bytes);
    let err_line = got.bytes.starts_with(b"-ERR")
        && got.bytes.ends_with(b"\r\n")
        && got.bytes.iter().filter(|&&b| b == b'\n').count() == 1;
    assert!(
        relayed_prefix || err_line,
        "the client got neither a part of the greeting nor one -ERR line: {}",
        s(&got.bytes)
    );
    faults_support::assert_rss_bounded(&base, peak, 4096, "endless greeting");
    assert!(
        origin.wait_done(1, Duration::from_secs(3)),
        "the proxy kept the connection to the origin"
    );
    assert!(!has_quit(&origin.commands(1)), "{:?}", origin.commands(1));
    still_serves_scripted(&proxy, &base, "an endless greeting line");
}

/// An origin that dies once the client is logged in and idle: after
/// `farewell` (if any), with a FIN, or with a reset.
fn origin_dies_while_idle(farewell: &'static [u8], reset: bool) {
    let origin = Origin::faulty(move |c: &mut OriginConn| {
        let Some(pass) = c.serve_until(|cmd| cmd.to_ascii_uppercase().starts_with("PASS")) else {
            return;
        };
        c.reply(&pass);
        std::thread::sleep(Duration::from_millis(300));
        c.send(farewell);
        if reset {
            c.reset();
        }
    });
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::session(proxy.port, "alice");
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "the client was not closed: {}", s(&got.bytes));
    assert!(
        got.error.is_none(),
        "the client should see a plain close, got {:?}",
        got.error
    );
    if reset {
        // Whatever the origin said before its reset may be lost with it.
        assert!(
            got.bytes.is_empty() || got.bytes == farewell,
            "got {}",
            s(&got.bytes)
        );
    } else {
        assert_eq!(s(&got.bytes), s(farewell), "the origin's last words");
    }
    assert!(got.elapsed < Duration::from_secs(2), "{:?}", got.elapsed);
    still_serves_scripted(&proxy, &base, "an origin that died during an idle session");
}

#[test]
fn origin_closing_an_idle_session_relays_its_farewell_then_closes() {
    origin_dies_while_idle(b"-ERR [SYS/TEMP] server shutting down\r\n", false);
}

#[test]
fn origin_reset_during_an_idle_session_closes_the_client() {
    origin_dies_while_idle(b"", true);
}

/// An origin that answers RETR of the 20 MiB message with +OK and 5 MB of
/// it, then dies (FIN or reset).
fn origin_dies_mid_big_retr(reset: bool) {
    const SENT: usize = 5_000_000;
    let origin = Origin::faulty(dies_mid_big_retr(SENT, reset));
    let (proxy, base) = start_scripted(&origin, &[]);
    let rss = RssWatch::start(proxy.pid());
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(15));
    let peak = rss.stop();
    eprintln!(
        "origin died mid-RETR (reset: {reset}): the client got {} bytes, ended with {:?}",
        got.bytes.len(),
        got.error
    );
    assert!(
        got.ended(),
        "the client was not closed ({} bytes)",
        got.bytes.len()
    );
    let sent = big_retr_head(SENT);
    // -ERR is acceptable only if nothing of the reply reached the client.
    assert_cut_reply(&got.bytes, &sent, "origin died mid-RETR");
    if !reset {
        assert_eq!(
            got.bytes.len(),
            sent.len(),
            "everything the origin sent before its FIN reaches the client"
        );
    }
    faults_support::assert_rss_bounded(&base, peak, 4096, "origin died mid-RETR");
    still_serves_scripted(&proxy, &base, "an origin that died mid-RETR");
}

#[test]
fn origin_closing_mid_big_retr_closes_the_client_without_terminator() {
    origin_dies_mid_big_retr(false);
}

#[test]
fn origin_reset_mid_big_retr_closes_the_client_without_terminator() {
    origin_dies_mid_big_retr(true);
}

/// 64 KiB of pseudo-random bytes that do not start with `+` (so they are no
/// `+OK` status line) and contain line feeds here and there.
fn garbage() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    out[0] = b'#';
    out
}

#[test]
fn origin_answering_list_with_random_bytes_is_relayed_then_closed() {
    let origin = Origin::faulty(|c: &mut OriginConn| {
        if c.serve_until(|cmd| cmd.eq_ignore_ascii_case("LIST"))
            .is_none()
        {
            return;
        }
        c.send(&garbage());
    });
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::session(proxy.port, "alice");
    c.cmd("LIST");
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "not closed: {} bytes", got.bytes.len());
    assert!(got.error.is_none(), "{:?}", got.error);
    let want = garbage();
    assert!(
        got.bytes == want,
        "the client got {} bytes (starting {}), the origin sent {} random bytes",
        got.bytes.len(),
        s(&got.bytes),
        want.len()
    );
    still_serves_scripted(&proxy, &base, "random bytes for LIST");
}

#[test]
fn origin_answering_with_reply_lookalikes_is_relayed_then_closed() {
    const LIST: &[u8] = b"+OK 2 messages\r\n1 100\r\n.\r\n";
    const EXTRA: &[u8] = b"+OK surprise\r\n-ERR what\r\n..\r\n.\r\n+OK\r\n";
    const NOOP: &[u8] = b"+OK noop\r\n";
    const TRAILER: &[u8] = b"+OK 1 octets\r\n.\r\n-ERR\r\n+OK unfinished";
    let origin = Origin::faulty(|c: &mut OriginConn| {
        if c.serve_until(|cmd| cmd.eq_ignore_ascii_case("LIST"))
            .is_none()
        {
            return;
        }
        let mut reply = LIST.to_vec();
        reply.extend_from_slice(EXTRA);
        c.send(&reply);
        if c.command().is_none() {
            return;
        }
        c.send(NOOP);
        c.send(TRAILER);
    });
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::session(proxy.port, "alice");
    c.cmd("LIST");
    assert_eq!(s(&c.multi()), s(LIST));
    c.cmd("NOOP");
    let got = c.read_to_close(Duration::from_secs(5));
    assert!(got.ended(), "not closed: {}", s(&got.bytes));
    let want = [EXTRA, NOOP, TRAILER].concat();
    assert_eq!(
        s(&got.bytes),
        s(&want),
        "every byte the origin sent, in order, then the close"
    );
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert_eq!(origin.commands(1).last().map(String::as_str), Some("NOOP"));
    still_serves_scripted(&proxy, &base, "replies nobody asked for");
}

#[test]
fn origin_stalling_mid_reply_closes_the_client_without_terminator() {
    let origin = Origin::faulty(stalls_mid_retr);
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let mut c = Client::session(proxy.port, "alice");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(6));
    assert!(got.ended(), "not closed within 6 s: {}", s(&got.bytes));
    assert_eq!(
        s(&got.bytes),
        s(&stalled_retr_part()),
        "the part sent, no terminator"
    );
    assert!(
        got.elapsed >= Duration::from_millis(900) && got.elapsed < Duration::from_secs(4),
        "closed after {:?} with -T 1",
        got.elapsed
    );
    assert!(
        origin.wait_done(1, Duration::from_secs(3)),
        "the stalled origin connection stays open"
    );
    assert!(!has_quit(&origin.commands(1)), "{:?}", origin.commands(1));
    still_serves_scripted(&proxy, &base, "an origin stalling mid-reply");
}

#[test]
fn origin_stalling_before_the_reply_gives_err_at_the_timeout() {
    let origin = Origin::faulty(|c: &mut OriginConn| {
        if c.serve_until(is_retr).is_none() {
            return;
        }
        c.wait_close(Duration::from_secs(15));
    });
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let mut c = Client::session(proxy.port, "alice");
    c.cmd("RETR 1");
    let got = c.read_to_close(Duration::from_secs(6));
    assert!(got.ended(), "not closed within 6 s: {}", s(&got.bytes));
    assert_one_err_line(&got.bytes, "origin silent after RETR");
    assert!(
        got.elapsed >= Duration::from_millis(900) && got.elapsed < Duration::from_secs(4),
        "closed after {:?} with -T 1",
        got.elapsed
    );
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert!(!has_quit(&origin.commands(1)), "{:?}", origin.commands(1));
    still_serves_scripted(&proxy, &base, "an origin silent after RETR");
}

#[test]
fn origin_never_answering_the_capa_probe_ends_at_the_timeout() {
    let origin = Origin::faulty(|c: &mut OriginConn| {
        c.greet();
        // The proxy's CAPA (and anything after it) gets no answer.
        c.wait_close(Duration::from_secs(15));
    });
    let (proxy, base) = start_scripted(&origin, &["-T", "1"]);
    let mut c = Client::connect(proxy.port);
    assert_eq!(
        s(&c.line()),
        s(faults_support::GREETING),
        "the greeting is relayed"
    );
    c.cmd("USER alice");
    let got = c.read_to_close(Duration::from_secs(6));
    assert!(got.ended(), "not closed: {}", s(&got.bytes));
    assert!(
        got.elapsed < Duration::from_secs(4),
        "closed after {:?} with -T 1",
        got.elapsed
    );
    for line in got.bytes.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.starts_with(b"-ERR"),
            "after the greeting: {}",
            s(&got.bytes)
        );
    }
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert!(!has_quit(&origin.commands(1)), "{:?}", origin.commands(1));
    still_serves_scripted(&proxy, &base, "an origin that never answers CAPA");
}
