//! Results: the tally of a run and its JSON summary line.

use crate::sha256;

#[derive(Default)]
pub struct Tally {
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub lat_ms: Vec<f64>,
    pub msg_bytes: u64,
    pub rx_bytes: u64,
    /// For TLS, what the first session negotiated (`Stream::describe`).
    pub tls: Option<String>,
}

impl Tally {
    pub fn error(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    /// Notes what a connection negotiated, the first time.
    pub fn saw(&mut self, tls: &Option<String>) {
        if self.tls.is_none() {
            self.tls.clone_from(tls);
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.lat_ms.extend(other.lat_ms);
        self.msg_bytes += other.msg_bytes;
        self.rx_bytes += other.rx_bytes;
        self.saw(&other.tls);
    }
}

pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Samples per 5 ms bucket, [0, 5) ... [195, 200), then 200 ms and more: a Nagle/delayed-ACK
/// stall shows as a bump some 40 ms above the usual time.
pub fn histogram(samples: &[f64]) -> String {
    let mut counts = [0usize; 41];
    for &ms in samples {
        counts[((ms / 5.0) as usize).min(40)] += 1;
    }
    let text: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
    format!("[{}]", text.join(","))
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summary(mode: &str, t: &mut Tally, elapsed: f64, extra: &[(&str, String)]) -> String {
    summary_for(mode, None, t, elapsed, extra)
}

pub fn summary_for(
    mode: &str,
    port: Option<u16>,
    t: &mut Tally,
    elapsed: f64,
    extra: &[(&str, String)],
) -> String {
    t.lat_ms.sort_by(|a, b| a.total_cmp(b));
    let l = &t.lat_ms;
    let mean = if l.is_empty() {
        0.0
    } else {
        l.iter().sum::<f64>() / l.len() as f64
    };
    let mut fields = vec![
        ("mode", json_str(mode)),
        ("port", port.map_or("null".into(), |p| p.to_string())),
        ("ok", t.ok.to_string()),
        ("errors", t.errors.to_string()),
        (
            "first_error",
            t.first_error.as_deref().map_or("null".into(), json_str),
        ),
        ("elapsed_s", format!("{elapsed:.6}")),
        ("msg_bytes", t.msg_bytes.to_string()),
        ("rx_bytes", t.rx_bytes.to_string()),
        ("samples", l.len().to_string()),
        (
            "lat_min_ms",
            format!("{:.4}", l.first().copied().unwrap_or(0.0)),
        ),
        ("lat_p50_ms", format!("{:.4}", percentile(l, 0.50))),
        ("lat_p90_ms", format!("{:.4}", percentile(l, 0.90))),
        ("lat_p99_ms", format!("{:.4}", percentile(l, 0.99))),
        (
            "lat_max_ms",
            format!("{:.4}", l.last().copied().unwrap_or(0.0)),
        ),
        ("lat_mean_ms", format!("{mean:.4}")),
        (
            "lat_ge_40ms",
            l.iter().filter(|&&x| x >= 40.0).count().to_string(),
        ),
        ("lat_hist_5ms", histogram(l)),
        ("sha256", json_str(sha256::implementation())),
        ("tls", t.tls.as_deref().map_or("null".into(), json_str)),
    ];
    fields.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms() {
        assert_eq!(
            histogram(&[0.0, 4.9, 5.0, 47.0, 250.0]),
            format!("[2,1,{}1,{}1]", "0,".repeat(7), "0,".repeat(30))
        );
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }
}
