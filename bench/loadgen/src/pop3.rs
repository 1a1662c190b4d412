//! The POP3 client: one connection, its replies, and the check of a retrieved message.

use crate::args::{Config, Expect};
use crate::sha256;
use crate::tls::Stream;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// One connection's reply buffer. The client never pipelines, so a reply is complete when the
/// received bytes end with its terminator: CRLF for a single line, CRLF "." CRLF for a
/// multi-line reply (a body line "." is stuffed to "..", so the sequence cannot occur inside).
pub struct Conn {
    stream: Stream,
    pub buf: Vec<u8>,
    pub len: usize,
    /// Length of the status line, CRLF included.
    pub first: usize,
    /// Octets received (after decryption, for TLS).
    pub rx: u64,
    /// For TLS, what was negotiated (`Stream::describe`).
    pub tls: Option<String>,
}

impl Conn {
    pub fn open(cfg: &Config, addr: SocketAddr, buf: Vec<u8>) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, cfg.timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        stream
            .set_read_timeout(Some(cfg.timeout))
            .and_then(|()| stream.set_write_timeout(Some(cfg.timeout)))
            .map_err(|e| format!("timeout: {e}"))?;
        let stream = Stream::new(cfg, addr, stream)?;
        let mut c = Conn {
            tls: stream.describe(),
            stream,
            buf,
            len: 0,
            first: 0,
            rx: 0,
        };
        c.reply(false).map_err(|e| format!("greeting: {e}"))?;
        Ok(c)
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.len == self.buf.len() {
            let grown = (self.buf.len() * 2).max(1 << 16);
            self.buf.resize(grown, 0);
        }
        let n = self
            .stream
            .read(&mut self.buf[self.len..])
            .map_err(|e| match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    io::Error::new(io::ErrorKind::TimedOut, "no answer within the timeout (-T)")
                }
                _ => e,
            })?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.len += n;
        self.rx += n as u64;
        Ok(())
    }

    /// Reads one reply; a `-ERR` (or anything but `+OK`) is an error carrying the line.
    fn reply(&mut self, multi: bool) -> Result<(), String> {
        self.len = 0;
        self.first = 0;
        let mut scanned: usize = 0;
        while self.first == 0 {
            self.fill().map_err(|e| e.to_string())?;
            if let Some(p) = find_crlf(&self.buf[scanned.saturating_sub(1)..self.len]) {
                self.first = scanned.saturating_sub(1) + p + 2;
            }
            scanned = self.len;
        }
        if !self.buf.starts_with(b"+OK") {
            let line = String::from_utf8_lossy(&self.buf[..self.first - 2]).into_owned();
            return Err(format!("server said: {line}"));
        }
        if multi {
            while !(self.len >= self.first + 3 && self.buf[..self.len].ends_with(b"\r\n.\r\n")) {
                self.fill().map_err(|e| e.to_string())?;
            }
        } else if self.len != self.first {
            return Err("data after a single-line reply".into());
        }
        Ok(())
    }

    pub fn command(&mut self, line: &str, multi: bool) -> Result<(), String> {
        self.stream
            .write_all(line.as_bytes())
            .map_err(|e| format!("sending {}: {e}", line.trim_end()))?;
        let verb = line.split_whitespace().next().unwrap_or("");
        self.reply(multi).map_err(|e| format!("{verb}: {e}"))
    }

    pub fn login(&mut self, cfg: &Config) -> Result<(), String> {
        self.command(&format!("USER {}\r\n", cfg.user), false)?;
        self.command(&format!("PASS {}\r\n", cfg.pass), false)
    }

    /// The body of the last multi-line reply, still dot-stuffed, with its final CRLF.
    pub fn body(&self) -> &[u8] {
        &self.buf[self.first..self.len - 3]
    }

    /// Sends `lines` (several commands at once: pipelining) and reads `n` multi-line replies;
    /// their bodies as ranges of `buf` (dot-stuffed, final CRLF included, as [`Conn::body`]).
    /// `command` cannot do this: with replies pipelined, the end of the received bytes is not
    /// the end of a reply.
    pub fn pipelined(&mut self, lines: &str, n: usize) -> Result<Vec<(usize, usize)>, String> {
        self.stream
            .write_all(lines.as_bytes())
            .map_err(|e| format!("sending {} commands: {e}", n))?;
        self.len = 0;
        let mut bodies = Vec::with_capacity(n);
        // `at`: where the next reply starts.
        let mut at = 0;
        while bodies.len() < n {
            match split_reply(&self.buf[at..self.len]) {
                Ok(Some((from, to, end))) => {
                    bodies.push((at + from, at + to));
                    at += end;
                }
                Ok(None) => self
                    .fill()
                    .map_err(|e| format!("reply {} of {n}: {e}", bodies.len() + 1))?,
                Err(line) => return Err(format!("reply {} of {n}: {line}", bodies.len() + 1)),
            }
        }
        if at != self.len {
            return Err("data after the pipelined replies".into());
        }
        Ok(bodies)
    }
}

/// One multi-line reply at the start of `data`: `Some((body start, body end, reply end))` once
/// it is complete, `None` while it is not, the status line when it is not `+OK`.
fn split_reply(data: &[u8]) -> Result<Option<(usize, usize, usize)>, String> {
    let Some(p) = find_crlf(data) else {
        return Ok(None);
    };
    if !data.starts_with(b"+OK") {
        return Err(format!(
            "server said: {}",
            String::from_utf8_lossy(&data[..p])
        ));
    }
    // The terminator: "." alone on a line, right after the status line's CRLF or later.
    Ok(data[p..]
        .windows(5)
        .position(|w| w == b"\r\n.\r\n")
        .map(|q| (p + 2, p + q + 2, p + q + 5)))
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// Undoes the dot-stuffing of a RETR body into `out`.
pub fn unstuff(body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'.' {
            i += 1;
        }
        match body[i..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                out.extend_from_slice(&body[i..i + p + 1]);
                i += p + 1;
            }
            None => {
                out.extend_from_slice(&body[i..]);
                break;
            }
        }
    }
}

pub fn verify(body: &[u8], scratch: &mut Vec<u8>, want: &Expect) -> Result<(), String> {
    unstuff(body, scratch);
    if scratch.len() != want.len {
        return Err(format!(
            "wrong length: got {} octets, want {}",
            scratch.len(),
            want.len
        ));
    }
    let got = sha256::sha256(scratch);
    if got != want.sha {
        return Err(format!(
            "wrong SHA-256: got {}, want {}",
            sha256::hex(&got),
            sha256::hex(&want.sha)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstuffing() {
        let mut out = Vec::new();
        unstuff(b"a\r\n..\r\n...b\r\nc.d\r\n", &mut out);
        assert_eq!(out, b"a\r\n.\r\n..b\r\nc.d\r\n");
        unstuff(b"", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn pipelined_replies_split() {
        assert_eq!(
            split_reply(b"+OK 3\r\nab\r\n.\r\n+OK"),
            Ok(Some((7, 11, 14)))
        );
        assert_eq!(split_reply(b"+OK\r\n.\r\n"), Ok(Some((5, 5, 8))));
        assert_eq!(split_reply(b"+OK\r\nab\r\n.\r"), Ok(None));
        assert_eq!(split_reply(b"+OK"), Ok(None));
        assert_eq!(
            split_reply(b"-ERR no\r\n"),
            Err("server said: -ERR no".into())
        );
    }
}
