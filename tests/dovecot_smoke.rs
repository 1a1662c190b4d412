//! Smoke tests of the test origin itself: the harness talks straight to
//! Dovecot (no proxy) and checks it serves exactly the generated mailboxes.
//! Expected values come from the maildir files, not from constants, except
//! where a test pins down Dovecot's own wording that other tests rely on.

mod common;

use common::{dovecot, hex, lf_to_crlf, sha256, start_dovecot, unstuff, wire_form, Pop3, PASSWORD};
use std::time::{Duration, Instant};

fn session(port: u16, user: &str) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login(user, PASSWORD);
    c
}

fn s(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn greeting_is_ok() {
    let mut c = Pop3::connect(dovecot().port);
    let greeting = c.greeting();
    assert!(
        greeting.starts_with(b"+OK") && greeting.ends_with(b"\r\n"),
        "{}",
        s(&greeting)
    );
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    assert_eq!(c.read_to_end(), b"", "nothing after QUIT's reply");
}

/// Failed logins are answered promptly and do not slow down later logins
/// (the config turns off Dovecot's per-IP auth penalty; see dovecot.conf.in).
#[test]
fn bad_password_does_not_delay_later_logins() {
    let d = dovecot();
    let started = Instant::now();
    for _ in 0..3 {
        let mut c = Pop3::connect(d.port);
        c.greeting();
        c.cmd("USER alice");
        assert_eq!(c.line(), b"+OK\r\n");
        c.cmd("PASS wrong");
        assert_eq!(c.line(), b"-ERR [AUTH] Authentication failed.\r\n");
    }
    session(d.port, "alice").cmd("QUIT");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(4),
        "3 failures + 1 login took {elapsed:?}"
    );
}

#[test]
fn capa_before_and_after_login() {
    let mut c = Pop3::connect(dovecot().port);
    c.greeting();
    c.cmd("CAPA");
    let before = s(&c.multi());
    for cap in [
        "\r\nUSER\r\n",
        "\r\nUIDL\r\n",
        "\r\nTOP\r\n",
        "\r\nPIPELINING\r\n",
        "\r\nSASL PLAIN LOGIN\r\n",
    ] {
        assert!(before.contains(cap), "{cap:?} missing from {before:?}");
    }
    c.login("alice", PASSWORD);
    c.cmd("CAPA");
    let after = s(&c.multi());
    assert!(
        after.contains("\r\nPIPELINING\r\n") && !after.contains("USER") && !after.contains("SASL"),
        "{after:?}"
    );
}

#[test]
fn stat_list_uidl_match_maildir() {
    let d = dovecot();
    let files = d.messages("alice");
    assert!(files.len() >= 7, "{} messages", files.len());
    let sizes: Vec<usize> = (1..=files.len())
        .map(|n| lf_to_crlf(&d.message("alice", n)).len())
        .collect();
    let mut c = session(d.port, "alice");
    c.cmd("STAT");
    assert_eq!(
        s(&c.line()),
        format!("+OK {} {}\r\n", files.len(), sizes.iter().sum::<usize>())
    );
    c.cmd("LIST");
    let mut want = format!("+OK {} messages:\r\n", files.len());
    for (n, size) in sizes.iter().enumerate() {
        want += &format!("{} {size}\r\n", n + 1);
    }
    assert_eq!(s(&c.multi()), want + ".\r\n");
    // make-mail.py pins UIDVALIDITY 1700000000 and UID n for message n.
    c.cmd("UIDL 7");
    assert_eq!(c.line(), b"+OK 7 000000076553f100\r\n");
}

#[test]
fn pipelined_commands_are_split_correctly() {
    let d = dovecot();
    let mut c = session(d.port, "alice");
    c.send(b"STAT\r\nLIST 2\r\nTOP 2 0\r\nNOOP\r\nQUIT\r\n");
    assert_eq!(s(&c.line()), d.stat_line("alice"));
    assert!(c.line().starts_with(b"+OK 2 "));
    let top = c.multi();
    assert!(
        top.ends_with(b"Message-ID: <alice-2@pop3filter.test>\r\n\r\n.\r\n"),
        "{}",
        s(&top)
    );
    assert_eq!(c.line(), b"+OK\r\n");
    assert!(c.line().starts_with(b"+OK"));
    assert_eq!(c.read_to_end(), b"");
}

#[test]
fn retr_dot_stuffs_lines_starting_with_a_dot() {
    let d = dovecot();
    let mut c = session(d.port, "alice");
    c.cmd("RETR 2");
    let raw = c.multi();
    let text = s(&raw);
    assert!(text.starts_with("+OK "), "{text}");
    for stuffed in ["\r\n..\r\n", "\r\n...\r\n", "\r\n..hola\r\n"] {
        assert!(text.contains(stuffed), "{stuffed:?} missing from {text:?}");
    }
    assert_eq!(unstuff(&raw), lf_to_crlf(&d.message("alice", 2)));
}

#[test]
fn retr_returns_every_alice_message_intact() {
    let d = dovecot();
    let mut c = session(d.port, "alice");
    for n in 1..=d.messages("alice").len() {
        let file = d.message("alice", n);
        c.cmd(&format!("RETR {n}"));
        let raw = c.multi();
        let status = format!("+OK {} octets\r\n", lf_to_crlf(&file).len());
        assert!(
            raw.starts_with(status.as_bytes()),
            "message {n}: {}",
            s(&raw[..80])
        );
        assert!(unstuff(&raw) == wire_form(&file), "message {n} differs");
    }
    // Message 5 has no final newline: the octet count excludes the CRLF
    // that Dovecot adds before the terminating dot.
    assert!(!d.message("alice", 5).ends_with(b"\n"));
}

#[test]
fn bench_sizes_match_maildir() {
    let d = dovecot();
    let mut c = session(d.port, "bench");
    c.cmd("LIST");
    let mut want = "+OK 3 messages:\r\n".to_string();
    for n in 1..=3 {
        want += &format!("{n} {}\r\n", lf_to_crlf(&d.message("bench", n)).len());
    }
    assert_eq!(s(&c.multi()), want + ".\r\n");
    let sizes: Vec<usize> = (1..=3).map(|n| d.message("bench", n).len()).collect();
    assert_eq!(sizes, [1024, 1024 * 1024, 20 * 1024 * 1024], "file sizes");
}

#[test]
fn big_message_arrives_whole() {
    let d = dovecot();
    let file = d.message("big", 1);
    assert!(file.len() > 20 * 1024 * 1024);
    let want = lf_to_crlf(&file);
    let mut c = session(d.port, "big");
    c.cmd("LIST 1");
    assert_eq!(s(&c.line()), format!("+OK 1 {}\r\n", want.len()));
    let started = Instant::now();
    c.cmd("RETR 1");
    let got = unstuff(&c.multi());
    eprintln!("RETR of {} bytes took {:?}", got.len(), started.elapsed());
    assert_eq!(got.len(), want.len());
    assert_eq!(hex(&sha256(&got)), hex(&sha256(&want)));
}

#[test]
fn empty_mailbox() {
    let mut c = session(dovecot().port, "empty");
    c.cmd("STAT");
    assert_eq!(c.line(), b"+OK 0 0\r\n");
    c.cmd("LIST");
    assert_eq!(c.multi(), b"+OK 0 messages:\r\n.\r\n");
    c.cmd("RETR 1");
    assert!(c.line().starts_with(b"-ERR"));
}

/// A private instance runs next to the shared one, and DELE+QUIT on it
/// leaves the shared instance (and the generated mail cache) untouched.
#[test]
fn private_instance_is_isolated() {
    let shared = dovecot();
    let private = start_dovecot();
    assert_ne!(private.port, shared.port);
    let count = shared.messages("alice").len();
    let mut c = session(private.port, "alice");
    c.cmd("DELE 1");
    assert!(c.line().starts_with(b"+OK"));
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    assert_eq!(c.read_to_end(), b"");
    assert_eq!(private.messages("alice").len(), count - 1);

    let mut c = session(private.port, "alice");
    c.cmd("STAT");
    let stat = s(&c.line());
    assert_eq!(stat, private.stat_line("alice"));
    assert!(stat.starts_with(&format!("+OK {} ", count - 1)), "{stat}");
    let mut c = session(shared.port, "alice");
    c.cmd("STAT");
    assert_eq!(s(&c.line()), shared.stat_line("alice"));
    assert_eq!(shared.messages("alice").len(), count);
}
