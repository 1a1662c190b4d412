//! loadgen: the POP3 client of `make bench`.
//!
//! ```text
//! loadgen MODE -p PORT[,PORT...] [-H HOST] [-u USER] [-w PASS] [-m MSG] [-e LEN:SHA256]
//!              [-n COUNT] [-c CLIENTS] [-d SECONDS] [-T SECONDS] [-t CMD] [-i FILE]
//! ```
//!
//! Modes (each prints JSON objects, one per line, on stdout: a summary per port):
//!
//! - `fetch`: one session, `RETR MSG`; prints the message's length and SHA-256.
//! - `sessions`: COUNT sequential sessions per port, each greeting, USER, PASS, `RETR MSG`,
//!   QUIT; latency per session, from before `connect` to the QUIT reply. With several ports
//!   the sessions alternate between them, each cycle in a new shuffled order (B A C, C B A,
//!   ...), so that whatever else the machine does weighs on every target alike.
//! - `retrs`: one session per port, COUNT sequential `RETR MSG` in each; latency per RETR, from
//!   sending the command to the terminating `.`; MiB/s over the RETR time. With several ports
//!   the RETRs alternate between the sessions as in `sessions`.
//! - `parallel`: CLIENTS threads run sessions as in `sessions` until COUNT sessions were
//!   started or SECONDS passed; sessions/s and MiB/s over the wall time.
//! - `hold`: opens COUNT sessions (greeting read, nothing else) with CLIENTS threads, prints
//!   `{"event":"held",…}`, waits for a line on stdin, then every session sends CAPA and QUIT;
//!   counts the sessions that answered both.
//!
//! - `spawn`: COUNT times, runs `/bin/sh -c CMD` (`-t CMD`) with its stdin fed from `-i FILE`
//!   (or closed at once) and its stdout read to the end, as pop3filter runs a transformation;
//!   latency from the spawn to the exit: the filter's own cost.
//!
//! Every retrieved message is un-dot-stuffed and checked against `-e LEN:SHA256` (the message
//! as the server stores it, CRLF line ends), outside the timed part of `sessions` and `retrs`.
//! Every socket has TCP_NODELAY. Errors are counted, never fatal; the first is reported.

mod sha256;

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Clone, Copy)]
struct Expect {
    len: usize,
    sha: [u8; 32],
}

struct Config {
    mode: String,
    /// The first of `addrs`: the one server of the single-target modes.
    addr: SocketAddr,
    addrs: Vec<SocketAddr>,
    user: String,
    pass: String,
    msg: u32,
    expect: Option<Expect>,
    count: usize,
    clients: usize,
    duration: Duration,
    timeout: Duration,
    filter: String,
    input: Option<String>,
}

fn usage() -> String {
    let opts = options();
    opts.usage("usage: loadgen fetch|sessions|retrs|parallel|hold|spawn -p PORT [options]")
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("H", "host", "server address (127.0.0.1)", "HOST");
    o.optmulti(
        "p",
        "port",
        "server port(s), repeated or comma-separated",
        "PORT",
    );
    o.optopt("u", "user", "POP3 user (bench)", "USER");
    o.optopt("w", "pass", "POP3 password (secret)", "PASS");
    o.optopt("m", "msg", "message number to RETR (1)", "N");
    o.optopt(
        "e",
        "expect",
        "expected message length and SHA-256",
        "LEN:SHA256",
    );
    o.optopt("n", "count", "sessions, RETRs or held sessions (1)", "N");
    o.optopt("c", "clients", "parallel clients / hold threads (16)", "N");
    o.optopt(
        "d",
        "duration",
        "parallel: stop starting sessions after (30)",
        "SECONDS",
    );
    o.optopt("T", "timeout", "socket timeout (60)", "SECONDS");
    o.optopt("t", "filter", "spawn: the command (cat)", "CMD");
    o.optopt("i", "input", "spawn: feed this file to the command", "FILE");
    o.optflag("h", "help", "this text");
    o
}

fn parse(args: &[String]) -> Result<Option<Config>, String> {
    let m = options().parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        return Ok(None);
    }
    let mode = match m.free.as_slice() {
        [mode] => mode.clone(),
        _ => return Err("exactly one MODE expected".into()),
    };
    if !["fetch", "sessions", "retrs", "parallel", "hold", "spawn"].contains(&mode.as_str()) {
        return Err(format!("unknown mode {mode}"));
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, o: &str, def: T) -> Result<T, String> {
        match m.opt_str(o) {
            None => Ok(def),
            Some(s) => s.parse().map_err(|_| format!("-{o}: not a number: {s}")),
        }
    }
    let host = m.opt_str("H").unwrap_or_else(|| "127.0.0.1".into());
    let mut ports = Vec::new();
    for list in m.opt_strs("p") {
        for p in list.split(',') {
            ports.push(p.parse::<u16>().map_err(|_| format!("-p: bad port {p}"))?);
        }
    }
    if ports.is_empty() {
        if mode != "spawn" {
            return Err("-p PORT is required".into());
        }
        ports.push(9);
    }
    let mut addrs = Vec::new();
    for port in ports {
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        addrs.push(addr);
    }
    let expect = match m.opt_str("e") {
        None => None,
        Some(s) => Some(parse_expect(&s).ok_or_else(|| format!("-e: want LEN:SHA256, got {s}"))?),
    };
    if expect.is_none() && !["fetch", "hold", "spawn"].contains(&mode.as_str()) {
        return Err(format!("{mode} needs -e LEN:SHA256"));
    }
    Ok(Some(Config {
        mode,
        addr: addrs[0],
        addrs,
        user: m.opt_str("u").unwrap_or_else(|| "bench".into()),
        pass: m.opt_str("w").unwrap_or_else(|| "secret".into()),
        msg: num(&m, "m", 1)?,
        expect,
        count: num(&m, "n", 1)?,
        clients: num::<usize>(&m, "c", 16)?.max(1),
        duration: Duration::from_secs_f64(num(&m, "d", 30.0)?),
        timeout: Duration::from_secs_f64(num(&m, "T", 60.0)?),
        filter: m.opt_str("t").unwrap_or_else(|| "cat".into()),
        input: m.opt_str("i"),
    }))
}

fn parse_expect(s: &str) -> Option<Expect> {
    let (len, hex) = s.split_once(':')?;
    if hex.len() != 64 {
        return None;
    }
    let mut sha = [0u8; 32];
    for (i, byte) in sha.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Expect {
        len: len.parse().ok()?,
        sha,
    })
}

// --- the POP3 client ---------------------------------------------------------------------

/// One connection's reply buffer. The client never pipelines, so a reply is complete when the
/// received bytes end with its terminator: CRLF for a single line, CRLF "." CRLF for a
/// multi-line reply (a body line "." is stuffed to "..", so the sequence cannot occur inside).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    len: usize,
    /// Length of the status line, CRLF included.
    first: usize,
    rx: u64,
}

impl Conn {
    fn open(cfg: &Config, addr: SocketAddr, buf: Vec<u8>) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, cfg.timeout)
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        stream
            .set_read_timeout(Some(cfg.timeout))
            .and_then(|()| stream.set_write_timeout(Some(cfg.timeout)))
            .map_err(|e| format!("timeout: {e}"))?;
        let mut c = Conn {
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
        let n = self.stream.read(&mut self.buf[self.len..])?;
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

    fn command(&mut self, line: &str, multi: bool) -> Result<(), String> {
        self.stream
            .write_all(line.as_bytes())
            .map_err(|e| format!("sending {}: {e}", line.trim_end()))?;
        let verb = line.split_whitespace().next().unwrap_or("");
        self.reply(multi).map_err(|e| format!("{verb}: {e}"))
    }

    fn login(&mut self, cfg: &Config) -> Result<(), String> {
        self.command(&format!("USER {}\r\n", cfg.user), false)?;
        self.command(&format!("PASS {}\r\n", cfg.pass), false)
    }

    /// The body of the last multi-line reply, still dot-stuffed, with its final CRLF.
    fn body(&self) -> &[u8] {
        &self.buf[self.first..self.len - 3]
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// Undoes the dot-stuffing of a RETR body into `out`.
fn unstuff(body: &[u8], out: &mut Vec<u8>) {
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

fn verify(body: &[u8], scratch: &mut Vec<u8>, want: &Expect) -> Result<(), String> {
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

// --- results -----------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    lat_ms: Vec<f64>,
    msg_bytes: u64,
    rx_bytes: u64,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.lat_ms.extend(other.lat_ms);
        self.msg_bytes += other.msg_bytes;
        self.rx_bytes += other.rx_bytes;
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Samples per 5 ms bucket, [0, 5) ... [195, 200), then 200 ms and more: a Nagle/delayed-ACK
/// stall shows as a bump some 40 ms above the usual time.
fn histogram(samples: &[f64]) -> String {
    let mut counts = [0usize; 41];
    for &ms in samples {
        counts[((ms / 5.0) as usize).min(40)] += 1;
    }
    let text: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
    format!("[{}]", text.join(","))
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(mode: &str, t: &mut Tally, elapsed: f64, extra: &[(&str, String)]) -> String {
    summary_for(mode, None, t, elapsed, extra)
}

fn summary_for(
    mode: &str,
    port: Option<u16>,
    t: &mut Tally,
    elapsed: f64,
    extra: &[(&str, String)],
) -> String {
    t.lat_ms.sort_by(|a, b| a.total_cmp(b));
    let l = &t.lat_ms;
    let mean = if l.is_empty() {
        0.0
    } else {
        l.iter().sum::<f64>() / l.len() as f64
    };
    let mut fields = vec![
        ("mode", json_str(mode)),
        ("port", port.map_or("null".into(), |p| p.to_string())),
        ("ok", t.ok.to_string()),
        ("errors", t.errors.to_string()),
        (
            "first_error",
            t.first_error.as_deref().map_or("null".into(), json_str),
        ),
        ("elapsed_s", format!("{elapsed:.6}")),
        ("msg_bytes", t.msg_bytes.to_string()),
        ("rx_bytes", t.rx_bytes.to_string()),
        ("samples", l.len().to_string()),
        (
            "lat_min_ms",
            format!("{:.4}", l.first().copied().unwrap_or(0.0)),
        ),
        ("lat_p50_ms", format!("{:.4}", percentile(l, 0.50))),
        ("lat_p90_ms", format!("{:.4}", percentile(l, 0.90))),
        ("lat_p99_ms", format!("{:.4}", percentile(l, 0.99))),
        (
            "lat_max_ms",
            format!("{:.4}", l.last().copied().unwrap_or(0.0)),
        ),
        ("lat_mean_ms", format!("{mean:.4}")),
        (
            "lat_ge_40ms",
            l.iter().filter(|&&x| x >= 40.0).count().to_string(),
        ),
        ("lat_hist_5ms", histogram(l)),
        ("sha256", json_str(sha256::implementation())),
    ];
    fields.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

// --- modes -------------------------------------------------------------------------------

/// One whole session; the latency and the retrieved message go into `t` (checked after the
/// clock stopped). `buf` and `kept` are reused from session to session.
fn session(
    cfg: &Config,
    addr: SocketAddr,
    t: &mut Tally,
    buf: &mut Vec<u8>,
    kept: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let start = Instant::now();
    let mut rx = 0;
    let run =
        |buf: &mut Vec<u8>, kept: &mut Vec<u8>, rx: &mut u64| -> Result<(usize, usize), String> {
            let mut c = Conn::open(cfg, addr, std::mem::take(buf))?;
            let result = (|| {
                c.login(cfg)?;
                c.command(&format!("RETR {}\r\n", cfg.msg), true)?;
                let range = (c.first, c.len - 3);
                // Keep the message; QUIT's reply goes to the other buffer.
                std::mem::swap(&mut c.buf, kept);
                c.command("QUIT\r\n", false)?;
                Ok(range)
            })();
            *rx = c.rx;
            *buf = c.buf;
            result
        };
    let result = run(buf, kept, &mut rx);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    t.rx_bytes += rx;
    match result {
        Ok((from, to)) => match verify(&kept[from..to], scratch, cfg.expect.as_ref().unwrap()) {
            Ok(()) => {
                t.ok += 1;
                t.lat_ms.push(ms);
                t.msg_bytes += scratch.len() as u64;
            }
            Err(e) => t.error(e),
        },
        Err(e) => t.error(e),
    }
}

/// The order of the targets in each cycle of `sessions` and `retrs`: a fresh shuffle every
/// time (a fixed-seed xorshift, so runs repeat), so that no target always follows the same one.
struct Order {
    state: u64,
    perm: Vec<usize>,
}

impl Order {
    fn new(n: usize) -> Order {
        Order {
            state: 0x9e37_79b9_7f4a_7c15,
            perm: (0..n).collect(),
        }
    }

    fn next(&mut self) -> Vec<usize> {
        for i in (1..self.perm.len()).rev() {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let j = (self.state % (i as u64 + 1)) as usize;
            self.perm.swap(i, j);
        }
        self.perm.clone()
    }
}

fn mode_sessions(cfg: &Config) -> String {
    let n = cfg.addrs.len();
    let mut tallies: Vec<Tally> = (0..n).map(|_| Tally::default()).collect();
    let (mut buf, mut kept, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut order = Order::new(n);
    let start = Instant::now();
    for _ in 0..cfg.count {
        for j in order.next() {
            let addr = cfg.addrs[j];
            session(
                cfg,
                addr,
                &mut tallies[j],
                &mut buf,
                &mut kept,
                &mut scratch,
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lines: Vec<String> = tallies
        .iter_mut()
        .zip(&cfg.addrs)
        .map(|(t, a)| summary_for("sessions", Some(a.port()), t, elapsed, &[]))
        .collect();
    lines.join("\n")
}

/// One target of `retrs`: its session (None once it failed) and its figures.
struct RetrTarget {
    conn: Option<Conn>,
    t: Tally,
    retr_time: f64,
}

fn mode_retrs(cfg: &Config) -> String {
    let mut targets: Vec<RetrTarget> = cfg
        .addrs
        .iter()
        .map(|&addr| {
            let mut t = Tally::default();
            let conn = Conn::open(cfg, addr, Vec::new()).and_then(|mut c| {
                c.login(cfg)?;
                Ok(c)
            });
            let conn = conn.map_err(|e| t.error(e)).ok();
            RetrTarget {
                conn,
                t,
                retr_time: 0.0,
            }
        })
        .collect();
    let n = targets.len();
    let mut scratch = Vec::new();
    let start = Instant::now();
    let retr = format!("RETR {}\r\n", cfg.msg);
    let mut order = Order::new(n);
    for _ in 0..cfg.count {
        for j in order.next() {
            let x = &mut targets[j];
            let Some(c) = x.conn.as_mut() else { continue };
            let t0 = Instant::now();
            let r = c.command(&retr, true);
            let secs = t0.elapsed().as_secs_f64();
            if let Err(e) = r {
                x.t.rx_bytes += c.rx;
                x.t.error(e);
                x.conn = None;
                continue;
            }
            x.retr_time += secs;
            match verify(c.body(), &mut scratch, cfg.expect.as_ref().unwrap()) {
                Ok(()) => {
                    x.t.ok += 1;
                    x.t.lat_ms.push(secs * 1e3);
                    x.t.msg_bytes += scratch.len() as u64;
                }
                Err(e) => x.t.error(e),
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lines = Vec::new();
    for (x, addr) in targets.iter_mut().zip(&cfg.addrs) {
        if let Some(mut c) = x.conn.take() {
            if let Err(e) = c.command("QUIT\r\n", false) {
                x.t.error(e);
            }
            x.t.rx_bytes += c.rx;
        }
        let mibs = if x.retr_time > 0.0 {
            x.t.msg_bytes as f64 / MIB / x.retr_time
        } else {
            0.0
        };
        let extra = [
            ("retr_s", format!("{:.6}", x.retr_time)),
            ("mib_s", format!("{mibs:.3}")),
        ];
        lines.push(summary_for(
            "retrs",
            Some(addr.port()),
            &mut x.t,
            elapsed,
            &extra,
        ));
    }
    lines.join("\n")
}

fn mode_parallel(cfg: &Config) -> String {
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Tally::default());
    let start = Instant::now();
    let deadline = start + cfg.duration;
    std::thread::scope(|s| {
        for _ in 0..cfg.clients {
            s.spawn(|| {
                let mut t = Tally::default();
                let (mut buf, mut kept, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
                while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < cfg.count
                {
                    session(cfg, cfg.addr, &mut t, &mut buf, &mut kept, &mut scratch);
                }
                total.lock().unwrap().merge(t);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = total.into_inner().unwrap();
    let extra = [
        ("clients", cfg.clients.to_string()),
        ("sessions_s", format!("{:.3}", t.ok as f64 / elapsed)),
        (
            "mib_s",
            format!("{:.3}", t.msg_bytes as f64 / MIB / elapsed),
        ),
    ];
    summary("parallel", &mut t, elapsed, &extra)
}

fn mode_fetch(cfg: &Config) -> String {
    let result = (|| -> Result<Vec<u8>, String> {
        let mut c = Conn::open(cfg, cfg.addr, Vec::new())?;
        c.login(cfg)?;
        c.command(&format!("RETR {}\r\n", cfg.msg), true)?;
        let mut msg = Vec::new();
        unstuff(c.body(), &mut msg);
        c.command("QUIT\r\n", false)?;
        Ok(msg)
    })();
    match result {
        Ok(msg) => {
            let sha = sha256::hex(&sha256::sha256(&msg));
            let matches = cfg
                .expect
                .map(|e| e.len == msg.len() && sha256::hex(&e.sha) == sha);
            format!(
                "{{\"mode\":\"fetch\",\"ok\":1,\"errors\":0,\"len\":{},\"sha256\":{},\"matches\":{}}}",
                msg.len(),
                json_str(&sha),
                matches.map_or("null".into(), |m| m.to_string())
            )
        }
        Err(e) => format!(
            "{{\"mode\":\"fetch\",\"ok\":0,\"errors\":1,\"first_error\":{}}}",
            json_str(&e)
        ),
    }
}

/// Makes room for `want` descriptors: the soft limit up to the hard one, and the hard one too
/// when we may (root).
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        if r.rlim_max < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want;
            }
        }
        r.rlim_cur = r.rlim_max.min(want);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

fn mode_hold(cfg: &Config) -> String {
    let limit = raise_nofile(cfg.count as u64 + 256);
    let threads = cfg.clients;
    let start = Instant::now();
    // Open: each thread its share, one connection at a time (connect, read the greeting).
    let mut groups: Vec<(Vec<Conn>, Tally)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = cfg.count / threads + usize::from(i < cfg.count % threads);
                s.spawn(move || {
                    let mut conns = Vec::with_capacity(share);
                    let mut t = Tally::default();
                    for _ in 0..share {
                        match Conn::open(cfg, cfg.addr, vec![0; 512]) {
                            Ok(c) => conns.push(c),
                            Err(e) => t.error(e),
                        }
                    }
                    (conns, t)
                })
            })
            .collect();
        groups = handles.into_iter().map(|h| h.join().unwrap()).collect();
    });
    let open_s = start.elapsed().as_secs_f64();
    let held: usize = groups.iter().map(|(c, _)| c.len()).sum();
    let open_errors: usize = groups.iter().map(|(_, t)| t.errors).sum();
    let open_error = groups.iter().find_map(|(_, t)| t.first_error.clone());
    println!(
        "{{\"event\":\"held\",\"held\":{held},\"open_errors\":{open_errors},\"first_error\":{},\"open_s\":{open_s:.3},\"nofile\":{limit}}}",
        open_error.as_deref().map_or("null".into(), json_str)
    );
    let _ = io::stdout().flush();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    // Then every held session: CAPA, QUIT.
    let start = Instant::now();
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|(conns, _)| {
                s.spawn(move || {
                    let mut t = Tally::default();
                    for mut c in conns {
                        let t0 = Instant::now();
                        let r = c
                            .command("CAPA\r\n", true)
                            .and_then(|()| c.command("QUIT\r\n", false));
                        match r {
                            Ok(()) => {
                                t.ok += 1;
                                t.lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                            }
                            Err(e) => t.error(e),
                        }
                        t.rx_bytes += c.rx;
                    }
                    t
                })
            })
            .collect();
        for h in handles {
            total.merge(h.join().unwrap());
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let extra = [
        ("held", held.to_string()),
        ("open_errors", open_errors.to_string()),
        ("open_s", format!("{open_s:.3}")),
        ("nofile", limit.to_string()),
    ];
    summary("hold", &mut total, elapsed, &extra)
}

fn mode_spawn(cfg: &Config) -> String {
    use std::process::{Command, Stdio};
    let input = match &cfg.input {
        Some(path) => match std::fs::read(path) {
            Ok(data) => data,
            Err(e) => {
                let mut t = Tally::default();
                t.error(format!("{path}: {e}"));
                return summary("spawn", &mut t, 0.0, &[]);
            }
        },
        None => Vec::new(),
    };
    let mut t = Tally::default();
    let start = Instant::now();
    for _ in 0..cfg.count {
        let t0 = Instant::now();
        let run = || -> io::Result<Vec<u8>> {
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(&cfg.filter)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut out = Vec::with_capacity(input.len());
            std::thread::scope(|s| {
                let input = &input;
                s.spawn(move || stdin.write_all(input));
                stdout.read_to_end(&mut out)
            })?;
            let status = child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("{}: {status}", cfg.filter)));
            }
            Ok(out)
        };
        match run() {
            Ok(out) => {
                t.ok += 1;
                t.lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                t.msg_bytes += out.len() as u64;
            }
            Err(e) => t.error(e.to_string()),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let extra = [
        ("filter", json_str(&cfg.filter)),
        ("input_bytes", input.len().to_string()),
    ];
    summary("spawn", &mut t, elapsed, &extra)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };
    let line = match cfg.mode.as_str() {
        "fetch" => mode_fetch(&cfg),
        "sessions" => mode_sessions(&cfg),
        "retrs" => mode_retrs(&cfg),
        "parallel" => mode_parallel(&cfg),
        "spawn" => mode_spawn(&cfg),
        _ => mode_hold(&cfg),
    };
    println!("{line}");
    ExitCode::SUCCESS
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
    fn orders_are_permutations() {
        let mut o = Order::new(5);
        let mut firsts = [0; 5];
        for _ in 0..500 {
            let mut p = o.next();
            firsts[p[0]] += 1;
            p.sort();
            assert_eq!(p, [0, 1, 2, 3, 4]);
        }
        assert!(firsts.iter().all(|&f| f > 50), "{firsts:?}");
    }

    #[test]
    fn histograms() {
        assert_eq!(
            histogram(&[0.0, 4.9, 5.0, 47.0, 250.0]),
            format!("[2,1,{}1,{}1]", "0,".repeat(7), "0,".repeat(30))
        );
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }

    #[test]
    fn expect_parsing() {
        let e = parse_expect(&format!("12:{}", "ab".repeat(32))).unwrap();
        assert_eq!(e.len, 12);
        assert_eq!(e.sha, [0xab; 32]);
        assert!(parse_expect("12:abc").is_none());
    }
}
