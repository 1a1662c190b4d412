//! pop3filter in front of scripted origins that differ in PIPELINING support.
//!
//! Proves that (1) when the origin's CAPA does not list PIPELINING, the proxy
//! sends it one command at a time, each only after the previous reply, while
//! its own client pipelines freely and gets every reply in order, and sees
//! `PIPELINING` added to CAPA (other lines, like `SINPIPELINING`, kept);
//! (2) when the origin has no CAPA at all (`-ERR`), the client's CAPA still
//! gets `+OK` with a `PIPELINING` line; (3) when the origin does offer
//! PIPELINING, commands are forwarded as they arrive, without waiting.

mod common;

use common::{excerpt, Proxy};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How long the lock-step origin waits for bytes that should not come.
const QUIET: Duration = Duration::from_millis(150);
const PATIENCE: Duration = Duration::from_secs(10);

const CAPA_NO_PIPELINING: &[u8] = b"+OK\r\nTOP\r\nSINPIPELINING\r\nUSER\r\n.\r\n";
/// Also offers STLS, which the proxy (no TLS) must not pass on.
const CAPA_PIPELINING: &[u8] = b"+OK\r\nTOP\r\nPIPELINING\r\nSTLS\r\nUSER\r\n.\r\n";

/// One command as the origin received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received {
    line: String,
    /// More bytes had arrived before the origin finished writing its reply.
    early: bool,
}

/// The origin's end of the proxy's connection, reading line by line.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// The next line, without its CRLF; Err on EOF or after PATIENCE of silence.
    fn line(&mut self) -> Result<String, String> {
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line).into_owned();
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(format!("EOF; unread {:?}", excerpt(&self.buf))),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e}; unread {:?}", excerpt(&self.buf))),
            }
        }
    }

    /// Whether any byte beyond the lines taken is here, or arrives within `wait`.
    fn more_waiting(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.peek(&mut byte) {
            Ok(n) => n > 0,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) => panic!("origin peek: {e}"),
        }
    }

    fn reply(&mut self, line: &str, capa: &[u8]) -> bool {
        let word = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let reply = match word.as_str() {
            "CAPA" => capa.to_vec(),
            "QUIT" => b"+OK bye\r\n".to_vec(),
            _ => format!("+OK {line}\r\n").into_bytes(),
        };
        self.stream.write_all(&reply).unwrap();
        word != "QUIT"
    }
}

/// A scripted origin for one connection: greets `+OK hi`, answers CAPA with
/// `capa`, QUIT with `+OK bye` (then closes), anything else with `+OK <line>`.
/// It first takes `hold` commands (the proxy's CAPA probe not counted) without
/// answering any, then answers in lock step, watching for early bytes.
fn origin(capa: &'static [u8], hold: usize) -> (u16, JoinHandle<Result<Vec<Received>, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
        };
        conn.stream.write_all(b"+OK hi\r\n").unwrap();
        let mut log = Vec::new();
        if hold > 0 {
            let probe = conn.line()?;
            let early = conn.more_waiting(QUIET);
            conn.reply(&probe, capa);
            log.push(Received { line: probe, early });
            let mut held = Vec::new();
            while held.len() < hold {
                let line = conn.line().map_err(|e| {
                    format!("only {held:?} of {hold} commands came unanswered: {e}")
                })?;
                held.push(line);
            }
            for (i, line) in held.into_iter().enumerate() {
                conn.reply(&line, capa);
                log.push(Received {
                    line,
                    early: i + 1 < hold,
                });
            }
        }
        loop {
            let line = conn.line()?;
            let early = conn.more_waiting(QUIET);
            let go_on = conn.reply(&line, capa);
            log.push(Received { line, early });
            if !go_on {
                return Ok(log);
            }
        }
    });
    (port, handle)
}

fn lines(reply: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(reply)
        .split_inclusive("\r\n")
        .map(String::from)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Without PIPELINING at the origin: strict lock step upstream, pipelining
/// downstream, and the CAPA the client sees says PIPELINING.
#[test]
fn non_pipelining_origin_gets_one_command_at_a_time() {
    let (port, origin) = origin(CAPA_NO_PIPELINING, 0);
    let proxy = Proxy::for_origin(port, &[]);
    let mut c = proxy.connect();
    assert_eq!(excerpt(&c.greeting()), "+OK hi\r\n");
    c.send(b"STAT\r\nLIST 1\r\nCAPA\r\nNOOP\r\nUIDL 1\r\n");
    assert_eq!(excerpt(&c.line()), "+OK STAT\r\n");
    assert_eq!(excerpt(&c.line()), "+OK LIST 1\r\n");
    let capa = c.multi();
    let capa_lines = lines(&capa);
    assert_eq!(
        capa_lines.first().map(String::as_str),
        Some("+OK\r\n"),
        "{capa_lines:?}"
    );
    assert_eq!(
        capa_lines.last().map(String::as_str),
        Some(".\r\n"),
        "{capa_lines:?}"
    );
    assert_eq!(
        sorted(capa_lines[1..capa_lines.len() - 1].to_vec()),
        sorted(
            ["TOP\r\n", "SINPIPELINING\r\n", "USER\r\n", "PIPELINING\r\n"]
                .map(String::from)
                .to_vec()
        ),
        "CAPA through the proxy: {:?}",
        excerpt(&capa)
    );
    assert_eq!(excerpt(&c.line()), "+OK NOOP\r\n");
    assert_eq!(excerpt(&c.line()), "+OK UIDL 1\r\n");
    c.cmd("QUIT");
    assert_eq!(excerpt(&c.line()), "+OK bye\r\n");
    assert_eq!(c.read_to_end(), b"");

    let log = origin.join().unwrap().unwrap();
    let got: Vec<&str> = log.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        got,
        ["CAPA", "STAT", "LIST 1", "CAPA", "NOOP", "UIDL 1", "QUIT"]
    );
    for r in &log {
        assert!(
            !r.early,
            "{:?} was followed by more bytes before its reply: {log:?}",
            r.line
        );
    }
}

/// An origin without CAPA: the client's CAPA still gets `+OK` and a
/// `PIPELINING` line, and the session goes on (in lock step upstream).
#[test]
fn origin_without_capa_still_shows_pipelining() {
    let (port, origin) = origin(b"-ERR Unknown command\r\n", 0);
    let proxy = Proxy::for_origin(port, &[]);
    let mut c = proxy.connect();
    assert_eq!(excerpt(&c.greeting()), "+OK hi\r\n");
    c.send(b"CAPA\r\nNOOP\r\nSTAT\r\n");
    let capa = lines(&c.multi());
    assert!(
        capa[0].starts_with("+OK") && capa[0].ends_with("\r\n"),
        "{capa:?}"
    );
    assert_eq!(capa[1..], ["PIPELINING\r\n", ".\r\n"], "{capa:?}");
    assert_eq!(excerpt(&c.line()), "+OK NOOP\r\n");
    assert_eq!(excerpt(&c.line()), "+OK STAT\r\n");
    c.cmd("QUIT");
    assert_eq!(excerpt(&c.line()), "+OK bye\r\n");
    assert_eq!(c.read_to_end(), b"");

    let log = origin.join().unwrap().unwrap();
    let got: Vec<&str> = log.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(got, ["CAPA", "CAPA", "NOOP", "STAT", "QUIT"]);
    assert!(log.iter().all(|r| !r.early), "{log:?}");
}

/// With PIPELINING at the origin, the proxy forwards commands as they come:
/// the origin receives all five before it answers the first.  The origin's
/// STLS capability is hidden from the client.
#[test]
fn pipelining_origin_gets_commands_without_waiting() {
    let (port, origin) = origin(CAPA_PIPELINING, 5);
    let proxy = Proxy::for_origin(port, &[]);
    let mut c = proxy.connect();
    assert_eq!(excerpt(&c.greeting()), "+OK hi\r\n");
    c.send(b"STAT\r\nNOOP\r\nLIST 1\r\nUIDL 1\r\nCAPA\r\n");
    for want in [
        "+OK STAT\r\n",
        "+OK NOOP\r\n",
        "+OK LIST 1\r\n",
        "+OK UIDL 1\r\n",
    ] {
        assert_eq!(excerpt(&c.line()), want);
    }
    let capa = lines(&c.multi());
    assert_eq!(
        capa,
        ["+OK\r\n", "TOP\r\n", "PIPELINING\r\n", "USER\r\n", ".\r\n"]
    );
    c.cmd("QUIT");
    assert_eq!(excerpt(&c.line()), "+OK bye\r\n");
    assert_eq!(c.read_to_end(), b"");

    let log = origin
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("origin: {e}"));
    let got: Vec<&str> = log.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        got,
        ["CAPA", "STAT", "NOOP", "LIST 1", "UIDL 1", "CAPA", "QUIT"]
    );
    assert!(
        !log[0].early,
        "nothing may follow the probe before its reply: {log:?}"
    );
}
