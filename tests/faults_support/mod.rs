//! Helpers shared by the fault-injection suite (`tests/faults_origin.rs`,
//! `tests/faults_origin_filter.rs`, `tests/faults_client.rs`,
//! `tests/faults_client_input.rs`, `tests/faults_filter.rs`,
//! `tests/shutdown.rs`). Use it after `mod common;` with `mod faults_support;`.
//! Everything is re-exported here: `faults_support::Name`, whatever the
//! file it lives in.
//!
//! * [`Client`] (`client.rs`): a raw POP3 client that owns its read buffer,
//!   so one can switch between line reads and "everything until the
//!   connection ends" without losing bytes, and that reports a close, a reset
//!   or silence instead of panicking.
//! * [`Origin`] (`origin.rs`): a scripted POP3 origin programmed per test.
//!   Every accepted connection runs the test's handler with its index (0, 1,
//!   ...); the handler can greet or not, answer or not, send garbage, die at
//!   a byte count, stall, or [`OriginConn::serve`] a small, well-behaved
//!   mailbox (`mailbox.rs`). It records every line the proxy sent on each
//!   connection, and can be told to stop listening (connections refused) and
//!   to listen again on its port.
//! * The frame of a case (`fixture.rs`): the daemon in front of Dovecot
//!   ([`start_for_dovecot`]) or of a scripted origin ([`start_scripted`]),
//!   a first complete session and the baseline; after the fault,
//!   [`still_serves_dovecot`] / [`still_serves_scripted`].
//! * [`Baseline`] (`leaks.rs`): the leak checker. It counts the entries of
//!   `/proc/PID/fd` of the daemon and of its child processes (`ppid ==
//!   daemon`, zombies included) after a first complete session, and asserts
//!   later that the count is back there with no child left.
//! * [`RssWatch`] (`leaks.rs`): the peak VmRSS of the daemon while a fault
//!   goes on.
//! * Processes through /proc (`procs.rs`, on top of `tests/proc_support/`,
//!   shared with `filter_support`): children, zombies, processes tagged by
//!   the `FILTER_MSG` value in their environment (so a filter's descendants
//!   can be found after they are reparented away from the daemon); signals
//!   and `waitpid` for the daemon's exit status.
//! * Here: short printable forms of bytes, [`has_terminator`],
//!   [`assert_one_err_line`], [`assert_cut_reply`], [`set_linger_zero`].

#![allow(dead_code)]

#[path = "../proc_support/mod.rs"]
mod proc_support;

mod client;
mod fixture;
mod leaks;
mod mailbox;
mod origin;
mod procs;

#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use fixture::*;
#[allow(unused_imports)]
pub use leaks::*;
#[allow(unused_imports)]
pub use mailbox::*;
#[allow(unused_imports)]
pub use origin::*;
#[allow(unused_imports)]
pub use proc_support::{children, eventually, proc_info, processes, ProcInfo};
#[allow(unused_imports)]
pub use procs::*;

use crate::common::excerpt;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

/// A short printable form of bytes for assertion messages.
pub fn s(bytes: &[u8]) -> String {
    excerpt(bytes)
}

/// The last `n` bytes of `data`, printable.
pub fn tail(data: &[u8], n: usize) -> String {
    excerpt(&data[data.len().saturating_sub(n)..])
}

/// Whether a multi-line reply (or a prefix of one, status line included) ends
/// with the terminator line.
pub fn has_terminator(reply: &[u8]) -> bool {
    reply.ends_with(b"\r\n.\r\n") || reply.ends_with(b"\n.\n")
}

/// Asserts `bytes` is exactly one `-ERR` line.
pub fn assert_one_err_line(bytes: &[u8], what: &str) {
    assert!(
        bytes.starts_with(b"-ERR")
            && bytes.ends_with(b"\r\n")
            && bytes.iter().filter(|&&b| b == b'\n').count() == 1,
        "{what}: expected one -ERR line, got {}",
        s(bytes)
    );
}

/// Asserts what a client got of a reply that the origin cut after sending
/// `sent`: one `-ERR` line (nothing of the reply was relayed), or a prefix
/// of `sent` without the terminator.
pub fn assert_cut_reply(got: &[u8], sent: &[u8], what: &str) {
    if got.starts_with(b"-ERR") {
        assert_one_err_line(got, what);
    } else {
        assert!(
            sent.starts_with(got),
            "{what}: the client got bytes the origin did not send; ends {}",
            tail(got, 200)
        );
        assert!(!has_terminator(got), "{what}: terminator after a cut reply");
    }
}

/// Makes the next close of `stream` send RST instead of FIN (SO_LINGER 0).
pub fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a descriptor we own, with a correctly sized struct.
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}
