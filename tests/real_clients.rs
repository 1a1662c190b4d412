//! Two more real mail clients through the proxy: mpop and fetchmail fetch every message of
//! alice's mailbox, and what they deliver is byte for byte what they deliver when talking to
//! Dovecot directly — through the plain relay and through `-t cat`. (curl and Python's poplib
//! are in `big_and_clients.rs`.) A client that is not installed is skipped with a message;
//! `make test` installs both.

mod common;

use common::{dovecot, Proxy};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pop3filter-clients-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir`, contents sorted (delivery order and names are the client's).
fn delivered(dir: &Path) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    all.sort();
    all
}

fn mpop(port: u16, name: &str) -> Vec<Vec<u8>> {
    let dir = scratch(name);
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let status = Command::new("mpop")
        .args([
            "--host=127.0.0.1",
            &format!("--port={port}"),
            "--auth=user",
            "--user=alice",
        ])
        .args([
            "--passwordeval=echo secret",
            "--tls=off",
            "--keep=on",
            "--only-new=off",
        ])
        .args(["--received-header=off", "-q"])
        .arg(format!("--deliver=maildir,{}", dir.display()))
        // Its own UID list: the default, ~/.mpop_uidls, is locked by any other mpop.
        .arg(format!("--uidls-file={}", dir.join("uidls").display()))
        .status()
        .expect("run mpop");
    assert!(status.success(), "mpop against port {port}: {status}");
    let got = delivered(&dir.join("new"));
    let _ = fs::remove_dir_all(&dir);
    got
}

fn fetchmail(port: u16, name: &str) -> Vec<Vec<u8>> {
    let dir = scratch(name);
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
        "poll 127.0.0.1 protocol pop3 port {port} user alice password secret no rewrite \
         mda \"{}\" fetchall keep sslproto ''\n",
        deliver.display()
    );
    fs::write(&rc, poll).unwrap();
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let status = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--invisible", "--silent"])
        .env("FETCHMAILHOME", &dir)
        .status()
        .expect("run fetchmail");
    assert!(status.success(), "fetchmail against port {port}: {status}");
    let got = delivered(&out);
    let _ = fs::remove_dir_all(&dir);
    got
}

#[test]
fn mpop_gets_the_same_mail_through_the_proxy() {
    if !installed("mpop") {
        println!("SKIPPED: mpop is not installed");
        return;
    }
    let direct = mpop(dovecot().port, "mpop-direct");
    let count = dovecot().messages("alice").len();
    assert_eq!(direct.len(), count, "alice has {count} messages");
    let relay = Proxy::for_dovecot(&[]);
    assert!(
        mpop(relay.port, "mpop-relay") == direct,
        "plain relay differs"
    );
    let filtered = Proxy::for_dovecot(&["-t", "cat"]);
    assert!(mpop(filtered.port, "mpop-cat") == direct, "-t cat differs");
}

#[test]
fn fetchmail_gets_the_same_mail_through_the_proxy() {
    if !installed("fetchmail") {
        println!("SKIPPED: fetchmail is not installed");
        return;
    }
    let direct = fetchmail(dovecot().port, "fetchmail-direct");
    let count = dovecot().messages("alice").len();
    assert_eq!(direct.len(), count, "alice has {count} messages");
    let relay = Proxy::for_dovecot(&[]);
    assert!(
        fetchmail(relay.port, "fetchmail-relay") == direct,
        "plain relay differs"
    );
    let filtered = Proxy::for_dovecot(&["-t", "cat"]);
    assert!(
        fetchmail(filtered.port, "fetchmail-cat") == direct,
        "-t cat differs"
    );
}
