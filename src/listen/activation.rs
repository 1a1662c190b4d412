//! Socket activation: listening sockets inherited from systemd (or any service manager that
//! speaks the `sd_listen_fds` protocol), used instead of binding `-l`/`-p`.
//!
//! The protocol: descriptors 3, 4, … `3 + LISTEN_FDS - 1` are open and listening;
//! `LISTEN_PID` is the process they are meant for (a child that inherited the environment but
//! not the intent must ignore them); `LISTEN_FDNAMES`, optional, names them, colon-separated
//! (the `FileDescriptorName=` of the `.socket` unit). `main` calls [`take`] once, before any
//! thread starts; it removes the three variables and marks the descriptors close-on-exec, so
//! the filters the daemon spawns see neither. Every descriptor must be a listening TCP socket:
//! anything else is an [`ActivationError`] and the daemon exits with status 2.

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrLike, SockaddrStorage};
use nix::sys::stat::{fstat, SFlag};
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;
/// More inherited descriptors than this is a mistake, not a configuration.
const MOST_FDS: usize = 1024;
/// The variables of the protocol, all removed by [`take`].
const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// A listening TCP socket the service manager opened for us.
#[derive(Debug)]
pub struct Inherited {
    /// Its descriptor number, for messages.
    pub fd: RawFd,
    /// Its name from `LISTEN_FDNAMES` (empty when none was given).
    pub name: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Named `pop3s` and taken as the POP3S listener (implicit TLS).
    pub pop3s: bool,
    /// The socket, non-blocking and close-on-exec.
    pub socket: TcpListener,
}

/// Why the inherited sockets cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum ActivationError {
    /// A variable that is not what the protocol says (`LISTEN_FDS=abc`).
    Variable { name: &'static str, value: String },
    /// `LISTEN_FDNAMES` does not name as many descriptors as `LISTEN_FDS` counts.
    Names { fds: usize, names: usize },
    /// The descriptor is not open, or a system call on it failed.
    Unusable {
        fd: RawFd,
        call: &'static str,
        errno: nix::Error,
    },
    /// Not a socket: a file, a pipe, a terminal…
    NotSocket { fd: RawFd, kind: &'static str },
    /// A socket, but not a TCP one (UDP, a Unix socket…).
    NotTcp { fd: RawFd, what: String },
    /// A TCP socket that nobody called listen(2) on.
    NotListening { fd: RawFd, addr: SocketAddr },
    /// A socket named `pop3s` for a daemon without `--pop3s-port`.
    Pop3sUnwanted { fd: RawFd, addr: SocketAddr },
    /// `--pop3s-port`, and no socket named `pop3s`.
    Pop3sMissing,
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ActivationError::*;
        match self {
            Variable { name, value } => write!(f, "socket activation: invalid {name}={value:?}"),
            Names { fds, names } => write!(
                f,
                "socket activation: LISTEN_FDNAMES names {names} descriptors, LISTEN_FDS \
                 counts {fds}"
            ),
            Unusable { fd, call, errno } => {
                write!(f, "socket activation: descriptor {fd}: {call}: {errno}")
            }
            NotSocket { fd, kind } => write!(
                f,
                "socket activation: descriptor {fd} is not a socket (it is a {kind}); \
                 LISTEN_FDS must count listening TCP sockets from descriptor 3 on"
            ),
            NotTcp { fd, what } => write!(
                f,
                "socket activation: descriptor {fd} is {what}, not a TCP socket \
                 (use ListenStream= with an address or a port)"
            ),
            NotListening { fd, addr } => write!(
                f,
                "socket activation: descriptor {fd} ({addr}) is a TCP socket but not a \
                 listening one"
            ),
            Pop3sUnwanted { fd, addr } => write!(
                f,
                "socket activation: descriptor {fd} ({addr}) is named pop3s but there is no \
                 --pop3s-port (with --tls-cert and --tls-key) to serve POP3S on it"
            ),
            Pop3sMissing => write!(
                f,
                "socket activation: --pop3s-port, but no inherited socket is named pop3s \
                 (FileDescriptorName=pop3s in its .socket unit)"
            ),
        }
    }
}

impl std::error::Error for ActivationError {}

/// The sockets the service manager passed, or `None` when it passed none to this process.
/// A socket named `pop3s` is the POP3S listener, which `pop3s` (`--pop3s-port`) asks for;
/// any other name (or none) means plain POP3.
/// Removes the protocol's variables from the environment in every case, so that no child
/// takes them for its own; call it before any thread is started.
pub fn take(pop3s: bool) -> Result<Option<Vec<Inherited>>, ActivationError> {
    let [pid, fds, names] = VARIABLES.map(|v| std::env::var(v).ok());
    for v in VARIABLES {
        std::env::remove_var(v);
    }
    let Some(count) = count(pid.as_deref(), fds.as_deref(), std::process::id())? else {
        let ours = pid.as_deref().and_then(|p| p.parse().ok()) == Some(std::process::id());
        if fds.is_some() && !ours {
            log::warn!("LISTEN_FDS is set but LISTEN_PID is not this process: not used");
        }
        return Ok(None);
    };
    let names: Vec<String> = match names {
        None => vec![String::new(); count],
        Some(n) => n.split(':').map(str::to_string).collect(),
    };
    if names.len() != count {
        return Err(ActivationError::Names {
            fds: count,
            names: names.len(),
        });
    }
    // Every one close-on-exec first, so that none leaks to a filter whatever happens next.
    let range = FIRST_FD..FIRST_FD + count as RawFd;
    for fd in range.clone() {
        let unusable = |call, errno| ActivationError::Unusable { fd, call, errno };
        let flags = fcntl(fd, FcntlArg::F_GETFD).map_err(|e| unusable("F_GETFD", e))?;
        let flags = FdFlag::from_bits_truncate(flags) | FdFlag::FD_CLOEXEC;
        fcntl(fd, FcntlArg::F_SETFD(flags)).map_err(|e| unusable("F_SETFD", e))?;
    }
    let mut sockets = Vec::with_capacity(count);
    for (fd, name) in range.zip(names) {
        let addr = check(fd)?;
        let is_pop3s = name == "pop3s";
        if is_pop3s && !pop3s {
            return Err(ActivationError::Pop3sUnwanted { fd, addr });
        }
        // SAFETY: the protocol hands this descriptor to this process, and it is taken once,
        // here (the variables that named it are gone).
        let socket = unsafe { TcpListener::from_raw_fd(fd) };
        socket
            .set_nonblocking(true)
            .map_err(|e| ActivationError::Unusable {
                fd,
                call: "set non-blocking",
                errno: nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
        sockets.push(Inherited {
            fd,
            name,
            addr,
            pop3s: is_pop3s,
            socket,
        });
    }
    if pop3s && !sockets.iter().any(|s| s.pop3s) {
        return Err(ActivationError::Pop3sMissing);
    }
    Ok(Some(sockets))
}

/// How many descriptors the variables give this process (`our_pid`): `None` when they give it
/// none (no `LISTEN_PID`, another process's, or `LISTEN_FDS=0`).
fn count(
    pid: Option<&str>,
    fds: Option<&str>,
    our_pid: u32,
) -> Result<Option<usize>, ActivationError> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    let invalid = |name, value: &str| ActivationError::Variable {
        name,
        value: value.to_string(),
    };
    let pid: u32 = pid.parse().map_err(|_| invalid("LISTEN_PID", pid))?;
    if pid != our_pid {
        return Ok(None);
    }
    match fds.parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= MOST_FDS => Ok(Some(n)),
        _ => Err(invalid("LISTEN_FDS", fds)),
    }
}

/// Checks that `fd` is a listening TCP socket; returns the address it listens on.
fn check(fd: RawFd) -> Result<SocketAddr, ActivationError> {
    let unusable = |call, errno| ActivationError::Unusable { fd, call, errno };
    let stat = fstat(fd).map_err(|e| unusable("fstat", e))?;
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFSOCK {
        let kind = match kind {
            SFlag::S_IFREG => "regular file",
            SFlag::S_IFDIR => "directory",
            SFlag::S_IFIFO => "pipe",
            SFlag::S_IFCHR => "character device",
            SFlag::S_IFBLK => "block device",
            _ => "file of another kind",
        };
        return Err(ActivationError::NotSocket { fd, kind });
    }
    // SAFETY: the descriptor is open (fstat said so) and stays open for this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let local: SockaddrStorage = getsockname(fd).map_err(|e| unusable("getsockname", e))?;
    let addr = match (local.as_sockaddr_in(), local.as_sockaddr_in6()) {
        (Some(v4), _) => SocketAddr::from(std::net::SocketAddrV4::from(*v4)),
        (_, Some(v6)) => SocketAddr::from(std::net::SocketAddrV6::from(*v6)),
        _ => {
            let what = match local.family() {
                Some(nix::sys::socket::AddressFamily::Unix) => "a Unix socket".to_string(),
                Some(family) => format!("a socket of family {family:?}"),
                None => "a socket of no known family".to_string(),
            };
            return Err(ActivationError::NotTcp { fd, what });
        }
    };
    let kind = getsockopt(&borrowed, sockopt::SockType).map_err(|e| unusable("SO_TYPE", e))?;
    if kind != SockType::Stream || protocol(fd) != Some(libc::IPPROTO_TCP) {
        let what = match kind {
            SockType::Datagram => format!("a datagram socket on {addr}"),
            _ => format!("a socket on {addr}"),
        };
        return Err(ActivationError::NotTcp { fd, what });
    }
    let listening =
        getsockopt(&borrowed, sockopt::AcceptConn).map_err(|e| unusable("SO_ACCEPTCONN", e))?;
    if !listening {
        return Err(ActivationError::NotListening { fd, addr });
    }
    Ok(addr)
}

/// The socket's protocol (`SO_PROTOCOL`), which nix does not wrap.
fn protocol(fd: RawFd) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writing and len says how much.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn count_follows_sd_listen_fds() {
        let me = 4242;
        assert_eq!(count(None, None, me), Ok(None));
        assert_eq!(count(None, Some("2"), me), Ok(None), "no LISTEN_PID");
        assert_eq!(
            count(Some("1"), Some("2"), me),
            Ok(None),
            "another process's"
        );
        assert_eq!(count(Some("4242"), Some("0"), me), Ok(None));
        assert_eq!(count(Some("4242"), Some("2"), me), Ok(Some(2)));
        assert!(matches!(
            count(Some("x"), Some("2"), me),
            Err(ActivationError::Variable {
                name: "LISTEN_PID",
                ..
            })
        ));
        for bad in ["", "-1", "two", "100000"] {
            assert!(
                matches!(
                    count(Some("4242"), Some(bad), me),
                    Err(ActivationError::Variable {
                        name: "LISTEN_FDS",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn check_takes_only_listening_tcp_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(check(listener.as_raw_fd()), Ok(addr));

        let connected = std::net::TcpStream::connect(addr).unwrap();
        assert!(matches!(
            check(connected.as_raw_fd()),
            Err(ActivationError::NotListening { .. })
        ));
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = check(udp.as_raw_fd()).unwrap_err();
        assert!(e.to_string().contains("not a TCP socket"), "{e}");
        let (unix, _) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = check(unix.as_raw_fd()).unwrap_err();
        assert!(e.to_string().contains("a Unix socket"), "{e}");
        let file = std::fs::File::open("/dev/null").unwrap();
        let e = check(file.as_raw_fd()).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a socket (it is a character device)"),
            "{e}"
        );
    }
}
