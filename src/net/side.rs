//! One side of a connection as the loop sees it: the stream, and what the kernel last said
//! about it (known readable, known writable, ended).
//!
//! Readiness is edge-triggered, so a side remembers it: a side stays "known readable" until
//! a read comes back short or would block, "known writable" likewise for writes. Bytes a
//! [`Transport`] accepted but could not yet give the kernel (TLS records) keep the side
//! asking for write readiness until they are out.

use super::Transport;
use buffer::RingBuffer;
use std::io;

/// One side of a connection: a stream with what the kernel last said about it.
#[derive(Debug)]
pub struct Side<S> {
    /// The socket.
    pub io: S,
    /// Known readable: a read has not returned `WouldBlock` since the last readable event.
    pub readable: bool,
    /// Known writable, likewise.
    pub writable: bool,
    /// The peer has finished sending, as a read returned 0.
    pub eof: bool,
    /// The kernel said the peer has finished sending: short reads do not mean "drained"
    /// any more, since no event will come for the end of stream.
    pub closed: bool,
}

impl<S> Side<S> {
    /// A side assumed ready until the kernel says otherwise.
    pub fn new(io: S) -> Self {
        Side {
            io,
            readable: true,
            writable: true,
            eof: false,
            closed: false,
        }
    }
}

// A short read or write means the kernel had no more data, or no more room, at that moment:
// the side stops being known ready without a second call that would only return
// `WouldBlock`. That is safe with edge-triggered polling, which reports every new arrival of
// data or room, and it saves a system call per buffer on the hot path.

impl<S: Transport> Side<S> {
    /// Reads once into the free space of `buf`; returns the byte count. Notes the end of
    /// stream and whether the kernel may have more.
    pub fn fill(&mut self, buf: &mut RingBuffer) -> io::Result<usize> {
        let room = buf.read_offer();
        match buf.read_from(&mut self.io) {
            Ok(0) if room > 0 => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.readable = n == room || self.closed;
                self.note_pending();
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                self.note_pending();
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl<S: Transport> Side<S> {
    /// A read may have produced bytes to send (a TLS handshake message, an alert) that the
    /// kernel had no room for: the side is then not writable until it says so.
    fn note_pending(&mut self) {
        if self.io.pending() {
            self.writable = false;
        }
    }

    /// Whether the side needs write readiness: it has `output` to write, or bytes already
    /// accepted wait for the kernel, and the kernel has not said there is room.
    pub fn wants_write(&self, output: bool) -> bool {
        (output || self.io.pending()) && !self.writable
    }

    /// Nothing accepted by a write is still waiting for the kernel.
    pub fn flushed(&self) -> bool {
        !self.io.pending()
    }

    /// Hands bytes already accepted to the kernel, if any wait and there may be room.
    pub fn push_pending(&mut self) -> io::Result<bool> {
        if !self.writable || !self.io.pending() {
            return Ok(false);
        }
        match self.io.push_pending() {
            Ok(all) => {
                self.writable = all;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes once at most `limit` bytes of `buf`'s data, consuming what was written.
    pub fn flush(&mut self, buf: &mut RingBuffer, limit: usize) -> io::Result<usize> {
        let wanted = limit.min(buf.len());
        self.noting_room(wanted, |io| buf.write_to(io, limit))
    }

    /// Writes once from `data`.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.noting_room(data.len(), |io| io.write(data))
    }

    fn noting_room(
        &mut self,
        wanted: usize,
        write: impl FnOnce(&mut S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match write(&mut self.io) {
            Ok(n) => {
                self.writable = n == wanted && !self.io.pending();
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.writable = false;
                Ok(0)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}
