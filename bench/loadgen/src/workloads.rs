//! The message workloads: `fetch`, `sessions`, `retrs` and `parallel`.

use crate::args::Config;
use crate::pop3::{unstuff, verify, Conn};
use crate::report::{json_str, summary, summary_for, Tally};
use crate::sha256;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const MIB: f64 = 1024.0 * 1024.0;

/// One whole session; the latency and the retrieved message go into `t` (checked after the
/// clock stopped). `buf` and `kept` are reused from session to session.
fn session(
    cfg: &Config,
    addr: SocketAddr,
    t: &mut Tally,
    buf: &mut Vec<u8>,
    kept: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let start = Instant::now();
    let mut rx = 0;
    let mut tls = None;
    let mut run =
        |buf: &mut Vec<u8>, kept: &mut Vec<u8>, rx: &mut u64| -> Result<(usize, usize), String> {
            let mut c = Conn::open(cfg, addr, std::mem::take(buf))?;
            if tls.is_none() {
                tls = c.tls.take();
            }
            let result = (|| {
                c.login(cfg)?;
                c.command(&format!("RETR {}\r\n", cfg.msg), true)?;
                let range = (c.first, c.len - 3);
                // Keep the message; QUIT's reply goes to the other buffer.
                std::mem::swap(&mut c.buf, kept);
                c.command("QUIT\r\n", false)?;
                Ok(range)
            })();
            *rx = c.rx;
            *buf = c.buf;
            result
        };
    let result = run(buf, kept, &mut rx);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    t.rx_bytes += rx;
    t.saw(&tls);
    match result {
        Ok((from, to)) => match verify(&kept[from..to], scratch, cfg.expect.as_ref().unwrap()) {
            Ok(()) => {
                t.ok += 1;
                t.lat_ms.push(ms);
                t.msg_bytes += scratch.len() as u64;
            }
            Err(e) => t.error(e),
        },
        Err(e) => t.error(e),
    }
}

/// The order of the targets in each cycle of `sessions` and `retrs`: a fresh shuffle every
/// time (a fixed-seed xorshift, so runs repeat), so that no target always follows the same one.
struct Order {
    state: u64,
    perm: Vec<usize>,
}

impl Order {
    fn new(n: usize) -> Order {
        Order {
            state: 0x9e37_79b9_7f4a_7c15,
            perm: (0..n).collect(),
        }
    }

    fn next(&mut self) -> Vec<usize> {
        for i in (1..self.perm.len()).rev() {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let j = (self.state % (i as u64 + 1)) as usize;
            self.perm.swap(i, j);
        }
        self.perm.clone()
    }
}

pub fn mode_sessions(cfg: &Config) -> String {
    let n = cfg.addrs.len();
    let mut tallies: Vec<Tally> = (0..n).map(|_| Tally::default()).collect();
    let (mut buf, mut kept, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    let mut order = Order::new(n);
    let start = Instant::now();
    for _ in 0..cfg.count {
        for j in order.next() {
            let addr = cfg.addrs[j];
            session(
                cfg,
                addr,
                &mut tallies[j],
                &mut buf,
                &mut kept,
                &mut scratch,
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lines: Vec<String> = tallies
        .iter_mut()
        .zip(&cfg.addrs)
        .map(|(t, a)| summary_for("sessions", Some(a.port()), t, elapsed, &[]))
        .collect();
    lines.join("\n")
}

/// One target of `retrs`: its session (None once it failed) and its figures.
struct RetrTarget {
    conn: Option<Conn>,
    t: Tally,
    retr_time: f64,
}

pub fn mode_retrs(cfg: &Config) -> String {
    let mut targets: Vec<RetrTarget> = cfg
        .addrs
        .iter()
        .map(|&addr| {
            let mut t = Tally::default();
            let conn = Conn::open(cfg, addr, Vec::new()).and_then(|mut c| {
                t.saw(&c.tls);
                c.login(cfg)?;
                Ok(c)
            });
            let conn = conn.map_err(|e| t.error(e)).ok();
            RetrTarget {
                conn,
                t,
                retr_time: 0.0,
            }
        })
        .collect();
    let n = targets.len();
    let mut scratch = Vec::new();
    let start = Instant::now();
    let retr = format!("RETR {}\r\n", cfg.msg);
    let mut order = Order::new(n);
    for _ in 0..cfg.count {
        for j in order.next() {
            let x = &mut targets[j];
            let Some(c) = x.conn.as_mut() else { continue };
            let t0 = Instant::now();
            let r = c.command(&retr, true);
            let secs = t0.elapsed().as_secs_f64();
            if let Err(e) = r {
                x.t.rx_bytes += c.rx;
                x.t.error(e);
                x.conn = None;
                continue;
            }
            x.retr_time += secs;
            match verify(c.body(), &mut scratch, cfg.expect.as_ref().unwrap()) {
                Ok(()) => {
                    x.t.ok += 1;
                    x.t.lat_ms.push(secs * 1e3);
                    x.t.msg_bytes += scratch.len() as u64;
                }
                Err(e) => x.t.error(e),
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut lines = Vec::new();
    for (x, addr) in targets.iter_mut().zip(&cfg.addrs) {
        if let Some(mut c) = x.conn.take() {
            if let Err(e) = c.command("QUIT\r\n", false) {
                x.t.error(e);
            }
            x.t.rx_bytes += c.rx;
        }
        let mibs = if x.retr_time > 0.0 {
            x.t.msg_bytes as f64 / MIB / x.retr_time
        } else {
            0.0
        };
        let extra = [
            ("retr_s", format!("{:.6}", x.retr_time)),
            ("mib_s", format!("{mibs:.3}")),
        ];
        lines.push(summary_for(
            "retrs",
            Some(addr.port()),
            &mut x.t,
            elapsed,
            &extra,
        ));
    }
    lines.join("\n")
}

pub fn mode_parallel(cfg: &Config) -> String {
    let next = AtomicUsize::new(0);
    let total = Mutex::new(Tally::default());
    let start = Instant::now();
    let deadline = start + cfg.duration;
    std::thread::scope(|s| {
        for _ in 0..cfg.clients {
            s.spawn(|| {
                let mut t = Tally::default();
                let (mut buf, mut kept, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
                while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < cfg.count
                {
                    session(cfg, cfg.addr, &mut t, &mut buf, &mut kept, &mut scratch);
                }
                total.lock().unwrap().merge(t);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = total.into_inner().unwrap();
    let extra = [
        ("clients", cfg.clients.to_string()),
        ("sessions_s", format!("{:.3}", t.ok as f64 / elapsed)),
        (
            "mib_s",
            format!("{:.3}", t.msg_bytes as f64 / MIB / elapsed),
        ),
    ];
    summary("parallel", &mut t, elapsed, &extra)
}

pub fn mode_fetch(cfg: &Config) -> String {
    let result = (|| -> Result<Vec<u8>, String> {
        let mut c = Conn::open(cfg, cfg.addr, Vec::new())?;
        c.login(cfg)?;
        c.command(&format!("RETR {}\r\n", cfg.msg), true)?;
        let mut msg = Vec::new();
        unstuff(c.body(), &mut msg);
        c.command("QUIT\r\n", false)?;
        Ok(msg)
    })();
    match result {
        Ok(msg) => {
            let sha = sha256::hex(&sha256::sha256(&msg));
            let matches = cfg
                .expect
                .map(|e| e.len == msg.len() && sha256::hex(&e.sha) == sha);
            format!(
                "{{\"mode\":\"fetch\",\"ok\":1,\"errors\":0,\"len\":{},\"sha256\":{},\"matches\":{}}}",
                msg.len(),
                json_str(&sha),
                matches.map_or("null".into(), |m| m.to_string())
            )
        }
        Err(e) => format!(
            "{{\"mode\":\"fetch\",\"ok\":0,\"errors\":1,\"first_error\":{}}}",
            json_str(&e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_permutations() {
        let mut o = Order::new(5);
        let mut firsts = [0; 5];
        for _ in 0..500 {
            let mut p = o.next();
            firsts[p[0]] += 1;
            p.sort();
            assert_eq!(p, [0, 1, 2, 3, 4]);
        }
        assert!(firsts.iter().all(|&f| f > 50), "{firsts:?}");
    }
}
