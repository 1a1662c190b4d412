//! The harness's child processes and scratch files: every child is forked by one helper
//! thread that never exits, with `PR_SET_PDEATHSIG(SIGTERM)`, so nothing outlives the test
//! process; scratch paths live under one base directory and are removed by a later test
//! process once the one that made them is gone.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Forks `cmd` from the immortal helper thread, with PDEATHSIG set.
pub(super) fn spawn(mut cmd: Command) -> io::Result<Child> {
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
pub(super) fn stop(child: &mut Child, grace: Duration) {
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

pub(super) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
