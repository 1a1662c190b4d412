//! Several instances on one port (`--reuse-port`), and rolling restarts that refuse no one,
//! against the real Dovecot (issue 12).
//!
//! Proves: under a steady stream of new sessions (client threads opening sessions back to
//! back, each greeting + USER/PASS + STAT + QUIT with every reply checked), instance A with
//! `--reuse-port`, then B started on the same port, then A sent SIGTERM, then C started and B
//! sent SIGTERM: no connection is refused or reset and every session gets the right replies;
//! every session shows in exactly one instance's log; each stopped instance exits 0 and says
//! how many queued connections it accepted before closing. A is caught busy: stopped
//! (SIGSTOP) between two turns of its loop until connections wait in its accept queue, then
//! sent SIGTERM and SIGCONT, so the drain has work: it must accept at least what was waiting
//! (without the drain those connections are reset). Without `--reuse-port` on either
//! side, a second instance on the same port does not start: exit status 1 and one error that
//! names the address and `--reuse-port`. The counts are printed (`--nocapture` shows them).

mod common;
mod faults_support;

use common::{dovecot, free_port, Proxy, PASSWORD};
use faults_support::{signal, wait_exit, Exit};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Client threads opening sessions back to back.
const CLIENTS: usize = 4;

/// How one session went.
#[derive(Debug)]
#[allow(dead_code)] // the texts are read through Debug, in the failure message
enum Outcome {
    /// Every reply right; the client's local port, to find the session in a log.
    Served(u16),
    /// connect() refused.
    Refused,
    /// Reset, or closed before a reply was complete.
    Reset(String),
    /// A reply that is not the expected one, or any other error.
    Wrong(String),
}

/// One session: greeting, USER, PASS, STAT (checked against the mailbox), QUIT, the close.
fn session(port: u16, stat: &str) -> Outcome {
    let stream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Outcome::Refused,
        Err(e) => return Outcome::Wrong(format!("connect: {e}")),
    };
    let local = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    match converse(stream, stat) {
        Ok(()) => Outcome::Served(local),
        Err(e) if is_reset(&e) => Outcome::Reset(format!("client port {local}: {e}")),
        Err(e) => Outcome::Wrong(format!("client port {local}: {e}")),
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

fn converse(stream: TcpStream, stat: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut expect = |what: &str, check: &dyn Fn(&str) -> bool| -> io::Result<()> {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("closed before the reply to {what}"),
            ));
        }
        if check(&line) {
            Ok(())
        } else {
            Err(io::Error::other(format!("{what}: got {line:?}")))
        }
    };
    let ok = |l: &str| l.starts_with("+OK") && l.ends_with("\r\n");
    expect("the greeting", &ok)?;
    out.write_all(b"USER alice\r\n")?;
    expect("USER", &ok)?;
    out.write_all(format!("PASS {PASSWORD}\r\n").as_bytes())?;
    expect("PASS", &ok)?;
    out.write_all(b"STAT\r\n")?;
    expect("STAT", &|l| l == stat)?;
    out.write_all(b"QUIT\r\n")?;
    expect("QUIT", &ok)?;
    let mut rest = Vec::new();
    io::Read::read_to_end(&mut reader, &mut rest)?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!("after QUIT: {rest:?}")))
    }
}

/// Client threads running sessions back to back until `stop`; every outcome.
struct Stream {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Stream {
    fn start(port: u16) -> Stream {
        let stat = dovecot().stat_line("alice");
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..CLIENTS)
            .map(|_| {
                let (stop, outcomes, stat) = (stop.clone(), outcomes.clone(), stat.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let outcome = session(port, &stat);
                        outcomes.lock().unwrap().push(outcome);
                    }
                })
            })
            .collect();
        Stream {
            stop,
            outcomes,
            threads,
        }
    }

    fn served(&self) -> usize {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Served(_)))
            .count()
    }

    /// Waits until `n` more sessions were served (at most 20 s).
    fn wait_served(&self, n: usize) {
        let target = self.served() + n;
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.served() < target {
            assert!(Instant::now() < deadline, "sessions stopped being served");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// One more session, on a thread of its own, counted with the others.
    fn probe(&mut self, port: u16) {
        let (outcomes, stat) = (self.outcomes.clone(), dovecot().stat_line("alice"));
        self.threads.push(thread::spawn(move || {
            let outcome = session(port, &stat);
            outcomes.lock().unwrap().push(outcome);
        }));
    }

    fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// The daemon on 127.0.0.1:`port` in front of the shared Dovecot, with `extra` options.
fn daemon(port: u16, extra: &[&str]) -> Proxy {
    let (port, origin) = (port.to_string(), dovecot().port.to_string());
    let mut args = extra.to_vec();
    args.extend(["-l", "127.0.0.1", "-p", &port, "-P", &origin, "127.0.0.1"]);
    Proxy::start(&args)
}

/// One instance of the fleet.
fn instance(port: u16) -> Proxy {
    daemon(port, &["--reuse-port", "-g", "5"])
}

/// SIGTERM, then the exit (0, within the grace period); the count of queued connections it
/// says it accepted before closing (None if it does not say).
fn stop(proxy: &Proxy, name: &str) -> Option<usize> {
    signal(proxy.pid(), libc::SIGTERM);
    exit_after_sigterm(proxy, name)
}

/// The exit after SIGTERM (0, within the grace period), and the count of queued connections
/// the instance says it accepted before closing.
fn exit_after_sigterm(proxy: &Proxy, name: &str) -> Option<usize> {
    let exit = wait_exit(proxy.pid(), Duration::from_secs(8));
    assert_eq!(
        exit,
        Some(Exit::Code(0)),
        "{name} after SIGTERM:\n{}",
        proxy.log()
    );
    let log = proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("queued connections, then closed"))?;
    let n = line.split("accepted ").nth(1)?.split(' ').next()?;
    n.parse().ok()
}

/// Stops the instance (SIGSTOP) as a busy one would be, so that connections queue on its
/// listener, and sends it SIGTERM then SIGCONT: it finds the signal and the queue together.
/// It is stopped between two turns of its loop (waiting in epoll), else the turn it is in
/// would accept the queue before it reads the signal; `clients` gets probes until
/// something is queued (its own threads may all be inside sessions of this instance).
fn stop_busy(proxy: &Proxy, name: &str, port: u16, clients: &mut Stream) -> Option<usize> {
    let pid = proxy.pid();
    let mut tries = 0;
    loop {
        signal(pid, libc::SIGSTOP);
        while proc_state(pid) != Some('T') {
            thread::sleep(Duration::from_millis(1));
        }
        if in_epoll(pid) {
            break;
        }
        signal(pid, libc::SIGCONT);
        tries += 1;
        assert!(tries < 500, "{name} is never found waiting in epoll");
        thread::sleep(Duration::from_millis(3));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while queued(pid, port) == 0 {
        assert!(
            Instant::now() < deadline,
            "nothing queued on {name}'s listener"
        );
        clients.probe(port);
        thread::sleep(Duration::from_millis(50));
    }
    let waiting = queued(pid, port);
    signal(pid, libc::SIGTERM);
    signal(pid, libc::SIGCONT);
    let drained = exit_after_sigterm(proxy, name);
    assert!(
        drained.is_some_and(|n| n >= waiting),
        "{name} had {waiting} connections queued and says it accepted {drained:?} at SIGTERM"
    );
    drained
}

/// The state letter of a process (/proc/PID/stat).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether the (stopped) process's main thread was in `epoll_wait` (/proc/PID/syscall).
fn in_epoll(pid: u32) -> bool {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let nr: Option<libc::c_long> = text.split_whitespace().next().and_then(|n| n.parse().ok());
    #[cfg(target_arch = "x86_64")]
    let waits = [libc::SYS_epoll_pwait, libc::SYS_epoll_wait];
    #[cfg(not(target_arch = "x86_64"))]
    let waits = [libc::SYS_epoll_pwait];
    nr.is_some_and(|nr| waits.contains(&nr))
}

/// Connections waiting in the accept queue of `pid`'s listener on 127.0.0.1:`port`
/// (the rx_queue column of /proc/net/tcp, for a listening socket).
fn queued(pid: u32, port: u16) -> usize {
    let ours: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let listening = f.get(3) == Some(&"0A");
            let inode = format!("socket:[{}]", f.get(9)?);
            if local != port || !listening || !ours.contains(&inode) {
                return None;
            }
            usize::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()
        })
        .sum()
}

/// The client ports of the sessions an instance served, from its access log.
fn clients_in(proxy: &Proxy) -> Vec<u16> {
    proxy
        .log()
        .lines()
        .filter(|l| l.contains(" connected, origin "))
        .filter_map(|l| l.split("client 127.0.0.1:").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn rolling_restart_refuses_no_one() {
    let port = free_port();
    let a = instance(port);
    let mut clients = Stream::start(port);
    clients.wait_served(50);

    let b = instance(port);
    clients.wait_served(100);
    let drained_a = stop_busy(&a, "A", port, &mut clients);
    clients.wait_served(100);

    let c = instance(port);
    clients.wait_served(100);
    let drained_b = stop(&b, "B");
    thread::sleep(Duration::from_secs(2));
    clients.wait_served(50);
    let outcomes = clients.stop();

    let served: Vec<u16> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Served(p) => Some(*p),
            _ => None,
        })
        .collect();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Refused))
        .count();
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Served(_)))
        .collect();
    let reset = failed.len() - refused;
    let logs = [clients_in(&a), clients_in(&b), clients_in(&c)];
    let said = |n: Option<usize>| n.map_or("?".to_string(), |n| n.to_string());
    println!(
        "rolling restart: {} sessions ({} by A, {} by B, {} by C), {refused} refused, \
         {reset} reset or wrong; queued connections accepted at SIGTERM: A {}, B {}",
        outcomes.len(),
        logs[0].len(),
        logs[1].len(),
        logs[2].len(),
        said(drained_a),
        said(drained_b)
    );
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let logged: usize = logs.iter().map(Vec::len).sum();
    assert_eq!(logged, served.len(), "every session in one instance's log");
    assert!(drained_b.is_some(), "B says what it drained:\n{}", b.log());
    assert!(
        logs.iter().all(|l| !l.is_empty()),
        "every instance served sessions: {:?}",
        logs.iter().map(Vec::len).collect::<Vec<_>>()
    );
    drop(c);
}

/// Runs a second daemon on `port` and expects it not to start: its stderr.
fn fails_to_start(port: u16, reuse: bool) -> String {
    let (port, mgmt, origin) = (
        port.to_string(),
        free_port().to_string(),
        dovecot().port.to_string(),
    );
    let mut args = vec![
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "-o",
        &mgmt,
        "-P",
        &origin,
        "127.0.0.1",
    ];
    if reuse {
        args.insert(0, "--reuse-port");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_pop3filter"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a second instance on port {port} started ({args:?})");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
    stderr
}

#[test]
fn without_reuse_port_a_second_instance_does_not_start() {
    let port = free_port();
    let plain = daemon(port, &[]);
    let err = fails_to_start(port, false);
    let error_lines: Vec<&str> = err.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(error_lines.len(), 1, "{err}");
    let line = error_lines[0];
    for says in [
        &format!("127.0.0.1:{port}"),
        "Address already in use",
        "start each with --reuse-port",
    ] {
        assert!(line.contains(says), "{line:?} does not say {says:?}");
    }
    let err = fails_to_start(port, true);
    assert!(
        err.contains("listens on it without --reuse-port"),
        "second with --reuse-port, first without: {err}"
    );
    drop(plain);

    let shared = daemon(port, &["--reuse-port"]);
    let err = fails_to_start(port, false);
    assert!(
        err.contains("start each with --reuse-port"),
        "second without --reuse-port, first with: {err}"
    );
    // The first one still serves.
    let mut c = shared.connect();
    c.greeting();
    c.login("alice", PASSWORD);
}
