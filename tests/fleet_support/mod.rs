//! Helpers of the fleet suite (`tests/fleet_haproxy.rs`, `tests/fleet_haproxy_kill.rs`,
//! `tests/fleet_proxy_header.rs`, `tests/fleet_proxy_header_bad.rs`,
//! `tests/fleet_origin_address.rs`, `tests/fleet_loop.rs`).
//! Use it after `mod common;` with `mod fleet_support;`.
//!
//! * PROXY protocol headers written by hand (haproxy's doc/proxy-protocol.txt): [`v1`],
//!   [`v2`] (with TLVs), [`v2_local`].
//! * [`Haproxy`]: Debian's `haproxy` in the foreground (`-db`) from a configuration written
//!   in a scratch directory, with a stats socket ([`Haproxy::servers`]) and its stderr log.
//! * The daemon's access log: [`connected`] (the "connected (PROXY header from …)" lines),
//!   [`closing_lines`].
//! * [`read_all`]: everything until the peer closes, and how it ended.
//! * `client_address.rs`: the load balancer's address, the Dovecot and the session checks of
//!   the client-address tests without HAProxy.
//! * `haproxy_fleet.rs`: HAProxy in front of two instances, as the `fleet_haproxy*` tests run
//!   it.

#![allow(dead_code)]

pub mod client_address;
pub mod haproxy_fleet;

use crate::common::{scratch, spawn_child};
use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until true or `within` has passed.
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

// ---------------------------------------------------------------------------
// PROXY headers

/// The v2 signature.
pub const V2_SIG: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// A v1 header (`PROXY TCP4|TCP6 src dst sport dport\r\n`).
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

/// A v2 PROXY (command 1) header over TCP, with `tlvs` (type, value) after the addresses.
pub fn v2(src: SocketAddr, dst: SocketAddr, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    let family = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            body.extend_from_slice(&s.octets());
            body.extend_from_slice(&d.octets());
            0x21
        }
        _ => panic!("v2: mixed families {src} {dst}"),
    };
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    for (kind, value) in tlvs {
        body.push(*kind);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut out = V2_SIG.to_vec();
    out.push(0x21); // version 2, PROXY
    out.push(family);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A v2 LOCAL header (what HAProxy's health checks send), no addresses.
pub fn v2_local() -> Vec<u8> {
    let mut out = V2_SIG.to_vec();
    out.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    out
}

/// Writes `data` in pieces of `chunk` bytes, `pause` after each (TCP_NODELAY set, so each
/// piece is its own segment).
pub fn write_split(stream: &mut TcpStream, data: &[u8], chunk: usize, pause: Duration) {
    stream.set_nodelay(true).unwrap();
    for piece in data.chunks(chunk.max(1)) {
        stream.write_all(piece).unwrap();
        thread::sleep(pause);
    }
}

// ---------------------------------------------------------------------------
// Reading until the end

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// FIN.
    Closed,
    /// A reset or another error.
    Error(String),
    /// Still open when the wait was over.
    Silent,
}

/// Everything the peer sends until it closes, or until `within` has passed.
pub fn read_all(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, End) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, End::Silent);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (out, End::Closed),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, End::Silent)
            }
            Err(e) => return (out, End::Error(e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------
// The daemon's access log

/// One "session N: client C connected (PROXY header from P), origin …" line.
#[derive(Debug, Clone)]
pub struct Connected {
    pub serial: u64,
    pub client: SocketAddr,
    pub peer: SocketAddr,
}

/// Every session of `log` that began with a PROXY header.
pub fn connected(log: &str) -> Vec<Connected> {
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find("session ")? + "session ".len()..];
            let (serial, rest) = rest.split_once(": client ")?;
            let (client, rest) = rest.split_once(" connected (PROXY header from ")?;
            let (peer, _) = rest.split_once(')')?;
            Some(Connected {
                serial: serial.parse().ok()?,
                client: client.parse().ok()?,
                peer: peer.parse().ok()?,
            })
        })
        .collect()
}

/// The closing line of every session ("session N: client … (…) origin … user …").
pub fn closing_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(": client ") && l.contains(") origin ") && l.contains(" user "))
        .collect()
}

/// The closing line of session `serial`, if it is there.
pub fn closing_line(log: &str, serial: u64) -> Option<String> {
    let needle = format!("session {serial}: client ");
    closing_lines(log)
        .into_iter()
        .find(|l| l.contains(&needle))
        .map(str::to_string)
}

// ---------------------------------------------------------------------------
// HAProxy

/// The haproxy binary, if installed.
pub fn haproxy_bin() -> Option<PathBuf> {
    [
        "/usr/sbin/haproxy",
        "/usr/local/sbin/haproxy",
        "/usr/bin/haproxy",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// HAProxy in the foreground, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Haproxy {
    /// Its frontend's port on 127.0.0.1.
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl Haproxy {
    /// Writes `config` (where `@DIR@` stands for the scratch directory, for the stats socket)
    /// and runs `haproxy -db -f`. Waits until the stats socket answers and the frontend
    /// listens on `port`. Panics if haproxy is not installed (run scripts/install-deps.sh).
    pub fn start(port: u16, config: &str) -> Haproxy {
        let bin = haproxy_bin()
            .expect("haproxy is not installed: run scripts/install-deps.sh (package haproxy)");
        let dir = scratch("haproxy");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let config = config.replace("@DIR@", &dir.display().to_string());
        let cfg = dir.join("haproxy.cfg");
        fs::write(&cfg, &config).unwrap();
        let log = fs::File::create(dir.join("haproxy.log")).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = spawn_child(cmd).expect("run haproxy");
        let mut h = Haproxy { port, dir, child };
        let up = eventually(Duration::from_secs(10), || {
            if let Ok(Some(status)) = h.child.try_wait() {
                panic!("haproxy exited with {status}:\n{}\n{config}", h.log());
            }
            h.stat_raw().is_ok()
        });
        assert!(up, "haproxy's stats socket never answered:\n{}", h.log());
        h
    }

    /// What haproxy printed (its warnings, and the traffic log when the configuration logs to
    /// stderr).
    pub fn log(&self) -> String {
        fs::read(self.dir.join("haproxy.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn stats_socket(&self) -> PathBuf {
        self.dir.join("stats.sock")
    }

    /// `show stat` on the stats socket.
    pub fn stat_raw(&self) -> io::Result<String> {
        let mut s = UnixStream::connect(self.stats_socket())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"show stat\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        if !out.starts_with("# ") {
            return Err(io::Error::other(format!(
                "unexpected stats answer: {out:?}"
            )));
        }
        Ok(out)
    }

    /// Each server of the backends: its name -> its row (column name -> value).
    pub fn servers(&self) -> HashMap<String, HashMap<String, String>> {
        let raw = self.stat_raw().unwrap_or_default();
        let mut lines = raw.lines();
        let Some(head) = lines.next() else {
            return HashMap::new();
        };
        let names: Vec<&str> = head.trim_start_matches("# ").split(',').collect();
        let mut out = HashMap::new();
        for line in lines {
            let row: HashMap<String, String> = names
                .iter()
                .zip(line.split(','))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let name = row.get("svname").cloned().unwrap_or_default();
            if !name.is_empty() && name != "FRONTEND" && name != "BACKEND" {
                out.insert(name, row);
            }
        }
        out
    }

    /// A column of server `name`'s row.
    pub fn server_field(&self, name: &str, field: &str) -> String {
        self.servers()
            .get(name)
            .and_then(|r| r.get(field).cloned())
            .unwrap_or_default()
    }

    /// Waits until every server in `names` has `status` (e.g. "UP", "DOWN").
    pub fn wait_status(&self, names: &[&str], status: &str, within: Duration) -> bool {
        eventually(within, || {
            let servers = self.servers();
            names.iter().all(|n| {
                servers
                    .get(*n)
                    .is_some_and(|r| r.get("status").map(String::as_str) == Some(status))
            })
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- haproxy ({}) ---\n{}", self.dir.display(), self.log());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The configuration of the fleet tests (the one docs/deployment.md shows): HAProxy on
/// 127.0.0.1:`port`, `mode tcp`, `balance leastconn`, each server (name, port on 127.0.0.1)
/// with `send-proxy-v2`, health-checked by its greeting through a PROXY v2 LOCAL header
/// (`check-send-proxy`; the instances require a header from 127.0.0.0/8), every 300 ms.
/// The traffic log (one line a connection, naming the server) goes to stderr.
pub fn fleet_config(port: u16, servers: &[(&str, u16)]) -> String {
    let mut cfg = format!(
        "global
    maxconn 2000
    stats socket @DIR@/stats.sock mode 600 level admin
    log stderr format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch

frontend pop3
    bind 127.0.0.1:{port}
    default_backend pop3filters

backend pop3filters
    balance leastconn
    option tcp-check
    tcp-check expect string +OK
    tcp-check send QUIT\\r\\n
    tcp-check expect string +OK
    default-server inter 300ms fall 2 rise 1 send-proxy-v2 check check-send-proxy
"
    );
    for (name, p) in servers {
        cfg.push_str(&format!("    server {name} 127.0.0.1:{p}\n"));
    }
    cfg
}

/// Lines of Dovecot's log that are logins (`Login: user=<…>, …, rip=…`).
pub fn dovecot_logins(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("pop3-login: Info: Login: "))
        .collect()
}

/// The `rip=` of a Dovecot log line.
pub fn rip(line: &str) -> Option<&str> {
    let at = line.find("rip=")? + 4;
    line[at..].split([',', ' ']).next()
}

/// A path's text, lossy; empty when unreadable.
pub fn read_text(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Descriptors

/// How many descriptors process `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The descriptor count of `pid` once it has held still for a moment (up to 3 s).
pub fn settled_fd_count(pid: u32) -> usize {
    let mut last = fd_count(pid);
    let mut still = 0;
    let deadline = Instant::now() + Duration::from_secs(3);
    while still < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(30));
        let now = fd_count(pid);
        if now == last {
            still += 1;
        } else {
            still = 0;
        }
        last = now;
    }
    last
}
