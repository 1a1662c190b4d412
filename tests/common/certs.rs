//! Test certificates, made with the openssl command line once per test
//! process (`certs()`), in a scratch directory of the harness.
//!
//! * `a`: CA "A" and a leaf it signed for `DNS:localhost, IP:127.0.0.1`.
//! * `b`: a second, unrelated CA "B" and its own leaf for the same names
//!   (certificate rotation; "untrusted CA" cases).
//! * `other_name`: a leaf signed by CA A whose only name is
//!   `DNS:other.example` (wrong-name cases).
//!
//! Leaves carry `basicConstraints=critical,CA:FALSE` and
//! `extendedKeyUsage=serverAuth` (rustls refuses a CA:TRUE certificate as an
//! end-entity certificate, which a bare `openssl req -x509` would make).
//! Keys are P-256 (quick to make), PKCS#8 PEM, unencrypted. Every file is
//! world-readable: Dovecot and the daemon read them under other users.

use super::scratch;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A CA and a leaf certificate it signed.
#[derive(Debug, Clone)]
pub struct CertPair {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The leaf certificate (PEM), alone: what a server presents.
    pub cert: PathBuf,
    /// The leaf's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

#[derive(Debug)]
pub struct Certs {
    pub dir: PathBuf,
    pub a: CertPair,
    pub b: CertPair,
    pub other_name: CertPair,
}

/// The certificates of this test process (made on first use).
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = scratch("certs");
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let ca_a = make_ca(&dir, "ca-a", "pop3filter test CA A");
        let ca_b = make_ca(&dir, "ca-b", "pop3filter test CA B");
        let names = "DNS:localhost,IP:127.0.0.1";
        let certs = Certs {
            a: make_leaf(&dir, &ca_a, "leaf-a", "localhost", names, 0x0a01),
            b: make_leaf(&dir, &ca_b, "leaf-b", "localhost", names, 0x0b01),
            other_name: make_leaf(
                &dir,
                &ca_a,
                "leaf-other",
                "other.example",
                "DNS:other.example",
                0x0a02,
            ),
            dir,
        };
        for entry in fs::read_dir(&certs.dir).unwrap().flatten() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644)).unwrap();
        }
        certs
    })
}

/// (certificate, key) of a self-signed CA.
fn make_ca(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        &key.display().to_string(),
        "-out",
        &cert.display().to_string(),
    ]);
    (cert, key)
}

fn make_leaf(
    dir: &Path,
    ca: &(PathBuf, PathBuf),
    name: &str,
    cn: &str,
    san: &str,
    serial: u32,
) -> CertPair {
    let p = |ext: &str| dir.join(format!("{name}.{ext}"));
    let (key, csr, cert, extfile) = (p("key"), p("csr"), p("pem"), p("ext"));
    fs::write(
        &extfile,
        format!(
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName={san}\n"
        ),
    )
    .unwrap();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &key.display().to_string(),
        "-out",
        &csr.display().to_string(),
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr.display().to_string(),
        "-CA",
        &ca.0.display().to_string(),
        "-CAkey",
        &ca.1.display().to_string(),
        "-set_serial",
        &serial.to_string(),
        "-days",
        "3650",
        "-extfile",
        &extfile.display().to_string(),
        "-out",
        &cert.display().to_string(),
    ]);
    CertPair {
        ca: ca.0.clone(),
        cert,
        key,
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (scripts/install-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
