//! The event loop's registry, on top of mio.
//!
//! Each registered source (a socket or a pipe, by its file descriptor) has an *owner* (which
//! connection it belongs to) and an *endpoint* (what it is to that owner: client, origin,
//! filter input…), and an interest that may be "none": a source with no interest stays known
//! to the selector but is taken out of the kernel's poll set, so a connection that must not
//! read (its buffer is full) is not woken for it. Interest is only passed to the kernel when it
//! changes.
//!
//! One call to [`Selector::poll`] yields a batch of [`Ready`] items. Sources removed while the
//! batch is handled are taken out of the kernel at once but their slot is only reused after
//! [`Selector::end_batch`], so a later item of the same batch can never be delivered to a new
//! source that happened to get the same token; callers check [`Selector::is_live`] first.
//!
//! Work done on helper threads (name resolution) reports back through a [`Waker`]: waking it
//! makes the loop's next poll return a [`Ready::Wake`].
//!
//! Invariant: a source is registered with the kernel exactly when its slot is live and its
//! interest is not [`Interest::NONE`]. The caller must remove a source before closing its
//! descriptor.
#![deny(missing_docs)]

use mio::unix::SourceFd;
use mio::{Events, Poll, Token, Waker};
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// What a source wants to be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Wake when it can be read.
    pub read: bool,
    /// Wake when it can be written.
    pub write: bool,
}

impl Interest {
    /// Nothing: the source is kept but not polled.
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    /// Readable only.
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
    /// Writable only.
    pub const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        read: true,
        write: true,
    };

    /// An interest from two flags.
    pub fn new(read: bool, write: bool) -> Interest {
        Interest { read, write }
    }

    fn to_mio(self) -> Option<mio::Interest> {
        match (self.read, self.write) {
            (false, false) => None,
            (true, false) => Some(mio::Interest::READABLE),
            (false, true) => Some(mio::Interest::WRITABLE),
            (true, true) => Some(mio::Interest::READABLE | mio::Interest::WRITABLE),
        }
    }
}

/// One item of a poll batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready<O, E> {
    /// A source is ready. Errors and hang-ups show as both readable and writable: the next
    /// read or write on the source tells what happened.
    Io {
        /// The source's token, for [`Selector::is_live`].
        token: Token,
        /// Who owns the source.
        owner: O,
        /// What the source is to its owner.
        endpoint: E,
        /// It can be read (or has reached its end, or failed).
        readable: bool,
        /// It can be written (or failed).
        writable: bool,
        /// The peer has finished sending (or the source failed): reading must go on until
        /// the end of stream is seen, since no further event will announce it.
        closed: bool,
    },
    /// The [`Waker`] was woken.
    Wake,
}

struct Slot<O, E> {
    fd: RawFd,
    owner: O,
    endpoint: E,
    interest: Interest,
    live: bool,
}

/// The registry. `O` identifies owners, `E` endpoints.
pub struct Selector<O, E> {
    poll: Poll,
    events: Events,
    slots: Vec<Option<Slot<O, E>>>,
    free: Vec<usize>,
    doomed: Vec<usize>,
    waker: Arc<Waker>,
    batch: Vec<Ready<O, E>>,
}

/// The token reserved for the waker; slots use tokens from 0 up.
const WAKE_TOKEN: Token = Token(usize::MAX);

impl<O: Copy, E: Copy> Selector<O, E> {
    /// A selector that reports at most `capacity` items per poll.
    pub fn new(capacity: usize) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(Selector {
            poll,
            events: Events::with_capacity(capacity.max(1)),
            slots: Vec::new(),
            free: Vec::new(),
            doomed: Vec::new(),
            waker,
            batch: Vec::new(),
        })
    }

    /// A handle that helper threads use to wake the loop.
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Registers `source` for `owner` as `endpoint`, polled for `interest`.
    pub fn register(
        &mut self,
        source: &impl AsRawFd,
        owner: O,
        endpoint: E,
        interest: Interest,
    ) -> io::Result<Token> {
        let fd = source.as_raw_fd();
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let token = Token(index);
        if let Some(mio_interest) = interest.to_mio() {
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut SourceFd(&fd), token, mio_interest)
            {
                self.free.push(index);
                return Err(e);
            }
        }
        self.slots[index] = Some(Slot {
            fd,
            owner,
            endpoint,
            interest,
            live: true,
        });
        Ok(token)
    }

    /// Changes what `token` is polled for; a no-op when it does not change.
    pub fn set_interest(&mut self, token: Token, interest: Interest) -> io::Result<()> {
        let registry = self.poll.registry();
        let slot = match self.slots.get_mut(token.0) {
            Some(Some(slot)) if slot.live => slot,
            _ => return Err(io::Error::new(io::ErrorKind::NotFound, "no such source")),
        };
        if slot.interest == interest {
            return Ok(());
        }
        let fd = slot.fd;
        match (slot.interest.to_mio(), interest.to_mio()) {
            (None, Some(i)) => registry.register(&mut SourceFd(&fd), token, i)?,
            (Some(_), Some(i)) => registry.reregister(&mut SourceFd(&fd), token, i)?,
            (Some(_), None) => registry.deregister(&mut SourceFd(&fd))?,
            (None, None) => {}
        }
        slot.interest = interest;
        Ok(())
    }

    /// The interest `token` is polled for, if it is live.
    pub fn interest(&self, token: Token) -> Option<Interest> {
        match self.slots.get(token.0) {
            Some(Some(slot)) if slot.live => Some(slot.interest),
            _ => None,
        }
    }

    /// Takes `token` out of the kernel now; its slot is reused after the batch. Call it before
    /// closing the descriptor.
    pub fn remove(&mut self, token: Token) {
        if let Some(Some(slot)) = self.slots.get_mut(token.0) {
            if !slot.live {
                return;
            }
            if slot.interest.to_mio().is_some() {
                // The descriptor is still open (the caller closes it afterwards), so this only
                // fails if the kernel lost it already; either way it is out of the poll set.
                let _ = self.poll.registry().deregister(&mut SourceFd(&slot.fd));
            }
            slot.live = false;
            self.doomed.push(token.0);
        }
    }

    /// True while `token` has not been removed.
    pub fn is_live(&self, token: Token) -> bool {
        matches!(self.slots.get(token.0), Some(Some(slot)) if slot.live)
    }

    /// How many sources are live.
    pub fn len(&self) -> usize {
        self.slots.iter().flatten().filter(|s| s.live).count()
    }

    /// True when no source is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for readiness, at most `timeout` (forever with `None`), and returns the batch.
    /// An interrupted wait returns an empty batch. Hand the batch back to [`end_batch`].
    ///
    /// [`end_batch`]: Selector::end_batch
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<Vec<Ready<O, E>>> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(batch),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKE_TOKEN {
                batch.push(Ready::Wake);
                continue;
            }
            if let Some(Some(slot)) = self.slots.get(token.0) {
                let broken = event.is_error() || event.is_read_closed() || event.is_write_closed();
                batch.push(Ready::Io {
                    token,
                    owner: slot.owner,
                    endpoint: slot.endpoint,
                    readable: event.is_readable() || broken,
                    writable: event.is_writable() || broken,
                    closed: event.is_error() || event.is_read_closed(),
                });
            }
        }
        Ok(batch)
    }

    /// Ends a batch: slots removed during it become reusable.
    pub fn end_batch(&mut self, batch: Vec<Ready<O, E>>) {
        self.batch = batch;
        for index in self.doomed.drain(..) {
            self.slots[index] = None;
            self.free.push(index);
        }
    }
}

#[cfg(test)]
mod tests;
