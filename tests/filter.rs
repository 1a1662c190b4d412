//! The transformation (`-t CMD`) on small messages, exact bytes throughout.
//!
//! Proves that: `cat` as filter leaves every alice RETR byte-identical to a
//! direct RETR from Dovecot; TOP, LIST, STAT and UIDL never go through the
//! filter (a filter that rewrites everything leaves them as Dovecot sends
//! them); `grep -av '^Date:'` removes exactly the Date lines of every message
//! (and plain `grep -v` does on the ASCII message 1); the filter gets the
//! body un-stuffed and its output is dot-stuffed, LF -> CRLF (CRLF kept),
//! given a final CRLF when missing and then `.\r\n`; a filter that reads all
//! before writing works; a filter that fails before any output (exit 1,
//! SIGKILL, or killed for inactivity with its whole process group) turns
//! that RETR into one `-ERR` line and the session goes on; a filter that
//! dies after output began (even after closing its stdout: the terminator
//! waits for exit status 0) makes the proxy close the client without the
//! terminator and the origin without QUIT, leaves no zombie, and the next
//! session is served; POP3FILTER_VERSION, POP3_USERNAME, POP3_SERVER,
//! FILTER_MEDIAS and FILTER_MSG reach the filter; `-e FILE` collects (appends)
//! its stderr.

mod common;
mod filter_support;

use common::{dovecot, excerpt, unstuff, Pop3, Proxy};
use filter_support::{
    assert_no_children, children, direct_retr, eventually, processes, read_until_closed,
    retr_through, scripted_origin, session, split_status, TempDir,
};
use std::time::{Duration, Instant};

fn s(bytes: &[u8]) -> String {
    excerpt(bytes)
}

#[test]
fn cat_leaves_every_message_and_listing_identical() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&["-t", "cat"]);
    let mut direct = session(d.port, "alice");
    let mut proxied = session(proxy.port, "alice");
    let mut commands = vec![
        ("STAT".to_string(), false),
        ("LIST".to_string(), true),
        ("TOP 1 0".to_string(), true),
    ];
    let count = d.messages("alice").len();
    commands.extend((1..=count).map(|n| (format!("RETR {n}"), true)));
    commands.push(("STAT".to_string(), false));
    for (command, multi) in commands {
        direct.cmd(&command);
        proxied.cmd(&command);
        let want = direct.response(multi);
        let got = proxied.response(multi);
        assert!(want.starts_with(b"+OK"), "{command} directly: {}", s(&want));
        assert!(
            got == want,
            "{command}: through the proxy {} bytes {}, directly {} bytes {}",
            got.len(),
            s(&got),
            want.len(),
            s(&want)
        );
    }
}

/// STAT through the proxy gets Dovecot's reply for alice.
fn proxied_stat_is_alices(c: &mut Pop3) -> bool {
    c.cmd("STAT");
    c.line() == dovecot().stat_line("alice").as_bytes()
}

#[test]
fn top_list_stat_uidl_bypass_the_filter() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&["-t", "echo changed"]);
    let mut direct = session(d.port, "alice");
    let mut proxied = session(proxy.port, "alice");
    for (command, multi) in [
        ("STAT", false),
        ("LIST", true),
        ("LIST 3", false),
        ("UIDL", true),
        ("TOP 1 0", true),
        ("TOP 2 3", true),
        ("TOP 3 100", true),
        ("RETR 2", true),
        ("TOP 2 3", true),
        ("LIST 2", false),
    ] {
        direct.cmd(command);
        proxied.cmd(command);
        let want = direct.response(multi);
        let got = proxied.response(multi);
        if command.starts_with("RETR") {
            // The filter is active: the message is replaced.
            let (status, rest) = split_status(&got);
            assert!(status.starts_with(b"+OK"), "{command}: {}", s(&got));
            assert_eq!(s(rest), "changed\r\n.\r\n", "{command}");
        } else {
            assert_eq!(s(&got), s(&want), "{command}");
        }
    }
}

/// `reply` without the lines that start with `Date:`, and how many went.
fn without_date_lines(reply: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut dropped = 0;
    for line in reply.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"Date:") {
            dropped += 1;
        } else {
            out.extend_from_slice(line);
        }
    }
    (out, dropped)
}

#[test]
fn grep_av_removes_exactly_the_date_lines_of_every_message() {
    let d = dovecot();
    let proxy = Proxy::for_dovecot(&["-t", "grep -av '^Date:'"]);
    let mut direct = session(d.port, "alice");
    let mut proxied = session(proxy.port, "alice");
    for n in 1..=d.messages("alice").len() {
        direct.cmd(&format!("RETR {n}"));
        proxied.cmd(&format!("RETR {n}"));
        let (want, dropped) = without_date_lines(&direct.multi());
        let got = proxied.multi();
        assert!(dropped >= 1, "message {n} has no Date line to remove");
        if n == 6 {
            assert_eq!(
                dropped, 3,
                "message 6 has two Date headers and one body line"
            );
        }
        assert!(
            got == want,
            "message {n}: got {} bytes {}, expected {} bytes {}",
            got.len(),
            s(&got),
            want.len(),
            s(&want)
        );
    }
}

#[test]
fn plain_grep_v_on_the_ascii_message() {
    let (want, dropped) = without_date_lines(&direct_retr(1));
    assert_eq!(dropped, 1);
    let got = retr_through("grep -v '^Date:'", 1);
    assert_eq!(s(&got), s(&want));
}

#[test]
fn filter_output_is_dot_stuffed_and_unstuffs_intact() {
    let reply = retr_through(r"printf '.hola\n.\nend\n'", 1);
    let (status, rest) = split_status(&reply);
    assert!(status.starts_with(b"+OK"), "{}", s(&reply));
    assert_eq!(s(rest), "..hola\r\n..\r\nend\r\n.\r\n");
    assert_eq!(s(&unstuff(&reply)), ".hola\r\n.\r\nend\r\n");
}

#[test]
fn filter_output_gets_crlf_and_a_final_line_end() {
    for (filter, want) in [
        (r"printf 'a\nb'", "a\r\nb\r\n.\r\n"),
        // CRLF stays CRLF; a lone final dot without newline is stuffed too.
        (r"printf 'x\r\ny\n..z\n.'", "x\r\ny\r\n...z\r\n..\r\n.\r\n"),
        // Success with no output at all: an empty message.
        ("cat >/dev/null", ".\r\n"),
    ] {
        let reply = retr_through(filter, 1);
        let (status, rest) = split_status(&reply);
        assert!(status.starts_with(b"+OK"), "{filter}: {}", s(&reply));
        assert_eq!(s(rest), want, "filter {filter}");
    }
}

#[test]
fn filter_reading_everything_before_writing() {
    let tmp = TempDir::new("lazy-small");
    for n in [1, 2, 5] {
        let got = retr_through(&tmp.lazy_filter(), n);
        assert_eq!(s(&got), s(&direct_retr(n)), "message {n}");
    }
    assert_eq!(
        tmp.entries(),
        Vec::<String>::new(),
        "the filter removed its file"
    );
}

#[test]
fn failure_before_output_is_one_err_line_and_the_session_goes_on() {
    let d = dovecot();
    let mut direct = session(d.port, "alice");
    direct.cmd("STAT");
    let stat = direct.line();
    for filter in ["exit 1", "kill -9 $$"] {
        let proxy = Proxy::for_dovecot(&["-t", filter]);
        let mut c = session(proxy.port, "alice");
        for n in [1, 4] {
            c.cmd(&format!("RETR {n}"));
            let reply = c.line();
            assert!(
                reply.starts_with(b"-ERR") && reply.ends_with(b"\r\n"),
                "{filter}, RETR {n}: {}",
                s(&reply)
            );
            // The very next line answers STAT: nothing else came for RETR.
            c.cmd("STAT");
            assert_eq!(s(&c.line()), s(&stat), "{filter}: STAT after RETR {n}");
        }
        c.cmd("QUIT");
        assert!(c.line().starts_with(b"+OK"));
        assert_eq!(c.read_to_end(), b"");
        assert_no_children(proxy.pid(), Duration::from_secs(2));
    }
}

#[test]
fn failure_after_output_closes_the_client_without_terminator() {
    let proxy = Proxy::for_dovecot(&["-t", "head -c 200; kill -9 $$"]);
    let direct = direct_retr(1);
    let (_, direct_body) = split_status(&direct);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    let (got, error) = read_until_closed(&mut c.stream());
    let (status, rest) = split_status(&got);
    assert!(status.starts_with(b"+OK"), "{}", s(&got));
    // Whatever arrived is the filter's output (the first 200 bytes of the
    // message, no dots in them), and no terminator follows it.
    assert!(
        rest.len() <= 200 && direct_body.starts_with(rest),
        "after the status line: {}",
        s(rest)
    );
    assert!(!got.ends_with(b"\r\n.\r\n"), "terminator sent: {}", s(&got));
    eprintln!(
        "{} filter bytes arrived; connection ended with {error:?}",
        rest.len()
    );
    assert_no_children(proxy.pid(), Duration::from_secs(2));
    // The daemon is fine: the next session is served.
    let mut next = session(proxy.port, "alice");
    assert!(proxied_stat_is_alices(&mut next));
}

#[test]
fn terminator_waits_for_the_filter_exit_status() {
    // Both filters write the whole message and close their stdout, then
    // take 300 ms to exit: the end of output is not the end of the message.
    let direct = direct_retr(1);
    let later = "cat; exec >&-; sleep 0.3";
    let started = Instant::now();
    let got = retr_through(later, 1);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s(&got), s(&direct), "exit 0 after a pause");

    let proxy = Proxy::for_dovecot(&["-t", &format!("{later}; exit 1")]);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    let (got, _) = read_until_closed(&mut c.stream());
    let unterminated = &direct[..direct.len() - 3];
    assert!(
        unterminated.starts_with(&got) && got.starts_with(b"+OK"),
        "exit 1 after the whole output: {}",
        s(&got)
    );
}

#[test]
fn failure_after_output_closes_the_origin_without_quit() {
    let (origin, commands) = scripted_origin();
    let proxy = Proxy::for_origin(origin, &["-t", "head -c 100; kill -9 $$"]);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    let (got, _) = read_until_closed(&mut c.stream());
    assert!(got.starts_with(b"+OK"), "{}", s(&got));
    assert!(!got.ends_with(b"\r\n.\r\n"), "terminator sent: {}", s(&got));
    let commands = commands
        .recv_timeout(Duration::from_secs(10))
        .expect("the proxy did not close its origin connection");
    assert_eq!(
        commands.last().map(String::as_str),
        Some("RETR 1"),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.eq_ignore_ascii_case("QUIT")),
        "{commands:?}"
    );
}

#[test]
fn inactive_filter_is_killed_with_its_process_group() {
    // `; exit 0` keeps sh as the parent of sleep, so only a kill of the whole
    // process group (not of the shell alone) ends the sleep.
    let proxy = Proxy::for_dovecot(&["-T", "1", "-t", "sleep 10; exit 0"]);
    let mut c = session(proxy.port, "alice");
    let started = Instant::now();
    c.cmd("RETR 1");
    let mut filter = None;
    assert!(
        eventually(Duration::from_secs(2), || {
            filter = children(proxy.pid()).into_iter().find(|p| p.comm == "sh");
            filter.is_some()
        }),
        "no filter shell appeared"
    );
    let group = filter.unwrap().pid;
    let members = || -> Vec<_> {
        processes()
            .into_iter()
            .filter(|p| p.pgrp == group && p.state != 'Z')
            .collect()
    };
    assert!(
        eventually(Duration::from_millis(800), || members()
            .iter()
            .any(|p| p.comm == "sleep")),
        "the filter runs in its own group {group} with its sleep: {:?}",
        members()
    );
    let reply = c.line();
    let elapsed = started.elapsed();
    assert!(reply.starts_with(b"-ERR"), "{}", s(&reply));
    assert!(elapsed < Duration::from_secs(3), "-ERR after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "-ERR after only {elapsed:?}"
    );
    assert!(proxied_stat_is_alices(&mut c), "the session goes on");
    let mut left = Vec::new();
    assert!(
        eventually(Duration::from_secs(2), || {
            left = members();
            left.is_empty()
        }),
        "processes of the filter's group still running: {left:?}"
    );
    assert_no_children(proxy.pid(), Duration::from_secs(2));
}

#[test]
fn filter_environment() {
    let version = std::process::Command::new(env!("CARGO_BIN_EXE_pop3filter"))
        .arg("-v")
        .output()
        .unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let version = version.trim().strip_prefix("pop3filter ").unwrap();
    assert_eq!(version, "0.1.0", "pop3filter -v");
    let proxy = Proxy::for_dovecot(&[
        "-m",
        "hola",
        "-M",
        "text/plain",
        "-t",
        r#"printf "%s|%s|%s|%s|%s\n" "$POP3FILTER_VERSION" "$POP3_USERNAME" "$POP3_SERVER" "$FILTER_MEDIAS" "$FILTER_MSG""#,
    ]);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    let reply = c.multi();
    let (status, rest) = split_status(&reply);
    assert!(status.starts_with(b"+OK"), "{}", s(&reply));
    let want = format!("{version}|alice|127.0.0.1|text/plain|hola\r\n.\r\n");
    assert_eq!(s(rest), want);
}

#[test]
fn pop3_server_is_the_origin_as_written() {
    let (port, origin) = (common::free_port().to_string(), dovecot().port.to_string());
    let proxy = Proxy::start(&[
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "-P",
        &origin,
        "-t",
        r#"echo "[$POP3_SERVER]""#,
        "localhost",
    ]);
    let mut c = session(proxy.port, "alice");
    c.cmd("RETR 1");
    assert_eq!(s(split_status(&c.multi()).1), "[localhost]\r\n.\r\n");
}

#[test]
fn stderr_file_collects_filter_errors() {
    let tmp = TempDir::new("stderr");
    let file = tmp.0.join("filter.err");
    std::fs::write(&file, "before\n").unwrap();
    let proxy = Proxy::for_dovecot(&[
        "-e",
        file.to_str().unwrap(),
        "-t",
        r#"wc -c >&2; echo "to $POP3_USERNAME" >&2; echo ok"#,
    ]);
    let mut c = session(proxy.port, "alice");
    let mut want = "before\n".to_string();
    for n in [1, 2] {
        let size = unstuff(&direct_retr(n)).len();
        want += &format!("{size}\nto alice\n");
        c.cmd(&format!("RETR {n}"));
        let reply = c.multi();
        assert_eq!(s(split_status(&reply).1), "ok\r\n.\r\n");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            want,
            "after RETR {n}"
        );
    }
}
