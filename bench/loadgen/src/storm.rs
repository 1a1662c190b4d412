//! The `storm` mode: many sessions pipelining RETRs at once while one more session measures how
//! long the server takes to answer a NOOP (issue 11: a filter spawned on the event loop held
//! every session up).
//!
//! The storm is short (without a filter, 1 500 RETRs of 1 KiB take about 0.15 s), so it is
//! repeated `--storms` times, and only NOOPs sent while a storm is under way are counted: a
//! server that gets through its storm faster is judged on fewer samples per storm, never on
//! quiet time after it.

use crate::args::Config;
use crate::pop3::{verify, Conn};
use crate::report::{json_str, percentile, summary, Tally};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Storm threads need little stack: a Conn and a few vectors.
const STACK: usize = 256 * 1024;

/// The pause between two storms, for the machine to settle (Dovecot and the server flushing
/// their logs, the last filters reaped).
const SETTLE: Duration = Duration::from_millis(200);

/// What the coordinator and the storm sessions share.
struct Shared {
    /// Storm sessions and the coordinator: every storm starts when all are there (the release).
    ready: Barrier,
    /// The same: every storm ends when all are there.
    done: Barrier,
    /// Storm sessions still waiting for replies in this storm.
    left: AtomicUsize,
    /// When the last reply of this storm came.
    last: Mutex<Option<Instant>>,
}

/// One storm session: logged in before the first storm; at each release, `RETR MSG` ×
/// `pipeline` sent at once and the replies read, each checked; QUIT after the last storm.
/// A session that failed still takes its part in every storm's start and end, doing nothing.
fn storm_session(cfg: &Config, sh: &Shared) -> Tally {
    let mut t = Tally::default();
    let mut conn = match Conn::open(cfg, cfg.addr, Vec::new()).and_then(|mut c| {
        c.login(cfg)?;
        Ok(c)
    }) {
        Ok(c) => Some(c),
        Err(e) => {
            t.error(format!("opening: {e}"));
            None
        }
    };
    let retrs = format!("RETR {}\r\n", cfg.msg).repeat(cfg.pipeline);
    let mut scratch = Vec::new();
    for _ in 0..cfg.storms {
        sh.ready.wait();
        if let Some(c) = conn.as_mut() {
            match c.pipelined(&retrs, cfg.pipeline) {
                Ok(bodies) => {
                    let at = Instant::now();
                    let mut last = sh.last.lock().unwrap();
                    *last = (*last).max(Some(at));
                    drop(last);
                    for (from, to) in bodies {
                        match verify(&c.buf[from..to], &mut scratch, cfg.expect.as_ref().unwrap()) {
                            Ok(()) => {
                                t.ok += 1;
                                t.msg_bytes += scratch.len() as u64;
                            }
                            Err(e) => t.error(e),
                        }
                    }
                }
                Err(e) => {
                    t.error(e);
                    t.rx_bytes += c.rx;
                    conn = None;
                }
            }
        }
        sh.left.fetch_sub(1, Ordering::Relaxed);
        sh.done.wait();
    }
    if let Some(mut c) = conn {
        if let Err(e) = c.command("QUIT\r\n", false) {
            t.error(e);
        }
        t.rx_bytes += c.rx;
    }
    t
}

/// The prober during one storm: one NOOP every `interval` on a fixed schedule from `start` +
/// `offset` (a late one goes at once), each timed from sending it to its reply, as long as a
/// storm session is waiting for replies. Adds the latencies (ms) to `t`.
fn probe(
    cfg: &Config,
    c: &mut Conn,
    t: &mut Tally,
    start: Instant,
    offset: Duration,
    left: &AtomicUsize,
) {
    let mut k = 0u32;
    while left.load(Ordering::Relaxed) > 0 {
        let due = start + offset + cfg.interval * k;
        k += 1;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
            if left.load(Ordering::Relaxed) == 0 {
                break;
            }
        }
        let t0 = Instant::now();
        match c.command("NOOP\r\n", false) {
            Ok(()) => {
                t.ok += 1;
                t.lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            Err(e) => {
                t.error(format!("prober: {e}"));
                break;
            }
        }
    }
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
    let sessions = cfg.clients;
    let sh = Shared {
        ready: Barrier::new(sessions + 1),
        done: Barrier::new(sessions + 1),
        left: AtomicUsize::new(sessions),
        last: Mutex::new(None),
    };
    let open_start = Instant::now();
    let mut open_s = 0.0;
    let mut storm_ms = Vec::with_capacity(cfg.storms);
    let storm = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for _ in 0..sessions {
            let (sh, storm) = (&sh, &storm);
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(s, move || {
                    let t = storm_session(cfg, sh);
                    storm.lock().unwrap().merge(t);
                })
                .expect("a storm thread");
        }
        for n in 0..cfg.storms {
            if n > 0 {
                std::thread::sleep(SETTLE);
            }
            sh.left.store(sessions, Ordering::Relaxed);
            *sh.last.lock().unwrap() = None;
            // Every session is there (the first time: logged in, or failed): the storm breaks,
            // and the probing starts (the control's half a step later, so that the two probers
            // do not send together).
            sh.ready.wait();
            let started = Instant::now();
            if n == 0 {
                open_s = (started - open_start).as_secs_f64();
            }
            std::thread::scope(|p| {
                let control = control.as_mut().map(|c| {
                    let (left, ctl) = (&sh.left, &mut ctl);
                    p.spawn(move || probe(cfg, c, ctl, started, cfg.interval / 2, left))
                });
                probe(
                    cfg,
                    &mut prober,
                    &mut noop,
                    started,
                    Duration::ZERO,
                    &sh.left,
                );
                if let Some(h) = control {
                    h.join().unwrap();
                }
            });
            sh.done.wait();
            let last = sh.last.lock().unwrap().unwrap_or(started);
            storm_ms.push((last - started).as_secs_f64() * 1e3);
        }
    });
    if let Err(e) = prober.command("QUIT\r\n", false) {
        noop.error(format!("prober: {e}"));
    }
    if let Some(c) = control.as_mut() {
        if let Err(e) = c.command("QUIT\r\n", false) {
            ctl.error(format!("control prober: {e}"));
        }
    }
    let mut storm = storm.into_inner().unwrap();
    storm_ms.sort_by(|a, b| a.total_cmp(b));
    ctl.lat_ms.sort_by(|a, b| a.total_cmp(b));
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
    let storming_s = storm_ms.iter().sum::<f64>() / 1e3;
    let mut extra = vec![
        ("sessions", sessions.to_string()),
        ("pipeline", cfg.pipeline.to_string()),
        (
            "interval_ms",
            format!("{:.3}", cfg.interval.as_secs_f64() * 1e3),
        ),
        ("open_s", format!("{open_s:.3}")),
        ("storms", cfg.storms.to_string()),
        ("storm_ms", format!("{:.3}", percentile(&storm_ms, 0.5))),
        (
            "storm_ms_max",
            format!("{:.3}", storm_ms.last().copied().unwrap_or(0.0)),
        ),
        ("storming_s", format!("{storming_s:.3}")),
        ("noop_errors", noop_errors.to_string()),
        ("noop_first_error", opt(&noop_first)),
        ("storm_retrs", storm.ok.to_string()),
        (
            "storm_retrs_per_s",
            format!("{:.1}", storm.ok as f64 / storming_s.max(1e-9)),
        ),
        ("storm_errors", storm_errors.to_string()),
        ("storm_first_error", opt(&storm_first)),
        ("storm_msg_bytes", storm.msg_bytes.to_string()),
    ];
    if control.is_some() {
        let l = &ctl.lat_ms;
        extra.extend([
            ("control_samples", l.len().to_string()),
            ("control_p50_ms", ms(percentile(l, 0.5))),
            ("control_p99_ms", ms(percentile(l, 0.99))),
            ("control_max_ms", ms(l.last().copied().unwrap_or(0.0))),
            ("control_errors", ctl.errors.to_string()),
        ]);
    }
    let elapsed = open_start.elapsed().as_secs_f64();
    noop.rx_bytes += storm.rx_bytes + prober.rx + control.map_or(0, |c| c.rx);
    summary("storm", &mut noop, elapsed, &extra)
}
