//! pop3filter: a POP3 proxy on a single-threaded event loop.
//!
//! `main` reads the command line, sets up logging and the descriptor limit, and runs the
//! [`server::Server`] until it fails. See docs/architecture.md for how the pieces fit.

mod args;
mod bytes;
mod ctx;
mod filter;
mod helpers;
mod listen;
mod metrics;
mod net;
mod pop3;
mod resolve;
mod scrape;
mod server;
mod signals;
mod slab;
mod spcp;
#[cfg(test)]
mod testutil;

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let config = match args::parse(&argv) {
        Ok(args::Command::Run(config)) => config,
        Ok(args::Command::Help) => {
            print!("{}", args::usage());
            return ExitCode::SUCCESS;
        }
        Ok(args::Command::Version) => {
            println!("pop3filter {}", args::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pop3filter: {e}");
            eprint!("{}", args::usage());
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,rustls=error"),
    )
    .format(|f, record| {
        writeln!(
            f,
            "{} {} {}",
            f.timestamp_millis(),
            record.level(),
            record.args()
        )
    })
    .init();
    let tls = match net::tls::Tls::load(&config.tls, &config.origin.host) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("pop3filter: {e}");
            return ExitCode::from(2);
        }
    };
    // Before any thread starts: the variables are removed from the environment.
    let inherited = match listen::activation::take(config.tls.pop3s_port.is_some()) {
        Ok(inherited) => inherited,
        Err(e) => {
            eprintln!("pop3filter: {e}");
            return ExitCode::from(2);
        }
    };
    if config.tls.origin_insecure {
        log::warn!("--origin-insecure: the origin's certificate is NOT verified");
    }
    raise_descriptor_limit();
    match server::Server::new(*config, tls, inherited).and_then(|mut s| s.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Many clients, no fixed cap: take every descriptor the hard limit allows.
fn raise_descriptor_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::debug!("open files limit raised from {soft} to {hard}"),
            Err(e) => log::warn!("cannot raise the open files limit from {soft}: {e}"),
        },
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the open files limit: {e}"),
    }
}
