//! The reply side of the relay: which bytes of `down` belong to the head of the queue of owed
//! replies, what the parser learned from them, and the two replies read line by line (the
//! client's CAPA, rewritten; the proxy's own CAPA probe, dropped).

use super::xclient::{self, Offer};
use super::{trim_eol, Pending, Purpose, Relay, Reply, Sasl, CAPA_FOLLOWS};
use crate::pop3::command::Keyword;
use crate::pop3::dotstuff::TERMINATOR;
use crate::pop3::response::{Event, Expect, ResponseParser, Status};
use buffer::RingBuffer;

impl Relay {
    /// Attributes the next bytes of `down` to the head reply (or finishes the head). False
    /// when nothing can be done until more bytes arrive.
    pub(super) fn advance(&mut self) -> bool {
        let Some(head) = self.pending.front_mut() else {
            // Nothing was asked: whatever the origin says goes to the client as it is (a
            // server's farewell before it closes an idle session, for instance).
            self.owed = self.down.len();
            return self.owed > 0;
        };
        let purpose = head.purpose;
        match &mut head.reply {
            Reply::Local(bytes) => {
                let bytes = std::mem::take(bytes);
                self.staged.extend_from_slice(&bytes);
                self.pending.pop_front();
                true
            }
            Reply::Origin { parser, .. } if parser.is_done() => {
                self.pop_head();
                true
            }
            Reply::Origin { .. } if self.down.is_empty() => false,
            Reply::Origin { .. } if purpose == Purpose::Greeting && !self.greeting_checked => {
                // The greeting's [XCLIENT] code is the proxy's business, never the client's.
                match xclient::offer(&self.down) {
                    Offer::Undecided => return false,
                    Offer::Offered => self.take_offer(),
                    Offer::No => {}
                }
                self.greeting_checked = true;
                true
            }
            Reply::Origin { parser, started } => match purpose {
                Purpose::Probe | Purpose::Client(Keyword::Capa) => self.advance_line(purpose),
                Purpose::OriginStls => {
                    let (n, event) = scan(parser, &self.down);
                    self.keep_line(purpose, n);
                    self.on_event(purpose, event);
                    true
                }
                Purpose::Xclient => {
                    // Swallowed: the client never asked.
                    let (n, event) = scan(parser, &self.down);
                    self.down.consume(n);
                    self.on_event(purpose, event);
                    true
                }
                Purpose::Greeting if self.tls.origin_starttls => {
                    let (n, event) = scan(parser, &self.down);
                    self.keep_line(purpose, n);
                    self.on_event(purpose, event);
                    true
                }
                _ => {
                    let (n, event) = scan(parser, &self.down);
                    *started = true;
                    let wanted = match purpose {
                        Purpose::Client(Keyword::Retr) => self.transform || self.censor,
                        Purpose::Client(Keyword::Top) => self.censor,
                        _ => false,
                    };
                    let divert = wanted && event == Event::StatusLine(Status::Ok);
                    if divert {
                        // The body goes to the filter; the status line waits until the
                        // filter's output begins (or is replaced by -ERR if it fails).
                        self.held.resize(n, 0);
                        self.down.peek_into(&mut self.held);
                        self.down.consume(n);
                        self.diverted = true;
                    } else {
                        self.owed = n;
                    }
                    self.on_event(purpose, event);
                    true
                }
            },
        }
    }

    /// Handles one line of a reply read line by line (CAPA, rewritten; the probe, dropped).
    fn advance_line(&mut self, purpose: Purpose) -> bool {
        let probe = purpose == Purpose::Probe;
        let Some(lf) = self.down.find(b'\n') else {
            if !self.down.is_full() {
                return false;
            }
            // A line longer than the buffer: no capability is that long. Relay it (or drop
            // it, for the probe) without looking.
            let Some(Pending {
                reply: Reply::Origin { parser, started },
                ..
            }) = self.pending.front_mut()
            else {
                return false;
            };
            let (n, event) = scan(parser, &self.down);
            *started = true;
            if probe {
                self.down.consume(n);
            } else {
                self.owed = n;
            }
            self.on_event(purpose, event);
            return true;
        };
        let mut line = vec![0u8; lf + 1];
        self.down.peek_into(&mut line);
        self.down.consume(lf + 1);
        let Some(Pending {
            reply: Reply::Origin { parser, started },
            ..
        }) = self.pending.front_mut()
        else {
            return false;
        };
        let first = parser.at_start();
        let (_, event) = parser.feed(&line);
        *started = true;
        let token = capability(&line);
        if probe {
            if !first && token.eq_ignore_ascii_case(b"PIPELINING") {
                self.capa_has_pipelining = true;
            }
        } else if first && event == Event::Done(Status::Err) {
            // No CAPA at the origin: the client still learns what the proxy offers.
            self.staged.extend_from_slice(CAPA_FOLLOWS);
            let own = self.own_capabilities(false);
            self.staged.extend_from_slice(&own);
            self.staged.extend_from_slice(TERMINATOR);
        } else if matches!(event, Event::Done(_)) {
            let own = self.own_capabilities(self.capa_has_pipelining);
            self.staged.extend_from_slice(&own);
            self.staged.extend_from_slice(&line);
        } else if first {
            self.capa_has_pipelining = false;
            self.staged.extend_from_slice(&line);
        } else if !self.capability_shown(token) {
            // The origin's STLS (TLS to the client is the proxy's business), or a login
            // method while TLS is required.
        } else {
            if token.eq_ignore_ascii_case(b"PIPELINING") {
                self.capa_has_pipelining = true;
            }
            self.staged.extend_from_slice(&line);
        }
        self.on_event(purpose, event);
        true
    }

    /// Asks the origin's capabilities (the proxy's own CAPA, not relayed).
    pub(super) fn probe(&mut self) {
        self.up_out.push(b"CAPA\r\n");
        self.push_origin(Purpose::Probe, Expect::Multi);
    }

    /// Acts on what the parser found in the head reply.
    fn on_event(&mut self, purpose: Purpose, event: Event) {
        match (purpose, event) {
            (Purpose::Greeting, Event::Done(Status::Ok)) if self.tls.origin_starttls => {
                self.send_xclient();
                self.origin_stls()
            }
            (Purpose::Greeting, Event::Done(Status::Ok)) => {
                self.send_xclient();
                self.probe()
            }
            (Purpose::Greeting, Event::Done(_)) if self.tls.origin_starttls => {
                self.release_greeting();
                self.hello_done = true;
            }
            (Purpose::Greeting, Event::Done(_)) => self.hello_done = true,
            (Purpose::OriginStls, Event::Done(status)) => {
                self.origin_stls_answered(status == Status::Ok)
            }
            (Purpose::Probe, Event::Done(status)) => {
                self.pipelining = status == Status::Ok && self.capa_has_pipelining;
                if self.tls.origin_starttls {
                    self.release_greeting();
                }
                self.hello_done = true;
            }
            (Purpose::Client(Keyword::Auth), Event::Continue) => self.sasl.allowed += 1,
            (Purpose::Client(Keyword::Auth), Event::Done(_)) => self.sasl = Sasl::default(),
            _ => {}
        }
    }
}

/// Feeds the parser from the front of `down`, across the wrap; returns (bytes, event).
fn scan(parser: &mut ResponseParser, down: &RingBuffer) -> (usize, Event) {
    let (a, b) = down.data();
    let (n, event) = parser.feed(a);
    if event == Event::NeedMore && n == a.len() && !b.is_empty() {
        let (m, event) = parser.feed(b);
        return (n + m, event);
    }
    (n, event)
}

/// The first word of a CAPA line.
fn capability(line: &[u8]) -> &[u8] {
    let line = trim_eol(line);
    let end = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
    &line[..end]
}
