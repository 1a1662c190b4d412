//! spcpctl, the SPCP command-line client (docs/spcpctl.1), run as a process against a real
//! daemon in front of Dovecot.
//!
//! Proves: `connections`, `bytes`, `accesses` and `transformation` print the bare value and
//! follow real POP3 traffic; `stats` prints the four as `name: value` lines; the setters print
//! `ok` and take effect (`set-timeout 2.5` ends an idle session after about 2.5 s); `-n 2 watch`
//! prints a header and two data lines; credentials come from `-u`, `-U FILE` (after a `#`
//! comment) or SPCP_USER/SPCP_PASS; exit status 3 for a wrong password, 5 for `set-buffer 100`,
//! 1 when nothing listens, 2 for usage errors, each error described on one `spcpctl:` line of
//! stderr (usage errors then print the usage); `-h` lists every command.

mod common;

use common::{free_port, Pop3, Proxy, PASSWORD};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

const CREDS: &str = "admin:s3cr3t";

/// A daemon with management user admin / s3cr3t, its management listener up.
fn proxy(extra: &[&str]) -> Proxy {
    let mut args = vec!["-u", CREDS];
    args.extend_from_slice(extra);
    let proxy = Proxy::for_dovecot(&args);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", proxy.mgmt_port)).is_err() {
        assert!(Instant::now() < deadline, "management listener not up");
        thread::sleep(Duration::from_millis(20));
    }
    proxy
}

/// Runs `spcpctl -o PORT ARGS` with only the SPCP_* variables of `env`.
fn run(port: u16, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spcpctl"));
    cmd.arg("-o").arg(port.to_string()).args(args);
    cmd.env_remove("SPCP_USER").env_remove("SPCP_PASS");
    cmd.envs(env.iter().copied());
    cmd.output().expect("run spcpctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `spcpctl -u admin:s3cr3t ARGS`, which must succeed: its stdout.
fn ctl(port: u16, args: &[&str]) -> String {
    let mut all = vec!["-u", CREDS];
    all.extend_from_slice(args);
    let out = run(port, &all, &[]);
    assert!(
        out.status.success(),
        "spcpctl {args:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "", "spcpctl {args:?}: stderr");
    text(&out.stdout)
}

fn pop3(port: u16) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login("alice", PASSWORD);
    c
}

/// Asserts the exit status and the one-line error on stderr; returns that line.
fn fails(out: Output, code: i32, what: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: stdout {stdout:?} stderr {stderr:?}"
    );
    assert_eq!(stdout, "", "{what}: nothing on stdout");
    let mut lines = stderr.lines();
    let first = lines.next().unwrap_or_default().to_string();
    assert!(first.starts_with("spcpctl: "), "{what}: stderr {stderr:?}");
    let rest: Vec<&str> = lines.collect();
    match code {
        // A usage error is followed by the usage, as with pop3filter itself.
        2 => assert!(
            rest.first().is_some_and(|l| l.starts_with("Usage:")),
            "{what}: {stderr:?}"
        ),
        _ => assert!(
            rest.is_empty(),
            "{what}: more than one line on stderr: {stderr:?}"
        ),
    }
    first
}

#[test]
fn metrics_and_stats() {
    let proxy = proxy(&[]);
    let p = proxy.mgmt_port;
    assert_eq!(ctl(p, &["connections"]), "0\n");
    assert_eq!(ctl(p, &["accesses"]), "0\n");
    assert_eq!(ctl(p, &["bytes"]), "0\n");
    assert_eq!(ctl(p, &["transformation"]), "\n", "none: an empty line");
    assert_eq!(
        ctl(p, &["stats"]),
        "connections: 0\nbytes: 0\naccesses: 0\ntransformation: \ncensored types: \ncensor note: \ncensored (parts messages problems): 0 0 0\n"
    );

    let mut session = pop3(proxy.port);
    session.cmd("RETR 1");
    let reply = session.multi();
    assert_eq!(ctl(p, &["connections"]), "1\n");
    assert_eq!(ctl(p, &["accesses"]), "1\n");
    let bytes: u64 = ctl(p, &["bytes"]).trim().parse().unwrap();
    assert!(
        bytes >= reply.len() as u64,
        "bytes {bytes} < RETR reply {}",
        reply.len()
    );
    let stats = ctl(p, &["stats"]);
    let lines: Vec<&str> = stats.lines().collect();
    assert_eq!(lines.len(), 7, "{stats:?}");
    assert_eq!(lines[0], "connections: 1");
    let b: u64 = lines[1].strip_prefix("bytes: ").unwrap().parse().unwrap();
    assert!(b >= bytes, "{stats:?}");
    assert_eq!(
        &lines[2..],
        [
            "accesses: 1",
            "transformation: ",
            "censored types: ",
            "censor note: ",
            "censored (parts messages problems): 0 0 0"
        ]
    );
}

#[test]
fn setters_print_ok_and_take_effect() {
    let proxy = proxy(&["-t", "cat"]);
    let p = proxy.mgmt_port;
    assert_eq!(ctl(p, &["transformation"]), "cat\n");
    assert_eq!(ctl(p, &["set-buffer", "4096"]), "ok\n");
    assert_eq!(ctl(p, &["set-transformation", ""]), "ok\n");
    assert_eq!(ctl(p, &["transformation"]), "\n");
    assert_eq!(ctl(p, &["set-transformation", "grep -v '^Date:'"]), "ok\n");
    assert_eq!(ctl(p, &["transformation"]), "grep -v '^Date:'\n");
    assert!(ctl(p, &["stats"]).contains("\ntransformation: grep -v '^Date:'\n"));

    assert_eq!(ctl(p, &["set-timeout", "2.5"]), "ok\n");
    let mut idle = pop3(proxy.port);
    let started = Instant::now();
    assert_eq!(idle.line(), b"-ERR Disconnected for inactivity\r\n");
    let t = started.elapsed().as_secs_f64();
    assert!(
        (2.0..5.0).contains(&t),
        "idle session closed after {t:.2} s (timeout 2.5 s)"
    );
}

#[test]
fn watch_prints_a_header_and_count_lines() {
    let proxy = proxy(&["-t", "cat"]);
    let _session = pop3(proxy.port);
    let started = Instant::now();
    let out = ctl(proxy.mgmt_port, &["-n", "2", "watch"]);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "one refresh a second"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "connections",
            "bytes",
            "accesses",
            "bytes/s",
            "accesses/s",
            "transformation"
        ]
    );
    for line in &lines[1..] {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 6, "{line:?}");
        assert_eq!((f[0], f[2], f[5]), ("1", "1", "cat"), "{line:?}");
        assert!(f[1].parse::<u64>().unwrap() > 0, "{line:?}");
        assert!(
            f[3].parse::<f64>().is_ok() && f[4].parse::<f64>().is_ok(),
            "{line:?}"
        );
    }
}

#[test]
fn credentials_from_option_file_and_environment() {
    let proxy = proxy(&[]);
    let p = proxy.mgmt_port;
    let file = std::env::temp_dir().join(format!("spcpctl-test-creds-{}", std::process::id()));
    std::fs::write(&file, "# the operator\n\nadmin:s3cr3t\n").unwrap();
    let by_file = run(p, &["-U", file.to_str().unwrap(), "connections"], &[]);
    std::fs::remove_file(&file).unwrap();
    assert!(by_file.status.success(), "-U: {}", text(&by_file.stderr));
    assert_eq!(text(&by_file.stdout), "0\n");

    let env = [("SPCP_USER", "admin"), ("SPCP_PASS", "s3cr3t")];
    let by_env = run(p, &["accesses"], &env);
    assert!(by_env.status.success(), "env: {}", text(&by_env.stderr));
    assert_eq!(text(&by_env.stdout), "0\n");

    let wrong_env = [("SPCP_USER", "admin"), ("SPCP_PASS", "nope")];
    fails(
        run(p, &["accesses"], &wrong_env),
        3,
        "wrong password from the environment",
    );
    let both = run(p, &["-u", CREDS, "-U", "/dev/null", "bytes"], &[]);
    fails(both, 2, "-u and -U together");
}

#[test]
fn exit_statuses_and_error_lines() {
    let proxy = proxy(&[]);
    let p = proxy.mgmt_port;
    let line = fails(
        run(free_port(), &["-u", CREDS, "stats"], &[]),
        1,
        "no daemon",
    );
    assert!(line.contains("cannot connect"), "{line:?}");
    for (code, says, args) in [
        (3, "authentication failed", "-u admin:wrong connections"),
        (3, "authentication failed", "-u nobody:s3cr3t bytes"),
        (5, "invalid arguments", "-u admin:s3cr3t set-buffer 100"),
        (5, "invalid arguments", "-u admin:s3cr3t set-timeout 0"),
        (
            2,
            "unknown command 'frobnicate'",
            "-u admin:s3cr3t frobnicate",
        ),
        (2, "no credentials", "connections"),
        (2, "missing command", "-u admin:s3cr3t"),
        (2, "invalid buffer size", "-u admin:s3cr3t set-buffer 70000"),
        (2, "invalid timeout", "-u admin:s3cr3t set-timeout 1.2345"),
        (2, "takes no argument", "-u admin:s3cr3t bytes extra"),
    ] {
        let line = fails(
            run(p, &args.split(' ').collect::<Vec<_>>(), &[]),
            code,
            args,
        );
        assert!(
            line.contains(says),
            "{args}: {line:?} does not say {says:?}"
        );
    }
    // None of this reached the daemon's metrics or settings.
    let stats = ctl(p, &["stats"]);
    assert_eq!(
        stats,
        "connections: 0\nbytes: 0\naccesses: 0\ntransformation: \ncensored types: \ncensor note: \ncensored (parts messages problems): 0 0 0\n"
    );
}

#[test]
fn help_lists_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_spcpctl"))
        .arg("-h")
        .output()
        .unwrap();
    assert!(out.status.success());
    let long = Command::new(env!("CARGO_BIN_EXE_spcpctl"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(long, out, "--help is -h");
    let help = text(&out.stdout);
    for command in [
        "connections",
        "bytes",
        "accesses",
        "transformation",
        "stats",
        "set-buffer",
        "set-transformation",
        "set-timeout",
        "watch",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "-h does not list {command}:\n{help}"
        );
    }
    for option in ["-L", "-o", "-u", "-U", "-n", "SPCP_USER", "SPCP_PASS"] {
        assert!(help.contains(option), "-h does not mention {option}");
    }
}
