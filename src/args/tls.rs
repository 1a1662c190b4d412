//! The TLS options of the command line (long options only), and what they parse into.

use super::port;
use getopts::{Matches, Options};

/// How the proxy talks to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginTls {
    /// Cleartext.
    #[default]
    None,
    /// TLS from the first byte (POP3S, port 995).
    Implicit,
    /// Cleartext greeting, then `STLS` and TLS; never a fall back to cleartext.
    Starttls,
}

/// The TLS options as given (files are read when the daemon starts, and on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// The proxy's certificate chain and key (PEM), for clients.
    pub cert: Option<(String, String)>,
    /// Port of the implicit-TLS (POP3S) listener.
    pub pop3s_port: Option<u16>,
    /// No login on the plain listener before STLS.
    pub require: bool,
    /// TLS toward the origin.
    pub origin: OriginTls,
    /// The only CAs the origin's certificate may chain to (default: the system's).
    pub origin_ca: Option<String>,
    /// The name checked in the origin's certificate and sent as SNI (default: the host).
    pub origin_name: Option<String>,
    /// Skip the check of the origin's certificate.
    pub origin_insecure: bool,
}

/// Declares the options.
pub fn options(o: &mut Options) {
    o.optopt(
        "",
        "tls-cert",
        "certificate chain for clients (PEM)",
        "FILE",
    );
    o.optopt("", "tls-key", "private key of --tls-cert (PEM)", "FILE");
    o.optopt(
        "",
        "pop3s-port",
        "port of an implicit-TLS (POP3S) listener, beside the plain one",
        "PORT",
    );
    o.optflag(
        "",
        "require-tls",
        "on the plain listener, no login before STLS",
    );
    o.optopt(
        "",
        "origin-tls",
        "TLS to the origin: none (default), implicit or starttls",
        "MODE",
    );
    o.optopt(
        "",
        "origin-ca",
        "trust only these CAs for the origin (PEM; default: the system's)",
        "FILE",
    );
    o.optopt(
        "",
        "origin-name",
        "name the origin's certificate must carry (default: the origin host)",
        "NAME",
    );
    o.optflag(
        "",
        "origin-insecure",
        "do not verify the origin's certificate (test origins only)",
    );
}

/// Reads the options, checking that they go together.
pub fn parse(m: &Matches) -> Result<TlsOptions, String> {
    let cert = match (m.opt_str("tls-cert"), m.opt_str("tls-key")) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => return Err("--tls-cert needs --tls-key".into()),
        (None, Some(_)) => return Err("--tls-key needs --tls-cert".into()),
    };
    let pop3s_port = m
        .opt_str("pop3s-port")
        .map(|p| port(&p, "POP3S port"))
        .transpose()?;
    let require = m.opt_present("require-tls");
    if cert.is_none() && (pop3s_port.is_some() || require) {
        return Err("--pop3s-port and --require-tls need --tls-cert and --tls-key".into());
    }
    let origin = match m.opt_str("origin-tls").as_deref() {
        None | Some("none") => OriginTls::None,
        Some("implicit") => OriginTls::Implicit,
        Some("starttls") => OriginTls::Starttls,
        Some(other) => {
            return Err(format!(
                "invalid --origin-tls '{other}': expected none, implicit or starttls"
            ))
        }
    };
    let origin_ca = m.opt_str("origin-ca");
    let origin_name = m.opt_str("origin-name");
    let origin_insecure = m.opt_present("origin-insecure");
    if origin == OriginTls::None
        && (origin_ca.is_some() || origin_name.is_some() || origin_insecure)
    {
        return Err("--origin-ca, --origin-name and --origin-insecure need --origin-tls".into());
    }
    if origin_insecure && origin_ca.is_some() {
        return Err("--origin-insecure and --origin-ca exclude each other".into());
    }
    Ok(TlsOptions {
        cert,
        pop3s_port,
        require,
        origin,
        origin_ca,
        origin_name,
        origin_insecure,
    })
}

#[cfg(test)]
mod tests {
    use crate::args::{parse, Command, OriginTls, TlsOptions};

    fn tls(args: &[&str]) -> Result<TlsOptions, String> {
        let argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&argv)? {
            Command::Run(c) => Ok(c.tls),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_by_default() {
        assert_eq!(tls(&["h"]).unwrap(), TlsOptions::default());
    }

    #[test]
    fn client_side() {
        let t = tls(&[
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--pop3s-port",
            "995",
            "--require-tls",
            "h",
        ])
        .unwrap();
        assert_eq!(t.cert, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!(t.pop3s_port, Some(995));
        assert!(t.require);
        assert!(tls(&["--tls-cert", "c", "h"])
            .unwrap_err()
            .contains("--tls-key"));
        assert!(tls(&["--tls-key", "k", "h"])
            .unwrap_err()
            .contains("--tls-cert"));
        assert!(tls(&["--pop3s-port", "995", "h"]).is_err());
        assert!(tls(&["--require-tls", "h"]).is_err());
        let bad_port = [
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--pop3s-port",
            "0",
            "h",
        ];
        assert!(tls(&bad_port).is_err());
    }

    #[test]
    fn origin_side() {
        assert_eq!(
            tls(&["--origin-tls", "implicit", "h"]).unwrap().origin,
            OriginTls::Implicit
        );
        let t = tls(&[
            "--origin-tls",
            "starttls",
            "--origin-ca",
            "ca",
            "--origin-name",
            "n",
            "h",
        ])
        .unwrap();
        assert_eq!(t.origin, OriginTls::Starttls);
        assert_eq!(t.origin_ca.as_deref(), Some("ca"));
        assert_eq!(t.origin_name.as_deref(), Some("n"));
        assert!(tls(&["--origin-tls", "none", "h"]).unwrap().origin == OriginTls::None);
        assert!(tls(&["--origin-tls", "yes", "h"])
            .unwrap_err()
            .contains("--origin-tls"));
        assert!(
            tls(&["--origin-ca", "ca", "h"]).is_err(),
            "needs --origin-tls"
        );
        assert!(
            tls(&["--origin-insecure", "h"]).is_err(),
            "needs --origin-tls"
        );
        let both = [
            "--origin-tls",
            "implicit",
            "--origin-insecure",
            "--origin-ca",
            "c",
            "h",
        ];
        assert!(tls(&both).is_err());
    }
}
