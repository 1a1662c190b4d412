//! The transport layer, below POP3 and SPCP: a connection's stream (plain or TLS), the side
//! that tracks its readiness, and the TLS configurations. Nothing here knows POP3.

pub mod cidr;
pub mod proxy;
mod side;
mod stream;
pub mod tls;

pub use side::Side;
pub use stream::{Stream, Transport};

use std::io;

/// The error says the process or the system is out of descriptors or memory: a reason to
/// wait and retry, not to give up.
pub fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
