//! spcpctl's command line: the daemons to talk to (one by default, several with `-H`
//! repeated or `-L`/`-o` repeated), the credentials, and the command, turned into the SPCP
//! requests to send. A usage error is a [`Failure`] with status 2.

use crate::client::Failure;
use crate::wire::cmd;
use std::net::{IpAddr, Ipv4Addr};

pub const USAGE: &str = "Usage: spcpctl [-H HOST:PORT]... [-L ADDR]... [-o PORT]...
               [-u USER:PASS | -U FILE] [-n COUNT] COMMAND [ARG]

Manages a running pop3filter, or several, over SPCP.

Commands:
    connections              POP3 sessions open now
    bytes                    bytes written to clients and origins since start
    accesses                 POP3 connections accepted since start
    transformation           the transformation in force (empty when none)
    censor                   the censored media types, the note, and what was censored
    stats                    all of the above, one per line
    set-buffer BYTES         buffer size for new sessions (512-65535)
    set-transformation CMD   change the transformation (\"\" removes it)
    set-timeout SECONDS[.MILLIS]
                             inactivity timeout of sessions and filters
    set-censor TYPES         censor these media types from the next RETR/TOP, e.g.
                             'image/*, image/png;q=0' (\"\" censors nothing)
    set-censor-note TEXT     the note left in place of a censored part (one paragraph
                             a line; \"\" restores the default note)
    watch                    the metrics every second, with rates, until Ctrl-C

Daemons: -L ADDR and -o PORT (default 127.0.0.1 and 9090), or -H HOST:PORT.
Several daemons: -H repeated, or -L/-o repeated (paired in order; given once, one applies
to all). Each answer is then prefixed with the daemon's address, the counters are added up
on 'total' lines, set-* is applied to every daemon, and each failure is reported with its
address. watch takes one daemon.

Credentials: -u USER:PASS, or -U FILE (its first USER:PASS line), or the environment
variables SPCP_USER and SPCP_PASS.

Exit status: 0 success, 1 cannot connect or connection lost, 2 usage error,
3 authentication failed, 4 command unknown to the daemon, 5 invalid arguments,
6 the daemon failed. With several daemons: the highest status of those that failed.";

/// The default management port of the daemon.
const DEFAULT_PORT: u16 = 9090;

/// A daemon's management listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A host name or an IP address (without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `HOST:PORT` as messages and prefixes show it (`[::1]:9090` for IPv6).
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

pub struct Options {
    pub targets: Vec<Target>,
    pub user: String,
    pub pass: String,
    pub count: Option<u64>,
    pub command: String,
    pub arg: Option<String>,
}

fn usage_error(msg: impl Into<String>) -> Failure {
    Failure(2, msg.into())
}

/// The options, or `None` for `-h`.
pub fn parse(args: &[String]) -> Result<Option<Options>, Failure> {
    let mut o = getopts::Options::new();
    o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
    o.optmulti("H", "", "a daemon's management listener", "HOST:PORT");
    o.optmulti(
        "L",
        "",
        "daemon's management address (default 127.0.0.1)",
        "ADDR",
    );
    o.optmulti("o", "", "daemon's management port (default 9090)", "PORT");
    o.optopt("u", "", "credentials", "USER:PASS");
    o.optopt("U", "", "file with a USER:PASS line", "FILE");
    o.optopt("n", "", "watch: stop after COUNT refreshes", "COUNT");
    o.optflag("h", "help", "print this help");
    let m = o.parse(args).map_err(|e| usage_error(e.to_string()))?;
    if m.opt_present("h") {
        return Ok(None);
    }
    let targets = targets(&m.opt_strs("H"), &m.opt_strs("L"), &m.opt_strs("o"))?;
    let count = match m.opt_str("n") {
        None => None,
        Some(n) => Some(
            n.parse::<u64>()
                .map_err(|_| usage_error(format!("invalid count '{n}'")))?,
        ),
    };
    let (command, arg) = match m.free.as_slice() {
        [] => return Err(usage_error("missing command")),
        [c] => (c.clone(), None),
        [c, a] => (c.clone(), Some(a.clone())),
        [_, _, extra, ..] => return Err(usage_error(format!("unexpected argument '{extra}'"))),
    };
    request(&command, arg.as_deref())?; // a bad command is reported before missing credentials
    if command == "watch" && targets.len() > 1 {
        return Err(usage_error(format!(
            "watch takes one daemon (got {})",
            targets.len()
        )));
    }
    let pair = match (m.opt_str("u"), m.opt_str("U")) {
        (Some(_), Some(_)) => return Err(usage_error("give -u or -U, not both")),
        (Some(pair), None) => pair,
        (None, Some(file)) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| usage_error(format!("cannot read {file}: {e}")))?;
            text.lines()
                .map(|l| l.trim_end_matches('\r'))
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(str::to_string)
                .ok_or_else(|| usage_error(format!("no USER:PASS line in {file}")))?
        }
        (None, None) => match (std::env::var("SPCP_USER"), std::env::var("SPCP_PASS")) {
            (Ok(u), Ok(p)) => format!("{u}:{p}"),
            _ => {
                return Err(usage_error(
                    "no credentials: use -u, -U or SPCP_USER/SPCP_PASS",
                ))
            }
        },
    };
    let (user, pass) = pair
        .split_once(':')
        .ok_or_else(|| usage_error("credentials must be USER:PASS"))?;
    Ok(Some(Options {
        targets,
        user: user.into(),
        pass: pass.into(),
        count,
        command,
        arg,
    }))
}

/// The daemons: every `-H`, or `-L`/`-o` paired in order (a value given once applies to
/// every pair), or the default one.
fn targets(hosts: &[String], addrs: &[String], ports: &[String]) -> Result<Vec<Target>, Failure> {
    if !hosts.is_empty() {
        if !addrs.is_empty() || !ports.is_empty() {
            return Err(usage_error("give -H, or -L and -o, not both"));
        }
        return hosts.iter().map(|h| host_port(h)).collect();
    }
    let n = addrs.len().max(ports.len()).max(1);
    if ![0, 1, n].contains(&addrs.len()) || ![0, 1, n].contains(&ports.len()) {
        return Err(usage_error(format!(
            "{} -L and {} -o: give each once, or as many times as the other",
            addrs.len(),
            ports.len()
        )));
    }
    let nth = |values: &[String], i: usize| values.get(i).or(values.first()).cloned();
    (0..n)
        .map(|i| {
            let host = match nth(addrs, i) {
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(a) => a
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| usage_error(format!("invalid address '{a}'")))?,
            };
            let port = match nth(ports, i) {
                None => DEFAULT_PORT,
                Some(p) => port(&p)?,
            };
            Ok(Target {
                host: host.to_string(),
                port,
            })
        })
        .collect()
}

fn port(p: &str) -> Result<u16, Failure> {
    p.parse::<u16>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| usage_error(format!("invalid port '{p}'")))
}

/// `HOST:PORT`, `[IPV6]:PORT`, or a host alone (port 9090); a bare IPv6 address has no port.
fn host_port(text: &str) -> Result<Target, Failure> {
    let bad = || usage_error(format!("invalid -H '{text}': expected HOST:PORT"));
    let (host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if text.matches(':').count() == 1 {
        let (host, port) = text.split_once(':').unwrap_or_default();
        (host, Some(port))
    } else {
        (text, None)
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(Target {
        host: host.to_string(),
        port: port_text.map_or(Ok(DEFAULT_PORT), |p| port(p).map_err(|_| bad()))?,
    })
}

/// One request to send.
pub struct Request {
    pub code: u8,
    pub args: Vec<Vec<u8>>,
}

/// The requests `command` stands for (`stats` is several).
pub fn request(command: &str, arg: Option<&str>) -> Result<Vec<Request>, Failure> {
    let simple = |code| Request { code, args: vec![] };
    let needs_arg =
        |name: &str| arg.ok_or_else(|| usage_error(format!("{name} needs an argument")));
    let no_arg = |r: Vec<Request>| match arg {
        Some(a) => Err(usage_error(format!(
            "{command} takes no argument (got '{a}')"
        ))),
        None => Ok(r),
    };
    match command {
        "connections" => no_arg(vec![simple(cmd::CONNECTIONS)]),
        "bytes" => no_arg(vec![simple(cmd::BYTES)]),
        "accesses" => no_arg(vec![simple(cmd::ACCESSES)]),
        "transformation" => no_arg(vec![simple(cmd::TRANSFORMATION)]),
        "censor" => no_arg(CENSOR.map(simple).into()),
        "watch" => no_arg(METRICS.map(simple).into()),
        "stats" => no_arg(METRICS.into_iter().chain(CENSOR).map(simple).collect()),
        "set-censor" => Ok(vec![Request {
            code: cmd::SET_CENSOR_MEDIAS,
            args: vec![needs_arg(command)?.as_bytes().to_vec()],
        }]),
        "set-censor-note" => Ok(vec![Request {
            code: cmd::SET_CENSOR_NOTE,
            args: needs_arg(command)?
                .split('\n')
                .map(|p| p.trim_end_matches('\r').as_bytes().to_vec())
                .collect(),
        }]),
        "set-buffer" => {
            let a = needs_arg(command)?;
            let n: u16 = a
                .parse()
                .map_err(|_| usage_error(format!("invalid buffer size '{a}'")))?;
            Ok(vec![Request {
                code: cmd::SET_BUFFER,
                args: vec![n.to_be_bytes().to_vec()],
            }])
        }
        "set-transformation" => {
            let a = needs_arg(command)?;
            Ok(vec![Request {
                code: cmd::SET_TRANSFORMATION,
                args: vec![a.as_bytes().to_vec()],
            }])
        }
        "set-timeout" => {
            let a = needs_arg(command)?;
            let bad = || usage_error(format!("invalid timeout '{a}': expected SECONDS[.MILLIS]"));
            let (secs, frac) = a.split_once('.').unwrap_or((a, ""));
            let secs: u32 = secs.parse().map_err(|_| bad())?;
            if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let millis: u32 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
            let args = vec![secs.to_be_bytes().to_vec(), millis.to_be_bytes().to_vec()];
            Ok(vec![Request {
                code: cmd::SET_TIMEOUT,
                args,
            }])
        }
        other => Err(usage_error(format!("unknown command '{other}'"))),
    }
}

pub const METRICS: [u8; 4] = [
    cmd::CONNECTIONS,
    cmd::BYTES,
    cmd::ACCESSES,
    cmd::TRANSFORMATION,
];
pub const CENSOR: [u8; 3] = [cmd::CENSOR_MEDIAS, cmd::CENSOR_NOTE, cmd::CENSOR_COUNTERS];
const NAMES: [&str; 7] = [
    "connections",
    "bytes",
    "accesses",
    "transformation",
    "censored types",
    "censor note",
    "censored (parts messages problems)",
];

/// The name `stats` and `censor` print before a reply.
pub fn name_of(code: u8) -> &'static str {
    let all = METRICS.iter().chain(CENSOR.iter());
    all.zip(NAMES)
        .find(|(c, _)| **c == code)
        .map_or("?", |(_, n)| n)
}

/// Whether the replies to `code` are counters, which add up over several daemons.
pub fn is_counter(code: u8) -> bool {
    matches!(
        code,
        cmd::CONNECTIONS | cmd::BYTES | cmd::ACCESSES | cmd::CENSOR_COUNTERS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn host_port_forms() {
        let ok = |s| host_port(s).unwrap_or_else(|Failure(_, m)| panic!("{s}: {m}"));
        assert_eq!(ok("10.0.0.1:9191"), t("10.0.0.1", 9191));
        assert_eq!(ok("mx.example.org:1"), t("mx.example.org", 1));
        assert_eq!(ok("localhost"), t("localhost", 9090));
        assert_eq!(ok("[::1]:9191"), t("::1", 9191));
        assert_eq!(ok("[::1]"), t("::1", 9090));
        assert_eq!(ok("::1"), t("::1", 9090));
        assert_eq!(ok("[::1]:9191").label(), "[::1]:9191");
        for bad in [
            "", ":9090", "h:0", "h:x", "h:70000", "[::1", "[::1]x", "a b:1",
        ] {
            assert!(host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn targets_pair_l_and_o() {
        let none: Vec<String> = vec![];
        assert_eq!(
            targets(&none, &none, &none).ok(),
            Some(vec![t("127.0.0.1", 9090)])
        );
        assert_eq!(
            targets(&none, &none, &strs(&["1", "2"])).ok(),
            Some(vec![t("127.0.0.1", 1), t("127.0.0.1", 2)])
        );
        assert_eq!(
            targets(&none, &strs(&["::1", "10.0.0.2"]), &strs(&["7"])).ok(),
            Some(vec![t("::1", 7), t("10.0.0.2", 7)])
        );
        assert_eq!(
            targets(&none, &strs(&["10.0.0.1", "10.0.0.2"]), &strs(&["1", "2"])).ok(),
            Some(vec![t("10.0.0.1", 1), t("10.0.0.2", 2)])
        );
        assert!(targets(&none, &strs(&["a", "b"]), &strs(&["1", "2", "3"])).is_err());
        assert!(targets(&strs(&["h:1"]), &none, &strs(&["2"])).is_err());
        assert!(targets(&none, &strs(&["not-an-ip"]), &none).is_err());
    }
}
