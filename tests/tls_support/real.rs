//! Real mail clients (curl, openssl s_client, Python's poplib, mpop,
//! fetchmail) driven as subprocesses, and what the mail they fetch should be.

use super::{s, scratch_dir};
use crate::common::{dovecot, wire_form, PASSWORD};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;

// Mail as clients see it

/// Every message of alice, as a client gets it (unstuffed).
pub fn alice_wire() -> Vec<Vec<u8>> {
    let d = dovecot();
    (1..=d.messages("alice").len())
        .map(|n| wire_form(&d.message("alice", n)))
        .collect()
}

/// Cuts a stream of replies into replies; `multi[i]` says whether reply `i`
/// is multi-line (when it is `+OK`). Panics if bytes are missing or left.
pub fn split_replies(mut data: &[u8], multi: &[bool]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, &m) in multi.iter().enumerate() {
        let line_end = |d: &[u8]| d.iter().position(|&b| b == b'\n').map(|p| p + 1);
        let Some(first) = line_end(data) else {
            panic!("reply {i} missing; left {:?}", s(data))
        };
        let mut len = first;
        if m && data.starts_with(b"+OK") {
            loop {
                let Some(n) = line_end(&data[len..]) else {
                    panic!("reply {i} cut after {len} bytes: {:?}", s(&data[..len]))
                };
                len += n;
                if &data[len - n..len] == b".\r\n" {
                    break;
                }
            }
        }
        out.push(data[..len].to_vec());
        data = &data[len..];
    }
    assert!(data.is_empty(), "bytes after the last reply: {:?}", s(data));
    out
}

// Real clients

/// Runs `program`, feeding `input`, with a deadline of 120 s; None (after
/// saying why) if it is not installed.
pub fn run(program: &str, args: &[String], input: &[u8]) -> Option<Output> {
    let mut cmd = Command::new("timeout");
    cmd.arg("120").arg(program).args(args);
    if !installed(program) {
        eprintln!("SKIPPED: {program} is not installed");
        return None;
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {program}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Some(out)
}

pub fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn fail(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}; stdout {:?}; stderr {}",
        out.status,
        s(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// curl with `args` (plus -s and a time limit); stdout, asserting success.
pub fn curl(args: &[&str]) -> Option<Vec<u8>> {
    let mut all: Vec<String> = vec!["-s".into(), "-S".into(), "--max-time".into(), "60".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run("curl", &all, b"")?;
    assert!(
        out.status.success(),
        "{}",
        fail(&format!("curl {args:?}"), &out)
    );
    Some(out.stdout)
}

/// curl with `args`; the whole output, success or not.
pub fn curl_output(args: &[&str]) -> Option<Output> {
    let mut all: Vec<String> = vec!["-s".into(), "-S".into(), "--max-time".into(), "30".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    run("curl", &all, b"")
}

/// `openssl s_client -quiet` with `args`, `input` on stdin: what the server
/// sent after the handshake (stdout), asserting success.
pub fn s_client(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut all: Vec<String> = vec![
        "s_client".into(),
        "-quiet".into(),
        "-verify_return_error".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run("openssl", &all, input)?;
    assert!(
        out.status.success(),
        "{}",
        fail(&format!("openssl s_client {args:?}"), &out)
    );
    Some(out.stdout)
}

/// tests/clients/poplib_fetch.py: `mode` is plain, ssl or stls (the last two
/// verify against `ca`). Its stdout, asserting success.
pub fn poplib(port: u16, mode: &str, ca: &Path) -> Option<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/poplib_fetch.py");
    let args = [
        script.display().to_string(),
        port.to_string(),
        "alice".into(),
        PASSWORD.into(),
        mode.into(),
        ca.display().to_string(),
    ];
    let out = run("python3", &args, b"")?;
    assert!(
        out.status.success(),
        "{}",
        fail(&format!("poplib {mode} on port {port}"), &out)
    );
    Some(out.stdout)
}

/// What `poplib_fetch.py` prints for alice's mailbox.
pub fn poplib_want() -> Vec<u8> {
    let msgs = alice_wire();
    let mut want = format!("COUNT {}\n", msgs.len()).into_bytes();
    for (i, body) in msgs.iter().enumerate() {
        want.extend(format!("MSG {} {}\n", i + 1, body.len()).bytes());
        want.extend(body);
    }
    want
}

/// Every file under `dir`, contents sorted.
fn delivered(dir: &Path) -> Vec<Vec<u8>> {
    let mut all: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .collect();
    all.sort();
    all
}

/// mpop fetching alice's mail from `port` with `tls_args` (e.g.
/// `--tls=off`); the delivered messages, sorted.
pub fn mpop(port: u16, tls_args: &[&str]) -> Option<Vec<Vec<u8>>> {
    let dir = scratch_dir("mpop");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let mut args: Vec<String> = [
        "--host=127.0.0.1".to_string(),
        format!("--port={port}"),
        "--auth=user".into(),
        "--user=alice".into(),
        format!("--passwordeval=echo {PASSWORD}"),
        "--keep=on".into(),
        "--only-new=off".into(),
        "--received-header=off".into(),
        "--timeout=30".into(),
        format!("--uidls-file={}", dir.join("uidls").display()),
        format!("--deliver=maildir,{}", dir.display()),
    ]
    .to_vec();
    args.extend(tls_args.iter().map(|a| a.to_string()));
    let out = run("mpop", &args, b"")?;
    assert!(
        out.status.success(),
        "{}",
        fail(&format!("mpop {tls_args:?} on port {port}"), &out)
    );
    let got = delivered(&dir.join("new"));
    let _ = fs::remove_dir_all(&dir);
    Some(got)
}

/// fetchmail fetching alice's mail from `port`; `options` go into the poll
/// line of the rc file (e.g. `ssl sslcertck sslcertfile FILE`). The
/// delivered messages, sorted.
pub fn fetchmail(port: u16, options: &str) -> Option<Vec<Vec<u8>>> {
    if !installed("fetchmail") {
        eprintln!("SKIPPED: fetchmail is not installed");
        return None;
    }
    let dir = scratch_dir("fetchmail");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let deliver = dir.join("deliver.sh");
    let script = format!(
        "#!/bin/sh\nn=$(ls {0} | wc -l)\ncat > {0}/msg.$n\n",
        out_dir.display()
    );
    fs::write(&deliver, script).unwrap();
    fs::set_permissions(&deliver, fs::Permissions::from_mode(0o755)).unwrap();
    let rc = dir.join("fetchmailrc");
    let poll = format!(
        "poll 127.0.0.1 protocol pop3 port {port} timeout 30 user alice password {PASSWORD} \
         no rewrite mda \"{}\" fetchall keep {options}\n",
        deliver.display()
    );
    fs::write(&rc, poll).unwrap();
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--invisible", "--silent"])
        .env("FETCHMAILHOME", &dir)
        .stdin(Stdio::null())
        .output()
        .expect("run fetchmail");
    assert!(
        out.status.success(),
        "{}",
        fail(&format!("fetchmail ({options}) on port {port}"), &out)
    );
    let got = delivered(&out_dir);
    let _ = fs::remove_dir_all(&dir);
    Some(got)
}
