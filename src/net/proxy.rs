//! HAProxy's PROXY protocol (doc/proxy-protocol.txt): the header a load balancer sends before
//! the client's first byte to say who the client really is, and the header pop3filter sends
//! the origin with `--origin-proxy-protocol`.
//!
//! Two versions exist; the first bytes tell them apart, and anything else is refused at the
//! first byte that cannot start either signature:
//!
//! ```text
//! v1, one text line of at most 107 bytes including the CRLF:
//!   PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n
//!   PROXY TCP6 2001:db8::1 2001:db8::2 56324 110\r\n
//!   PROXY UNKNOWN[ anything]\r\n                        (use the TCP peer)
//!
//! v2, binary:
//!   +--------------------------------+-------+-----+--------+-----------------+------+
//!   | \r\n\r\n\0\r\nQUIT\n (12 bytes) |ver_cmd| fam | len BE | addresses       | TLVs |
//!   +--------------------------------+-------+-----+--------+-----------------+------+
//!    ver_cmd 0x21 PROXY, 0x20 LOCAL   fam 0x11 TCP4: 4+4+2+2, 0x21 TCP6: 16+16+2+2,
//!                                     0x00 UNSPEC; UDP and UNIX exist too.
//!    len counts everything after the first 16 bytes: addresses and TLVs.
//! ```
//!
//! [`HeaderReader`] is a push parser: the session feeds it the client's bytes as they arrive,
//! split anywhere, and it takes exactly the header and not one byte more, since what follows
//! (a POP3 command, a TLS ClientHello) belongs to the session. It holds at most
//! [`V1_MAX`] bytes: a v1 line, or the 16 fixed bytes and up to 36 of addresses of a v2 header;
//! TLVs are counted and skipped, never stored. A v2 header longer than [`V2_MAX`] bytes in all
//! is refused.
//!
//! What the session does with the outcome: on [`Header::Proxied`] it takes `source` as the
//! client's address (for logs and metrics) instead of the TCP peer; on [`Header::Local`] it
//! keeps the TCP peer; on [`Progress::Invalid`] it closes the connection without a word, as
//! the specification asks. Only peers inside `--proxy-from NETS` get a reader at all (see
//! `cidr.rs`); everyone else starts straight with the POP3 greeting.
//!
//! [`v2`] builds the header for the origin; the caller writes it in one single write, before
//! any other byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 line, CRLF included (the specification's limit).
pub const V1_MAX: usize = 107;

/// The longest v2 header accepted: 16 fixed bytes, addresses and TLVs.
pub const V2_MAX: usize = 1024;

const V1_SIGNATURE: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// The signature, ver_cmd, fam and the two length bytes.
const V2_FIXED: usize = 16;
const V4_BLOCK: usize = 4 + 4 + 2 + 2;
const V6_BLOCK: usize = 16 + 16 + 2 + 2;
const UNIX_BLOCK: usize = 108 + 108;

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The proxy relays a TCP connection from `source` to `destination`.
    Proxied {
        /// The client, as the proxy saw it.
        source: SocketAddr,
        /// The address the client connected to, on the proxy.
        destination: SocketAddr,
    },
    /// Use the TCP peer: a v2 LOCAL command (health checks), v1 `UNKNOWN`, or v2 PROXY with
    /// an address family that is not TCP over IPv4 or IPv6 (UNSPEC, UDP, UNIX).
    Local,
}

/// What a call to [`HeaderReader::feed`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All the bytes given were taken; the header is not complete yet.
    NeedMore,
    /// The header ended; the bytes after the consumed count are the session's.
    Done(Header),
    /// Not a valid PROXY header, for this reason: close the connection.
    Invalid(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Matching the first bytes against both signatures.
    Signature,
    /// After `PROXY `: the rest of the line, up to LF.
    V1,
    /// After the v2 signature: ver_cmd, fam, length.
    V2Fixed,
    /// Keeping the address block (`keep` bytes); `rest` bytes of TLVs follow it.
    V2Addresses { keep: usize, rest: usize },
    /// Skipping `left` bytes (TLVs, or an address block that is not used) before `header`.
    V2Skip { left: usize, header: Header },
    /// The header ended or was refused: this is the answer from now on.
    Finished(Progress),
}

/// The push parser for one PROXY header, v1 or v2.
#[derive(Debug, Clone)]
pub struct HeaderReader {
    buf: [u8; V1_MAX],
    len: usize,
    phase: Phase,
}

impl Default for HeaderReader {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderReader {
    /// A reader waiting for the first byte.
    pub fn new() -> Self {
        HeaderReader {
            buf: [0; V1_MAX],
            len: 0,
            phase: Phase::Signature,
        }
    }

    /// Takes bytes of the header; returns how many it took and where it stopped. On `Done` the
    /// count ends exactly at the header's last byte; on `Invalid` it ends at the byte that
    /// gave the header away. Once finished, every call returns `(0, the same outcome)`.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Progress) {
        let mut used = 0;
        loop {
            let step = match self.phase {
                Phase::Finished(outcome) => return (0, outcome),
                _ if used == input.len() => return (used, Progress::NeedMore),
                Phase::V2Skip { left, header } => {
                    let n = left.min(input.len() - used);
                    used += n;
                    self.skip_then(left - n, header)
                }
                _ => {
                    used += 1;
                    self.byte(input[used - 1])
                }
            };
            if step != Progress::NeedMore {
                self.phase = Phase::Finished(step);
                return (used, step);
            }
        }
    }

    /// Whether the header ended or was refused.
    #[cfg(test)]
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished(_))
    }

    /// One byte in any phase that keeps its bytes; `NeedMore` while the header goes on.
    fn byte(&mut self, byte: u8) -> Progress {
        // No phase keeps more than V1_MAX bytes: v1 stops at V1_MAX, v2 at 16 + 36.
        self.buf[self.len] = byte;
        self.len += 1;
        match self.phase {
            Phase::Signature => self.signature(),
            Phase::V1 => self.v1_byte(byte),
            Phase::V2Fixed if self.len == V2_FIXED => self.v2_fixed(),
            Phase::V2Addresses { keep, rest } if self.len == V2_FIXED + keep => {
                let header = self.v2_addresses();
                self.skip_then(rest, header)
            }
            _ => Progress::NeedMore,
        }
    }

    fn signature(&mut self) -> Progress {
        let held = &self.buf[..self.len];
        if held == V1_SIGNATURE {
            self.phase = Phase::V1;
        } else if held == V2_SIGNATURE {
            self.phase = Phase::V2Fixed;
        } else if !V1_SIGNATURE.starts_with(held) && !V2_SIGNATURE.starts_with(held) {
            return Progress::Invalid("not a PROXY header");
        }
        Progress::NeedMore
    }

    fn v1_byte(&mut self, byte: u8) -> Progress {
        let before = self.buf[self.len - 2];
        if byte == b'\n' {
            if before != b'\r' {
                return Progress::Invalid("v1 line does not end with CRLF");
            }
            return parse_v1(&self.buf[V1_SIGNATURE.len()..self.len - 2]);
        }
        if before == b'\r' {
            return Progress::Invalid("v1 line has a CR before its end");
        }
        if byte != b'\r' && !(b' '..=b'~').contains(&byte) {
            return Progress::Invalid("v1 line has a byte that is not printable");
        }
        if self.len == V1_MAX {
            return Progress::Invalid("v1 line has no CRLF within 107 bytes");
        }
        Progress::NeedMore
    }

    /// The 16 fixed bytes are in: decides what to keep and what to skip.
    fn v2_fixed(&mut self) -> Progress {
        let (ver_cmd, fam) = (self.buf[12], self.buf[13]);
        let rest = usize::from(u16::from_be_bytes([self.buf[14], self.buf[15]]));
        if ver_cmd >> 4 != 2 {
            return Progress::Invalid("v2 version is not 2");
        }
        if V2_FIXED + rest > V2_MAX {
            return Progress::Invalid("v2 header too long");
        }
        match ver_cmd & 0x0f {
            // LOCAL: the family is ignored and the whole block discarded.
            0x0 => return self.skip_then(rest, Header::Local),
            0x1 => {}
            _ => return Progress::Invalid("v2 command is neither LOCAL nor PROXY"),
        }
        let (block, keep) = match fam {
            0x00 => (0, false),
            0x11 => (V4_BLOCK, true),
            0x21 => (V6_BLOCK, true),
            0x12 => (V4_BLOCK, false),
            0x22 => (V6_BLOCK, false),
            0x31 | 0x32 => (UNIX_BLOCK, false),
            _ => return Progress::Invalid("v2 address family is not defined"),
        };
        if rest < block {
            return Progress::Invalid("v2 length is shorter than the address block");
        }
        if !keep {
            return self.skip_then(rest, Header::Local);
        }
        self.phase = Phase::V2Addresses {
            keep: block,
            rest: rest - block,
        };
        Progress::NeedMore
    }

    /// The TCP address block is in: v4 or v6, by its size.
    fn v2_addresses(&self) -> Header {
        let block = &self.buf[V2_FIXED..self.len];
        let (ips, ports) = block.split_at(block.len() - 4);
        let (src, dst) = ips.split_at(ips.len() / 2);
        let ip = |b: &[u8]| -> IpAddr {
            match <[u8; 4]>::try_from(b) {
                Ok(v4) => Ipv4Addr::from(v4).into(),
                Err(_) => Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")).into(),
            }
        };
        Header::Proxied {
            source: SocketAddr::new(ip(src), u16::from_be_bytes([ports[0], ports[1]])),
            destination: SocketAddr::new(ip(dst), u16::from_be_bytes([ports[2], ports[3]])),
        }
    }

    /// `header` once `left` more bytes are skipped: done at once when there are none.
    fn skip_then(&mut self, left: usize, header: Header) -> Progress {
        if left == 0 {
            return Progress::Done(header);
        }
        self.phase = Phase::V2Skip { left, header };
        Progress::NeedMore
    }
}

/// The v1 line between `PROXY ` and CRLF, all of it printable ASCII.
fn parse_v1(line: &[u8]) -> Progress {
    // Printable ASCII, as `v1_byte` checked.
    let line = std::str::from_utf8(line).expect("ASCII");
    let (proto, rest) = line.split_once(' ').unwrap_or((line, ""));
    let v6 = match proto {
        // The receiver ignores whatever follows UNKNOWN.
        "UNKNOWN" => return Progress::Done(Header::Local),
        "TCP4" => false,
        "TCP6" => true,
        _ => return Progress::Invalid("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    let fields: Vec<&str> = rest.split(' ').collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Progress::Invalid("v1 line does not have 4 fields split by single spaces");
    };
    let ip = |s: &str| -> Option<IpAddr> {
        match v6 {
            false => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            true => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    };
    let (Some(src), Some(dst)) = (ip(src), ip(dst)) else {
        return Progress::Invalid("v1 address is not one of the protocol's family");
    };
    let (Some(sport), Some(dport)) = (port(sport), port(dport)) else {
        return Progress::Invalid("v1 port is not a number 0..65535");
    };
    Progress::Done(Header::Proxied {
        source: SocketAddr::new(src, sport),
        destination: SocketAddr::new(dst, dport),
    })
}

/// A decimal port: digits only, no sign, no leading zero.
fn port(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

/// A v2 PROXY header saying the connection goes from `source` to `destination`, for the
/// origin. TCP4 when both are IPv4; otherwise TCP6, an IPv4 address written as IPv4-mapped
/// IPv6. Flow info and scope ids are not carried. The caller writes it in one single write.
pub fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(V2_FIXED + V6_BLOCK);
    out.extend_from_slice(V2_SIGNATURE);
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            out.push(0x11);
            out.extend_from_slice(&(V4_BLOCK as u16).to_be_bytes());
            out.extend_from_slice(&src.octets());
            out.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&(V6_BLOCK as u16).to_be_bytes());
            out.extend_from_slice(&v6(src).octets());
            out.extend_from_slice(&v6(dst).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
