//! Large messages and real POP3 clients through pop3filter.
//!
//! Proves that the 20 MiB message arrives through the proxy with the same
//! SHA-256 as straight from Dovecot and as its maildir file; that curl and
//! Python's poplib fetch every alice message through the proxy byte for byte
//! as they do directly (and as the maildir files say); and that a client that
//! vanishes in the middle of a 20 MiB RETR does not disturb the proxy: the
//! next client gets a full, exact session and the mailbox is unchanged.

mod common;

use common::{dovecot, excerpt, hex, sha256, unstuff, wire_form, Pop3, Proxy, PASSWORD};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Instant;

fn session(port: u16, user: &str) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login(user, PASSWORD);
    c
}

/// SHA-256 (hex) of message 1 of `big`, unstuffed, fetched from `port`.
fn big_digest(port: u16) -> (String, usize) {
    let started = Instant::now();
    let mut c = session(port, "big");
    c.cmd("RETR 1");
    let body = unstuff(&c.multi());
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"));
    eprintln!(
        "port {port}: RETR of {} bytes in {:?}",
        body.len(),
        started.elapsed()
    );
    (hex(&sha256(&body)), body.len())
}

#[test]
fn big_message_has_the_same_digest_through_the_proxy() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let (origin_port, proxy_port) = (d.port, proxy.port);
    let direct = thread::spawn(move || big_digest(origin_port));
    let proxied = thread::spawn(move || big_digest(proxy_port));
    let file = wire_form(&d.message("big", 1));
    assert!(
        file.len() > 20 * 1024 * 1024,
        "the big message is {} bytes",
        file.len()
    );
    let want = (hex(&sha256(&file)), file.len());
    let direct = direct.join().unwrap();
    let proxied = proxied.join().unwrap();
    assert_eq!(direct, want, "directly from Dovecot vs the maildir file");
    assert_eq!(proxied, want, "through the proxy vs the maildir file");
}

/// Runs a client program with a deadline; None (after saying why) if it is
/// not installed.
fn run_client(program: &str, args: &[String]) -> Option<Output> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: {program} is not installed");
            None
        }
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

fn curl(port: u16, path: &str) -> Option<Vec<u8>> {
    let args = [
        "-s",
        "--max-time",
        "30",
        "-u",
        &format!("alice:{PASSWORD}"),
        &format!("pop3://127.0.0.1:{port}/{path}"),
    ]
    .map(String::from);
    let out = run_client("curl", &args)?;
    assert!(
        out.status.success(),
        "curl pop3://127.0.0.1:{port}/{path}: {}; stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

#[test]
fn curl_gets_the_same_messages_through_the_proxy() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let count = d.messages("alice").len();
    for n in 1..=count {
        let Some(direct) = curl(d.port, &n.to_string()) else {
            return;
        };
        let proxied = curl(proxy.port, &n.to_string()).unwrap();
        let want = wire_form(&d.message("alice", n));
        assert!(
            direct == want,
            "message {n} directly: {:?}",
            excerpt(&direct)
        );
        assert!(
            proxied == direct,
            "message {n}: through the proxy {} bytes {:?}, directly {} bytes",
            proxied.len(),
            excerpt(&proxied),
            direct.len()
        );
    }
    // Without a message number curl LISTs the mailbox.
    let list = curl(proxy.port, "").unwrap();
    assert_eq!(excerpt(&list), excerpt(&curl(d.port, "").unwrap()));
    assert!(
        list.starts_with(b"1 ") && list.ends_with(b"\r\n"),
        "{:?}",
        excerpt(&list)
    );
}

fn poplib(port: u16) -> Option<Vec<u8>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/poplib_fetch.py");
    let args = [
        script.display().to_string(),
        port.to_string(),
        "alice".into(),
        PASSWORD.into(),
    ];
    let out = run_client("python3", &args)?;
    assert!(
        out.status.success(),
        "poplib against port {port}: {}; stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

#[test]
fn python_poplib_gets_the_same_messages_through_the_proxy() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let Some(direct) = poplib(d.port) else {
        return;
    };
    let proxied = poplib(proxy.port).unwrap();
    let count = d.messages("alice").len();
    let mut want = format!("COUNT {count}\n").into_bytes();
    for n in 1..=count {
        let body = wire_form(&d.message("alice", n));
        want.extend(format!("MSG {n} {}\n", body.len()).bytes());
        want.extend(body);
    }
    assert!(
        direct == want,
        "poplib directly differs from the maildir: {:?}",
        excerpt(&direct)
    );
    assert!(
        proxied == want,
        "poplib through the proxy: {} bytes {:?}, expected {} bytes",
        proxied.len(),
        excerpt(&proxied),
        want.len()
    );
}

/// The replies of a full session of `user` (no QUIT: callers decide).
fn full_session(port: u16, user: &str) -> Vec<Vec<u8>> {
    let mut c = session(port, user);
    let mut replies = Vec::new();
    for (command, multi) in [
        ("STAT", false),
        ("LIST", true),
        ("UIDL", true),
        ("TOP 1 3", true),
        ("NOOP", false),
    ] {
        c.cmd(command);
        replies.push(c.response(multi));
    }
    c.cmd("QUIT");
    replies.push(c.line());
    replies.push(c.read_to_end());
    replies
}

#[test]
fn client_killed_mid_retr_leaves_the_proxy_serving() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let want_big = full_session(d.port, "big");
    assert!(
        want_big[0].starts_with(b"+OK 1 "),
        "{:?}",
        excerpt(&want_big[0])
    );

    let mut c = session(proxy.port, "big");
    c.cmd("RETR 1");
    let status = c.line();
    assert!(status.starts_with(b"+OK "), "{:?}", excerpt(&status));
    let mut received = status.len();
    while received < 1024 * 1024 {
        received += c.line().len();
    }
    drop(c); // gone, with most of the 20 MiB still to come

    for user in ["big", "alice"] {
        let want = if user == "big" {
            want_big.clone()
        } else {
            full_session(d.port, user)
        };
        let got = full_session(proxy.port, user);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                g == w,
                "{user} reply {i}: got {:?}, want {:?}",
                excerpt(g),
                excerpt(w)
            );
        }
    }
    assert_eq!(d.messages("big").len(), 1, "mailbox unchanged");
    // And the big message itself still comes through whole.
    let file = wire_form(&d.message("big", 1));
    assert_eq!(big_digest(proxy.port), (hex(&sha256(&file)), file.len()));
}
