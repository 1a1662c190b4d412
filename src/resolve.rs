//! Name resolution off the event loop.
//!
//! `getaddrinfo` blocks, so it runs on a few helper threads (`helpers.rs`). A session in RESOLVING submits a
//! [`Job`]; a helper resolves it, queues the [`Answer`] and wakes the loop through the
//! selector's waker; the loop collects answers with [`Resolver::answers`] and hands each to the
//! session that asked, if that session is still there (`serial` tells a session from a later
//! one that reuses its slot). A slow lookup only delays the sessions waiting for it.

use crate::helpers::Helpers;
use mio::Waker;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// How many lookups may run at once.
const WORKERS: usize = 4;

/// A lookup to do.
#[derive(Debug)]
pub struct Job {
    /// The session slot that asked.
    pub slot: usize,
    /// The session's serial number.
    pub serial: u64,
    /// The host to resolve.
    pub host: String,
    /// The port to put in every address.
    pub port: u16,
}

/// A finished lookup.
#[derive(Debug)]
pub struct Answer {
    /// The session slot that asked.
    pub slot: usize,
    /// The session's serial number.
    pub serial: u64,
    /// The addresses, in the resolver's order, or why there are none.
    pub result: Result<Vec<SocketAddr>, String>,
}

/// The loop's handle on the helper threads.
pub struct Resolver {
    helpers: Helpers<Job, Answer>,
}

impl Resolver {
    /// A resolver that wakes the loop through `waker`. Threads start with the first job.
    pub fn new(waker: Arc<Waker>) -> Self {
        Resolver {
            helpers: Helpers::new("resolver", WORKERS, waker, |job: Job| Answer {
                slot: job.slot,
                serial: job.serial,
                result: lookup(&job.host, job.port),
            }),
        }
    }

    /// Queues a lookup.
    pub fn submit(&mut self, job: Job) {
        if let Err(job) = self.helpers.submit(job) {
            // The helpers are gone (they only stop if a lookup panicked): answer at once.
            self.helpers.answer_now(Answer {
                slot: job.slot,
                serial: job.serial,
                result: Err("name resolution is unavailable".into()),
            });
        }
    }

    /// The lookups finished since the last call.
    pub fn answers(&self) -> impl Iterator<Item = Answer> + '_ {
        self.helpers.answers()
    }
}

fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{host} has no address"))
            } else {
                Ok(addrs)
            }
        }
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn resolves_off_the_loop_and_wakes_it() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let mut r = Resolver::new(waker);
        r.submit(Job {
            slot: 3,
            serial: 9,
            host: "localhost".into(),
            port: 110,
        });
        r.submit(Job {
            slot: 4,
            serial: 10,
            host: "no-such-host.invalid".into(),
            port: 110,
        });
        let mut got = Vec::new();
        let mut events = Events::with_capacity(4);
        for _ in 0..100 {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            got.extend(r.answers());
            if got.len() == 2 {
                break;
            }
        }
        got.sort_by_key(|a| a.slot);
        assert_eq!(got.len(), 2);
        let local = got[0].result.as_ref().unwrap();
        assert!(
            local
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 110),
            "{local:?}"
        );
        assert_eq!((got[0].slot, got[0].serial), (3, 9));
        assert!(got[1]
            .result
            .as_ref()
            .unwrap_err()
            .contains("no-such-host.invalid"));
    }
}
