//! `--metrics [ADDR:]PORT`: where the HTTP metrics endpoint listens (none without it).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Registers the option.
pub fn options(o: &mut getopts::Options) {
    o.optopt(
        "",
        "metrics",
        "serve Prometheus metrics over HTTP at ADDR:PORT (ADDR 127.0.0.1 when only a PORT \
         is given; IPv6 as [::1]:PORT) (default: off)",
        "[ADDR:]PORT",
    );
}

/// The endpoint's address, if asked for.
pub fn parse(m: &getopts::Matches) -> Result<Option<SocketAddr>, String> {
    m.opt_str("metrics").map(|text| address(&text)).transpose()
}

fn address(text: &str) -> Result<SocketAddr, String> {
    let err = || {
        format!("invalid --metrics '{text}': expected PORT, IPv4:PORT or [IPv6]:PORT, port 1-65535")
    };
    let addr = match text.parse::<u16>() {
        Ok(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        Err(_) => text.parse::<SocketAddr>().map_err(|_| err())?,
    };
    match addr.port() {
        0 => Err(err()),
        _ => Ok(addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let ok = [
            ("9100", "127.0.0.1:9100"),
            ("0.0.0.0:9100", "0.0.0.0:9100"),
            ("10.1.2.3:80", "10.1.2.3:80"),
            ("[::1]:9100", "[::1]:9100"),
            ("[::]:9100", "[::]:9100"),
        ];
        for (text, want) in ok {
            assert_eq!(address(text), Ok(want.parse().unwrap()), "{text}");
        }
        for bad in [
            "",
            "0",
            "70000",
            "::1:9100",
            "localhost:9100",
            "1.2.3.4",
            ":9100",
            "[::1]",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }
}
