//! The proxy's certificate: reloaded on SIGHUP (new handshakes get the new
//! pair, sessions in progress go on, a bad new file is logged and the pair in
//! force stays), and bad certificate or key files at start (exit status 2,
//! one line naming the file). Certificates from `common::certs()`: pairs A
//! and B come from different CAs, so which CA a client must trust tells which
//! certificate the daemon presents.

mod common;
mod tls_support;

use common::{certs, dovecot, free_port, unstuff, Proxy};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tls_support::*;

/// Waits for `n` lines containing `needle` in the proxy's log.
fn wait_log(proxy: &Proxy, needle: &str, n: usize) {
    assert!(
        eventually(Duration::from_secs(5), || proxy
            .log()
            .matches(needle)
            .count()
            >= n),
        "no {n}x {needle:?} in the log:\n{}",
        proxy.log()
    );
}

fn sighup(proxy: &Proxy) {
    // SAFETY: kill(2) on the daemon we started.
    assert_eq!(
        unsafe { libc::kill(proxy.pid() as libc::pid_t, libc::SIGHUP) },
        0
    );
}

/// A new POP3S client trusting `ca`: Ok after greeting, login and QUIT, or
/// the handshake's error.
fn pop3s_session(port: u16, ca: &Path) -> Result<(), String> {
    let mut c = Client::pop3s(port, ca).map_err(|e| e.to_string())?;
    assert!(c.line().starts_with(b"+OK"));
    c.login("alice");
    c.quit();
    Ok(())
}

fn assert_serves_cert(proxy: &Proxy, good: &Path, bad: &Path, when: &str) {
    let pop3s = proxy.pop3s_port.unwrap();
    if let Err(e) = pop3s_session(pop3s, good) {
        panic!("{when}: a client trusting the expected CA: {e}");
    }
    match pop3s_session(pop3s, bad) {
        Ok(()) => panic!("{when}: a client trusting the other CA got through"),
        Err(e) => assert!(e.contains("UnknownIssuer"), "{when}: {e}"),
    }
    // STLS on the plain port uses the same certificate.
    let mut c = Client::plain(proxy.port);
    c.line();
    let mut c = c.stls(good);
    c.login("alice");
    c.quit();
}

/// SIGHUP reloads the certificate: new handshakes get pair B, a session in
/// progress goes on; a bad key file on the next SIGHUP is logged and B stays.
#[test]
fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_bad() {
    let (a, b) = (&certs().a, &certs().b);
    let dir = scratch_dir("sighup");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::copy(&a.cert, &cert).unwrap();
    fs::copy(&a.key, &key).unwrap();
    let (port, pop3s) = (free_port().to_string(), free_port().to_string());
    let proxy = Proxy::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "--pop3s-port",
        &pop3s,
        "--tls-cert",
        &cert.display().to_string(),
        "--tls-key",
        &key.display().to_string(),
        "-P",
        &dovecot().port.to_string(),
        "127.0.0.1",
    ]);
    assert_serves_cert(&proxy, &a.ca, &b.ca, "at start");

    // A session in progress, logged in, in TLS under certificate A.
    let mut old = Client::pop3s(proxy.pop3s_port.unwrap(), &a.ca).unwrap();
    old.line();
    old.login("alice");

    fs::copy(&b.cert, &cert).unwrap();
    fs::copy(&b.key, &key).unwrap();
    sighup(&proxy);
    wait_log(&proxy, "reloaded", 1);
    assert_serves_cert(&proxy, &b.ca, &a.ca, "after SIGHUP with pair B");

    old.cmd("RETR 1");
    let body = unstuff(&old.multi());
    assert!(
        body == wire_form(&dovecot().message("alice", 1)),
        "RETR 1 in the old session: {}",
        s(&body)
    );

    // A key file that is no key: the reload fails, B stays.
    fs::write(&key, "this is not a key\n").unwrap();
    sighup(&proxy);
    let key_name = key.display().to_string();
    assert!(
        eventually(Duration::from_secs(5), || proxy
            .log()
            .lines()
            .any(|l| l.contains("SIGHUP")
                && l.contains(&key_name)
                && !l.contains("reloaded"))),
        "no log line saying the reload of {key_name} failed:\n{}",
        proxy.log()
    );
    assert_eq!(
        proxy.log().matches("reloaded").count(),
        1,
        "{}",
        proxy.log()
    );
    assert_serves_cert(&proxy, &b.ca, &a.ca, "after SIGHUP with a bad key");

    old.cmd("STAT");
    assert_eq!(s(&old.line()), dovecot().stat_line("alice"));
    old.quit();
    let _ = fs::remove_dir_all(&dir);
}

/// Runs the daemon with a certificate and key; (exit status, stderr). Fails
/// if it is still running after 5 s.
fn start_with_files(cert: &Path, key: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pop3filter"))
        .args(["-l", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-o", &free_port().to_string()])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["-P", &dovecot().port.to_string(), "127.0.0.1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the daemon runs with --tls-cert {} --tls-key {}; stderr {}",
                cert.display(),
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_refused(cert: &Path, key: &Path, named: &Path) {
    let (code, stderr) = start_with_files(cert, key);
    assert_eq!(code, Some(2), "exit status; stderr {stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    assert!(
        lines[0].contains(&named.display().to_string()),
        "the line names {}: {stderr:?}",
        named.display()
    );
}

#[test]
fn bad_certificate_or_missing_key_at_start_exits_2() {
    let a = &certs().a;
    let dir = scratch_dir("badcert");
    let garbage = dir.join("garbage.pem");
    fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let empty = dir.join("empty.pem");
    fs::write(&empty, "no PEM at all\n").unwrap();
    let missing = dir.join("missing.key");
    assert_refused(&garbage, &a.key, &garbage);
    assert_refused(&empty, &a.key, &empty);
    assert_refused(&a.cert, &missing, &missing);
    assert_refused(&a.cert, &garbage, &garbage);
    // A key that is not the certificate's.
    assert_refused(&a.cert, &certs().b.key, &a.cert);
    let _ = fs::remove_dir_all(&dir);
}
