//! Running the `stripmime` binary: on small inputs held in memory, and on big streams that are
//! generated and checked in pieces (never held whole), with the child's peak memory read from
//! /proc while it runs.

#![allow(dead_code)]

pub mod messages;

use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stripmime")
}

/// `stripmime` with `FILTER_MEDIAS` and `FILTER_MSG` set as given (`None`: unset).
pub fn command(medias: Option<&str>, note: Option<&str>) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_remove("FILTER_MEDIAS").env_remove("FILTER_MSG");
    if let Some(m) = medias {
        cmd.env("FILTER_MEDIAS", m);
    }
    if let Some(n) = note {
        cmd.env("FILTER_MSG", n);
    }
    cmd
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs stripmime on `input` held in memory.
pub fn run(medias: Option<&str>, note: Option<&str>, input: &[u8]) -> Run {
    let mut child = command(medias, note)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stripmime");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A child that stops reading (it failed) makes this write fail: that is its result.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for stripmime");
    writer.join().unwrap();
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A byte stream made of pieces, each repeated some number of times: a 200 MB message is a
/// few kilobytes of description.
#[derive(Debug, Clone, Default)]
pub struct Stream {
    pieces: Vec<(Vec<u8>, u64)>,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Appends `bytes` once.
    pub fn add(mut self, bytes: impl AsRef<[u8]>) -> Stream {
        self.pieces.push((bytes.as_ref().to_vec(), 1));
        self
    }

    /// Appends `bytes` `times` times.
    pub fn repeat(mut self, bytes: impl AsRef<[u8]>, times: u64) -> Stream {
        self.pieces.push((bytes.as_ref().to_vec(), times));
        self
    }

    pub fn len(&self) -> u64 {
        self.pieces.iter().map(|(p, n)| p.len() as u64 * n).sum()
    }

    /// Writes the whole stream.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        for (piece, times) in &self.pieces {
            for _ in 0..*times {
                w.write_all(piece)?;
            }
        }
        Ok(())
    }
}

/// Checks bytes against a [`Stream`] as they arrive.
struct Matcher<'a> {
    stream: &'a Stream,
    piece: usize,
    round: u64,
    at: usize,
    seen: u64,
}

impl<'a> Matcher<'a> {
    fn new(stream: &'a Stream) -> Matcher<'a> {
        let mut m = Matcher {
            stream,
            piece: 0,
            round: 0,
            at: 0,
            seen: 0,
        };
        m.skip_empty();
        m
    }

    fn skip_empty(&mut self) {
        while let Some((p, times)) = self.stream.pieces.get(self.piece) {
            if self.round < *times && self.at < p.len() {
                return;
            }
            if self.at >= p.len() && self.round + 1 < *times {
                self.round += 1;
                self.at = 0;
            } else {
                self.piece += 1;
                self.round = 0;
                self.at = 0;
            }
        }
    }

    /// Compares `got` with what comes next; an error names the first offset that differs.
    fn feed(&mut self, mut got: &[u8]) -> Result<(), String> {
        while !got.is_empty() {
            let Some((p, _)) = self.stream.pieces.get(self.piece) else {
                return Err(format!(
                    "{} bytes more than expected at {}",
                    got.len(),
                    self.seen
                ));
            };
            let n = got.len().min(p.len() - self.at);
            if got[..n] != p[self.at..self.at + n] {
                let i = (0..n).find(|&i| got[i] != p[self.at + i]).unwrap();
                return Err(format!(
                    "differs at byte {}: got {:?}, want {:?}",
                    self.seen + i as u64,
                    String::from_utf8_lossy(&got[i..n.min(i + 60)]),
                    String::from_utf8_lossy(&p[self.at + i..(self.at + n).min(self.at + i + 60)])
                ));
            }
            got = &got[n..];
            self.at += n;
            self.seen += n as u64;
            self.skip_empty();
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.piece >= self.stream.pieces.len()
    }
}

/// A streamed run: how it ended, what it said, whether its output matched, and its peak
/// resident memory (VmHWM, read from /proc after the last input byte was written).
#[derive(Debug)]
pub struct Streamed {
    pub status: ExitStatus,
    pub stderr: String,
    pub out_len: u64,
    pub mismatch: Option<String>,
    pub peak_kib: u64,
}

/// The peak resident memory of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Streams `input` through stripmime and checks its output against `want` as it comes.
pub fn stream_through(medias: &str, note: Option<&str>, input: &Stream, want: &Stream) -> Streamed {
    let mut child = command(Some(medias), note)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stripmime");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (input, want) = (input.clone(), want.clone());
    let writer = thread::spawn(move || {
        let _ = input.write_to(&mut stdin);
        // Still alive: it waits for the end of its input.
        let peak = vm_hwm_kib(pid).unwrap_or(u64::MAX);
        drop(stdin);
        peak
    });
    let errors = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut matcher = Matcher::new(&want);
    let mut mismatch = None;
    let mut buf = vec![0u8; 1 << 16];
    let mut out_len = 0;
    loop {
        let n = stdout.read(&mut buf).expect("read stripmime's output");
        if n == 0 {
            break;
        }
        out_len += n as u64;
        if mismatch.is_none() {
            mismatch = matcher.feed(&buf[..n]).err();
        }
    }
    if mismatch.is_none() && !matcher.done() {
        mismatch = Some(format!(
            "output ended early, at {out_len} bytes of {}",
            want.len()
        ));
    }
    let peak_kib = writer.join().unwrap();
    let status = child.wait().unwrap();
    Streamed {
        status,
        stderr: errors.join().unwrap(),
        out_len,
        mismatch,
        peak_kib,
    }
}
