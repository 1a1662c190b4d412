//! Helpers of the metrics tests (`tests/metrics.rs`, `tests/metrics_hostile.rs`): the daemon
//! with `--metrics`, a raw HTTP client, and Python's `prometheus_client` parsers reading what
//! the daemon serves (installed by `scripts/install-deps.sh`).
//! Use it after `mod common;` with `mod metrics_support;`.

#![allow(dead_code)]

use crate::common::{free_port, Proxy};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The daemon in front of 127.0.0.1:`origin_port` with `--metrics` on a free port of
/// 127.0.0.1; `extra` goes before the origin argument. Returns it and the metrics port.
pub fn start(origin_port: u16, extra: &[&str]) -> (Proxy, u16) {
    let port = free_port();
    let text = port.to_string();
    let proxy = Proxy::for_origin(
        origin_port,
        &[&["--metrics", text.as_str()], extra].concat(),
    );
    (proxy, port)
}

/// Connects to the metrics port (retrying briefly: the harness waits only for the POP3
/// listener, bound just before).
pub fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => panic!("metrics port {port}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// An HTTP response as it came.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a whole response (the connection closed after it).
    pub fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw);
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {text:?}"));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r[..3].parse().ok())
            .unwrap_or_else(|| panic!("status line of {head:?}"));
        Response {
            status,
            head,
            body: raw[end + 4..].to_vec(),
        }
    }

    /// A header's value (the first, name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// Sends `request` on a new connection and reads until the daemon closes it.
pub fn http_raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the response to {request:?}: {e}"),
    }
    out
}

pub fn http(port: u16, request: &[u8]) -> Response {
    Response::parse(&http_raw(port, request))
}

/// `GET /metrics` with `accept` (if any); asserts a whole 200 response.
pub fn get(port: u16, accept: Option<&str>) -> Response {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let request = format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{accept}\r\n");
    let r = http(port, request.as_bytes());
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("Content-Length").and_then(|v| v.parse().ok()),
        Some(r.body.len()),
        "{}",
        r.head
    );
    r
}

/// The samples of a scrape, as a real parser reads them.
#[derive(Debug, Default)]
pub struct Samples {
    /// Family name -> (type, help).
    pub families: BTreeMap<String, (String, String)>,
    /// `name{k=v,...}` (labels sorted; no braces without labels) -> value.
    pub values: BTreeMap<String, f64>,
}

impl Samples {
    pub fn get(&self, key: &str) -> f64 {
        *self
            .values
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key}; have {:?}", self.values.keys()))
    }

    /// The value as a whole number (counters and gauges).
    pub fn n(&self, key: &str) -> u64 {
        let v = self.get(key);
        assert!(v >= 0.0 && v.fract() == 0.0, "{key} = {v}");
        v as u64
    }
}

const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as prometheus
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
parse = openmetrics if sys.argv[1] == "openmetrics" else prometheus
for f in parse(sys.stdin.read()):
    print("FAMILY", f.name, f.type, f.documentation, sep="\t")
    for s in f.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print("SAMPLE", s.name, labels, repr(float(s.value)), sep="\t")
"#;

/// Parses `text` with `prometheus_client`'s Prometheus text parser, or its OpenMetrics parser
/// (which refuses what OpenMetrics forbids: a missing `# EOF`, a counter sample without
/// `_total`...). Panics with the parser's error.
pub fn parse(text: &str, openmetrics: bool) -> Samples {
    let mut child = Command::new("python3")
        .args([
            "-c",
            PARSER,
            if openmetrics {
                "openmetrics"
            } else {
                "prometheus"
            },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (scripts/install-deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "python3 lacks prometheus_client: run scripts/install-deps.sh"
    );
    assert!(
        out.status.success(),
        "the parser refused:\n{stderr}\n{text}"
    );
    let mut samples = Samples::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "FAMILY" => {
                samples
                    .families
                    .insert(f[1].to_string(), (f[2].to_string(), f[3].to_string()));
            }
            _ => {
                let key = match f[2] {
                    "" => f[1].to_string(),
                    labels => format!("{}{{{labels}}}", f[1]),
                };
                samples.values.insert(key, f[3].parse().unwrap());
            }
        }
    }
    samples
}

/// A scrape in the Prometheus format, parsed.
pub fn scrape(port: u16) -> Samples {
    parse(&get(port, None).text(), false)
}

/// Polls the metrics every 20 ms until `check` holds (10 s at most); returns the last scrape.
pub fn scrape_until(port: u16, what: &str, check: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(port);
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:#?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Waits (5 s at most) until `pid` has `baseline` descriptors; returns the last count.
pub fn fds_back_to(pid: u32, baseline: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = fd_count(pid);
        if n == baseline || Instant::now() > deadline {
            return n;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time a process used so far (user + system), in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // state is field 3 of stat; utime and stime are fields 14 and 15.
    rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap()
}

/// Clock ticks per second.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
}
