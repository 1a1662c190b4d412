//! The management side: one [`Manager`] per SPCP connection, a state machine on the same loop
//! as the POP3 sessions.
//!
//! ```text
//!  AUTH --(PASS accepted)--> CMD --(quit, peer gone)--> DONE
//!    \--(3 failed PASS, quit, peer gone)------------------^
//! ```
//!
//! Frames are decoded from the front of the input as they complete (split anywhere, several per
//! read) and answered in order. A connection answers at most [`FRAMES_PER_EVENT`] frames per
//! event and stops reading while [`MAX_OUTPUT`] bytes of answers are unread, so a flood on one
//! management connection neither stalls POP3 sessions nor grows memory.

pub mod auth;
mod censor;
pub mod commands;
pub mod wire;

use crate::ctx::{Ctx, Endpoint, Owner};
use crate::net::Side;
use commands::{After, Login};
use mio::net::TcpStream;
use mio::Token;
use selector::Interest;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use stm::{Machine, Stm};

/// Frames answered per readiness event before yielding to other connections.
pub const FRAMES_PER_EVENT: usize = 64;
/// Unread answers above which a connection is not read.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// The states of a management connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtState {
    /// Until a successful PASS: only USER, PASS and QUIT do anything. Next: CMD, or DONE.
    Auth,
    /// Logged in: every command. Next: DONE.
    Cmd,
    /// Closed.
    Done,
}

impl fmt::Display for MgmtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MgmtState::Auth => "AUTH",
            MgmtState::Cmd => "CMD",
            MgmtState::Done => "DONE",
        })
    }
}

/// One management connection.
pub struct Manager {
    stm: Stm<MgmtState>,
    peer: SocketAddr,
    sock: Side<TcpStream>,
    token: Token,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    login: Login,
    closing: bool,
    more: bool,
}

impl Manager {
    /// Registers an accepted management connection (state AUTH).
    pub fn open(
        ctx: &mut Ctx,
        slot: usize,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> io::Result<Manager> {
        let _ = stream.set_nodelay(true);
        let token = ctx.selector.register(
            &stream,
            Owner::Manager(slot),
            Endpoint::Manager,
            Interest::READ,
        )?;
        let mut sock = Side::new(stream);
        sock.readable = false;
        log::debug!("management: connection from {peer}");
        Ok(Manager {
            stm: Stm::new(MgmtState::Auth),
            peer,
            sock,
            token,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            login: Login::default(),
            closing: false,
            more: false,
        })
    }

    /// True once if the last event stopped early to let others run.
    pub fn take_more(&mut self) -> bool {
        std::mem::take(&mut self.more)
    }

    /// Read while there is room for input and few unread answers; write while answers wait.
    pub fn sync(&self, ctx: &mut Ctx) {
        let pending = self.output.len() - self.written;
        let read = !self.closing && !self.sock.eof && !self.sock.readable && pending < MAX_OUTPUT;
        let write = pending > 0 && !self.sock.writable;
        if let Err(e) = ctx
            .selector
            .set_interest(self.token, Interest::new(read, write))
        {
            log::warn!("management: interest: {e}");
        }
    }

    fn read(&mut self) -> io::Result<bool> {
        let mut progress = false;
        let mut chunk = [0u8; 4096];
        while self.sock.readable && !self.sock.eof && !self.closing {
            // Never more than one whole frame's worth waiting to be decoded.
            let room = (wire::MAX_REQUEST + chunk.len()).saturating_sub(self.input.len());
            if room < chunk.len() || self.output.len() - self.written >= MAX_OUTPUT {
                break;
            }
            match self.sock.io.read(&mut chunk) {
                Ok(0) => self.sock.eof = true,
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// Answers complete frames, in order.
    fn answer(&mut self, ctx: &mut Ctx) -> bool {
        let mut used = 0;
        let mut answered = 0;
        let peer = self.peer.to_string();
        while !self.closing {
            if answered == FRAMES_PER_EVENT {
                self.more = true;
                break;
            }
            let Some((request, n)) = wire::decode(&self.input[used..]) else {
                break;
            };
            used += n;
            answered += 1;
            let (response, after) = commands::execute(&request, &mut self.login, ctx, &peer);
            response.encode(&mut self.output);
            self.closing = after == After::Close;
        }
        self.input.drain(..used);
        answered > 0
    }

    fn write(&mut self) -> io::Result<bool> {
        let mut progress = false;
        while self.sock.writable && self.written < self.output.len() {
            match self.sock.io.write(&self.output[self.written..]) {
                Ok(n) => {
                    self.written += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.sock.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        }
        Ok(progress)
    }

    fn pump(&mut self, ctx: &mut Ctx) -> MgmtState {
        let outcome = (|| -> io::Result<()> {
            loop {
                let mut progress = self.read()?;
                progress |= self.answer(ctx);
                progress |= self.write()?;
                if !progress || self.more {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = outcome {
            log::debug!("management: {}: {e}", self.peer);
            return MgmtState::Done;
        }
        let flushed = self.output.len() == self.written;
        if (self.closing || self.sock.eof) && flushed {
            return MgmtState::Done;
        }
        if self.login.authenticated {
            MgmtState::Cmd
        } else {
            MgmtState::Auth
        }
    }
}

impl Machine<Ctx> for Manager {
    type State = MgmtState;
    type Event = ();

    fn stm(&mut self) -> &mut Stm<MgmtState> {
        &mut self.stm
    }

    fn label(&self) -> String {
        format!("management {}", self.peer)
    }

    fn on_arrival(&mut self, ctx: &mut Ctx, state: MgmtState) -> MgmtState {
        if state == MgmtState::Done {
            ctx.selector.remove(self.token);
            ctx.metrics.managers_open = ctx.metrics.managers_open.saturating_sub(1);
            log::debug!("management: {} closed", self.peer);
        }
        state
    }

    fn on_read(&mut self, ctx: &mut Ctx, state: MgmtState, _: &()) -> MgmtState {
        match state {
            MgmtState::Done => state,
            _ => self.pump(ctx),
        }
    }

    fn on_write(&mut self, ctx: &mut Ctx, state: MgmtState, ev: &()) -> MgmtState {
        self.on_read(ctx, state, ev)
    }
}

impl Manager {
    /// Notes what the kernel said about the socket.
    pub fn note(&mut self, readable: bool, writable: bool) {
        self.sock.readable |= readable;
        self.sock.writable |= writable;
    }
}
