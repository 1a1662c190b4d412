//! Transformation processes: one per retrieved message, `CMD` run directly when it has no
//! shell syntax, else `/bin/sh -c CMD`.
//!
//! A session in FILTER calls [`spawn`], registers the child's stdin and stdout pipes (both
//! non-blocking) and its pidfd with the selector, and moves the message through them. The
//! pidfd becomes readable when the process exits; [`Process::reap`] then collects the status
//! without blocking. A process whose session ends early is killed and handed to the loop's
//! [`Orphans`], which reap it on the next tick: no zombie stays behind.

mod argv;
pub mod spawner;

use mime::{Censor, MediaRanges, Note};
use mio::unix::pipe::{Receiver, Sender};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// What the operator configured for transformations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterConfig {
    /// The shell command (`-t`); `None` means plain relay.
    pub command: Option<String>,
    /// Where the filter's stderr is appended (`-e`); `None` means /dev/null.
    pub stderr: Option<String>,
    /// The censor (`-M`, `-m`), also exported to the filter.
    pub censor: Censoring,
}

#[cfg(test)]
mod censoring_tests {
    use super::Censoring;

    #[test]
    fn paragraphs_become_lines_of_filter_msg_and_a_bad_list_is_refused() {
        let c = Censoring::new("image/*, image/png;q=0", &["One.".into(), "Two.".into()]);
        let c = c.unwrap();
        assert_eq!(
            (c.medias(), c.message()),
            ("image/*, image/png;q=0", "One.\nTwo.")
        );
        assert!(c.is_on());
        assert!(!Censoring::new("", &[]).unwrap().is_on());
        assert!(Censoring::new("image/", &[]).is_err());
        assert!(Censoring::new("*", &[]).is_err());
    }
}

/// What the censor removes and the note it leaves (`-M`, `-m`; SPCP 0x13, 0x14).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Censoring {
    /// The list as given, exported as FILTER_MEDIAS.
    medias: String,
    /// The note's paragraphs, exported as FILTER_MSG (one a line).
    message: String,
    ranges: MediaRanges,
    note: Note,
}

impl Censoring {
    /// From the censor list (HTTP Accept syntax; empty: censor nothing) and the note's
    /// paragraphs (none: the default note).
    pub fn new(medias: &str, paragraphs: &[String]) -> Result<Censoring, mime::Error> {
        let ranges = MediaRanges::parse(medias)?;
        let paragraphs: Vec<&String> = paragraphs.iter().filter(|p| !p.is_empty()).collect();
        let note = if paragraphs.is_empty() {
            Note::default()
        } else {
            Note::new(paragraphs.iter().map(|p| p.as_str()))
        };
        let message = paragraphs
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Censoring {
            medias: medias.to_string(),
            message,
            ranges,
            note,
        })
    }

    /// The list as given.
    pub fn medias(&self) -> &str {
        &self.medias
    }

    /// The note's paragraphs as given, one a line (empty: the default note).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether anything is censored.
    pub fn is_on(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// A censor for one message.
    pub fn censor(&self) -> Censor {
        Censor::new(self.ranges.clone(), self.note.clone())
    }
}

/// Per-message facts exported to the filter.
pub struct FilterEnv<'a> {
    /// The session's user, when known.
    pub user: Option<&'a str>,
    /// The origin exactly as given on the command line.
    pub server: &'a str,
    /// The client's address (from the PROXY header, behind a load balancer).
    pub client: &'a str,
}

/// A running (or finished, not yet reaped) filter.
pub struct Process {
    child: Child,
    /// Its standard input, until the proxy closes it.
    pub stdin: Option<Sender>,
    /// Its standard output, until it ends.
    pub stdout: Option<Receiver>,
    /// Readable once the process has exited.
    pub pidfd: OwnedFd,
    status: Option<ExitStatus>,
}

/// Starts `command` with the filter environment: directly when it has no shell syntax
/// ([`argv::words`]), else through `/bin/sh -c`. Fails only when the process cannot be
/// created at all (fork, exec of the shell, pipes, pidfd).
pub fn spawn(command: &str, config: &FilterConfig, env: &FilterEnv) -> io::Result<Process> {
    spawn_with(command, argv::words(command), config, env)
}

/// `spawn`, with `direct` the argument vector to run (`None`: through the shell).
fn spawn_with(
    command: &str,
    direct: Option<Vec<&str>>,
    config: &FilterConfig,
    env: &FilterEnv,
) -> io::Result<Process> {
    let stderr = match &config.stderr {
        None => Stdio::null(),
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Stdio::from(file),
            Err(e) => {
                log::warn!("cannot open filter error file {path}: {e}; using /dev/null");
                Stdio::null()
            }
        },
    };
    let mut cmd = match &direct {
        Some(words) => {
            let mut cmd = Command::new(words[0]);
            cmd.args(&words[1..]);
            cmd
        }
        None => {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(command);
            cmd
        }
    };
    // Its own process group, so that killing it takes whatever it started along.
    cmd.process_group(0);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .env("POP3FILTER_VERSION", crate::args::VERSION)
        .env("POP3_SERVER", env.server)
        .env("POP3_CLIENT", env.client)
        .env("FILTER_MEDIAS", config.censor.medias())
        .env("FILTER_MSG", config.censor.message());
    match env.user {
        Some(user) => cmd.env("POP3_USERNAME", user),
        None => cmd.env_remove("POP3_USERNAME"),
    };
    let mut child = match cmd.spawn() {
        // A program that cannot be run directly goes through the shell after all, which
        // fails the way it always did (exit 127 or 126: the message is refused, -ERR).
        Err(e) if direct.is_some() && cannot_exec(&e) => {
            return spawn_with(command, None, config, env)
        }
        other => other?,
    };
    let setup = (|| {
        let stdin = Sender::from(child.stdin.take().ok_or_else(missing)?);
        stdin.set_nonblocking(true)?;
        let stdout = Receiver::from(child.stdout.take().ok_or_else(missing)?);
        stdout.set_nonblocking(true)?;
        grow_pipe(stdin.as_raw_fd());
        grow_pipe(stdout.as_raw_fd());
        let pidfd = pidfd_open(child.id())?;
        Ok((stdin, stdout, pidfd))
    })();
    match setup {
        Ok((stdin, stdout, pidfd)) => Ok(Process {
            child,
            stdin: Some(stdin),
            stdout: Some(stdout),
            pidfd,
            status: None,
        }),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait(); // just killed: returns at once
            Err(e)
        }
    }
}

fn cannot_exec(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    ) || e.raw_os_error() == Some(libc::ENOEXEC)
}

fn missing() -> io::Error {
    io::Error::other("child pipe missing")
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Process {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Collects the exit status if the process has ended; never blocks.
    pub fn reap(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.status = status,
                Err(e) => log::warn!("waitpid {}: {e}", self.child.id()),
            }
        }
        self.status
    }

    /// Kills the process and whatever is left of its process group: what a filter started
    /// in the background must not outlive its message. The group keeps its id while any
    /// member lives, so it is signalled even after the filter itself was reaped.
    pub fn kill(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the group the filter leads.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        if self.status.is_none() {
            let _ = self.child.kill();
        }
    }

    /// True once the exit status is known.
    pub fn has_exited(&self) -> bool {
        self.status.is_some()
    }
}

/// Filters whose sessions ended before they did: killed, waiting to be reaped.
#[derive(Default)]
pub struct Orphans {
    list: Vec<Process>,
}

impl Orphans {
    /// Takes a process whose pipes are already closed and out of the selector.
    pub fn adopt(&mut self, mut process: Process) {
        process.kill();
        process.stdin = None;
        process.stdout = None;
        if process.reap().is_none() {
            self.list.push(process);
        }
    }

    /// Reaps those that have ended.
    pub fn reap(&mut self) {
        self.list.retain_mut(|p| p.reap().is_none());
    }

    /// At exit: kills what is left and waits for each (a killed process ends at once).
    pub fn reap_all(&mut self) {
        for mut p in self.list.drain(..) {
            p.kill();
            let _ = p.child.wait();
        }
    }

    /// How many are still waiting.
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

/// A short description of how a filter ended, for logs.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    fn config() -> FilterConfig {
        FilterConfig {
            censor: Censoring::new("text/plain", &["hello".into()]).unwrap(),
            ..Default::default()
        }
    }

    fn wait(p: &mut Process) -> ExitStatus {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(s) = p.reap() {
                return s;
            }
            assert!(Instant::now() < until, "filter did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn read_all(p: &mut Process) -> Vec<u8> {
        let mut out = Vec::new();
        let stdout = p.stdout.as_mut().unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 256];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < until);
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn pipes_are_grown_where_the_kernel_allows() {
        let max: libc::c_int = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let env = FilterEnv {
            user: None,
            server: "s",
            client: "c",
        };
        let mut p = spawn("cat", &FilterConfig::default(), &env).unwrap();
        // SAFETY: F_GETPIPE_SZ on descriptors the process owns; no memory is passed.
        let sizes = unsafe {
            [
                libc::fcntl(p.stdin.as_ref().unwrap().as_raw_fd(), libc::F_GETPIPE_SZ),
                libc::fcntl(p.stdout.as_ref().unwrap().as_raw_fd(), libc::F_GETPIPE_SZ),
            ]
        };
        p.kill();
        if max >= PIPE_SIZE {
            assert_eq!(sizes, [PIPE_SIZE; 2]);
        } else {
            assert!(sizes.iter().all(|&s| s > 0), "{sizes:?}");
        }
    }

    #[test]
    fn environment_and_pipes() {
        let env = FilterEnv {
            user: Some("alice"),
            server: "pop.example.org",
            client: "10.1.2.3",
        };
        let script = "cat; printf '|%s|%s|%s|%s|%s|' \"$POP3_USERNAME\" \"$POP3_SERVER\" \"$FILTER_MSG\" \"$FILTER_MEDIAS\" \"$POP3_CLIENT\"";
        let mut p = spawn(script, &config(), &env).unwrap();
        p.stdin.as_mut().unwrap().write_all(b"body\n").unwrap();
        p.stdin = None;
        let out = read_all(&mut p);
        assert_eq!(
            out,
            b"body\n|alice|pop.example.org|hello|text/plain|10.1.2.3|"
        );
        assert!(wait(&mut p).success());
    }

    #[test]
    fn failures_and_kills_are_reaped() {
        let env = FilterEnv {
            user: None,
            server: "x",
            client: "::1",
        };
        let mut p = spawn("exit 3", &config(), &env).unwrap();
        assert_eq!(describe(wait(&mut p)), "exit status 3");
        let mut orphans = Orphans::default();
        let p = spawn("sleep 30", &config(), &env).unwrap();
        let pid = p.pid();
        orphans.adopt(p);
        let until = Instant::now() + Duration::from_secs(5);
        while orphans.len() > 0 {
            assert!(Instant::now() < until, "orphan not reaped");
            std::thread::sleep(Duration::from_millis(5));
            orphans.reap();
        }
        // Reaped: the pid no longer names a zombie of ours.
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/stat")).exists()
                || !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap()
                    .contains(") Z ")
        );
    }
}

/// Bytes a filter's pipe may hold when the kernel allows it (Linux's default is 64 KiB).
const PIPE_SIZE: libc::c_int = 256 * 1024;

/// Asks for a bigger pipe: a message then crosses to and from the filter in fewer turns of
/// the loop and of the filter. The kernel gives pages only as data fills them; a refusal
/// (over `/proc/sys/fs/pipe-max-size`, or the user's pipe quota) keeps the default.
fn grow_pipe(fd: std::os::fd::RawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own takes an int and touches no memory of ours.
    let _ = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
}
