//! The raw POP3 client of the TLS suite, in the clear or in TLS (rustls,
//! trusting the CAs of one PEM file), and the rustls pieces it is made of.

use super::s;
use crate::common::PASSWORD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A client configuration trusting only the CA certificates in `ca`.
pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The first flight of a TLS client (its ClientHello records), as bytes.
pub fn client_hello() -> Vec<u8> {
    let ca = &crate::common::certs().a.ca;
    let mut conn = ClientConnection::new(
        client_config(ca),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Runs the handshake over `tcp`, checking the server's certificate against
/// `ca` for `name`. The error says why it failed (e.g. `UnknownIssuer`).
pub fn handshake(tcp: TcpStream, ca: &Path, name: &str) -> io::Result<Tls> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(client_config(ca), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// How a read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The peer closed (FIN, or TLS close_notify, or the TLS stream cut).
    Closed,
    /// Connection reset, or another error (its text).
    Error(String),
    /// Nothing for the whole wait.
    Silent,
}

/// A POP3 client on 127.0.0.1, in the clear or in TLS.
pub struct Client {
    tcp: TcpStream,
    io: Box<dyn Io>,
    buf: Vec<u8>,
    pos: usize,
    tls: bool,
    /// A slow reader: at most this many bytes per read, each after this pause.
    slow: Option<(usize, Duration)>,
}

impl Client {
    /// Connects in the clear; does not read the greeting.
    pub fn plain(port: u16) -> Client {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        Client::with_stream(tcp)
    }

    fn with_stream(tcp: TcpStream) -> Client {
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        Client {
            io: Box::new(tcp.try_clone().unwrap()),
            tcp,
            buf: Vec::new(),
            pos: 0,
            tls: false,
            slow: None,
        }
    }

    /// A slow reader in the clear: a 4 KiB receive buffer set before it
    /// connects (so the TCP window stays small and the server's writes block
    /// often), and every read takes at most `chunk` bytes after `pause`.
    /// Switch to TLS with `start_tls` as usual.
    pub fn plain_slow(port: u16, chunk: usize, pause: Duration) -> Client {
        let tcp = crate::common::connect_small_window(port);
        let mut c = Client::with_stream(tcp);
        c.slow = Some((chunk.max(1), pause));
        c
    }

    /// Connects and does the TLS handshake (implicit TLS), verifying the
    /// server's certificate against `ca` for 127.0.0.1; does not read the
    /// greeting.
    pub fn pop3s(port: u16, ca: &Path) -> io::Result<Client> {
        Client::plain(port).start_tls(ca, "127.0.0.1")
    }

    /// Changes to TLS (after `+OK` to STLS, or at once for implicit TLS).
    /// Panics if bytes came in the clear beyond what was read so far (a
    /// server must not send anything between `+OK` and the handshake).
    pub fn start_tls(mut self, ca: &Path, name: &str) -> io::Result<Client> {
        assert!(!self.tls, "already in TLS");
        assert!(
            self.pos == self.buf.len(),
            "cleartext bytes left before the handshake: {}",
            s(&self.buf[self.pos..])
        );
        let tls = handshake(self.tcp.try_clone().unwrap(), ca, name)?;
        self.io = Box::new(tls);
        self.tls = true;
        self.buf.clear();
        self.pos = 0;
        Ok(self)
    }

    /// STLS and the handshake: asserts the exact `+OK` reply.
    pub fn stls(mut self, ca: &Path) -> Client {
        self.cmd("STLS");
        assert_eq!(s(&self.line()), "+OK Begin TLS negotiation\r\n", "STLS");
        self.start_tls(ca, "127.0.0.1")
            .unwrap_or_else(|e| panic!("TLS handshake after STLS: {e}"))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().unwrap()
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn send(&mut self, data: &[u8]) {
        self.io
            .write_all(data)
            .and_then(|_| self.io.flush())
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Sends, and says whether it could.
    pub fn try_send(&mut self, data: &[u8]) -> bool {
        self.io
            .write_all(data)
            .and_then(|_| self.io.flush())
            .is_ok()
    }

    pub fn cmd(&mut self, command: &str) {
        self.send(format!("{command}\r\n").as_bytes());
    }

    /// Reads more; Ok(false) at the end of the stream.
    fn fill(&mut self) -> Result<bool, End> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        let mut want = chunk.len();
        if let Some((most, pause)) = self.slow {
            want = want.min(most);
            std::thread::sleep(pause);
        }
        loop {
            match self.io.read(&mut chunk[..want]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(End::Silent)
                }
                // A TLS stream cut without close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(End::Error(e.to_string())),
            }
        }
    }

    /// One line with its CRLF, or how the stream ended first.
    pub fn try_line(&mut self) -> Result<Vec<u8>, (End, Vec<u8>)> {
        let mut scanned = 0;
        loop {
            let unread = &self.buf[self.pos..];
            if let Some(i) = unread[scanned..].iter().position(|&b| b == b'\n') {
                let end = self.pos + scanned + i + 1;
                let line = self.buf[self.pos..end].to_vec();
                self.pos = end;
                return Ok(line);
            }
            scanned = unread.len();
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Err((End::Closed, self.buf[self.pos..].to_vec())),
                Err(end) => return Err((end, self.buf[self.pos..].to_vec())),
            }
        }
    }

    /// One line; panics if the stream ends or stays silent first.
    pub fn line(&mut self) -> Vec<u8> {
        self.try_line()
            .unwrap_or_else(|(end, got)| panic!("no line: {end:?}; got {:?}", s(&got)))
    }

    /// A multi-line reply (through `.\r\n` if it is `+OK`), raw.
    pub fn multi(&mut self) -> Vec<u8> {
        let mut out = self.line();
        if !out.starts_with(b"+OK") {
            return out;
        }
        loop {
            let line = self.try_line().unwrap_or_else(|(end, got)| {
                panic!(
                    "{end:?} inside a multi-line reply of {} bytes ending {:?} (then {:?})",
                    out.len(),
                    s(&out[out.len().saturating_sub(100)..]),
                    s(&got)
                )
            });
            out.extend_from_slice(&line);
            if line == b".\r\n" {
                return out;
            }
        }
    }

    /// USER/PASS, asserting `+OK` to both.
    pub fn login(&mut self, user: &str) {
        for command in [format!("USER {user}"), format!("PASS {PASSWORD}")] {
            self.cmd(&command);
            let reply = self.line();
            assert!(reply.starts_with(b"+OK"), "{command}: {}", s(&reply));
        }
    }

    /// Everything until the stream ends (or `within` of silence): the bytes
    /// and how it ended.
    pub fn read_to_end_within(&mut self, within: Duration) -> (Vec<u8>, End) {
        self.tcp.set_read_timeout(Some(within)).unwrap();
        let end = loop {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break End::Closed,
                Err(end) => break end,
            }
        };
        self.tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let rest = self.buf.split_off(self.pos);
        self.buf.clear();
        self.pos = 0;
        (rest, end)
    }

    /// QUIT, its `+OK`, and the end of the connection with nothing more.
    pub fn quit(mut self) {
        self.cmd("QUIT");
        let reply = self.line();
        assert!(reply.starts_with(b"+OK"), "QUIT: {}", s(&reply));
        let (rest, end) = self.read_to_end_within(Duration::from_secs(5));
        assert!(
            rest.is_empty() && end == End::Closed,
            "after QUIT: {end:?} {:?}",
            s(&rest)
        );
    }

    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}
