//! IP networks in CIDR notation, for `--proxy-from NETS`: only a peer inside one of these
//! networks may open with a PROXY header (see `proxy.rs`); the listener checks the TCP peer's
//! address with [`Cidr::contains`] when it accepts.
//!
//! A network is `address/prefix` or a bare address (one host: /32 or /128). Host bits past
//! the prefix are cleared, so `192.168.1.7/24` is `192.168.1.0/24`. IPv4 and IPv6 meet
//! through IPv4-mapped addresses: a dual-stack listener sees an IPv4 client as
//! `::ffff:10.1.2.3`, and that peer is inside `10.0.0.0/8`; likewise an IPv4 peer is inside
//! an IPv6 network when its mapped form is (`::/0` holds everyone).

use std::fmt;
use std::net::IpAddr;

/// One network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, or a bare address; the error names `text`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = |why: String| format!("bad network \"{text}\": {why}");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| bad(format!("\"{addr}\" is not an IP address")))?;
        let max = max_prefix(network);
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(bad(format!("prefix /{p} is longer than {max} bits"))),
                }
            }
            Some(p) => return Err(bad(format!("prefix \"{p}\" is not a number"))),
        };
        Ok(Cidr {
            network: mask(network, prefix),
            prefix,
        })
    }

    /// Parses a comma-separated list, spaces allowed around each network:
    /// `127.0.0.0/8, ::1`. An empty list or an empty element is an error.
    pub fn parse_list(text: &str) -> Result<Vec<Cidr>, String> {
        if text.trim().is_empty() {
            return Err("empty list of networks".into());
        }
        text.split(',')
            .map(|element| match element.trim() {
                "" => Err(format!("empty network in the list \"{text}\"")),
                element => Cidr::parse(element),
            })
            .collect()
    }

    /// Whether `ip` is inside this network, IPv4-mapped IPv6 and IPv4 being the same host.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        };
        mask(ip, self.prefix) == self.network
    }

    /// The network address, host bits cleared.
    #[cfg(test)]
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    #[cfg(test)]
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl fmt::Display for Cidr {
    /// `10.0.0.0/8`, always with the prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `ip` with every bit past the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(bits.into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_networks_and_bare_addresses() {
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("192.168.1.7/24").to_string(), "192.168.1.0/24");
        assert_eq!(net("127.0.0.1").to_string(), "127.0.0.1/32");
        assert_eq!(net("::1").to_string(), "::1/128");
        assert_eq!(net("2001:db8::ff/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("1.2.3.4/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("::/0").to_string(), "::/0");
        assert_eq!(net("10.0.0.0/08").prefix(), 8);
        assert_eq!(net("::ffff:10.0.0.0/104").network(), ip("::ffff:10.0.0.0"));
    }

    #[test]
    fn refuses_bad_networks() {
        for (text, error) in [
            (
                "10.0.0.0/33",
                "bad network \"10.0.0.0/33\": prefix /33 is longer than 32 bits",
            ),
            (
                "::/129",
                "bad network \"::/129\": prefix /129 is longer than 128 bits",
            ),
            (
                "::/300",
                "bad network \"::/300\": prefix /300 is longer than 128 bits",
            ),
            (
                "10.0.0.0/",
                "bad network \"10.0.0.0/\": prefix \"\" is not a number",
            ),
            (
                "10.0.0.0/+8",
                "bad network \"10.0.0.0/+8\": prefix \"+8\" is not a number",
            ),
            (
                "10.0.0.0/8/8",
                "bad network \"10.0.0.0/8/8\": prefix \"8/8\" is not a number",
            ),
            (
                "10.0.0.256/8",
                "bad network \"10.0.0.256/8\": \"10.0.0.256\" is not an IP address",
            ),
            (
                "10.0.0/8",
                "bad network \"10.0.0/8\": \"10.0.0\" is not an IP address",
            ),
            (
                "localhost",
                "bad network \"localhost\": \"localhost\" is not an IP address",
            ),
            ("/8", "bad network \"/8\": \"\" is not an IP address"),
            ("", "bad network \"\": \"\" is not an IP address"),
            (
                " 10.0.0.0/8",
                "bad network \" 10.0.0.0/8\": \" 10.0.0.0\" is not an IP address",
            ),
        ] {
            assert_eq!(Cidr::parse(text), Err(error.to_string()), "{text}");
        }
    }

    #[test]
    fn contains() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.0.0.0")));
        assert!(ten.contains(ip("10.255.255.255")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("9.255.255.255")));
        let host = net("192.0.2.1");
        assert!(host.contains(ip("192.0.2.1")));
        assert!(!host.contains(ip("192.0.2.2")));
        let all4 = net("0.0.0.0/0");
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let one = net("::1");
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
        assert!(!one.contains(ip("127.0.0.1")));
    }

    #[test]
    fn mapped_addresses_meet_ipv4_networks() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("::ffff:10.1.2.3")));
        assert!(!ten.contains(ip("::ffff:11.1.2.3")));
        // IPv4-compatible (deprecated) and NAT64 addresses are not IPv4 peers.
        assert!(!ten.contains(ip("::10.1.2.3")));
        assert!(!ten.contains(ip("64:ff9b::10.1.2.3")));
        assert!(net("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
        assert!(net("::ffff:10.0.0.0/104").contains(ip("10.9.9.9")));
        assert!(!net("::ffff:10.0.0.0/104").contains(ip("11.9.9.9")));
        assert!(net("::/0").contains(ip("1.2.3.4")));
        assert!(net("::ffff:127.0.0.1").contains(ip("127.0.0.1")));
    }

    #[test]
    fn lists() {
        let list = Cidr::parse_list("127.0.0.0/8, ::1").unwrap();
        assert_eq!(list, [net("127.0.0.0/8"), net("::1")]);
        let list = Cidr::parse_list(" 10.0.0.0/8 ,192.168.0.0/16,  ::1 ").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(Cidr::parse_list("::1"), Ok(vec![net("::1")]));
        for (text, error) in [
            ("", "empty list of networks"),
            ("  ", "empty list of networks"),
            ("10.0.0.0/8,", "empty network in the list \"10.0.0.0/8,\""),
            (
                "10.0.0.0/8,, ::1",
                "empty network in the list \"10.0.0.0/8,, ::1\"",
            ),
            (
                "127.0.0.0/8, 10.0.0.0/40",
                "bad network \"10.0.0.0/40\": prefix /40 is longer than 32 bits",
            ),
            (
                "127.0.0.0/8 ::1",
                "bad network \"127.0.0.0/8 ::1\": prefix \"8 ::1\" is not a number",
            ),
        ] {
            assert_eq!(Cidr::parse_list(text), Err(error.to_string()), "{text:?}");
        }
    }
}
