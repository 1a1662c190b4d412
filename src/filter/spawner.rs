//! Starting filters off the event loop, and no more at once than the machine can run.
//!
//! `fork` + `exec` blocks the caller until the child has exec'd (std waits on a pipe for the
//! exec's outcome): a few hundred microseconds each, which a burst of RETRs turns into a stalled
//! loop. A session that needs a filter takes a place ([`Spawner::acquire`]); it then submits a
//! [`Job`], a helper thread starts the process and queues the [`Spawned`] answer, and the loop
//! hands it to the session that asked (`serial` tells a session from a later one that reuses
//! its slot), as it does for name lookups. At most `max` filters run (or are being started) at
//! once; a session beyond that waits its turn, in order, with its message left in the kernel,
//! and is admitted when a place is [`Spawner::release`]d.

use super::{spawn, FilterConfig, FilterEnv, Process};
use crate::helpers::Helpers;
use mio::Waker;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

/// Helper threads that start processes.
const WORKERS: usize = 2;

/// A filter to start.
pub struct Job {
    /// The session slot that asked.
    pub slot: usize,
    /// The session's serial number.
    pub serial: u64,
    /// The command.
    pub command: String,
    /// The configuration in force when the message began.
    pub config: FilterConfig,
    /// The session's user, when known.
    pub user: Option<String>,
    /// The origin as given on the command line.
    pub server: String,
    /// The client's IP address.
    pub client: String,
}

/// A filter started, or why not.
pub struct Spawned {
    /// The session slot that asked.
    pub slot: usize,
    /// The session's serial number.
    pub serial: u64,
    /// The process.
    pub result: io::Result<Process>,
}

/// The loop's handle on the helper threads and on the places.
pub struct Spawner {
    helpers: Helpers<Job, Spawned>,
    /// Filters running or being started.
    running: usize,
    /// Most filters at once.
    max: usize,
    /// Sessions (slot, serial) waiting for a place, first come first served.
    waiting: VecDeque<(usize, u64)>,
    /// Sessions given a place since the loop last looked.
    admitted: Vec<(usize, u64)>,
}

impl Spawner {
    /// A spawner of at most `max` filters at once that wakes the loop through `waker`.
    /// Threads start with the first job.
    pub fn new(waker: Arc<Waker>, max: usize) -> Spawner {
        Spawner {
            helpers: Helpers::new("spawn", WORKERS, waker, start),
            running: 0,
            max: max.max(1),
            waiting: VecDeque::new(),
            admitted: Vec::new(),
        }
    }

    /// Takes a place for the session, or puts it in the queue (false: it is admitted later).
    pub fn acquire(&mut self, slot: usize, serial: u64) -> bool {
        if self.running < self.max && self.waiting.is_empty() {
            self.running += 1;
            return true;
        }
        self.waiting.push_back((slot, serial));
        false
    }

    /// Gives a place back (the filter ended, or could not be started, or its session left
    /// the queue); the next waiting session, if any, is admitted.
    pub fn release(&mut self) {
        self.running = self.running.saturating_sub(1);
        self.admit();
    }

    /// Filters running or being started (places taken).
    pub fn running(&self) -> usize {
        self.running
    }

    /// A session that was waiting no longer needs a place.
    pub fn leave(&mut self, slot: usize, serial: u64) {
        self.waiting.retain(|&w| w != (slot, serial));
    }

    fn admit(&mut self) {
        while self.running < self.max {
            let Some(next) = self.waiting.pop_front() else {
                return;
            };
            self.running += 1;
            self.admitted.push(next);
        }
    }

    /// The sessions given a place since the last call: each must submit its job, or release.
    pub fn take_admitted(&mut self) -> Vec<(usize, u64)> {
        std::mem::take(&mut self.admitted)
    }

    /// Queues a start (the session holds a place).
    pub fn submit(&mut self, job: Job) {
        if let Err(job) = self.helpers.submit(job) {
            // The helpers are gone (only a panic stops them): answer at once.
            self.helpers.answer_now(Spawned {
                slot: job.slot,
                serial: job.serial,
                result: Err(io::Error::other("filter start-up is unavailable")),
            });
        }
    }

    /// The starts finished since the last call.
    pub fn answers(&self) -> impl Iterator<Item = Spawned> + '_ {
        self.helpers.answers()
    }
}

/// Starts a job's process (on a helper thread).
fn start(job: Job) -> Spawned {
    let env = FilterEnv {
        user: job.user.as_deref(),
        server: &job.server,
        client: &job.client,
    };
    Spawned {
        slot: job.slot,
        serial: job.serial,
        result: spawn(&job.command, &job.config, &env),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawner(max: usize) -> Spawner {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        Spawner::new(waker, max)
    }

    #[test]
    fn places_are_given_in_order_and_never_beyond_the_cap() {
        let mut s = spawner(2);
        assert!(s.acquire(1, 1));
        assert!(s.acquire(2, 2));
        assert!(!s.acquire(3, 3));
        assert!(!s.acquire(4, 4));
        assert!(!s.acquire(5, 5));
        assert_eq!(s.running, 2);
        s.leave(4, 4);
        s.release();
        assert_eq!(s.take_admitted(), vec![(3, 3)]);
        assert_eq!(s.running, 2);
        s.release();
        s.release();
        assert_eq!(
            s.take_admitted(),
            vec![(5, 5)],
            "the one that left is skipped"
        );
        assert_eq!(s.running, 1);
        assert!(!s.acquire(6, 6) || s.running == 2);
    }

    #[test]
    fn a_newcomer_does_not_jump_the_queue() {
        let mut s = spawner(1);
        assert!(s.acquire(1, 1));
        assert!(!s.acquire(2, 2));
        s.release();
        // (2, 2) was admitted; a new session must queue behind it, not take the place.
        assert!(!s.acquire(3, 3));
        assert_eq!(s.take_admitted(), vec![(2, 2)]);
    }

    #[test]
    fn a_start_is_answered_through_the_waker() {
        let mut s = spawner(1);
        assert!(s.acquire(7, 9));
        s.submit(Job {
            slot: 7,
            serial: 9,
            command: "cat".into(),
            config: FilterConfig::default(),
            user: None,
            server: "origin".into(),
            client: "127.0.0.1".into(),
        });
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(answer) = s.answers().next() {
                assert_eq!((answer.slot, answer.serial), (7, 9));
                let mut p = answer.result.expect("cat starts");
                p.kill();
                break;
            }
            assert!(std::time::Instant::now() < until, "no answer");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
