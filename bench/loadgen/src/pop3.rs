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
}
