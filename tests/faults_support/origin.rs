//! The scripted POP3 origin: every accepted connection runs the test's
//! handler, which may misbehave at will or [`OriginConn::serve`] the mailbox
//! of `mailbox.rs`; every line the proxy sent is recorded per connection.

use super::mailbox::{
    big_body_range, big_retr_head, small_body, small_retr, stalled_retr_part, BIG_SIZE, CAPA,
    GREETING,
};
use super::{eventually, set_linger_zero};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

/// Fault: serves until a RETR, answers it with [`big_retr_head`]`(sent)`,
/// then closes the connection (with a reset if `reset`).
pub fn dies_mid_big_retr(
    sent: usize,
    reset: bool,
) -> impl Fn(&mut OriginConn) + Send + Sync + 'static {
    move |c: &mut OriginConn| {
        if c.serve_until(is_retr).is_none() {
            return;
        }
        if !c.send(&big_retr_head(sent)) {
            return;
        }
        if reset {
            c.reset();
        }
    }
}

/// Fault: serves until a RETR, answers it with [`stalled_retr_part`], then
/// stalls until the proxy closes (15 s at most).
pub fn stalls_mid_retr(c: &mut OriginConn) {
    if c.serve_until(is_retr).is_none() {
        return;
    }
    c.send(&stalled_retr_part());
    c.wait_close(Duration::from_secs(15));
}
