//! HEADER: the PROXY protocol header a load balancer sends before anything else
//! (`--proxy-from`; haproxy's doc/proxy-protocol.txt, v1 and v2).
//!
//! A connection from a listed network must begin with the header. Until the whole header has
//! arrived the proxy sends nothing (no greeting) and does not connect to the origin. The
//! socket is peeked and exactly the header's bytes are taken off it, so what follows (POP3
//! commands, or on a POP3S listener the TLS handshake, which begins only now) stays in the
//! kernel for the next state. The header's source is the session's client from then on; a v2
//! LOCAL header (HAProxy's health checks) means the TCP peer. A malformed header, or none
//! within [`HEADER_TIMEOUT`], closes the connection (logged); nothing is sent.

use super::{Session, State};
use crate::ctx::Ctx;
use crate::metrics::Outcome;
use crate::net::proxy::{Header, HeaderReader, Progress};
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// How long a connection from a listed network may take to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// A session waiting for its PROXY header.
pub struct HeaderWait {
    reader: HeaderReader,
    /// When the connection is closed if the header is not complete.
    pub(super) deadline: Instant,
    /// The client side starts TLS after the header (a POP3S listener).
    tls_after: bool,
}

impl HeaderWait {
    /// A wait that began now.
    pub fn new(tls_after: bool) -> HeaderWait {
        HeaderWait {
            reader: HeaderReader::new(),
            deadline: Instant::now() + HEADER_TIMEOUT,
            tls_after,
        }
    }
}

impl Session {
    /// Takes as much of the header as has arrived; RESOLVING once it is whole.
    pub(super) fn read_header(&mut self, ctx: &mut Ctx) -> State {
        let Some(wait) = &mut self.header else {
            return State::Resolving;
        };
        let sock = self.client.io.tcp();
        let mut buf = [0u8; 512];
        loop {
            let n = match sock.peek(&mut buf) {
                Ok(0) => {
                    return self.end(
                        Outcome::ClientClosed,
                        "client closed before its PROXY header",
                    )
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.client.readable = false;
                    return State::Header;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.end(Outcome::Error, &format!("client error: {e}")),
            };
            let (used, progress) = wait.reader.feed(&buf[..n]);
            // Take exactly the header's bytes off the socket (they were peeked, so they are
            // there); what follows stays for POP3 or TLS.
            let mut taken = 0;
            while taken < used {
                match (&*sock).read(&mut buf[taken..used]) {
                    Ok(0) => {
                        return self.end(Outcome::ClientClosed, "client closed in its PROXY header")
                    }
                    Ok(k) => taken += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return self.end(Outcome::Error, &format!("client error: {e}")),
                }
            }
            match progress {
                Progress::NeedMore => continue,
                Progress::Invalid(why) => {
                    log::warn!(
                        "session {}: {} sent a bad PROXY header ({why}); closed",
                        self.serial,
                        self.client_addr
                    );
                    return self.end(Outcome::Error, &format!("bad PROXY header: {why}"));
                }
                Progress::Done(header) => return self.header_done(ctx, header),
            }
        }
    }

    fn header_done(&mut self, ctx: &mut Ctx, header: Header) -> State {
        let wait = self.header.take().expect("waiting for a header");
        let peer = self.client_addr;
        if let Header::Proxied {
            source,
            destination,
        } = header
        {
            self.client_addr = source;
            self.client_dest = Some(destination);
        }
        if wait.tls_after {
            let Some(config) = &ctx.tls.server else {
                return self.end(Outcome::Error, "no certificate");
            };
            if let Err(e) = self.client.io.accept_tls(config.clone()) {
                return self.end(Outcome::Error, &format!("client error: {e}"));
            }
        }
        // Bytes behind the header may be waiting already: no new event will say so.
        self.client.readable = true;
        self.touch();
        log::info!(
            "session {}: client {} connected (PROXY header from {peer}), origin {}:{}",
            self.serial,
            self.client_addr,
            ctx.config.origin.host,
            ctx.config.origin.port
        );
        State::Resolving
    }

    /// The header did not come in time.
    pub(super) fn header_timed_out(&mut self) -> State {
        log::warn!(
            "session {}: no PROXY header from {} within {} s; closed",
            self.serial,
            self.client_addr,
            HEADER_TIMEOUT.as_secs()
        );
        self.end(Outcome::Timeout, "no PROXY header in time")
    }
}
