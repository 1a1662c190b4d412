//! The session as an `stm` machine: what each state does on arrival, when a socket is ready,
//! and when a helper thread answers. The states themselves are in `pop3/mod.rs`; the work
//! each hook starts is in the other files of `session/`.

use super::{Readiness, Session, State};
use crate::ctx::{Ctx, Endpoint};
use crate::metrics::Outcome;
use crate::pop3::relay::xclient_line;
use crate::resolve::Job;
use std::net::SocketAddr;
use stm::{Machine, Stm};

impl Machine<Ctx> for Session {
    type State = State;
    type Event = Readiness;

    fn stm(&mut self) -> &mut Stm<State> {
        &mut self.stm
    }

    fn label(&self) -> String {
        format!("session {}", self.serial)
    }

    fn on_arrival(&mut self, ctx: &mut Ctx, state: State) -> State {
        match state {
            State::Header => self.read_header(ctx),
            State::Resolving => {
                let origin = &ctx.config.origin;
                if let Some(ip) = origin.literal {
                    self.addrs = vec![SocketAddr::new(ip, origin.port)];
                    return State::Connecting;
                }
                ctx.resolver.submit(Job {
                    slot: self.slot,
                    serial: self.serial,
                    host: origin.host.clone(),
                    port: origin.port,
                });
                State::Resolving
            }
            State::Connecting => self.connect_next(ctx),
            State::Hello => {
                if let Some((origin, _)) = &self.origin {
                    let _ = origin.io.tcp().set_nodelay(true);
                }
                if ctx.config.fleet.origin_xclient {
                    self.relay.xclient = Some(xclient_line(self.client_addr, self.serial));
                }
                self.relay.expect_greeting();
                self.pump(ctx)
            }
            State::Copy => {
                self.divert_per_config(ctx);
                self.pump(ctx)
            }
            State::Filter => self.start_filter(ctx),
            State::Error => {
                self.close_filter(ctx);
                self.close_origin(ctx);
                if let Some(why) = self.failure.take() {
                    // Failures reported this way are the origin's (unreachable, TLS to it, a
                    // loop), or the client's own connection looping back.
                    self.set_ending(Outcome::OriginError, &why);
                    self.relay
                        .say(format!("-ERR pop3filter: {why}\r\n").as_bytes());
                }
                self.flush()
            }
            State::Done => {
                self.close_filter(ctx);
                self.close_origin(ctx);
                self.client.io.close_notify();
                ctx.selector.remove(self.client_token);
                let stats = &self.relay.stats;
                let origin = self.origin_addr.map_or("-".to_string(), |a| a.to_string());
                let c = self.censored;
                log::info!(
                    "session {}: client {} ({}) origin {} ({}) user {} commands {} bytes to client {} to origin {} censored parts {} messages {} problems {}: {}",
                    self.serial,
                    self.client_addr,
                    self.client.io.describe(),
                    origin,
                    self.origin_tls,
                    stats.user.as_deref().unwrap_or("-"),
                    stats.commands,
                    stats.to_client,
                    stats.to_origin,
                    c.parts,
                    c.messages,
                    c.problems,
                    self.ending
                );
                self.report(ctx);
                let outcome = self.outcome.unwrap_or(Outcome::Error);
                ctx.metrics.session_closed(outcome);
                State::Done
            }
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx, state: State, ev: &Readiness) -> State {
        self.note(ev.endpoint, ev.readable, ev.writable, ev.closed);
        match state {
            State::Header => self.read_header(ctx),
            State::Resolving => self.hold_client(),
            State::Connecting if ev.endpoint == Endpoint::Origin && ev.writable => {
                match self.check_connected(ctx) {
                    State::Connecting => self.hold_client(),
                    next => next,
                }
            }
            State::Connecting => self.hold_client(),
            State::Hello | State::Copy => {
                self.divert_per_config(ctx);
                self.pump(ctx)
            }
            State::Filter => {
                self.note_filter(ev);
                self.pump_filter(ctx)
            }
            State::Error => self.flush(),
            State::Done => State::Done,
        }
    }

    fn on_write(&mut self, ctx: &mut Ctx, state: State, ev: &Readiness) -> State {
        self.on_read(ctx, state, ev)
    }

    fn on_block(&mut self, _ctx: &mut Ctx, state: State) -> State {
        match (state, self.resolved.take()) {
            (State::Resolving, Some(Ok(addrs))) => {
                self.addrs = addrs;
                State::Connecting
            }
            (State::Resolving, Some(Err(why))) => {
                self.failure = Some(why);
                State::Error
            }
            (state, _) => state,
        }
    }
}
