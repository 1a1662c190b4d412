//! Dovecot POP3 origins started by `scripts/dovecot.sh`: one shared by the whole test
//! process, or private ones (stopped on drop), with or without TLS, and with extra script
//! variables.

use super::process::{read_lossy, spawn, stop};
use super::{certs, free_port, lf_to_crlf, scratch, CertPair};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const DOVECOT_TIMEOUT: Duration = Duration::from_secs(20);

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
