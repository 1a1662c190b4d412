//! The `spawn` mode: the cost of running a filter command on its own.

use crate::args::Config;
use crate::report::{json_str, summary, Tally};
use std::io::{self, Read, Write};
use std::time::Instant;

pub fn mode_spawn(cfg: &Config) -> String {
    use std::process::{Command, Stdio};
    let input = match &cfg.input {
        Some(path) => match std::fs::read(path) {
            Ok(data) => data,
            Err(e) => {
                let mut t = Tally::default();
                t.error(format!("{path}: {e}"));
                return summary("spawn", &mut t, 0.0, &[]);
            }
        },
        None => Vec::new(),
    };
    let mut t = Tally::default();
    let start = Instant::now();
    for _ in 0..cfg.count {
        let t0 = Instant::now();
        let run = || -> io::Result<Vec<u8>> {
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(&cfg.filter)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut out = Vec::with_capacity(input.len());
            std::thread::scope(|s| {
                let input = &input;
                s.spawn(move || stdin.write_all(input));
                stdout.read_to_end(&mut out)
            })?;
            let status = child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("{}: {status}", cfg.filter)));
            }
            Ok(out)
        };
        match run() {
            Ok(out) => {
                t.ok += 1;
                t.lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                t.msg_bytes += out.len() as u64;
            }
            Err(e) => t.error(e.to_string()),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let extra = [
        ("filter", json_str(&cfg.filter)),
        ("input_bytes", input.len().to_string()),
    ];
    summary("spawn", &mut t, elapsed, &extra)
}
