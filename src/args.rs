//! The command line: `pop3filter [OPTIONS] <origin-server>`, POSIX style, with getopts.
//!
//! `main` calls [`parse`]; a usage error comes back as a one-line message that `main` prints
//! with the usage and exit status 2. Everything the daemon is told at start-up ends up in
//! [`Config`].

use crate::filter::{Censoring, FilterConfig};
use crate::spcp::auth::Credentials;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

mod fleet;
mod metrics;
mod tls;
pub use fleet::FleetOptions;
pub use tls::{OriginTls, TlsOptions};

/// The version, for `-v` and the logs.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Default port clients connect to.
pub const DEFAULT_PORT: u16 = 1110;
/// Default port of the origin server.
pub const DEFAULT_ORIGIN_PORT: u16 = 110;
/// Default per-direction buffer size of a session, in bytes (see docs/architecture.md for the
/// measurement behind it).
pub const DEFAULT_BUFFER: usize = 32 * 1024;
/// Smallest and largest buffer size accepted (the same range SPCP enforces).
pub const BUFFER_RANGE: (usize, usize) = (512, 65535);
/// Default address and port of the management (SPCP) listener.
pub const DEFAULT_MGMT: (Ipv4Addr, u16) = (Ipv4Addr::LOCALHOST, 9090);
/// Default grace period for sessions at shutdown, in seconds.
pub const DEFAULT_GRACE: u64 = 10;
/// Default inactivity timeout of a session (and of its filter), in seconds.
pub const DEFAULT_TIMEOUT: u64 = 600;

/// Where the origin server is, exactly as the operator gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The host as written on the command line (brackets around an IPv6 literal removed).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The address, when the host is an IP literal (then nothing needs resolving).
    pub literal: Option<IpAddr>,
}

/// Everything the daemon is told at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Addresses to listen on for POP3 clients.
    pub listen: Vec<IpAddr>,
    /// Port to listen on.
    pub port: u16,
    /// The origin server.
    pub origin: Origin,
    /// Size of each per-session buffer.
    pub buffer_size: usize,
    /// The transformation and what is exported to it.
    pub filter: FilterConfig,
    /// A session (or its filter) that makes no progress for this long is ended.
    pub timeout: Duration,
    /// The management listener and who may use it.
    pub management: Management,
    /// After SIGTERM or SIGINT, how long sessions in progress may go on.
    pub grace: Duration,
    /// TLS toward clients and toward the origin.
    pub tls: TlsOptions,
    /// PROXY headers in, the client's address out.
    pub fleet: FleetOptions,
    /// Most filter processes running at once (more wait their turn).
    pub max_filters: usize,
    /// Where the HTTP metrics endpoint listens (`--metrics`); none by default.
    pub metrics: Option<SocketAddr>,
    /// SO_REUSEPORT on the POP3 listeners: several instances share a port, and on SIGTERM
    /// the connections already queued are accepted before the listeners close.
    pub reuse_port: bool,
}

/// The management (SPCP) listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Management {
    /// Address to listen on.
    pub listen: IpAddr,
    /// Port to listen on.
    pub port: u16,
    /// Users allowed to log in.
    pub credentials: Credentials,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon.
    Run(Box<Config>),
    /// Print the usage and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
    o.optopt(
        "l",
        "",
        "address to listen on for POP3 clients (default: all, IPv4 and IPv6)",
        "ADDR",
    );
    o.optopt(
        "p",
        "",
        "port to listen on for POP3 clients (default: 1110)",
        "PORT",
    );
    o.optopt("P", "", "port of the origin server (default: 110)", "PORT");
    o.optopt(
        "b",
        "",
        "per-session buffer size in bytes, 512-65535 (default: 32768)",
        "BYTES",
    );
    o.optopt(
        "t",
        "",
        "transformation: each retrieved message is piped through CMD, run directly when it \
         has no shell syntax, else through /bin/sh -c (default: none)",
        "CMD",
    );
    o.optopt(
        "e",
        "",
        "file the transformation's stderr is appended to (default: /dev/null)",
        "FILE",
    );
    o.optmulti(
        "m",
        "",
        "note left where a censored part was (repeatable: one paragraph each; \
         also exported as FILTER_MSG)",
        "MSG",
    );
    o.optopt(
        "M",
        "",
        "censor these media types in every RETR and TOP, HTTP Accept syntax, e.g. \
         'image/*, image/png;q=0' (also exported as FILTER_MEDIAS)",
        "TYPES",
    );
    o.optopt(
        "T",
        "",
        "inactivity timeout of a session and of its transformation, in seconds (default: 600)",
        "SECONDS",
    );
    o.optopt(
        "L",
        "",
        "address of the management (SPCP) listener (default: 127.0.0.1)",
        "ADDR",
    );
    o.optopt(
        "o",
        "",
        "port of the management (SPCP) listener (default: 9090)",
        "PORT",
    );
    o.optmulti(
        "u",
        "",
        "management user and password (repeatable)",
        "USER:PASS",
    );
    o.optopt(
        "U",
        "",
        "file of management users, one USER:PASS per line, # comments",
        "FILE",
    );
    o.optopt(
        "g",
        "",
        "on SIGTERM/SIGINT, seconds sessions in progress may finish (default: 10)",
        "SECONDS",
    );
    o.optopt(
        "",
        "max-filters",
        "most transformation processes at once; more RETRs wait their turn \
         (default: 4 per core)",
        "N",
    );
    o.optflag(
        "",
        "reuse-port",
        "share the POP3 port with other instances (SO_REUSEPORT); on SIGTERM, accept \
         what is queued before closing the listeners",
    );
    tls::options(&mut o);
    metrics::options(&mut o);
    fleet::options(&mut o);
    o.optflag("v", "version", "print the version and exit");
    o.optflag("h", "help", "print this help and exit");
    o
}

/// The usage text, listing every option.
pub fn usage() -> String {
    let brief = "Usage: pop3filter [-l ADDR] [-p PORT] [-P PORT] [-b BYTES] [-t CMD] [-e FILE]\n\
                  [-m MSG] [-M TYPES] [-T SECONDS] [-L ADDR] [-o PORT]\n\
                  [-u USER:PASS]... [-U FILE] [-g SECONDS] [--max-filters N]\n\
                  [--metrics [ADDR:]PORT] [--reuse-port]\n\
                  [TLS OPTIONS] [FLEET OPTIONS] [-v] [-h]\n\
                  <origin-server>\n\n\
                 A POP3 proxy. Clients connect to it; it relays their sessions to <origin-server>\n\
                 (an IPv4 address, an IPv6 address or a host name).";
    options().usage(brief)
}

fn port(value: &str, what: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "invalid {what} '{value}': expected a number from 1 to 65535"
        )),
    }
}

/// Parses the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Command, String> {
    let m = options().parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        return Ok(Command::Help);
    }
    if m.opt_present("v") {
        return Ok(Command::Version);
    }
    let listen = match m.opt_str("l") {
        None => vec![
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ],
        Some(a) => vec![ip_literal(&a)
            .ok_or_else(|| format!("invalid listen address '{a}': expected an IP address"))?],
    };
    let port_ = m
        .opt_str("p")
        .map_or(Ok(DEFAULT_PORT), |p| port(&p, "port"))?;
    let origin_port = m
        .opt_str("P")
        .map_or(Ok(DEFAULT_ORIGIN_PORT), |p| port(&p, "origin port"))?;
    let buffer_size = match m.opt_str("b") {
        None => DEFAULT_BUFFER,
        Some(b) => match b.parse::<usize>() {
            Ok(n) if (BUFFER_RANGE.0..=BUFFER_RANGE.1).contains(&n) => n,
            _ => {
                return Err(format!(
                    "invalid buffer size '{b}': expected 512 to 65535 bytes"
                ))
            }
        },
    };
    let timeout = match m.opt_str("T") {
        None => Duration::from_secs(DEFAULT_TIMEOUT),
        Some(t) => match t.parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs <= 1e9 => Duration::from_secs_f64(secs),
            _ => {
                return Err(format!(
                    "invalid timeout '{t}': expected a number of seconds above 0"
                ))
            }
        },
    };
    let filter = FilterConfig {
        command: m.opt_str("t").filter(|c| !c.trim().is_empty()),
        stderr: m.opt_str("e"),
        censor: Censoring::new(&m.opt_str("M").unwrap_or_default(), &m.opt_strs("m"))
            .map_err(|e| format!("invalid -M: {e}"))?,
    };
    let grace = match m.opt_str("g") {
        None => Duration::from_secs(DEFAULT_GRACE),
        Some(g) => match g.parse::<f64>() {
            Ok(secs) if (0.0..=1e6).contains(&secs) => Duration::from_secs_f64(secs),
            _ => {
                return Err(format!(
                    "invalid grace period '{g}': expected seconds, 0 or more"
                ))
            }
        },
    };
    let management = Management {
        listen: match m.opt_str("L") {
            None => IpAddr::V4(DEFAULT_MGMT.0),
            Some(a) => ip_literal(&a).ok_or_else(|| {
                format!("invalid management address '{a}': expected an IP address")
            })?,
        },
        port: m
            .opt_str("o")
            .map_or(Ok(DEFAULT_MGMT.1), |p| port(&p, "management port"))?,
        credentials: {
            let mut c = Credentials::default();
            for pair in m.opt_strs("u") {
                c.add(&pair)
                    .map_err(|e| format!("invalid -u '{pair}': {e}"))?;
            }
            if let Some(file) = m.opt_str("U") {
                c.load(&file)?;
            }
            c
        },
    };
    let host = match m.free.as_slice() {
        [] => return Err("missing origin server".into()),
        [h] if !h.is_empty() => h.clone(),
        [_] => return Err("empty origin server".into()),
        [_, extra, ..] => return Err(format!("unexpected argument '{extra}'")),
    };
    let literal = ip_literal(&host);
    let host = match literal {
        Some(IpAddr::V6(_)) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => host,
    };
    Ok(Command::Run(Box::new(Config {
        listen,
        port: port_,
        origin: Origin {
            host,
            port: origin_port,
            literal,
        },
        buffer_size,
        filter,
        timeout,
        management,
        grace,
        max_filters: match m.opt_str("max-filters") {
            None => default_max_filters(),
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=100_000).contains(&n))
                .ok_or_else(|| format!("invalid --max-filters '{n}': expected 1 or more"))?,
        },
        tls: tls::parse(&m)?,
        metrics: metrics::parse(&m)?,
        fleet: fleet::parse(&m)?,
        reuse_port: m.opt_present("reuse-port"),
    })))
}

/// Filters at once by default: 4 per core (a filter is mostly waiting for its pipes).
pub fn default_max_filters() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// An IP address, with or without brackets around an IPv6 one.
fn ip_literal(text: &str) -> Option<IpAddr> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().ok()
}

#[cfg(test)]
mod tests;
