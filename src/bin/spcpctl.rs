//! spcpctl: the command-line client of SPCP, pop3filter's management protocol.
//!
//! Connects, logs in, sends one command (or several, for `stats` and `watch`), prints the
//! answer and exits with a status that tells what went wrong. A plain blocking client: it is a
//! short-lived tool, not part of the daemon's event loop. The frame code is the daemon's own
//! (`src/spcp/wire.rs`), included by path.

#[cfg(test)]
#[path = "../testutil.rs"]
mod testutil;
#[path = "../spcp/wire.rs"]
mod wire;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};
use wire::{cmd, status, Response};

const USAGE: &str =
    "Usage: spcpctl [-L ADDR] [-o PORT] [-u USER:PASS | -U FILE] [-n COUNT] COMMAND [ARG]

Manages a running pop3filter over SPCP.

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

Credentials: -u USER:PASS, or -U FILE (its first USER:PASS line), or the environment
variables SPCP_USER and SPCP_PASS.

Exit status: 0 success, 1 cannot connect or connection lost, 2 usage error,
3 authentication failed, 4 command unknown to the daemon, 5 invalid arguments,
6 the daemon failed.";

struct Options {
    addr: SocketAddr,
    user: String,
    pass: String,
    count: Option<u64>,
    command: String,
    arg: Option<String>,
}

/// An error and the exit status it maps to.
struct Failure(u8, String);

fn usage_error(msg: impl Into<String>) -> Failure {
    Failure(2, msg.into())
}

fn parse(args: &[String]) -> Result<Option<Options>, Failure> {
    let mut o = getopts::Options::new();
    o.parsing_style(getopts::ParsingStyle::StopAtFirstFree);
    o.optopt(
        "L",
        "",
        "daemon's management address (default 127.0.0.1)",
        "ADDR",
    );
    o.optopt("o", "", "daemon's management port (default 9090)", "PORT");
    o.optopt("u", "", "credentials", "USER:PASS");
    o.optopt("U", "", "file with a USER:PASS line", "FILE");
    o.optopt("n", "", "watch: stop after COUNT refreshes", "COUNT");
    o.optflag("h", "", "print this help");
    let m = o.parse(args).map_err(|e| usage_error(e.to_string()))?;
    if m.opt_present("h") {
        return Ok(None);
    }
    let ip: IpAddr = match m.opt_str("L") {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(a) => a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| usage_error(format!("invalid address '{a}'")))?,
    };
    let port = match m.opt_str("o") {
        None => 9090,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| usage_error(format!("invalid port '{p}'")))?,
    };
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
        addr: SocketAddr::new(ip, port),
        user: user.into(),
        pass: pass.into(),
        count,
        command,
        arg,
    }))
}

/// One request to send and what to call it in messages.
struct Request {
    code: u8,
    args: Vec<Vec<u8>>,
}

fn request(command: &str, arg: Option<&str>) -> Result<Vec<Request>, Failure> {
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

struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Result<Client, Failure> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| Failure(1, format!("cannot connect to {addr}: {e}")))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.set_nodelay(true);
        Ok(Client {
            stream,
            pending: Vec::new(),
        })
    }

    fn call(&mut self, code: u8, args: &[Vec<u8>]) -> Result<Response, Failure> {
        let mut frame = Vec::new();
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        wire::encode_request(code, &args, &mut frame).map_err(usage_error)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| Failure(1, format!("connection lost: {e}")))?;
        loop {
            if let Some((response, n)) = wire::decode_response(&self.pending) {
                self.pending.drain(..n);
                return Ok(response);
            }
            let mut buf = [0u8; 512];
            match self.stream.read(&mut buf) {
                Ok(0) => return Err(Failure(1, "the daemon closed the connection".into())),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) => return Err(Failure(1, format!("connection lost: {e}"))),
            }
        }
    }

    /// Calls and turns an error status into a failure.
    fn expect_ok(&mut self, code: u8, args: &[Vec<u8>], what: &str) -> Result<String, Failure> {
        let r = self.call(code, args)?;
        let text = String::from_utf8_lossy(&r.data).into_owned();
        match r.status {
            status::OK => Ok(text),
            status::AUTH_ERR => Err(Failure(3, format!("{what}: authentication failed"))),
            status::INVALID_COMMAND => Err(Failure(
                4,
                format!("{what}: the daemon does not know this command"),
            )),
            status::INVALID_ARGUMENTS => Err(Failure(5, format!("{what}: invalid arguments"))),
            status::ERROR => Err(Failure(6, format!("{what}: the daemon failed"))),
            other => Err(Failure(
                6,
                format!("{what}: unexpected status {other:#04x}"),
            )),
        }
    }

    fn login(&mut self, user: &str, pass: &str) -> Result<(), Failure> {
        self.expect_ok(cmd::USER, &[user.as_bytes().to_vec()], "login")?;
        self.expect_ok(cmd::PASS, &[pass.as_bytes().to_vec()], "login")?;
        Ok(())
    }
}

const METRICS: [u8; 4] = [
    cmd::CONNECTIONS,
    cmd::BYTES,
    cmd::ACCESSES,
    cmd::TRANSFORMATION,
];
const CENSOR: [u8; 3] = [cmd::CENSOR_MEDIAS, cmd::CENSOR_NOTE, cmd::CENSOR_COUNTERS];
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
fn name_of(code: u8) -> &'static str {
    let all = METRICS.iter().chain(CENSOR.iter());
    all.zip(NAMES)
        .find(|(c, _)| **c == code)
        .map_or("?", |(_, n)| n)
}

fn run(o: Options) -> Result<(), Failure> {
    let requests = request(&o.command, o.arg.as_deref())?;
    let mut client = Client::connect(o.addr)?;
    client.login(&o.user, &o.pass)?;
    match o.command.as_str() {
        "watch" => watch(&mut client, o.count),
        "stats" | "censor" => {
            for r in &requests {
                let name = name_of(r.code);
                let text = client.expect_ok(r.code, &r.args, name)?;
                // A note of several paragraphs: one per line, indented.
                println!("{name}: {}", text.replace('\n', "\n    "));
            }
            Ok(())
        }
        name => {
            let r = &requests[0];
            let text = client.expect_ok(r.code, &r.args, name)?;
            if name.starts_with("set-") {
                println!("ok");
            } else {
                println!("{text}");
            }
            Ok(())
        }
    }?;
    let _ = client.call(cmd::QUIT, &[]);
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
    let outcome = match parse(&args) {
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Some(o)) => run(o),
        Err(f) => Err(f),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, msg)) => {
            eprintln!("spcpctl: {msg}");
            if code == 2 {
                eprintln!("{USAGE}");
            }
            ExitCode::from(code)
        }
    }
}
