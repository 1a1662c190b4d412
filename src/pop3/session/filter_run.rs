//! One message on its way through a filter: the buffers between the origin, the filter's
//! pipes and the client, and the steps that move bytes between them (the FILTER state in
//! `filter.rs` decides what happens when; this file only moves bytes).
//!
//! Every step stops at `WouldBlock`, a full buffer, or a short read or write (the kernel had
//! no more), and returns whether it moved anything.

use crate::ctx::Ctx;
use crate::filter::Process;
use crate::net::Side;
use crate::net::Transport;
use crate::pop3::dotstuff::{Stuffer, Unstuffer};
use buffer::RingBuffer;
use mio::Token;
use std::io;
use std::process::ExitStatus;

/// One message on its way through a filter.
pub struct FilterRun {
    pub(super) process: Process,
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

impl FilterRun {
    /// A message about to go through `process`, whose descriptors are registered as the
    /// tokens given; buffers of `size` bytes.
    pub(super) fn new(
        process: Process,
        stdin: Option<Token>,
        stdout: Option<Token>,
        pidfd: Option<Token>,
        size: usize,
    ) -> FilterRun {
        FilterRun {
            process,
            stdin,
            stdout,
            pidfd,
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
        if self.process.stdin.is_none() {
            self.unstuffer.discard(down)
        } else {
            self.unstuffer.pump(down, &mut self.to_filter)
        }
    }

    /// Writes `to_filter` into the filter's stdin; closes stdin after the whole body.
    pub(super) fn feed(&mut self, ctx: &mut Ctx) -> bool {
        let mut progress = false;
        while let Some(stdin) = &mut self.process.stdin {
            if self.to_filter.is_empty() {
                if self.unstuffer.is_done() {
                    self.close_stdin(ctx); // end of message: the filter sees EOF
                    progress = true;
                }
                break;
            }
            if !self.stdin_writable {
                break;
            }
            let wanted = self.to_filter.len();
            match self.to_filter.write_to(stdin, usize::MAX) {
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
                    self.close_stdin(ctx);
                    let n = self.to_filter.len();
                    self.to_filter.consume(n);
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
        self.process.stdin = None;
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
            let Some(stdout) = &mut self.process.stdout else {
                break;
            };
            let room = self.from_filter.read_offer();
            match self.from_filter.read_from(stdout) {
                Ok(0) => {
                    self.stdout_eof = true;
                    if let Some(t) = self.stdout.take() {
                        ctx.selector.remove(t);
                    }
                    self.process.stdout = None;
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
                    log::warn!("filter pid {} stdout: {e}", self.process.pid());
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
