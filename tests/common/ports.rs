//! TCP ports on 127.0.0.1: free ones for the servers a test starts ([`free_port`]), and the
//! ones a process listens on, read from Linux's /proc ([`listening_ports`]).

use std::fs;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The ports [`free_port`] hands out: below Linux's ephemeral range (32768-60999 by default),
/// so that no connection another test opens meanwhile can take one as its local port.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A TCP port that was free a moment ago on 127.0.0.1, and that no other call in this process
/// returned. Asking the kernel for port 0 would give an ephemeral port, which the kernel may
/// give again as the local port of an outgoing connection (proxy to Dovecot, a client) before
/// the daemon binds it: "Address already in use". Each test process starts at its own place
/// in [`PORTS`] (by its pid) and walks on from there.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    let span = usize::from(PORTS.end - PORTS.start);
    let _ = NEXT.compare_exchange(
        usize::MAX,
        std::process::id() as usize * 211 % span,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let at = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = PORTS.start + at as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}");
}

/// The ports of the TCP sockets process `pid` listens on (Linux /proc), sorted.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let mut ports = Vec::new();
    let mut by_inode = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            // sl local_address rem_address st ... uid timeout inode
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Some(&"0A"), Some(inode)) = (local_port, f.get(3), f.get(9)) {
                by_inode.push((format!("socket:[{inode}]"), port));
            }
        }
    }
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(link) = fs::read_link(fd.path()) {
            let link = link.to_string_lossy().into_owned();
            ports.extend(by_inode.iter().filter(|(i, _)| *i == link).map(|(_, p)| *p));
        }
    }
    ports.sort_unstable();
    ports
}

/// Whether process `pid` has a TCP socket listening on `port` (Linux /proc).
pub(super) fn listening(pid: u32, port: u16) -> bool {
    listening_ports(pid).contains(&port)
}

#[test]
fn listening_sees_our_own_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(listening(std::process::id(), port));
    drop(listener);
    assert!(!listening(std::process::id(), port));
}
