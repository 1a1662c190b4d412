//! The relay at the heart of HELLO and COPY: client commands to the origin, replies back.
//!
//! ```text
//!  client --read--> up_in --take_commands--> up_out --write--> origin
//!  client <--write-- staged / down <--read------------------- origin
//! ```
//!
//! Client bytes are cut into command lines; each line is classified, forwarded in normal form
//! (or answered by the proxy) and leaves a [`Pending`] entry that says what reply it gets.
//! Replies are relayed from `down` to the client without copying: the head entry's parser
//! marks how many bytes of `down` belong to it (`owed`), those are written, then the next
//! entry takes over. Only the CAPA reply is handled line by line (it is rewritten) and the
//! proxy's own CAPA probe is read and dropped. Bytes produced by the proxy (its own replies,
//! rewritten lines) go through `staged`, always ahead of `down`.
//!
//! Invariants: `owed <= down.len()` and is non-zero only while the head entry is an origin
//! reply; replies reach the client in the order of the commands; nothing is read from a side
//! whose buffer is full (backpressure), so memory is bounded by the three buffers.

use super::command::{Keyword, MAX_LINE};
use super::response::{Expect, ResponseParser};
use crate::net::{Side, Transport};
use buffer::RingBuffer;
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

/// Commands in flight at most; a client pipelining more waits for replies.
const MAX_PENDING: usize = 64;
/// Size of the buffer of normalised commands on their way to the origin.
const COMMAND_BUFFER: usize = 1024;
/// Reply to a command line longer than RFC 2449 allows.
const TOO_LONG: &[u8] = b"-ERR Command line too long (at most 255 octets)\r\n";
/// Status line of the CAPA reply when the origin has no CAPA command.
const CAPA_FOLLOWS: &[u8] = b"+OK Capability list follows\r\n";

/// Why the relay cannot go on.
#[derive(Debug)]
pub enum Fault {
    /// Writing to or reading from the client failed.
    Client(io::Error),
    /// Writing to or reading from the origin failed.
    Origin(io::Error),
}

/// Who a reply is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The origin's greeting.
    Greeting,
    /// The proxy's own CAPA, to learn about PIPELINING; not relayed.
    Probe,
    /// The proxy's own STLS to the origin (`starttls` mode); not relayed.
    OriginStls,
    /// The proxy's own XCLIENT to the origin; not relayed.
    Xclient,
    /// A client command.
    Client(Keyword),
}

#[derive(Debug)]
enum Reply {
    /// Written by the proxy itself.
    Local(Vec<u8>),
    /// Coming from the origin; `started` once a byte of it went to the client.
    Origin {
        parser: ResponseParser,
        started: bool,
    },
}

#[derive(Debug)]
struct Pending {
    purpose: Purpose,
    reply: Reply,
    /// When a RETR was forwarded (for the daemon's RETR duration histogram).
    since: Option<Instant>,
}

impl Pending {
    fn awaits_origin(&self) -> bool {
        matches!(&self.reply, Reply::Origin { parser, .. } if !parser.is_done())
    }
}

/// Counters for the access log.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Client commands taken.
    pub commands: u64,
    /// Bytes written to the client.
    pub to_client: u64,
    /// Bytes written to the origin.
    pub to_origin: u64,
    /// The user, from USER, APOP or AUTH.
    pub user: Option<String>,
    /// RETR commands forwarded to the origin.
    pub retrs: u64,
}

/// SASL exchange in progress.
#[derive(Debug, Default)]
struct Sasl {
    /// Client lines the origin has asked for and not yet received.
    allowed: u32,
    /// Mechanism named in AUTH, upper case.
    mechanism: Vec<u8>,
    /// Client lines relayed so far in this exchange.
    lines: u32,
    /// A line too long to inspect is being streamed to the origin.
    streaming: bool,
}

/// The relay's buffers and bookkeeping.
pub struct Relay {
    up_in: RingBuffer,
    up_out: RingBuffer,
    down: RingBuffer,
    staged: Vec<u8>,
    staged_at: usize,
    pending: VecDeque<Pending>,
    owed: usize,
    scratch: Vec<u8>,
    /// The origin offers PIPELINING.
    pub pipelining: bool,
    /// Greeting relayed and capabilities known: commands may flow.
    pub hello_done: bool,
    discarding: bool,
    sasl: Sasl,
    quit: bool,
    capa_has_pipelining: bool,
    /// Counters for the log.
    pub stats: Stats,
    /// A transformation is configured: RETR bodies are diverted to it.
    pub transform: bool,
    /// The censor is on: RETR and TOP bodies are diverted to it.
    pub censor: bool,
    /// The head reply is a RETR (or TOP) whose body is diverted: `down` holds its body (un-stuffed
    /// by the FILTER state), the status line waits in `held`.
    diverted: bool,
    held: Vec<u8>,
    /// TLS on either side: what is offered, what is in force, what is due.
    pub tls: TlsFlags,
    /// How long each RETR answered since the session last looked took, from the command
    /// forwarded to the last byte of its reply written to the client (the session empties it).
    pub retr_times: Vec<Duration>,
    /// The XCLIENT line to send when the origin offers it (`--origin-xclient`).
    pub xclient: Option<String>,
    xclient_offered: bool,
    xclient_missed: bool,
    /// The greeting's start was looked at for the `[XCLIENT]` code.
    greeting_checked: bool,
}

impl Relay {
    /// A relay whose client-side buffers hold `buffer_size` bytes each.
    pub fn new(buffer_size: usize) -> Self {
        Relay {
            up_in: RingBuffer::new(buffer_size),
            up_out: RingBuffer::new(COMMAND_BUFFER),
            down: RingBuffer::new(buffer_size),
            staged: Vec::new(),
            staged_at: 0,
            pending: VecDeque::new(),
            owed: 0,
            scratch: Vec::with_capacity(MAX_LINE + 1),
            pipelining: false,
            hello_done: false,
            discarding: false,
            sasl: Sasl::default(),
            quit: false,
            capa_has_pipelining: false,
            stats: Stats::default(),
            transform: false,
            censor: false,
            diverted: false,
            held: Vec::new(),
            tls: TlsFlags::default(),
            retr_times: Vec::new(),
            xclient: None,
            xclient_offered: false,
            xclient_missed: false,
            greeting_checked: false,
        }
    }

    /// Expect the origin's greeting (entering HELLO).
    pub fn expect_greeting(&mut self) {
        self.push_origin(Purpose::Greeting, Expect::Single);
    }

    /// Queues a line of the proxy's own for the client (an error greeting, say).
    pub fn say(&mut self, line: &[u8]) {
        self.staged.extend_from_slice(line);
    }

    fn push_origin(&mut self, purpose: Purpose, expect: Expect) {
        let reply = Reply::Origin {
            parser: ResponseParser::new(expect),
            started: false,
        };
        self.pending.push_back(Pending {
            purpose,
            reply,
            since: None,
        });
    }

    fn push_local(&mut self, bytes: &[u8]) {
        self.pending.push_back(Pending {
            purpose: Purpose::Client(Keyword::Other),
            reply: Reply::Local(bytes.to_vec()),
            since: None,
        });
    }

    /// The head reply is complete (its last byte written, or replaced): the next takes over.
    fn pop_head(&mut self) {
        if let Some(since) = self.pending.pop_front().and_then(|p| p.since) {
            self.retr_times.push(since.elapsed());
        }
    }

    // ---- what each side wants (the session turns this into selector interest) ----

    /// Room to read from the client.
    pub fn wants_client_input(&self) -> bool {
        !self.up_in.is_full() && !self.tls.client_due
    }

    /// Something is ready to go to the client.
    pub fn has_client_output(&self) -> bool {
        self.staged_at < self.staged.len() || (!self.diverted && !self.down.is_empty())
    }

    /// Room to read from the origin.
    pub fn wants_origin_input(&self) -> bool {
        !self.down.is_full() && !self.tls.origin_due
    }

    /// Something is ready to go to the origin.
    pub fn has_origin_output(&self) -> bool {
        !self.up_out.is_empty()
    }

    /// Everything the client asked for has been answered, and nothing more can come: the
    /// session may end (after QUIT, or once a client that closed its side is served).
    pub fn finished(&self, client_eof: bool) -> bool {
        let idle = self.pending.is_empty()
            && self.staged_at == self.staged.len()
            && self.owed == 0
            && (self.up_in.find(b'\n').is_none() || self.quit);
        idle && (self.quit || client_eof)
    }

    /// True after QUIT was forwarded.
    pub fn quit_sent(&self) -> bool {
        self.quit
    }

    // ---- moving bytes ----

    /// Reads from the client into `up_in` until it would block or the buffer is full.
    pub fn read_client<S: Transport>(&mut self, client: &mut Side<S>) -> Result<bool, Fault> {
        if self.tls.client_due {
            return Ok(false); // what comes next is the client's TLS handshake
        }
        read_into(&mut self.up_in, client).map_err(Fault::Client)
    }

    /// Reads from the origin into `down`.
    pub fn read_origin<S: Transport>(&mut self, origin: &mut Side<S>) -> Result<bool, Fault> {
        if self.tls.origin_due {
            return Ok(false); // what comes next is the origin's TLS handshake
        }
        read_into(&mut self.down, origin).map_err(Fault::Origin)
    }

    /// Writes `up_out` to the origin.
    pub fn write_origin<S: Transport>(&mut self, origin: &mut Side<S>) -> Result<bool, Fault> {
        let mut progress = false;
        while origin.writable && !self.up_out.is_empty() {
            let n = origin
                .flush(&mut self.up_out, usize::MAX)
                .map_err(Fault::Origin)?;
            self.stats.to_origin += n as u64;
            progress |= n > 0;
        }
        Ok(progress)
    }

    /// Writes staged bytes and the head reply's bytes to the client, and moves from reply to
    /// reply as each one is complete.
    pub fn write_client<S: Transport>(&mut self, client: &mut Side<S>) -> Result<bool, Fault> {
        let mut progress = false;
        loop {
            if self.staged_at < self.staged.len() {
                if !client.writable {
                    return Ok(progress);
                }
                let n = client
                    .send(&self.staged[self.staged_at..])
                    .map_err(Fault::Client)?;
                self.staged_at += n;
                self.stats.to_client += n as u64;
                progress |= n > 0;
                if self.staged_at == self.staged.len() {
                    self.staged.clear();
                    self.staged_at = 0;
                }
                continue;
            }
            if self.owed > 0 {
                if !client.writable {
                    return Ok(progress);
                }
                let n = client
                    .flush(&mut self.down, self.owed)
                    .map_err(Fault::Client)?;
                self.owed -= n;
                self.stats.to_client += n as u64;
                progress |= n > 0;
                continue;
            }
            if self.diverted || !self.advance() {
                return Ok(progress);
            }
            progress = true;
        }
    }

    // ---- a RETR body diverted to a transformation ----

    /// The head reply is a RETR or TOP whose body waits for a transformation.
    pub fn diverted(&self) -> bool {
        self.diverted
    }

    /// Which command the diverted body answers (RETR or TOP).
    pub fn diverted_command(&self) -> Option<Keyword> {
        match self.pending.front() {
            Some(Pending {
                purpose: Purpose::Client(k),
                ..
            }) if self.diverted => Some(*k),
            _ => None,
        }
    }

    /// The origin's bytes: the diverted body first.
    pub fn body(&mut self) -> &mut RingBuffer {
        &mut self.down
    }

    /// How many origin bytes wait to be taken.
    pub fn body_waiting(&self) -> usize {
        self.down.len()
    }

    /// The transformation's output begins: its status line goes to the client first.
    pub fn release_status(&mut self) {
        let held = std::mem::take(&mut self.held);
        self.staged.extend_from_slice(&held);
    }

    /// The diverted RETR is over (its body consumed up to the terminator, its reply written
    /// or replaced): the next reply takes over.
    pub fn end_diverted(&mut self) {
        self.diverted = false;
        self.held.clear();
        self.pop_head();
    }

    /// The transformation could not be started: the body is relayed as it is.
    pub fn undivert(&mut self) {
        self.release_status();
        self.diverted = false;
    }

    // ---- endings ----

    /// The origin is gone. Every reply still owed becomes `-ERR`, unless one was already
    /// partly relayed: then the client must not get anything that could complete it.
    /// Returns false in that case (close the client at once).
    pub fn origin_lost(&mut self) -> bool {
        let mut clean = true;
        for p in self.pending.drain(..) {
            match p.reply {
                Reply::Local(bytes) => self.staged.extend_from_slice(&bytes),
                Reply::Origin { parser, .. } if parser.is_done() => {}
                Reply::Origin { started: true, .. } => {
                    clean = false;
                    break;
                }
                Reply::Origin { .. } if p.purpose == Purpose::Probe => {}
                Reply::Origin { .. } => self
                    .staged
                    .extend_from_slice(b"-ERR Connection to the origin server lost\r\n"),
            }
        }
        self.pending.clear();
        self.owed = 0;
        self.down.consume(self.down.len());
        clean
    }

    /// Whether anything has been written to the client (its greeting, at least).
    pub fn client_greeted(&self) -> bool {
        self.stats.to_client > 0
    }

    /// Whether the client has sent anything at all (a command taken, or bytes waiting).
    pub fn client_spoke(&self) -> bool {
        self.stats.commands > 0 || !self.up_in.is_empty()
    }

    /// Nothing more can go to the client from what has been received: no staged bytes, no
    /// bytes of a reply waiting to be written.
    pub fn drained(&self) -> bool {
        self.owed == 0 && self.staged_at == self.staged.len()
    }

    /// Replies still owed to the client, or origin bytes not relayed.
    pub fn owes_replies(&self) -> bool {
        !self.pending.is_empty() || !self.down.is_empty()
    }
}

/// Reads until the socket would block, the buffer is full or the peer is done.
fn read_into<S: Transport>(buf: &mut RingBuffer, side: &mut Side<S>) -> io::Result<bool> {
    let mut progress = false;
    while side.readable && !side.eof && !buf.is_full() {
        progress |= side.fill(buf)? > 0;
    }
    Ok(progress)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

mod commands;
mod replies;
mod stls;
mod xclient;
pub use stls::TlsFlags;
pub use xclient::xclient_line;

#[cfg(test)]
mod tests;
