//! The censor (`-M`) managed at run time and accounted for: SPCP through `spcpctl`, and the
//! access log, against the real Dovecot and user `mime` (see `tests/censor.rs`).
//!
//! Proves: a daemon started without `-M` censors nothing until `spcpctl set-censor 'image/*'`,
//! and then censors the next RETR of the session already open (and of a new one) exactly as
//! `-M 'image/*'` does; `spcpctl censor` and `stats` show the list, the note and the counters,
//! which go up by the parts and messages censored (TOP included); `set-censor ''` turns it
//! off; `set-censor 'image/'` exits 5 and changes nothing; `set-censor-note 'Gone.'` makes the
//! next note `Gone.` (in the open session too), a two-line note is two paragraphs, and
//! `set-censor-note ''` restores the default. Each session's closing log line counts its censored parts, messages and
//! problems (a TOP cut inside a multipart is one problem, logged).

mod censor_support;
mod common;

use censor_support::{
    censored_in, check, default_note, find, retr_all, session, summary, text, Scratch, IMAGES,
    LEAVES, USER,
};
use common::{dovecot, unstuff, Proxy};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

const COUNT: usize = LEAVES.len();
const CREDS: &str = "admin:s3cr3t";

/// A daemon with management user admin / s3cr3t, its management listener up.
fn managed(extra: &[&str]) -> Proxy {
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

fn spcpctl(port: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spcpctl"))
        .args(["-o", &port.to_string(), "-u", CREDS])
        .args(args)
        .env_remove("SPCP_USER")
        .env_remove("SPCP_PASS")
        .output()
        .expect("run spcpctl")
}

/// `spcpctl ARGS`, which must succeed with nothing on stderr: its stdout.
fn ctl(port: u16, args: &[&str]) -> String {
    let out = spcpctl(port, args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "spcpctl {args:?}: {:?}, stderr {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn censor_report(types: &str, note: &str, counts: (usize, usize, usize)) -> String {
    format!(
        "censored types: {types}\ncensor note: {note}\ncensored (parts messages problems): \
         {} {} {}\n",
        counts.0, counts.1, counts.2
    )
}

/// (parts, messages) censored by `censored` in messages `ns`.
fn counted(ns: &[usize], censored: &[&str]) -> (usize, usize) {
    ns.iter()
        .map(|&n| censored_in(n, censored))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

fn retr(c: &mut common::Pop3, n: usize) -> Vec<u8> {
    c.cmd(&format!("RETR {n}"));
    unstuff(&c.multi())
}

#[test]
fn spcpctl_turns_the_censor_on_and_off_in_an_open_session() {
    let direct = retr_all(dovecot().port, USER, COUNT);
    let reference = Proxy::for_dovecot(&["-M", "image/*"]);
    let images = retr_all(reference.port, USER, COUNT);
    assert!(images[0] != direct[0], "-M image/* censors message 1");

    let proxy = managed(&[]);
    let p = proxy.mgmt_port;
    assert_eq!(ctl(p, &["censor"]), censor_report("", "", (0, 0, 0)));
    let mut a = session(proxy.port, USER);
    assert!(retr(&mut a, 1) == direct[0], "no -M: unchanged");

    assert_eq!(ctl(p, &["set-censor", "image/*"]), "ok\n");
    assert_eq!(ctl(p, &["censor"]), censor_report("image/*", "", (0, 0, 0)));
    assert_eq!(
        text(&retr(&mut a, 1)),
        text(&images[0]),
        "same session, RETR 1"
    );
    a.cmd("TOP 3 1000");
    assert_eq!(
        text(&unstuff(&a.multi())),
        text(&images[2]),
        "same session, TOP 3"
    );
    let mut b = session(proxy.port, USER);
    for n in [2, 4, 7] {
        assert_eq!(
            text(&retr(&mut b, n)),
            text(&images[n - 1]),
            "new session, RETR {n}"
        );
    }
    let (parts, messages) = counted(&[1, 3, 2, 4, 7], IMAGES);
    assert_eq!((parts, messages), (7, 4));
    assert_eq!(
        ctl(p, &["censor"]),
        censor_report("image/*", "", (parts, messages, 0))
    );
    let stats = ctl(p, &["stats"]);
    assert!(
        stats.ends_with(&format!(
            "\ntransformation: \n{}",
            censor_report("image/*", "", (7, 4, 0))
        )),
        "{stats:?}"
    );

    assert_eq!(ctl(p, &["set-censor", ""]), "ok\n");
    assert!(
        retr(&mut a, 1) == direct[0],
        "set-censor '': unchanged again"
    );
    assert_eq!(ctl(p, &["censor"]), censor_report("", "", (7, 4, 0)));

    assert_eq!(ctl(p, &["set-censor", "image/png"]), "ok\n");
    let refused = spcpctl(p, &["set-censor", "image/"]);
    assert_eq!(refused.status.code(), Some(5), "set-censor 'image/'");
    assert!(refused.stdout.is_empty(), "{}", text(&refused.stdout));
    assert_eq!(
        text(&refused.stderr),
        "spcpctl: set-censor: invalid arguments\n"
    );
    assert_eq!(
        ctl(p, &["censor"]),
        censor_report("image/png", "", (7, 4, 0))
    );

    assert_eq!(ctl(p, &["set-censor-note", "Gone."]), "ok\n");
    assert_eq!(
        ctl(p, &["censor"]),
        censor_report("image/png", "Gone.", (7, 4, 0))
    );
    let m5 = retr(&mut a, 5);
    let gone = b"Content-Transfer-Encoding: 7bit\r\n\r\nGone.\r\n--eol-5\r\n";
    assert!(find(&m5, gone).is_some(), "same session: {}", text(&m5));
    // A new session through every message: only PNGs, each now "Gone.".
    let scratch = Scratch::new("spcp");
    let got = retr_all(proxy.port, USER, COUNT);
    let (direct_dir, got_dir) = (scratch.with("direct", &direct), scratch.with("got", &got));
    let pngs = &["image/png"];
    assert_eq!(
        check(&direct_dir, &got_dir, pngs, &["Gone."]),
        summary(pngs)
    );
    let (more_parts, more_messages) = counted(&[5, 1, 2, 3, 4, 5, 6, 7], pngs);
    assert_eq!(
        ctl(p, &["censor"]),
        censor_report("image/png", "Gone.", (7 + more_parts, 4 + more_messages, 0))
    );

    // Two paragraphs (one a line), then back to the default note.
    assert_eq!(ctl(p, &["set-censor-note", "One: %s.\nTwo."]), "ok\n");
    assert!(
        ctl(p, &["censor"]).contains("\ncensor note: One: %s.\n    Two.\n"),
        "the note's paragraphs, one a line"
    );
    let two = b"7bit\r\n\r\nOne: image/png.\r\n\r\nTwo.\r\n--eol-5\r\n";
    let m5 = retr(&mut a, 5);
    assert!(find(&m5, two).is_some(), "{}", text(&m5));
    assert_eq!(ctl(p, &["set-censor-note", ""]), "ok\n");
    assert!(ctl(p, &["censor"]).contains("\ncensor note: \n"));
    let m5 = retr(&mut a, 5);
    let default = format!("7bit\r\n\r\n{}--eol-5\r\n", default_note("image/png"));
    assert!(find(&m5, default.as_bytes()).is_some(), "{}", text(&m5));
}

/// The closing log line of session `serial`, once it is there.
fn session_line(proxy: &Proxy, serial: u32) -> String {
    let prefix = format!("session {serial}: client ");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = proxy.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains(&prefix) && l.contains(" censored parts "))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no closing line for session {serial}:\n{log}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_access_log_counts_what_each_session_censored() {
    let proxy = Proxy::for_dovecot(&["-M", "image/*"]);
    let mut c = session(proxy.port, USER);
    for command in ["RETR 1", "RETR 2", "TOP 3 1000", "RETR 7", "TOP 4 0"] {
        c.cmd(command);
        assert!(c.multi().starts_with(b"+OK"), "{command}");
    }
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    let (parts, messages) = counted(&[1, 2, 3, 7, 4], IMAGES);
    assert_eq!((parts, messages), (7, 4));
    let line = session_line(&proxy, 1);
    assert!(
        line.contains(" user mime commands 8 ")
            && line.ends_with(" censored parts 7 messages 4 problems 0: quit"),
        "{line}"
    );

    // TOP 1 20 stops inside the PNG part: the multipart has no close delimiter.
    let mut c = session(proxy.port, USER);
    c.cmd("TOP 1 20");
    let top = unstuff(&c.multi());
    let mut d = session(dovecot().port, USER);
    d.cmd("TOP 1 20");
    let head = unstuff(&d.multi());
    let png = find(&head, b"--mix-1\r\nContent-Type: image/png;").unwrap() + 9;
    let want = format!(
        "{}Content-ID: <png-1@pop3filter.test>\r\nContent-Type: text/plain\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n{}",
        text(&head[..png]),
        default_note("image/png")
    );
    assert_eq!(text(&top), want, "TOP 1 20 through -M image/*");
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    let line = session_line(&proxy, 2);
    assert!(
        line.ends_with(" censored parts 1 messages 1 problems 1: quit"),
        "{line}"
    );
    let log = proxy.log();
    assert!(
        log.lines()
            .any(|l| l.contains("session 2: censor passed through: ")
                && l.contains("close delimiter")),
        "{log}"
    );

    // Nothing censored: zeros.
    let none = Proxy::for_dovecot(&["-M", "video/*"]);
    let got = retr_all(none.port, USER, COUNT);
    assert!(
        got == retr_all(dovecot().port, USER, COUNT),
        "video/* changed mail"
    );
    let line = session_line(&none, 1);
    assert!(
        line.ends_with(" censored parts 0 messages 0 problems 0: quit"),
        "{line}"
    );
}
