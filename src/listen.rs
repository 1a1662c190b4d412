//! Listening sockets, made by hand so that an IPv6 socket can be told to take IPv6 only
//! (`IPV6_V6ONLY`) beside an IPv4 one on the same port, whatever the system default, and so
//! that several instances may share a port (`SO_REUSEPORT`, `--reuse-port`).
//!
//! The server (`server/listeners.rs`) calls [`listen`] for each address it binds;
//! [`activation`] hands it the sockets a service manager opened instead.

use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

pub mod activation;

/// Pending connections the kernel may queue.
const BACKLOG: i32 = 1024;

/// A non-blocking listener on `addr`; with `reuse_port`, one that other sockets with
/// `SO_REUSEPORT` (of this user) may bind beside, the kernel spreading new connections
/// over them.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<mio::net::TcpListener> {
    let family = match addr.ip() {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(family, SockType::Stream, flags, None)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuse_port {
        socket::setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    if family == AddressFamily::Inet6 {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    socket::listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(fd),
    ))
}
