//! The client's address toward the origin with XCLIENT, and the XCLIENT of clients.
//!
//! Dovecot greets a peer in its `login_trusted_networks` with `+OK [XCLIENT] …`. With
//! `--origin-xclient` the proxy then sends `XCLIENT ADDR=… PORT=… SESSION=… TTL=…` right after
//! the greeting, before anything else (its own STLS or CAPA probe included), without waiting
//! for the reply, and swallows the reply. The `[XCLIENT]` code never reaches a client, with or
//! without the option; and a client's own `XCLIENT` or `XOIP` is answered `-ERR` by the proxy,
//! never forwarded (once the proxy is trusted, a forwarded one would let any client claim any
//! address).

use super::{Pending, Purpose, Relay, Reply};
use crate::pop3::response::Expect;
use buffer::RingBuffer;

/// How the origin offers XCLIENT in its greeting (Dovecot's form).
const OFFER: &[u8] = b"+OK [XCLIENT] ";
/// Reply to a client's XCLIENT or XOIP.
const REFUSED: &[u8] = b"-ERR XCLIENT is not allowed through this proxy\r\n";

/// Whether a command word is one only a trusted proxy may send.
pub(super) fn is_proxy_command(word: &[u8]) -> bool {
    word.eq_ignore_ascii_case(b"XCLIENT") || word.eq_ignore_ascii_case(b"XOIP")
}

/// What the greeting's start says about XCLIENT.
pub(super) enum Offer {
    /// Not enough bytes yet to tell.
    Undecided,
    /// The greeting offers it: the code is `OFFER.len()` bytes long at the start.
    Offered,
    /// It does not.
    No,
}

/// Looks at the start of `down` for the greeting's `[XCLIENT]` code.
pub(super) fn offer(down: &RingBuffer) -> Offer {
    let n = down.len().min(OFFER.len());
    let mut start = [0u8; OFFER.len()];
    down.peek_into(&mut start[..n]);
    if start[..n] != OFFER[..n] {
        Offer::No
    } else if n < OFFER.len() {
        Offer::Undecided
    } else {
        Offer::Offered
    }
}

impl Relay {
    /// A client's XCLIENT or XOIP.
    pub(super) fn refuse_proxy_command(&mut self) {
        self.push_local(REFUSED);
    }

    /// The greeting offers XCLIENT: drops the code (the client sees `+OK …`), and sends
    /// XCLIENT after the greeting when configured.
    pub(super) fn take_offer(&mut self) {
        self.down.consume(OFFER.len());
        self.xclient_offered = true;
        // What is left of the code's bytes for the client: the status.
        const STATUS: &[u8] = b"+OK ";
        if let Some(Pending {
            reply: Reply::Origin { parser, started },
            ..
        }) = self.pending.front_mut()
        {
            parser.feed(STATUS);
            if self.tls.origin_starttls {
                self.tls.greeting.extend_from_slice(STATUS); // held with the rest
            } else {
                *started = true;
                self.staged.extend_from_slice(STATUS);
            }
        }
    }

    /// After a good greeting: XCLIENT first, when configured and offered.
    pub(super) fn send_xclient(&mut self) {
        match (&self.xclient, self.xclient_offered) {
            (Some(line), true) => {
                let line = line.clone();
                self.up_out.push(line.as_bytes());
                self.push_origin(Purpose::Xclient, Expect::Single);
            }
            (Some(_), false) => self.xclient_missed = true,
            (None, _) => {}
        }
    }

    /// `--origin-xclient` is on but the origin's greeting did not offer XCLIENT (the session
    /// logs it once for the daemon).
    pub fn xclient_missed(&self) -> bool {
        self.xclient_missed
    }
}

/// The XCLIENT line for a client at `addr` in session `serial`.
pub fn xclient_line(addr: std::net::SocketAddr, serial: u64) -> String {
    format!(
        "XCLIENT ADDR={} PORT={} SESSION=pop3filter-{serial} TTL=5\r\n",
        addr.ip(),
        addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offer_is_told_at_every_split() {
        let greeting = b"+OK [XCLIENT] Dovecot ready.\r\n";
        for n in 0..=greeting.len() {
            let mut down = RingBuffer::new(64);
            down.push(&greeting[..n]);
            let told = offer(&down);
            match n {
                0..=13 => assert!(matches!(told, Offer::Undecided), "{n}"),
                _ => assert!(matches!(told, Offer::Offered), "{n}"),
            }
        }
        let mut down = RingBuffer::new(64);
        down.push(b"+OK Dovecot ready.\r\n");
        assert!(matches!(offer(&down), Offer::No));
        let mut down = RingBuffer::new(64);
        down.push(b"+OK [XCLIENTS] x\r\n");
        assert!(matches!(offer(&down), Offer::No));
    }

    #[test]
    fn proxy_commands_in_any_case() {
        for w in [&b"XCLIENT"[..], b"xclient", b"XOIP", b"xOiP"] {
            assert!(is_proxy_command(w));
        }
        assert!(!is_proxy_command(b"XCLIENTS"));
        assert!(!is_proxy_command(b"USER"));
    }

    #[test]
    fn the_line_names_the_client() {
        let addr = "[2001:db8::7]:4242".parse().unwrap();
        assert_eq!(
            xclient_line(addr, 12),
            "XCLIENT ADDR=2001:db8::7 PORT=4242 SESSION=pop3filter-12 TTL=5\r\n"
        );
    }
}
