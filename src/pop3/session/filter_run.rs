//! One message on its way through the censor, a filter, or both: the buffers between the
//! origin, the censor, the filter's pipes and the client, and the steps that move bytes
//! between them (the FILTER state in `filter.rs` decides what happens when; this file only
//! moves bytes).
//!
//! ```text
//!  down --un-stuff--> to_filter --censor--> censored --> filter stdin   (censor and filter)
//!  down --un-stuff--> to_filter --censor--> from_filter                 (censor alone)
//!                    to_filter ----------------------------stuff--> to_client
//!                              (censor alone: the runs it keeps as they are)
//!  down --un-stuff--> to_filter -------------------> filter stdin       (filter alone)
//!  filter stdout --> from_filter --stuff--> to_client
//! ```
//!
//! The censor runs on the loop, with no process: alone, it stands in for the filter and
//! "exits 0" once it has written the whole censored message.
//!
//! Every step stops at `WouldBlock`, a full buffer, or a short read or write (the kernel had
//! no more), and returns whether it moved anything.

use crate::ctx::Ctx;
use crate::filter::{FilterConfig, Process};
use crate::net::{Side, Transport};
use crate::pop3::dotstuff::{Stuffer, Unstuffer};
use buffer::RingBuffer;
use mime::Censor;
use mio::Token;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// One message on its way through the censor and/or a filter.
pub struct FilterRun {
    /// The filter's process; `None` when the censor runs alone, or until it has started.
    pub(super) process: Option<Process>,
    /// The filter waits for a place or for its start: nothing moves until it runs.
    pub(super) starting: Option<Start>,
    /// The censor, when `-M` is on.
    pub(super) censor: Option<Box<Censor>>,
    /// The censor's output on its way to the filter (when both run).
    pub(super) censored: Option<RingBuffer>,
    /// Censor alone: bytes at the front of `to_filter` that the censor keeps as they are, to be
    /// stuffed straight into `to_client` once `from_filter` (what it wrote before) is empty.
    passed: usize,
    pub(super) stdin: Option<Token>,
    pub(super) stdout: Option<Token>,
    pub(super) pidfd: Option<Token>,
    pub(super) stdin_writable: bool,
    pub(super) stdout_readable: bool,
    /// The filter's end of stdout is closed: read to the end of stream.
    pub(super) stdout_closed: bool,
    pub(super) exited: bool,
    pub(super) to_filter: RingBuffer,
    pub(super) from_filter: RingBuffer,
    pub(super) to_client: RingBuffer,
    pub(super) unstuffer: Unstuffer,
    pub(super) stuffer: Stuffer,
    /// The status line and output have started going to the client.
    pub(super) released: bool,
    pub(super) stdout_eof: bool,
    pub(super) status: Option<ExitStatus>,
    /// The terminator is in `to_client`.
    pub(super) terminated: bool,
}

/// A filter to start for the message.
pub struct Start {
    /// The command in force when the message began.
    pub(super) command: String,
    /// The configuration in force when the message began.
    pub(super) config: FilterConfig,
    /// A place was given and the start submitted.
    pub(super) placed: bool,
}

impl FilterRun {
    /// The filter has started (its descriptors are registered already).
    pub(super) fn attach(&mut self, process: Process) {
        if self.censor.is_some() {
            self.censored = Some(RingBuffer::new(self.to_filter.capacity()));
        }
        self.process = Some(process);
    }

    /// A message about to go through `censor` (if any) and a filter (once `attach`ed, if
    /// `starting`); buffers of `size` bytes.
    pub(super) fn new(censor: Option<Censor>, size: usize) -> FilterRun {
        FilterRun {
            process: None,
            starting: None,
            censor: censor.map(Box::new),
            censored: None,
            passed: 0,
            stdin: None,
            stdout: None,
            pidfd: None,
            stdin_writable: true,
            stdout_readable: false,
            stdout_closed: false,
            exited: false,
            to_filter: RingBuffer::new(size),
            from_filter: RingBuffer::new(size),
            to_client: RingBuffer::new(size),
            unstuffer: Unstuffer::default(),
            stuffer: Stuffer::default(),
            released: false,
            stdout_eof: false,
            status: None,
            terminated: false,
        }
    }

    /// Un-stuffs the diverted body from `down` into `to_filter` (or drops it once the filter's
    /// stdin is closed), up to the terminator.
    pub(super) fn decode(&mut self, down: &mut RingBuffer) -> bool {
        if self.process.as_ref().is_some_and(|p| p.stdin.is_none()) {
            self.unstuffer.discard(down)
        } else {
            self.unstuffer.pump(down, &mut self.to_filter)
        }
    }

    /// Censors `to_filter` into what comes next (the filter's input, or the output when the
    /// censor runs alone); writes the end of the censored message once the body is in.
    pub(super) fn censor(&mut self) -> bool {
        let Some(censor) = &mut self.censor else {
            return false;
        };
        let mut progress = false;
        if let Some(out) = self.censored.as_mut() {
            progress |= self.to_filter.pump_into(out, |i, o| censor.feed(i, o));
        } else {
            // Alone: what the censor keeps as it is is stuffed from where it lies, which saves
            // copying nearly every byte of a message into `from_filter` and out again.
            loop {
                if self.passed > 0 {
                    progress |= self
                        .stuffer
                        .pump(&mut self.from_filter, &mut self.to_client);
                    if !self.from_filter.is_empty() {
                        break;
                    }
                    let (n, moved) = self.stuffer.pump_at_most(
                        &mut self.to_filter,
                        self.passed,
                        &mut self.to_client,
                    );
                    self.passed -= n;
                    progress |= moved;
                    if self.passed > 0 {
                        break;
                    }
                }
                if self.to_filter.is_empty() {
                    break;
                }
                self.passed = censor.pass(self.to_filter.data().0);
                if self.passed == 0
                    && !self
                        .to_filter
                        .pump_into(&mut self.from_filter, |i, o| censor.feed_until_pass(i, o))
                {
                    break;
                }
                progress = true;
            }
        }
        let out = self.censored.as_mut().unwrap_or(&mut self.from_filter);
        if self.unstuffer.is_done() && self.to_filter.is_empty() {
            while !censor.is_finished() && !out.is_full() {
                let (space, _) = out.space();
                let n = censor.finish(space);
                out.commit(n);
                progress = true;
            }
        }
        if censor.is_finished() && self.process.is_none() && !self.stdout_eof {
            // Alone, the censor is the "filter": done, and successful.
            self.stdout_eof = true;
            self.status = Some(ExitStatus::from_raw(0));
            progress = true;
        }
        progress
    }

    /// The censor (if any) has written the whole message.
    fn censor_done(&self) -> bool {
        self.censor.as_ref().is_none_or(|c| c.is_finished())
    }

    /// Writes the filter's input (`to_filter`, or the censor's output) into its stdin;
    /// closes stdin after the whole message.
    pub(super) fn feed(&mut self, ctx: &mut Ctx) -> bool {
        let mut progress = false;
        loop {
            let input_done = self.unstuffer.is_done() && self.censor_done();
            let Some(stdin) = self.process.as_mut().and_then(|p| p.stdin.as_mut()) else {
                break;
            };
            let source = self.censored.as_mut().unwrap_or(&mut self.to_filter);
            if source.is_empty() {
                if input_done {
                    self.close_stdin(ctx); // end of message: the filter sees EOF
                    progress = true;
                }
                break;
            }
            if !self.stdin_writable {
                break;
            }
            let wanted = source.len();
            match source.write_to(stdin, usize::MAX) {
                Ok(n) => {
                    // A short write: the pipe is full until the filter reads.
                    self.stdin_writable = n == wanted;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stdin_writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The filter closed its stdin early (EPIPE): not an error by itself; the
                    // rest of the body is dropped.
                    let n = source.len();
                    source.consume(n);
                    self.close_stdin(ctx);
                    progress = true;
                }
            }
        }
        progress
    }

    pub(super) fn close_stdin(&mut self, ctx: &mut Ctx) {
        if let Some(t) = self.stdin.take() {
            ctx.selector.remove(t);
        }
        if let Some(p) = &mut self.process {
            p.stdin = None;
        }
    }

    /// Reads the filter's output, stuffing it into `to_client`.
    pub(super) fn drain(&mut self, ctx: &mut Ctx) -> bool {
        let mut progress = false;
        loop {
            let moved = self.read_output(ctx) | self.stuff_output();
            if !moved {
                return progress;
            }
            progress = true;
        }
    }

    /// Reads the filter's raw output into `from_filter`, straight into its free space.
    pub(super) fn read_output(&mut self, ctx: &mut Ctx) -> bool {
        let mut progress = false;
        while self.stdout_readable && !self.stdout_eof && !self.from_filter.is_full() {
            let Some(process) = &mut self.process else {
                break;
            };
            let pid = process.pid();
            let Some(stdout) = &mut process.stdout else {
                break;
            };
            let room = self.from_filter.read_offer();
            match self.from_filter.read_from(stdout) {
                Ok(0) => {
                    self.stdout_eof = true;
                    if let Some(t) = self.stdout.take() {
                        ctx.selector.remove(t);
                    }
                    process.stdout = None;
                    progress = true;
                }
                Ok(n) => {
                    // A short read: the pipe is empty until the filter writes again.
                    self.stdout_readable = n == room || self.stdout_closed;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stdout_readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("filter pid {pid} stdout: {e}");
                    self.stdout_eof = true;
                }
            }
        }
        progress
    }

    /// Stuffs `from_filter` into `to_client` as far as there is room.
    pub(super) fn stuff_output(&mut self) -> bool {
        self.stuffer
            .pump(&mut self.from_filter, &mut self.to_client)
    }

    pub(super) fn output_began(&self) -> bool {
        !self.to_client.is_empty() || self.terminated
    }

    /// Writes filtered bytes to the client (after the status line, which goes first).
    pub(super) fn write_client<W: Transport>(
        &mut self,
        client: &mut Side<W>,
        sent: &mut u64,
    ) -> io::Result<bool> {
        let mut progress = false;
        while self.released && client.writable && !self.to_client.is_empty() {
            let n = client.flush(&mut self.to_client, usize::MAX)?;
            *sent += n as u64;
            progress |= n > 0;
        }
        Ok(progress)
    }
}
