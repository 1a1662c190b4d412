//! The FILTER state: a RETR body through the operator's transformation, streaming.
//!
//! ```text
//!  origin -> down --un-stuff--> to_filter --> filter stdin
//!  filter stdout --> from_filter --stuff, LF->CRLF--> to_client --> client
//! ```
//!
//! Entered when a RETR is answered `+OK` while a transformation is set (the relay holds the
//! status line back and diverts the body). Every endpoint is non-blocking and in the
//! selector: the filter's stdin and stdout pipes and its pidfd (readable when it exits).
//! Backpressure runs through every buffer: a slow client leaves `to_client` full, so the
//! filter's stdout is not read, so the filter stops reading, so `to_filter` fills, so the
//! body stays in `down`, so the origin is not read.
//!
//! Never lose mail: the terminator goes out only after the filter exited 0 with its whole
//! input consumed. A failure before any output turns the reply into `-ERR`; after output began
//! the client is closed without the terminator and the origin without QUIT.

use super::filter_run::FilterRun;
use super::filter_run::Start;
use super::{Readiness, Session};
use crate::ctx::{Ctx, Endpoint, Owner};
use crate::filter::spawner::Job;
use crate::filter::{self, Process};
use crate::metrics::Outcome;
use crate::pop3::command::Keyword;
use crate::pop3::relay::Fault;
use crate::pop3::State;
use selector::Interest;
use std::io;

/// How long a filter that exited may keep its stdout open through a background child before
/// that child is killed (or the inactivity timeout, if shorter).
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Reply to a RETR whose transformation failed before writing anything.
const FILTER_FAILED: &[u8] = b"-ERR The message could not be transformed\r\n";

impl Session {
    /// Starts the censor and/or the filter for the diverted RETR or TOP (the filter for RETR
    /// only); with neither, the body is relayed unchanged. The filter's process is started
    /// off the loop, once there is a place for it (`filter::spawner`); the body waits in the
    /// kernel meanwhile.
    pub(super) fn start_filter(&mut self, ctx: &mut Ctx) -> State {
        let is_retr = self.relay.diverted_command() == Some(Keyword::Retr);
        let censor = ctx
            .config
            .filter
            .censor
            .is_on()
            .then(|| ctx.config.filter.censor.censor());
        let command = ctx.config.filter.command.clone().filter(|_| is_retr);
        if command.is_none() && censor.is_none() {
            self.relay.undivert();
            return State::Copy;
        }
        let size = ctx.config.buffer_size;
        let mut run = FilterRun::new(censor, size);
        if let Some(command) = command {
            run.starting = Some(Start {
                command,
                config: ctx.config.filter.clone(),
                placed: false,
            });
        }
        let needs_place = run.starting.is_some();
        self.filter = Some(Box::new(run));
        if needs_place && ctx.spawner.acquire(self.slot, self.serial) {
            return self.filter_admitted(ctx);
        }
        if needs_place {
            log::debug!(
                "session {}: waiting for a place to start a filter",
                self.serial
            );
        }
        self.pump_filter(ctx)
    }

    /// A place for the filter (given at once, or when the session's turn came): start it off
    /// the loop.
    pub fn filter_admitted(&mut self, ctx: &mut Ctx) -> State {
        let state = self.stm.current();
        let start = self
            .filter
            .as_mut()
            .filter(|_| state == State::Filter)
            .and_then(|r| r.starting.as_mut())
            .filter(|s| !s.placed);
        let Some(start) = start else {
            // The session no longer waits for a filter: the place is not needed.
            ctx.spawner.release();
            return state;
        };
        start.placed = true;
        ctx.spawner.submit(Job {
            slot: self.slot,
            serial: self.serial,
            command: start.command.clone(),
            config: start.config.clone(),
            user: self.relay.stats.user.clone(),
            server: ctx.config.origin.host.clone(),
            client: self.client_addr.ip().to_string(),
        });
        State::Filter
    }

    /// The helper thread's answer: the filter runs, or could not be started.
    pub fn filter_spawned(&mut self, ctx: &mut Ctx, result: io::Result<Process>) -> State {
        let state = self.stm.current();
        let waiting = state == State::Filter
            && self
                .filter
                .as_ref()
                .and_then(|r| r.starting.as_ref())
                .is_some_and(|s| s.placed);
        let process = match (waiting, result) {
            (true, Ok(process)) => process,
            (false, Ok(process)) => {
                // The session no longer wants it.
                ctx.orphans.adopt(process);
                ctx.spawner.release();
                return state;
            }
            (waiting, Err(e)) => {
                ctx.spawner.release();
                if !waiting {
                    return state;
                }
                let run = self.filter.as_mut().expect("waiting for a filter");
                let command = run.starting.take().map(|s| s.command).unwrap_or_default();
                let censored = run.censor.is_some();
                log::error!(
                    "session {}: cannot start filter '{command}': {e}; message relayed {}",
                    self.serial,
                    if censored {
                        "censored only"
                    } else {
                        "unchanged"
                    }
                );
                ctx.metrics.filter_failures += 1;
                if !censored {
                    self.filter = None;
                    self.relay.undivert();
                    return State::Copy;
                }
                return self.pump_filter(ctx);
            }
        };
        let run = self.filter.as_mut().expect("waiting for a filter");
        let start = run.starting.take().expect("waiting for a filter");
        log::debug!(
            "session {}: filter pid {} started: {}",
            self.serial,
            process.pid(),
            start.command
        );
        let owner = Owner::Session(self.slot);
        let sel = &mut ctx.selector;
        run.stdin = process.stdin.as_ref().and_then(|p| {
            sel.register(p, owner, Endpoint::FilterIn, Interest::NONE)
                .ok()
        });
        run.stdout = process.stdout.as_ref().and_then(|p| {
            sel.register(p, owner, Endpoint::FilterOut, Interest::READ)
                .ok()
        });
        run.pidfd = sel
            .register(&process.pidfd, owner, Endpoint::FilterExit, Interest::READ)
            .ok();
        run.attach(process);
        self.touch();
        self.pump_filter(ctx)
    }

    /// Notes readiness of one of the filter's descriptors.
    pub(super) fn note_filter(&mut self, ev: &Readiness) {
        if let Some(run) = &mut self.filter {
            match ev.endpoint {
                Endpoint::FilterIn => run.stdin_writable |= ev.writable,
                Endpoint::FilterOut => {
                    run.stdout_readable |= ev.readable;
                    run.stdout_closed |= ev.closed;
                }
                Endpoint::FilterExit => run.exited |= ev.readable,
                _ => {}
            }
        }
    }

    /// Selector interest of the filter's descriptors.
    pub(super) fn sync_filter(&self, ctx: &mut Ctx) {
        let Some(run) = &self.filter else { return };
        if let Some(t) = run.stdin {
            let write = !run.stdin_writable && !run.to_filter.is_empty();
            super::set(ctx, t, Interest::new(false, write));
        }
        if let Some(t) = run.stdout {
            let read = !run.stdout_readable && !run.from_filter.is_full();
            super::set(ctx, t, Interest::new(read, false));
        }
        if let Some(t) = run.pidfd {
            super::set(
                ctx,
                t,
                Interest::new(!run.exited && run.status.is_none(), false),
            );
        }
    }

    /// True when there are filtered bytes for the client.
    pub(super) fn filter_output_waiting(&self) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|r| r.released && !r.to_client.is_empty())
    }

    /// Moves the message along every step, then decides what comes next.
    pub(super) fn pump_filter(&mut self, ctx: &mut Ctx) -> State {
        let Some(mut run) = self.filter.take() else {
            return State::Copy;
        };
        let Some((origin, _)) = &mut self.origin else {
            self.filter = Some(run);
            return self.end(Outcome::Error, "no origin");
        };
        let client = &mut self.client;
        let relay = &mut self.relay;
        let (rounds, more, outcome) = super::relaying::run_rounds(|| {
            let mut progress = relay.read_client(client)?;
            progress |= relay.take_commands();
            progress |= relay.write_origin(origin)?;
            progress |= relay.read_origin(origin)?;
            if run.starting.is_none() {
                // While the filter starts, the body waits (in `down` and the kernel).
                progress |= run.decode(relay.body());
                progress |= run.censor();
                progress |= run.feed(ctx);
                progress |= run.drain(ctx);
            }
            if run.output_began() && !run.released {
                run.released = true;
                relay.release_status();
            }
            progress |= relay.write_client(client)?;
            if relay.drained() {
                progress |= run
                    .write_client(client, &mut relay.stats.to_client)
                    .map_err(Fault::Client)?;
            }
            progress |= client.push_pending().map_err(Fault::Client)?;
            progress |= origin.push_pending().map_err(Fault::Origin)?;
            Ok(progress)
        });
        self.more |= more;
        let origin_eof = origin.eof;
        if rounds > 0 {
            self.touch();
        }
        if run.exited && run.status.is_none() {
            run.status = run.process.as_mut().and_then(|p| p.reap());
        }
        let origin_gone = origin_eof && !run.unstuffer.is_done() && self.relay.body().is_empty();
        self.filter = Some(run);
        match outcome {
            Err(Fault::Client(e)) => return self.client_failed(&e),
            Err(Fault::Origin(e)) => {
                return self.filter_lost_origin(ctx, &format!("origin error: {e}"))
            }
            Ok(()) => {}
        }
        if origin_gone {
            return self.filter_lost_origin(ctx, "origin closed the connection");
        }
        self.filter_verdict(ctx)
    }

    /// Success, failure, or not yet.
    fn filter_verdict(&mut self, ctx: &mut Ctx) -> State {
        let Some(run) = &mut self.filter else {
            return State::Copy;
        };
        let body_done = run.unstuffer.is_done();
        match run.status {
            Some(status) if status.success() => {
                if !(body_done && run.stdout_eof && run.from_filter.is_empty()) {
                    return State::Filter;
                }
                if !run.terminated {
                    if !run.released {
                        run.released = true;
                        self.relay.release_status();
                    }
                    if !run.stuffer.finish_into(&mut run.to_client) {
                        return State::Filter;
                    }
                    run.terminated = true;
                    // Written on the next pump; come back at once.
                    self.more = true;
                    return State::Filter;
                }
                if !run.to_client.is_empty() || !self.relay.drained() {
                    return State::Filter;
                }
                if run.process.is_some() {
                    ctx.metrics.transformed += 1;
                }
                self.close_filter(ctx);
                self.relay.end_diverted();
                State::Copy
            }
            Some(status) => {
                let why = filter::describe(status);
                if run.released {
                    log::warn!(
                        "session {}: filter failed after output began ({why})",
                        self.serial
                    );
                    ctx.metrics.filter_failures += 1;
                    let why = format!(
                        "filter failed mid-message ({why}); client closed without the terminator"
                    );
                    return self.end(Outcome::Error, &why);
                }
                if !body_done {
                    return State::Filter; // consume the rest of the body first
                }
                log::warn!(
                    "session {}: filter failed before any output ({why}); RETR answered -ERR",
                    self.serial
                );
                ctx.metrics.filter_failures += 1;
                self.close_filter(ctx);
                self.relay.end_diverted();
                self.relay.say(FILTER_FAILED);
                State::Copy
            }
            None => State::Filter,
        }
    }

    /// The origin went away in the middle of a diverted body.
    fn filter_lost_origin(&mut self, ctx: &mut Ctx, why: &str) -> State {
        let released = self.filter.as_ref().is_some_and(|r| r.released);
        self.close_filter(ctx);
        if released {
            return self.end(
                Outcome::OriginError,
                &format!("{why} in the middle of a reply"),
            );
        }
        self.relay.end_diverted();
        self.relay
            .say(b"-ERR Connection to the origin server lost\r\n");
        self.origin_gone(why)
    }

    /// How long a filter that has exited may keep its output open (through a background
    /// child) before its process group is killed; `None` unless that is the case.
    pub(super) fn filter_linger(&self) -> Option<std::time::Duration> {
        let run = self.filter.as_ref()?;
        let exited = run.process.as_ref().is_some_and(|p| p.has_exited());
        (exited && !run.stdout_eof).then_some(LINGER)
    }

    /// Nothing moved for the whole timeout (or a finished filter lingers): decide who stalled.
    pub(super) fn filter_timed_out(&mut self, ctx: &mut Ctx) -> State {
        let Some(run) = &mut self.filter else {
            return State::Copy;
        };
        if run.starting.is_some() {
            // Waiting for a place or for the start: its turn comes as filters end.
            self.touch();
            return State::Filter;
        }
        let body_done = run.unstuffer.is_done();
        let waiting_for_origin =
            !body_done && run.to_filter.is_empty() && self.relay.body_waiting() == 0;
        let Some(process) = &mut run.process else {
            // The censor alone: the origin or the client stalled.
            return match (waiting_for_origin, run.released) {
                (true, false) => self.filter_lost_origin(ctx, "origin did not answer in time"),
                (true, true) => self.end(
                    Outcome::OriginError,
                    "origin did not answer in time in the middle of a reply",
                ),
                (false, _) => self.end(
                    Outcome::Timeout,
                    "client did not read in time in the middle of a reply",
                ),
            };
        };
        let pid = process.pid();
        if process.has_exited() && !run.stdout_eof && body_done {
            // The filter is done but something it started still holds its output open.
            log::warn!(
                "session {}: filter pid {pid} exited; killing what it left running",
                self.serial
            );
            process.kill();
        } else if waiting_for_origin && !run.released {
            log::warn!(
                "session {}: origin stalled in the middle of a filtered RETR",
                self.serial
            );
            return self.filter_lost_origin(ctx, "origin did not answer in time");
        } else if waiting_for_origin {
            return self.end(
                Outcome::OriginError,
                "origin did not answer in time in the middle of a reply",
            );
        } else {
            log::warn!(
                "session {}: filter pid {pid} made no progress; killed",
                self.serial
            );
            process.kill();
        }
        self.pump_filter(ctx)
    }

    /// Takes the filter's descriptors out of the selector; an unfinished process is killed and
    /// left to the loop to reap.
    pub(super) fn close_filter(&mut self, ctx: &mut Ctx) {
        let Some(mut run) = self.filter.take() else {
            return;
        };
        for token in [run.stdin, run.stdout, run.pidfd].into_iter().flatten() {
            ctx.selector.remove(token);
        }
        if let Some(censor) = &mut run.censor {
            self.censored.add(censor.counters());
            ctx.metrics.censor.add(censor.counters());
            while let Some(problem) = censor.take_problem() {
                log::info!("session {}: censor passed through: {problem}", self.serial);
            }
        }
        match &run.starting {
            Some(start) if start.placed => ctx.spawner.release(), // its answer is dropped
            Some(_) => ctx.spawner.leave(self.slot, self.serial),
            None if run.process.is_some() => ctx.spawner.release(),
            None => {}
        }
        let Some(mut process) = run.process else {
            return;
        };
        process.stdin = None;
        process.stdout = None;
        // Whatever the filter left running in its group goes with the message.
        process.kill();
        if run.status.is_none() && process.reap().is_none() {
            ctx.orphans.adopt(process);
        }
    }
}
