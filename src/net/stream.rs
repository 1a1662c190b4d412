//! A connection's byte stream: a plain TCP socket, or a rustls connection over one.
//!
//! The relay, FILTER and SPCP read and write a [`Stream`] through `Read` and `Write` and never
//! learn which it is. Both keep the non-blocking contract the rest of the daemon relies on:
//!
//! - a read returns fewer bytes than asked only when the socket would block or has ended
//!   (plaintext rustls already decrypted is handed out first, and more records are read only
//!   once it is drained, so rustls never refuses them);
//! - a write returns fewer bytes than offered only when the kernel has no more room: rustls
//!   takes plaintext up to its buffer limit, the records go to the kernel, and so on; records
//!   the kernel had no room for stay *pending* ([`Transport::pending`]) and the connection
//!   asks for write readiness until [`Transport::push_pending`] got them out;
//! - a peer that closes without `close_notify` reads as an ordinary end of stream (POP3 has
//!   its own end: QUIT), and a TLS error is an `io::Error` whose text names the reason.
//!
//! The handshake needs no state of its own: reads and writes drive it. The stream only notes
//! how it ended, once ([`Stream::take_handshake`]), for the daemon's counters.

use mio::net::TcpStream;
use rustls::{ClientConnection, Connection, ServerConnection};
use std::io::{self, Read, Write};

/// What the daemon's sides need of a byte stream beyond `Read` and `Write`.
pub trait Transport: Read + Write {
    /// Bytes accepted by `write` that the kernel has not taken yet.
    fn pending(&self) -> bool {
        false
    }

    /// Hands pending bytes to the kernel; true once none are left.
    fn push_pending(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

impl Transport for TcpStream {}

/// Plaintext a TLS side holds for sending at most, beyond what the kernel took.
const TLS_SEND_LIMIT: usize = 16 * 1024;

/// A socket, with TLS or without.
pub struct Stream {
    sock: TcpStream,
    tls: Option<Box<Connection>>,
    /// A handshake runs and its end has not been noted.
    handshaking: bool,
    /// How the handshake ended (true: completed; false: a TLS error), until taken.
    handshake_end: Option<bool>,
}

impl Stream {
    /// A plain stream.
    pub fn plain(sock: TcpStream) -> Stream {
        Stream {
            sock,
            tls: None,
            handshaking: false,
            handshake_end: None,
        }
    }

    /// How the handshake ended, once: `Some(true)` when it completed, `Some(false)` when it
    /// failed with a TLS error; `None` while it runs, after it was taken, or without TLS. A
    /// peer that goes away in the middle of a handshake is neither.
    pub fn take_handshake(&mut self) -> Option<bool> {
        self.handshake_end.take()
    }

    /// The socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    /// Starts TLS as the server (the client's side of a session): the client's hello is read
    /// from the socket from now on.
    pub fn accept_tls(&mut self, config: std::sync::Arc<rustls::ServerConfig>) -> io::Result<()> {
        let conn = ServerConnection::new(config).map_err(tls_error)?;
        self.start(Connection::Server(conn));
        Ok(())
    }

    /// Starts TLS as the client (the origin's side), checking the server as `name`.
    pub fn connect_tls(
        &mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> io::Result<()> {
        let conn = ClientConnection::new(config, name).map_err(tls_error)?;
        self.start(Connection::Client(conn));
        Ok(())
    }

    fn start(&mut self, mut conn: Connection) {
        conn.set_buffer_limit(Some(TLS_SEND_LIMIT));
        self.handshaking = conn.is_handshaking();
        self.tls = Some(Box::new(conn));
    }

    /// For the access log: `plain`, or the TLS version and cipher suite.
    pub fn describe(&self) -> String {
        match &self.tls {
            None => "plain".to_string(),
            Some(c) if c.is_handshaking() => "TLS, handshake not completed".to_string(),
            Some(c) => match (c.protocol_version(), c.negotiated_cipher_suite()) {
                (Some(v), Some(s)) => format!("{v:?}/{:?}", s.suite()),
                _ => "TLS".to_string(),
            },
        }
    }

    /// Queues a `close_notify` and tries to send it (best effort: the socket closes next).
    pub fn close_notify(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = self.push_pending();
        }
    }
}

impl Read for Stream {
    /// Both slices (a ring buffer's free space across its wrap) in one call: for a socket, one
    /// `readv`; through TLS, one slice after the other until one is filled short.
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.sock.read_vectored(bufs);
        }
        slice_by_slice(bufs.len(), |i| match &mut bufs[i] {
            b if b.is_empty() => (0, Ok(0)),
            b => (b.len(), self.read(b)),
        })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.sock.read(buf);
        };
        let mut n = 0;
        loop {
            // Plaintext already decrypted first: rustls takes no more records until it is.
            match tls.reader().read(&mut buf[n..]) {
                Ok(0) if n < buf.len() => return Ok(n), // close_notify: the end of stream
                Ok(k) => {
                    n += k;
                    if n == buf.len() {
                        return Ok(n);
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: after QUIT that is how most peers end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut self.sock) {
                Ok(_) => {
                    // 0 is the socket's end: the reader says so on the next turn.
                    if let Err(e) = tls.process_new_packets() {
                        if std::mem::take(&mut self.handshaking) {
                            self.handshake_end = Some(false);
                        }
                        // Tell the peer why (an alert), then fail.
                        let _ = send_records(tls, &mut self.sock);
                        return Err(tls_error(e));
                    }
                    if self.handshaking && !tls.is_handshaking() {
                        self.handshaking = false;
                        self.handshake_end = Some(true);
                    }
                    send_records(tls, &mut self.sock)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && n > 0 => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Stream {
    /// Both slices (a ring buffer's data across its wrap) in one call: for a socket, one
    /// `writev`; through TLS, one slice after the other until one is taken short. Never only
    /// the first slice (the default), which a caller would take for a full kernel.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.sock.write_vectored(bufs);
        }
        slice_by_slice(bufs.len(), |i| match &bufs[i] {
            b if b.is_empty() => (0, Ok(0)),
            b => (b.len(), self.write(b)),
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.sock.write(buf);
        };
        // rustls takes at most its buffer limit at a time: keep handing it plaintext and the
        // kernel records until all is taken or the kernel is full, so that a short write
        // means what it means for a socket (no room until the next writable event).
        let mut taken = 0;
        while send_records(tls, &mut self.sock)? && taken < buf.len() {
            match tls.writer().write(&buf[taken..])? {
                0 => break,
                n => taken += n,
            }
        }
        if taken == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Stream {
    fn pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|c| c.wants_write())
    }

    fn push_pending(&mut self) -> io::Result<bool> {
        match &mut self.tls {
            Some(tls) => send_records(tls, &mut self.sock),
            None => Ok(true),
        }
    }
}

/// A vectored call through TLS as plain calls, slice after slice: `op(i)` gives slice `i`'s
/// length and what the call on it did. Stops after a short one (the socket has no more, or no
/// more room); `WouldBlock` after some bytes moved is just the end of this call.
fn slice_by_slice(
    count: usize,
    mut op: impl FnMut(usize) -> (usize, io::Result<usize>),
) -> io::Result<usize> {
    let mut total = 0;
    for i in 0..count {
        match op(i) {
            (0, _) => {}
            (len, Ok(n)) => {
                total += n;
                if n < len {
                    break;
                }
            }
            (_, Err(e)) if total > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            (_, Err(e)) => return Err(e),
        }
    }
    Ok(total)
}

/// Writes TLS records to the socket until none are left (true) or it would block (false).
fn send_records(tls: &mut Connection, sock: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A rustls error as an `io::Error` whose text names it.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{IoSlice, IoSliceMut};

    fn pair() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        (Stream::plain(TcpStream::from_std(ours)), peer)
    }

    #[test]
    fn a_plain_stream_reads_and_writes_both_slices_at_once() {
        // Across a ring buffer's wrap the relay hands over two slices; taking only the first
        // would read as "the kernel is full" and stall an edge-triggered loop.
        let (mut s, mut peer) = pair();
        let n = s
            .write_vectored(&[IoSlice::new(b"abc"), IoSlice::new(b"defg")])
            .unwrap();
        assert_eq!(n, 7);
        let mut got = [0u8; 7];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abcdefg");
        peer.write_all(b"0123456").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (mut a, mut b) = ([0u8; 3], [0u8; 10]);
        let n = s
            .read_vectored(&mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)])
            .unwrap();
        assert_eq!((n, &a, &b[..4]), (7, b"012", &b"3456"[..]));
    }
}
