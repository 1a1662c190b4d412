//! The event loop: listeners, sessions, and the dispatch of readiness between them.
//!
//! One thread. Each turn polls the selector, dispatches every item of the batch to the
//! session that owns the source (through the `stm` driver), lets sessions that yielded run
//! again, ends the batch, and only then accepts new clients — so no token is reused inside a
//! batch. After every dispatch the session sets its own interest ([`Session::sync`]); a
//! session that reached DONE is dropped at once (its sockets left the selector first).
//!
//! When `accept` fails for lack of descriptors the existing sessions keep being served and
//! accepting is retried a little later.

use crate::args::Config;
use crate::filter::Orphans;
use crate::listen;
use crate::metrics::Metrics;
use crate::pop3::{Readiness, Session, State};
use crate::resolve::Resolver;
use mio::net::TcpListener;
use selector::{Interest, Ready, Selector};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Who owns a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A listening socket, by index.
    Listener(usize),
    /// A POP3 session, by slot.
    Session(usize),
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
}

/// What the loop lends to every session hook.
pub struct Ctx {
    /// The registry.
    pub selector: Selector<Owner, Endpoint>,
    /// Name lookups off the loop.
    pub resolver: Resolver,
    /// The configuration in force.
    pub config: Config,
    /// Counters.
    pub metrics: Metrics,
    /// Killed filters waiting to be reaped.
    pub orphans: Orphans,
}

/// Most connections accepted from one listener per turn, so that a flood of new clients
/// cannot starve the sessions already open.
const ACCEPT_BURST: usize = 64;
/// How long to wait before accepting again after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The daemon.
pub struct Server {
    ctx: Ctx,
    listeners: Vec<(TcpListener, bool)>,
    sessions: Vec<Option<Session>>,
    free: Vec<usize>,
    serial: u64,
    runnable: Vec<usize>,
    accept_paused_until: Option<Instant>,
    next_tick: Instant,
}

impl Server {
    /// Binds the listeners.
    pub fn new(config: Config) -> io::Result<Server> {
        let mut selector = Selector::new(1024)?;
        let resolver = Resolver::new(selector.waker());
        let mut listeners = Vec::new();
        let mut errors = Vec::new();
        for ip in &config.listen {
            let addr = SocketAddr::new(*ip, config.port);
            match listen::listen(addr) {
                Ok(l) => {
                    let owner = Owner::Listener(listeners.len());
                    selector.register(&l, owner, Endpoint::Listener, Interest::READ)?;
                    log::info!("listening on {addr}");
                    listeners.push((l, true));
                }
                Err(e) => {
                    log::warn!("cannot listen on {addr}: {e}");
                    errors.push(format!("{addr}: {e}"));
                }
            }
        }
        if listeners.is_empty() {
            return Err(io::Error::other(format!(
                "cannot listen: {}",
                errors.join("; ")
            )));
        }
        let origin = &config.origin;
        log::info!(
            "pop3filter {} relaying to {}:{}",
            crate::args::VERSION,
            origin.host,
            origin.port
        );
        Ok(Server {
            ctx: Ctx {
                selector,
                resolver,
                config,
                metrics: Metrics::default(),
                orphans: Orphans::default(),
            },
            listeners,
            sessions: Vec::new(),
            free: Vec::new(),
            serial: 0,
            runnable: Vec::new(),
            accept_paused_until: None,
            next_tick: Instant::now(),
        })
    }

    /// Runs the loop until polling fails.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            let batch = self.ctx.selector.poll(self.timeout())?;
            for ready in &batch {
                match *ready {
                    Ready::Wake => self.collect_answers(),
                    Ready::Io {
                        owner: Owner::Listener(i),
                        ..
                    } => self.listeners[i].1 = true,
                    Ready::Io {
                        token,
                        owner: Owner::Session(slot),
                        endpoint,
                        readable,
                        writable,
                    } => {
                        if self.ctx.selector.is_live(token) {
                            let ev = Readiness {
                                endpoint,
                                readable,
                                writable,
                            };
                            self.dispatch(slot, |s, ctx| stm::read(s, ctx, &ev));
                        }
                    }
                }
            }
            for slot in std::mem::take(&mut self.runnable) {
                let ev = Readiness {
                    endpoint: Endpoint::Client,
                    readable: false,
                    writable: false,
                };
                self.dispatch(slot, |s, ctx| stm::write(s, ctx, &ev));
            }
            if Instant::now() >= self.next_tick {
                self.tick();
            }
            self.ctx.selector.end_batch(batch);
            self.accept();
        }
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.runnable.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let accept = match self.accept_paused_until {
            Some(until) => Some(until.saturating_duration_since(now)),
            None if self.listeners.iter().any(|(_, ready)| *ready) => Some(Duration::ZERO),
            None => None,
        };
        let busy = self.free.len() < self.sessions.len() || self.ctx.orphans.len() > 0;
        let tick = busy.then(|| self.next_tick.saturating_duration_since(now));
        match (accept, tick) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// How often sessions are checked for inactivity: a tenth of the timeout, 10 ms to 1 s.
    fn tick_interval(&self) -> Duration {
        (self.ctx.config.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Ends what has been inactive for the whole timeout, and reaps killed filters.
    fn tick(&mut self) {
        let now = Instant::now();
        self.next_tick = now + self.tick_interval();
        let timeout = self.ctx.config.timeout;
        for slot in 0..self.sessions.len() {
            let expired = matches!(&self.sessions[slot], Some(s) if now.duration_since(s.last_active()) >= timeout);
            if expired {
                self.dispatch(slot, |s, ctx| {
                    let next = s.expire(ctx);
                    stm::jump(s, ctx, next)
                });
            }
        }
        self.ctx.orphans.reap();
    }

    /// Runs one hook of a session, then sets its interest or drops it.
    fn dispatch(&mut self, slot: usize, hook: impl FnOnce(&mut Session, &mut Ctx) -> State) {
        let Some(Some(session)) = self.sessions.get_mut(slot) else {
            return;
        };
        if hook(session, &mut self.ctx) == State::Done {
            self.sessions[slot] = None;
            self.free.push(slot);
            return;
        }
        session.sync(&mut self.ctx);
        if session.take_more() {
            self.runnable.push(slot);
        }
    }

    fn collect_answers(&mut self) {
        let answers: Vec<_> = self.ctx.resolver.answers().collect();
        for answer in answers {
            let matches = matches!(self.sessions.get(answer.slot), Some(Some(s)) if s.serial() == answer.serial);
            if matches {
                let result = answer.result;
                self.dispatch(answer.slot, move |s, ctx| {
                    s.resolved(result);
                    stm::block(s, ctx)
                });
            }
        }
    }

    fn accept(&mut self) {
        if let Some(until) = self.accept_paused_until {
            if Instant::now() < until {
                return;
            }
            self.accept_paused_until = None;
        }
        for i in 0..self.listeners.len() {
            for _ in 0..ACCEPT_BURST {
                if !self.listeners[i].1 {
                    break;
                }
                match self.listeners[i].0.accept() {
                    Ok((stream, addr)) => self.open(stream, addr),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.listeners[i].1 = false,
                    Err(e) if out_of_resources(&e) => {
                        log::warn!("cannot accept: {e}; serving open sessions, retrying shortly");
                        self.accept_paused_until = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    }
                    Err(e) => log::debug!("accept: {e}"),
                }
            }
        }
    }

    fn open(&mut self, stream: mio::net::TcpStream, addr: SocketAddr) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.sessions.push(None);
            self.sessions.len() - 1
        });
        self.serial += 1;
        self.ctx.metrics.session_opened();
        match Session::open(&mut self.ctx, slot, self.serial, stream, addr) {
            Ok(mut session) => {
                if session.state() == State::Done {
                    self.free.push(slot);
                    return;
                }
                session.sync(&mut self.ctx);
                self.sessions[slot] = Some(session);
            }
            Err(e) => {
                log::warn!("cannot take client {addr}: {e}");
                self.ctx.metrics.session_closed(0);
                self.free.push(slot);
            }
        }
    }
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
