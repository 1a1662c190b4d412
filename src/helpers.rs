//! Helper threads: work that blocks (a name lookup, starting a process) done off the event
//! loop.
//!
//! The loop [`Helpers::submit`]s a job; one of a few threads does it, queues the answer and
//! wakes the loop through the selector's waker; the loop collects answers with
//! [`Helpers::answers`] when it wakes. The threads start with the first job and end when the
//! pool is dropped (their job channel closes) or the loop's end of the answers is gone.

use mio::Waker;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

/// A pool of helper threads that turn jobs `J` into answers `A` with `work`.
pub struct Helpers<J, A> {
    /// The threads' name, numbered.
    name: &'static str,
    threads: usize,
    work: fn(J) -> A,
    jobs: Option<Sender<J>>,
    answers: Receiver<A>,
    answer_tx: Sender<A>,
    waker: Arc<Waker>,
}

impl<J: Send + 'static, A: Send + 'static> Helpers<J, A> {
    /// A pool of `threads` threads named `name-N` that wakes the loop through `waker`.
    pub fn new(name: &'static str, threads: usize, waker: Arc<Waker>, work: fn(J) -> A) -> Self {
        let (answer_tx, answers) = mpsc::channel();
        Helpers {
            name,
            threads,
            work,
            jobs: None,
            answers,
            answer_tx,
            waker,
        }
    }

    /// Queues a job; gives it back if the threads are gone (only a panic stops them).
    pub fn submit(&mut self, job: J) -> Result<(), J> {
        let jobs = self.jobs.get_or_insert_with(|| {
            start(
                self.name,
                self.threads,
                self.work,
                &self.answer_tx,
                &self.waker,
            )
        });
        jobs.send(job).map_err(|mpsc::SendError(job)| job)
    }

    /// Queues an answer of the loop's own (for a job no thread can take) and wakes the loop.
    pub fn answer_now(&self, answer: A) {
        let _ = self.answer_tx.send(answer);
        let _ = self.waker.wake();
    }

    /// The answers queued since the last call.
    pub fn answers(&self) -> impl Iterator<Item = A> + '_ {
        self.answers.try_iter()
    }
}

fn start<J: Send + 'static, A: Send + 'static>(
    name: &str,
    threads: usize,
    work: fn(J) -> A,
    answers: &Sender<A>,
    waker: &Arc<Waker>,
) -> Sender<J> {
    let (tx, rx) = mpsc::channel::<J>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let answers = answers.clone();
        let waker = Arc::clone(waker);
        let started = thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => match rx.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    },
                    Err(_) => return,
                };
                if answers.send(work(job)).is_err() {
                    return;
                }
                let _ = waker.wake();
            });
        if let Err(e) = started {
            log::error!("cannot start a {name} thread: {e}");
        }
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll, Token};
    use std::time::Duration;

    #[test]
    fn every_job_is_answered_through_the_waker() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let mut h = Helpers::new("test", 3, waker, |n: u32| n * 2);
        for n in 0..50 {
            assert!(h.submit(n).is_ok());
        }
        h.answer_now(1000);
        let mut got = Vec::new();
        let mut events = Events::with_capacity(4);
        // Every answer is queued before its wake, so the loop never waits with one pending.
        while got.len() < 51 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            assert!(!events.is_empty(), "answers pending, but no wake in 5 s");
            got.extend(h.answers());
        }
        got.sort_unstable();
        let want: Vec<u32> = (0..50).map(|n| n * 2).chain([1000]).collect();
        assert_eq!(got, want);
    }
}
