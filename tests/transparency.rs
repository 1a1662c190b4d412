//! Transparency: for every RFC 1939 command (and AUTH, APOP, CAPA, STLS) a
//! client talking to Dovecot through pop3filter gets, byte for byte, the reply
//! it gets talking to Dovecot directly.  The same script runs on a direct and
//! on a proxied connection and the replies are compared one by one.  The only
//! differences allowed are the documented ones: CAPA always lists PIPELINING
//! and never STLS, and STLS itself is refused by the proxy with `-ERR`.

mod common;

use common::{dovecot, excerpt, start_dovecot, Pop3, Proxy, PASSWORD};

/// How a step's reply is read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum R {
    /// One line.
    Line,
    /// A multi-line reply (one line if it is not `+OK`).
    Multi,
}
use R::{Line, Multi};

fn read_reply(c: &mut Pop3, how: R) -> Vec<u8> {
    match how {
        Line => c.line(),
        Multi => c.multi(),
    }
}

/// Runs `steps` on a fresh connection to `port`: the greeting, then each reply.
/// After a QUIT it also checks that the server closes without a byte more.
fn run(port: u16, steps: &[(&str, R)]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut c = Pop3::connect(port);
    let greeting = c.greeting();
    let mut replies = Vec::new();
    for &(command, how) in steps {
        c.cmd(command);
        replies.push(read_reply(&mut c, how));
    }
    if steps.last().is_some_and(|s| s.0 == "QUIT") {
        assert_eq!(
            excerpt(&c.read_to_end()),
            "",
            "port {port}: bytes after QUIT's reply"
        );
    }
    (greeting, replies)
}

/// Runs `steps` directly on `origin` and through `proxy`; every reply must be
/// identical.  Returns the direct replies so callers can pin down statuses.
fn same_as_direct(origin: u16, proxy: &Proxy, steps: &[(&str, R)]) -> Vec<Vec<u8>> {
    let (g_direct, direct) = run(origin, steps);
    let (g_proxied, proxied) = run(proxy.port, steps);
    assert_same_greeting(&g_direct, &g_proxied);
    for (i, (command, _)) in steps.iter().enumerate() {
        assert!(
            direct[i] == proxied[i],
            "step {i} {command:?}: direct {:?} ({} bytes) vs proxied {:?} ({} bytes)",
            excerpt(&direct[i]),
            direct[i].len(),
            excerpt(&proxied[i]),
            proxied[i].len()
        );
    }
    direct
}

/// Replaces every `<...>` (an APOP timestamp) with `<>`.
fn without_timestamps(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut inside = false;
    for &b in line {
        match b {
            b'<' if !inside => {
                inside = true;
                out.push(b);
            }
            b'>' if inside => {
                inside = false;
                out.push(b);
            }
            _ if inside => {}
            _ => out.push(b),
        }
    }
    out
}

fn assert_same_greeting(direct: &[u8], proxied: &[u8]) {
    assert!(direct.starts_with(b"+OK") && direct.ends_with(b"\r\n"));
    assert_eq!(
        excerpt(&without_timestamps(proxied)),
        excerpt(&without_timestamps(direct)),
        "greeting structure"
    );
}

fn status(reply: &[u8], prefix: &str) {
    assert!(
        reply.starts_with(prefix.as_bytes()),
        "expected {prefix:?}, got {:?}",
        excerpt(reply)
    );
}

fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_encoder() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"\0alice\0secret"), "AGFsaWNlAHNlY3JldA==");
}

/// The greeting bytes; when Dovecot's greeting varies per connection (an APOP
/// timestamp), only its structure is compared.
#[test]
fn greeting_is_relayed_unchanged() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let first = Pop3::connect(d.port).greeting();
    let second = Pop3::connect(d.port).greeting();
    let proxied = Pop3::connect(proxy.port).greeting();
    status(&first, "+OK");
    if first == second {
        assert_eq!(excerpt(&proxied), excerpt(&first));
    } else {
        assert_same_greeting(&first, &proxied);
    }
}

#[test]
fn rfc1939_commands_match_direct() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&[]);
    let count = d.messages("alice").len();
    let retrs: Vec<String> = (1..=count).map(|n| format!("RETR {n}")).collect();
    let mut steps = vec![
        ("USER alice", Line),
        ("PASS secret", Line),
        ("STAT", Line),
        ("LIST", Multi),
        ("LIST 1", Line),
        ("LIST 5000", Line),
    ];
    steps.extend(retrs.iter().map(|r| (r.as_str(), Multi)));
    steps.extend([
        ("RETR 5000", Multi),
        ("NOOP", Line),
        ("TOP 1 0", Multi),
        ("TOP 1 5", Multi),
        ("UIDL", Multi),
        ("UIDL 2", Line),
        ("QUIT", Line),
    ]);
    let direct = same_as_direct(d.port, &proxy, &steps);
    let stat = d.stat_line("alice");
    let expect = [
        "+OK\r\n",
        "+OK Logged in.",
        stat.as_str(),
        "+OK",
        "+OK 1 ",
        "-ERR",
    ];
    for (reply, prefix) in direct.iter().zip(expect) {
        status(reply, prefix);
    }
    for (i, (command, _)) in steps.iter().enumerate().skip(expect.len()) {
        let prefix = if command.contains("5000") {
            "-ERR"
        } else {
            "+OK"
        };
        assert!(direct[i].starts_with(prefix.as_bytes()), "{command}");
    }
}

/// DELE and RSET on a private Dovecot (QUIT after them must not commit).
#[test]
fn dele_and_rset_match_direct() {
    let d = start_dovecot();
    let proxy = Proxy::for_origin(d.port, &[]);
    let steps = [
        ("USER alice", Line),
        ("PASS secret", Line),
        ("DELE 1", Line),
        ("DELE 1", Line),
        ("RETR 1", Multi),
        ("LIST 1", Line),
        ("STAT", Line),
        ("LIST", Multi),
        ("RSET", Line),
        ("STAT", Line),
        ("LIST 1", Line),
        ("QUIT", Line),
    ];
    let count = d.messages("alice").len();
    let direct = same_as_direct(d.port, &proxy, &steps);
    let after_dele = format!("+OK {} ", count - 1);
    let expect = [
        "+OK",
        "+OK",
        "+OK",
        "-ERR",
        "-ERR",
        "-ERR",
        &after_dele,
        "+OK",
    ];
    for (reply, prefix) in direct.iter().zip(expect) {
        status(reply, prefix);
    }
    status(&direct[9], &d.stat_line("alice"));
    assert_eq!(d.messages("alice").len(), count, "RSET undid the DELE");
}

/// APOP is relayed as is: whatever Dovecot says (here: not enabled), the
/// client hears it, and the session goes on.
#[test]
fn apop_matches_direct() {
    let proxy = Proxy::for_dovecot(&[]);
    let steps = [
        ("APOP alice c4c9334bac560ecc979e58001b3e22fb", Line),
        ("USER alice", Line),
        ("PASS secret", Line),
        ("STAT", Line),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    status(&direct[3], &dovecot().stat_line("alice"));
}

fn capa_lines(reply: &[u8]) -> Vec<String> {
    assert!(reply.ends_with(b"\r\n.\r\n"), "{:?}", excerpt(reply));
    String::from_utf8(reply.to_vec())
        .unwrap()
        .split_inclusive("\r\n")
        .map(String::from)
        .collect()
}

/// CAPA before and after login: exactly one `PIPELINING` line, no `STLS`
/// line, every other line as Dovecot sent it, in its order.
#[test]
fn capa_adds_pipelining_and_hides_stls() {
    let proxy = Proxy::for_dovecot(&[]);
    let steps = [
        ("CAPA", Multi),
        ("USER alice", Line),
        ("PASS secret", Line),
        ("CAPA", Multi),
        ("QUIT", Line),
    ];
    let (_, direct) = run(dovecot().port, &steps);
    let (_, proxied) = run(proxy.port, &steps);
    for i in [0, 3] {
        let d = capa_lines(&direct[i]);
        let p = capa_lines(&proxied[i]);
        status(p[0].as_bytes(), "+OK");
        assert_eq!(p[0], d[0], "status line");
        assert_eq!(
            p.iter().filter(|l| *l == "PIPELINING\r\n").count(),
            1,
            "CAPA {i}: {p:?}"
        );
        assert!(
            !p.iter().any(|l| l.to_ascii_uppercase().starts_with("STLS")),
            "{p:?}"
        );
        let rest = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| *l != "PIPELINING\r\n" && !l.to_ascii_uppercase().starts_with("STLS"))
                .cloned()
                .collect()
        };
        assert_eq!(rest(&p), rest(&d), "CAPA {i}, other lines");
    }
    for i in [1, 2, 4] {
        assert_eq!(excerpt(&proxied[i]), excerpt(&direct[i]));
    }
}

/// STLS is answered by the proxy with one `-ERR` line; nothing reaches Dovecot
/// and the session continues normally.
#[test]
fn stls_is_refused_and_session_continues() {
    let proxy = Proxy::for_dovecot(&[]);
    let after = [
        ("USER alice", Line),
        ("PASS secret", Line),
        ("STAT", Line),
        ("QUIT", Line),
    ];
    let (_, direct) = run(dovecot().port, &after);
    let (_, dovecot_stls) = run(dovecot().port, &[("STLS", Line)]);
    let mut c = proxy.connect();
    c.greeting();
    c.cmd("STLS");
    let refusal = c.line();
    status(&refusal, "-ERR");
    assert_ne!(
        excerpt(&refusal),
        excerpt(&dovecot_stls[0]),
        "STLS must be answered by the proxy, not relayed to Dovecot"
    );
    assert!(refusal.ends_with(b"\r\n") && refusal.iter().filter(|&&b| b == b'\n').count() == 1);
    for (i, &(command, how)) in after.iter().enumerate() {
        c.cmd(command);
        assert_eq!(
            excerpt(&read_reply(&mut c, how)),
            excerpt(&direct[i]),
            "{command}"
        );
    }
    assert_eq!(c.read_to_end(), b"");
}

#[test]
fn auth_plain_with_initial_response() {
    let proxy = Proxy::for_dovecot(&[]);
    let auth = format!(
        "AUTH PLAIN {}",
        base64(format!("\0alice\0{PASSWORD}").as_bytes())
    );
    let steps = [
        (auth.as_str(), Line),
        ("STAT", Line),
        ("LIST 2", Line),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    status(&direct[0], "+OK");
    status(&direct[1], &dovecot().stat_line("alice"));
}

#[test]
fn auth_plain_with_continuation() {
    let proxy = Proxy::for_dovecot(&[]);
    let response = base64(format!("\0alice\0{PASSWORD}").as_bytes());
    let steps = [
        ("AUTH PLAIN", Line),
        (response.as_str(), Line),
        ("STAT", Line),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    status(&direct[0], "+ ");
    status(&direct[1], "+OK");
    status(&direct[2], &dovecot().stat_line("alice"));
}

#[test]
fn auth_login() {
    let proxy = Proxy::for_dovecot(&[]);
    let (user, pass) = (base64(b"alice"), base64(PASSWORD.as_bytes()));
    let steps = [
        ("AUTH LOGIN", Line),
        (user.as_str(), Line),
        (pass.as_str(), Line),
        ("STAT", Line),
        ("UIDL 7", Line),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    status(&direct[0], "+ ");
    status(&direct[1], "+ ");
    status(&direct[2], "+OK");
    status(&direct[3], &dovecot().stat_line("alice"));
}

/// A failed AUTH (bad password, then an aborted exchange) is relayed as is,
/// and USER/PASS still works afterwards.
#[test]
fn auth_failures_match_direct() {
    let proxy = Proxy::for_dovecot(&[]);
    let wrong = format!("AUTH PLAIN {}", base64(b"\0alice\0wrong"));
    let steps = [
        (wrong.as_str(), Line),
        ("AUTH PLAIN", Line),
        ("*", Line),
        ("AUTH", Multi),
        ("USER alice", Line),
        ("PASS secret", Line),
        ("STAT", Line),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    status(&direct[0], "-ERR");
    status(&direct[2], "-ERR");
    status(&direct[6], &dovecot().stat_line("alice"));
}

#[test]
fn empty_mailbox_matches_direct() {
    let proxy = Proxy::for_dovecot(&[]);
    let steps = [
        ("USER empty", Line),
        ("PASS secret", Line),
        ("STAT", Line),
        ("LIST", Multi),
        ("UIDL", Multi),
        ("LIST 1", Line),
        ("RETR 1", Multi),
        ("QUIT", Line),
    ];
    let direct = same_as_direct(dovecot().port, &proxy, &steps);
    assert_eq!(direct[2], b"+OK 0 0\r\n");
    assert_eq!(excerpt(&direct[3]), "+OK 0 messages:\r\n.\r\n");
    assert!(direct[4].starts_with(b"+OK") && direct[4].ends_with(b"\r\n.\r\n"));
    assert_eq!(
        direct[4].iter().filter(|&&b| b == b'\n').count(),
        2,
        "empty UIDL body"
    );
    status(&direct[5], "-ERR");
    status(&direct[6], "-ERR");
}
