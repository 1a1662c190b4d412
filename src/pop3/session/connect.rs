//! RESOLVING and CONNECTING: from a host name to a connected origin socket.
//!
//! Every resolved address is tried in turn until one accepts; a failure at connect() and a
//! failure reported later by the socket (SO_ERROR when it becomes writable) both move on to the
//! next address. Meanwhile whatever the client sends is read and kept for COPY.
//!
//! A connect() refused for want of descriptors (EMFILE, ENFILE, ...) is not the origin's
//! fault: the session stays in CONNECTING, holding its client, and the server retries it
//! shortly, accepting no new client meanwhile (see `src/server/accept.rs`).

use super::{Session, State};
use crate::args::OriginTls;
use crate::net::proxy;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a session may wait for a descriptor to reach the origin before it gives up (and,
/// while the daemon is out of descriptors, for its origin's greeting).
pub const STARVED_LIMIT: Duration = Duration::from_secs(5);

/// An origin connection that reaches one of the daemon's own POP3 listeners: to the same host
/// (the peer's address is our own end's) on a port the daemon listens on.
fn is_loop(peer: SocketAddr, local: SocketAddr, listening: &[SocketAddr]) -> bool {
    let same_host = peer.ip() == local.ip() || peer.ip().is_loopback();
    same_host
        && listening
            .iter()
            .any(|l| l.port() == peer.port() && (l.ip().is_unspecified() || l.ip() == peer.ip()))
}
use crate::ctx::{Ctx, Endpoint, Owner};
use crate::metrics::{Outcome, TlsSide};
use crate::net::out_of_resources;
use crate::net::{Side, Stream};
use crate::pop3::relay::Fault;
use mio::net::TcpStream;
use selector::Interest;
use std::io;

impl Session {
    pub(super) fn close_origin(&mut self, ctx: &mut Ctx) {
        if let Some((mut origin, token)) = self.origin.take() {
            if let (Ok(local), Some(remote)) = (origin.io.tcp().local_addr(), self.origin_addr) {
                ctx.outgoing.remove(&(local, remote));
            }
            self.origin_tls = origin.io.describe();
            if let Some(ok) = origin.io.take_handshake() {
                ctx.metrics.tls_handshake(TlsSide::Origin, ok);
            }
            origin.io.close_notify();
            ctx.selector.remove(token);
            drop(origin);
        }
    }

    /// Starts a connection to the next address; ERROR when none is left.
    pub(super) fn connect_next(&mut self, ctx: &mut Ctx) -> State {
        let mut last_error = None;
        while let Some(&addr) = self.addrs.get(self.next_addr) {
            self.next_addr += 1;
            let attempt = TcpStream::connect(addr).and_then(|stream| {
                let token = ctx.selector.register(
                    &stream,
                    Owner::Session(self.slot),
                    Endpoint::Origin,
                    Interest::WRITE,
                )?;
                Ok((stream, token))
            });
            match attempt {
                Ok((stream, token)) => {
                    // Known from connect() on: a client connection from here to there is
                    // ourselves. (The same local port may serve other destinations too.)
                    if let Ok(local) = stream.local_addr() {
                        ctx.outgoing.insert((local, addr));
                    }
                    let mut side = Side::new(Stream::plain(stream));
                    side.readable = false;
                    side.writable = false;
                    self.origin = Some((side, token));
                    self.origin_addr = Some(addr);
                    return State::Connecting;
                }
                Err(e) if out_of_resources(&e) => {
                    self.next_addr -= 1;
                    let since = *self.starved_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= STARVED_LIMIT {
                        // A session must not hold a descriptor forever waiting for another
                        // (a loop through another relay would never unwind).
                        self.failure = Some(format!(
                            "no descriptor free to reach the origin for {} s: {e}",
                            STARVED_LIMIT.as_secs()
                        ));
                        return State::Error;
                    }
                    if !self.starved {
                        self.starved = true;
                        log::warn!(
                            "session {}: cannot connect to {addr}: {e}; the client waits for a free descriptor",
                            self.serial
                        );
                    }
                    ctx.starved.push((self.slot, self.serial));
                    return State::Connecting;
                }
                Err(e) => {
                    log::debug!("session {}: connect to {addr}: {e}", self.serial);
                    ctx.metrics.origin_connect_failures += 1;
                    last_error = Some(e);
                }
            }
        }
        let origin = &ctx.config.origin;
        let why = match (&self.failure, last_error) {
            (Some(earlier), None) => earlier.clone(),
            (_, Some(e)) => e.to_string(),
            (None, None) => "no address".to_string(),
        };
        self.failure = Some(format!(
            "cannot connect to {}:{}: {why}",
            origin.host, origin.port
        ));
        State::Error
    }

    /// The server's retry of a connect that was out of descriptors.
    pub fn retry_connect(&mut self, ctx: &mut Ctx) -> State {
        let state = self.stm.current();
        if state == State::Connecting && self.origin.is_none() {
            self.connect_next(ctx)
        } else {
            state
        }
    }

    /// The origin socket became writable while connecting: connected, or failed.
    pub(super) fn check_connected(&mut self, ctx: &mut Ctx) -> State {
        let Some((origin, _)) = &self.origin else {
            return self.connect_next(ctx);
        };
        let error = match origin.io.tcp().take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match origin.io.tcp().peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return State::Connecting,
                Err(e) => Some(e),
            },
        };
        match error {
            None => self.origin_connected(ctx),
            Some(e) => {
                log::debug!(
                    "session {}: connect to {:?}: {e}",
                    self.serial,
                    self.origin_addr
                );
                ctx.metrics.origin_connect_failures += 1;
                self.failure = Some(e.to_string());
                self.close_origin(ctx);
                self.connect_next(ctx)
            }
        }
    }

    /// Connected: with implicit TLS to the origin, the handshake starts now (and goes on as
    /// HELLO reads the greeting).
    fn origin_connected(&mut self, ctx: &mut Ctx) -> State {
        let Some((origin, _)) = &mut self.origin else {
            return State::Error;
        };
        let sock = origin.io.tcp();
        if let (Ok(local), Ok(peer)) = (sock.local_addr(), sock.peer_addr()) {
            if is_loop(peer, local, &ctx.listening) {
                self.failure = Some(format!("the origin {peer} is this proxy itself (a loop)"));
                return State::Error;
            }
        }
        if ctx.config.fleet.origin_proxy_protocol {
            let dest = self
                .client_dest
                .or_else(|| self.client.io.tcp().local_addr().ok())
                .unwrap_or(self.client_addr);
            let header = proxy::v2(self.client_addr, dest);
            // In one single write: Dovecot refuses a header split across writes. A fresh
            // socket's send buffer takes it whole.
            match (&*sock).write(&header) {
                Ok(n) if n == header.len() => {}
                Ok(_) => {
                    self.failure = Some("cannot send the PROXY header whole".into());
                    return State::Error;
                }
                Err(e) => {
                    self.failure = Some(format!("cannot send the PROXY header: {e}"));
                    return State::Error;
                }
            }
        }
        self.start_origin_tls(ctx)
    }

    /// With implicit TLS to the origin, the handshake starts now.
    fn start_origin_tls(&mut self, ctx: &mut Ctx) -> State {
        let (Some((origin, _)), OriginTls::Implicit, Some((config, name))) =
            (&mut self.origin, ctx.tls.origin_mode, &ctx.tls.origin)
        else {
            return State::Hello;
        };
        match origin.io.connect_tls(config.clone(), name.clone()) {
            Ok(()) => {
                origin.writable = true; // the client hello goes out on the first round
                State::Hello
            }
            Err(e) => {
                self.failure = Some(format!("origin: {e}"));
                State::Error
            }
        }
    }

    /// Connected to the origin, no greeting yet, for longer than [`STARVED_LIMIT`].
    pub fn waits_for_greeting(&self, now: Instant) -> bool {
        self.stm.current() == State::Hello
            && !self.relay.client_greeted()
            && now.duration_since(self.last_active) >= STARVED_LIMIT
    }

    /// Reads what the client sends before the origin is there (it is kept, not lost).
    pub(super) fn hold_client(&mut self) -> State {
        let state = self.stm.current();
        match self.relay.read_client(&mut self.client) {
            Ok(_) if !self.client.eof => state,
            Ok(_) => self.end(
                Outcome::ClientClosed,
                "client closed before the origin answered",
            ),
            Err(Fault::Client(e)) | Err(Fault::Origin(e)) => self.client_failed(&e),
        }
    }
}
