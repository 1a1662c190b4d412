use super::*;

const POP3: &[u8] = b"USER bob\r\n";

/// Feeds `input` split at `cut`; returns (bytes taken, outcome).
fn split(input: &[u8], cut: usize) -> (usize, Progress) {
    let mut r = HeaderReader::new();
    let (mut taken, mut last) = (0, Progress::NeedMore);
    for part in [&input[..cut], &input[cut..]] {
        let (n, p) = r.feed(part);
        assert!(n <= part.len());
        taken += n;
        last = p;
    }
    (taken, last)
}

/// Feeds `input` one byte at a time until the reader finishes.
fn bytewise(input: &[u8]) -> (usize, Progress) {
    let mut r = HeaderReader::new();
    let mut taken = 0;
    for b in input {
        let (n, p) = r.feed(std::slice::from_ref(b));
        taken += n;
        if p != Progress::NeedMore {
            return (taken, p);
        }
    }
    (taken, Progress::NeedMore)
}

/// Every split, and one byte at a time, give `len` bytes taken and `want`.
fn every_split(input: &[u8], len: usize, want: Progress) {
    for cut in 0..=input.len() {
        assert_eq!(split(input, cut), (len, want), "split at {cut}: {input:?}");
    }
    assert_eq!(bytewise(input), (len, want), "byte at a time: {input:?}");
}

/// A header followed by the POP3 bytes: the reader takes the header, nothing more.
fn accepts(header: &[u8], want: Header) {
    let input = [header, POP3].concat();
    every_split(&input, header.len(), Progress::Done(want));
}

fn refuses(input: &[u8], reason: &'static str) {
    let (len, p) = split(input, input.len());
    assert_eq!(p, Progress::Invalid(reason), "{input:?}");
    every_split(input, len, p);
}

fn proxied(source: &str, destination: &str) -> Header {
    Header::Proxied {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// A v2 header: signature, ver_cmd, fam, the length of `body`, `body`.
fn v2_raw(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[ver_cmd, fam]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

const V4_BODY: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0, 110];

fn v6_body() -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    [&src.octets()[..], &dst.octets(), &[0xdc, 0x04, 0, 110]].concat()
}

#[test]
fn v1_tcp4_and_tcp6() {
    accepts(
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n",
        proxied("192.0.2.1:56324", "198.51.100.2:110"),
    );
    accepts(
        b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 0 65535\r\n",
        proxied("[2001:db8::1]:0", "[::ffff:10.0.0.1]:65535"),
    );
}

#[test]
fn v1_unknown_is_local() {
    accepts(b"PROXY UNKNOWN\r\n", Header::Local);
    accepts(b"PROXY UNKNOWN whatever  follows\r\n", Header::Local);
}

#[test]
fn v1_longest_line_is_107_bytes() {
    let ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY UNKNOWN {ff} {ff} 65535 65535\r\n");
    assert_eq!(line.len(), V1_MAX);
    accepts(line.as_bytes(), Header::Local);
    let long = format!("PROXY UNKNOWN {ff} {ff} 65535 655350\r\n");
    refuses(long.as_bytes(), "v1 line has no CRLF within 107 bytes");
    assert_eq!(split(long.as_bytes(), 0).0, V1_MAX);
}

#[test]
fn v1_malformed() {
    let fields = "v1 line does not have 4 fields split by single spaces";
    refuses(b"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n", fields);
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n", fields);
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", fields);
    let proto = "v1 protocol is not TCP4, TCP6 or UNKNOWN";
    refuses(b"PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n", proto);
    refuses(b"PROXY \r\n", proto);
    refuses(b"PROXY TCP4\r\n", fields);
    refuses(b"PROXY TCP4 \r\n", fields);
    let family = "v1 address is not one of the protocol's family";
    refuses(b"PROXY TCP4 ::1 198.51.100.2 1 2\r\n", family);
    refuses(b"PROXY TCP6 192.0.2.1 ::1 1 2\r\n", family);
    refuses(b"PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n", family);
    refuses(b"PROXY TCP4 010.0.2.1 198.51.100.2 1 2\r\n", family);
    refuses(b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", family);
    let port = "v1 port is not a number 0..65535";
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n", port);
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 65536\r\n", port);
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 080\r\n", port);
    refuses(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 -2\r\n", port);
    refuses(
        b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "v1 protocol is not TCP4, TCP6 or UNKNOWN",
    );
    refuses(
        b"PROXY UNKNOWNX\r\n",
        "v1 protocol is not TCP4, TCP6 or UNKNOWN",
    );
    refuses(
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
        "v1 line does not end with CRLF",
    );
    refuses(b"PROXY TCP4\r 1\r\n", "v1 line has a CR before its end");
    refuses(
        b"PROXY TCP4\t192.0.2.1\r\n",
        "v1 line has a byte that is not printable",
    );
    // No CRLF at all: refused at byte 107, not waited for forever.
    let endless = [b"PROXY TCP4 ".as_slice(), &[b'1'; 200]].concat();
    refuses(&endless, "v1 line has no CRLF within 107 bytes");
    assert_eq!(split(&endless, 0).0, V1_MAX);
}

#[test]
fn not_a_proxy_header_is_refused_at_the_first_wrong_byte() {
    for (input, at) in [
        (POP3, 1),
        (b"\x16\x03\x01\x02\x00".as_slice(), 1), // a TLS ClientHello
        (b"PROXY".as_slice(), 0),                // a prefix: still waiting
        (b"PROXX TCP4", 5),
        (b"proxy TCP4", 1),
        (b"\r\n\r\n\0\r\nQUIX\n", 11),
        (b"\r\n\r\nPROXY", 5),
        (b"", 0),
    ] {
        let want = if at == 0 {
            Progress::NeedMore
        } else {
            Progress::Invalid("not a PROXY header")
        };
        let len = if at == 0 { input.len() } else { at };
        every_split(input, len, want);
    }
}

#[test]
fn v2_tcp4_and_tcp6() {
    accepts(
        &v2_raw(0x21, 0x11, &V4_BODY),
        proxied("192.0.2.1:56324", "198.51.100.2:110"),
    );
    accepts(
        &v2_raw(0x21, 0x21, &v6_body()),
        proxied("[2001:db8::1]:56324", "[2001:db8::2]:110"),
    );
}

#[test]
fn v2_tlvs_are_skipped() {
    // PP2_TYPE_ALPN "pop3", PP2_TYPE_NOOP of 3, PP2_TYPE_AUTHORITY "mail.example".
    let tlvs = b"\x01\x00\x04pop3\x04\x00\x03\0\0\0\x02\x00\x0cmail.example";
    let want = proxied("192.0.2.1:56324", "198.51.100.2:110");
    accepts(&v2_raw(0x21, 0x11, &[&V4_BODY[..], tlvs].concat()), want);
    let want = proxied("[2001:db8::1]:56324", "[2001:db8::2]:110");
    accepts(&v2_raw(0x21, 0x21, &[&v6_body()[..], tlvs].concat()), want);
    // The longest header accepted: TLVs up to V2_MAX.
    let body = [&V4_BODY[..], &[0; V2_MAX - V2_FIXED - V4_BLOCK]].concat();
    let header = v2_raw(0x21, 0x11, &body);
    assert_eq!(header.len(), V2_MAX);
    accepts(&header, proxied("192.0.2.1:56324", "198.51.100.2:110"));
}

#[test]
fn v2_local_and_other_families_use_the_peer() {
    accepts(&v2_raw(0x20, 0x00, b""), Header::Local);
    // LOCAL ignores the family and whatever the block holds.
    accepts(&v2_raw(0x20, 0x11, &V4_BODY), Header::Local);
    accepts(&v2_raw(0x20, 0x77, b"xyz"), Header::Local);
    accepts(&v2_raw(0x21, 0x00, b""), Header::Local);
    accepts(&v2_raw(0x21, 0x00, b"\x04\x00\x00"), Header::Local);
    accepts(&v2_raw(0x21, 0x12, &V4_BODY), Header::Local);
    accepts(&v2_raw(0x21, 0x22, &v6_body()), Header::Local);
    accepts(&v2_raw(0x21, 0x31, &[b'/'; 216]), Header::Local);
    accepts(&v2_raw(0x21, 0x32, &[b'/'; 220]), Header::Local);
}

#[test]
fn v2_malformed() {
    let short = "v2 length is shorter than the address block";
    refuses(&v2_raw(0x21, 0x11, &V4_BODY[..11]), short);
    refuses(&v2_raw(0x21, 0x21, &V4_BODY), short);
    refuses(&v2_raw(0x21, 0x31, &[0; 215]), short);
    refuses(&v2_raw(0x21, 0x11, b""), short);
    // Refused on the length alone, before any of the TLVs arrive.
    let long = v2_raw(0x21, 0x11, &[0; V2_MAX - V2_FIXED + 1]);
    refuses(&long, "v2 header too long");
    assert_eq!(split(&long, long.len()).0, V2_FIXED);
    let huge = [V2_SIGNATURE, b"\x21\x11\xff\xff"].concat();
    refuses(&huge, "v2 header too long");
    refuses(&v2_raw(0x11, 0x11, &V4_BODY), "v2 version is not 2");
    refuses(
        &v2_raw(0x22, 0x11, &V4_BODY),
        "v2 command is neither LOCAL nor PROXY",
    );
    refuses(
        &v2_raw(0x21, 0x41, &V4_BODY),
        "v2 address family is not defined",
    );
    refuses(
        &v2_raw(0x21, 0x13, &V4_BODY),
        "v2 address family is not defined",
    );
}

#[test]
fn incomplete_headers_take_everything_and_wait() {
    for full in [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n".to_vec(),
        v2_raw(0x21, 0x11, &[&V4_BODY[..], b"\x04\x00\x03abc"].concat()),
    ] {
        for cut in 0..full.len() {
            every_split(&full[..cut], cut, Progress::NeedMore);
        }
    }
}

#[test]
fn a_finished_reader_takes_nothing_more() {
    let mut r = HeaderReader::new();
    let want = Progress::Done(Header::Local);
    assert_eq!(r.feed(b"PROXY UNKNOWN\r\nUSER"), (15, want));
    assert!(r.is_finished());
    assert_eq!(r.feed(b"USER bob\r\n"), (0, want));
    let mut r = HeaderReader::new();
    assert_eq!(r.feed(POP3), (1, Progress::Invalid("not a PROXY header")));
    assert_eq!(
        r.feed(b"PROXY"),
        (0, Progress::Invalid("not a PROXY header"))
    );
}

#[test]
fn encoder_round_trips() {
    for (src, dst, want_dst, len) in [
        (
            "192.0.2.1:56324",
            "198.51.100.2:110",
            "198.51.100.2:110",
            28,
        ),
        (
            "[2001:db8::1]:1",
            "[2001:db8::2]:995",
            "[2001:db8::2]:995",
            52,
        ),
        (
            "[2001:db8::1]:0",
            "10.0.0.1:65535",
            "[::ffff:10.0.0.1]:65535",
            52,
        ),
    ] {
        let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
        let bytes = v2(src, dst);
        assert_eq!(bytes.len(), len);
        let want = Header::Proxied {
            source: src,
            destination: want_dst.parse().unwrap(),
        };
        accepts(&bytes, want);
    }
    // An IPv4 source beside an IPv6 destination is mapped too.
    let bytes = v2("10.1.2.3:5".parse().unwrap(), "[::1]:110".parse().unwrap());
    accepts(&bytes, proxied("[::ffff:10.1.2.3]:5", "[::1]:110"));
    assert_eq!(&bytes[12..16], b"\x21\x21\x00\x24");
}

#[test]
fn random_bytes_at_random_splits() {
    // Whatever the bytes and however they are cut, the reader never panics, never takes more
    // than it is given, and ends where it ends when it sees them whole.
    let mut rng = crate::testutil::Rng::new(0x5eed_0012);
    let seeds = [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 110\r\n".to_vec(),
        b"PROXY TCP6 ::1 ::2 1 2\r\nPROXY UNKNOWN\r\n".to_vec(),
        v2_raw(0x21, 0x11, &[&V4_BODY[..], b"\x04\x00\x01z"].concat()),
        v2_raw(0x21, 0x21, &v6_body()),
        v2_raw(0x20, 0x00, b""),
    ];
    let mut seen = [0; 3];
    for case in 0..5000 {
        let input = match case % 3 {
            // A valid header with a few bytes changed, cut short or lengthened.
            0 | 1 => {
                let mut v = seeds[rng.below(seeds.len())].clone();
                for _ in 0..rng.below(3) {
                    let at = rng.below(v.len());
                    v[at] = rng.bytes(1, b"PROXY TCP46UNKOWN.:0123456789 \r\n\0\x21\x11")[0];
                }
                if rng.below(2) == 0 {
                    v.truncate(rng.below(v.len() + 1));
                }
                let tail = rng.below(8);
                v.extend(rng.bytes(tail, b"x\r\n"));
                v
            }
            _ => {
                let len = rng.below(80);
                rng.bytes(len, b"PROXY TCP4 1.2:\r\n\0QUIT\x21\x11\x00")
            }
        };
        let whole = split(&input, input.len());
        let mut r = HeaderReader::new();
        let (mut taken, mut last) = (0, Progress::NeedMore);
        for chunk in rng.chunks(&input, 9) {
            let (n, p) = r.feed(chunk);
            assert!(n <= chunk.len(), "case {case}");
            taken += n;
            last = p;
        }
        assert_eq!((taken, last), whole, "case {case}: {input:?}");
        assert!(taken <= V2_MAX, "case {case}");
        match last {
            Progress::NeedMore => seen[0] += 1,
            Progress::Done(_) => {
                seen[1] += 1;
                // Done means the header was complete: a prefix of it is not.
                assert_eq!(split(&input[..taken - 1], 0).1, Progress::NeedMore);
            }
            Progress::Invalid(_) => seen[2] += 1,
        }
    }
    // The inputs reach every outcome, not just the first refusal.
    assert!(seen.iter().all(|&n| n > 300), "{seen:?}");
}
