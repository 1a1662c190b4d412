//! The raw client of the fault cases: exact bytes, a buffer of its own, and
//! a close, a reset or silence reported instead of a panic.

use super::{s, tail};
use crate::common::PASSWORD;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long a [`Client`] waits for a line before giving up.
pub const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// How a connection ended, as [`Client::read_to_close`] saw it.
#[derive(Debug)]
pub struct Closed {
    /// Every byte that arrived (those buffered before included).
    pub bytes: Vec<u8>,
    /// The error the connection ended with (a reset), if not a plain EOF.
    pub error: Option<io::Error>,
    /// Nothing ended the connection within the time given.
    pub timed_out: bool,
    /// How long the call waited.
    pub elapsed: Duration,
}

impl Closed {
    /// EOF or a reset came (not silence).
    pub fn ended(&self) -> bool {
        !self.timed_out
    }
}

/// A raw POP3 client: exact bytes, a buffer of its own.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to 127.0.0.1:`port` (does not read the greeting).
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(CLIENT_WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects, checks the greeting is `+OK` and logs in as `user`.
    pub fn session(port: u16, user: &str) -> Client {
        let mut c = Client::connect(port);
        let greeting = c.line();
        assert!(greeting.starts_with(b"+OK"), "greeting {}", s(&greeting));
        c.login(user);
        c
    }

    /// USER/PASS; panics unless both answers are `+OK`.
    pub fn login(&mut self, user: &str) {
        for command in [format!("USER {user}"), format!("PASS {PASSWORD}")] {
            self.cmd(&command);
            let reply = self.line();
            assert!(reply.starts_with(b"+OK"), "{command:?} got {}", s(&reply));
        }
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .write_all(data)
            .unwrap_or_else(|e| panic!("client send: {e}"));
    }

    pub fn cmd(&mut self, command: &str) {
        self.send(format!("{command}\r\n").as_bytes());
    }

    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }

    /// Bytes received and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// One read of at most 64 KiB into the buffer, waiting at most `wait`:
    /// Ok(0) on EOF, Err(TimedOut) on silence.
    fn fill(&mut self, wait: Duration) -> io::Result<usize> {
        let wait = wait.max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(io::Error::new(ErrorKind::TimedOut, "silence"))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One line with its LF, if one arrives within `wait`; None on EOF,
    /// reset or silence (the partial line stays buffered).
    pub fn try_line(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                return Some(self.buf.drain(..end).collect());
            }
            scanned = self.buf.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.fill(left) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// One line with its LF; panics on EOF or 10 s of silence.
    pub fn line(&mut self) -> Vec<u8> {
        match self.try_line(CLIENT_WAIT) {
            Some(line) => line,
            None => panic!(
                "no complete line within {CLIENT_WAIT:?} (or the connection ended); buffered: {}",
                s(&self.buf)
            ),
        }
    }

    /// A multi-line reply: the status line and, after `+OK`, every line
    /// through the terminator. Panics if the connection ends first.
    pub fn multi(&mut self) -> Vec<u8> {
        let mut out = self.line();
        if !out.starts_with(b"+OK") {
            return out;
        }
        loop {
            let line = match self.try_line(CLIENT_WAIT) {
                Some(line) => line,
                None => panic!(
                    "multi-line reply cut after {} bytes, ending {}",
                    out.len(),
                    tail(&out, 200)
                ),
            };
            let end = line == b".\r\n";
            out.extend_from_slice(&line);
            if end {
                return out;
            }
        }
    }

    /// A multi-line reply that may be large (megabytes), when nothing else
    /// follows it: reads chunks until the bytes end with the terminator.
    /// Panics if the connection ends or stays silent for 10 s first.
    pub fn multi_large(&mut self) -> Vec<u8> {
        let status = self.line();
        if !status.starts_with(b"+OK") {
            return status;
        }
        let mut out = status;
        let body_start = out.len();
        loop {
            out.append(&mut self.buf);
            let body = &out[body_start..];
            if body == b".\r\n" || body.ends_with(b"\r\n.\r\n") {
                return out;
            }
            match self.fill(CLIENT_WAIT) {
                Ok(0) | Err(_) => panic!(
                    "large multi-line reply cut after {} bytes, ending {}",
                    out.len(),
                    tail(&out, 200)
                ),
                Ok(_) => {}
            }
        }
    }

    /// Everything until the peer closes (or resets) the connection, or until
    /// `within` passes without that happening.
    pub fn read_to_close(&mut self, within: Duration) -> Closed {
        let started = Instant::now();
        let deadline = started + within;
        let (error, timed_out) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break (None, true);
            }
            match self.fill(left.min(Duration::from_millis(200))) {
                Ok(0) => break (None, false),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::TimedOut => {}
                Err(e) => break (Some(e), false),
            }
        };
        Closed {
            bytes: std::mem::take(&mut self.buf),
            error,
            timed_out,
            elapsed: started.elapsed(),
        }
    }

    /// At most `max` bytes: buffered ones first, else one read waiting at
    /// most `wait`. Ok(empty) on silence; Err(UnexpectedEof) on EOF.
    pub fn read_some(&mut self, max: usize, wait: Duration) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = vec![0u8; max];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF")),
                Ok(n) => return Ok(chunk[..n].to_vec()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(e),
            }
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.drain(..n).collect())
    }

    /// True if nothing at all arrives within `wait` (and the connection is
    /// still open).
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        matches!(self.fill(wait), Err(e) if e.kind() == ErrorKind::TimedOut)
    }

    /// Reads and drops `n` bytes (fewer if the connection ends); returns how
    /// many came. The bytes dropped are passed to `seen`.
    pub fn skip(&mut self, n: usize, mut seen: impl FnMut(&[u8])) -> usize {
        let mut got = 0;
        while got < n {
            if self.buf.is_empty() {
                match self.fill(CLIENT_WAIT) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let k = self.buf.len().min(n - got);
            seen(&self.buf[..k]);
            self.buf.drain(..k);
            got += k;
        }
        got
    }
}
