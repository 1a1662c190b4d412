use super::*;
use std::time::Duration;

fn sample_metrics() -> Metrics {
    let mut m = Metrics::default();
    for _ in 0..5 {
        m.session_opened();
    }
    m.session_closed(Outcome::Quit);
    m.session_closed(Outcome::Quit);
    m.session_closed(Outcome::OriginError);
    m.bytes_to_client = 12345;
    m.bytes_to_origin = 678;
    m.retrs = 3;
    m.retr_duration.observe(Duration::from_millis(2));
    m.retr_duration.observe(Duration::from_millis(300));
    m.transformed = 1;
    m.filter_failures = 2;
    m.origin_connect_failures = 4;
    m.tls_handshake(TlsSide::Client, true);
    m.tls_handshake(TlsSide::Origin, false);
    m.censor.parts = 7;
    m.censor.messages = 6;
    m.managers_open = 1;
    m
}

/// Every sample belongs to the family described just above it, with a suffix its type allows;
/// every family is described once with HELP then TYPE. Returns the samples as (name with
/// labels, value).
fn check_structure(text: &str, format: Format) -> Vec<(String, String)> {
    let mut families = std::collections::HashSet::new();
    let (mut family, mut kind, mut helped) = (String::new(), String::new(), String::new());
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.contains(['\\', '"']), "{line}");
            helped = name.to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, k) = rest.split_once(' ').unwrap();
            assert_eq!(name, helped, "HELP comes before TYPE: {line}");
            assert!(families.insert(name.to_string()), "{name} described twice");
            assert!(name.starts_with(PREFIX), "{line}");
            (family, kind) = (name.to_string(), k.to_string());
            if format == Format::OpenMetrics && k == "counter" {
                assert!(!name.ends_with("_total"), "{line}");
            }
            if format == Format::Prometheus && k == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
        } else if let Some(rest) = line.strip_prefix("# UNIT ") {
            assert_eq!(format, Format::OpenMetrics);
            let (name, unit) = rest.split_once(' ').unwrap();
            assert!(
                name == family && name.ends_with(&format!("_{unit}")),
                "{line}"
            );
        } else if line == "# EOF" {
            assert_eq!(format, Format::OpenMetrics);
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            let suffix = name.strip_prefix(family.as_str()).unwrap_or_else(|| {
                panic!("{line}: not in family {family}");
            });
            let allowed: &[&str] = match (kind.as_str(), format) {
                ("counter", Format::OpenMetrics) => &["_total"],
                ("histogram", _) => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            assert!(allowed.contains(&suffix), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            samples.push((series.to_string(), value.to_string()));
        }
    }
    samples
}

fn value(samples: &[(String, String)], series: &str) -> String {
    samples
        .iter()
        .find(|(s, _)| s == series)
        .unwrap_or_else(|| panic!("no {series}"))
        .1
        .clone()
}

#[test]
fn prometheus_text_format() {
    let text = render(
        &sample_metrics(),
        Now { filters_running: 2 },
        Format::Prometheus,
    );
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    assert!(text.ends_with('\n'));
    let s = check_structure(&text, Format::Prometheus);
    assert!(text.contains(
        "# HELP pop3filter_sessions_accepted_total POP3 client connections accepted.\n\
         # TYPE pop3filter_sessions_accepted_total counter\n\
         pop3filter_sessions_accepted_total 5\n"
    ));
    let expected = [
        ("pop3filter_sessions_ended_total{outcome=\"quit\"}", "2"),
        (
            "pop3filter_sessions_ended_total{outcome=\"origin_error\"}",
            "1",
        ),
        ("pop3filter_sessions_ended_total{outcome=\"shutdown\"}", "0"),
        ("pop3filter_sessions_open", "2"),
        ("pop3filter_bytes_total{direction=\"to_client\"}", "12345"),
        ("pop3filter_bytes_total{direction=\"to_origin\"}", "678"),
        ("pop3filter_retr_total", "3"),
        ("pop3filter_messages_transformed_total", "1"),
        ("pop3filter_transformation_failures_total", "2"),
        ("pop3filter_origin_connect_failures_total", "4"),
        ("pop3filter_tls_handshakes_total{side=\"client\"}", "1"),
        ("pop3filter_tls_handshakes_total{side=\"origin\"}", "0"),
        (
            "pop3filter_tls_handshake_failures_total{side=\"origin\"}",
            "1",
        ),
        ("pop3filter_censored_parts_total", "7"),
        ("pop3filter_censored_messages_total", "6"),
        ("pop3filter_management_connections_open", "1"),
        ("pop3filter_filters_running", "2"),
        ("pop3filter_retr_duration_seconds_bucket{le=\"0.001\"}", "0"),
        (
            "pop3filter_retr_duration_seconds_bucket{le=\"0.0025\"}",
            "1",
        ),
        ("pop3filter_retr_duration_seconds_bucket{le=\"0.25\"}", "1"),
        ("pop3filter_retr_duration_seconds_bucket{le=\"0.5\"}", "2"),
        ("pop3filter_retr_duration_seconds_bucket{le=\"1.0\"}", "2"),
        ("pop3filter_retr_duration_seconds_bucket{le=\"10.0\"}", "2"),
        ("pop3filter_retr_duration_seconds_bucket{le=\"+Inf\"}", "2"),
        ("pop3filter_retr_duration_seconds_count", "2"),
    ];
    for (series, want) in expected {
        assert_eq!(value(&s, series), want, "{series}");
    }
    let sum: f64 = value(&s, "pop3filter_retr_duration_seconds_sum")
        .parse()
        .unwrap();
    assert!((sum - 0.302).abs() < 1e-9);
    // Every outcome and both sides are there, even at zero.
    assert_eq!(
        s.iter()
            .filter(|(n, _)| n.starts_with("pop3filter_sessions_ended_total{"))
            .count(),
        6
    );
}

#[test]
fn openmetrics_format() {
    let text = render(&sample_metrics(), Now::default(), Format::OpenMetrics);
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    let s = check_structure(&text, Format::OpenMetrics);
    assert!(text.contains(
        "# HELP pop3filter_retr RETR commands forwarded to the origin.\n\
         # TYPE pop3filter_retr counter\n\
         pop3filter_retr_total 3\n"
    ));
    assert!(text.contains("# TYPE pop3filter_bytes counter\n# UNIT pop3filter_bytes bytes\n"));
    assert!(text.contains(
        "# TYPE pop3filter_retr_duration_seconds histogram\n\
         # UNIT pop3filter_retr_duration_seconds seconds\n"
    ));
    assert_eq!(value(&s, "pop3filter_filters_running"), "0");
    assert_eq!(
        value(&s, "pop3filter_sessions_ended_total{outcome=\"quit\"}"),
        "2"
    );
}

#[test]
fn a_fresh_daemon_renders_zeros() {
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = render(&Metrics::default(), Now::default(), format);
        let s = check_structure(&text, format);
        assert!(s.iter().all(|(_, v)| v == "0"), "{text}");
        // sessions 1 + 6 + 1, bytes 2, retr 1 + 16, three counters, TLS 4, censor 2, gauges 2
        assert_eq!(s.len(), 8 + 2 + 17 + 3 + 4 + 2 + 2);
    }
}
