//! spcpctl: the command-line client of SPCP, pop3filter's management protocol.
//!
//! Connects, logs in, sends one command (or several, for `stats` and `watch`), prints the
//! answer and exits with a status that tells what went wrong. With several daemons
//! (`fleet.rs`) the same command goes to each, the answers are prefixed with the daemon's
//! address and the counters added up. A plain blocking client: it is a short-lived tool, not
//! part of the daemon's event loop. The frame code is the daemon's own (`src/spcp/wire.rs`),
//! included by path.

#[cfg(test)]
#[path = "../../testutil.rs"]
mod testutil;
#[path = "../../spcp/wire.rs"]
mod wire;

mod args;
mod client;
mod fleet;

use args::{name_of, request, Options, Request, USAGE};
use client::{Client, Failure};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};
use wire::cmd;

/// What one daemon answered: each request's code and text.
type Answers = Vec<(u8, String)>;

/// Logs in to `target` and sends every request; a failure stops at once.
fn ask(
    o: &Options,
    target: &args::Target,
    requests: &[Request],
    named: bool,
) -> Result<Answers, Failure> {
    let mut client = Client::connect(target, named)?;
    client.login(&o.user, &o.pass)?;
    let several = requests.len() > 1;
    let mut answers = Vec::with_capacity(requests.len());
    for r in requests {
        let what = if several { name_of(r.code) } else { &o.command };
        answers.push((r.code, client.expect_ok(r.code, &r.args, what)?));
    }
    client.quit();
    Ok(answers)
}

/// The lines that show `answers` to `command` (a note of several paragraphs: one per line,
/// indented).
fn lines(command: &str, answers: &Answers) -> Vec<String> {
    match command {
        "stats" | "censor" => answers
            .iter()
            .map(|(code, text)| format!("{}: {}", name_of(*code), text.replace('\n', "\n    ")))
            .collect(),
        c if c.starts_with("set-") => vec!["ok".into()],
        _ => answers.iter().map(|(_, text)| text.clone()).collect(),
    }
}

fn run(o: Options) -> Result<(), Failure> {
    let requests = request(&o.command, o.arg.as_deref())?;
    if o.targets.len() > 1 {
        return fleet::run(&o, &requests);
    }
    let target = &o.targets[0];
    if o.command == "watch" {
        let mut client = Client::connect(target, true)?;
        client.login(&o.user, &o.pass)?;
        watch(&mut client, o.count)?;
        client.quit();
        return Ok(());
    }
    let answers = ask(&o, target, &requests, true)?;
    for line in lines(&o.command, &answers) {
        println!("{line}");
    }
    Ok(())
}

fn watch(client: &mut Client, count: Option<u64>) -> Result<(), Failure> {
    let mut last: Option<(Instant, u64, u64)> = None;
    let mut shown = 0;
    println!(
        "{:>12} {:>16} {:>12} {:>14} {:>12}  transformation",
        "connections", "bytes", "accesses", "bytes/s", "accesses/s"
    );
    loop {
        let mut num = |code, name| -> Result<u64, Failure> {
            client
                .expect_ok(code, &[], name)?
                .parse()
                .map_err(|_| Failure(6, format!("{name}: not a number")))
        };
        let conns = num(cmd::CONNECTIONS, "connections")?;
        let bytes = num(cmd::BYTES, "bytes")?;
        let accesses = num(cmd::ACCESSES, "accesses")?;
        let transformation = client.expect_ok(cmd::TRANSFORMATION, &[], "transformation")?;
        let now = Instant::now();
        let (byte_rate, access_rate) = match last {
            Some((t, b, a)) => {
                let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                (
                    (bytes.saturating_sub(b)) as f64 / secs,
                    (accesses.saturating_sub(a)) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        println!("{conns:>12} {bytes:>16} {accesses:>12} {byte_rate:>14.0} {access_rate:>12.1}  {transformation}");
        last = Some((now, bytes, accesses));
        shown += 1;
        if count.is_some_and(|c| shown >= c) {
            return Ok(());
        }
        thread::sleep(Duration::from_secs(1));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args::parse(&args) {
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(o)) => run(o),
        Err(f) => Err(f),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Several daemons: each failure was reported with its daemon.
        Err(Failure(code, msg)) if msg.is_empty() => ExitCode::from(code),
        Err(Failure(code, msg)) => {
            eprintln!("spcpctl: {msg}");
            if code == 2 {
                eprintln!("{USAGE}");
            }
            ExitCode::from(code)
        }
    }
}
