//! Helpers of the TLS suite (`tests/tls_clients.rs`, `tests/tls_proxy.rs`,
//! `tests/tls_certificates.rs`, `tests/tls_origin.rs`, `tests/tls_hostile.rs`).
//! Use it after `mod common;` with `mod tls_support;`; everything is
//! re-exported here.
//!
//! * [`Client`] (`client.rs`): a raw POP3 client for exact bytes, in the
//!   clear or in TLS (rustls, verifying against one CA file), which can
//!   switch to TLS after `STLS` and reports the end of the connection
//!   instead of panicking (`Client::plain_slow`: a slow reader behind a
//!   small TCP window); [`client_hello`] for handshakes cut short.
//! * Drivers of real clients (`real.rs`): [`curl`], [`s_client`],
//!   [`poplib`], [`mpop`], [`fetchmail`] (each returns `None`, after saying
//!   so, if not installed); what the mail should look like: [`wire_form`],
//!   [`alice_wire`], [`split_replies`].
//! * Here: [`tls_proxy`] (the daemon with CA A's leaf, STLS and POP3S); the
//!   proxy's access log ([`sessions`] / [`wait_sessions`] / [`session_of`]:
//!   one [`SessionLog`] per closed session, with the TLS of each side);
//!   Dovecot's log ([`settle_log`], [`unique`]); descriptors of the daemon
//!   ([`FdBaseline`]).

#![allow(dead_code)]

mod client;
mod real;

#[allow(unused_imports)]
pub use crate::common::wire_form;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use real::*;

use crate::common::{excerpt, Proxy};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Lossy text of bytes, for messages.
pub fn s(bytes: &[u8]) -> String {
    excerpt(bytes)
}

/// A fresh scratch directory (in the harness's scratch area; `name`
/// without '-').
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = crate::common::scratch(name);
    fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// The daemon with TLS

/// The daemon on 127.0.0.1 with leaf A of `certs()`: STLS on its plain port,
/// POP3S on `pop3s_port`, in front of 127.0.0.1:`origin_port`; `extra` goes
/// before the origin argument.
pub fn tls_proxy(origin_port: u16, extra: &[&str]) -> Proxy {
    let a = &crate::common::certs().a;
    let port = crate::common::free_port();
    let mut pop3s = crate::common::free_port();
    while pop3s == port {
        pop3s = crate::common::free_port();
    }
    let (port, pop3s, origin) = (port.to_string(), pop3s.to_string(), origin_port.to_string());
    let (cert, key) = (a.cert.display().to_string(), a.key.display().to_string());
    let mut args = vec![
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "--pop3s-port",
        &pop3s,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "-P",
        &origin,
    ];
    args.extend_from_slice(extra);
    args.push("127.0.0.1");
    Proxy::start(&args)
}

// ---------------------------------------------------------------------------
// The proxy's access log

/// The closing line of one session in the access log.
#[derive(Debug, Clone)]
pub struct SessionLog {
    pub serial: u64,
    pub client: String,
    /// "plain", or e.g. "TLSv1_3/TLS13_AES_256_GCM_SHA384".
    pub client_tls: String,
    pub origin: String,
    pub origin_tls: String,
    pub user: String,
    /// Why it ended (the text after the last ": ").
    pub ending: String,
    pub line: String,
}

/// Every closing line in `log`.
pub fn sessions(log: &str) -> Vec<SessionLog> {
    log.lines().filter_map(parse_session).collect()
}

fn parse_session(line: &str) -> Option<SessionLog> {
    let at = line.find("session ")?;
    let rest = &line[at + "session ".len()..];
    let (serial, rest) = rest.split_once(": client ")?;
    let (client, rest) = rest.split_once(" (")?;
    let (client_tls, rest) = rest.split_once(") origin ")?;
    let (origin, rest) = rest.split_once(" (")?;
    let (origin_tls, rest) = rest.split_once(") user ")?;
    let (user, rest) = rest.split_once(' ')?;
    let ending = rest.split_once(": ").map_or("", |(_, e)| e);
    Some(SessionLog {
        serial: serial.parse().ok()?,
        client: client.into(),
        client_tls: client_tls.into(),
        origin: origin.into(),
        origin_tls: origin_tls.into(),
        user: user.into(),
        ending: ending.into(),
        line: line.into(),
    })
}

/// Waits (up to 10 s) until the log has at least `n` closing lines.
pub fn wait_sessions(proxy: &Proxy, n: usize) -> Vec<SessionLog> {
    let mut got = Vec::new();
    eventually(Duration::from_secs(10), || {
        got = sessions(&proxy.log());
        got.len() >= n
    });
    assert!(
        got.len() >= n,
        "{} closed sessions in the log, expected {n}:\n{}",
        got.len(),
        proxy.log()
    );
    got
}

/// The closing line of the session of the client at `addr` (waits up to 10 s).
pub fn session_of(proxy: &Proxy, addr: SocketAddr) -> SessionLog {
    let addr = addr.to_string();
    let mut found = None;
    eventually(Duration::from_secs(10), || {
        found = sessions(&proxy.log())
            .into_iter()
            .find(|l| l.client == addr);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no closing line for {addr}:\n{}", proxy.log()))
}

/// Asserts a TLS description like "TLSv1_3/TLS13_AES_256_GCM_SHA384".
pub fn assert_tls(what: &str, desc: &str, line: &str) {
    assert!(
        desc.starts_with("TLSv1_") && desc.contains('/'),
        "{what}: expected TLS, got ({desc}) in {line:?}"
    );
}

// ---------------------------------------------------------------------------
// Dovecot's log

/// A name no other test uses (for a USER that must never reach Dovecot).
pub fn unique(what: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes Dovecot log a failed login of a fresh user name directly (not
/// through the proxy) and waits until the line is in its log: whatever the
/// proxy sent before this is logged by now, if it ever will be.
pub fn settle_log(d: &crate::common::Dovecot) {
    let marker = unique("marker");
    let mut c = Client::plain(d.port);
    c.line();
    c.cmd(&format!("USER {marker}"));
    c.line();
    c.cmd("PASS wrong");
    let reply = c.line();
    assert!(reply.starts_with(b"-ERR"), "{}", s(&reply));
    c.cmd("QUIT");
    let _ = c.read_to_end_within(Duration::from_secs(5));
    let needle = format!("user=<{marker}>");
    assert!(
        eventually(Duration::from_secs(5), || d.log().contains(&needle)),
        "Dovecot never logged {needle}:\n{}",
        d.log()
    );
}

// ---------------------------------------------------------------------------
// Descriptors

pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn fd_list(pid: u32) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let target = fs::read_link(e.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    format!("{}->{target}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The daemon's descriptors once they hold still (take it after a first
/// complete session).
pub struct FdBaseline {
    pub pid: u32,
    pub fds: Vec<String>,
}

impl FdBaseline {
    pub fn take(pid: u32) -> FdBaseline {
        let mut last = fd_list(pid);
        let mut still = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while still < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(30));
            let now = fd_list(pid);
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        FdBaseline { pid, fds: last }
    }

    /// Within `within`, the daemon is alive with as many descriptors as at
    /// the baseline.
    pub fn assert_back(&self, within: Duration, after: &str) {
        let alive = || Path::new(&format!("/proc/{}/fd", self.pid)).exists();
        let mut now = Vec::new();
        let back = eventually(within, || {
            now = fd_list(self.pid);
            now.len() == self.fds.len()
        });
        assert!(alive(), "after {after}: the daemon is gone");
        assert!(
            back,
            "after {after}: {} descriptors, baseline {}; new: {:?}",
            now.len(),
            self.fds.len(),
            now.iter()
                .filter(|f| !self.fds.contains(f))
                .collect::<Vec<_>>()
        );
    }
}
