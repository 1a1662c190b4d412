//! Name resolution runs off the event loop: while the origin's name takes seconds to resolve
//! for a new session, a session already open keeps moving at full speed, and the new one gets
//! a `-ERR` greeting when the lookup fails (issue 6).
//!
//! The daemon runs in a mount namespace of its own whose /etc/resolv.conf names a DNS server
//! this test plays on 127.0.0.77: it answers while told to, then stays silent. Where a mount
//! namespace or that address cannot be had, the test says why and skips.

mod common;

use common::{dovecot, free_port, Proxy};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const DNS: &str = "127.0.0.77:53";

/// Answers A queries with 127.0.0.1 (and other types with no record) while `answering`.
fn fake_dns(socket: UdpSocket, answering: Arc<AtomicBool>) {
    let mut buf = [0u8; 512];
    while let Ok((n, peer)) = socket.recv_from(&mut buf) {
        if !answering.load(Ordering::SeqCst) || n < 17 {
            continue;
        }
        let q = &buf[..n];
        // The question: labels from offset 12 up to the empty one, then type and class.
        let mut end = 12;
        while end < n && q[end] != 0 {
            end += 1 + q[end] as usize;
        }
        let question_end = end + 5;
        if question_end > n {
            continue;
        }
        let is_a = q[end + 1..end + 3] == [0, 1];
        let mut reply = vec![q[0], q[1], 0x81, 0x80, 0, 1, 0, is_a as u8, 0, 0, 0, 0];
        reply.extend_from_slice(&q[12..question_end]);
        if is_a {
            reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
        let _ = socket.send_to(&reply, peer);
    }
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn a_hanging_lookup_does_not_stall_other_sessions() {
    let Ok(socket) = UdpSocket::bind(DNS) else {
        println!("SKIPPED: cannot bind {DNS}");
        return;
    };
    let dir = std::env::temp_dir().join(format!("pop3filter-resolv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("resolv.conf");
    std::fs::write(
        &conf,
        "nameserver 127.0.0.77\noptions timeout:4 attempts:1\n",
    )
    .unwrap();
    let probe = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "mount", "--bind"])
        .arg(&conf)
        .arg("/etc/resolv.conf")
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        println!("SKIPPED: no mount namespace here (unshare -m and mount --bind)");
        return;
    }
    let answering = Arc::new(AtomicBool::new(true));
    let dns = {
        let answering = answering.clone();
        thread::spawn(move || fake_dns(socket, answering))
    };
    let bind = format!(
        "mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
        conf.display()
    );
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        bind.as_str(),
    ];
    let (port, origin) = (free_port().to_string(), dovecot().port.to_string());
    let proxy = Proxy::start_wrapped(
        &wrapper,
        &[
            "-l",
            "127.0.0.1",
            "-p",
            &port,
            "-P",
            &origin,
            "origin.pop3filter.test",
        ],
    );

    // First session: the name resolves; log in.
    let mut first = BufReader::new(TcpStream::connect(("127.0.0.1", proxy.port)).unwrap());
    first
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(line(&mut first).starts_with("+OK"), "log: {}", proxy.log());
    first
        .get_mut()
        .write_all(b"USER alice\r\nPASS secret\r\n")
        .unwrap();
    assert!(line(&mut first).starts_with("+OK") && line(&mut first).starts_with("+OK"));

    // Second session: its lookup hangs (the server stops answering).
    answering.store(false, Ordering::SeqCst);
    let hung = Instant::now();
    let mut second = BufReader::new(TcpStream::connect(("127.0.0.1", proxy.port)).unwrap());
    second
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    thread::sleep(Duration::from_millis(200));

    // Meanwhile the first session moves: 50 STATs and a RETR, each answered at once.
    let stat = dovecot().stat_line("alice");
    let busy = Instant::now();
    for _ in 0..50 {
        first.get_mut().write_all(b"STAT\r\n").unwrap();
        assert_eq!(line(&mut first), stat);
    }
    first.get_mut().write_all(b"RETR 4\r\n").unwrap();
    let mut size = 0;
    loop {
        let l = line(&mut first);
        size += l.len();
        if l == ".\r\n" {
            break;
        }
    }
    let moved = busy.elapsed();
    assert!(size > 100_000);
    assert!(
        moved < Duration::from_secs(2),
        "the open session waited {moved:?} during a lookup"
    );
    assert!(
        hung.elapsed() < Duration::from_secs(3),
        "the lookup was meant to be still hanging"
    );

    // The second session is told the name did not resolve, once the lookup gives up.
    let greeting = line(&mut second);
    assert!(
        greeting.starts_with("-ERR pop3filter: cannot resolve"),
        "{greeting:?}"
    );
    first.get_mut().write_all(b"QUIT\r\n").unwrap();
    assert!(line(&mut first).starts_with("+OK"));
    drop(dns);
    let _ = std::fs::remove_dir_all(&dir);
}
