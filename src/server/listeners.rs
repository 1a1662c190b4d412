//! The listening sockets: opened when the daemon starts (bound, or inherited from the service
//! manager), accepted from by `accept.rs`, and closed at shutdown.
//!
//! POP3 (and POP3S) listeners are bound on every `-l` address — at least one must work — or,
//! under socket activation, are exactly the sockets inherited (nothing is bound for POP3 then).
//! The management listener is always bound here, and the metrics one with `--metrics`. With `--reuse-port`, a POP3 listener shares
//! its port with other instances; at shutdown it first accepts what the kernel already queued
//! on it (closing it would reset those connections, while new ones now go to the other
//! instances), and closes right after its queue is empty.

use super::Server;
use crate::args::Config;
use crate::ctx::{Endpoint, Owner};
use crate::listen::{self, activation::Inherited};
use mio::net::TcpListener;
use mio::Token;
use selector::{Interest, Selector};
use std::io;
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Plain POP3 (STLS offered when there is a certificate).
    Pop3,
    /// POP3 in TLS from the first byte.
    Pop3s,
    Management,
    /// The HTTP endpoint of `--metrics`.
    Metrics,
}

impl Kind {
    /// How the log names a listener of this kind, after its address.
    fn label(self) -> &'static str {
        match self {
            Kind::Pop3 => "",
            Kind::Pop3s => " (POP3S)",
            Kind::Management => " (management)",
            Kind::Metrics => " (metrics)",
        }
    }
}

pub(super) struct Listener {
    pub socket: TcpListener,
    pub token: Token,
    pub kind: Kind,
    /// The kernel said there are connections to accept, and none has failed since.
    pub ready: bool,
    /// At shutdown, accept what is queued before closing (a port shared by `--reuse-port`).
    pub drain: bool,
}

/// Opens every listener: the POP3 ones from `inherited` when the service manager passed
/// sockets, else bound as configured; then the management one.
pub(super) fn open(
    config: &Config,
    inherited: Option<Vec<Inherited>>,
    selector: &mut Selector<Owner, Endpoint>,
) -> io::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    let mut add = |socket: TcpListener, addr: SocketAddr, kind: Kind, drain: bool| {
        let owner = Owner::Listener(listeners.len());
        let token = selector.register(&socket, owner, Endpoint::Listener, Interest::READ)?;
        log::info!("listening on {addr}{}", kind.label());
        listeners.push(Listener {
            socket,
            token,
            kind,
            ready: true,
            drain,
        });
        io::Result::Ok(())
    };
    match inherited {
        Some(sockets) => {
            if config.reuse_port {
                log::warn!(
                    "--reuse-port does not apply to inherited sockets (ReusePort= in the \
                     .socket unit does)"
                );
            }
            for s in sockets {
                let kind = if s.pop3s { Kind::Pop3s } else { Kind::Pop3 };
                log::info!("inherited descriptor {} named {:?}", s.fd, s.name);
                // Nothing to drain: the service manager keeps the socket, and its queue,
                // open for the next instance.
                add(TcpListener::from_std(s.socket), s.addr, kind, false)?;
            }
        }
        None => {
            let (mut bound, mut errors) = (0, Vec::new());
            for (addr, kind) in pop3_addresses(config) {
                match listen::listen(addr, config.reuse_port) {
                    Ok(socket) => {
                        add(socket, addr, kind, config.reuse_port)?;
                        bound += 1;
                    }
                    Err(e) => {
                        log::warn!("cannot listen on {addr}: {e}");
                        errors.push(format!("{addr}: {}", explain(&e, config.reuse_port)));
                    }
                }
            }
            if bound == 0 {
                return Err(io::Error::other(format!(
                    "cannot listen: {}",
                    errors.join("; ")
                )));
            }
        }
    }
    let mgmt = SocketAddr::new(config.management.listen, config.management.port);
    let socket = listen::listen(mgmt, false)
        .map_err(|e| io::Error::other(format!("cannot listen on {mgmt} (management): {e}")))?;
    add(socket, mgmt, Kind::Management, false)?;
    if let Some(addr) = config.metrics {
        let socket = listen::listen(addr, false)
            .map_err(|e| io::Error::other(format!("cannot listen on {addr} (metrics): {e}")))?;
        add(socket, addr, Kind::Metrics, false)?;
    }
    Ok(listeners)
}

/// Where to bind POP3: the port on each `-l` address, then the POP3S port on each.
fn pop3_addresses(config: &Config) -> impl Iterator<Item = (SocketAddr, Kind)> + '_ {
    let pop3 = config
        .listen
        .iter()
        .map(|ip| (SocketAddr::new(*ip, config.port), Kind::Pop3));
    let pop3s = config.tls.pop3s_port.into_iter().flat_map(|port| {
        config
            .listen
            .iter()
            .map(move |ip| (SocketAddr::new(*ip, port), Kind::Pop3s))
    });
    pop3.chain(pop3s)
}

/// A bind error, with what to do about a port already taken.
fn explain(e: &io::Error, reuse_port: bool) -> String {
    if e.kind() != io::ErrorKind::AddrInUse {
        return e.to_string();
    }
    if reuse_port {
        format!("{e} (another process listens on it without --reuse-port, or as another user)")
    } else {
        format!(
            "{e} (another process listens on it; to run several instances on one port, \
             start each with --reuse-port)"
        )
    }
}

impl Server {
    /// At shutdown: the listeners that do not drain close at once (the management one, and
    /// every one without `--reuse-port`). The others move up in the list, out of step with
    /// their owners' indices, which no longer matters: from now on `accept` drains them all
    /// whatever readiness says.
    pub(super) fn close_listeners_now(&mut self) {
        let (drain, close): (Vec<_>, Vec<_>) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|l| l.drain);
        for l in close {
            self.ctx.selector.remove(l.token);
        }
        self.listeners = drain;
    }

    /// At shutdown, after the batch: each listener left accepts what is queued on it, as
    /// sessions, until the kernel has nothing more, and closes at once.
    pub(super) fn drain_listeners(&mut self) {
        for l in std::mem::take(&mut self.listeners) {
            self.ctx.selector.remove(l.token);
            let mut taken = 0;
            loop {
                match l.socket.accept() {
                    Ok((stream, addr)) => {
                        taken += 1;
                        self.open_session(stream, addr, l.kind == Kind::Pop3s);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(e) => {
                        log::warn!(
                            "shutting down: cannot accept what is queued ({e}); closing the \
                             listener resets it"
                        );
                        break;
                    }
                }
            }
            drop(l);
            log::info!("shutting down: accepted {taken} queued connections, then closed");
        }
    }
}
