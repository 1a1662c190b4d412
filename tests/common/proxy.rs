//! The pop3filter daemon under test: started with its arguments (optionally with a lower
//! open-files limit, through a wrapper, or under `systemd-socket-activate`), its start-up
//! seen from /proc (no probe connection), killed on drop, its output kept in a file.

use super::ports::listening;
use super::process::{read_lossy, spawn};
use super::{dovecot, free_port, scratch, Pop3};
use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

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
