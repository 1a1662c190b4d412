//! The `hold` mode: many idle sessions at once, then CAPA and QUIT on each.

use crate::args::Config;
use crate::pop3::Conn;
use crate::report::{json_str, summary, Tally};
use std::io::{self, BufRead, Write};
use std::time::Instant;

/// Makes room for `want` descriptors: the soft limit up to the hard one, and the hard one too
/// when we may (root).
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        if r.rlim_max < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: want,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want;
            }
        }
        r.rlim_cur = r.rlim_max.min(want);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

pub fn mode_hold(cfg: &Config) -> String {
    let limit = raise_nofile(cfg.count as u64 + 256);
    let threads = cfg.clients;
    let start = Instant::now();
    // Open: each thread its share, one connection at a time (connect, read the greeting).
    let mut groups: Vec<(Vec<Conn>, Tally)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = cfg.count / threads + usize::from(i < cfg.count % threads);
                s.spawn(move || {
                    let mut conns = Vec::with_capacity(share);
                    let mut t = Tally::default();
                    for _ in 0..share {
                        match Conn::open(cfg, cfg.addr, vec![0; 512]) {
                            Ok(c) => {
                                t.saw(&c.tls);
                                conns.push(c);
                            }
                            Err(e) => t.error(e),
                        }
                    }
                    (conns, t)
                })
            })
            .collect();
        groups = handles.into_iter().map(|h| h.join().unwrap()).collect();
    });
    let open_s = start.elapsed().as_secs_f64();
    let held: usize = groups.iter().map(|(c, _)| c.len()).sum();
    let open_errors: usize = groups.iter().map(|(_, t)| t.errors).sum();
    let open_error = groups.iter().find_map(|(_, t)| t.first_error.clone());
    let tls = groups.iter().find_map(|(_, t)| t.tls.clone());
    println!(
        "{{\"event\":\"held\",\"held\":{held},\"open_errors\":{open_errors},\"first_error\":{},\"open_s\":{open_s:.3},\"nofile\":{limit},\"tls\":{}}}",
        open_error.as_deref().map_or("null".into(), json_str),
        tls.as_deref().map_or("null".into(), json_str)
    );
    let _ = io::stdout().flush();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    // Then every held session: CAPA, QUIT.
    let start = Instant::now();
    let mut total = Tally {
        tls,
        ..Tally::default()
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|(conns, _)| {
                s.spawn(move || {
                    let mut t = Tally::default();
                    for mut c in conns {
                        let t0 = Instant::now();
                        let r = c
                            .command("CAPA\r\n", true)
                            .and_then(|()| c.command("QUIT\r\n", false));
                        match r {
                            Ok(()) => {
                                t.ok += 1;
                                t.lat_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                            }
                            Err(e) => t.error(e),
                        }
                        t.rx_bytes += c.rx;
                    }
                    t
                })
            })
            .collect();
        for h in handles {
            total.merge(h.join().unwrap());
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let extra = [
        ("held", held.to_string()),
        ("open_errors", open_errors.to_string()),
        ("open_s", format!("{open_s:.3}")),
        ("nofile", limit.to_string()),
    ];
    summary("hold", &mut total, elapsed, &extra)
}
