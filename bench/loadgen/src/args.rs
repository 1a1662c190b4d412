//! The command line: MODE and options, into a [`Config`].

use crate::tls::Tls;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[derive(Clone, Copy)]
pub struct Expect {
    pub len: usize,
    pub sha: [u8; 32],
}

pub struct Config {
    pub mode: String,
    /// The first of `addrs`: the one server of the single-target modes.
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub user: String,
    pub pass: String,
    pub msg: u32,
    pub expect: Option<Expect>,
    pub count: usize,
    pub clients: usize,
    pub duration: Duration,
    pub timeout: Duration,
    pub filter: String,
    pub input: Option<String>,
    /// `--tls`: implicit TLS to the ports it names.
    pub tls: Option<Tls>,
    /// storm: RETRs each storm session sends at once.
    pub pipeline: usize,
    /// storm: the prober's NOOP schedule.
    pub interval: Duration,
    /// storm: how many storms, one after the other.
    pub storms: usize,
    /// storm: a second prober's server (`--control PORT`, on the same host).
    pub control: Option<SocketAddr>,
}

pub fn usage() -> String {
    let opts = options();
    opts.usage("usage: loadgen fetch|sessions|retrs|parallel|hold|spawn|storm -p PORT [options]")
}

pub fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("H", "host", "server address (127.0.0.1)", "HOST");
    o.optmulti(
        "p",
        "port",
        "server port(s), repeated or comma-separated",
        "PORT",
    );
    o.optopt("u", "user", "POP3 user (bench)", "USER");
    o.optopt("w", "pass", "POP3 password (secret)", "PASS");
    o.optopt("m", "msg", "message number to RETR (1)", "N");
    o.optopt(
        "e",
        "expect",
        "expected message length and SHA-256",
        "LEN:SHA256",
    );
    o.optopt(
        "n",
        "count",
        "sessions, RETRs, held sessions or spawns (1)",
        "N",
    );
    o.optopt(
        "c",
        "clients",
        "parallel clients / hold threads / storm sessions (16)",
        "N",
    );
    o.optopt(
        "d",
        "duration",
        "parallel: stop starting sessions after (30)",
        "SECONDS",
    );
    o.optopt("T", "timeout", "socket timeout (60)", "SECONDS");
    o.optopt("t", "filter", "spawn: the command (cat)", "CMD");
    o.optopt("i", "input", "spawn: feed this file to the command", "FILE");
    o.optopt(
        "",
        "pipeline",
        "storm: RETRs each session sends at once (5)",
        "N",
    );
    o.optopt(
        "",
        "interval-ms",
        "storm: one NOOP every so many milliseconds (10)",
        "MS",
    );
    o.optopt(
        "",
        "storms",
        "storm: how many storms, one after the other (1)",
        "N",
    );
    o.optopt(
        "",
        "control",
        "storm: the same NOOPs to this port too, a server the storm does not go through",
        "PORT",
    );
    o.optopt(
        "",
        "tls",
        "implicit TLS (POP3S): verify the server against this CA (PEM)",
        "CAFILE",
    );
    o.optopt(
        "",
        "tls-ports",
        "with --tls: only these ports speak TLS, the others are plain (all)",
        "PORTS",
    );
    o.optopt(
        "",
        "tls-name",
        "with --tls: the name the server's certificate must carry (the host)",
        "NAME",
    );
    o.optflag("h", "help", "this text");
    o
}

pub fn parse(args: &[String]) -> Result<Option<Config>, String> {
    let m = options().parse(args).map_err(|e| e.to_string())?;
    if m.opt_present("h") {
        return Ok(None);
    }
    let mode = match m.free.as_slice() {
        [mode] => mode.clone(),
        _ => return Err("exactly one MODE expected".into()),
    };
    if ![
        "fetch", "sessions", "retrs", "parallel", "hold", "spawn", "storm",
    ]
    .contains(&mode.as_str())
    {
        return Err(format!("unknown mode {mode}"));
    }
    fn num<T: std::str::FromStr>(m: &getopts::Matches, o: &str, def: T) -> Result<T, String> {
        match m.opt_str(o) {
            None => Ok(def),
            Some(s) => s.parse().map_err(|_| format!("-{o}: not a number: {s}")),
        }
    }
    let host = m.opt_str("H").unwrap_or_else(|| "127.0.0.1".into());
    let mut ports = Vec::new();
    for list in m.opt_strs("p") {
        for p in list.split(',') {
            ports.push(p.parse::<u16>().map_err(|_| format!("-p: bad port {p}"))?);
        }
    }
    if ports.is_empty() {
        if mode != "spawn" {
            return Err("-p PORT is required".into());
        }
        ports.push(9);
    }
    let mut addrs = Vec::new();
    for port in ports {
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host}: no address"))?;
        addrs.push(addr);
    }
    let control = match m.opt_str("control") {
        None => None,
        Some(p) => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("--control: bad port {p}"))?;
            Some(SocketAddr::new(addrs[0].ip(), port))
        }
    };
    let tls = match m.opt_str("tls") {
        None => {
            if m.opt_present("tls-ports") || m.opt_present("tls-name") {
                return Err("--tls-ports and --tls-name go with --tls".into());
            }
            None
        }
        Some(ca) => {
            let mut tls_ports = Vec::new();
            for p in m.opt_str("tls-ports").unwrap_or_default().split(',') {
                if !p.is_empty() {
                    tls_ports.push(
                        p.parse::<u16>()
                            .map_err(|_| format!("--tls-ports: bad port {p}"))?,
                    );
                }
            }
            let name = m.opt_str("tls-name").unwrap_or_else(|| host.clone());
            Some(Tls::new(&ca, &name, tls_ports)?)
        }
    };
    let expect = match m.opt_str("e") {
        None => None,
        Some(s) => Some(parse_expect(&s).ok_or_else(|| format!("-e: want LEN:SHA256, got {s}"))?),
    };
    if expect.is_none() && !["fetch", "hold", "spawn"].contains(&mode.as_str()) {
        return Err(format!("{mode} needs -e LEN:SHA256"));
    }
    Ok(Some(Config {
        mode,
        addr: addrs[0],
        addrs,
        user: m.opt_str("u").unwrap_or_else(|| "bench".into()),
        pass: m.opt_str("w").unwrap_or_else(|| "secret".into()),
        msg: num(&m, "m", 1)?,
        expect,
        count: num(&m, "n", 1)?,
        clients: num::<usize>(&m, "c", 16)?.max(1),
        duration: Duration::from_secs_f64(num(&m, "d", 30.0)?),
        timeout: Duration::from_secs_f64(num(&m, "T", 60.0)?),
        filter: m.opt_str("t").unwrap_or_else(|| "cat".into()),
        input: m.opt_str("i"),
        tls,
        pipeline: num::<usize>(&m, "pipeline", 5)?.max(1),
        control,
        storms: num::<usize>(&m, "storms", 1)?.max(1),
        interval: Duration::from_secs_f64(num::<f64>(&m, "interval-ms", 10.0)?.max(0.0) / 1e3),
    }))
}

pub fn parse_expect(s: &str) -> Option<Expect> {
    let (len, hex) = s.split_once(':')?;
    if hex.len() != 64 {
        return None;
    }
    let mut sha = [0u8; 32];
    for (i, byte) in sha.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Expect {
        len: len.parse().ok()?,
        sha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_parsing() {
        let e = parse_expect(&format!("12:{}", "ab".repeat(32))).unwrap();
        assert_eq!(e.len, 12);
        assert_eq!(e.sha, [0xab; 32]);
        assert!(parse_expect("12:abc").is_none());
    }

    #[test]
    fn tls_options() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert!(parse(&args("fetch -p 1 --tls-ports 1")).is_err());
        let e = parse(&args("fetch -p 1 --tls /nonexistent/ca.pem")).err();
        assert!(e.is_some_and(|e| e.contains("/nonexistent/ca.pem")));
        let e = parse(&args("fetch -p 1 --tls /dev/null")).err();
        assert!(e.is_some_and(|e| e.contains("no certificate")));
    }
}
