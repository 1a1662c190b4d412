//! TLS configurations: the proxy's certificate for clients, and how the origin is checked.
//!
//! Built once at start (a bad file is an error naming it) and again on SIGHUP for the
//! certificate. Everything goes through rustls with the `ring` provider; certificate checks
//! are rustls's (webpki). The one exception is `--origin-insecure`, which skips the check of
//! the origin's certificate chain and name but still verifies the handshake signatures.

use crate::args::{OriginTls, TlsOptions};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The server configuration for clients, from a PEM chain and a PEM key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_path = key;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key_path.display()))?;
    // No early data (0-RTT): a replayed DELE is not acceptable. It is off unless asked for.
    debug_assert_eq!(config.max_early_data_size, 0);
    Ok(Arc::new(config))
}

/// How the origin's certificate is checked.
pub enum OriginTrust {
    /// The system's roots (honours `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
    /// Only the CAs in this PEM file.
    File(std::path::PathBuf),
    /// No check of the chain or the name (test origins); signatures are still verified.
    Insecure,
}

/// The client configuration toward the origin.
pub fn client_config(trust: &OriginTrust) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match trust {
        OriginTrust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCheck(provider())))
            .with_no_client_auth(),
        OriginTrust::System | OriginTrust::File(_) => {
            let mut roots = RootCertStore::empty();
            if let OriginTrust::File(path) = trust {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!("{}: no CA certificate in the file", path.display()));
                }
            } else {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    log::warn!("no system CA certificates found: origin TLS will fail to verify");
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// The name the origin's certificate must carry (and the SNI sent).
pub fn origin_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string()).map_err(|e| format!("{name}: {e}"))
}

/// `--origin-insecure`: any chain, any name; the handshake signatures are still checked.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS state of the daemon: what the loop lends to sessions.
#[derive(Default)]
pub struct Tls {
    /// For clients (POP3S and STLS); replaced on SIGHUP.
    pub server: Option<Arc<ServerConfig>>,
    /// Toward the origin, with the name its certificate must carry.
    pub origin: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// The mode toward the origin.
    pub origin_mode: OriginTls,
    /// No login on the plain listener before STLS.
    pub require: bool,
}

impl Tls {
    /// Reads the files the options name; an error names the file.
    pub fn load(opts: &TlsOptions, origin_host: &str) -> Result<Tls, String> {
        let server = match &opts.cert {
            Some((cert, key)) => Some(server_config(Path::new(cert), Path::new(key))?),
            None => None,
        };
        let origin = match opts.origin {
            OriginTls::None => None,
            OriginTls::Implicit | OriginTls::Starttls => {
                let trust = match (&opts.origin_ca, opts.origin_insecure) {
                    (_, true) => OriginTrust::Insecure,
                    (Some(file), false) => OriginTrust::File(file.into()),
                    (None, false) => OriginTrust::System,
                };
                let name = opts.origin_name.as_deref().unwrap_or(origin_host);
                Some((client_config(&trust)?, origin_name(name)?))
            }
        };
        Ok(Tls {
            server,
            origin,
            origin_mode: opts.origin,
            require: opts.require,
        })
    }

    /// SIGHUP: reads the certificate and key again; on error the old pair stays.
    pub fn reload(&mut self, opts: &TlsOptions) {
        let Some((cert, key)) = &opts.cert else {
            return;
        };
        match server_config(Path::new(cert), Path::new(key)) {
            Ok(config) => {
                self.server = Some(config);
                log::info!("SIGHUP: certificate {cert} and key {key} reloaded");
            }
            Err(e) => log::error!("SIGHUP: {e}; the certificate in force stays"),
        }
    }
}
