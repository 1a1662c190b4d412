//! Name resolution off the event loop.
//!
//! `getaddrinfo` blocks, so it runs on a few helper threads. A session in RESOLVING submits a
//! [`Job`]; a helper resolves it, queues the [`Answer`] and wakes the loop through the
//! selector's waker; the loop collects answers with [`Resolver::answers`] and hands each to the
//! session that asked, if that session is still there (`serial` tells a session from a later
//! one that reuses its slot). A slow lookup only delays the sessions waiting for it.

use mio::Waker;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

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
    jobs: Option<Sender<Job>>,
    answers: Receiver<Answer>,
    answer_tx: Sender<Answer>,
    waker: Arc<Waker>,
}

impl Resolver {
    /// A resolver that wakes the loop through `waker`. Threads start with the first job.
    pub fn new(waker: Arc<Waker>) -> Self {
        let (answer_tx, answers) = mpsc::channel();
        Resolver {
            jobs: None,
            answers,
            answer_tx,
            waker,
        }
    }

    /// Queues a lookup.
    pub fn submit(&mut self, job: Job) {
        let jobs = self
            .jobs
            .get_or_insert_with(|| spawn_workers(&self.answer_tx, &self.waker));
        if let Err(mpsc::SendError(job)) = jobs.send(job) {
            // The helpers are gone (they only stop if a lookup panicked): answer at once.
            let _ = self.answer_tx.send(Answer {
                slot: job.slot,
                serial: job.serial,
                result: Err("name resolution is unavailable".into()),
            });
            let _ = self.waker.wake();
        }
    }

    /// The lookups finished since the last call.
    pub fn answers(&self) -> impl Iterator<Item = Answer> + '_ {
        self.answers.try_iter()
    }
}

fn spawn_workers(answers: &Sender<Answer>, waker: &Arc<Waker>) -> Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let rx = Arc::clone(&rx);
        let answers = answers.clone();
        let waker = Arc::clone(waker);
        let spawned = thread::Builder::new()
            .name(format!("resolver-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(guard) => match guard.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    },
                    Err(_) => return,
                };
                let result = lookup(&job.host, job.port);
                if answers
                    .send(Answer {
                        slot: job.slot,
                        serial: job.serial,
                        result,
                    })
                    .is_err()
                {
                    return;
                }
                let _ = waker.wake();
            });
        if let Err(e) = spawned {
            log::error!("cannot start a resolver thread: {e}");
        }
    }
    tx
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
