//! The leak checker ([`Baseline`]: descriptors and children of the daemon)
//! and the memory watch ([`RssWatch`]).

use super::procs::{alive, fds, rss_kib};
use super::{children, eventually, ProcInfo};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The descriptors of the daemon and its children, and the children.
#[derive(Debug)]
pub struct Snapshot {
    pub daemon_fds: Vec<String>,
    pub children: Vec<(ProcInfo, usize)>,
}

impl Snapshot {
    pub fn take(pid: u32) -> Snapshot {
        Snapshot {
            daemon_fds: fds(pid),
            children: children(pid)
                .into_iter()
                .map(|c| {
                    let n = fds(c.pid as u32).len();
                    (c, n)
                })
                .collect(),
        }
    }

    /// Descriptors of the daemon and of its children together.
    pub fn total(&self) -> usize {
        self.daemon_fds.len() + self.children.iter().map(|(_, n)| n).sum::<usize>()
    }
}

/// The leak checker: the daemon's state after its first complete session.
pub struct Baseline {
    pub pid: u32,
    pub fds: Vec<String>,
    pub rss_kib: u64,
}

impl Baseline {
    /// Waits until the daemon has no child and its descriptor count holds
    /// still, and records it. Take it after a first complete session.
    pub fn take(pid: u32) -> Baseline {
        let mut last = Snapshot::take(pid);
        let mut still = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while still < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(30));
            let now = Snapshot::take(pid);
            if now.children.is_empty() && now.daemon_fds == last.daemon_fds {
                still += 1;
            } else {
                still = 0;
            }
            last = now;
        }
        assert!(
            last.children.is_empty(),
            "no baseline: the daemon still has children {:?}",
            last.children
        );
        Baseline {
            pid,
            fds: last.daemon_fds,
            rss_kib: rss_kib(pid),
        }
    }

    /// Asserts that within 3 s the daemon is alive, has no child (running or
    /// zombie) and as many descriptors as at the baseline.
    pub fn assert_no_leak(&self, after: &str) {
        assert!(alive(self.pid), "after {after}: the daemon is not running");
        let mut last = Snapshot::take(self.pid);
        let clean = eventually(Duration::from_secs(3), || {
            last = Snapshot::take(self.pid);
            last.children.is_empty() && last.total() == self.fds.len()
        });
        assert!(
            alive(self.pid),
            "after {after}: the daemon died while checking for leaks"
        );
        if !clean {
            let extra: Vec<&String> = last
                .daemon_fds
                .iter()
                .filter(|f| !self.fds.contains(f))
                .collect();
            panic!(
                "after {after}: leak. baseline {} descriptors, now {} (daemon {}, children {:?}); \
                 daemon descriptors not in the baseline: {extra:?}; baseline {:?}",
                self.fds.len(),
                last.total(),
                last.daemon_fds.len(),
                last.children,
                self.fds
            );
        }
    }
}

/// Samples the VmRSS of a process every 10 ms until stopped; keeps the peak.
pub struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssWatch {
    pub fn start(pid: u32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let (st, pk) = (stop.clone(), peak.clone());
        let handle = thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                pk.fetch_max(rss_kib(pid), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(10));
            }
        });
        RssWatch {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// The peak so far, in KiB.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Stops sampling; returns the peak in KiB.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak()
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Asserts the peak RSS grew less than `limit_kib` over the baseline.
pub fn assert_rss_bounded(base: &Baseline, peak_kib: u64, limit_kib: u64, what: &str) {
    let growth = peak_kib.saturating_sub(base.rss_kib);
    eprintln!(
        "{what}: VmRSS baseline {} KiB, peak {peak_kib} KiB (+{growth} KiB)",
        base.rss_kib
    );
    assert!(
        growth < limit_kib,
        "{what}: the daemon's VmRSS grew by {growth} KiB (baseline {} KiB, peak {peak_kib} KiB), \
         limit {limit_kib} KiB",
        base.rss_kib
    );
}
