//! The same command to several daemons at once (`-H` repeated, or `-L`/`-o` repeated): each
//! daemon is asked on a thread of its own, so that one that does not answer costs its timeout
//! once, not once per daemon before it. Answers are printed in the order the daemons were
//! given, each line prefixed with the daemon's address; counters (connections, bytes,
//! accesses, what the censor did) are then added up on `total` lines, over the daemons that
//! answered. Each failure goes to stderr with its daemon; the exit status is the highest of
//! the failures' statuses.

use crate::args::{is_counter, name_of, Options, Request};
use crate::client::Failure;
use crate::{ask, lines, Answers};
use std::thread;

/// Runs the command on every daemon; `Err` with an empty message when some failed (each was
/// reported already).
pub fn run(o: &Options, requests: &[Request]) -> Result<(), Failure> {
    let results: Vec<Result<Answers, Failure>> = thread::scope(|scope| {
        let asking: Vec<_> = o
            .targets
            .iter()
            .map(|t| scope.spawn(move || ask(o, t, requests, false)))
            .collect();
        asking
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure(6, "internal error".into())))
            })
            .collect()
    });
    let mut worst = 0;
    let mut answered = Vec::new();
    for (target, result) in o.targets.iter().zip(results) {
        let label = target.label();
        match result {
            Ok(answers) => {
                for line in lines(&o.command, &answers) {
                    println!("{label} {line}");
                }
                answered.push(answers);
            }
            Err(Failure(code, msg)) => {
                eprintln!("spcpctl: {label}: {msg}");
                worst = worst.max(code);
            }
        }
    }
    let totals = totals(requests, &answered);
    let named = requests.len() > 1;
    for (code, sum) in &totals {
        match named {
            true => println!("total {}: {sum}", name_of(*code)),
            false => println!("total {sum}"),
        }
    }
    if worst == 0 {
        return Ok(());
    }
    if !totals.is_empty() && !answered.is_empty() {
        eprintln!(
            "spcpctl: the totals count {} of {} daemons",
            answered.len(),
            o.targets.len()
        );
    }
    Err(Failure(worst, String::new()))
}

/// For each counter among the requests, the sum of the answers (field by field: the censor's
/// counters are three numbers); a counter some daemon answered with something else than
/// numbers has no total.
fn totals(requests: &[Request], answered: &[Answers]) -> Vec<(u8, String)> {
    let mut out = Vec::new();
    if answered.is_empty() {
        return out;
    }
    for (i, r) in requests.iter().enumerate() {
        if !is_counter(r.code) {
            continue;
        }
        let mut sum: Vec<u64> = Vec::new();
        let mut ok = true;
        for answers in answered {
            let fields: Option<Vec<u64>> = answers[i]
                .1
                .split_whitespace()
                .map(|f| f.parse().ok())
                .collect();
            match fields {
                Some(f) if sum.is_empty() || f.len() == sum.len() => {
                    sum.resize(f.len(), 0);
                    for (s, v) in sum.iter_mut().zip(f) {
                        *s = s.saturating_add(v);
                    }
                }
                _ => ok = false,
            }
        }
        if ok && !sum.is_empty() {
            let text: Vec<String> = sum.iter().map(u64::to_string).collect();
            out.push((r.code, text.join(" ")));
        }
    }
    out
}
