//! Shared by the SPCP test files: a raw SPCP client driven by request scripts, and helpers
//! for the POP3 side. Requests are written as scripts, one per line or `;`-separated:
//! `CMD ARG... > STATUS DATA`, CMD and STATUS a hex byte, an argument hex bytes or `"text"`,
//! DATA `"text"` (none: empty); `//` starts a comment. So `10 01ff > 03` is set-buffer 511,
//! answered `03 00`.
#![allow(dead_code)]

use crate::common::{dovecot, lf_to_crlf, unstuff, Pop3, Proxy, PASSWORD};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub const CONNS: u8 = 0x02;
pub const BYTES: u8 = 0x03;
pub const ACCESSES: u8 = 0x04;
pub const LOGIN: &str = r#"00 "admin" > 00; 01 "s3cr3t" > 00"#;

/// STATUS and DATA of a response.
pub type Answer = (u8, String);

pub fn frame(cmd: u8, args: &[&[u8]]) -> Vec<u8> {
    let mut f = vec![cmd, args.len() as u8];
    for a in args {
        f.push(a.len() as u8);
        f.extend_from_slice(a);
    }
    f
}

/// `"text"` is its bytes, anything else pairs of hex digits.
pub fn tokens(mut rest: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let s = rest.trim_start();
        let (token, after) = match s.strip_prefix('"') {
            _ if s.is_empty() => return out,
            Some(quoted) => quoted.split_once('"').expect("closing quote"),
            None => s.split_once(' ').unwrap_or((s, "")),
        };
        out.push(match s.starts_with('"') {
            true => token.as_bytes().to_vec(),
            false => (0..token.len() / 2)
                .map(|i| u8::from_str_radix(&token[2 * i..2 * i + 2], 16).unwrap())
                .collect(),
        });
        rest = after;
    }
}

/// A script's requests as frames, with the answers they must get.
pub fn parse(script: &str) -> Vec<(Vec<u8>, Answer)> {
    let lines = script.lines().map(|l| l.split("//").next().unwrap());
    let steps = lines
        .flat_map(|l| l.split(';'))
        .filter(|s| !s.trim().is_empty());
    let step = |s: &str| {
        let (request, response) = s.split_once(" > ").expect("CMD ARGS > STATUS DATA");
        let (request, response) = (tokens(request), tokens(response));
        let args: Vec<&[u8]> = request[1..].iter().map(Vec::as_slice).collect();
        let data = String::from_utf8(response.get(1).cloned().unwrap_or_default()).unwrap();
        (frame(request[0][0], &args), (response[0][0], data))
    };
    steps.map(step).collect()
}

/// A raw SPCP connection.
pub struct Spcp(pub TcpStream);

impl Spcp {
    /// Retries briefly: the harness waits for the POP3 listener, bound just before this one.
    pub fn connect(port: u16) -> Spcp {
        let deadline = Instant::now() + Duration::from_secs(5);
        let s = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("management port {port}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Spcp(s)
    }
    pub fn login(port: u16) -> Spcp {
        let mut c = Spcp::connect(port);
        c.script(LOGIN);
        c
    }
    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("SPCP write");
    }
    pub fn recv(&mut self) -> Answer {
        let mut head = [0u8; 2];
        self.0.read_exact(&mut head).expect("SPCP response header");
        let mut data = vec![0; head[1] as usize];
        self.0.read_exact(&mut data).expect("SPCP response data");
        (head[0], String::from_utf8_lossy(&data).into_owned())
    }
    pub fn recv_n(&mut self, n: usize) -> Vec<Answer> {
        (0..n).map(|_| self.recv()).collect()
    }
    /// Sends each request of the script and checks its answer.
    pub fn script(&mut self, script: &str) {
        for (i, (frame, want)) in parse(script).into_iter().enumerate() {
            self.send(&frame);
            assert_eq!(self.recv(), want, "request {i} of {script}");
        }
    }
    pub fn num(&mut self, cmd: u8) -> u64 {
        self.send(&[cmd, 0]);
        let (status, data) = self.recv();
        assert_eq!(status, 0, "command {cmd:#04x}");
        data.parse().unwrap()
    }
    pub fn assert_eof(&mut self) {
        match self.0.read(&mut [0u8; 1]) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected the daemon to close the connection, got {other:?}"),
        }
    }
}

/// A daemon with the management user admin / s3cr3t.
pub fn proxy(extra: &[&str]) -> Proxy {
    Proxy::for_dovecot(&[&["-u", "admin:s3cr3t"], extra].concat())
}

pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn pop3(port: u16, user: &str) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login(user, PASSWORD);
    c
}

/// `RETR n` on a session: the message, unstuffed.
pub fn retr(c: &mut Pop3, n: usize) -> Vec<u8> {
    c.cmd(&format!("RETR {n}"));
    unstuff(&c.multi())
}

/// Message 1 of alice as a client gets it (CRLF line ends).
pub fn alice1() -> Vec<u8> {
    lf_to_crlf(&dovecot().message("alice", 1))
}

/// The big message fetched straight from Dovecot (once).
pub fn big_direct() -> &'static [u8] {
    static DIRECT: OnceLock<Vec<u8>> = OnceLock::new();
    DIRECT.get_or_init(|| retr(&mut pop3(dovecot().port, "big"), 1))
}

pub fn assert_big(got: &[u8], what: &str) {
    let want = big_direct();
    assert!(want.len() > 20_000_000, "{} bytes", want.len());
    let sha = |b: &[u8]| (b.len(), crate::common::hex(&crate::common::sha256(b)));
    if got != want {
        panic!("{what}: got {:?}, direct {:?}", sha(got), sha(want));
    }
}
