//! The POP3 side of the proxy: one [`Session`] per client connection, a state machine that
//! resolves and connects to the origin, relays its greeting, learns its capabilities and then
//! relays the session in both directions.
//!
//! ```text
//!  [HEADER -->] RESOLVING --> CONNECTING --> HELLO --> COPY <--> FILTER
//!      |             |            |         |         |
//!      |             |            |         +---------+--> DONE
//!      +-------------+------------+---------+--> ERROR --> DONE
//! ```
//!
//! See docs/pop3-session.md for what each endpoint waits for in each state.

mod command;
mod dotstuff;
mod relay;
mod response;
mod sasl;
mod session;

pub use session::{Readiness, Session, STARVED_LIMIT};

use std::fmt;

/// The states of a POP3 session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading the PROXY protocol header of a connection from a `--proxy-from` network.
    /// Next: RESOLVING, or DONE when the header is malformed or late.
    Header,
    /// Looking up the origin's addresses on a helper thread. Next: CONNECTING, or ERROR when
    /// the name does not resolve.
    Resolving,
    /// Connecting to the origin, one address after another. Next: HELLO, or ERROR when no
    /// address accepts.
    Connecting,
    /// Relaying the origin's greeting and asking it for CAPA (not relayed). Next: COPY.
    Hello,
    /// Relaying commands and replies. Next: FILTER when a RETR is answered `+OK` while a
    /// transformation is set; DONE after QUIT or when either side goes away; ERROR when the
    /// origin goes away while replies are owed.
    Copy,
    /// A RETR body through the transformation. Next: COPY when the message is complete or
    /// answered `-ERR`; DONE when the filter fails after its output began.
    Filter,
    /// Telling the client what went wrong (`-ERR …`). Next: DONE.
    Error,
    /// Finished: both connections are closed.
    Done,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Header => "HEADER",
            State::Resolving => "RESOLVING",
            State::Connecting => "CONNECTING",
            State::Hello => "HELLO",
            State::Copy => "COPY",
            State::Filter => "FILTER",
            State::Error => "ERROR",
            State::Done => "DONE",
        })
    }
}
