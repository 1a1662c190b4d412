//! One POP3 client connection and its connection to the origin, driven as a state machine.
//!
//! The server creates a [`Session`] per accepted client and calls into it through the `stm`
//! driver whenever one of its sockets is ready; every hook ends by moving bytes as far as they
//! go, and after each call the server asks [`Session::sync`] to turn the session's wants into
//! selector interest. Interest is a pure function of the state and the buffers: see
//! [`Session::sync`].
//!
//! Invariant: a socket is removed from the selector before it is closed.

use super::relay::Relay;
use super::State;
use crate::args::OriginTls;
use crate::ctx::{Ctx, Endpoint, Owner};
use crate::metrics::{CensorCounts, Outcome, TlsSide};
use crate::net::{Side, Stream};
use mio::net::TcpStream;
use mio::Token;
use selector::Interest;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;
use stm::Stm;

mod connect;
pub use connect::STARVED_LIMIT;
mod filter;
mod filter_run;
mod header;
mod machine;
mod relaying;

/// How many read-parse-write rounds one event may run before the session yields to others.
pub(super) const ROUNDS_PER_EVENT: usize = 32;

/// What the loop tells a session about one of its sockets.
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    /// Which socket.
    pub endpoint: Endpoint,
    /// It can be read (or has ended).
    pub readable: bool,
    /// It can be written.
    pub writable: bool,
    /// The peer has finished sending: read until the end of stream.
    pub closed: bool,
}

/// A POP3 session: the client, the origin and the relay between them.
pub struct Session {
    stm: Stm<State>,
    slot: usize,
    serial: u64,
    client: Side<Stream>,
    client_token: Token,
    client_addr: SocketAddr,
    /// The address the client connected to, as a PROXY header gave it.
    client_dest: Option<SocketAddr>,
    /// Waiting for the PROXY header (HEADER).
    header: Option<Box<header::HeaderWait>>,
    origin: Option<(Side<Stream>, Token)>,
    origin_addr: Option<SocketAddr>,
    addrs: Vec<SocketAddr>,
    next_addr: usize,
    failure: Option<String>,
    /// A connect has failed for want of descriptors (logged once).
    starved: bool,
    /// Since when the session waits for a descriptor to reach the origin with.
    starved_since: Option<Instant>,
    resolved: Option<Result<Vec<SocketAddr>, String>>,
    relay: Relay,
    ending: String,
    /// Why it ended, for the daemon's counters (set with `ending`).
    outcome: Option<Outcome>,
    more: bool,
    filter: Option<Box<filter_run::FilterRun>>,
    last_active: Instant,
    /// What was already added to the daemon's counters.
    reported: Reported,
    /// How the origin side was secured, for the closing log line.
    origin_tls: String,
    /// What the censor did in this session.
    censored: CensorCounts,
}

impl Session {
    /// Registers an accepted client and enters RESOLVING.
    pub fn open(
        ctx: &mut Ctx,
        slot: usize,
        serial: u64,
        stream: TcpStream,
        client_addr: SocketAddr,
        implicit_tls: bool,
    ) -> io::Result<Session> {
        let _ = stream.set_nodelay(true);
        let client_token = ctx.selector.register(
            &stream,
            Owner::Session(slot),
            Endpoint::Client,
            Interest::READ,
        )?;
        let mut stream = Stream::plain(stream);
        let mut relay = Relay::new(ctx.config.buffer_size);
        let fleet = &ctx.config.fleet;
        let expects_header = fleet
            .proxy_from
            .iter()
            .any(|n| n.contains(client_addr.ip()));
        match (&ctx.tls.server, implicit_tls) {
            // Behind a load balancer the PROXY header comes first, TLS after it.
            (Some(_), true) if expects_header => relay.tls.client = true,
            (Some(config), true) => {
                stream.accept_tls(config.clone())?;
                relay.tls.client = true;
            }
            (Some(_), false) => relay.tls.offered = true,
            (None, _) => {}
        }
        relay.tls.require = ctx.tls.require;
        relay.tls.origin_starttls = ctx.tls.origin_mode == OriginTls::Starttls;
        let mut client = Side::new(stream);
        // the registration reports data that is already there
        client.readable = false;
        // A client connection that is one of our own origin connections, seen from the other
        // end: the origin address leads back here (another name for this host): a loop.
        let looped = match client.io.tcp().local_addr() {
            Ok(local) => ctx.outgoing.contains(&(client_addr, local)),
            Err(_) => false,
        };
        // A client that closed before it was even accepted (one link of a loop being undone)
        // must not make the session connect to the origin: that would start the next link.
        let mut probe = [0u8; 1];
        if matches!(client.io.tcp().peek(&mut probe), Ok(0)) {
            log::debug!("session {serial}: {client_addr} closed before it was served");
            ctx.selector.remove(client_token);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the client closed before it was served",
            ));
        }
        let first = if looped {
            State::Error
        } else if expects_header {
            State::Header
        } else {
            State::Resolving
        };
        let mut session = Session {
            stm: Stm::new(first),
            header: expects_header.then(|| Box::new(header::HeaderWait::new(implicit_tls))),
            client_dest: None,
            slot,
            serial,
            client,
            client_token,
            client_addr,
            origin: None,
            origin_addr: None,
            addrs: Vec::new(),
            next_addr: 0,
            failure: looped.then(|| "this connection comes from the proxy itself (a loop)".into()),
            starved: false,
            starved_since: None,
            resolved: None,
            relay,
            ending: String::new(),
            outcome: None,
            more: false,
            filter: None,
            last_active: Instant::now(),
            reported: Reported::default(),
            origin_tls: "plain".to_string(),
            censored: CensorCounts::default(),
        };
        if expects_header {
            log::debug!("session {serial}: {client_addr} connected; waiting for its PROXY header");
        } else {
            log::info!(
                "session {serial}: client {client_addr} connected, origin {}:{}",
                ctx.config.origin.host,
                ctx.config.origin.port
            );
        }
        stm::start(&mut session, ctx);
        Ok(session)
    }

    /// The session's serial number (unique for the daemon's life).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The state it is in.
    pub fn state(&self) -> State {
        self.stm.current()
    }

    /// Hands over the result of the name lookup (then the loop calls `stm::block`).
    pub fn resolved(&mut self, result: Result<Vec<SocketAddr>, String>) {
        self.resolved = Some(result);
    }

    /// True once if the last event stopped early to let other sessions run.
    pub fn take_more(&mut self) -> bool {
        std::mem::take(&mut self.more)
    }

    /// Sets selector interest from the state and the buffers: read where there is room and
    /// the kernel has not yet said there is data, write where there are bytes and the
    /// kernel has not yet said there is room.
    pub fn sync(&mut self, ctx: &mut Ctx) {
        let state = self.stm.current();
        let relaying = matches!(state, State::Hello | State::Copy | State::Filter);
        let client_read = !matches!(state, State::Error | State::Done)
            && !self.client.eof
            && !self.client.readable
            && self.relay.wants_client_input();
        let client_write = self
            .client
            .wants_write(self.relay.has_client_output() || self.filter_output_waiting());
        set(
            ctx,
            self.client_token,
            Interest::new(client_read, client_write),
        );
        if let Some((origin, token)) = &self.origin {
            let interest = if state == State::Connecting {
                Interest::WRITE
            } else {
                let read =
                    relaying && !origin.eof && !origin.readable && self.relay.wants_origin_input();
                Interest::new(read, origin.wants_write(self.relay.has_origin_output()))
            };
            set(ctx, *token, interest);
        }
        self.sync_filter(ctx);
        self.report(ctx);
    }

    /// Which replies go through FILTER, from the configuration in force: RETR bodies when a
    /// transformation or the censor is set, TOP bodies when the censor is.
    fn divert_per_config(&mut self, ctx: &Ctx) {
        self.relay.transform = ctx.config.filter.command.is_some();
        self.relay.censor = ctx.config.filter.censor.is_on();
    }

    /// Adds what happened since the last report to the daemon's counters: bytes, RETRs
    /// forwarded and completed, TLS handshakes that ended.
    fn report(&mut self, ctx: &mut Ctx) {
        let stats = &self.relay.stats;
        let m = &mut ctx.metrics;
        m.bytes_to_client += stats.to_client - self.reported.to_client;
        m.bytes_to_origin += stats.to_origin - self.reported.to_origin;
        m.retrs += stats.retrs - self.reported.retrs;
        self.reported = Reported {
            to_client: stats.to_client,
            to_origin: stats.to_origin,
            retrs: stats.retrs,
        };
        for d in self.relay.retr_times.drain(..) {
            m.retr_duration.observe(d);
        }
        if let Some(ok) = self.client.io.take_handshake() {
            m.tls_handshake(TlsSide::Client, ok);
        }
        if let Some((origin, _)) = &mut self.origin {
            if let Some(ok) = origin.io.take_handshake() {
                m.tls_handshake(TlsSide::Origin, ok);
            }
        }
    }

    /// Ends the session now (shutdown): both sides closed, no QUIT sent for the client, its
    /// filter killed.
    pub fn abort(&mut self, ctx: &mut Ctx) -> State {
        self.set_ending(Outcome::Shutdown, "closed at shutdown");
        stm::jump(self, ctx, State::Done)
    }

    /// When the session must be looked at even if nothing happens: the end of its
    /// inactivity timeout, or sooner while a filter that has exited still holds its output
    /// open (through a child it left behind).
    pub fn deadline(&self, timeout: std::time::Duration) -> Instant {
        let idle = self.last_active + timeout;
        if let Some(wait) = &self.header {
            return idle.min(wait.deadline);
        }
        match self.filter_linger() {
            Some(linger) => idle.min(self.last_active + linger.min(timeout)),
            None => idle,
        }
    }

    fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// Nothing moved for the whole inactivity timeout: what that means depends on the state.
    pub fn expire(&mut self, ctx: &mut Ctx) -> State {
        let state = self.stm.current();
        self.touch();
        log::debug!("session {}: inactive in {state}", self.serial);
        match state {
            State::Header => self.header_timed_out(),
            State::Resolving | State::Connecting => {
                if self.origin.is_some() {
                    ctx.metrics.origin_connect_failures += 1; // a connect in progress
                }
                let origin = &ctx.config.origin;
                self.failure = Some(format!(
                    "cannot connect to {}:{}: timed out",
                    origin.host, origin.port
                ));
                State::Error
            }
            State::Hello | State::Copy if self.relay.owes_replies() => {
                if self.relay.has_client_output() && !self.client.writable {
                    // The replies wait for a client that does not read, not for the origin.
                    self.outcome = Some(Outcome::Timeout);
                    return self.origin_gone("client did not read in time");
                }
                self.origin_gone("origin did not answer in time")
            }
            State::Hello | State::Copy => {
                self.set_ending(Outcome::Timeout, "inactivity timeout");
                self.relay.say(b"-ERR Disconnected for inactivity\r\n");
                State::Error
            }
            State::Filter => self.filter_timed_out(ctx),
            State::Error => self.end(
                Outcome::Timeout,
                "inactivity timeout while reporting an error",
            ),
            State::Done => State::Done,
        }
    }

    fn note(&mut self, side: Endpoint, readable: bool, writable: bool, closed: bool) {
        let s = match side {
            Endpoint::Client => &mut self.client,
            Endpoint::Origin => match &mut self.origin {
                Some((origin, _)) => origin,
                None => return,
            },
            _ => return,
        };
        s.readable |= readable;
        s.writable |= writable;
        s.closed |= closed;
    }

    /// Ends the session, unless why it ends was already said.
    fn end(&mut self, outcome: Outcome, why: &str) -> State {
        if self.ending.is_empty() {
            self.set_ending(outcome, why);
        }
        State::Done
    }

    /// Says why the session ends (for the log and the counters); a cause already named by a
    /// timeout that leads here is kept for the counters.
    fn set_ending(&mut self, outcome: Outcome, why: &str) {
        self.ending = why.to_string();
        self.outcome.get_or_insert(outcome);
    }

    /// The client's socket failed: a client that went away, or an error (TLS, say).
    fn client_failed(&mut self, e: &io::Error) -> State {
        let outcome = match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Outcome::ClientClosed,
            _ => Outcome::Error,
        };
        self.end(outcome, &format!("client error: {e}"))
    }
}

/// What a session already added to the daemon's counters.
#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    to_client: u64,
    to_origin: u64,
    retrs: u64,
}

fn set(ctx: &mut Ctx, token: Token, interest: Interest) {
    if let Err(e) = ctx.selector.set_interest(token, interest) {
        log::warn!("cannot change interest of {token:?}: {e}");
    }
}
