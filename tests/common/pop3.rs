//! A raw POP3 client for exact-byte assertions.
//!
//! Nothing is interpreted or rewritten: every method returns the bytes as
//! they came off the wire, line terminators and dot-stuffing included.  Reads
//! go through an internal buffer, so replies to pipelined commands that arrive
//! in one segment are still split at the right places.  Every read gives up
//! (with a panic showing what did arrive) after 10 seconds of silence.
//! `Pop3::connect_slow` gives a client that reads in small pieces with pauses
//! behind a small receive window, so that the server's buffers fill up.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::os::fd::FromRawFd;
use std::thread;
use std::time::Duration;

pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to 127.0.0.1:`port` whose socket got a 4 KiB receive buffer before it
/// connected, so the TCP window stays small and the server's writes block often.
pub fn connect_small_window(port: u16) -> TcpStream {
    let fail = |what: &str| -> ! {
        panic!(
            "slow connect to 127.0.0.1:{port}: {what}: {}",
            io::Error::last_os_error()
        )
    };
    // SAFETY: plain socket calls on a descriptor we own (handed to the TcpStream right
    // away), with correctly sized arguments.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            fail("socket");
        }
        let stream = TcpStream::from_raw_fd(fd);
        let size: libc::c_int = 4096;
        if libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) != 0
        {
            fail("SO_RCVBUF");
        }
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::connect(
            fd,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) != 0
        {
            fail("connect");
        }
        stream
    }
}

/// A TCP connection to 127.0.0.1:`port` from `src`:0 (the socket is bound
/// before it connects; std's `TcpStream::connect` cannot).
pub fn connect_from(src: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    let sockaddr = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own (handed to the
    // TcpStream right away, so it is closed on every path), with correctly
    // sized arguments.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = sockaddr(src, 0);
        if libc::bind(
            fd,
            &local as *const libc::sockaddr_in as *const libc::sockaddr,
            len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let remote = sockaddr(Ipv4Addr::LOCALHOST, port);
        if libc::connect(
            fd,
            &remote as *const libc::sockaddr_in as *const libc::sockaddr,
            len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

pub struct Pop3 {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// For a slow reader: at most this many bytes per read, each read after
    /// this pause.
    slow: Option<(usize, Duration)>,
}

impl Pop3 {
    /// Connects to 127.0.0.1:`port`.  Does not read the greeting.
    pub fn connect(port: u16) -> Pop3 {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        Pop3::with_stream(stream)
    }

    /// Connects to 127.0.0.1:`port` from `src` (another loopback address,
    /// e.g. 127.0.0.11, so the server sees a distinct client).  Does not read
    /// the greeting.
    pub fn connect_from(src: Ipv4Addr, port: u16) -> Pop3 {
        let stream = connect_from(src, port)
            .unwrap_or_else(|e| panic!("connect from {src} to 127.0.0.1:{port}: {e}"));
        Pop3::with_stream(stream)
    }

    /// A client on a stream connected by the caller (after whatever it sent
    /// first).  Does not read the greeting.
    pub fn from_stream(stream: TcpStream) -> Pop3 {
        Pop3::with_stream(stream)
    }

    fn with_stream(stream: TcpStream) -> Pop3 {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Pop3 {
            stream,
            buf: Vec::new(),
            pos: 0,
            slow: None,
        }
    }

    /// A slow reader connected to 127.0.0.1:`port`: its socket gets a 4 KiB
    /// receive buffer before it connects (so the TCP window stays small), and
    /// every read takes at most `chunk` bytes after sleeping `pause`.  A big
    /// reply then backs up into the server's own buffers.  Does not read the
    /// greeting.
    pub fn connect_slow(port: u16, chunk: usize, pause: Duration) -> Pop3 {
        let stream = connect_small_window(port);
        let mut c = Pop3::with_stream(stream);
        c.slow = Some((chunk.max(1), pause));
        c
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Sends raw bytes (add the CRLF yourself).
    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .write_all(data)
            .unwrap_or_else(|e| panic!("POP3 send: {e}"));
    }

    /// Sends `command` followed by CRLF.
    pub fn cmd(&mut self, command: &str) {
        self.send(format!("{command}\r\n").as_bytes());
    }

    /// Closes our sending side (the server sees EOF).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads more bytes into the buffer; returns false on EOF.
    fn fill(&mut self) -> bool {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        let mut want = chunk.len();
        if let Some((most, pause)) = self.slow {
            want = want.min(most);
            thread::sleep(pause);
        }
        loop {
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "POP3 read timed out; unread: {:?}",
                        excerpt(&self.buf[self.pos..])
                    )
                }
                Err(e) => panic!("POP3 read: {e}"),
            }
        }
    }

    /// Appends one line (through LF) to `out`; false if EOF came first.
    fn line_into(&mut self, out: &mut Vec<u8>) -> bool {
        let mut scanned = 0;
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(i) = unread[scanned..].iter().position(|&b| b == b'\n') {
                let end = self.pos + scanned + i + 1;
                out.extend_from_slice(&self.buf[self.pos..end]);
                self.pos = end;
                return true;
            }
            scanned = unread.len();
            if !self.fill() {
                return false;
            }
        }
    }

    /// One line, including its CRLF.  Panics on EOF.
    pub fn line(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.line_into(&mut out) {
            panic!(
                "POP3 connection closed mid-line; got {:?}",
                excerpt(&self.buf[self.pos..])
            );
        }
        out
    }

    /// The greeting line (same as `line`).
    pub fn greeting(&mut self) -> Vec<u8> {
        self.line()
    }

    /// A multi-line response: the status line and, if it is `+OK`, every
    /// line through the terminating `.\r\n`.  Raw bytes, still dot-stuffed.
    pub fn multi(&mut self) -> Vec<u8> {
        let mut out = self.line();
        if !out.starts_with(b"+OK") {
            return out;
        }
        loop {
            let start = out.len();
            if !self.line_into(&mut out) {
                panic!(
                    "POP3 connection closed inside a multi-line response of {} bytes \
                        ending {:?}",
                    out.len(),
                    excerpt(&out[out.len().saturating_sub(200)..])
                );
            }
            if &out[start..] == b".\r\n" {
                return out;
            }
        }
    }

    pub fn response(&mut self, multiline: bool) -> Vec<u8> {
        if multiline {
            self.multi()
        } else {
            self.line()
        }
    }

    /// USER/PASS; panics unless both answers are `+OK`.  Read the greeting first.
    pub fn login(&mut self, user: &str, pass: &str) {
        for command in [format!("USER {user}"), format!("PASS {pass}")] {
            self.cmd(&command);
            let reply = self.line();
            assert!(
                reply.starts_with(b"+OK"),
                "{command:?} got {:?}",
                excerpt(&reply)
            );
        }
    }

    /// Everything that is left, until the server closes the connection.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() {}
        let rest = self.buf.split_off(self.pos);
        self.buf.clear();
        self.pos = 0;
        rest
    }
}

/// The message inside a complete `+OK` multi-line response (as returned by
/// `Pop3::multi`): drops the status line and the final `.\r\n`, and removes
/// one leading dot from every line that has one.  CRLFs are kept.
pub fn unstuff(response: &[u8]) -> Vec<u8> {
    assert!(
        response.starts_with(b"+OK"),
        "not a +OK response: {:?}",
        excerpt(response)
    );
    let body_start = response
        .iter()
        .position(|&b| b == b'\n')
        .expect("no status line")
        + 1;
    let body = &response[body_start..];
    let body = if body == b".\r\n" {
        &body[..0]
    } else if body.ends_with(b"\r\n.\r\n") {
        &body[..body.len() - 3]
    } else {
        panic!(
            "response does not end with CRLF.CRLF: {:?}",
            excerpt(&body[body.len().saturating_sub(40)..])
        )
    };
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// What a client gets for a stored message once unstuffed: CRLF line ends, plus the CRLF
/// Dovecot adds when the file does not end with a newline.
pub fn wire_form(file: &[u8]) -> Vec<u8> {
    let mut data = lf_to_crlf(file);
    if !data.is_empty() && !data.ends_with(b"\n") {
        data.extend_from_slice(b"\r\n");
    }
    data
}

/// LF -> CRLF, the way a POP3 server presents an LF-terminated maildir file.
pub fn lf_to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for line in data.split_inclusive(|&b| b == b'\n') {
        match line.strip_suffix(b"\n") {
            Some(l) => {
                out.extend_from_slice(l.strip_suffix(b"\r").unwrap_or(l));
                out.extend_from_slice(b"\r\n");
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// At most 300 bytes of `data`, lossily decoded, for panic messages.
pub fn excerpt(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(300)]).into_owned();
    if data.len() > 300 {
        format!("{s}... ({} bytes)", data.len())
    } else {
        s
    }
}

#[test]
fn unstuff_and_crlf() {
    assert_eq!(unstuff(b"+OK 0 octets\r\n.\r\n"), b"");
    assert_eq!(
        unstuff(b"+OK\r\nA\r\n..\r\n...x\r\n.\r\n"),
        b"A\r\n.\r\n..x\r\n"
    );
    assert_eq!(lf_to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
}
