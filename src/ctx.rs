//! What every connection of the loop shares: who owns a source ([`Owner`]), what a source is
//! to its owner ([`Endpoint`]), and the context the loop lends to every hook ([`Ctx`]).
//!
//! These live below `server.rs` so that the connections (`pop3/`, `spcp/`, `scrape/`) can name them
//! without importing the loop that drives them.

use crate::args::Config;
use crate::filter::spawner::Spawner;
use crate::filter::Orphans;
use crate::metrics::Metrics;
use crate::net::tls::Tls;
use crate::resolve::Resolver;
use selector::Selector;

/// Who owns a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A listening socket, by index.
    Listener(usize),
    /// A POP3 session, by slot.
    Session(usize),
    /// A management connection, by slot.
    Manager(usize),
    /// A connection to the metrics endpoint, by slot.
    Scraper(usize),
    /// The signal pipe.
    Signals,
}

/// What a source is to its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A listening socket.
    Listener,
    /// The POP3 client's socket.
    Client,
    /// The socket to the origin server.
    Origin,
    /// The transformation's standard input.
    FilterIn,
    /// The transformation's standard output.
    FilterOut,
    /// The transformation's pidfd (readable when it exits).
    FilterExit,
    /// A management connection's socket.
    Manager,
    /// A metrics scraper's socket.
    Scraper,
    /// The signal pipe's read end.
    Signal,
}

/// What the loop lends to every hook.
pub struct Ctx {
    /// The registry.
    pub selector: Selector<Owner, Endpoint>,
    /// Name lookups off the loop.
    pub resolver: Resolver,
    /// The configuration in force (management commands change it).
    pub config: Config,
    /// Counters.
    pub metrics: Metrics,
    /// Killed filters waiting to be reaped.
    pub orphans: Orphans,
    /// Filters started off the loop, and the places for them.
    pub spawner: Spawner,
    /// The POP3 listeners' addresses: an origin connection that reaches one is a loop.
    pub listening: Vec<std::net::SocketAddr>,
    /// The connections to the origin, as (local, remote) addresses: a client connection
    /// whose (remote, local) pair is one of them is the proxy itself (a loop).
    pub outgoing: std::collections::HashSet<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Since when accept() has been failing for want of descriptors (cleared by the next
    /// accept that works).
    pub out_of_fds_since: Option<std::time::Instant>,
    /// `--origin-xclient` without the origin offering it was logged (once).
    pub xclient_missing_logged: bool,
    /// Sessions (slot, serial) that could not connect to the origin for want of a
    /// descriptor: retried, with accepting paused, until descriptors are free again.
    pub starved: Vec<(usize, u64)>,
    /// TLS configurations (the certificate is replaced on SIGHUP).
    pub tls: Tls,
}
