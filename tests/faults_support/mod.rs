//! Helpers shared by the fault-injection suite (`tests/faults_origin.rs`,
//! `tests/faults_client.rs`, `tests/faults_filter.rs`, `tests/shutdown.rs`).
//! Use it after `mod common;` with `mod faults_support;`.
//!
//! * [`Client`]: a raw POP3 client that owns its read buffer, so one can switch
//!   between line reads and "everything until the connection ends" without
//!   losing bytes, and that reports a close, a reset or silence instead of
//!   panicking.
//! * [`Origin`]: a scripted POP3 origin programmed per test. Every accepted
//!   connection runs the test's handler with its index (0, 1, ...); the
//!   handler can greet or not, answer or not, send garbage, die at a byte
//!   count, stall, or [`OriginConn::serve`] a small, well-behaved mailbox. It
//!   records every line the proxy sent on each connection, and can be told to
//!   stop listening (connections refused) and to listen again on its port.
//! * [`Baseline`]: the leak checker. It counts the entries of `/proc/PID/fd`
//!   of the daemon and of its child processes (`ppid == daemon`, zombies
//!   included) after a first complete session, and asserts later that the
//!   count is back there with no child left.
//! * [`RssWatch`]: the peak VmRSS of the daemon while a fault goes on.
//! * Processes through /proc: children, zombies, processes tagged by the
//!   `FILTER_MSG` value in their environment (so a filter's descendants can be
//!   found after they are reparented away from the daemon); signals and
//!   `waitpid` for the daemon's exit status.

#![allow(dead_code)]

use crate::common::{excerpt, PASSWORD};
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a [`Client`] waits for a line before giving up.
pub const CLIENT_WAIT: Duration = Duration::from_secs(10);

/// Polls `check` every 20 ms until it returns true or `within` has passed;
/// returns its last answer.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A short printable form of bytes for assertion messages.
pub fn s(bytes: &[u8]) -> String {
    excerpt(bytes)
}

/// The last `n` bytes of `data`, printable.
pub fn tail(data: &[u8], n: usize) -> String {
    excerpt(&data[data.len().saturating_sub(n)..])
}

/// Whether a multi-line reply (or a prefix of one, status line included) ends
/// with the terminator line.
pub fn has_terminator(reply: &[u8]) -> bool {
    reply.ends_with(b"\r\n.\r\n") || reply.ends_with(b"\n.\n")
}

/// Makes the next close of `stream` send RST instead of FIN (SO_LINGER 0).
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor we own, with a correctly sized struct.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

// ---------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------

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

/// A complete session through `port`: greeting, login as alice, STAT, LIST,
/// RETR 1 (the full reply, terminator included), QUIT, then the end of the
/// connection with nothing more. Returns (STAT line, RETR 1 reply).
pub fn full_session(port: u16) -> (Vec<u8>, Vec<u8>) {
    let mut c = Client::session(port, "alice");
    c.cmd("STAT");
    let stat = c.line();
    assert!(stat.starts_with(b"+OK "), "STAT: {}", s(&stat));
    c.cmd("LIST");
    let list = c.multi();
    assert!(
        list.starts_with(b"+OK") && list.ends_with(b"\r\n.\r\n"),
        "LIST: {}",
        s(&list)
    );
    c.cmd("RETR 1");
    let retr = c.multi();
    assert!(retr.starts_with(b"+OK"), "RETR 1: {}", s(&retr));
    c.cmd("QUIT");
    let quit = c.line();
    assert!(quit.starts_with(b"+OK"), "QUIT: {}", s(&quit));
    let rest = c.read_to_close(Duration::from_secs(5));
    assert!(
        rest.ended() && rest.bytes.is_empty(),
        "after QUIT: {rest:?} ({})",
        s(&rest.bytes)
    );
    (stat, retr)
}

/// The daemon still serves: a full session, with the exact STAT line and
/// RETR 1 reply given (as a direct session or the scripted mailbox says).
pub fn assert_serves(port: u16, stat: &[u8], retr1: &[u8]) {
    let (got_stat, got_retr) = full_session(port);
    assert_eq!(s(&got_stat), s(stat), "STAT of a new session");
    assert!(
        got_retr == retr1,
        "RETR 1 of a new session: {} bytes {}, expected {} bytes {}",
        got_retr.len(),
        s(&got_retr),
        retr1.len(),
        s(retr1)
    );
}

// ---------------------------------------------------------------------------
// The scripted origin
// ---------------------------------------------------------------------------

/// The scripted origin's greeting.
pub const GREETING: &[u8] = b"+OK scripted origin ready\r\n";
/// Its CAPA reply.
pub const CAPA: &[u8] = b"+OK\r\nUSER\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n";
/// Size the origin announces for the big message (it sends `big_body` bytes).
pub const BIG_SIZE: usize = 20 << 20;

/// Message `n` (1 or 2) of the small mailbox (every user but `big`), on the
/// wire: CRLF, dot-stuffed, without the terminator.
pub fn small_body(n: usize) -> Vec<u8> {
    let mut body = format!(
        "From: origin@example.org\r\nTo: alice@example.org\r\nSubject: message {n}\r\n\r\n"
    )
    .into_bytes();
    for i in 0..(40 * n) {
        body.extend_from_slice(format!("line {i:04} of message {n}\r\n").as_bytes());
    }
    // A line that starts with a dot, stuffed.
    body.extend_from_slice(b"..a line that starts with a dot\r\nend\r\n");
    body
}

/// The scripted origin's reply to `RETR n` for a small mailbox user.
pub fn small_retr(n: usize) -> Vec<u8> {
    let body = small_body(n);
    let mut reply = format!("+OK {} octets\r\n", body.len()).into_bytes();
    reply.extend_from_slice(&body);
    reply.extend_from_slice(b".\r\n");
    reply
}

/// The scripted origin's STAT line for a small mailbox user.
pub fn small_stat() -> Vec<u8> {
    let total = small_body(1).len() + small_body(2).len();
    format!("+OK 2 {total}\r\n").into_bytes()
}

/// Bytes `from..to` of the big message body (lines of 100 bytes, no dots).
pub fn big_body_range(from: usize, to: usize) -> Vec<u8> {
    const LINE: usize = 100;
    let mut out = Vec::with_capacity(to - from);
    let mut i = from / LINE;
    while out.len() < to - from {
        let line = format!(
            "{i:010} {:<87}\r\n",
            "the big message, one hundred bytes a line"
        );
        debug_assert_eq!(line.len(), LINE);
        let start = if i == from / LINE { from % LINE } else { 0 };
        let want = (to - from - out.len()).min(LINE - start);
        out.extend_from_slice(&line.as_bytes()[start..start + want]);
        i += 1;
    }
    out
}

/// The first `len` bytes of the big message body.
pub fn big_body(len: usize) -> Vec<u8> {
    big_body_range(0, len)
}

#[derive(Debug, Default, Clone)]
struct ConnLog {
    commands: Vec<String>,
    done: bool,
}

/// What a scripted origin runs for connection `n`.
type Handler = dyn Fn(usize, &mut OriginConn) + Send + Sync;

struct Shared {
    port: u16,
    stop: AtomicBool,
    refusing: AtomicBool,
    listening: AtomicBool,
    accepted: AtomicUsize,
    logs: Mutex<Vec<ConnLog>>,
    handler: Box<Handler>,
}

/// A scripted POP3 origin on 127.0.0.1; stops accepting on drop.
pub struct Origin {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Origin {
    /// Listens on a free port; connection `n` (from 0) runs `handler(n, conn)`
    /// on a thread of its own; the connection is closed when it returns.
    pub fn start(handler: impl Fn(usize, &mut OriginConn) + Send + Sync + 'static) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            port,
            stop: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            listening: AtomicBool::new(true),
            accepted: AtomicUsize::new(0),
            logs: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        });
        let sh = shared.clone();
        thread::spawn(move || accept_loop(sh, listener));
        Origin { port, shared }
    }

    /// A well-behaved origin: every connection is served.
    pub fn normal() -> Origin {
        Origin::start(|_, c| c.serve())
    }

    /// Connection 1 runs `fault`; the others (0: the baseline session; 2 and
    /// later: the sessions after the fault) are served normally.
    pub fn faulty(fault: impl Fn(&mut OriginConn) + Send + Sync + 'static) -> Origin {
        Origin::start(move |n, c| if n == 1 { fault(c) } else { c.serve() })
    }

    /// Stops listening (connections are refused) or listens again on the same
    /// port; returns once that is done.
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
        assert!(
            eventually(Duration::from_secs(3), || self
                .shared
                .listening
                .load(Ordering::SeqCst)
                != refusing),
            "the scripted origin did not switch to refusing={refusing}"
        );
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Lines the proxy sent on connection `n` so far (CRLF removed).
    pub fn commands(&self, n: usize) -> Vec<String> {
        let logs = self.shared.logs.lock().unwrap();
        logs.get(n).map(|l| l.commands.clone()).unwrap_or_default()
    }

    /// Waits until connection `n`'s handler has returned.
    pub fn wait_done(&self, n: usize, within: Duration) -> bool {
        eventually(within, || {
            let logs = self.shared.logs.lock().unwrap();
            logs.get(n).is_some_and(|l| l.done)
        })
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        let refusing = shared.refusing.load(Ordering::SeqCst);
        if refusing && listener.is_some() {
            listener = None;
            shared.listening.store(false, Ordering::SeqCst);
        } else if !refusing && listener.is_none() {
            match TcpListener::bind(("127.0.0.1", shared.port)) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                    shared.listening.store(true, Ordering::SeqCst);
                }
                Err(_) => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some(l) = &listener else {
            thread::sleep(Duration::from_millis(5));
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                let n = {
                    let mut logs = shared.logs.lock().unwrap();
                    logs.push(ConnLog::default());
                    logs.len() - 1
                };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let sh = shared.clone();
                thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    stream
                        .set_write_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let mut conn = OriginConn {
                        stream: Some(stream),
                        buf: Vec::new(),
                        n,
                        shared: sh.clone(),
                        user: String::new(),
                    };
                    (sh.handler)(n, &mut conn);
                    drop(conn);
                    sh.logs.lock().unwrap()[n].done = true;
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(5)),
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// One connection of the scripted origin, from the origin's side.
pub struct OriginConn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    n: usize,
    shared: Arc<Shared>,
    user: String,
}

impl OriginConn {
    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("connection already closed")
    }

    /// This connection's index.
    pub fn index(&self) -> usize {
        self.n
    }

    /// Sends bytes; false if the proxy is gone (or stopped reading for 20 s).
    pub fn send(&mut self, data: &[u8]) -> bool {
        self.stream().write_all(data).is_ok()
    }

    /// Sends the greeting.
    pub fn greet(&mut self) -> bool {
        self.send(GREETING)
    }

    /// The next line from the proxy (CRLF removed), recorded; None on EOF,
    /// error or 20 s of silence.
    pub fn command(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                self.shared.logs.lock().unwrap()[self.n]
                    .commands
                    .push(line.clone());
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            match self.stream().read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
    }

    /// Records whatever the proxy sends until it closes; true if it closed
    /// within `within`.
    pub fn wait_close(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream().set_read_timeout(Some(left)).unwrap();
            match self.command() {
                Some(_) => continue,
                None => {
                    // EOF, reset, or the deadline.
                    return Instant::now() < deadline;
                }
            }
        }
    }

    /// Answers one command as the well-behaved origin does; false after
    /// QUIT (answered) or when the proxy is gone.
    pub fn reply(&mut self, command: &str) -> bool {
        let upper = command.to_ascii_uppercase();
        let mut words = upper.split_whitespace();
        let keyword = words.next().unwrap_or("");
        let arg: Option<usize> = words.next().and_then(|a| a.parse().ok());
        let big = self.user == "big";
        let count = if big { 1 } else { 2 };
        let size = |n: usize| {
            if big {
                BIG_SIZE
            } else {
                small_body(n).len()
            }
        };
        let reply: Vec<u8> = match keyword {
            "CAPA" => CAPA.to_vec(),
            "USER" => {
                self.user = command.split_whitespace().nth(1).unwrap_or("").to_string();
                b"+OK\r\n".to_vec()
            }
            "PASS" | "NOOP" | "RSET" | "DELE" => b"+OK\r\n".to_vec(),
            "STAT" => {
                let total: usize = (1..=count).map(size).sum();
                format!("+OK {count} {total}\r\n").into_bytes()
            }
            "LIST" => match arg {
                Some(n) if (1..=count).contains(&n) => {
                    format!("+OK {n} {}\r\n", size(n)).into_bytes()
                }
                Some(_) => b"-ERR no such message\r\n".to_vec(),
                None => {
                    let mut r = format!("+OK {count} messages\r\n").into_bytes();
                    for n in 1..=count {
                        r.extend_from_slice(format!("{n} {}\r\n", size(n)).as_bytes());
                    }
                    r.extend_from_slice(b".\r\n");
                    r
                }
            },
            "RETR" if big && arg == Some(1) => {
                if !self.send(format!("+OK {BIG_SIZE} octets\r\n").as_bytes()) {
                    return false;
                }
                let mut at = 0;
                while at < BIG_SIZE {
                    let end = (at + 256 * 1024).min(BIG_SIZE);
                    if !self.send(&big_body_range(at, end)) {
                        return false;
                    }
                    at = end;
                }
                b".\r\n".to_vec()
            }
            "RETR" => match arg {
                Some(n) if (1..=count).contains(&n) => small_retr(n),
                _ => b"-ERR no such message\r\n".to_vec(),
            },
            "QUIT" => {
                self.send(b"+OK bye\r\n");
                return false;
            }
            _ => b"-ERR unknown command\r\n".to_vec(),
        };
        self.send(&reply)
    }

    /// Greets, then answers every command until QUIT or the end of the
    /// connection.
    pub fn serve(&mut self) {
        if !self.greet() {
            return;
        }
        self.serve_commands();
    }

    /// Answers every command until QUIT or the end of the connection.
    pub fn serve_commands(&mut self) {
        while let Some(command) = self.command() {
            if !self.reply(&command) {
                return;
            }
        }
    }

    /// Greets and answers commands until one matches `stop` (returned,
    /// unanswered); None if the connection ended first.
    pub fn serve_until(&mut self, stop: impl Fn(&str) -> bool) -> Option<String> {
        if !self.greet() {
            return None;
        }
        while let Some(command) = self.command() {
            if stop(&command) {
                return Some(command);
            }
            if !self.reply(&command) {
                return None;
            }
        }
        None
    }

    /// Closes the connection with a reset (RST) instead of a FIN.
    pub fn reset(&mut self) {
        if let Some(stream) = self.stream.take() {
            set_linger_zero(&stream);
            drop(stream);
        }
    }

    /// Closes the connection (FIN).
    pub fn close(&mut self) {
        self.stream.take();
    }
}

/// The command is `RETR ...`.
pub fn is_retr(command: &str) -> bool {
    command.to_ascii_uppercase().starts_with("RETR")
}

/// The command list contains a QUIT.
pub fn has_quit(commands: &[String]) -> bool {
    commands
        .iter()
        .any(|c| c.trim().eq_ignore_ascii_case("QUIT"))
}

// ---------------------------------------------------------------------------
// Processes, descriptors, memory
// ---------------------------------------------------------------------------

/// A process as /proc/PID/stat describes it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
}

/// /proc/PID/stat of one process, if it exists.
pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    Some(ProcInfo {
        pid,
        comm: stat[open + 1..close].to_string(),
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
    })
}

/// Every process visible in /proc.
pub fn processes() -> Vec<ProcInfo> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// The children of `pid`, in any state (zombies included).
pub fn children(pid: u32) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == pid as i32)
        .collect()
}

/// Live processes whose environment has `FILTER_MSG=<tag>` (a filter started
/// with `-m <tag>` and everything it started, wherever they were reparented).
pub fn tagged(tag: &str) -> Vec<ProcInfo> {
    let needle = format!("FILTER_MSG={tag}");
    processes()
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Kills (SIGKILL) the processes tagged `tag`: cleanup after a failed check.
pub fn kill_tagged(tag: &str) {
    for p in tagged(tag) {
        // SAFETY: kill(2) on one pid we found by its environment tag.
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
    }
}

/// A tag unique in this test process, for `-m`.
pub fn unique_tag(what: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "faults-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The entries of /proc/PID/fd with what they point to.
pub fn fds(pid: u32) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .map(|e| {
                    let target = fs::read_link(e.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|_| "?".into());
                    format!("{}->{target}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Whether `pid` is running (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    proc_info(pid as i32).is_some_and(|p| p.state != 'Z' && p.state != 'X')
}

/// The resident set size of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The descriptors of the daemon and its children, and the children.
#[derive(Debug)]
pub struct Snapshot {
    pub daemon_fds: Vec<String>,
    pub children: Vec<(ProcInfo, usize)>,
}

impl Snapshot {
    pub fn take(pid: u32) -> Snapshot {
        Snapshot {
            daemon_fds: fds(pid),
            children: children(pid)
                .into_iter()
                .map(|c| {
                    let n = fds(c.pid as u32).len();
                    (c, n)
                })
                .collect(),
        }
    }

    /// Descriptors of the daemon and of its children together.
    pub fn total(&self) -> usize {
        self.daemon_fds.len() + self.children.iter().map(|(_, n)| n).sum::<usize>()
    }
}

/// The leak checker: the daemon's state after its first complete session.
pub struct Baseline {
    pub pid: u32,
    pub fds: Vec<String>,
    pub rss_kib: u64,
}

impl Baseline {
    /// Waits until the daemon has no child and its descriptor count holds
    /// still, and records it. Take it after a first complete session.
    pub fn take(pid: u32) -> Baseline {
        let mut last = Snapshot::take(pid);
        let mut still = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while still < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(30));
            let now = Snapshot::take(pid);
            if now.children.is_empty() && now.daemon_fds == last.daemon_fds {
                still += 1;
            } else {
                still = 0;
            }
            last = now;
        }
        assert!(
            last.children.is_empty(),
            "no baseline: the daemon still has children {:?}",
            last.children
        );
        Baseline {
            pid,
            fds: last.daemon_fds,
            rss_kib: rss_kib(pid),
        }
    }

    /// Asserts that within 3 s the daemon is alive, has no child (running or
    /// zombie) and as many descriptors as at the baseline.
    pub fn assert_no_leak(&self, after: &str) {
        assert!(alive(self.pid), "after {after}: the daemon is not running");
        let mut last = Snapshot::take(self.pid);
        let clean = eventually(Duration::from_secs(3), || {
            last = Snapshot::take(self.pid);
            last.children.is_empty() && last.total() == self.fds.len()
        });
        assert!(
            alive(self.pid),
            "after {after}: the daemon died while checking for leaks"
        );
        if !clean {
            let extra: Vec<&String> = last
                .daemon_fds
                .iter()
                .filter(|f| !self.fds.contains(f))
                .collect();
            panic!(
                "after {after}: leak. baseline {} descriptors, now {} (daemon {}, children {:?}); \
                 daemon descriptors not in the baseline: {extra:?}; baseline {:?}",
                self.fds.len(),
                last.total(),
                last.daemon_fds.len(),
                last.children,
                self.fds
            );
        }
    }
}

/// Samples the VmRSS of a process every 10 ms until stopped; keeps the peak.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let (st, pk) = (stop.clone(), peak.clone());
        let handle = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                pk.fetch_max(rss_kib(pid), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(10));
            }
        });
        RssWatch {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// The peak so far, in KiB.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Stops sampling; returns the peak in KiB.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak()
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Asserts the peak RSS grew less than `limit_kib` over the baseline.
pub fn assert_rss_bounded(base: &Baseline, peak_kib: u64, limit_kib: u64, what: &str) {
    let growth = peak_kib.saturating_sub(base.rss_kib);
    eprintln!(
        "{what}: VmRSS baseline {} KiB, peak {peak_kib} KiB (+{growth} KiB)",
        base.rss_kib
    );
    assert!(
        growth < limit_kib,
        "{what}: the daemon's VmRSS grew by {growth} KiB (baseline {} KiB, peak {peak_kib} KiB), \
         limit {limit_kib} KiB",
        base.rss_kib
    );
}

// ---------------------------------------------------------------------------
// Signals and exit status
// ---------------------------------------------------------------------------

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on the daemon this test started.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Waits (polling `waitpid(WNOHANG)`) up to `within` for the test process's
/// child `pid` to end; its exit, or None if it still runs.
pub fn wait_exit(pid: u32, within: Duration) -> Option<Exit> {
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, without blocking.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == pid as libc::pid_t {
            return Some(if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else {
                Exit::Signal(libc::WTERMSIG(status))
            });
        }
        assert!(r == 0, "waitpid({pid}): {}", io::Error::last_os_error());
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
