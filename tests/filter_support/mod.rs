//! Helpers shared by `tests/filter.rs` and `tests/filter_load.rs` (the
//! transformation tests): a streaming raw client for 20 MiB replies that never
//! holds more than one chunk, the direct reference reply of the big message,
//! a look at the daemon's children and memory through /proc (on top of
//! `tests/proc_support/`, shared with `faults_support`), scratch dirs,
//! and a scripted origin that reports whether the proxy said QUIT.
//! Use it after `mod common;` with `mod filter_support;`.

#![allow(dead_code)]

#[path = "../proc_support/mod.rs"]
mod proc_support;

#[allow(unused_imports)]
pub use proc_support::{children, eventually, processes, ProcInfo};

use crate::common::{dovecot, excerpt, Pop3, Proxy, PASSWORD};
use proc_support::vm_rss_kib;
use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

/// A logged-in `Pop3` session (greeting read).
pub fn session(port: u16, user: &str) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login(user, PASSWORD);
    c
}

/// (status line, rest) of a reply.
pub fn split_status(reply: &[u8]) -> (&[u8], &[u8]) {
    let i = reply
        .iter()
        .position(|&b| b == b'\n')
        .expect("no status line")
        + 1;
    reply.split_at(i)
}

/// The raw reply of `RETR n` of alice straight from Dovecot.
pub fn direct_retr(n: usize) -> Vec<u8> {
    let mut c = session(dovecot().port, "alice");
    c.cmd(&format!("RETR {n}"));
    c.multi()
}

/// RETR `n` of alice through a daemon running `-t filter`: the raw reply.
pub fn retr_through(filter: &str, n: usize) -> Vec<u8> {
    let proxy = Proxy::for_dovecot(&["-t", filter]);
    let mut c = session(proxy.port, "alice");
    c.cmd(&format!("RETR {n}"));
    let reply = c.multi();
    c.cmd("QUIT");
    assert_eq!(c.line()[..3], *b"+OK");
    reply
}

/// An origin for one connection that answers everything `+OK` and RETR with
/// a 60-line message; it reports the commands it got once the proxy closes.
pub fn scripted_origin() -> (u16, mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(b"+OK scripted\r\n").unwrap();
        let mut commands = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).trim_end().to_string();
                let reply = match line.to_ascii_uppercase().as_str() {
                    "CAPA" => "+OK\r\nUSER\r\nPIPELINING\r\n.\r\n".to_string(),
                    "QUIT" => "+OK bye\r\n".to_string(),
                    l if l.starts_with("RETR") => {
                        let body: String = (0..60)
                            .map(|i| format!("line {i:04} of the body\r\n"))
                            .collect();
                        format!("+OK {} octets\r\n{body}.\r\n", body.len())
                    }
                    _ => "+OK\r\n".to_string(),
                };
                let _ = stream.write_all(reply.as_bytes());
                commands.push(line);
            }
        }
        let _ = tx.send(commands);
    });
    (port, rx)
}

/// A raw client reading through a `BufReader`, for replies too big to keep.
pub struct Raw {
    pub r: BufReader<TcpStream>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port`, reads the greeting and logs in as `user`.
    pub fn login(port: u16, user: &str) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let mut raw = Raw {
            r: BufReader::with_capacity(64 * 1024, stream),
        };
        let greeting = raw.line();
        assert!(greeting.starts_with(b"+OK"), "{:?}", excerpt(&greeting));
        for command in [format!("USER {user}"), format!("PASS {PASSWORD}")] {
            raw.cmd(&command);
            let reply = raw.line();
            assert!(
                reply.starts_with(b"+OK"),
                "{command}: {:?}",
                excerpt(&reply)
            );
        }
        raw
    }

    pub fn cmd(&mut self, command: &str) {
        self.r
            .get_mut()
            .write_all(format!("{command}\r\n").as_bytes())
            .unwrap();
    }

    /// One line with its CRLF; panics on EOF.
    pub fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(
            line.ends_with(b"\n"),
            "EOF inside a line: {:?}",
            excerpt(&line)
        );
        line
    }

    /// Everything after a `+OK` status line through the terminator, kept.
    pub fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while !(out == b".\r\n" || out.ends_with(b"\r\n.\r\n")) {
            let buf = self.r.fill_buf().unwrap();
            assert!(!buf.is_empty(), "EOF after {} body bytes", out.len());
            out.extend_from_slice(buf);
            let n = buf.len();
            self.r.consume(n);
        }
        out
    }

    /// Reads exactly `want.len()` bytes, comparing them with `want` as they
    /// arrive; Err names the first difference (or the early EOF).
    pub fn expect(&mut self, want: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < want.len() {
            let buf = match self.r.fill_buf() {
                Ok(buf) => buf,
                Err(e) => {
                    return Err(format!(
                        "read error after {at} of {} bytes: {e}",
                        want.len()
                    ))
                }
            };
            if buf.is_empty() {
                return Err(format!("EOF after {at} of {} bytes", want.len()));
            }
            let n = buf.len().min(want.len() - at);
            if buf[..n] != want[at..at + n] {
                let i = (0..n).find(|&i| buf[i] != want[at + i]).unwrap();
                return Err(format!(
                    "first difference at byte {}: got {:?}, expected {:?}",
                    at + i,
                    excerpt(&buf[i..n]),
                    excerpt(&want[at + i..(at + i + 300).min(want.len())])
                ));
            }
            self.r.consume(n);
            at += n;
        }
        Ok(())
    }

    /// Reads `n` bytes (or fewer at EOF) and drops them; returns how many came.
    pub fn skip(&mut self, n: usize) -> usize {
        let mut left = n;
        while left > 0 {
            let buf = self.r.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            let k = buf.len().min(left);
            self.r.consume(k);
            left -= k;
        }
        n - left
    }
}

/// Everything the peer sends until it closes the connection; the error, if
/// the connection ended with one (a reset) rather than with EOF.
pub fn read_until_closed(r: &mut impl Read) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The reply to `RETR 1` of user `big` straight from Dovecot, status line
/// excluded, terminator included (fetched once per test process).
pub fn big_reference() -> &'static [u8] {
    static REF: OnceLock<Vec<u8>> = OnceLock::new();
    REF.get_or_init(|| {
        let mut c = Raw::login(dovecot().port, "big");
        c.cmd("RETR 1");
        let status = c.line();
        assert!(status.starts_with(b"+OK"), "{:?}", excerpt(&status));
        let body = c.body();
        assert!(
            body.len() > 20 << 20,
            "big message is only {} bytes",
            body.len()
        );
        c.cmd("QUIT");
        c.line();
        body
    })
}

/// Removes the final `.\r\n` and one leading dot per line: the message a
/// client sees in a multi-line body (status line already removed).
pub fn unstuff_body(body: &[u8]) -> Vec<u8> {
    let body = body.strip_suffix(b".\r\n").expect("no terminator");
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// Asserts that within `within` the daemon `pid` has no child process left
/// at all: no zombie (state Z) and no filter still running.
pub fn assert_no_children(pid: u32, within: Duration) {
    let mut last = Vec::new();
    let clean = eventually(within, || {
        last = children(pid);
        last.is_empty()
    });
    assert!(
        clean,
        "after {within:?} the daemon (pid {pid}) still has children: {:?}{}",
        last,
        if last.iter().any(|p| p.state == 'Z') {
            " (zombies)"
        } else {
            ""
        }
    );
}

/// The resident set size of `pid`, in KiB (VmRSS in /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    vm_rss_kib(pid).unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// A fresh empty directory for filter scratch files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("filter-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The names of the files in it.
    pub fn entries(&self) -> Vec<String> {
        fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// `cat > DIR/f.$$; cat DIR/f.$$; rm DIR/f.$$`: reads the whole message
    /// before writing a byte of it.
    pub fn lazy_filter(&self) -> String {
        let f = format!("'{}/f.'$$", self.0.display());
        format!("cat > {f} && cat {f} && rm {f}")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
