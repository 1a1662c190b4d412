//! One SPCP connection to one daemon: connect (with a timeout, every address of a host name
//! in turn), log in, send a request and wait for its answer. A plain blocking client.

use crate::args::Target;
use crate::wire::{self, cmd, status, Response};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// An error and the exit status it maps to.
#[derive(Debug)]
pub struct Failure(pub u8, pub String);

pub struct Client {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    /// Connects to `target`; a failure names it when `named` (else the caller does).
    pub fn connect(target: &Target, named: bool) -> Result<Client, Failure> {
        let to = if named {
            format!(" to {}", target.label())
        } else {
            String::new()
        };
        let cannot = |e: &dyn std::fmt::Display| Failure(1, format!("cannot connect{to}: {e}"));
        let addrs: Vec<_> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|e| cannot(&e))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(stream) => {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = stream.set_nodelay(true);
                    return Ok(Client {
                        stream,
                        pending: Vec::new(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => cannot(&e),
            None => cannot(&"no address"),
        })
    }

    pub fn call(&mut self, code: u8, args: &[Vec<u8>]) -> Result<Response, Failure> {
        let mut frame = Vec::new();
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        wire::encode_request(code, &args, &mut frame).map_err(|e| Failure(2, e))?;
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
    pub fn expect_ok(&mut self, code: u8, args: &[Vec<u8>], what: &str) -> Result<String, Failure> {
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

    pub fn login(&mut self, user: &str, pass: &str) -> Result<(), Failure> {
        self.expect_ok(cmd::USER, &[user.as_bytes().to_vec()], "login")?;
        self.expect_ok(cmd::PASS, &[pass.as_bytes().to_vec()], "login")?;
        Ok(())
    }

    /// Says goodbye; the answer does not matter.
    pub fn quit(mut self) {
        let _ = self.call(cmd::QUIT, &[]);
    }
}
