//! Fault injection on the client side (issue 6): the real daemon in front of
//! the real Dovecot (or a scripted origin where what reaches the origin must
//! be seen), with raw clients that misbehave.
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
//! closed without QUIT; a 1 MiB line without CRLF is dropped with one `-ERR`
//! when it ends (nothing of it reaches the origin) and the next command
//! works, also when it is sent before the greeting; binary garbage and NUL
//! bytes get the origin's `-ERR`s (or the proxy's, for long lines), one per
//! line; 10 000 pipelined commands get exactly 10 000 replies, in order; a
//! client that half-closes after QUIT (or after other commands, even a
//! 20 MiB RETR, filtered or not) still gets every reply, then the close
//! (and, without QUIT, none is sent on its behalf).

mod common;
mod faults_support;

use common::{dovecot, Proxy};
use faults_support::{
    children, eventually, has_quit, s, small_retr, small_stat, tagged, unique_tag, Baseline,
    Client, Origin, RssWatch,
};
use std::io::Write;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The proxy's answer to an over-long command line (docs/pop3-session.md).
const TOO_LONG: &[u8] = b"-ERR Command line too long (at most 255 octets)\r\n";

/// What a full session of alice gets straight from Dovecot: (STAT, RETR 1).
fn direct() -> &'static (Vec<u8>, Vec<u8>) {
    static DIRECT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    DIRECT.get_or_init(|| faults_support::full_session(dovecot().port))
}

/// Replies of Dovecot itself to `commands` sent one at a time after a login
/// as alice (`multi` says which replies are multi-line).
fn direct_replies(commands: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut c = Client::session(dovecot().port, "alice");
    commands
        .iter()
        .map(|(command, multi)| {
            c.cmd(command);
            if *multi {
                c.multi()
            } else {
                c.line()
            }
        })
        .collect()
}

/// The daemon in front of Dovecot with `extra`, a first full session, and
/// the baseline.
fn start(extra: &[&str]) -> (Proxy, Baseline) {
    let (stat, retr) = direct();
    let proxy = Proxy::for_dovecot(extra);
    faults_support::assert_serves(proxy.port, stat, retr);
    let base = Baseline::take(proxy.pid());
    (proxy, base)
}

/// After a fault: nothing leaked, a new full session works, still nothing
/// leaked.
fn still_serves(proxy: &Proxy, base: &Baseline, fault: &str) {
    let (stat, retr) = direct();
    base.assert_no_leak(fault);
    faults_support::assert_serves(proxy.port, stat, retr);
    base.assert_no_leak(&format!("the session after {fault}"));
}

/// Same, for a daemon in front of a scripted origin.
fn start_scripted(origin: &Origin, extra: &[&str]) -> (Proxy, Baseline) {
    let proxy = Proxy::for_origin(origin.port, extra);
    faults_support::assert_serves(proxy.port, &small_stat(), &small_retr(1));
    let base = Baseline::take(proxy.pid());
    (proxy, base)
}

fn still_serves_scripted(proxy: &Proxy, base: &Baseline, fault: &str) {
    base.assert_no_leak(fault);
    faults_support::assert_serves(proxy.port, &small_stat(), &small_retr(1));
    base.assert_no_leak(&format!("the session after {fault}"));
}

/// A client that reads 1 MiB of the 20 MiB message and then vanishes.
fn client_dies_mid_retr(filter: bool, reset: bool) {
    let tag = unique_tag("client-dies");
    let mut extra = vec!["-m", tag.as_str()];
    if filter {
        extra.extend(["-t", "cat"]);
    }
    let (proxy, base) = start(&extra);
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
    still_serves(&proxy, &base, &what);
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
    let (proxy, base) = start(&[]);
    let rss = RssWatch::start(proxy.pid());
    let mut c = Client::session(proxy.port, "big");
    c.cmd("RETR 1");
    // Others are served while it hangs on.
    let (stat, retr) = direct();
    faults_support::assert_serves(proxy.port, stat, retr);
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
    still_serves(&proxy, &base, "a client that never read");
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
    let (proxy, base) = start(&["-T", "1"]);
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
    still_serves(&proxy, &base, "a silent client");
}

#[test]
fn client_sending_a_1_mib_line_gets_one_err_when_it_ends() {
    let origin = Origin::normal();
    let (proxy, base) = start_scripted(&origin, &[]);
    let rss = RssWatch::start(proxy.pid());
    let mut c = Client::session(proxy.port, "alice");
    let line = vec![b'A'; 1 << 20];
    c.send(&line);
    assert!(
        c.silent_for(Duration::from_millis(300)),
        "a reply came before the line ended"
    );
    c.send(b"\r\nNOOP\r\nSTAT\r\n");
    assert_eq!(s(&c.line()), s(TOO_LONG), "one -ERR for the long line");
    assert_eq!(s(&c.line()), "+OK\r\n", "NOOP after it");
    assert_eq!(s(&c.line()), s(&small_stat()), "STAT after it");
    // The same with the line cut by a bare LF and sent in pieces.
    for _ in 0..16 {
        c.send(&line[..64 * 1024]);
    }
    c.send(b"\nNOOP\r\n");
    assert_eq!(s(&c.line()), s(TOO_LONG));
    assert_eq!(s(&c.line()), "+OK\r\n");
    c.cmd("QUIT");
    assert_eq!(s(&c.line()), "+OK bye\r\n");
    let peak = rss.stop();
    faults_support::assert_rss_bounded(&base, peak, 4096, "1 MiB command lines");
    let got = c.read_to_close(Duration::from_secs(3));
    assert!(got.ended() && got.bytes.is_empty(), "{got:?}");
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    let commands = origin.commands(1);
    assert!(
        commands.iter().all(|c| c.len() < 256),
        "a long line reached the origin: {} bytes",
        commands.iter().map(String::len).max().unwrap_or(0)
    );
    let after_login: Vec<&str> = commands
        .iter()
        .map(String::as_str)
        .filter(|c| !c.starts_with("USER") && !c.starts_with("PASS") && *c != "CAPA")
        .collect();
    assert_eq!(after_login, ["NOOP", "STAT", "NOOP", "QUIT"]);
    still_serves_scripted(&proxy, &base, "1 MiB command lines");
}

/// Pseudo-random bytes, NULs and every other value included.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[test]
fn client_sending_binary_garbage_and_nuls_gets_one_reply_per_line() {
    let (proxy, base) = start(&[]);
    let mut c = Client::connect(proxy.port);
    assert!(c.line().starts_with(b"+OK"));
    // Before login.
    c.send(b"\0\0\0\0\r\n");
    let reply = c.line();
    assert!(
        reply.starts_with(b"-ERR"),
        "NULs before login: {}",
        s(&reply)
    );
    c.login("alice");
    let mut lines: Vec<Vec<u8>> = vec![
        b"\0".to_vec(),
        b"\xff\xfe\x00garbage\x01\x02".to_vec(),
        b"NO\0OP".to_vec(),
        b"\x80\x81 \x00 \x7f\x1b[2J".to_vec(),
        b"\r\r\r".to_vec(),
    ];
    // 200 random bytes without line ends, and 1000 (too long for a command).
    for (len, seed) in [(200, 7), (1000, 11)] {
        lines.push(
            noise(len, seed)
                .into_iter()
                .filter(|&b| b != b'\n' && b != b'\r')
                .collect(),
        );
    }
    let mut batch = Vec::new();
    for l in &lines {
        batch.extend_from_slice(l);
        batch.extend_from_slice(b"\r\n");
    }
    batch.extend_from_slice(b"STAT\r\n");
    c.send(&batch);
    for (i, l) in lines.iter().enumerate() {
        let reply = c.line();
        if l.len() > 253 {
            assert_eq!(s(&reply), s(TOO_LONG), "line {i}");
        } else {
            assert!(
                reply.starts_with(b"-ERR") && reply.ends_with(b"\r\n"),
                "garbage line {i} {}: {}",
                s(l),
                s(&reply)
            );
        }
    }
    let (stat, _) = direct();
    assert_eq!(s(&c.line()), s(stat), "STAT after the garbage");
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    still_serves(&proxy, &base, "garbage lines");

    // 64 KiB of noise at once, line ends wherever they fall: every reply is
    // a whole status line, until Dovecot has had enough (or the noise ends).
    let mut c = Client::session(proxy.port, "alice");
    let blob = noise(64 * 1024, 0x5eed);
    let writer = {
        let mut stream = c.stream.try_clone().unwrap();
        thread::spawn(move || {
            let _ = stream.write_all(&blob);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        })
    };
    let got = c.read_to_close(Duration::from_secs(10));
    writer.join().unwrap();
    assert!(got.ended(), "not closed after the client's EOF");
    let text = &got.bytes;
    assert!(!text.is_empty(), "no reply at all to 64 KiB of noise");
    for line in text.split_inclusive(|&b| b == b'\n') {
        assert!(
            (line.starts_with(b"+OK") || line.starts_with(b"-ERR")) && line.ends_with(b"\r\n"),
            "not a status line: {} (all: {})",
            s(line),
            s(text)
        );
    }
    eprintln!(
        "noise: {} reply lines, ended with {:?}",
        text.split_inclusive(|&b| b == b'\n').count(),
        got.error
    );
    still_serves(&proxy, &base, "64 KiB of noise");
}

/// Sends `commands` in one write from a second thread while this one reads
/// `count` lines; returns them.
fn pipelined(c: &mut Client, commands: Vec<u8>, count: usize) -> Vec<Vec<u8>> {
    let writer = {
        let mut stream = c.stream.try_clone().unwrap();
        thread::spawn(move || stream.write_all(&commands).unwrap())
    };
    let replies = (0..count).map(|_| c.line()).collect();
    writer.join().unwrap();
    replies
}

#[test]
fn client_pipelining_10000_noops_gets_10000_ok_in_order() {
    let (proxy, base) = start(&[]);
    let noop = direct_replies(&[("NOOP", false)]).remove(0);
    let (stat, _) = direct();
    let mut c = Client::session(proxy.port, "alice");
    let started = Instant::now();
    let mut commands = b"NOOP\r\n".repeat(10_000);
    commands.extend_from_slice(b"STAT\r\n");
    let replies = pipelined(&mut c, commands, 10_001);
    eprintln!("10 000 NOOPs in {:?}", started.elapsed());
    for (i, r) in replies[..10_000].iter().enumerate() {
        assert_eq!(s(r), s(&noop), "reply {i}");
    }
    assert_eq!(s(&replies[10_000]), s(stat), "STAT after the NOOPs");
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    let rest = c.read_to_close(Duration::from_secs(3));
    assert!(rest.ended() && rest.bytes.is_empty(), "{rest:?}");
    still_serves(&proxy, &base, "10 000 pipelined NOOPs");
}

#[test]
fn client_pipelining_10000_distinct_commands_gets_the_replies_in_order() {
    let (proxy, base) = start(&[]);
    let list: Vec<String> = (1..=7).map(|n| format!("LIST {n}")).collect();
    let want = direct_replies(&list.iter().map(|c| (c.as_str(), false)).collect::<Vec<_>>());
    let mut c = Client::session(proxy.port, "alice");
    let mut commands = Vec::new();
    for i in 0..10_000 {
        commands.extend_from_slice(list[i % 7].as_bytes());
        commands.extend_from_slice(b"\r\n");
    }
    let replies = pipelined(&mut c, commands, 10_000);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(s(r), s(&want[i % 7]), "reply {i} (to {})", list[i % 7]);
    }
    assert!(c.silent_for(Duration::from_millis(100)), "extra replies");
    drop(c);
    still_serves(&proxy, &base, "10 000 pipelined LISTs");
}

#[test]
fn client_half_closing_after_quit_gets_the_reply_then_eof() {
    let (proxy, base) = start(&[]);
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
    still_serves(&proxy, &base, "half-closed clients");
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
    let (proxy, base) = start(extra);
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
    still_serves(&proxy, &base, "a client half-closed after RETR of 20 MiB");
}

#[test]
fn client_half_closing_after_a_big_retr_gets_the_whole_message() {
    half_close_after_big_retr(&[]);
}

#[test]
fn client_half_closing_after_a_big_filtered_retr_gets_the_whole_message() {
    half_close_after_big_retr(&["-t", "cat"]);
}

#[test]
fn client_sending_a_1_mib_line_before_the_greeting_gets_one_err() {
    let origin = Origin::normal();
    let (proxy, base) = start_scripted(&origin, &[]);
    let mut c = Client::connect(proxy.port);
    let mut data = vec![b'B'; 1 << 20];
    data.extend_from_slice(b"\r\nUSER alice\r\n");
    let writer = {
        let mut stream = c.stream.try_clone().unwrap();
        thread::spawn(move || stream.write_all(&data).unwrap())
    };
    assert_eq!(s(&c.line()), s(faults_support::GREETING));
    assert_eq!(s(&c.line()), s(TOO_LONG), "one -ERR for the long line");
    assert_eq!(s(&c.line()), "+OK\r\n", "USER after it");
    writer.join().unwrap();
    c.cmd("PASS secret");
    assert_eq!(s(&c.line()), "+OK\r\n");
    c.cmd("QUIT");
    assert_eq!(s(&c.line()), "+OK bye\r\n");
    drop(c);
    assert!(origin.wait_done(1, Duration::from_secs(3)));
    assert!(
        origin.commands(1).iter().all(|c| c.len() < 256),
        "a long line reached the origin"
    );
    still_serves_scripted(&proxy, &base, "a 1 MiB line before the greeting");
}
