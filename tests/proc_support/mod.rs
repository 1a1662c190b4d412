//! Polling and /proc helpers shared by `tests/faults_support/` and
//! `tests/filter_support/`. Both include this file with
//! `#[path = "../proc_support/mod.rs"] mod proc_support;` and re-export what
//! their tests use, so a test file never names this module itself.

#![allow(dead_code)]

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns true or `within` has passed;
/// returns its last answer.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A process as /proc/PID/stat describes it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
}

/// /proc/PID/stat of one process, if it exists.
pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    Some(ProcInfo {
        pid,
        comm: stat[open + 1..close].to_string(),
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
    })
}

/// Every process visible in /proc.
pub fn processes() -> Vec<ProcInfo> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// The children of `pid`, in any state (zombies included).
pub fn children(pid: u32) -> Vec<ProcInfo> {
    processes()
        .into_iter()
        .filter(|p| p.ppid == pid as i32)
        .collect()
}

/// The resident set size of `pid` in KiB (VmRSS in /proc/PID/status); None
/// if the process is gone or the line is missing.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
