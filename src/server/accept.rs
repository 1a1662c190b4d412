//! Taking new connections: the listeners, and the sessions waiting for a descriptor.
//!
//! When `accept` fails for lack of descriptors the existing connections keep being served and
//! accepting is retried a little later. A session whose connect() to the origin failed the same
//! way is retried first; no client is accepted while one of them still waits.

use super::listeners::Kind;
use super::{Server, ACCEPT_BURST, ACCEPT_RETRY};
use crate::metrics::Outcome;
use crate::net::out_of_resources;
use crate::pop3::{Session, State};
use crate::scrape::{self, Scraper};
use crate::spcp::Manager;
use mio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

impl Server {
    pub(super) fn accept(&mut self) {
        if self.shutdown.is_some() {
            // Only listeners shared with other instances are left: they give up their queue.
            self.drain_listeners();
            return;
        }
        if let Some(until) = self.accept_paused_until {
            if Instant::now() < until {
                return;
            }
            self.accept_paused_until = None;
        }
        // Clients already taken come first: no new one is accepted while one of them still
        // waits for a descriptor to reach the origin with.
        self.retry_starved();
        if !self.ctx.starved.is_empty() {
            self.accept_paused_until = Some(Instant::now() + ACCEPT_RETRY);
            return;
        }
        for i in 0..self.listeners.len() {
            for _ in 0..ACCEPT_BURST {
                if !self.listeners[i].ready {
                    break;
                }
                match self.listeners[i].socket.accept() {
                    Ok((stream, addr)) => {
                        self.ctx.out_of_fds_since = None; // descriptors are free again
                        match self.listeners[i].kind {
                            Kind::Pop3 => self.open_session(stream, addr, false),
                            Kind::Pop3s => self.open_session(stream, addr, true),
                            Kind::Management => self.open_manager(stream, addr),
                            Kind::Metrics => self.open_scraper(stream, addr),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.listeners[i].ready = false
                    }
                    Err(e) if out_of_resources(&e) => {
                        self.ctx.out_of_fds_since.get_or_insert_with(Instant::now);
                        log::warn!(
                            "cannot accept: {e}; serving open connections, retrying shortly"
                        );
                        self.accept_paused_until = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    }
                    Err(e) => log::debug!("accept: {e}"),
                }
            }
        }
    }

    /// Tries again to connect the sessions that were out of descriptors.
    fn retry_starved(&mut self) {
        for (slot, serial) in std::mem::take(&mut self.ctx.starved) {
            if self.sessions.get_mut(slot).map(|s| s.serial()) == Some(serial) {
                self.run_session(slot, |s, ctx| {
                    let next = s.retry_connect(ctx);
                    stm::jump(s, ctx, next)
                });
            }
        }
    }

    pub(super) fn open_session(&mut self, stream: TcpStream, addr: SocketAddr, implicit_tls: bool) {
        let slot = self.sessions.vacant();
        self.serial += 1;
        self.ctx.metrics.session_opened();
        match Session::open(&mut self.ctx, slot, self.serial, stream, addr, implicit_tls) {
            Ok(mut session) if session.state() != State::Done => {
                session.sync(&mut self.ctx);
                self.sessions.put(session);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                log::debug!("client {addr}: {e}");
                self.ctx.metrics.session_closed(Outcome::ClientClosed);
            }
            Err(e) => {
                log::warn!("cannot take client {addr}: {e}");
                self.ctx.metrics.session_closed(Outcome::Error);
            }
        }
    }

    fn open_manager(&mut self, stream: TcpStream, addr: SocketAddr) {
        let slot = self.managers.vacant();
        match Manager::open(&mut self.ctx, slot, stream, addr) {
            Ok(m) => {
                m.sync(&mut self.ctx);
                self.managers.put(m);
                self.ctx.metrics.managers_open += 1;
            }
            Err(e) => log::warn!("cannot take management client {addr}: {e}"),
        }
    }

    /// A scraper, unless [`scrape::MAX_CONNECTIONS`] are open: then it is closed at once.
    fn open_scraper(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.scrapers.len() >= scrape::MAX_CONNECTIONS {
            log::debug!(
                "metrics: {addr} closed: {} scrapers open",
                self.scrapers.len()
            );
            return;
        }
        let slot = self.scrapers.vacant();
        match Scraper::open(&mut self.ctx, slot, stream, addr) {
            Ok(s) => {
                s.sync(&mut self.ctx);
                self.scrapers.put(s);
            }
            Err(e) => log::warn!("cannot take metrics client {addr}: {e}"),
        }
    }
}
