//! Implicit TLS (POP3S) on the client side: `--tls CAFILE`.
//!
//! rustls with the ring provider, blocking I/O (`StreamOwned`). The server's certificate is
//! verified against the CA file only, for `--tls-name` (default: the `-H` host; an IP address
//! is checked against the certificate's IP addresses). Session resumption is off: every
//! session makes a full handshake, so that "new sessions per second" means new ones.

use crate::args::Config;
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

/// What `--tls`, `--tls-name` and `--tls-ports` asked for.
pub struct Tls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
    /// The ports that speak TLS; empty: every port.
    pub ports: Vec<u16>,
}

impl Tls {
    pub fn new(ca: &str, name: &str, ports: Vec<u16>) -> Result<Tls, String> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls {ca}: {e}"))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("--tls {ca}: {e}"))?;
            roots.add(cert).map_err(|e| format!("--tls {ca}: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("--tls {ca}: no certificate in the file"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("--tls-name {name}: {e}"))?;
        Ok(Tls {
            config: Arc::new(config),
            name,
            ports,
        })
    }

    fn speaks_tls(&self, addr: SocketAddr) -> bool {
        self.ports.is_empty() || self.ports.contains(&addr.port())
    }
}

/// A connection, in the clear or through TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Wraps a connected socket: through TLS when the configuration says so for `addr`, with
    /// the handshake done here (so that its failure is named as such).
    pub fn new(cfg: &Config, addr: SocketAddr, mut sock: TcpStream) -> Result<Stream, String> {
        let Some(tls) = cfg.tls.as_ref().filter(|t| t.speaks_tls(addr)) else {
            return Ok(Stream::Plain(sock));
        };
        let mut conn = ClientConnection::new(tls.config.clone(), tls.name.clone())
            .map_err(|e| format!("TLS: {e}"))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, sock))))
    }

    /// For TLS, the version, cipher suite and key exchange group, e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub fn describe(&self) -> Option<String> {
        let Stream::Tls(s) = self else { return None };
        let c = &s.conn;
        let version = c.protocol_version().map(|v| format!("{v:?}"));
        let suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        let group = c
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()));
        let parts: Vec<String> = [version, suite, group].into_iter().flatten().collect();
        Some(parts.join(" "))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
