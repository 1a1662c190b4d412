//! STLS in the relay, both ways: the client's STLS, answered by the proxy, and the proxy's
//! own STLS to an origin in `starttls` mode. The relay only decides *when* a side changes to
//! TLS; the session does the change (`Stream::accept_tls`, `Stream::connect_tls`) between two
//! rounds, when the relay says it is due.
//!
//! Client: `STLS` is answered `+OK` in order with the other replies; from that moment nothing
//! more is read from the client in the clear, and whatever it pipelined behind `STLS` (already
//! read) is discarded, never parsed (the STARTTLS command-injection class). Once every reply
//! up to the `+OK` is written, the client side changes to TLS.
//!
//! Origin: the greeting is held, not relayed; the proxy sends `STLS`; on `+OK` the origin side
//! changes to TLS and the CAPA probe goes out through it; only when the probe is answered does
//! the client get the greeting. An origin that refuses fails the session with `-ERR` — never
//! a fall back to cleartext.

use super::{Purpose, Relay};
use crate::pop3::command::Keyword;
use crate::pop3::response::Expect;

/// Reply to STLS when the proxy has no certificate.
const NO_TLS: &[u8] = b"-ERR STLS is not available through this proxy\r\n";
/// Reply to STLS inside TLS.
const ALREADY_TLS: &[u8] = b"-ERR Already in TLS\r\n";
/// Reply to STLS after a login command.
const TOO_LATE: &[u8] = b"-ERR STLS only before login\r\n";
/// Reply to STLS that is accepted.
const BEGIN_TLS: &[u8] = b"+OK Begin TLS negotiation\r\n";
/// Reply to a login command when TLS is required and not in force.
const NEEDS_TLS: &[u8] = b"-ERR [AUTH] TLS required: use STLS first\r\n";
/// The longest origin greeting held for the client (the rest of the line is dropped).
const MAX_GREETING: usize = 512;

/// What the relay knows about TLS.
#[derive(Debug, Default)]
pub struct TlsFlags {
    /// The proxy has a certificate and this is the plain listener: STLS is offered.
    pub offered: bool,
    /// The client side is in TLS.
    pub client: bool,
    /// No login before TLS (`--require-tls`).
    pub require: bool,
    /// The origin side starts in the clear and changes with STLS.
    pub origin_starttls: bool,
    /// The client's STLS was accepted: the change is due once its `+OK` is out.
    pub(super) client_due: bool,
    /// The origin accepted STLS: the change is due now.
    pub(super) origin_due: bool,
    /// The origin's answer to STLS, when it refused.
    pub(super) origin_refused: Option<String>,
    /// A login command was taken: STLS is too late.
    pub(super) login_seen: bool,
    /// The origin's greeting, held while the origin side changes to TLS.
    pub(super) greeting: Vec<u8>,
    /// The origin's reply to STLS, as far as it came.
    pub(super) stls_reply: Vec<u8>,
}

impl Relay {
    /// Answers the client's STLS.
    pub(super) fn client_stls(&mut self) {
        let reply = if self.tls.client {
            ALREADY_TLS
        } else if !self.tls.offered {
            NO_TLS
        } else if self.tls.login_seen {
            TOO_LATE
        } else {
            self.tls.client_due = true;
            // Pipelined behind STLS in the clear: never a command.
            self.up_in.consume(self.up_in.len());
            BEGIN_TLS
        };
        self.push_local(reply);
    }

    /// A login command: answered here when TLS is required and not in force (true).
    pub(super) fn refuse_login(&mut self, keyword: Keyword) -> bool {
        let login = matches!(
            keyword,
            Keyword::User | Keyword::Pass | Keyword::Apop | Keyword::Auth
        );
        if !login {
            return false;
        }
        if self.tls.require && !self.tls.client {
            self.push_local(NEEDS_TLS);
            return true;
        }
        self.tls.login_seen = true;
        false
    }

    /// Whether a CAPA line may be shown to this client (the origin's STLS never is; login
    /// methods are not while TLS is required and not in force).
    pub(super) fn capability_shown(&self, token: &[u8]) -> bool {
        if token.eq_ignore_ascii_case(b"STLS") {
            return false;
        }
        let hidden_login =
            token.eq_ignore_ascii_case(b"USER") || token.eq_ignore_ascii_case(b"SASL");
        !(hidden_login && self.tls.require && !self.tls.client)
    }

    /// The proxy's own capabilities, added before the end of the CAPA list.
    pub(super) fn own_capabilities(&self, origin_has_pipelining: bool) -> Vec<u8> {
        let mut lines = Vec::new();
        if !origin_has_pipelining {
            lines.extend_from_slice(b"PIPELINING\r\n");
        }
        if self.tls.offered && !self.tls.client && !self.tls.login_seen {
            lines.extend_from_slice(b"STLS\r\n");
        }
        lines
    }

    /// The client's STLS is answered and every reply is out: change the client side now.
    pub fn client_tls_due(&self) -> bool {
        self.tls.client_due && self.pending.is_empty() && self.drained()
    }

    /// The client side is in TLS now.
    pub fn client_tls_started(&mut self) {
        self.tls.client_due = false;
        self.tls.client = true;
        self.up_in.consume(self.up_in.len());
    }

    /// The origin accepted STLS: change the origin side now, before anything else is sent.
    pub fn origin_tls_due(&self) -> bool {
        self.tls.origin_due
    }

    /// The origin side is in TLS now: ask its capabilities through it.
    pub fn origin_tls_started(&mut self) {
        self.tls.origin_due = false;
        self.probe();
    }

    /// The origin refused STLS: why, for the client's `-ERR`.
    pub fn origin_refused_tls(&self) -> Option<&str> {
        self.tls.origin_refused.as_deref()
    }

    /// After a good greeting in `starttls` mode: ask for TLS first.
    pub(super) fn origin_stls(&mut self) {
        self.up_out.push(b"STLS\r\n");
        self.push_origin(Purpose::OriginStls, Expect::Single);
    }

    /// Takes the next `n` bytes of `down` off the wire, keeping (the start of) them: the
    /// greeting while it is held, or the origin's reply to STLS.
    pub(super) fn keep_line(&mut self, purpose: Purpose, n: usize) {
        let kept = match purpose {
            Purpose::Greeting => &mut self.tls.greeting,
            _ => &mut self.tls.stls_reply,
        };
        let at = kept.len();
        let keep = n.min(MAX_GREETING.saturating_sub(at));
        kept.resize(at + keep, 0);
        self.down.peek_into(&mut kept[at..]);
        self.down.consume(n);
    }

    /// The origin answered STLS.
    pub(super) fn origin_stls_answered(&mut self, ok: bool) {
        if ok {
            self.tls.origin_due = true;
        } else {
            let line = super::trim_eol(&self.tls.stls_reply);
            let text = String::from_utf8_lossy(line).into_owned();
            self.tls.origin_refused = Some(format!("origin refused STLS: {text}"));
        }
    }

    /// The held greeting goes to the client (a line end added if it was cut).
    pub(super) fn release_greeting(&mut self) {
        let mut greeting = std::mem::take(&mut self.tls.greeting);
        if !greeting.ends_with(b"\n") {
            greeting.extend_from_slice(b"\r\n");
        }
        self.staged.extend_from_slice(&greeting);
    }
}
