//! Counters the daemon keeps about itself (the management protocol reads them).
//!
//! The loop owns one [`Metrics`] and passes it down; nothing here is global.

/// Totals since the daemon started.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// POP3 client sessions open now.
    pub sessions_open: u64,
    /// POP3 client connections accepted since start.
    pub sessions_accepted: u64,
    /// Bytes written to clients and to origins since start.
    pub bytes_relayed: u64,
    /// Messages that went through the transformation and reached the client whole.
    pub transformed: u64,
    /// Transformations that failed (or could not be started).
    pub filter_failures: u64,
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
    pub fn session_closed(&mut self) {
        self.sessions_open = self.sessions_open.saturating_sub(1);
    }
}
