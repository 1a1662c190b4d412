//! Socket activation (issue 12): the daemon started the way systemd starts it, by
//! `systemd-socket-activate` (Debian's `systemd` package; no running systemd needed), which
//! listens, and at the first connection execs the daemon with the socket as descriptor 3 and
//! `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES` set.
//!
//! Proves: the inherited socket is the POP3 listener (the first client, queued before the
//! daemon ran, gets its session; greeting, login, STAT, RETR all right) and the daemon binds
//! nothing for POP3 itself (it listens on that socket and its management port only, though
//! `-p` has a default); a transformation sees neither the variables nor the socket; SIGTERM
//! ends it with status 0. Sockets named `pop3` and `pop3s` (`--fdname`, as
//! `FileDescriptorName=` in a .socket unit) are the plain and the POP3S listener, with TLS on
//! the second only. A `pop3s` socket without `--pop3s-port`, `--pop3s-port` without one, a
//! descriptor that is not a socket (`/dev/null`), one that is not open, names that do not
//! match the count: exit status 2 and one line that says which. Variables meant for another
//! process (another `LISTEN_PID`) are ignored: the daemon binds `-l`/`-p` as usual.

mod common;
mod tls_support;

use common::{certs, dovecot, free_port, listening_ports, Pop3, Proxy, PASSWORD};
use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tls_support::Client;

/// A transformation that prints what a filter inherits: the protocol's variables, and the
/// shell's own descriptors (a socket among them would be the listener, leaked).
const REPORT: &str = "cat >/dev/null; echo \"LISTEN=[$LISTEN_PID$LISTEN_FDS$LISTEN_FDNAMES]\"; \
                      ls -l /proc/$$/fd";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_inherited_socket_is_the_pop3_listener() {
    let (port, mgmt) = (free_port(), free_port());
    let (mgmt_s, origin) = (mgmt.to_string(), dovecot().port.to_string());
    let mut proxy = Proxy::start_activated(
        &[(port, "")],
        &["-o", &mgmt_s, "-P", &origin, "-t", REPORT, "127.0.0.1"],
    );
    // Queued on the socket before the daemon runs: its connection starts it.
    let mut c = Pop3::connect(port);
    let greeting = c.greeting();
    assert!(greeting.starts_with(b"+OK"), "{}", text(&greeting));
    c.login("alice", PASSWORD);
    c.cmd("STAT");
    assert_eq!(text(&c.line()), dovecot().stat_line("alice"));
    c.cmd("RETR 1");
    let reply = text(&c.multi());
    assert!(
        reply.contains("LISTEN=[]"),
        "the filter saw LISTEN_*:\n{reply}"
    );
    assert!(
        !reply.contains("socket:"),
        "the filter inherited a socket:\n{reply}"
    );
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));

    let mut expected = vec![port, mgmt];
    expected.sort_unstable();
    assert_eq!(
        listening_ports(proxy.pid()),
        expected,
        "listens on the inherited socket and the management port only:\n{}",
        proxy.log()
    );
    let log = proxy.log();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{port}\n")),
        "{log}"
    );
    assert!(log.contains("inherited descriptor 3"), "{log}");

    // A second session, accepted by the daemon itself this time.
    let mut d = Pop3::connect(port);
    d.greeting();
    d.login("alice", PASSWORD);
    unsafe { libc::kill(proxy.pid() as libc::pid_t, libc::SIGTERM) };
    drop(d);
    let status = proxy.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", proxy.log());
}

#[test]
fn sockets_named_pop3_and_pop3s() {
    let a = &certs().a;
    let (plain, pop3s, mgmt) = (free_port(), free_port(), free_port());
    let (mgmt_s, origin) = (mgmt.to_string(), dovecot().port.to_string());
    let (cert, key) = (a.cert.display().to_string(), a.key.display().to_string());
    let proxy = Proxy::start_activated(
        &[(plain, "pop3"), (pop3s, "pop3s")],
        &[
            "-o",
            &mgmt_s,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--pop3s-port",
            "995",
            "-P",
            &origin,
            "127.0.0.1",
        ],
    );
    let mut c = Client::pop3s(pop3s, &a.ca).expect("TLS handshake on the pop3s socket");
    assert!(c.line().starts_with(b"+OK"));
    c.login("alice");
    c.cmd("STAT");
    assert_eq!(text(&c.line()), dovecot().stat_line("alice"));
    c.quit();

    let mut p = Client::plain(plain);
    assert!(
        p.line().starts_with(b"+OK"),
        "plain greeting on the pop3 socket"
    );
    p.cmd("CAPA");
    assert!(text(&p.multi()).contains("\r\nSTLS\r\n"), "STLS offered");
    p.login("alice");
    p.quit();

    let mut expected = vec![plain, pop3s, mgmt];
    expected.sort_unstable();
    assert_eq!(listening_ports(proxy.pid()), expected, "995 is not bound");
    let log = proxy.log();
    assert!(
        log.contains(&format!("listening on 127.0.0.1:{pop3s} (POP3S)")),
        "{log}"
    );
}

/// Runs the daemon under socket activation (started at once by a first connection) and
/// expects it to exit 2: its stderr.
fn refused(sockets: &[(u16, &str)], args: &[&str]) -> String {
    let mgmt = free_port().to_string();
    let origin = dovecot().port.to_string();
    let mut all = vec!["-o", &mgmt, "-P", &origin];
    all.extend_from_slice(args);
    all.push("127.0.0.1");
    let mut proxy = Proxy::start_activated(sockets, &all);
    let _first = std::net::TcpStream::connect(("127.0.0.1", sockets[0].0)).unwrap();
    let status = proxy.wait_exit(Duration::from_secs(10));
    let log = proxy.log();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{args:?}: {log}");
    log
}

#[test]
fn a_pop3s_socket_needs_pop3s_port_and_the_other_way_round() {
    let log = refused(&[(free_port(), "pop3s")], &[]);
    assert!(
        log.contains("pop3filter: socket activation: descriptor 3 (127.0.0.1:")
            && log.contains("is named pop3s but there is no --pop3s-port"),
        "{log}"
    );
    let a = &certs().a;
    let (cert, key) = (a.cert.display().to_string(), a.key.display().to_string());
    let tls = [
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--pop3s-port",
        "995",
    ];
    let log = refused(&[(free_port(), "pop3")], &tls);
    assert!(
        log.contains(
            "pop3filter: socket activation: --pop3s-port, but no inherited socket is named pop3s"
        ),
        "{log}"
    );
}

/// Runs the daemon from `sh -c SCRIPT` (which sets the variables and execs it); waits for
/// its exit: (status, stderr).
fn run_sh(script: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pop3filter"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script}: still running after 10 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

#[test]
fn descriptors_that_are_not_listening_tcp_sockets_exit_2() {
    let mgmt = free_port().to_string();
    let args = ["-o", &mgmt, "-l", "127.0.0.1", "-p", "1", "127.0.0.1"];
    for (script, says) in [
        (
            "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\" 3</dev/null",
            "pop3filter: socket activation: descriptor 3 is not a socket (it is a character \
             device); LISTEN_FDS must count listening TCP sockets from descriptor 3 on",
        ),
        (
            "export LISTEN_PID=$$ LISTEN_FDS=2; exec \"$0\" \"$@\" 3</dev/null 4<&-",
            "pop3filter: socket activation: descriptor 4: F_GETFD: EBADF",
        ),
        (
            "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=a:b; exec \"$0\" \"$@\" 3</dev/null",
            "pop3filter: socket activation: LISTEN_FDNAMES names 2 descriptors, LISTEN_FDS \
             counts 1",
        ),
        (
            "export LISTEN_PID=$$ LISTEN_FDS=many; exec \"$0\" \"$@\"",
            "pop3filter: socket activation: invalid LISTEN_FDS=\"many\"",
        ),
    ] {
        let (code, stderr) = run_sh(script, &args);
        assert_eq!(code, Some(2), "{script}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(says), "{script}:\n{stderr}");
    }
}

#[test]
fn variables_for_another_process_are_ignored() {
    let port = free_port().to_string();
    let mgmt = free_port().to_string();
    let origin = dovecot().port.to_string();
    // LISTEN_PID names the shell's parent: not this process.
    let wrapper = [
        "/bin/sh",
        "-c",
        "export LISTEN_PID=$PPID LISTEN_FDS=1; exec \"$0\" \"$@\" 3</dev/null",
    ];
    let proxy = Proxy::start_wrapped(
        &wrapper,
        &[
            "-o",
            &mgmt,
            "-l",
            "127.0.0.1",
            "-p",
            &port,
            "-P",
            &origin,
            "-t",
            REPORT,
            "127.0.0.1",
        ],
    );
    let mut c = proxy.connect();
    c.greeting();
    c.login("alice", PASSWORD);
    c.cmd("RETR 1");
    let reply = text(&c.multi());
    assert!(
        reply.contains("LISTEN=[]"),
        "unset for children too:\n{reply}"
    );
    assert!(
        proxy.log().contains("LISTEN_PID is not this process"),
        "{}",
        proxy.log()
    );
}
