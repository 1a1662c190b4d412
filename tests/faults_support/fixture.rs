//! The frame of every fault case: a complete session through the daemon,
//! the daemon started in front of Dovecot or of a scripted origin with a
//! first complete session and its [`Baseline`], and after the fault, a new
//! complete session with nothing leaked.

use super::mailbox::{small_retr, small_stat};
use super::{s, Baseline, Client, Origin};
use crate::common::{dovecot, Proxy};
use std::sync::OnceLock;
use std::time::Duration;

/// A complete session through `port`: greeting, login as alice, STAT, LIST,
/// RETR 1 (the full reply, terminator included), QUIT, then the end of the
/// connection with nothing more. Returns (STAT line, RETR 1 reply).
pub fn full_session(port: u16) -> (Vec<u8>, Vec<u8>) {
    let mut c = Client::session(port, "alice");
    c.cmd("STAT");
    let stat = c.line();
    assert!(stat.starts_with(b"+OK "), "STAT: {}", s(&stat));
    c.cmd("LIST");
    let list = c.multi();
    assert!(
        list.starts_with(b"+OK") && list.ends_with(b"\r\n.\r\n"),
        "LIST: {}",
        s(&list)
    );
    c.cmd("RETR 1");
    let retr = c.multi();
    assert!(retr.starts_with(b"+OK"), "RETR 1: {}", s(&retr));
    c.cmd("QUIT");
    let quit = c.line();
    assert!(quit.starts_with(b"+OK"), "QUIT: {}", s(&quit));
    let rest = c.read_to_close(Duration::from_secs(5));
    assert!(
        rest.ended() && rest.bytes.is_empty(),
        "after QUIT: {rest:?} ({})",
        s(&rest.bytes)
    );
    (stat, retr)
}

/// The daemon still serves: a full session, with the exact STAT line and
/// RETR 1 reply given (as a direct session or the scripted mailbox says).
pub fn assert_serves(port: u16, stat: &[u8], retr1: &[u8]) {
    let (got_stat, got_retr) = full_session(port);
    assert_eq!(s(&got_stat), s(stat), "STAT of a new session");
    assert!(
        got_retr == retr1,
        "RETR 1 of a new session: {} bytes {}, expected {} bytes {}",
        got_retr.len(),
        s(&got_retr),
        retr1.len(),
        s(retr1)
    );
}

/// What a full session of alice gets straight from Dovecot: (STAT, RETR 1)
/// (fetched once per test process).
pub fn direct_session() -> &'static (Vec<u8>, Vec<u8>) {
    static DIRECT: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    DIRECT.get_or_init(|| full_session(dovecot().port))
}

/// Replies of Dovecot itself to `commands` sent one at a time after a login
/// as alice (`multi` says which replies are multi-line).
pub fn direct_replies(commands: &[(&str, bool)]) -> Vec<Vec<u8>> {
    let mut c = Client::session(dovecot().port, "alice");
    commands
        .iter()
        .map(|(command, multi)| {
            c.cmd(command);
            if *multi {
                c.multi()
            } else {
                c.line()
            }
        })
        .collect()
}

/// The daemon in front of Dovecot with `extra`, a first full session, and
/// the baseline.
pub fn start_for_dovecot(extra: &[&str]) -> (Proxy, Baseline) {
    let (stat, retr) = direct_session();
    let proxy = Proxy::for_dovecot(extra);
    assert_serves(proxy.port, stat, retr);
    let base = Baseline::take(proxy.pid());
    (proxy, base)
}

/// After a fault of a daemon in front of Dovecot: nothing leaked, a new full
/// session works, still nothing leaked.
pub fn still_serves_dovecot(proxy: &Proxy, base: &Baseline, fault: &str) {
    let (stat, retr) = direct_session();
    base.assert_no_leak(fault);
    assert_serves(proxy.port, stat, retr);
    base.assert_no_leak(&format!("the session after {fault}"));
}

/// The daemon in front of the scripted `origin` with `extra`, a first full
/// session (the origin's connection 0), and the baseline.
pub fn start_scripted(origin: &Origin, extra: &[&str]) -> (Proxy, Baseline) {
    let proxy = Proxy::for_origin(origin.port, extra);
    assert_serves(proxy.port, &small_stat(), &small_retr(1));
    let base = Baseline::take(proxy.pid());
    (proxy, base)
}

/// Same as [`still_serves_dovecot`], for a daemon in front of a scripted
/// origin.
pub fn still_serves_scripted(proxy: &Proxy, base: &Baseline, fault: &str) {
    base.assert_no_leak(fault);
    assert_serves(proxy.port, &small_stat(), &small_retr(1));
    base.assert_no_leak(&format!("the session after {fault}"));
}
