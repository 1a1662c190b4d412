//! SPCP frames on the wire (see docs/spcp.md).
//!
//! Request: `CMD` (1 byte), `NARGS` (1 byte), then NARGS times `ARGLEN` (1 byte) and ARGLEN
//! bytes. Response: `STATUS` (1 byte), `LEN` (1 byte), LEN bytes of ASCII. Integers inside
//! arguments are big-endian.
//!
//! [`decode`] reads one request from the front of whatever bytes have arrived: it returns
//! `None` until the frame is complete, so a frame split at any byte and several frames in one
//! read both work. A frame is at most [`MAX_REQUEST`] bytes, so a connection's input never needs
//! more. This file is shared by the daemon and `spcpctl` (which includes it by path), and each
//! uses its own half.
#![allow(dead_code)]

/// Largest possible request: 2 + 255 × (1 + 255) bytes.
pub const MAX_REQUEST: usize = 2 + 255 * 256;

/// Command codes.
pub mod cmd {
    /// Log in: the user name.
    pub const USER: u8 = 0x00;
    /// Log in: the password.
    pub const PASS: u8 = 0x01;
    /// POP3 client sessions open now.
    pub const CONNECTIONS: u8 = 0x02;
    /// Bytes written to clients and origins since start.
    pub const BYTES: u8 = 0x03;
    /// POP3 connections accepted since start.
    pub const ACCESSES: u8 = 0x04;
    /// The transformation in force.
    pub const TRANSFORMATION: u8 = 0x05;
    /// End the management session.
    pub const QUIT: u8 = 0x06;
    /// The censored media types.
    pub const CENSOR_MEDIAS: u8 = 0x07;
    /// The censor's note.
    pub const CENSOR_NOTE: u8 = 0x08;
    /// What the censor did: parts, messages, problems.
    pub const CENSOR_COUNTERS: u8 = 0x09;
    /// Buffer size for sessions accepted afterwards.
    pub const SET_BUFFER: u8 = 0x10;
    /// Change (or remove) the transformation.
    pub const SET_TRANSFORMATION: u8 = 0x11;
    /// Inactivity timeout.
    pub const SET_TIMEOUT: u8 = 0x12;
    /// Change the censored media types.
    pub const SET_CENSOR_MEDIAS: u8 = 0x13;
    /// Change the censor's note.
    pub const SET_CENSOR_NOTE: u8 = 0x14;
}

/// Response status codes.
pub mod status {
    /// Success.
    pub const OK: u8 = 0x00;
    /// Authentication failed or required.
    pub const AUTH_ERR: u8 = 0x01;
    /// Unknown command.
    pub const INVALID_COMMAND: u8 = 0x02;
    /// Wrong number, size or value of arguments.
    pub const INVALID_ARGUMENTS: u8 = 0x03;
    /// Internal failure.
    pub const ERROR: u8 = 0x04;
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command byte.
    pub cmd: u8,
    /// The arguments, in order.
    pub args: Vec<Vec<u8>>,
}

/// A response to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status byte.
    pub status: u8,
    /// At most 255 bytes of ASCII.
    pub data: Vec<u8>,
}

impl Response {
    /// A status with no data.
    pub fn status(status: u8) -> Response {
        Response {
            status,
            data: Vec::new(),
        }
    }

    /// Success with data (cut to 255 bytes).
    pub fn ok(data: impl Into<Vec<u8>>) -> Response {
        let mut data = data.into();
        data.truncate(255);
        Response {
            status: status::OK,
            data,
        }
    }

    /// Appends the frame to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.data.len().min(255);
        out.push(self.status);
        out.push(len as u8);
        out.extend_from_slice(&self.data[..len]);
    }
}

/// One request from the front of `input`, with the bytes it took; `None` while incomplete.
pub fn decode(input: &[u8]) -> Option<(Request, usize)> {
    let (&cmd, rest) = input.split_first()?;
    let (&nargs, mut rest) = rest.split_first()?;
    let mut args = Vec::with_capacity(nargs as usize);
    for _ in 0..nargs {
        let (&len, after) = rest.split_first()?;
        if after.len() < len as usize {
            return None;
        }
        args.push(after[..len as usize].to_vec());
        rest = &after[len as usize..];
    }
    Some((Request { cmd, args }, input.len() - rest.len()))
}

/// Encodes a request.
pub fn encode_request(cmd: u8, args: &[&[u8]], out: &mut Vec<u8>) -> Result<(), String> {
    if args.len() > 255 {
        return Err("too many arguments".into());
    }
    out.push(cmd);
    out.push(args.len() as u8);
    for a in args {
        if a.len() > 255 {
            return Err(format!("argument of {} bytes (at most 255)", a.len()));
        }
        out.push(a.len() as u8);
        out.extend_from_slice(a);
    }
    Ok(())
}

/// One response from the front of `input`, with the bytes it took; `None` while incomplete.
pub fn decode_response(input: &[u8]) -> Option<(Response, usize)> {
    let (&status, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let data = rest.get(..len as usize)?.to_vec();
    Some((Response { status, data }, 2 + len as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<u8> {
        let mut wire = Vec::new();
        encode_request(cmd::USER, &[b"admin"], &mut wire).unwrap();
        encode_request(cmd::CONNECTIONS, &[], &mut wire).unwrap();
        encode_request(
            cmd::SET_TIMEOUT,
            &[&2u32.to_be_bytes(), &500u32.to_be_bytes()],
            &mut wire,
        )
        .unwrap();
        encode_request(cmd::SET_TRANSFORMATION, &[b""], &mut wire).unwrap();
        wire
    }

    #[test]
    fn byte_layout() {
        let mut wire = Vec::new();
        encode_request(cmd::SET_BUFFER, &[&4096u16.to_be_bytes()], &mut wire).unwrap();
        assert_eq!(wire, [0x10, 0x01, 0x02, 0x10, 0x00]);
        let mut out = Vec::new();
        Response::ok("42").encode(&mut out);
        Response::status(status::INVALID_COMMAND).encode(&mut out);
        assert_eq!(out, [0x00, 0x02, b'4', b'2', 0x02, 0x00]);
    }

    #[test]
    fn decodes_at_every_split() {
        let wire = frames();
        let want: Vec<Request> = {
            let mut rest = &wire[..];
            let mut all = Vec::new();
            while let Some((r, n)) = decode(rest) {
                all.push(r);
                rest = &rest[n..];
            }
            assert!(rest.is_empty());
            all
        };
        assert_eq!(want.len(), 4);
        assert_eq!(want[2].args, vec![vec![0, 0, 0, 2], vec![0, 0, 1, 244]]);
        assert_eq!(want[3].args, vec![Vec::<u8>::new()]);
        // Fed one split at a time, as a connection would receive them.
        for cut in 0..=wire.len() {
            let mut pending = Vec::new();
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                pending.extend_from_slice(part);
                while let Some((r, n)) = decode(&pending) {
                    got.push(r);
                    pending.drain(..n);
                }
            }
            assert_eq!(got, want, "split at {cut}");
            assert!(pending.is_empty());
        }
    }

    #[test]
    fn incomplete_frames_wait() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0x00]), None);
        assert_eq!(decode(&[0x00, 0x01]), None);
        assert_eq!(decode(&[0x00, 0x01, 0x03, b'a', b'b']), None);
        assert_eq!(decode(&[0x02, 0x00, 0xff]).unwrap().1, 2);
    }

    #[test]
    fn responses_round_trip() {
        let mut out = Vec::new();
        Response::ok(vec![b'x'; 300]).encode(&mut out);
        assert_eq!(out.len(), 257, "data is cut to 255 bytes");
        let (r, n) = decode_response(&out).unwrap();
        assert_eq!((r.status, r.data.len(), n), (0, 255, 257));
        assert_eq!(decode_response(&out[..100]), None);
    }

    #[test]
    fn random_streams_decode_the_same_at_any_split() {
        let mut rng = crate::testutil::Rng::new(0x5eed_0004);
        for case in 0..2000 {
            let len = rng.below(300);
            let input = rng.bytes(len, &[0, 1, 2, 3, 0x10, 0x11, 0xff, b'a']);
            let frames = |chunks: Vec<&[u8]>| {
                let mut pending = Vec::new();
                let mut got = Vec::new();
                for c in chunks {
                    pending.extend_from_slice(c);
                    while let Some((r, n)) = decode(&pending) {
                        assert!(n >= 2 && n <= pending.len());
                        got.push(r);
                        pending.drain(..n);
                    }
                }
                (got, pending)
            };
            let whole = frames(vec![&input[..]]);
            assert_eq!(frames(rng.chunks(&input, 13)), whole, "case {case}");
        }
    }
}
