//! The event loop: listeners, POP3 sessions, management connections, metrics scrapers, and
//! the dispatch of readiness between them.
//!
//! One thread. Each turn polls the selector, dispatches every item of the batch to the
//! connection that owns the source (through the `stm` driver), lets connections that yielded
//! run again, ends sessions idle past the timeout, ends the batch, and only then accepts new
//! clients — so no token is reused inside a batch. After every dispatch the connection sets its
//! own interest; one that reached DONE is dropped at once (its sockets left the selector first).
//!
//! When `accept` fails for lack of descriptors the existing connections keep being served and
//! accepting is retried a little later.

use crate::args::Config;
use crate::filter::spawner::Spawner;
use crate::filter::Orphans;
use crate::listen::activation::Inherited;
use crate::metrics::Metrics;
use crate::net::tls::Tls;
use crate::pop3::{Readiness, Session, State};
use crate::resolve::Resolver;
use crate::scrape::{ScrapeState, Scraper};
use crate::signals::Signals;
use crate::slab::Slab;
use crate::spcp::{Manager, MgmtState};
use selector::{Interest, Ready, Selector};
use std::io;
use std::time::{Duration, Instant};

mod accept;
mod listeners;
use crate::ctx::{Ctx, Endpoint, Owner};
use listeners::Listener;

/// Most connections accepted from one listener per turn, so that a flood of new clients
/// cannot starve the connections already open.
const ACCEPT_BURST: usize = 64;
/// How long to wait before accepting again after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The daemon.
pub struct Server {
    ctx: Ctx,
    listeners: Vec<Listener>,
    sessions: Slab<Session>,
    managers: Slab<Manager>,
    scrapers: Slab<Scraper>,
    serial: u64,
    runnable: Vec<Owner>,
    accept_paused_until: Option<Instant>,
    next_tick: Instant,
    signals: Signals,
    /// Set on SIGTERM/SIGINT: when sessions still open are closed.
    shutdown: Option<Instant>,
}

impl Server {
    /// Opens the listeners (`listeners.rs`): POP3 on every configured address (at least one
    /// must work) or the sockets `inherited` from the service manager, and the management
    /// listener.
    pub fn new(config: Config, tls: Tls, inherited: Option<Vec<Inherited>>) -> io::Result<Server> {
        let mut selector = Selector::new(1024)?;
        let resolver = Resolver::new(selector.waker());
        let listeners = listeners::open(&config, inherited, &mut selector)?;
        if config.management.credentials.is_empty() {
            log::warn!("no management credentials (-u or -U): every management login will fail");
        }
        let origin = &config.origin;
        log::info!(
            "pop3filter {} relaying to {}:{}",
            crate::args::VERSION,
            origin.host,
            origin.port
        );
        let signals = Signals::install()?;
        selector.register(&signals, Owner::Signals, Endpoint::Signal, Interest::READ)?;
        let spawner = Spawner::new(selector.waker(), config.max_filters);
        let ctx = Ctx {
            selector,
            resolver,
            config,
            metrics: Metrics::default(),
            orphans: Orphans::default(),
            spawner,
            starved: Vec::new(),
            listening: listeners
                .iter()
                .filter(|l| matches!(l.kind, listeners::Kind::Pop3 | listeners::Kind::Pop3s))
                .filter_map(|l| l.socket.local_addr().ok())
                .collect(),
            outgoing: Default::default(),
            xclient_missing_logged: false,
            out_of_fds_since: None,
            tls,
        };
        Ok(Server {
            ctx,
            listeners,
            sessions: Slab::default(),
            managers: Slab::default(),
            scrapers: Slab::default(),
            serial: 0,
            runnable: Vec::new(),
            accept_paused_until: None,
            next_tick: Instant::now(),
            signals,
            shutdown: None,
        })
    }

    /// Runs the loop until a signal's grace period is over (or polling fails).
    pub fn run(&mut self) -> io::Result<()> {
        while !self.finished() {
            let batch = self.ctx.selector.poll(self.timeout())?;
            for ready in &batch {
                match *ready {
                    Ready::Wake => self.collect_answers(),
                    Ready::Io {
                        token,
                        owner,
                        endpoint,
                        readable,
                        writable,
                        closed,
                    } => {
                        if self.ctx.selector.is_live(token) {
                            self.dispatch(
                                owner,
                                Readiness {
                                    endpoint,
                                    readable,
                                    writable,
                                    closed,
                                },
                            );
                        }
                    }
                }
            }
            for owner in std::mem::take(&mut self.runnable) {
                let nothing = Readiness {
                    endpoint: Endpoint::Client,
                    readable: false,
                    writable: false,
                    closed: false,
                };
                self.dispatch(owner, nothing);
            }
            // Places freed by filters that ended in this turn go to waiting sessions.
            self.admit_filters();
            if Instant::now() >= self.next_tick {
                self.tick();
            }
            self.ctx.selector.end_batch(batch);
            self.accept();
        }
        self.close_all();
        Ok(())
    }

    /// True once a shutdown has no session left to wait for, or its grace period is over.
    fn finished(&self) -> bool {
        match self.shutdown {
            Some(deadline) => self.sessions.len() == 0 || Instant::now() >= deadline,
            None => false,
        }
    }

    /// Stops accepting and closes management and scrape connections; sessions in progress may
    /// finish within the grace period. A second signal ends the grace period at once. With
    /// `--reuse-port`, what is already queued on the POP3 listeners is accepted first.
    fn begin_shutdown(&mut self) {
        if self.shutdown.is_some() {
            log::info!("second signal: closing every session now");
            self.shutdown = Some(Instant::now());
            return;
        }
        let grace = self.ctx.config.grace;
        log::info!(
            "shutting down: no new connections; {} sessions have {grace:?} to finish",
            self.sessions.len()
        );
        self.shutdown = Some(Instant::now() + grace);
        // Listeners shared with other instances are drained after the batch (`accept`).
        self.close_listeners_now();
        for slot in self.managers.indices() {
            if let Some(mut m) = self.managers.remove(slot) {
                stm::jump(&mut m, &mut self.ctx, MgmtState::Done);
            }
        }
        for slot in self.scrapers.indices() {
            if let Some(mut s) = self.scrapers.remove(slot) {
                stm::jump(&mut s, &mut self.ctx, ScrapeState::Done);
            }
        }
    }

    /// Ends every session left (no QUIT is sent for them: nothing is committed on their
    /// behalf) and reaps every filter.
    fn close_all(&mut self) {
        let left = self.sessions.len();
        for slot in self.sessions.indices() {
            self.run_session(slot, |s, ctx| s.abort(ctx));
        }
        self.ctx.orphans.reap_all();
        log::info!("stopped ({left} sessions closed at the end of the grace period)");
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.runnable.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        if let Some(deadline) = self.shutdown {
            return Some(
                deadline
                    .saturating_duration_since(now)
                    .min(self.tick_interval()),
            );
        }
        let accept = match self.accept_paused_until {
            Some(until) => Some(until.saturating_duration_since(now)),
            None if self.listeners.iter().any(|l| l.ready) => Some(Duration::ZERO),
            None => None,
        };
        let busy = self.sessions.len() > 0 || self.ctx.orphans.len() > 0 || self.scrapers.len() > 0;
        let tick = busy.then(|| self.next_tick.saturating_duration_since(now));
        match (accept, tick) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    fn dispatch(&mut self, owner: Owner, ev: Readiness) {
        match owner {
            Owner::Listener(i) => {
                if let Some(l) = self.listeners.get_mut(i) {
                    l.ready = true;
                }
            }
            Owner::Signals => {
                let caught = self.signals.drain();
                if caught.reload {
                    self.ctx.tls.reload(&self.ctx.config.tls);
                }
                if caught.stop {
                    self.begin_shutdown();
                }
            }
            Owner::Session(slot) => self.run_session(slot, |s, ctx| stm::read(s, ctx, &ev)),
            Owner::Manager(slot) => {
                let Some(m) = self.managers.get_mut(slot) else {
                    return;
                };
                m.note(ev.readable, ev.writable);
                if stm::read(m, &mut self.ctx, &()) == MgmtState::Done {
                    self.managers.remove(slot);
                    return;
                }
                m.sync(&mut self.ctx);
                if m.take_more() {
                    self.runnable.push(owner);
                }
            }
            Owner::Scraper(slot) => {
                let Some(s) = self.scrapers.get_mut(slot) else {
                    return;
                };
                s.note(ev.readable, ev.writable);
                if stm::read(s, &mut self.ctx, &()) == ScrapeState::Done {
                    self.scrapers.remove(slot);
                    return;
                }
                s.sync(&mut self.ctx);
            }
        }
    }

    /// Runs one hook of a session, then sets its interest or drops it.
    fn run_session(&mut self, slot: usize, hook: impl FnOnce(&mut Session, &mut Ctx) -> State) {
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        if hook(session, &mut self.ctx) == State::Done {
            self.sessions.remove(slot);
            return;
        }
        session.sync(&mut self.ctx);
        if session.take_more() {
            self.runnable.push(Owner::Session(slot));
        }
    }

    /// Filters started by the helper threads go to their sessions; a session that left meanwhile
    /// gets nothing, and its process is killed and reaped.
    fn collect_filters(&mut self) {
        let started: Vec<_> = self.ctx.spawner.answers().collect();
        for answer in started {
            let current = self.sessions.get_mut(answer.slot).map(|s| s.serial());
            if current == Some(answer.serial) {
                let result = answer.result;
                self.run_session(answer.slot, move |s, ctx| {
                    let next = s.filter_spawned(ctx, result);
                    stm::jump(s, ctx, next)
                });
            } else {
                if let Ok(process) = answer.result {
                    self.ctx.orphans.adopt(process);
                }
                self.ctx.spawner.release();
            }
        }
        self.admit_filters();
    }

    /// Sessions whose turn to start a filter came submit their start.
    fn admit_filters(&mut self) {
        loop {
            let admitted = self.ctx.spawner.take_admitted();
            if admitted.is_empty() {
                return;
            }
            for (slot, serial) in admitted {
                let current = self.sessions.get_mut(slot).map(|s| s.serial());
                if current == Some(serial) {
                    self.run_session(slot, |s, ctx| {
                        let next = s.filter_admitted(ctx);
                        stm::jump(s, ctx, next)
                    });
                } else {
                    self.ctx.spawner.release();
                }
            }
        }
    }

    fn collect_answers(&mut self) {
        self.collect_filters();
        let answers: Vec<_> = self.ctx.resolver.answers().collect();
        for answer in answers {
            let current = self.sessions.get_mut(answer.slot).map(|s| s.serial());
            if current == Some(answer.serial) {
                let result = answer.result;
                self.run_session(answer.slot, move |s, ctx| {
                    s.resolved(result);
                    stm::block(s, ctx)
                });
            }
        }
    }

    /// How often sessions are checked for inactivity: a tenth of the timeout, 10 ms to 1 s.
    fn tick_interval(&self) -> Duration {
        (self.ctx.config.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Ends what has been inactive for the whole timeout and scrapers past their deadline, and
    /// reaps killed filters.
    fn tick(&mut self) {
        let now = Instant::now();
        self.next_tick = now + self.tick_interval();
        let timeout = self.ctx.config.timeout;
        // Out of descriptors for a while: a session still waiting for its origin's greeting
        // may be one link of a loop through another relay, whose last link waits in an accept
        // queue that nobody can take; it gives up, and the loop unwinds.
        let starving = self
            .ctx
            .out_of_fds_since
            .is_some_and(|since| since.elapsed() >= crate::pop3::STARVED_LIMIT);
        for slot in self.sessions.indices() {
            let expired = self.sessions.get_mut(slot).is_some_and(|s| {
                now >= s.deadline(timeout) || (starving && s.waits_for_greeting(now))
            });
            if expired {
                self.run_session(slot, |s, ctx| {
                    let next = s.expire(ctx);
                    stm::jump(s, ctx, next)
                });
            }
        }
        for slot in self.scrapers.indices() {
            let expired = self.scrapers.get_mut(slot).filter(|s| now >= s.deadline());
            if let Some(s) = expired {
                let next = s.expire();
                stm::jump(s, &mut self.ctx, next);
                self.scrapers.remove(slot);
            }
        }
        self.ctx.orphans.reap();
    }
}
