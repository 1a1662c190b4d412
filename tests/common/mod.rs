//! Integration-test harness: a real Dovecot POP3 origin, the pop3filter
//! daemon under test, and a raw POP3 client.  Use it with `mod common;`.
//!
//! * `dovecot()` is one Dovecot shared by the whole test process, started on
//!   first use; `start_dovecot()` is a private one (for tests that DELE mail),
//!   stopped on drop.  Both come from `scripts/dovecot.sh`, so they serve the
//!   mailboxes of `scripts/make-mail.py` (users alice, big, bench, empty, mime, mimebig;
//!   password "secret"), on 127.0.0.1 only.  Message files in
//!   `Dovecot::dir/mail/<user>/cur/` are hard links into a cache shared by all
//!   instances: read or delete them, never write to them.
//! * `dovecot_tls()` / `start_dovecot_tls(pair)`: the same with TLS (STLS on
//!   its POP3 port, implicit TLS on `Dovecot::pop3s_port`), presenting a leaf
//!   of `certs()` (`certs.rs`: test CAs and leaves made with openssl).
//! * `Proxy` runs the daemon binary; it is killed on drop and its stderr is
//!   kept in a file (`Proxy::log`), printed if the test panics.  Start-up is
//!   detected from /proc (a listening socket), so no probe connection is made.
//!   `Proxy::start_activated` runs it under `systemd-socket-activate` (socket
//!   activation); `listening_ports(pid)` says what a process listens on.
//! * Every child process is forked by one helper thread that never exits and
//!   gets `PR_SET_PDEATHSIG(SIGTERM)`, so nothing outlives the test process
//!   (the signal fires when the forking *thread* dies, hence the helper).
//! * Scratch files live in `target/tmp/pop3filter-harness/*-<test pid>-<n>`
//!   (or the system temp dir if Dovecot's mail user could not reach that);
//!   entries of test processes that are gone are removed on the next start.

#![allow(dead_code)]

mod certs;
mod pop3;
mod sha256;

#[allow(unused_imports)]
pub use certs::{certs, CertPair, Certs};

#[allow(unused_imports)]
pub use pop3::{connect_from, connect_small_window, excerpt, lf_to_crlf, unstuff, Pop3};
#[allow(unused_imports)]
pub use sha256::{hex, sha256};

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "secret";
const DOVECOT_TIMEOUT: Duration = Duration::from_secs(20);
const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Forks `cmd` from the immortal helper thread, with PDEATHSIG set.
fn spawn(mut cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("harness-spawner".into())
            // The sender lives in a static, so this loop (and thread) never ends.
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the harness spawner thread");
        tx
    });
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: die_with_parent only makes async-signal-safe system calls.
    unsafe { cmd.pre_exec(move || die_with_parent(parent)) };
    let (tx, rx) = mpsc::channel();
    spawner.send((cmd, tx)).expect("spawner thread is alive");
    rx.recv().expect("spawner thread replied")
}

/// Runs `cmd` like the harness's own children: forked from the helper thread,
/// with PDEATHSIG, so it cannot outlive the test process.  The caller stops it.
pub fn spawn_child(cmd: Command) -> io::Result<Child> {
    spawn(cmd)
}

/// In a forked child: get SIGTERM when the forking thread ends, and give up
/// if the parent process is already gone.
fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    let sig = libc::SIGTERM as libc::c_ulong;
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if unsafe { libc::getppid() } != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// A fresh, empty scratch path `<base>/<kind>-<pid>-<n>` (not created;
/// `kind` without '-'), removed by a later test process once this one is gone.
pub fn scratch(kind: &str) -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let base = BASE.get_or_init(|| {
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // As root, Dovecot reads mail as "nobody", who must be able to reach it.
        let reachable = unsafe { libc::geteuid() } != 0
            || target_tmp
                .ancestors()
                .all(|p| fs::metadata(p).map_or(true, |m| m.permissions().mode() & 0o001 != 0));
        let parent = if reachable {
            target_tmp
        } else {
            std::env::temp_dir()
        };
        let base = parent.join("pop3filter-harness");
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        for entry in fs::read_dir(&base).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').nth(1).and_then(|p| p.parse().ok());
            if pid.is_some_and(|pid| !process_exists(pid)) {
                let path = entry.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
        base
    });
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    base.join(format!("{kind}-{}-{n}", std::process::id()))
}

fn process_exists(pid: libc::pid_t) -> bool {
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILLs.
fn stop(child: &mut Child, grace: Duration) {
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// A Dovecot POP3 server started by `scripts/dovecot.sh`.
pub struct Dovecot {
    pub port: u16,
    /// The implicit-TLS port of an instance started with TLS.
    pub pop3s_port: Option<u16>,
    /// The instance directory: dovecot.conf, dovecot.log, passwd, mail/<user>/.
    pub dir: PathBuf,
    child: Child,
    scratch: PathBuf,
}

/// The Dovecot instance shared by every test in this process.  Do not change
/// its mailboxes (no DELE+QUIT); use `start_dovecot()` for that.
pub fn dovecot() -> &'static Dovecot {
    static SHARED: OnceLock<Dovecot> = OnceLock::new();
    SHARED.get_or_init(start_dovecot)
}

/// A private Dovecot instance, stopped (and its files removed) on drop.
pub fn start_dovecot() -> Dovecot {
    start_dovecot_with(None)
}

/// The TLS Dovecot shared by every test in this process: leaf A of `certs()`
/// on both its ports. Do not change its mailboxes.
pub fn dovecot_tls() -> &'static Dovecot {
    static SHARED: OnceLock<Dovecot> = OnceLock::new();
    SHARED.get_or_init(|| start_dovecot_tls(&certs().a))
}

/// A private Dovecot with TLS: `pair`'s leaf and key, STLS offered on `port`
/// (cleartext logins still allowed) and implicit TLS on `pop3s_port`.
pub fn start_dovecot_tls(pair: &CertPair) -> Dovecot {
    start_dovecot_with(Some(pair))
}

/// A private Dovecot started with extra `scripts/dovecot.sh` variables (e.g.
/// `DOVECOT_TRUSTED_NETWORKS`, `DOVECOT_AUTH_PENALTY`, `DOVECOT_HAPROXY_PORT`).
pub fn start_dovecot_env(vars: &[(&str, String)]) -> Dovecot {
    start_dovecot_full(None, vars)
}

fn start_dovecot_with(tls: Option<&CertPair>) -> Dovecot {
    start_dovecot_full(tls, &[])
}

fn start_dovecot_full(tls: Option<&CertPair>, vars: &[(&str, String)]) -> Dovecot {
    for attempt in 1.. {
        match Dovecot::try_start(tls, vars) {
            Ok(d) => return d,
            // Someone took the port between free_port() and Dovecot's bind.
            Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
            Err(log) => panic!("Dovecot did not start:\n{log}"),
        }
    }
    unreachable!()
}

impl Dovecot {
    fn try_start(tls: Option<&CertPair>, vars: &[(&str, String)]) -> Result<Dovecot, String> {
        let scratch = scratch("dovecot");
        let dir = scratch.join("instance");
        fs::create_dir_all(&dir).unwrap();
        let output = File::create(scratch.join("script.out")).unwrap();
        let port = free_port();
        let mut cmd =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dovecot.sh"));
        cmd.arg(&dir).arg(port.to_string()).stdin(Stdio::null());
        cmd.envs(vars.iter().map(|(k, v)| (k, v)));
        let pop3s_port = tls.map(|pair| {
            let pop3s = free_port();
            cmd.env("DOVECOT_TLS_CERT", &pair.cert)
                .env("DOVECOT_TLS_KEY", &pair.key)
                .env("DOVECOT_POP3S_PORT", pop3s.to_string());
            pop3s
        });
        cmd.stdout(output.try_clone().unwrap()).stderr(output);
        let child = spawn(cmd).map_err(|e| format!("cannot run scripts/dovecot.sh: {e}"))?;
        let mut dovecot = Dovecot {
            port,
            pop3s_port,
            dir,
            child,
            scratch,
        };
        let started = Instant::now();
        while started.elapsed() < DOVECOT_TIMEOUT {
            if let Ok(Some(status)) = dovecot.child.try_wait() {
                return Err(format!("exited with {status}\n{}", dovecot.diagnostics()));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut greeting = String::new();
                let _ = BufReader::new(stream).read_line(&mut greeting);
                // Both listeners are opened together; the POP3S one is checked anyway.
                let pop3s_up = match pop3s_port {
                    Some(p) => TcpStream::connect(("127.0.0.1", p)).is_ok(),
                    None => true,
                };
                if greeting.starts_with("+OK") && pop3s_up {
                    return Ok(dovecot);
                }
                if greeting.starts_with("+OK") {
                    return Err(format!(
                        "no POP3S listener on {pop3s_port:?}\n{}",
                        dovecot.diagnostics()
                    ));
                }
                return Err(format!("greeting {greeting:?}\n{}", dovecot.diagnostics()));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "no greeting within {DOVECOT_TIMEOUT:?}\n{}",
            dovecot.diagnostics()
        ))
    }

    /// The script's output and Dovecot's log, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- scripts/dovecot.sh output ---\n{}--- {} ---\n{}",
            read_lossy(&self.scratch.join("script.out")),
            self.dir.join("dovecot.log").display(),
            read_lossy(&self.dir.join("dovecot.log"))
        )
    }

    pub fn log(&self) -> String {
        read_lossy(&self.dir.join("dovecot.log"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A user's message files, in POP3 order (message 1 first).  After a
    /// DELE+QUIT the numbering of this list no longer matches old numbers.
    pub fn messages(&self, user: &str) -> Vec<PathBuf> {
        let cur = self.dir.join("mail").join(user).join("cur");
        let mut files: Vec<PathBuf> = fs::read_dir(&cur)
            .unwrap_or_else(|e| panic!("{}: {e}", cur.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// Contents of message `n` (1-based) of `user`, as stored (LF endings).
    pub fn message(&self, user: &str, n: usize) -> Vec<u8> {
        fs::read(&self.messages(user)[n - 1]).unwrap()
    }

    /// Dovecot's reply to STAT for `user`, from the message files:
    /// `+OK <count> <octets>\r\n`, each message counted with CRLF line ends.
    pub fn stat_line(&self, user: &str) -> String {
        let files = self.messages(user);
        let octets: usize = files
            .iter()
            .map(|f| lf_to_crlf(&fs::read(f).unwrap()).len())
            .sum();
        format!("+OK {} {octets}\r\n", files.len())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // Dovecot's master needs about a second to stop its children.
        stop(&mut self.child, Duration::from_secs(5));
        if thread::panicking() {
            eprintln!("--- Dovecot instance kept in {} ---", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.scratch);
        }
    }
}

/// A running pop3filter daemon.
pub struct Proxy {
    pub port: u16,
    /// `--pop3s-port`, if given.
    pub pop3s_port: Option<u16>,
    /// The management (SPCP) port.
    pub mgmt_port: u16,
    child: Child,
    log_path: PathBuf,
}

impl Proxy {
    /// Runs the daemon with `args`, which must include `"-p", PORT`, and waits
    /// until it is listening on that port (and on `--pop3s-port PORT`, if
    /// given).  stdout and stderr go to `log()`.
    /// Unless `args` has `-o PORT`, the management listener gets a free port
    /// (the default, 9090, would clash between tests running in parallel).
    pub fn start(args: &[&str]) -> Proxy {
        Proxy::start_with(args, None, &[], None)
    }

    /// Like `start`, with the daemon's open-files limit (soft and hard) set to
    /// `nofile`, so that it runs out of descriptors.
    pub fn start_limited(nofile: u64, args: &[&str]) -> Proxy {
        Proxy::start_with(args, Some(nofile), &[], None)
    }

    /// Like `start`, the daemon run through `wrapper` (a command and its arguments that end
    /// by exec'ing the daemon with the arguments that follow them).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Proxy {
        Proxy::start_with(args, None, wrapper, None)
    }

    /// The daemon started by `systemd-socket-activate` (socket activation, as systemd does
    /// it) with a listening socket on 127.0.0.1 for each of `sockets` (port, name; names
    /// given only when some are not empty), `args` for the daemon (`-p` not needed).
    /// Returns once the sockets listen, before the daemon runs: `systemd-socket-activate`
    /// execs it, with the same pid, at the first connection. `port` is the first socket's.
    pub fn start_activated(sockets: &[(u16, &str)], args: &[&str]) -> Proxy {
        let mut wrapper: Vec<String> = vec!["systemd-socket-activate".into()];
        for (port, _) in sockets {
            wrapper.extend(["-l".into(), format!("127.0.0.1:{port}")]);
        }
        if sockets.iter().any(|(_, name)| !name.is_empty()) {
            let names: Vec<&str> = sockets.iter().map(|(_, n)| *n).collect();
            wrapper.push(format!("--fdname={}", names.join(":")));
        }
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let ports: Vec<u16> = sockets.iter().map(|(p, _)| *p).collect();
        Proxy::start_with(args, None, &wrapper, Some(&ports))
    }

    /// Waits up to `within` for the daemon to exit; its status, or None if it still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `watch`: the ports to wait for instead of `-p` and `--pop3s-port` (the first one is
    /// `port`).
    fn start_with(
        args: &[&str],
        nofile: Option<u64>,
        wrapper: &[&str],
        watch: Option<&[u16]>,
    ) -> Proxy {
        let free_mgmt = free_port().to_string();
        let mut with_mgmt: Vec<&str> = Vec::new();
        if !args.contains(&"-o") {
            with_mgmt.extend(["-o", free_mgmt.as_str()]);
        }
        with_mgmt.extend_from_slice(args);
        let args = &with_mgmt[..];
        let mgmt_port = args
            .windows(2)
            .find(|w| w[0] == "-o")
            .and_then(|w| w[1].parse().ok())
            .unwrap_or(0);
        let port = match watch {
            Some(ports) => ports[0],
            None => args
                .windows(2)
                .find(|w| w[0] == "-p")
                .and_then(|w| w[1].parse().ok())
                .unwrap_or_else(|| panic!("Proxy::start needs -p PORT in {args:?}")),
        };
        let pop3s_port: Option<u16> = args
            .windows(2)
            .find(|w| w[0] == "--pop3s-port")
            .and_then(|w| w[1].parse().ok());
        let watched: Vec<u16> = match watch {
            Some(ports) => ports.to_vec(),
            None => [port].into_iter().chain(pop3s_port).collect(),
        };
        let log_path = scratch("proxy").with_extension("log");
        let log = File::create(&log_path).unwrap();
        let bin = env!("CARGO_BIN_EXE_pop3filter");
        let mut cmd = match wrapper.split_first() {
            None => Command::new(bin),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
        };
        if let Some(n) = nofile {
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: setrlimit is async-signal-safe and touches only the child.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                });
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = spawn(cmd).expect("run the pop3filter binary");
        let mut proxy = Proxy {
            port,
            pop3s_port,
            mgmt_port,
            child,
            log_path,
        };
        let started = Instant::now();
        // Watch for the listening socket instead of connecting to it, so the
        // daemon sees no extra connection.
        while !watched.iter().all(|p| listening(proxy.child.id(), *p)) {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!(
                    "pop3filter {args:?} exited with {status}; output:\n{}",
                    proxy.log()
                );
            }
            if started.elapsed() > PROXY_TIMEOUT {
                panic!(
                    "pop3filter {args:?} not listening on port {port} after \
                     {PROXY_TIMEOUT:?}; output:\n{}",
                    proxy.log()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
        proxy
    }

    /// The daemon on a free port of 127.0.0.1 in front of the shared Dovecot;
    /// `extra` goes before the origin argument.
    pub fn for_dovecot(extra: &[&str]) -> Proxy {
        Proxy::for_origin(dovecot().port, extra)
    }

    /// Like `for_dovecot`, for the origin 127.0.0.1:`origin_port`.
    pub fn for_origin(origin_port: u16, extra: &[&str]) -> Proxy {
        let (port, origin) = (free_port().to_string(), origin_port.to_string());
        let mut args = vec!["-l", "127.0.0.1", "-p", &port, "-P", &origin];
        args.extend_from_slice(extra);
        args.push("127.0.0.1");
        Proxy::start(&args)
    }

    pub fn connect(&self) -> Pop3 {
        Pop3::connect(self.port)
    }

    /// Everything the daemon has written to stderr (and stdout) so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- pop3filter output ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        } else {
            let _ = fs::remove_file(&self.log_path);
        }
    }
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
fn listening(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
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
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                inodes.extend(f.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    !inodes.is_empty()
        && fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                fs::read_link(fd.path()).is_ok_and(|l| inodes.iter().any(|i| Path::new(i) == l))
            })
        })
}

#[test]
fn listening_sees_our_own_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(listening(std::process::id(), port));
    drop(listener);
    assert!(!listening(std::process::id(), port));
}
