//! HELLO and COPY's engine: the rounds that move bytes between client and origin through the
//! relay (and change a side to TLS when the relay says so), and what the session does when the
//! origin goes away or an error is to be reported.

use super::{Session, State, ROUNDS_PER_EVENT};
use crate::ctx::Ctx;
use crate::metrics::Outcome;
use crate::net::{Side, Stream};
use crate::pop3::relay::{Fault, Relay};
use std::io;
use std::time::Instant;

impl Session {
    /// Moves bytes in every direction until nothing moves, then decides what comes next.
    pub(super) fn pump(&mut self, ctx: &mut Ctx) -> State {
        let state = self.stm.current();
        let Some((origin, _)) = &mut self.origin else {
            return self.end(Outcome::Error, "no origin");
        };
        let client = &mut self.client;
        let relay = &mut self.relay;
        let tls = &ctx.tls;
        let (rounds, more, outcome) = run_rounds(|| {
            let mut progress = relay.read_client(client)?;
            progress |= relay.take_commands();
            progress |= relay.write_origin(origin)?;
            progress |= relay.read_origin(origin)?;
            progress |= relay.write_client(client)?;
            progress |= client.push_pending().map_err(Fault::Client)?;
            progress |= origin.push_pending().map_err(Fault::Origin)?;
            progress |= change_to_tls(tls, relay, client, origin)?;
            Ok(progress)
        });
        self.more |= more;
        let origin_gone = origin.eof;
        if rounds > 0 {
            self.last_active = Instant::now();
        }
        match outcome {
            Err(Fault::Client(e)) => return self.client_failed(&e),
            Err(Fault::Origin(e)) if !self.relay.client_greeted() => {
                // Nothing reached the client yet: its greeting is the -ERR that says why.
                self.failure = Some(format!("origin: {e}"));
                return State::Error;
            }
            Err(Fault::Origin(e)) => return self.origin_gone(&format!("origin error: {e}")),
            Ok(()) => {}
        }
        if let Some(why) = self.relay.origin_refused_tls() {
            self.failure = Some(why.to_string());
            return State::Error;
        }
        if state == State::Hello && self.client.eof && !self.relay.client_spoke() {
            // Gone before the greeting, having asked nothing: nobody waits for the origin's
            // answer (and a link of a loop being undone must not hold its origin open).
            return self.end(
                Outcome::ClientClosed,
                "client closed before the origin answered",
            );
        }
        // The last reply must have left the TLS layer too before the session ends.
        if self.relay.finished(self.client.eof) && self.client.flushed() {
            return match self.relay.quit_sent() {
                true => self.end(Outcome::Quit, "quit"),
                false => self.end(Outcome::ClientClosed, "client closed"),
            };
        }
        if self.relay.diverted() {
            return State::Filter;
        }
        if origin_gone && self.relay.drained() {
            return self.origin_gone("origin closed the connection");
        }
        if state == State::Hello && self.relay.hello_done {
            if self.relay.xclient_missed() && !ctx.xclient_missing_logged {
                ctx.xclient_missing_logged = true;
                log::warn!(
                    "--origin-xclient: the origin's greeting does not offer XCLIENT (is this \
                     proxy in its login_trusted_networks?); nothing sent (logged once)"
                );
            }
            return State::Copy;
        }
        state
    }

    /// The origin closed or failed: owed replies become `-ERR` (ERROR), unless one was
    /// already partly relayed (then the client is closed without it being completed).
    pub(super) fn origin_gone(&mut self, why: &str) -> State {
        if !self.relay.owes_replies() {
            if self.relay.drained() {
                return self.end(Outcome::OriginError, why);
            }
            // The proxy still has something to say (an -ERR staged for a diverted RETR).
            self.set_ending(Outcome::OriginError, why);
            return State::Error;
        }
        self.set_ending(Outcome::OriginError, why);
        if self.relay.origin_lost() {
            State::Error
        } else {
            let why = format!("{why} in the middle of a reply");
            self.end(Outcome::OriginError, &why)
        }
    }

    /// Flushes what the proxy has to say, then ends.
    pub(super) fn flush(&mut self) -> State {
        let written = self.relay.write_client(&mut self.client).and_then(|_| {
            self.client.push_pending().map_err(Fault::Client)?;
            Ok(())
        });
        match written {
            Ok(_) if self.relay.drained() && self.client.flushed() => {
                self.end(Outcome::Error, "error reported")
            }
            Ok(_) => State::Error,
            Err(_) => self.end(Outcome::Error, "error reported; client gone"),
        }
    }
}

/// Changes a side to TLS when the relay says it is due (between two rounds, so that no byte
/// of the other protocol goes through the wrong layer).
fn change_to_tls(
    tls: &crate::net::tls::Tls,
    relay: &mut Relay,
    client: &mut Side<Stream>,
    origin: &mut Side<Stream>,
) -> Result<bool, Fault> {
    if relay.client_tls_due() {
        let Some(config) = &tls.server else {
            return Err(Fault::Client(io::Error::other("no certificate")));
        };
        client
            .io
            .accept_tls(config.clone())
            .map_err(Fault::Client)?;
        client.readable = true; // the client's hello may be waiting already
        relay.client_tls_started();
        return Ok(true);
    }
    if relay.origin_tls_due() {
        let Some((config, name)) = &tls.origin else {
            return Err(Fault::Origin(io::Error::other(
                "no TLS configuration for the origin",
            )));
        };
        origin
            .io
            .connect_tls(config.clone(), name.clone())
            .map_err(Fault::Origin)?;
        origin.readable = true;
        relay.origin_tls_started();
        return Ok(true);
    }
    Ok(false)
}

/// Runs `step` until it moves nothing, fails, or has run [`ROUNDS_PER_EVENT`] times. Returns
/// how many rounds moved bytes, whether it stopped with work left (the session then yields and
/// runs again after the others), and how it ended.
pub(super) fn run_rounds(
    mut step: impl FnMut() -> Result<bool, Fault>,
) -> (usize, bool, Result<(), Fault>) {
    let mut rounds = 0;
    loop {
        match step() {
            Ok(true) if rounds < ROUNDS_PER_EVENT => rounds += 1,
            Ok(true) => return (rounds, true, Ok(())),
            Ok(false) => return (rounds, false, Ok(())),
            Err(fault) => return (rounds, false, Err(fault)),
        }
    }
}
