//! SIGTERM, SIGINT and SIGHUP, turned into readiness on the event loop (the self-pipe trick).
//!
//! The handler only writes one byte (the signal's number) to a non-blocking pipe — the one thing a signal handler
//! may safely do here. The pipe's read end is registered with the selector; when it becomes
//! readable the loop starts its shutdown (SIGTERM, SIGINT) or reloads the TLS certificate
//! (SIGHUP). The write end's descriptor lives in a static because
//! a signal handler can reach nothing else: the one global of the daemon.
//!
//! SIGPIPE is ignored (the Rust runtime does so before `main`, and this module makes sure), so
//! a peer that vanishes shows up as an `EPIPE` error on the write, never as a dead daemon.

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe (EAGAIN) already means "wake up".
        unsafe { libc::write(fd, &byte as *const u8 as *const libc::c_void, 1) };
    }
}

/// What the signal pipe said.
#[derive(Debug, Default, Clone, Copy)]
pub struct Caught {
    /// SIGTERM or SIGINT: shut down.
    pub stop: bool,
    /// SIGHUP: reload the certificate.
    pub reload: bool,
}

/// The read end of the signal pipe.
pub struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Signals {
    /// Installs the handlers for SIGTERM, SIGINT and SIGHUP and ignores SIGPIPE.
    pub fn install() -> io::Result<Signals> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two descriptors or fails.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nothing else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        WAKE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: the handler only loads an atomic and calls write(2).
        unsafe {
            signal::sigaction(Signal::SIGTERM, &action)?;
            signal::sigaction(Signal::SIGINT, &action)?;
            signal::sigaction(Signal::SIGHUP, &action)?;
            signal::sigaction(Signal::SIGPIPE, &ignore)?;
        }
        Ok(Signals {
            read,
            _write: write,
        })
    }

    /// Empties the pipe: which signals arrived since the last call.
    pub fn drain(&self) -> Caught {
        let mut got = Caught::default();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a local buffer from a descriptor this struct owns.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return got;
            }
            for &sig in &buf[..n as usize] {
                if libc::c_int::from(sig) == libc::SIGHUP {
                    got.reload = true;
                } else {
                    got.stop = true;
                }
            }
        }
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }
}
