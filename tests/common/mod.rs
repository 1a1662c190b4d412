//! Integration-test harness: a real Dovecot POP3 origin, the pop3filter
//! daemon under test, and a raw POP3 client (`pop3.rs`).  Use it with `mod common;`.
//!
//! * `dovecot()` (`dovecot.rs`) is one Dovecot shared by the whole test process,
//!   started on first use; `start_dovecot()` is a private one (for tests that DELE
//!   mail), stopped on drop.  Both come from `scripts/dovecot.sh`, so they serve the
//!   mailboxes of `scripts/make-mail.py` (users alice, big, bench, empty, mime, mimebig;
//!   password "secret"), on 127.0.0.1 only.  Message files in
//!   `Dovecot::dir/mail/<user>/cur/` are hard links into a cache shared by all
//!   instances: read or delete them, never write to them.
//! * `dovecot_tls()` / `start_dovecot_tls(pair)`: the same with TLS (STLS on
//!   its POP3 port, implicit TLS on `Dovecot::pop3s_port`), presenting a leaf
//!   of `certs()` (`certs.rs`: test CAs and leaves made with openssl).
//! * `Proxy` (`proxy.rs`) runs the daemon binary; it is killed on drop and its stderr
//!   is kept in a file (`Proxy::log`), printed if the test panics.  Start-up is
//!   detected from /proc (a listening socket), so no probe connection is made.
//!   `Proxy::start_activated` runs it under `systemd-socket-activate` (socket
//!   activation); `listening_ports(pid)` (`ports.rs`, beside `free_port()`) says
//!   what a process listens on.
//! * Every child process is forked by one helper thread (`process.rs`) that never
//!   exits and gets `PR_SET_PDEATHSIG(SIGTERM)`, so nothing outlives the test process
//!   (the signal fires when the forking *thread* dies, hence the helper).
//! * Scratch files (`scratch()`, `process.rs`) live in
//!   `target/tmp/pop3filter-harness/*-<test pid>-<n>` (or the system temp dir if
//!   Dovecot's mail user could not reach that); entries of test processes that are
//!   gone are removed on the next start.

#![allow(dead_code)]

mod certs;
mod dovecot;
mod pop3;
mod ports;
mod process;
mod proxy;
mod sha256;

#[allow(unused_imports)]
pub use certs::{certs, CertPair, Certs};
#[allow(unused_imports)]
pub use dovecot::{
    dovecot, dovecot_tls, start_dovecot, start_dovecot_env, start_dovecot_tls, Dovecot,
};
#[allow(unused_imports)]
pub use pop3::{connect_from, connect_small_window, excerpt, lf_to_crlf, unstuff, wire_form, Pop3};
#[allow(unused_imports)]
pub use ports::{free_port, listening_ports};
#[allow(unused_imports)]
pub use process::{scratch, spawn_child};
#[allow(unused_imports)]
pub use proxy::Proxy;
#[allow(unused_imports)]
pub use sha256::{hex, sha256};

pub const PASSWORD: &str = "secret";
