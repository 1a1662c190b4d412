//! The `storm` mode: many sessions pipelining RETRs while one more session measures how long
//! the server takes to answer a NOOP (issue 11: a filter spawned on the event loop held every
//! session up).

use crate::args::Config;
use crate::pop3::{verify, Conn};
use crate::report::{json_str, percentile, summary, Tally};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Storm threads need little stack: a Conn and a few vectors.
const STACK: usize = 256 * 1024;

/// What the storm sessions did, together.
#[derive(Default)]
struct Storm {
    tally: Tally,
    /// The batches each session had answered.
    batches: Vec<usize>,
    /// When the last reply came.
    last: Option<Instant>,
}

/// One storm session: logged in before the storm; from the release (the moment the first
/// thread through the barrier puts in `release`), `RETR MSG` × `pipeline` sent at once and the
/// replies read, each checked: one batch, or with `--storm-ms` batch after batch until that
/// long after the release; then QUIT. Returns its tally, its batches answered and when it had
/// its last reply.
fn storm_session(
    cfg: &Config,
    ready: &Barrier,
    release: &OnceLock<Instant>,
    left: &AtomicUsize,
) -> (Tally, usize, Option<Instant>) {
    let mut t = Tally::default();
    let conn = Conn::open(cfg, cfg.addr, Vec::new()).and_then(|mut c| {
        c.login(cfg)?;
        Ok(c)
    });
    ready.wait();
    let start = *release.get_or_init(Instant::now);
    let mut c = match conn {
        Ok(c) => c,
        Err(e) => {
            t.error(format!("opening: {e}"));
            left.fetch_sub(1, Ordering::Relaxed);
            return (t, 0, None);
        }
    };
    let retrs = format!("RETR {}\r\n", cfg.msg).repeat(cfg.pipeline);
    let mut scratch = Vec::new();
    let mut batches = 0;
    let mut last;
    let answered = loop {
        let result = c.pipelined(&retrs, cfg.pipeline);
        last = Instant::now();
        let bodies = match result {
            Ok(bodies) => bodies,
            Err(e) => {
                t.error(e);
                break false;
            }
        };
        batches += 1;
        for (from, to) in bodies {
            match verify(&c.buf[from..to], &mut scratch, cfg.expect.as_ref().unwrap()) {
                Ok(()) => {
                    t.ok += 1;
                    t.msg_bytes += scratch.len() as u64;
                }
                Err(e) => t.error(e),
            }
        }
        match cfg.storm_for {
            Some(d) if start.elapsed() < d => {}
            _ => break true,
        }
    };
    left.fetch_sub(1, Ordering::Relaxed);
    if answered {
        if let Err(e) = c.command("QUIT\r\n", false) {
            t.error(e);
        }
    }
    t.rx_bytes += c.rx;
    (t, batches, Some(last))
}

/// The prober: one NOOP every `interval` on a fixed schedule (a late one goes at once), each
/// timed from sending it to its reply; at least COUNT of them, and on while the storm lasts.
/// The schedule starts `offset` after `start`. Counts the answered ones in `t`; returns when
/// each was sent (ms from `start`) and how long it took (ms).
fn probe(
    cfg: &Config,
    c: &mut Conn,
    t: &mut Tally,
    start: Instant,
    offset: Duration,
    left: &AtomicUsize,
) -> Vec<(f64, f64)> {
    let mut samples = Vec::with_capacity(cfg.count);
    let mut k = 0u32;
    while (k as usize) < cfg.count || left.load(Ordering::Relaxed) > 0 {
        let due = start + offset + cfg.interval * k;
        k += 1;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t0 = Instant::now();
        match c.command("NOOP\r\n", false) {
            Ok(()) => {
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                t.ok += 1;
                samples.push(((t0 - start).as_secs_f64() * 1e3, ms));
            }
            Err(e) => {
                t.error(format!("prober: {e}"));
                break;
            }
        }
    }
    samples
}

/// The latencies of the NOOPs sent in the first `until_ms`, sorted.
fn window(samples: &[(f64, f64)], until_ms: f64) -> Vec<f64> {
    let mut lat: Vec<f64> = samples
        .iter()
        .filter(|(at, _)| *at < until_ms)
        .map(|(_, ms)| *ms)
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    lat
}

fn ms(v: f64) -> String {
    format!("{v:.4}")
}

pub fn mode_storm(cfg: &Config) -> String {
    let mut noop = Tally::default();
    let logged_in = |addr| {
        Conn::open(cfg, addr, Vec::new()).and_then(|mut c| {
            c.login(cfg)?;
            Ok(c)
        })
    };
    let mut prober = match logged_in(cfg.addr) {
        Ok(c) => c,
        Err(e) => {
            noop.error(format!("prober: {e}"));
            return summary("storm", &mut noop, 0.0, &[]);
        }
    };
    // The control: the same NOOPs to another server (the origin itself), which the storm
    // loads only through the machine they share.
    let mut control = match cfg.control.map(logged_in) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            noop.error(format!("control prober: {e}"));
            return summary("storm", &mut noop, 0.0, &[]);
        }
    };
    let mut ctl = Tally::default();
    let mut ctl_samples = Vec::new();
    let sessions = cfg.clients;
    let ready = Barrier::new(sessions + 1);
    let release = OnceLock::new();
    let left = AtomicUsize::new(sessions);
    let storm = Mutex::new(Storm::default());
    let open_start = Instant::now();
    let mut started = open_start;
    let mut samples = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..sessions {
            let (ready, release, left, storm) = (&ready, &release, &left, &storm);
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(s, move || {
                    let (t, batches, last) = storm_session(cfg, ready, release, left);
                    let mut st = storm.lock().unwrap();
                    st.tally.merge(t);
                    st.batches.push(batches);
                    st.last = st.last.max(last);
                })
                .expect("a storm thread");
        }
        // Every session logged in (or failed): the storm breaks, and the probing starts (the
        // control's half a step later, so that the two probers do not send together).
        ready.wait();
        started = *release.get_or_init(Instant::now);
        let control = control.as_mut().map(|c| {
            let (left, ctl) = (&left, &mut ctl);
            s.spawn(move || probe(cfg, c, ctl, started, cfg.interval / 2, left))
        });
        samples = probe(cfg, &mut prober, &mut noop, started, Duration::ZERO, &left);
        if let Some(h) = control {
            ctl_samples = h.join().unwrap();
        }
    });
    let open_s = (started - open_start).as_secs_f64();
    if let Err(e) = prober.command("QUIT\r\n", false) {
        noop.error(format!("prober: {e}"));
    }
    let Storm {
        tally: mut storm,
        batches,
        last,
    } = storm.into_inner().unwrap();
    let storm_ms = last.map_or(0.0, |l| (l - started).as_secs_f64() * 1e3);
    // The NOOPs the latencies count: with --storm-ms those sent while every session was still
    // at it (the first D ms; after that the sessions finish their last batches and leave, each
    // at its own pace), else all of them.
    let measured_ms = cfg
        .storm_for
        .map_or(f64::INFINITY, |d| d.as_secs_f64() * 1e3);
    noop.lat_ms = window(&samples, measured_ms);
    let during = window(&samples, storm_ms);
    if let Some(c) = control.as_mut() {
        if let Err(e) = c.command("QUIT\r\n", false) {
            ctl.error(format!("control prober: {e}"));
        }
    }
    ctl.lat_ms = window(&ctl_samples, measured_ms);
    let ctl_during = window(&ctl_samples, storm_ms);
    let (noop_errors, noop_first) = (noop.errors, noop.first_error.clone());
    let (storm_errors, storm_first) = (storm.errors, storm.first_error.take());
    // The run's errors are every kind; the prober's first error goes first.
    noop.errors += storm.errors + ctl.errors;
    if noop.first_error.is_none() {
        noop.first_error.clone_from(&storm_first);
    }
    if noop.first_error.is_none() {
        noop.first_error.clone_from(&ctl.first_error);
    }
    let opt = |s: &Option<String>| s.as_deref().map_or("null".into(), json_str);
    let extra = [
        ("sessions", sessions.to_string()),
        ("pipeline", cfg.pipeline.to_string()),
        (
            "interval_ms",
            format!("{:.3}", cfg.interval.as_secs_f64() * 1e3),
        ),
        ("open_s", format!("{open_s:.3}")),
        (
            "storm_for_ms",
            cfg.storm_for
                .map_or("null".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3)),
        ),
        ("storm_ms", format!("{storm_ms:.3}")),
        ("noops", samples.len().to_string()),
        ("noop_errors", noop_errors.to_string()),
        ("noop_first_error", opt(&noop_first)),
        ("during_storm", during.len().to_string()),
        ("during_p50_ms", format!("{:.4}", percentile(&during, 0.5))),
        (
            "during_max_ms",
            format!("{:.4}", during.last().copied().unwrap_or(0.0)),
        ),
        ("storm_retrs", storm.ok.to_string()),
        (
            "storm_retrs_per_s",
            format!("{:.1}", storm.ok as f64 / (storm_ms / 1e3).max(1e-9)),
        ),
        (
            "storm_batches_min",
            batches.iter().min().copied().unwrap_or(0).to_string(),
        ),
        (
            "storm_batches_max",
            batches.iter().max().copied().unwrap_or(0).to_string(),
        ),
        ("storm_errors", storm_errors.to_string()),
        ("storm_first_error", opt(&storm_first)),
        ("storm_msg_bytes", storm.msg_bytes.to_string()),
    ];
    let mut extra = extra.to_vec();
    if control.is_some() {
        let l = &ctl.lat_ms;
        extra.extend([
            ("control_samples", l.len().to_string()),
            ("control_p50_ms", ms(percentile(l, 0.5))),
            ("control_p99_ms", ms(percentile(l, 0.99))),
            ("control_max_ms", ms(l.last().copied().unwrap_or(0.0))),
            ("control_during", ctl_during.len().to_string()),
            ("control_during_p50_ms", ms(percentile(&ctl_during, 0.5))),
            (
                "control_during_max_ms",
                ms(ctl_during.last().copied().unwrap_or(0.0)),
            ),
            ("control_errors", ctl.errors.to_string()),
        ]);
    }
    let elapsed = open_start.elapsed().as_secs_f64();
    noop.rx_bytes += storm.rx_bytes + prober.rx + control.map_or(0, |c| c.rx);
    summary("storm", &mut noop, elapsed, &extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let samples = [(0.0, 3.0), (9.9, 1.0), (10.0, 7.0), (4.0, 2.0)];
        assert_eq!(window(&samples, 10.0), [1.0, 2.0, 3.0]);
        assert_eq!(window(&samples, f64::INFINITY), [1.0, 2.0, 3.0, 7.0]);
        assert!(window(&samples, 0.0).is_empty());
    }
}
