//! loadgen: the POP3 client of `make bench`.
//!
//! ```text
//! loadgen MODE -p PORT[,PORT...] [-H HOST] [-u USER] [-w PASS] [-m MSG] [-e LEN:SHA256]
//!              [-n COUNT] [-c CLIENTS] [-d SECONDS] [-T SECONDS] [-t CMD] [-i FILE]
//!              [--pipeline N] [--interval-ms MS] [--storms N] [--control PORT]
//!              [--tls CAFILE [--tls-ports PORT,...] [--tls-name NAME]]
//! ```
//!
//! Modes (each prints JSON objects, one per line, on stdout: a summary per port):
//!
//! - `fetch`: one session, `RETR MSG`; prints the message's length and SHA-256.
//! - `sessions`: COUNT sequential sessions per port, each greeting, USER, PASS, `RETR MSG`,
//!   QUIT; latency per session, from before `connect` to the QUIT reply. With several ports
//!   the sessions alternate between them, each cycle in a new shuffled order (B A C, C B A,
//!   ...), so that whatever else the machine does weighs on every target alike.
//! - `retrs`: one session per port, COUNT sequential `RETR MSG` in each; latency per RETR, from
//!   sending the command to the terminating `.`; MiB/s over the RETR time. With several ports
//!   the RETRs alternate between the sessions as in `sessions`.
//! - `parallel`: CLIENTS threads run sessions as in `sessions` until COUNT sessions were
//!   started or SECONDS passed; sessions/s and MiB/s over the wall time.
//! - `hold`: opens COUNT sessions (greeting read, nothing else) with CLIENTS threads, prints
//!   `{"event":"held",…}`, waits for a line on stdin, then every session sends CAPA and QUIT;
//!   counts the sessions that answered both.
//!
//! - `storm`: CLIENTS sessions log in; then `--storms` (1) times, all at once (the release),
//!   each sends `RETR MSG` × `--pipeline` (5) in one write and reads the replies (each
//!   checked); a storm is over at its last reply, and the next starts 0.2 s later. Meanwhile
//!   one more session, logged in before, sends NOOPs, one every `--interval-ms` (10) on a fixed
//!   schedule from each release for as long as that storm lasts, each timed from sending it to
//!   its reply: the summary's latencies are those NOOPs', all sent under a storm. `storm_ms` is
//!   the median storm's length (release to the last reply), `storm_retrs` the RETRs checked.
//!   With `--control PORT` a second prober sends the same NOOPs, half a step later, to a server
//!   the storm does not pass through (the origin): `control_*`, what the shared machine alone
//!   does.
//!
//! - `spawn`: COUNT times, runs `/bin/sh -c CMD` (`-t CMD`) with its stdin fed from `-i FILE`
//!   (or closed at once) and its stdout read to the end, as pop3filter runs a transformation;
//!   latency from the spawn to the exit: the filter's own cost.
//!
//! Every retrieved message is un-dot-stuffed and checked against `-e LEN:SHA256` (the message
//! as the server stores it, CRLF line ends), outside the timed part of `sessions` and `retrs`.
//! Every socket has TCP_NODELAY. Errors are counted, never fatal; the first is reported.
//!
//! With `--tls CAFILE` the connections to the `--tls-ports` (default: every port) speak
//! implicit TLS (POP3S) with rustls: the server's certificate verified against CAFILE for
//! `--tls-name` (default: the host), no session resumption (every session a full handshake).
//! The summaries then say what was negotiated (`"tls":"TLSv1_3 TLS13_AES_256_GCM_SHA384
//! X25519"`); the octet counts are those after decryption.
//!
//! Sources: `args.rs` (the command line), `pop3.rs` (the client and the message check),
//! `workloads.rs` (`fetch`, `sessions`, `retrs`, `parallel`), `hold.rs`, `spawn.rs`, `storm.rs`,
//! `report.rs` (the tally of a run and its JSON summary line), `sha256.rs`, `tls.rs`.

mod args;
mod hold;
mod pop3;
mod report;
mod sha256;
mod spawn;
mod storm;
mod tls;
mod workloads;

use args::{parse, usage};
use hold::mode_hold;
use spawn::mode_spawn;
use std::process::ExitCode;
use storm::mode_storm;
use workloads::{mode_fetch, mode_parallel, mode_retrs, mode_sessions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };
    let line = match cfg.mode.as_str() {
        "fetch" => mode_fetch(&cfg),
        "sessions" => mode_sessions(&cfg),
        "retrs" => mode_retrs(&cfg),
        "parallel" => mode_parallel(&cfg),
        "spawn" => mode_spawn(&cfg),
        "storm" => mode_storm(&cfg),
        _ => mode_hold(&cfg),
    };
    println!("{line}");
    ExitCode::SUCCESS
}
