//! The daemon's [`Metrics`] in the Prometheus text format (version 0.0.4) or in OpenMetrics
//! 1.0.0, whichever the scraper prefers.
//!
//! Every family has `# HELP` and `# TYPE`; every name starts with `pop3filter_`. The two
//! formats differ only where OpenMetrics insists: a counter's family is named without its
//! `_total` suffix (the samples keep it), units are declared, and `# EOF` ends the text.
//! Rendering reads the counters and allocates one string; it costs the same however many
//! sessions are open.

use crate::metrics::{Histogram, Metrics, Outcome, TlsSide};
use std::fmt::{Display, Write};

/// Prefix of every metric name.
const PREFIX: &str = "pop3filter_";

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What is measured at the moment of the scrape rather than counted as it happens.
#[derive(Debug, Default, Clone, Copy)]
pub struct Now {
    /// Transformation processes running or being started (the spawner's places taken).
    pub filters_running: usize,
}

/// The whole exposition.
pub fn render(m: &Metrics, now: Now, format: Format) -> String {
    let mut w = Writer {
        out: String::with_capacity(8 * 1024),
        format,
        unit: None,
    };
    w.counter(
        "sessions_accepted",
        "POP3 client connections accepted.",
        &[(None, m.sessions_accepted)],
    );
    let ended: Vec<_> = Outcome::ALL
        .iter()
        .map(|&o| (Some(("outcome", o.label())), m.ended(o)))
        .collect();
    w.counter(
        "sessions_ended",
        "POP3 sessions ended, by how they ended.",
        &ended,
    );
    w.gauge("sessions_open", "POP3 sessions open now.", m.sessions_open);
    w.unit = Some("bytes");
    w.counter(
        "bytes",
        "Bytes written to clients and to the origin.",
        &[
            (Some(("direction", "to_client")), m.bytes_to_client),
            (Some(("direction", "to_origin")), m.bytes_to_origin),
        ],
    );
    w.unit = None;
    w.counter(
        "retr",
        "RETR commands forwarded to the origin.",
        &[(None, m.retrs)],
    );
    w.histogram(
        "retr_duration_seconds",
        "Time from a RETR forwarded to the end of its reply written to the client.",
        &m.retr_duration,
    );
    w.counter(
        "messages_transformed",
        "Messages that went through the transformation (-t) and reached the client whole.",
        &[(None, m.transformed)],
    );
    w.counter(
        "transformation_failures",
        "Transformations that failed or could not be started.",
        &[(None, m.filter_failures)],
    );
    w.counter(
        "origin_connect_failures",
        "Connections to an origin address that failed (refused, unreachable, timed out).",
        &[(None, m.origin_connect_failures)],
    );
    let tls = |f: fn(crate::metrics::TlsCounts) -> u64| -> Vec<_> {
        TlsSide::ALL
            .iter()
            .map(|&s| (Some(("side", s.label())), f(m.tls(s))))
            .collect()
    };
    w.counter(
        "tls_handshakes",
        "TLS handshakes completed, by side.",
        &tls(|c| c.handshakes),
    );
    w.counter(
        "tls_handshake_failures",
        "TLS handshakes that ended in a TLS error, by side.",
        &tls(|c| c.failures),
    );
    w.counter(
        "censored_parts",
        "Attachments replaced by a note by the censor (-M).",
        &[(None, m.censor.parts)],
    );
    w.counter(
        "censored_messages",
        "RETR and TOP replies in which the censor replaced at least one part.",
        &[(None, m.censor.messages)],
    );
    w.gauge(
        "management_connections_open",
        "Management (SPCP) connections open now.",
        m.managers_open,
    );
    w.gauge(
        "filters_running",
        "Transformation processes running or being started now.",
        now.filters_running,
    );
    if format == Format::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
    w.out
}

/// One label: name and value.
type Label<'a> = Option<(&'a str, &'a str)>;

struct Writer {
    out: String,
    format: Format,
    /// The unit of the next family (OpenMetrics declares it; its name ends with it).
    unit: Option<&'static str>,
}

impl Writer {
    /// `# HELP`, `# TYPE` (and in OpenMetrics `# UNIT`) of a family.
    fn describe(&mut self, family: &str, kind: &str, help: &str) {
        let o = &mut self.out;
        let _ = writeln!(o, "# HELP {PREFIX}{family} {help}");
        let _ = writeln!(o, "# TYPE {PREFIX}{family} {kind}");
        if let (Some(unit), Format::OpenMetrics) = (self.unit, self.format) {
            let _ = writeln!(o, "# UNIT {PREFIX}{family} {unit}");
        }
    }

    fn sample(&mut self, name: &str, label: Label, value: impl Display) {
        let o = &mut self.out;
        let _ = match label {
            Some((k, v)) => writeln!(o, "{PREFIX}{name}{{{k}=\"{v}\"}} {value}"),
            None => writeln!(o, "{PREFIX}{name} {value}"),
        };
    }

    /// A counter: `base_total` samples; the family is `base` in OpenMetrics, `base_total` in
    /// the Prometheus format.
    fn counter(&mut self, base: &str, help: &str, samples: &[(Label, u64)]) {
        let total = format!("{base}_total");
        let family = match self.format {
            Format::OpenMetrics => base,
            Format::Prometheus => &total,
        };
        self.describe(family, "counter", help);
        for &(label, value) in samples {
            self.sample(&total, label, value);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.describe(name, "gauge", help);
        self.sample(name, None, value);
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.unit = Some("seconds");
        self.describe(name, "histogram", help);
        self.unit = None;
        let bucket = format!("{name}_bucket");
        for (le, n) in h.buckets() {
            // `{:?}` writes 1.0 rather than 1: OpenMetrics wants canonical numbers in `le`.
            self.sample(&bucket, Some(("le", &format!("{le:?}"))), n);
        }
        self.sample(&bucket, Some(("le", "+Inf")), h.count());
        self.sample(&format!("{name}_sum"), None, h.sum_seconds());
        self.sample(&format!("{name}_count"), None, h.count());
    }
}

#[cfg(test)]
mod tests;
