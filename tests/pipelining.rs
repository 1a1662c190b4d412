//! Pipelining and framing through pop3filter, against a real Dovecot.
//!
//! Proves that however a client cuts its byte stream (a whole session in one
//! write, trailing blanks, bare LF line ends, one byte per write, commands
//! sent before the greeting, commands queued behind PASS) it gets exactly the
//! bytes a strictly sequential session gets; and that over-long command lines
//! (300 octets, 1 MiB without a line end) get exactly one `-ERR` each without
//! disturbing the session or the proxy.

mod common;

use common::{dovecot, excerpt, Pop3, Proxy};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The reference session: (command, multi-line reply?).
const SCRIPT: [(&str, bool); 10] = [
    ("USER alice", false),
    ("PASS secret", false),
    ("STAT", false),
    ("LIST", true),
    ("UIDL", true),
    ("RETR 1", true),
    ("TOP 2 0", true),
    ("LIST 1", false),
    ("NOOP", false),
    ("QUIT", false),
];

/// Greeting and all replies of `script` run strictly sequentially on `port`
/// (send one command, read its reply, send the next), then up to EOF.
fn sequential(port: u16, script: &[(&str, bool)]) -> (Vec<u8>, Vec<u8>) {
    let mut c = Pop3::connect(port);
    let greeting = c.greeting();
    let mut replies = Vec::new();
    for &(command, multi) in script {
        c.cmd(command);
        replies.extend(c.response(multi));
    }
    replies.extend(c.read_to_end());
    (greeting, replies)
}

/// The expected bytes: the sequential session through a proxy, after
/// checking that it equals the sequential session straight to Dovecot.
fn reference(proxy: &Proxy) -> (Vec<u8>, Vec<u8>) {
    let direct = sequential(dovecot().port, &SCRIPT);
    let proxied = sequential(proxy.port, &SCRIPT);
    assert_eq!(excerpt(&proxied.0), excerpt(&direct.0), "greeting");
    assert!(
        proxied.1 == direct.1,
        "sequential session through the proxy differs"
    );
    let stat = dovecot().stat_line("alice");
    assert!(direct
        .1
        .starts_with(format!("+OK\r\n+OK Logged in.\r\n{stat}").as_bytes()));
    assert!(direct.1.ends_with(b"+OK\r\n+OK Logging out.\r\n"));
    proxied
}

/// Dovecot's own one-line reply to `command` in alice's session.
fn direct_reply(command: &str) -> Vec<u8> {
    let mut c = Pop3::connect(dovecot().port);
    c.greeting();
    c.login("alice", "secret");
    c.cmd(command);
    c.line()
}

/// The script as one buffer, each command written by `form`.
fn batch(form: impl Fn(&str) -> String) -> Vec<u8> {
    SCRIPT
        .iter()
        .flat_map(|(c, _)| form(c).into_bytes())
        .collect()
}

/// After the greeting, the whole `data` in one write; then everything up to EOF.
fn pipelined(port: u16, data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut c = Pop3::connect(port);
    let greeting = c.greeting();
    c.send(data);
    (greeting, c.read_to_end())
}

fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    assert!(
        got == want,
        "{what}: {} bytes vs {} expected; first difference at {at}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        excerpt(&got[at.saturating_sub(40).min(got.len())..]),
        excerpt(&want[at.saturating_sub(40).min(want.len())..])
    );
}

#[test]
fn one_write_batch_equals_sequential_session() {
    let proxy = Proxy::for_dovecot(&[]);
    let (greeting, want) = reference(&proxy);
    let (g, got) = pipelined(proxy.port, &batch(|c| format!("{c}\r\n")));
    assert_eq!(excerpt(&g), excerpt(&greeting));
    assert_bytes(&got, &want, "CRLF batch");
}

/// Trailing spaces and tabs are not part of the command (PASS excepted: a
/// password may end in blanks, so it is sent clean here).
#[test]
fn batch_with_trailing_blanks_equals_sequential_session() {
    let proxy = Proxy::for_dovecot(&[]);
    let (_, want) = reference(&proxy);
    let data = batch(|c| match c {
        "PASS secret" => format!("{c}\r\n"),
        "STAT" | "NOOP" => format!("{c} \t \r\n"),
        _ => format!("{c}   \r\n"),
    });
    assert_bytes(
        &pipelined(proxy.port, &data).1,
        &want,
        "batch with trailing blanks",
    );
}

#[test]
fn batch_with_bare_lf_equals_sequential_session() {
    let proxy = Proxy::for_dovecot(&[]);
    let (_, want) = reference(&proxy);
    let data = batch(|c| format!("{c}\n"));
    assert_bytes(&pipelined(proxy.port, &data).1, &want, "bare-LF batch");
    let mixed = batch(|c| match c.len() % 2 {
        _ if c.starts_with("PASS") => format!("{c}\n"),
        0 => format!("{c} \t\n"),
        _ => format!("{c} \r\n"),
    });
    assert_bytes(&pipelined(proxy.port, &mixed).1, &want, "mixed batch");
}

/// Commands behind PASS in the same write wait for its reply and are answered.
#[test]
fn commands_pipelined_behind_pass_are_answered() {
    let proxy = Proxy::for_dovecot(&[]);
    let script = [
        ("USER alice", false),
        ("PASS secret", false),
        ("STAT", false),
    ];
    let (_, want) = sequential(
        dovecot().port,
        &[script[0], script[1], script[2], ("QUIT", false)],
    );
    let mut c = proxy.connect();
    c.greeting();
    c.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(c.line());
    }
    c.cmd("QUIT");
    got.extend(c.line());
    got.extend(c.read_to_end());
    assert_bytes(&got, &want, "USER+PASS+STAT in one write");
}

/// The documented rule (src/pop3/command.rs): "trailing spaces and tabs are
/// dropped".  A tab right after an argument-less keyword is not.
#[test]
fn trailing_tab_right_after_keyword_is_dropped() {
    let proxy = Proxy::for_dovecot(&[]);
    let mut c = proxy.connect();
    c.greeting();
    c.login("alice", "secret");
    c.send(b"STAT\t\r\nNOOP\t\n");
    assert_eq!(excerpt(&c.line()), excerpt(&direct_reply("STAT")));
    assert_eq!(excerpt(&c.line()), "+OK\r\n");
}

/// Reads everything from `stream` until EOF on another thread.
fn reader(stream: &TcpStream) -> thread::JoinHandle<Vec<u8>> {
    let mut stream = stream.try_clone().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    thread::spawn(move || {
        let mut all = Vec::new();
        stream
            .read_to_end(&mut all)
            .expect("read until the proxy closes");
        all
    })
}

#[test]
fn one_byte_per_write_session() {
    let proxy = Proxy::for_dovecot(&[]);
    let (greeting, replies) = reference(&proxy);
    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let output = reader(&stream);
    for byte in batch(|c| format!("{c}\r\n")) {
        stream.write_all(&[byte]).unwrap();
    }
    let got = output.join().unwrap();
    assert_bytes(&got, &[greeting, replies].concat(), "one byte per write");
}

/// A 300-octet line gets one `-ERR` from the proxy.  (Dovecot itself would
/// answer this NOOP with `+OK`, so a forwarded line would be noticed.)
#[test]
fn line_of_300_octets_gets_err_and_session_goes_on() {
    let proxy = Proxy::for_dovecot(&[]);
    let mut c = proxy.connect();
    c.greeting();
    c.login("alice", "secret");
    let long = format!("NOOP {}\r\n", "x".repeat(293));
    assert_eq!(long.len(), 300);
    c.send(long.as_bytes());
    let err = c.line();
    assert!(
        err.starts_with(b"-ERR ") && err.ends_with(b"\r\n"),
        "{:?}",
        excerpt(&err)
    );
    c.cmd("NOOP");
    assert_eq!(excerpt(&c.line()), "+OK\r\n");
    c.cmd("LIST 1");
    assert_eq!(excerpt(&c.line()), excerpt(&direct_reply("LIST 1")));
    c.cmd("QUIT");
    assert_eq!(excerpt(&c.line()), "+OK Logging out.\r\n");
    assert_eq!(c.read_to_end(), b"", "one reply per line, nothing more");
}

/// 1 MiB without a line end, then `\r\nNOOP\r\n`: one `-ERR`, then `+OK`.
#[test]
fn megabyte_line_gets_one_err() {
    let proxy = Proxy::for_dovecot(&[]);
    let mut c = proxy.connect();
    c.greeting();
    c.login("alice", "secret");
    let mut data = vec![b'A'; 1024 * 1024];
    data.extend_from_slice(b"\r\nNOOP\r\n");
    c.send(&data);
    let err = c.line();
    assert!(
        err.starts_with(b"-ERR ") && err.ends_with(b"\r\n"),
        "{:?}",
        excerpt(&err)
    );
    assert_eq!(excerpt(&c.line()), "+OK\r\n");
    c.cmd("STAT");
    assert_eq!(excerpt(&c.line()), excerpt(&direct_reply("STAT")));
    c.cmd("QUIT");
    assert_eq!(excerpt(&c.line()), "+OK Logging out.\r\n");
    assert_eq!(c.read_to_end(), b"");
    // The proxy is still fine: a new session is served exactly.
    let (_, want) = sequential(dovecot().port, &SCRIPT);
    assert_bytes(
        &sequential(proxy.port, &SCRIPT).1,
        &want,
        "session after the long line",
    );
}

/// A TCP relay in front of `target` that holds every byte back (Dovecot's
/// greeting included) until something is sent on the returned channel.
fn gated_relay(target: u16) -> (u16, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (open, gate) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (down, _) = listener.accept().unwrap();
        let up = TcpStream::connect(("127.0.0.1", target)).unwrap();
        if gate.recv_timeout(Duration::from_secs(30)).is_err() {
            return;
        }
        let pump = |mut from: TcpStream, to: TcpStream| {
            thread::spawn(move || {
                let mut to_w = &to;
                let _ = std::io::copy(&mut from, &mut to_w);
                let _ = to.shutdown(Shutdown::Write);
            })
        };
        pump(up.try_clone().unwrap(), down.try_clone().unwrap());
        pump(down, up);
    });
    (port, open)
}

#[test]
fn commands_sent_before_the_greeting_are_answered_after_it() {
    let origin = dovecot().port;
    let (relay_port, open) = gated_relay(origin);
    let proxy = Proxy::for_origin(relay_port, &[]);
    let script = [
        ("USER alice", false),
        ("PASS secret", false),
        ("STAT", false),
        ("LIST 2", false),
        ("UIDL", true),
        ("QUIT", false),
    ];
    let (greeting, replies) = sequential(origin, &script);

    let mut stream = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    let commands: String = script.iter().map(|(c, _)| format!("{c}\r\n")).collect();
    stream.write_all(commands.as_bytes()).unwrap();
    // The gate is shut: there can be no greeting yet, so the commands above
    // were certainly sent before it.
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("something arrived before the greeting was let through: {other:?}"),
    }
    stream.set_nonblocking(false).unwrap();
    let output = reader(&stream);
    open.send(()).unwrap();
    let got = output.join().unwrap();
    assert_bytes(&got, &[greeting, replies].concat(), "early commands");
}
