//! The metrics endpoint (`--metrics`): one [`Scraper`] per HTTP connection, a state machine on
//! the same loop as the POP3 sessions, answering `GET /metrics` from the daemon's counters.
//!
//! ```text
//!  REQUEST --(head complete, or refused)--> RESPOND --(response written)--> LINGER --(EOF)--> DONE
//!     \--(peer gone before a whole request, I/O error, deadline)---------------------------^
//! ```
//!
//! One request per connection: every response says `Connection: close`, then the proxy shuts
//! its side down and reads (and drops) whatever the scraper still sends until it closes, so
//! that closing never resets a connection whose response the scraper has not read yet.
//!
//! A slow or hostile scraper affects only itself: at most [`http::MAX_REQUEST`] bytes of
//! request are kept (a longer head is answered 431), nothing is read while the response is
//! being written (a scraper that never reads holds one response, in its kernel buffers and
//! ours), at most [`LINGER_BYTES`] are dropped after it, every connection is closed
//! [`DEADLINE`] after it was accepted (or after `-T` if shorter) whatever it is doing, and the
//! server keeps at most [`MAX_CONNECTIONS`] open (it closes new ones beyond that at once).

pub mod exposition;
pub mod http;

use crate::ctx::{Ctx, Endpoint, Owner};
use crate::net::Side;
use exposition::{Format, Now};
use http::{Method, Parse, Request, RequestParser, Status};
use mio::net::TcpStream;
use mio::Token;
use selector::Interest;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};
use stm::{Machine, Stm};

/// Scrape connections open at most; the server closes new ones beyond this at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest life of a scrape connection, from accept to close (or `-T`, if shorter).
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Bytes dropped at most after the response, before the connection is closed anyway.
pub const LINGER_BYTES: usize = 64 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

/// The states of a scrape connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeState {
    /// Reading the request head. Next: RESPOND, or DONE if the scraper goes away first.
    Request,
    /// Writing the response. Next: LINGER once it is written.
    Respond,
    /// Our side is shut down; what the scraper still sends is dropped. Next: DONE at its EOF.
    Linger,
    /// Closed.
    Done,
}

impl fmt::Display for ScrapeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScrapeState::Request => "REQUEST",
            ScrapeState::Respond => "RESPOND",
            ScrapeState::Linger => "LINGER",
            ScrapeState::Done => "DONE",
        })
    }
}

/// One scrape connection.
pub struct Scraper {
    stm: Stm<ScrapeState>,
    peer: SocketAddr,
    sock: Side<TcpStream>,
    token: Token,
    input: Vec<u8>,
    parser: RequestParser,
    output: Vec<u8>,
    written: usize,
    dropped: usize,
    deadline: Instant,
}

impl Scraper {
    /// Registers an accepted scrape connection (state REQUEST).
    pub fn open(
        ctx: &mut Ctx,
        slot: usize,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> io::Result<Scraper> {
        let token = ctx.selector.register(
            &stream,
            Owner::Scraper(slot),
            Endpoint::Scraper,
            Interest::READ,
        )?;
        let mut sock = Side::new(stream);
        sock.readable = false;
        log::debug!("metrics: connection from {peer}");
        Ok(Scraper {
            stm: Stm::new(ScrapeState::Request),
            peer,
            sock,
            token,
            input: Vec::new(),
            parser: RequestParser::default(),
            output: Vec::new(),
            written: 0,
            dropped: 0,
            deadline: Instant::now() + DEADLINE.min(ctx.config.timeout),
        })
    }

    /// Notes what the kernel said about the socket.
    pub fn note(&mut self, readable: bool, writable: bool) {
        self.sock.readable |= readable;
        self.sock.writable |= writable;
    }

    /// Read while a request or the scraper's close is awaited; write while the response is.
    pub fn sync(&self, ctx: &mut Ctx) {
        let want_read = !self.sock.readable && !self.sock.eof;
        let interest = match self.stm.current() {
            ScrapeState::Request | ScrapeState::Linger => Interest::new(want_read, false),
            ScrapeState::Respond => Interest::new(false, !self.sock.writable),
            ScrapeState::Done => Interest::NONE,
        };
        if let Err(e) = ctx.selector.set_interest(self.token, interest) {
            log::warn!("metrics: interest: {e}");
        }
    }

    /// When the connection is closed whatever it is doing.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The deadline has passed.
    pub fn expire(&mut self) -> ScrapeState {
        log::debug!(
            "metrics: {}: deadline passed in {}",
            self.peer,
            self.stm.current()
        );
        ScrapeState::Done
    }

    /// Reads what fits of the request and answers it once it is whole (or refused).
    fn read_request(&mut self, ctx: &Ctx) -> io::Result<ScrapeState> {
        let mut chunk = [0u8; 4096];
        while self.sock.readable && !self.sock.eof && self.input.len() < http::MAX_REQUEST {
            let room = (http::MAX_REQUEST - self.input.len()).min(chunk.len());
            match self.sock.io.read(&mut chunk[..room]) {
                Ok(0) => self.sock.eof = true,
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match self.parser.feed(&self.input) {
            Parse::Incomplete if self.sock.eof => Ok(ScrapeState::Done),
            Parse::Incomplete => Ok(ScrapeState::Request),
            Parse::Done(request) => {
                self.respond(ctx, &request);
                Ok(ScrapeState::Respond)
            }
            Parse::Bad(status) => {
                log::debug!("metrics: {}: request refused ({status:?})", self.peer);
                self.refuse(status, false);
                Ok(ScrapeState::Respond)
            }
        }
    }

    fn respond(&mut self, ctx: &Ctx, request: &Request) {
        let head = request.method == Method::Head;
        let status = match (request.path.as_str(), request.method) {
            ("/metrics", Method::Get | Method::Head) => Status::Ok,
            ("/metrics", Method::Other) => Status::MethodNotAllowed,
            _ => Status::NotFound,
        };
        log::debug!(
            "metrics: {}: {:?} {} -> {}",
            self.peer,
            request.method,
            request.path,
            status.line().0
        );
        if status == Status::Ok {
            let format = match request.openmetrics {
                true => Format::OpenMetrics,
                false => Format::Prometheus,
            };
            let now = Now {
                filters_running: ctx.spawner.running(),
            };
            let body = exposition::render(&ctx.metrics, now, format);
            http::response(
                &mut self.output,
                status,
                format.content_type(),
                body.as_bytes(),
                head,
            );
        } else {
            self.refuse(status, head);
        }
        self.input = Vec::new();
    }

    /// An error response, its status line as the body.
    fn refuse(&mut self, status: Status, head: bool) {
        let (code, reason) = status.line();
        let body = format!("{code} {reason}\n");
        http::response(&mut self.output, status, TEXT, body.as_bytes(), head);
        self.input = Vec::new();
    }

    /// Writes the response; once it is all out, shuts our side down.
    fn write(&mut self) -> io::Result<ScrapeState> {
        while self.sock.writable && self.written < self.output.len() {
            match self.sock.io.write(&self.output[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written < self.output.len() {
            return Ok(ScrapeState::Respond);
        }
        self.output = Vec::new();
        self.sock.io.shutdown(Shutdown::Write)?;
        Ok(ScrapeState::Linger)
    }

    /// Drops what the scraper still sends, until it closes (or sends too much).
    fn linger(&mut self) -> io::Result<ScrapeState> {
        let mut chunk = [0u8; 4096];
        while self.sock.readable && !self.sock.eof {
            match self.sock.io.read(&mut chunk) {
                Ok(0) => self.sock.eof = true,
                Ok(n) => {
                    self.dropped += n;
                    if self.dropped > LINGER_BYTES {
                        return Ok(ScrapeState::Done);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        match self.sock.eof {
            true => Ok(ScrapeState::Done),
            false => Ok(ScrapeState::Linger),
        }
    }

    /// Moves the connection as far as it goes: request, response, linger.
    fn pump(&mut self, ctx: &Ctx) -> ScrapeState {
        let outcome = (|| -> io::Result<ScrapeState> {
            let mut state = self.stm.current();
            if state == ScrapeState::Request {
                state = self.read_request(ctx)?;
            }
            if state == ScrapeState::Respond {
                state = self.write()?;
            }
            if state == ScrapeState::Linger {
                state = self.linger()?;
            }
            Ok(state)
        })();
        outcome.unwrap_or_else(|e| {
            log::debug!("metrics: {}: {e}", self.peer);
            ScrapeState::Done
        })
    }
}

impl Machine<Ctx> for Scraper {
    type State = ScrapeState;
    type Event = ();

    fn stm(&mut self) -> &mut Stm<ScrapeState> {
        &mut self.stm
    }

    fn label(&self) -> String {
        format!("metrics {}", self.peer)
    }

    fn on_arrival(&mut self, ctx: &mut Ctx, state: ScrapeState) -> ScrapeState {
        if state == ScrapeState::Done {
            ctx.selector.remove(self.token);
        }
        state
    }

    fn on_read(&mut self, ctx: &mut Ctx, state: ScrapeState, _: &()) -> ScrapeState {
        match state {
            ScrapeState::Done => state,
            _ => self.pump(ctx),
        }
    }

    fn on_write(&mut self, ctx: &mut Ctx, state: ScrapeState, ev: &()) -> ScrapeState {
        self.on_read(ctx, state, ev)
    }
}
