//! The daemon's built-in censor (`-M TYPES`, `-m MSG`; issue 11) against the real Dovecot,
//! on the sample messages of user `mime` (`scripts/make-mail.py`; their shapes and leaf types
//! are in `tests/censor_support/`). Each fetch through the censor is checked by
//! `tests/clients/censor_check.py` against the same client's direct fetch: exactly the
//! expected leaves (a hand-written table per list) became the note, with the right fields;
//! everything else is byte-identical, and the whole output equals the bytes built from the
//! original.
//!
//! Proves: curl gets every message right through six lists (`image/png`,
//! `image/png,image/jpeg`, `image/*`, `image/*, image/png;q=0`, `application/pdf`, and
//! `video/*`, which leaves every message byte-identical to a direct fetch); Dovecot serves the
//! CRLF file and the LF file alike, and both get CRLF notes; `TOP n 1000` is censored exactly
//! as RETR is, `TOP n 0` of a message that is an image too; with `-t` alone TOP is untouched,
//! and with `-M` and `-t` TOP is censored but never given to the command while RETR's
//! command receives the censored message; `-m` twice gives a two-paragraph note, a non-ASCII
//! `-m` an 8bit UTF-8 note; note lines that start with a dot are dot-stuffed, a note longer
//! than a 512-byte buffer gets through, and pipelined commands get what one-by-one ones get;
//! a list that does not parse is a usage error. SPCP and the access log are in
//! `censor_spcp.rs`; mpop, fetchmail, poplib and the 21 MB message in `censor_clients.rs`.

mod censor_support;
mod common;

use censor_support::{
    check, curl, default_note, find, retr_all, session, summary, text, Scratch, IMAGES, LEAVES,
    LISTS, USER,
};
use common::{dovecot, lf_to_crlf, unstuff, Proxy};
use std::fs;
use std::thread;

const COUNT: usize = LEAVES.len();

#[test]
fn curl_gets_every_message_right_through_every_list() {
    if !censor_support::installed("curl") {
        println!("SKIPPED: curl is not installed");
        return;
    }
    let d = dovecot();
    assert_eq!(d.messages(USER).len(), COUNT, "the mime mailbox");
    let scratch = Scratch::new("curl");
    let direct: Vec<Vec<u8>> = (1..=COUNT).map(|n| curl(d.port, USER, n)).collect();
    // curl un-stuffs: what it gives is what a raw RETR carries.
    assert!(direct == retr_all(d.port, USER, COUNT), "curl vs raw RETR");
    let direct_dir = scratch.with("direct", &direct);
    let runs: Vec<_> = LISTS
        .iter()
        .map(|&(list, censored)| {
            thread::spawn(move || {
                let proxy = Proxy::for_dovecot(&["-M", list]);
                let got: Vec<Vec<u8>> = (1..=COUNT).map(|n| curl(proxy.port, USER, n)).collect();
                (list, censored, got)
            })
        })
        .collect();
    for run in runs {
        let (list, censored, got) = run.join().unwrap();
        let dir = scratch.with(
            &format!("list-{}", list.replace(['/', '*', ' ', ';'], "_")),
            &got,
        );
        assert_eq!(
            check(&direct_dir, &dir, censored, &[]),
            summary(censored),
            "-M {list:?}"
        );
        if censored.is_empty() {
            for (n, (g, want)) in got.iter().zip(&direct).enumerate() {
                assert!(g == want, "-M {list:?}: message {} changed", n + 1);
            }
        }
    }
}

#[test]
fn dovecot_serves_crlf_and_lf_files_alike_and_both_get_crlf_notes() {
    let d = dovecot();
    let (crlf_file, lf_file) = (d.message(USER, 5), d.message(USER, 6));
    assert_eq!(crlf_file.iter().filter(|&&b| b == b'\n').count(), {
        crlf_file.windows(2).filter(|w| w == b"\r\n").count()
    });
    assert!(!lf_file.contains(&b'\r'), "message 6 is an LF file");
    let direct = retr_all(d.port, USER, COUNT);
    assert!(direct[4] == crlf_file, "the CRLF file is served as it is");
    assert!(
        direct[5] == lf_to_crlf(&lf_file),
        "the LF file is served with CRLF"
    );
    let proxy = Proxy::for_dovecot(&["-M", "image/*"]);
    let got = retr_all(proxy.port, USER, COUNT);
    for (n, kind) in [(5, "image/png"), (6, "image/jpeg")] {
        let m = &got[n - 1];
        let note = format!(
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{}--eol-{n}\r\n",
            default_note(kind)
        );
        assert!(
            find(m, note.as_bytes()).is_some(),
            "message {n}: {}",
            text(m)
        );
        let bare_lf = m
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || m[i - 1] != b'\r'));
        assert!(!bare_lf, "message {n} has a bare LF: {}", text(m));
    }
}

/// The body of a multi-line reply, status line dropped (still dot-stuffed).
fn body(reply: &[u8]) -> &[u8] {
    let i = reply.iter().position(|&b| b == b'\n').unwrap() + 1;
    &reply[i..]
}

#[test]
fn top_is_censored_as_retr_is() {
    let proxy = Proxy::for_dovecot(&["-M", "image/*"]);
    let mut c = session(proxy.port, USER);
    let mut tops = Vec::new();
    for n in 1..=COUNT {
        c.cmd(&format!("RETR {n}"));
        let retr = c.multi();
        c.cmd(&format!("TOP {n} 1000"));
        let top = c.multi();
        assert!(top.starts_with(b"+OK"), "TOP {n} 1000: {}", text(&top));
        assert_eq!(
            text(body(&top)),
            text(body(&retr)),
            "TOP {n} 1000 vs RETR {n}"
        );
        tops.push(unstuff(&top));
    }
    // And they are censored: the checker on TOP's output.
    let scratch = Scratch::new("top");
    let direct = scratch.with("direct", &retr_all(dovecot().port, USER, COUNT));
    let top_dir = scratch.with("top", &tops);
    assert_eq!(check(&direct, &top_dir, IMAGES, &[]), summary(IMAGES));

    // TOP 4 0 of the message that is a GIF: its header, censored; the body is the note.
    c.cmd("TOP 4 0");
    let top = unstuff(&c.multi());
    let mut direct = session(dovecot().port, USER);
    direct.cmd("TOP 4 0");
    let head = unstuff(&direct.multi());
    let kept: Vec<&[u8]> = head
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"Content-") && *l != b"\r\n")
        .collect();
    let want = format!(
        "{}Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{}",
        text(&kept.concat()),
        default_note("image/gif")
    );
    assert_eq!(text(&top), want, "TOP 4 0 through -M image/*");
}

#[test]
fn t_alone_leaves_top_alone_and_with_m_top_is_censored_but_not_transformed() {
    let d = dovecot();
    let mut direct = session(d.port, USER);
    let cat = Proxy::for_dovecot(&["-t", "cat"]);
    let mut through_cat = session(cat.port, USER);
    let censor = Proxy::for_dovecot(&["-M", "image/*"]);
    let mut censored = session(censor.port, USER);
    let both = Proxy::for_dovecot(&["-M", "image/*", "-t", "echo changed"]);
    let mut through_both = session(both.port, USER);
    for n in 1..=COUNT {
        for command in [format!("TOP {n} 1000"), format!("TOP {n} 2")] {
            direct.cmd(&command);
            through_cat.cmd(&command);
            censored.cmd(&command);
            through_both.cmd(&command);
            let want = direct.multi();
            assert_eq!(text(&through_cat.multi()), text(&want), "{command}, -t cat");
            let censored_top = censored.multi();
            assert!(
                censored_top.starts_with(b"+OK"),
                "{command}: {}",
                text(&censored_top)
            );
            assert_eq!(
                text(&through_both.multi()),
                text(&censored_top),
                "{command}, -M image/* -t 'echo changed': censored, not transformed"
            );
        }
        through_both.cmd(&format!("RETR {n}"));
        assert_eq!(
            text(body(&through_both.multi())),
            "changed\r\n.\r\n",
            "RETR {n} goes to the command"
        );
    }
    // TOP n 1000 of a message with images did change (the censor was on).
    direct.cmd("TOP 1 1000");
    censored.cmd("TOP 1 1000");
    assert!(
        direct.multi() != censored.multi(),
        "TOP 1 1000 not censored"
    );
}

#[test]
fn the_command_receives_the_censored_message() {
    let scratch = Scratch::new("tee");
    let seen = scratch.0.join("seen.eml");
    let command = format!(
        "tee {} | sed '3s/^Subject: /Subject: [seen] /'",
        seen.display()
    );
    let both = Proxy::for_dovecot(&["-M", "image/*", "-t", &command]);
    let censor = Proxy::for_dovecot(&["-M", "image/*"]);
    for n in [1, 2, 4] {
        let mut c = session(censor.port, USER);
        c.cmd(&format!("RETR {n}"));
        let censored = unstuff(&c.multi());
        let mut c = session(both.port, USER);
        c.cmd(&format!("RETR {n}"));
        let got = unstuff(&c.multi());
        assert_eq!(
            text(&fs::read(&seen).unwrap()),
            text(&censored),
            "message {n}: what the command read"
        );
        let at = find(&censored, b"\r\nSubject: ").unwrap() + 2;
        let mut want = censored.clone();
        want.splice(at + 9..at + 9, b"[seen] ".iter().copied());
        assert_eq!(text(&got), text(&want), "message {n}: the command's output");
        assert!(find(&got, b"removed by the mail proxy").is_some());
    }
}

#[test]
fn two_m_give_two_paragraphs_and_a_non_ascii_m_an_8bit_note() {
    let d = dovecot();
    let scratch = Scratch::new("notes");
    let direct = scratch.with("direct", &retr_all(d.port, USER, COUNT));
    let two = [
        "Removed: %s (100%% sure).",
        "Ask the sender for another copy.",
    ];
    let proxy = Proxy::for_dovecot(&["-M", "image/*", "-m", two[0], "-m", two[1]]);
    let got = retr_all(proxy.port, USER, COUNT);
    let dir = scratch.with("two", &got);
    assert_eq!(check(&direct, &dir, IMAGES, &two), summary(IMAGES));
    let tail = "Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
                Removed: image/gif (100% sure).\r\n\r\nAsk the sender for another copy.\r\n";
    assert!(
        text(&got[3]).ends_with(&format!("MIME-Version: 1.0\r\n{tail}")),
        "message 4: {}",
        text(&got[3])
    );

    let spanish = "Se quitó un adjunto (%s).";
    let proxy = Proxy::for_dovecot(&["-M", "image/png", "-m", spanish]);
    let got = retr_all(proxy.port, USER, COUNT);
    let dir = scratch.with("spanish", &got);
    assert_eq!(
        check(&direct, &dir, &["image/png"], &[spanish]),
        summary(&["image/png"])
    );
    let note = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\
                \r\nSe quitó un adjunto (image/png).\r\n--eol-5";
    assert!(
        find(&got[4], note.as_bytes()).is_some(),
        "{}",
        text(&got[4])
    );
}

#[test]
fn dotted_and_long_notes_through_a_small_buffer_and_pipelined_commands() {
    let long: Vec<String> = (0..700).map(|i| format!("word{i}")).collect();
    let long = format!("{} (%s)", long.join(" "));
    let notes = [".", ".hidden %s", long.as_str()];
    let proxy = Proxy::for_dovecot(&[
        "-b", "512", "-M", "image/*", "-m", notes[0], "-m", notes[1], "-m", notes[2],
    ]);
    let commands = [
        "RETR 4",
        "RETR 1",
        "TOP 3 1000",
        "RETR 99",
        "RETR 7",
        "RETR 2",
    ];
    let mut one_by_one = session(proxy.port, USER);
    let want: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| {
            one_by_one.cmd(c);
            one_by_one.multi()
        })
        .collect();
    assert_eq!(text(&want[3]), "-ERR There's no message 99.\r\n");
    // The note's lines that start with a dot are dot-stuffed on the wire.
    let stuffed = b"\r\n\r\n..\r\n\r\n..hidden image/gif\r\n\r\nword0 word1 ";
    assert!(find(&want[0], stuffed).is_some(), "{}", text(&want[0]));
    let mut pipelined = session(proxy.port, USER);
    pipelined.send(commands.map(|c| format!("{c}\r\n")).concat().as_bytes());
    for (c, want) in commands.iter().zip(&want) {
        assert_eq!(text(&pipelined.multi()), text(want), "pipelined {c}");
    }
    let scratch = Scratch::new("dots");
    let direct = scratch.with("direct", &retr_all(dovecot().port, USER, COUNT));
    let got = scratch.with("got", &retr_all(proxy.port, USER, COUNT));
    assert_eq!(check(&direct, &got, IMAGES, &notes), summary(IMAGES));
}

#[test]
fn a_list_that_does_not_parse_is_a_usage_error() {
    for (list, why) in [
        ("image/", "empty type or subtype"),
        ("image/png;q=2", "q must be a number"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pop3filter"))
            .args(["-p", "1", "-M", list, "127.0.0.1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "-M {list:?}");
        let stderr = text(&out.stderr);
        let mut lines = stderr.lines();
        let first = lines.next().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "pop3filter: invalid -M: media range 1 ({list:?}): {why}"
            )),
            "{stderr}"
        );
        assert!(
            lines.next().unwrap_or_default().starts_with("Usage:"),
            "{stderr}"
        );
    }
}
