//! Processes through /proc, beyond the helpers shared with
//! `filter_support` (`tests/proc_support/`): processes tagged by their
//! environment, descriptors, liveness, memory; signals and the daemon's exit
//! status.

use super::proc_support::{proc_info, processes, vm_rss_kib, ProcInfo};
use std::fs;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Live processes whose environment has `FILTER_MSG=<tag>` (a filter started
/// with `-m <tag>` and everything it started, wherever they were reparented).
pub fn tagged(tag: &str) -> Vec<ProcInfo> {
    let needle = format!("FILTER_MSG={tag}");
    processes()
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .collect()
}

/// Kills (SIGKILL) the processes tagged `tag`: cleanup after a failed check.
pub fn kill_tagged(tag: &str) {
    for p in tagged(tag) {
        // SAFETY: kill(2) on one pid we found by its environment tag.
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
    }
}

/// A tag unique in this test process, for `-m`.
pub fn unique_tag(what: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "faults-{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The entries of /proc/PID/fd with what they point to.
pub fn fds(pid: u32) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .map(|e| {
                    let target = fs::read_link(e.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|_| "?".into());
                    format!("{}->{target}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Whether `pid` is running (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    proc_info(pid as i32).is_some_and(|p| p.state != 'Z' && p.state != 'X')
}

/// The resident set size of `pid`, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    vm_rss_kib(pid).unwrap_or(0)
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on the daemon this test started.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Waits (polling `waitpid(WNOHANG)`) up to `within` for the test process's
/// child `pid` to end; its exit, or None if it still runs.
pub fn wait_exit(pid: u32, within: Duration) -> Option<Exit> {
    let deadline = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, without blocking.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if r == pid as libc::pid_t {
            return Some(if libc::WIFEXITED(status) {
                Exit::Code(libc::WEXITSTATUS(status))
            } else {
                Exit::Signal(libc::WTERMSIG(status))
            });
        }
        assert!(r == 0, "waitpid({pid}): {}", io::Error::last_os_error());
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
