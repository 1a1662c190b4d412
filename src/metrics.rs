//! Counters the daemon keeps about itself: SPCP's `stats` and the scrape endpoint
//! (`src/scrape/`) read them.
//!
//! The loop owns one [`Metrics`] and lends it to every hook, which updates it where things
//! happen (a session that ends, a filter that fails, a handshake that completes); nothing here
//! is global, and nothing here knows a wire format. Invariant: every accepted session is
//! either open or counted once under an [`Outcome`], so
//! `sessions_accepted == sessions_open + sum(sessions_ended)`.

mod histogram;

pub use histogram::Histogram;

/// Why a session ended, as far as the proxy can tell who ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client said QUIT and got its reply.
    Quit,
    /// The client closed (or reset) its connection without QUIT.
    ClientClosed,
    /// The origin could not be reached, failed, closed, or did not answer in time.
    OriginError,
    /// The client was silent (or did not read) for the whole inactivity timeout.
    Timeout,
    /// Anything else: a TLS or I/O error on the client's side, a transformation that failed
    /// after its output began, an internal error.
    Error,
    /// Still open when the shutdown's grace period ended.
    Shutdown,
}

impl Outcome {
    /// Every outcome, in the order they are shown.
    pub const ALL: [Outcome; 6] = [
        Outcome::Quit,
        Outcome::ClientClosed,
        Outcome::OriginError,
        Outcome::Timeout,
        Outcome::Error,
        Outcome::Shutdown,
    ];

    /// The name a scraper sees (`outcome="client_closed"`).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Quit => "quit",
            Outcome::ClientClosed => "client_closed",
            Outcome::OriginError => "origin_error",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
            Outcome::Shutdown => "shutdown",
        }
    }
}

/// Which side of a session a TLS handshake was with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSide {
    /// The client's (the proxy is the TLS server).
    Client,
    /// The origin's (the proxy is the TLS client).
    Origin,
}

impl TlsSide {
    /// Both sides, in the order they are shown.
    pub const ALL: [TlsSide; 2] = [TlsSide::Client, TlsSide::Origin];

    /// The name a scraper sees (`side="origin"`).
    pub fn label(self) -> &'static str {
        match self {
            TlsSide::Client => "client",
            TlsSide::Origin => "origin",
        }
    }
}

/// TLS handshakes on one side since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TlsCounts {
    /// Handshakes that completed.
    pub handshakes: u64,
    /// Handshakes that ended in a TLS error (an alert, a rejected certificate...).
    pub failures: u64,
}

/// Totals since the daemon started, and what is open now.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// POP3 client sessions open now.
    pub sessions_open: u64,
    /// POP3 client connections accepted since start.
    pub sessions_accepted: u64,
    /// Sessions ended, by [`Outcome`] (indexed as [`Outcome::ALL`]).
    pub sessions_ended: [u64; 6],
    /// Bytes written to clients since start.
    pub bytes_to_client: u64,
    /// Bytes written to origins since start.
    pub bytes_to_origin: u64,
    /// RETR commands forwarded to the origin.
    pub retrs: u64,
    /// From a RETR forwarded to the last byte of its reply written to the client.
    pub retr_duration: Histogram,
    /// Messages that went through the transformation and reached the client whole.
    pub transformed: u64,
    /// Transformations that failed (or could not be started).
    pub filter_failures: u64,
    /// Connections to an origin address that failed (refused, unreachable, timed out).
    pub origin_connect_failures: u64,
    /// TLS handshakes, by [`TlsSide`] (indexed as [`TlsSide::ALL`]).
    pub tls: [TlsCounts; 2],
    /// Management (SPCP) connections open now.
    pub managers_open: u64,
    /// What the censor did.
    pub censor: CensorCounts,
}

/// What the censor did: over a session, or since the daemon started.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CensorCounts {
    /// Parts replaced by a note.
    pub parts: u64,
    /// Messages (RETR and TOP replies) with at least one part replaced.
    pub messages: u64,
    /// Things the censor could not parse and passed through unchanged.
    pub problems: u64,
}

impl CensorCounts {
    /// Adds one message's counters.
    pub fn add(&mut self, c: mime::Counters) {
        self.parts += c.parts_censored;
        self.messages += c.messages_censored;
        self.problems += c.problems;
    }
}

impl Metrics {
    /// A client connection was accepted.
    pub fn session_opened(&mut self) {
        self.sessions_open += 1;
        self.sessions_accepted += 1;
    }

    /// A session ended.
    pub fn session_closed(&mut self, outcome: Outcome) {
        self.sessions_open = self.sessions_open.saturating_sub(1);
        self.sessions_ended[outcome as usize] += 1;
    }

    /// Sessions that ended with `outcome`.
    pub fn ended(&self, outcome: Outcome) -> u64 {
        self.sessions_ended[outcome as usize]
    }

    /// Bytes written to clients and to origins (SPCP's BYTES).
    pub fn bytes_relayed(&self) -> u64 {
        self.bytes_to_client + self.bytes_to_origin
    }

    /// A TLS handshake on `side` completed (`ok`) or failed.
    pub fn tls_handshake(&mut self, side: TlsSide, ok: bool) {
        let counts = &mut self.tls[side as usize];
        match ok {
            true => counts.handshakes += 1,
            false => counts.failures += 1,
        }
    }

    /// The handshakes on `side`.
    pub fn tls(&self, side: TlsSide) -> TlsCounts {
        self.tls[side as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_session_is_open_or_ended_once() {
        let mut m = Metrics::default();
        for _ in 0..4 {
            m.session_opened();
        }
        m.session_closed(Outcome::Quit);
        m.session_closed(Outcome::Timeout);
        m.session_closed(Outcome::Timeout);
        let ended: u64 = Outcome::ALL.iter().map(|&o| m.ended(o)).sum();
        assert_eq!((m.sessions_accepted, m.sessions_open, ended), (4, 1, 3));
        assert_eq!(m.ended(Outcome::Timeout), 2);
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i, "ALL is in declaration order");
        }
        for (i, s) in TlsSide::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "ALL is in declaration order");
        }
    }

    #[test]
    fn tls_and_bytes() {
        let mut m = Metrics::default();
        m.tls_handshake(TlsSide::Origin, true);
        m.tls_handshake(TlsSide::Origin, false);
        m.tls_handshake(TlsSide::Client, true);
        assert_eq!(
            m.tls(TlsSide::Origin),
            TlsCounts {
                handshakes: 1,
                failures: 1
            }
        );
        assert_eq!(m.tls(TlsSide::Client).handshakes, 1);
        m.bytes_to_client = 10;
        m.bytes_to_origin = 5;
        assert_eq!(m.bytes_relayed(), 15);
    }
}
