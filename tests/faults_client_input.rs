//! Fault injection on the client side (issue 6): what misbehaving clients
//! send. The real daemon in front of the real Dovecot (or a scripted origin
//! where what reaches the origin must be seen), with raw clients. Clients
//! that die, never read, send nothing or half-close are in
//! `tests/faults_client.rs`.
//!
//! Every case first runs one complete session and takes the daemon's
//! baseline (descriptors, children, VmRSS); after the fault it asserts what
//! the client saw, that nothing leaked (descriptors back to the baseline, no
//! child, no zombie) and that a new complete session is served.
//!
//! Proves that: a 1 MiB line without CRLF is dropped with one `-ERR` when it
//! ends (nothing of it reaches the origin) and the next command works, also
//! when it is sent before the greeting; binary garbage and NUL bytes get the
//! origin's `-ERR`s (or the proxy's, for long lines), one per line; 10 000
//! pipelined commands get exactly 10 000 replies, in order.

mod common;
mod faults_support;

use faults_support::{
    direct_replies, direct_session, s, small_stat, start_for_dovecot, start_scripted,
    still_serves_dovecot, still_serves_scripted, Client, Origin, RssWatch,
};
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

/// The proxy's answer to an over-long command line (docs/pop3-session.md).
const TOO_LONG: &[u8] = b"-ERR Command line too long (at most 255 octets)\r\n";

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
    let (proxy, base) = start_for_dovecot(&[]);
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
    let (stat, _) = direct_session();
    assert_eq!(s(&c.line()), s(stat), "STAT after the garbage");
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    still_serves_dovecot(&proxy, &base, "garbage lines");

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
    still_serves_dovecot(&proxy, &base, "64 KiB of noise");
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
    let (proxy, base) = start_for_dovecot(&[]);
    let noop = direct_replies(&[("NOOP", false)]).remove(0);
    let (stat, _) = direct_session();
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
    still_serves_dovecot(&proxy, &base, "10 000 pipelined NOOPs");
}

#[test]
fn client_pipelining_10000_distinct_commands_gets_the_replies_in_order() {
    let (proxy, base) = start_for_dovecot(&[]);
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
    still_serves_dovecot(&proxy, &base, "10 000 pipelined LISTs");
}
