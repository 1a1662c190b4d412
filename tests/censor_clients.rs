//! The censor (`-M`) seen by real mail clients, and on a 21 MB message, against the real
//! Dovecot (users `mime` and `mimebig` of `scripts/make-mail.py`; see `tests/censor.rs`).
//!
//! Proves: Python's poplib, fetchmail and mpop each fetch every `mime` message through
//! `-M 'image/*'` with exactly the image leaves turned into the note and everything else as
//! the same client delivers it straight from Dovecot (`tests/clients/censor_check.py`, with
//! Python's `email` and byte for byte); the 21 MB message through
//! `-M application/x-cd-image` comes out with its 15 MiB part replaced and the rest
//! identical, and through `-M image/png` with only the PNG replaced, while the daemon's
//! resident memory grows by less than 8 MiB, also with a slow reader behind a small window.
//! A client that is not installed is skipped with a message; `make test` installs them.

mod censor_support;
mod common;

#[path = "proc_support/mod.rs"]
mod proc_support;

use censor_support::{check, installed, retr_all, summary, text, Scratch, IMAGES, LEAVES, USER};
use common::{dovecot, lf_to_crlf, Pop3, Proxy, PASSWORD};
use proc_support::vm_rss_kib;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const COUNT: usize = LEAVES.len();

/// Every message of `mime` as poplib returns it (lines joined with CRLF), one file each.
fn poplib(port: u16, into: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/poplib_fetch.py");
    let out = Command::new("python3")
        .arg(script)
        .args([&port.to_string(), USER, PASSWORD])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "poplib against port {port}: {}",
        text(&out.stderr)
    );
    // COUNT <n>\n, then per message MSG <number> <length>\n<bytes>.
    let data = out.stdout;
    let line_end = |at: usize| at + data[at..].iter().position(|&b| b == b'\n').unwrap();
    let mut at = line_end(0) + 1;
    assert_eq!(text(&data[..at]), format!("COUNT {COUNT}\n"));
    for n in 1..=COUNT {
        let end = line_end(at);
        let head = text(&data[at..end]);
        let len: usize = head
            .strip_prefix(&format!("MSG {n} "))
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("poplib: {head:?}"));
        fs::write(into.join(format!("{n}.eml")), &data[end + 1..end + 1 + len]).unwrap();
        at = end + 1 + len;
    }
    assert_eq!(
        at,
        data.len(),
        "poplib output has more than {COUNT} messages"
    );
}

/// Every message of `mime` as mpop delivers it to a maildir (its own UID list, in `dir`).
fn mpop(port: u16, dir: &Path) -> PathBuf {
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let status = Command::new("mpop")
        .args(["--host=127.0.0.1", &format!("--port={port}"), "--auth=user"])
        .arg(format!("--user={USER}"))
        .args(["--passwordeval=echo secret", "--tls=off", "--keep=on"])
        .args(["--only-new=off", "--received-header=off", "-q"])
        .arg(format!("--deliver=maildir,{}", dir.display()))
        .arg(format!("--uidls-file={}", dir.join("uidls").display()))
        .status()
        .expect("run mpop");
    assert!(status.success(), "mpop against port {port}: {status}");
    dir.join("new")
}

/// Every message of `mime` as fetchmail hands it to an MDA (its own FETCHMAILHOME, `dir`).
fn fetchmail(port: u16, dir: &Path) -> PathBuf {
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let deliver = dir.join("deliver.sh");
    let script = format!(
        "#!/bin/sh\nn=$(ls {0} | wc -l)\ncat > {0}/msg.$n\n",
        out.display()
    );
    fs::write(&deliver, script).unwrap();
    fs::set_permissions(&deliver, fs::Permissions::from_mode(0o755)).unwrap();
    let rc = dir.join("fetchmailrc");
    let poll = format!(
        "poll 127.0.0.1 protocol pop3 port {port} user {USER} password {PASSWORD} no rewrite \
         mda \"{}\" fetchall keep sslproto ''\n",
        deliver.display()
    );
    fs::write(&rc, poll).unwrap();
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let status = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--invisible", "--silent"])
        .env("FETCHMAILHOME", dir)
        .status()
        .expect("run fetchmail");
    assert!(status.success(), "fetchmail against port {port}: {status}");
    out
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

#[test]
fn poplib_fetchmail_and_mpop_get_images_censored() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&["-M", "image/*"]);
    let scratch = Scratch::new("clients");
    let (direct, got) = (scratch.sub("poplib-direct"), scratch.sub("poplib-proxy"));
    poplib(d.port, &direct);
    poplib(proxy.port, &got);
    assert_eq!(check(&direct, &got, IMAGES, &[]), summary(IMAGES), "poplib");
    // poplib gives what a raw RETR carries.
    for (n, want) in retr_all(d.port, USER, COUNT).iter().enumerate() {
        assert!(fs::read(direct.join(format!("{}.eml", n + 1))).unwrap() == *want);
    }

    type Client = fn(u16, &Path) -> PathBuf;
    for (name, client) in [("mpop", mpop as Client), ("fetchmail", fetchmail as Client)] {
        if !installed(name) {
            println!("SKIPPED: {name} is not installed");
            continue;
        }
        let direct = client(d.port, &scratch.sub(&format!("{name}-direct")));
        let got = client(proxy.port, &scratch.sub(&format!("{name}-proxy")));
        assert_eq!(count_files(&direct), COUNT, "{name} directly");
        assert_eq!(check(&direct, &got, IMAGES, &[]), summary(IMAGES), "{name}");
    }
}

/// The largest VmRSS (KiB) of `pid` seen while `work` runs, sampled every 2 ms.
fn peak_rss_during<T>(pid: u32, work: impl FnOnce() -> T) -> (u64, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(vm_rss_kib(pid).unwrap_or(0));
                thread::sleep(Duration::from_millis(2));
            }
            peak.max(vm_rss_kib(pid).unwrap_or(0))
        })
    };
    let result = work();
    stop.store(true, Ordering::Relaxed);
    (sampler.join().unwrap(), result)
}

const BIG: &str = "mimebig";
/// The bound on the daemon's growth, well under the 15 MiB part or the 21 MB message.
const GROWTH_KIB: u64 = 8 * 1024;

#[test]
fn a_21_mb_message_is_censored_in_bounded_memory() {
    let d = dovecot();
    let file = d.message(BIG, 1);
    assert!(file.len() > 20_000_000, "{} bytes", file.len());
    let direct = retr_all(d.port, BIG, 1);
    assert!(
        direct[0] == lf_to_crlf(&file),
        "direct RETR of the big message"
    );
    let scratch = Scratch::new("big");
    let direct_dir = scratch.with("direct", &direct);

    for (list, censored) in [
        ("application/x-cd-image", "application/x-cd-image"),
        ("image/png", "image/png"),
    ] {
        let proxy = Proxy::for_dovecot(&["-M", list]);
        // Warm up the censor's path (allocator arenas, first-use pages).
        retr_all(proxy.port, USER, 1);
        let before = vm_rss_kib(proxy.pid()).unwrap();
        let started = Instant::now();
        let (peak, got) = peak_rss_during(proxy.pid(), || retr_all(proxy.port, BIG, 1));
        eprintln!(
            "-M {list}: {} bytes in {:?}; VmRSS {before} KiB, peak {peak} KiB",
            got[0].len(),
            started.elapsed()
        );
        if censored == "application/x-cd-image" {
            assert!(got[0].len() < 5000, "{} bytes", got[0].len());
        }
        let got_dir = scratch.with(&format!("got-{}", list.replace('/', "_")), &got);
        let leaves = [
            "text/plain",
            "application/x-cd-image",
            "image/png",
            "text/plain",
        ]
        .map(|t| {
            if t == censored {
                format!("{t}!")
            } else {
                t.to_string()
            }
        });
        assert_eq!(
            check(&direct_dir, &got_dir, &[censored], &[]),
            format!("<mimebig-1@pop3filter.test> {}\n", leaves.join(" ")),
            "-M {list}"
        );
        assert!(
            peak < before + GROWTH_KIB,
            "-M {list}: VmRSS grew from {before} KiB to {peak} KiB"
        );
    }
}

#[test]
fn a_slow_reader_of_the_censored_21_mb_message_does_not_make_the_daemon_buffer_it() {
    let proxy = Proxy::for_dovecot(&["-M", "image/png"]);
    retr_all(proxy.port, USER, 1);
    let before = vm_rss_kib(proxy.pid()).unwrap();
    let want = lf_to_crlf(&dovecot().message(BIG, 1));
    // 4 KiB receive window, reads of at most 64 KiB after 2 ms each: the daemon's output waits.
    let mut c = Pop3::connect_slow(proxy.port, 64 * 1024, Duration::from_millis(2));
    c.greeting();
    c.login(BIG, PASSWORD);
    let (peak, read) = peak_rss_during(proxy.pid(), || {
        c.cmd("RETR 1");
        assert!(c.line().starts_with(b"+OK"));
        let mut got = Vec::new();
        while got.len() < 2 << 20 {
            got.extend(c.line());
        }
        got
    });
    // Up to here, the message is as Dovecot has it (the PNG is near the end), un-stuffed.
    let n = read.len();
    assert!(
        read == want[..n],
        "the first {n} bytes differ: {}",
        text(&read[..300])
    );
    eprintln!("slow reader: VmRSS {before} KiB, peak {peak} KiB over {n} bytes");
    assert!(
        peak < before + GROWTH_KIB,
        "VmRSS grew from {before} KiB to {peak} KiB"
    );
    drop(c);
    // The daemon goes on: a whole censored fetch of the message.
    let got = retr_all(proxy.port, BIG, 1);
    assert!(got[0].len() + 500 < want.len() && got[0].len() > 21_000_000);
}
