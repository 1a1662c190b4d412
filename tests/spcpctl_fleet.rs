//! spcpctl with several daemons (issue 12: `-H HOST:PORT` repeated, or `-L`/`-o` repeated),
//! run as a process against two real daemons in front of Dovecot.
//!
//! Proves: `stats` prints each daemon's seven lines prefixed with its address, then `total`
//! lines that add up the counters (connections, bytes, accesses, the censor's three) and
//! nothing for the text values; `connections` prints one line a daemon and `total`; `-o`
//! repeated reaches the same daemons as `-H`; `set-*` goes to every daemon (`ADDR ok` each,
//! and it takes effect on each); failures are reported one line each with the daemon's
//! address, the others still answer, the totals say how many daemons they count, and the exit
//! status is the highest of the failures' (3 for a wrong password beside 1 for no daemon; 5
//! when every daemon refuses the argument); `watch` and mixing `-H` with `-o` are usage errors.

mod common;

use common::{free_port, Pop3, Proxy, PASSWORD};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

const CREDS: &str = "admin:s3cr3t";

/// A daemon with management user `creds`, its management listener up.
fn proxy(creds: &str) -> Proxy {
    let proxy = Proxy::for_dovecot(&["-u", creds]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", proxy.mgmt_port)).is_err() {
        assert!(Instant::now() < deadline, "management listener not up");
        thread::sleep(Duration::from_millis(20));
    }
    proxy
}

fn spcpctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spcpctl"))
        .args(args)
        .env_remove("SPCP_USER")
        .env_remove("SPCP_PASS")
        .output()
        .expect("run spcpctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `spcpctl -u admin:s3cr3t -H 127.0.0.1:P... ARGS`, which must succeed: its stdout.
fn ctl(ports: &[u16], args: &[&str]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut all = vec!["-u", CREDS];
    for h in &hosts {
        all.extend(["-H", h.as_str()]);
    }
    all.extend_from_slice(args);
    let out = spcpctl(&all);
    assert!(
        out.status.success(),
        "spcpctl {all:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "", "spcpctl {all:?}: stderr");
    text(&out.stdout)
}

/// A session logged in, kept open.
fn session(port: u16) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login("alice", PASSWORD);
    c
}

/// The value of the `name: value` line prefixed `prefix` in `out`.
fn value<'a>(out: &'a str, prefix: &str, name: &str) -> &'a str {
    let head = format!("{prefix} {name}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&head))
        .unwrap_or_else(|| panic!("no {head:?} line in:\n{out}"))
}

#[test]
fn stats_shows_each_daemon_and_the_sum() {
    let (a, b) = (proxy(CREDS), proxy(CREDS));
    let (la, lb) = (
        format!("127.0.0.1:{}", a.mgmt_port),
        format!("127.0.0.1:{}", b.mgmt_port),
    );
    let _one = session(a.port);
    let mut two = session(b.port);
    two.cmd("RETR 1");
    two.multi();
    let _three = session(b.port);

    let out = ctl(&[a.mgmt_port, b.mgmt_port], &["stats"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7 + 7 + 4, "{out}");
    assert!(
        lines[..7].iter().all(|l| l.starts_with(&format!("{la} "))),
        "{out}"
    );
    assert!(
        lines[7..14]
            .iter()
            .all(|l| l.starts_with(&format!("{lb} "))),
        "{out}"
    );
    assert_eq!(value(&out, &la, "connections"), "1");
    assert_eq!(value(&out, &lb, "connections"), "2");
    assert_eq!(value(&out, &la, "accesses"), "1");
    assert_eq!(value(&out, &lb, "transformation"), "");
    let bytes = |l: &str| value(&out, l, "bytes").parse::<u64>().unwrap();
    let (ba, bb) = (bytes(&la), bytes(&lb));
    assert!(bb > ba, "b relayed a RETR: {out}");
    assert_eq!(
        &lines[14..],
        [
            "total connections: 3".to_string(),
            format!("total bytes: {}", ba + bb),
            "total accesses: 3".to_string(),
            "total censored (parts messages problems): 0 0 0".to_string(),
        ]
    );

    // One value a line, then the total; the same daemons through -o repeated.
    let out = spcpctl(&[
        "-u",
        CREDS,
        "-o",
        &a.mgmt_port.to_string(),
        "-o",
        &b.mgmt_port.to_string(),
        "connections",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{la} 1\n{lb} 2\ntotal 3\n"));
    // Text values have no total.
    assert_eq!(
        ctl(&[a.mgmt_port, b.mgmt_port], &["transformation"]),
        format!("{la} \n{lb} \n")
    );
}

#[test]
fn set_commands_go_to_every_daemon() {
    let (a, b) = (proxy(CREDS), proxy(CREDS));
    let (la, lb) = (
        format!("127.0.0.1:{}", a.mgmt_port),
        format!("127.0.0.1:{}", b.mgmt_port),
    );
    let both = [a.mgmt_port, b.mgmt_port];
    assert_eq!(
        ctl(&both, &["set-transformation", "cat"]),
        format!("{la} ok\n{lb} ok\n")
    );
    assert_eq!(
        ctl(&both, &["transformation"]),
        format!("{la} cat\n{lb} cat\n")
    );
    assert_eq!(
        ctl(&both, &["set-censor", "image/*"]),
        format!("{la} ok\n{lb} ok\n")
    );
    assert!(ctl(&[b.mgmt_port], &["censor"]).starts_with("censored types: image/*\n"));

    // Refused by both: status 5, one line each.
    let out = spcpctl(&["-u", CREDS, "-H", &la, "-H", &lb, "set-buffer", "100"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "spcpctl: {la}: set-buffer: invalid arguments\n\
             spcpctl: {lb}: set-buffer: invalid arguments\n"
        )
    );
}

#[test]
fn failures_name_their_daemon_and_the_worst_status_wins() {
    let a = proxy(CREDS);
    let other = proxy("admin:other");
    let la = format!("127.0.0.1:{}", a.mgmt_port);
    let lo = format!("127.0.0.1:{}", other.mgmt_port);
    let nobody = format!("127.0.0.1:{}", free_port());
    let _s = session(a.port);

    let out = spcpctl(&[
        "-u",
        CREDS,
        "-H",
        &nobody,
        "-H",
        &la,
        "-H",
        &lo,
        "set-timeout",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{la} ok\n"));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("spcpctl: {nobody}: cannot connect: ")),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        format!("spcpctl: {lo}: login: authentication failed")
    );

    // What answered is shown, and the totals say what they count.
    let out = spcpctl(&["-u", CREDS, "-H", &la, "-H", &nobody, "stats"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(value(&stdout, &la, "connections"), "1");
    assert!(stdout.contains("\ntotal connections: 1\n"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("spcpctl: {nobody}: cannot connect: ")),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("spcpctl: the totals count 1 of 2 daemons\n"),
        "{stderr}"
    );

    for (args, says) in [
        (
            vec!["-H", la.as_str(), "-H", lo.as_str(), "watch"],
            "watch takes one daemon",
        ),
        (
            vec!["-H", la.as_str(), "-o", "9090", "stats"],
            "give -H, or -L and -o",
        ),
        (vec!["-H", "localhost:0", "stats"], "invalid -H"),
        (
            vec![
                "-L",
                "127.0.0.1",
                "-L",
                "::1",
                "-o",
                "1",
                "-o",
                "2",
                "-o",
                "3",
                "stats",
            ],
            "give each once",
        ),
    ] {
        let mut all = vec!["-u", CREDS];
        all.extend(args.iter().copied());
        let out = spcpctl(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("spcpctl: ") && stderr.lines().next().unwrap().contains(says),
            "{all:?}: {stderr}"
        );
    }
}

#[test]
fn help_mentions_several_daemons() {
    let out = spcpctl(&["-h"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for says in ["-H HOST:PORT", "Several daemons", "total", "highest status"] {
        assert!(help.contains(says), "-h does not say {says:?}:\n{help}");
    }
}
