//! Where pop3filter listens and how it finds the origin, and its command line.
//!
//! Proves that an unreachable origin (nothing listening, or a name that does
//! not resolve) gets the client a prompt `-ERR` greeting and a closed
//! connection; that the origin may be given as a host name (`localhost`), an
//! IPv4 literal or an IPv6 literal (`::1`, `[::1]`), and the proxy may listen
//! on `::1`, each serving a session byte for byte like Dovecot directly; and
//! that `-h`, `-v` and bad command lines print and exit as documented (usage
//! on stdout and exit 0 for -h; one error line plus the usage on stderr and
//! exit 2 for mistakes).

mod common;

use common::{dovecot, excerpt, free_port, Proxy};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A session on a raw socket: the greeting, then the given commands in one
/// write, then everything until the server closes.
fn session(addr: SocketAddr) -> (Vec<u8>, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let greeting = read_line(&mut s);
    s.write_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 3\r\nTOP 2 1\r\nQUIT\r\n")
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("{addr}: {e}; got {:?}", excerpt(&rest)));
    (greeting, rest)
}

fn read_line(s: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        match s.read(&mut byte) {
            Ok(0) => panic!("EOF after {:?}", excerpt(&line)),
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!("read: {e} after {:?}", excerpt(&line)),
        }
    }
    line
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

/// The session straight to Dovecot, which the proxied one must equal.
fn reference() -> (Vec<u8>, Vec<u8>) {
    let want = session(v4(dovecot().port));
    let stat = dovecot().stat_line("alice");
    assert!(
        want.1
            .starts_with(format!("+OK\r\n+OK Logged in.\r\n{stat}").as_bytes()),
        "{:?}",
        excerpt(&want.1)
    );
    assert!(want.1.ends_with(b"+OK Logging out.\r\n"));
    want
}

fn assert_session(got: (Vec<u8>, Vec<u8>), want: &(Vec<u8>, Vec<u8>), what: &str) {
    assert_eq!(excerpt(&got.0), excerpt(&want.0), "{what}: greeting");
    assert!(
        got.1 == want.1,
        "{what}: got {:?}, want {:?}",
        excerpt(&got.1),
        excerpt(&want.1)
    );
}

fn has_ipv6_loopback() -> bool {
    let table = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    let found = table
        .lines()
        .any(|l| l.starts_with("00000000000000000000000000000001 "));
    if !found {
        eprintln!("SKIPPED: no ::1 in /proc/net/if_inet6");
    }
    found
}

/// Starts the daemon listening on `listen` in front of origin `host` (Dovecot's port).
fn proxy(listen: &str, host: &str) -> Proxy {
    let (port, origin) = (free_port().to_string(), dovecot().port.to_string());
    Proxy::start(&["-l", listen, "-p", &port, "-P", &origin, host])
}

/// The client's view of an origin that cannot be reached: one `-ERR` line,
/// then EOF, all within `limit`.
fn assert_err_greeting_then_close(proxy: &Proxy, limit: Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(v4(proxy.port)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .unwrap_or_else(|e| panic!("{e}; got {:?}", excerpt(&all)));
    let elapsed = started.elapsed();
    assert!(all.starts_with(b"-ERR"), "{:?}", excerpt(&all));
    assert!(
        all.ends_with(b"\r\n") && all.iter().filter(|&&b| b == b'\n').count() == 1,
        "exactly one line, then EOF: {:?}",
        excerpt(&all)
    );
    assert!(elapsed < limit, "took {elapsed:?}");
}

/// A port of 127.0.0.1 that is bound, so no one else can take it, but not
/// listening: connections to it are refused.  Released on drop.
struct RefusingPort {
    fd: libc::c_int,
    port: u16,
}

impl RefusingPort {
    fn new() -> RefusingPort {
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: plain socket calls on a zeroed sockaddr_in of the right size.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let sa = &mut addr as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(libc::bind(fd, sa, len), 0, "bind");
            let mut got = len;
            assert_eq!(libc::getsockname(fd, sa, &mut got), 0, "getsockname");
            RefusingPort {
                fd,
                port: u16::from_be(addr.sin_port),
            }
        }
    }
}

impl Drop for RefusingPort {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

#[test]
fn origin_down_gives_err_greeting_and_close() {
    let down = RefusingPort::new();
    assert!(
        TcpStream::connect(v4(down.port)).is_err(),
        "nothing listens there"
    );
    let proxy = Proxy::for_origin(down.port, &[]);
    assert_err_greeting_then_close(&proxy, Duration::from_secs(5));
    // The proxy itself is still up and says the same to the next client.
    assert_err_greeting_then_close(&proxy, Duration::from_secs(5));
}

#[test]
fn origin_name_that_does_not_resolve_gives_err_greeting() {
    let port = free_port().to_string();
    let proxy = Proxy::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "-P",
        "110",
        "no-such-host.invalid",
    ]);
    assert_err_greeting_then_close(&proxy, TIMEOUT);
}

#[test]
fn origin_by_host_name() {
    let want = reference();
    let proxy = proxy("127.0.0.1", "localhost");
    assert_session(session(v4(proxy.port)), &want, "origin localhost");
}

#[test]
fn origin_by_ipv4_literal() {
    let want = reference();
    let proxy = proxy("127.0.0.1", "127.0.0.1");
    assert_session(session(v4(proxy.port)), &want, "origin 127.0.0.1");
}

#[test]
fn origin_by_ipv6_literal() {
    if !has_ipv6_loopback() {
        return;
    }
    let want = reference();
    // Dovecot itself answers on ::1 (scripts/dovecot.sh listens there too).
    assert_session(session(v6(dovecot().port)), &want, "Dovecot on ::1");
    for host in ["::1", "[::1]"] {
        let proxy = proxy("127.0.0.1", host);
        assert_session(session(v4(proxy.port)), &want, host);
    }
}

#[test]
fn listening_on_ipv6_loopback() {
    if !has_ipv6_loopback() {
        return;
    }
    let want = reference();
    let proxy = proxy("::1", "127.0.0.1");
    assert_session(session(v6(proxy.port)), &want, "client on [::1]");
}

// ---- command line ----

/// Runs the binary with `args`; (exit code, stdout, stderr).  A daemon that
/// starts instead of exiting is killed and reported.
fn cli(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pop3filter"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "pop3filter {args:?} did not exit: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn usage() -> String {
    let (code, stdout, stderr) = cli(&["-h"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "-h");
    stdout
}

#[test]
fn help_lists_every_option() {
    let usage = usage();
    assert!(usage.starts_with("Usage: pop3filter "), "{usage}");
    for (opt, arg) in [
        ("-l", " ADDR "),
        ("-p", " PORT "),
        ("-P", " PORT "),
        ("-v", ", --version "),
        ("-h", ", --help "),
    ] {
        let entry = format!("\n    {opt}{arg}");
        assert!(
            usage.contains(&entry),
            "{entry:?} not in the usage:\n{usage}"
        );
    }
}

#[test]
fn long_help_and_version_are_the_short_ones() {
    assert_eq!(cli(&["--help"]), cli(&["-h"]));
    assert_eq!(cli(&["--version"]), cli(&["-v"]));
}

#[test]
fn version() {
    let (code, stdout, stderr) = cli(&["-v"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        format!("pop3filter {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(stderr, "");
}

#[test]
fn bad_command_lines_exit_2_with_one_error_line_and_usage() {
    let usage = usage();
    let port = free_port().to_string();
    let cases: [&[&str]; 7] = [
        &["-x", "127.0.0.1"],
        &["-l", "127.0.0.1", "-p", "0", "127.0.0.1"],
        &["-l", "127.0.0.1", "-p", "99999", "127.0.0.1"],
        &["-l", "127.0.0.1", "-p", &port, "-P", "x", "127.0.0.1"],
        &["-l", "127.0.0.1", "-p", &port, "-P", "0", "127.0.0.1"],
        &["-l", "127.0.0.1", "-p", &port],
        &["-l", "127.0.0.1", "-p"],
    ];
    for args in cases {
        let (code, stdout, stderr) = cli(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        let error = stderr
            .strip_suffix(usage.as_str())
            .unwrap_or_else(|| panic!("{args:?}: no usage after the error:\n{stderr}"));
        assert!(
            error.starts_with("pop3filter: ")
                && error.ends_with('\n')
                && error.lines().count() == 1,
            "{args:?}: error part {error:?}"
        );
    }
}
