//! SPCP, the management protocol (docs/spcp.md), on raw sockets against a real daemon in front
//! of Dovecot.
//!
//! Proves: the login flow (`01 00` before login, for PASS without USER, an unknown user and a
//! wrong password; the third failed PASS closes the connection; the password never reaches the
//! log, the peer address does; USER after login logs out); every metric moves with real POP3
//! traffic; 0x11 applies from the next RETR while one in progress keeps the old command; 0x10
//! buffers of 512 and 65535 relay the 20 MiB message byte for byte; 0x12 ends an idle session
//! after the new timeout; invalid arguments, wrong NARGS and unknown commands get `03`/`02` and
//! change nothing; frames split at every byte or pipelined by the hundred are answered in order;
//! 10 000 seeded random frames get exactly the answers a model of the spec predicts; QUIT; the
//! listener is on 127.0.0.1 only; `-U FILE` and no credentials; a flood (one connection that
//! never reads its answers, one that does) stalls neither a RETR of the big message nor other
//! management connections.
//!
//! Requests are written as scripts, one per line or `;`-separated: `CMD ARG... > STATUS DATA`,
//! CMD and STATUS a hex byte, an argument hex bytes or `"text"`, DATA `"text"` (none: empty);
//! `//` starts a comment. So `10 01ff > 03` is set-buffer 511, answered `03 00`.

mod common;
mod spcp_support;

use common::{unstuff, Pop3};
use spcp_support::*;
use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn login_flow_and_failures() {
    let proxy = proxy(&[]);
    let mut c = Spcp::connect(proxy.mgmt_port);
    c.script(
        r#" 02 > 01                         // a metric before login
            11 "cat" > 01                   // a setter before login
            01 "Wr0ng-Pw-q7zK" > 01         // PASS without USER: failure 1
            00 "nobody" > 01                // unknown user
            00 "admin" > 00
            01 "Wr0ng-Pw-q7zK" > 01         // failure 2
            01 "s3cr3t" > 01                // no USER right before it: failure 3"#,
    );
    c.assert_eof();
    let mut c = Spcp::connect(proxy.mgmt_port);
    c.script(
        r#" 00 "admin" > 00; 01 "Wr0ng-Pw-q7zK" > 01
            00 "admin" > 00; 01 "s3cr3t" > 00       // the right password after a wrong one
            02 > 00 "0"
            00 "admin" > 00; 02 > 01                // USER when logged in starts a new login
            00 "admin" > 00; 01 "Wr0ng-Pw-q7zK" > 01
            00 "admin" > 00; 01 "Wr0ng-Pw-q7zK" > 01  // 3 failures, but not since the success
            00 "admin" > 00; 01 "s3cr3t" > 00; 04 > 00 "0""#,
    );
    let mut c = Spcp::connect(proxy.mgmt_port);
    let peer = c.0.local_addr().unwrap().to_string();
    c.script(&r#"00 "admin" > 00; 01 "Wr0ng-Pw-q7zK" > 01;"#.repeat(3));
    c.assert_eof();
    wait_until("the peer in the log", || {
        proxy.log().contains(&format!("from {peer}"))
    });
    let log = proxy.log();
    assert!(!log.contains("Wr0ng") && !log.contains("s3cr3t"), "{log}");
}

#[test]
fn metrics_move_with_pop3_traffic() {
    let proxy = proxy(&[]);
    let mut c = Spcp::login(proxy.mgmt_port);
    assert_eq!((c.num(CONNS), c.num(ACCESSES), c.num(BYTES)), (0, 0, 0));
    let sessions: Vec<Pop3> = (0..3).map(|_| pop3(proxy.port, "alice")).collect();
    assert_eq!((c.num(CONNS), c.num(ACCESSES)), (3, 3));
    drop(sessions);
    wait_until("connections back to 0", || c.num(CONNS) == 0);
    assert_eq!(c.num(ACCESSES), 3, "accesses never go down");

    let before = c.num(BYTES);
    let mut p = pop3(proxy.port, "alice");
    assert_eq!(c.num(ACCESSES), 4);
    p.cmd("RETR 1");
    let reply = p.multi();
    assert_eq!(unstuff(&reply), alice1());
    let want = before + reply.len() as u64;
    wait_until("bytes to count the RETR", || c.num(BYTES) >= want);
    c.script(r#"05 > 00; 11 "cat" > 00; 05 > 00 "cat"; 11 "" > 00; 05 > 00"#);
}

#[test]
fn set_transformation_applies_from_the_next_retr() {
    let proxy = proxy(&[]);
    let mut c = Spcp::login(proxy.mgmt_port);
    let mut early = pop3(proxy.port, "alice");
    assert_eq!(retr(&mut early, 1), alice1());
    c.script(r#"11 "printf X" > 00"#);
    assert_eq!(retr(&mut early, 1), b"X\r\n", "opened before");
    assert_eq!(retr(&mut pop3(proxy.port, "alice"), 2), b"X\r\n");
    c.script(r#"11 "" > 00"#);
    assert_eq!(retr(&mut early, 1), alice1(), "removed");
}

#[test]
fn a_retr_in_progress_keeps_the_old_transformation() {
    let proxy = proxy(&["-t", "cat"]);
    let mut c = Spcp::login(proxy.mgmt_port);
    let mut p = pop3(proxy.port, "big");
    p.cmd("RETR 1");
    // The status line is held until the filter's output starts: `cat` is running now.
    let mut reply = p.line();
    assert!(reply.starts_with(b"+OK"), "{:?}", common::excerpt(&reply));
    c.script(r#"11 "printf X" > 00"#);
    while !reply.ends_with(b"\r\n.\r\n") {
        reply.extend_from_slice(&p.line());
    }
    assert_big(&unstuff(&reply), "RETR through cat, changed mid-way");
    assert_eq!(retr(&mut pop3(proxy.port, "alice"), 1), b"X\r\n");
}

#[test]
fn set_buffer_extremes_relay_the_big_message_exactly() {
    let proxy = proxy(&[]);
    let mut c = Spcp::login(proxy.mgmt_port);
    c.script(r#"10 01ff > 03; 10 0000 > 03; 10 02 > 03; 10 100000 > 03; 10 "" > 03"#);
    for size in ["0200", "ffff"] {
        c.script(&format!("10 {size} > 00"));
        let body = retr(&mut pop3(proxy.port, "big"), 1);
        assert_big(&body, &format!("buffer 0x{size}"));
    }
}

#[test]
fn set_timeout_ends_an_idle_session() {
    let proxy = proxy(&[]);
    Spcp::login(proxy.mgmt_port).script(
        r#" 12 00000000 00000000 > 03       // zero
            12 00000000 000003e8 > 03       // 1000 ms
            12 00000001 000000 > 03         // 3-byte millis
            12 000002 00000000 > 03         // 3-byte seconds
            12 00000002 > 03                // one argument
            12 00000002 00000000 > 00"#,
    );
    let mut p = pop3(proxy.port, "alice");
    let idle = Instant::now();
    assert_eq!(p.line(), b"-ERR Disconnected for inactivity\r\n");
    assert_eq!(p.read_to_end(), b"", "then EOF");
    let t = idle.elapsed().as_secs_f64();
    assert!((1.5..5.0).contains(&t), "closed after {t:.2} s");
}

#[test]
fn unknown_commands_wrong_nargs_and_framing() {
    let proxy = proxy(&[]);
    let mut c = Spcp::connect(proxy.mgmt_port);
    c.script("0a > 02"); // unknown, before login
    let (login, want): (Vec<_>, Vec<_>) = parse(&format!(r#"{LOGIN}; 02 > 00 "0""#))
        .into_iter()
        .unzip();
    for b in login.concat() {
        c.send(&[b]); // one byte per write
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.recv_n(3), want);
    c.script(
        r#" 0a "x" > 02; 02 > 00 "0"; 15 > 02; ff > 02; 02 > 00 "0"
            02 "x" > 03; 10 > 03; 06 "" > 03; 00 > 03    // wrong NARGS, nothing changed:
            00 "admin" "x" > 03; 02 > 00 "0""#,
    );
    let max = vec![&[b'a'; 255][..]; 255]; // the largest frame: 65 282 bytes
    c.send(&frame(0x05, &max));
    assert_eq!(c.recv(), (3, String::new()));

    let (frames, want): (Vec<_>, Vec<_>) =
        parse(r#"7f > 02; 11 "cat" > 00; 05 > 00 "cat"; 11 "" > 00"#)
            .into_iter()
            .unzip();
    let seq = frames.concat();
    for cut in 0..=seq.len() {
        c.send(&seq[..cut]);
        thread::sleep(Duration::from_millis(3));
        c.send(&seq[cut..]);
        assert_eq!(c.recv_n(4), want, "split at {cut}");
    }
    // Hundreds in one write: more than a connection answers per turn of the loop.
    c.send(&seq.repeat(100));
    for i in 0..100 {
        assert_eq!(c.recv_n(4), want, "batch {i}");
    }

    // A truncated frame, left pending and then abandoned, affects no one else.
    let cut = Spcp::connect(proxy.mgmt_port);
    (&cut.0).write_all(&[0x00, 1, 5, b'a']).unwrap(); // USER "a...
    Spcp::login(proxy.mgmt_port).script(r#"02 > 00 "0""#);
    cut.0.shutdown(Shutdown::Both).unwrap();
    Spcp::login(proxy.mgmt_port).script(r#"04 > 00 "0""#);
    c.script(r#"02 > 00 "0"; 06 > 00"#); // quit
    c.assert_eof();
    let mut c = Spcp::connect(proxy.mgmt_port);
    c.script(&format!(
        r#"06 "x" > 03; {LOGIN}; 06 "" > 03; 02 > 00 "0"; 06 > 00"#
    ));
    c.assert_eof();
    let mut c = Spcp::connect(proxy.mgmt_port);
    c.script("06 > 00"); // before login
    c.assert_eof();
}
