//! The relay driven against in-memory sockets that deliver bytes in chunks of any size.

use super::*;
use std::collections::VecDeque;
use std::io::{Read, Write};

/// A socket end: bytes to be read (`input`), bytes written (`output`).
#[derive(Default)]
struct Mem {
    input: VecDeque<u8>,
    output: Vec<u8>,
    eof: bool,
    chunk: usize,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.chunk.max(1)).min(self.input.len());
        for b in buf.iter_mut().take(n) {
            *b = self.input.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl Transport for Mem {}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.chunk.max(1));
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Rig {
    relay: Relay,
    client: Side<Mem>,
    origin: Side<Mem>,
    /// The client does not read: its side never becomes writable.
    client_stalled: bool,
}

impl Rig {
    fn new(chunk: usize, buffer: usize) -> Rig {
        let mem = || Mem {
            chunk,
            ..Mem::default()
        };
        let mut relay = Relay::new(buffer);
        relay.expect_greeting();
        Rig {
            relay,
            client: Side::new(mem()),
            origin: Side::new(mem()),
            client_stalled: false,
        }
    }

    fn client_sends(&mut self, bytes: &[u8]) {
        self.client.io.input.extend(bytes);
        self.client.readable = true;
    }

    fn origin_sends(&mut self, bytes: &[u8]) {
        self.origin.io.input.extend(bytes);
        self.origin.readable = true;
    }

    /// Runs the relay until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            // What edge-triggered polling would report: data waiting, room to write (the
            // in-memory sockets return short counts that the relay takes for "drained").
            self.client.readable |= !self.client.io.input.is_empty();
            self.origin.readable |= !self.origin.io.input.is_empty();
            self.client.writable |= !self.client_stalled;
            self.origin.writable = true;
            let mut progress = self.relay.read_client(&mut self.client).unwrap();
            progress |= self.relay.take_commands();
            progress |= self.relay.write_origin(&mut self.origin).unwrap();
            progress |= self.relay.read_origin(&mut self.origin).unwrap();
            progress |= self.relay.write_client(&mut self.client).unwrap();
            if !progress {
                return;
            }
        }
        panic!("relay never settled");
    }

    fn sent_to_origin(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.origin.io.output)
    }

    fn sent_to_client(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client.io.output)
    }

    /// Greeting and CAPA probe, answered with `capa`.
    fn hello(&mut self, capa: &[u8]) {
        self.origin_sends(b"+OK ready\r\n");
        self.settle();
        assert_eq!(self.sent_to_origin(), b"CAPA\r\n");
        self.origin_sends(capa);
        self.settle();
        assert!(self.relay.hello_done);
    }
}

const CAPA_PIPE: &[u8] = b"+OK\r\nTOP\r\nPIPELINING\r\nSTLS\r\nUSER\r\n.\r\n";
const CAPA_NOPIPE: &[u8] = b"+OK\r\nTOP\r\nSINPIPELINING\r\nUSER\r\n.\r\n";

#[test]
fn greeting_relayed_probe_dropped() {
    let mut r = Rig::new(1, 64);
    r.client_sends(b"STAT\r\n"); // early: kept until the probe is answered
    r.hello(CAPA_PIPE);
    assert!(r.relay.pipelining);
    assert_eq!(
        r.sent_to_client(),
        b"+OK ready\r\n",
        "probe reply is not relayed"
    );
    assert_eq!(r.sent_to_origin(), b"STAT\r\n");
    r.origin_sends(b"+OK 1 2\r\n");
    r.settle();
    assert_eq!(r.sent_to_client(), b"+OK 1 2\r\n");
}

#[test]
fn sinpipelining_is_not_pipelining_and_commands_wait() {
    let mut r = Rig::new(7, 64);
    r.hello(CAPA_NOPIPE);
    assert!(!r.relay.pipelining);
    r.sent_to_client();
    r.client_sends(b"LIST\r\nSTAT\r\nNOOP\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"LIST\r\n", "one command at a time");
    r.origin_sends(b"+OK\r\n1 5\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"", "still waiting for the end of LIST");
    r.origin_sends(b".\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"STAT\r\n");
    r.origin_sends(b"+OK 1 5\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"NOOP\r\n");
    r.origin_sends(b"+OK\r\n");
    r.settle();
    assert_eq!(r.sent_to_client(), b"+OK\r\n1 5\r\n.\r\n+OK 1 5\r\n+OK\r\n");
}

#[test]
fn capa_is_rewritten() {
    let mut r = Rig::new(3, 64);
    r.hello(CAPA_NOPIPE);
    r.sent_to_client();
    r.client_sends(b"capa\r\n");
    r.settle();
    r.origin_sends(b"+OK list\r\nSTLS\r\nSINPIPELINING\r\nUIDL\r\n.\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK list\r\nSINPIPELINING\r\nUIDL\r\nPIPELINING\r\n.\r\n"
    );
    r.client_sends(b"CAPA\r\n");
    r.settle();
    r.origin_sends(b"-ERR no capa\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"+OK Capability list follows\r\nPIPELINING\r\n.\r\n"
    );
}

#[test]
fn stls_and_long_lines_are_answered_locally_in_order() {
    let mut r = Rig::new(5, 300);
    r.hello(CAPA_PIPE);
    r.sent_to_client();
    let mut batch = b"NOOP\r\nSTLS\r\n".to_vec();
    batch.extend(vec![b'A'; 400]);
    batch.extend(b"\r\nSTAT\r\n");
    r.client_sends(&batch);
    r.settle();
    assert_eq!(
        r.sent_to_origin(),
        b"NOOP\r\nSTAT\r\n",
        "neither STLS nor the long line is forwarded"
    );
    r.origin_sends(b"+OK n\r\n+OK s\r\n");
    r.settle();
    let no_tls = b"-ERR STLS is not available through this proxy\r\n";
    let want = [&b"+OK n\r\n"[..], no_tls, TOO_LONG, b"+OK s\r\n"].concat();
    assert_eq!(r.sent_to_client(), want);
}

#[test]
fn every_split_of_a_session_gives_the_same_bytes() {
    // The origin answers what it has been sent, as a server does: each reply only after
    // its command arrived.
    let replies: [(&[u8], &[u8]); 6] = [
        (b"", b"+OK hi\r\n"),
        (b"CAPA\r\n", b"+OK\r\nPIPELINING\r\n.\r\n"),
        (b"USER a\r\n", b"+OK\r\n"),
        (b"PASS b\r\n", b"+OK in\r\n"),
        (b"RETR 1\r\n", b"+OK\r\n..x\r\n.\r\n"),
        (b"QUIT\r\n", b"+OK bye\r\n"),
    ];
    let mut reference = None;
    for chunk in 1..=12 {
        let mut r = Rig::new(chunk, 64);
        r.client_sends(b"USER a\r\nPASS b\r\nRETR 1\r\nQUIT\r\n");
        let mut heard = Vec::new();
        let mut answered = 0;
        for _ in 0..1000 {
            r.settle();
            heard.extend(r.sent_to_origin());
            while answered < replies.len() {
                let expected: Vec<u8> = replies[..=answered]
                    .iter()
                    .flat_map(|r| r.0.to_vec())
                    .collect();
                if !heard.starts_with(&expected) {
                    break;
                }
                r.origin_sends(replies[answered].1);
                answered += 1;
            }
            if answered == replies.len() {
                break;
            }
        }
        r.settle();
        r.origin.io.output = heard;
        assert!(
            r.relay.finished(false),
            "chunk {chunk}: {:?} {:?}",
            r.relay.pending,
            String::from_utf8_lossy(&r.client.io.output)
        );
        let out = (r.sent_to_client(), r.sent_to_origin());
        assert_eq!(out.1, b"CAPA\r\nUSER a\r\nPASS b\r\nRETR 1\r\nQUIT\r\n");
        assert_eq!(
            reference.get_or_insert_with(|| out.clone()),
            &out,
            "chunk {chunk}"
        );
    }
    assert_eq!(
        reference.unwrap().0,
        b"+OK hi\r\n+OK\r\n+OK in\r\n+OK\r\n..x\r\n.\r\n+OK bye\r\n"
    );
}

#[test]
fn nothing_is_forwarded_behind_pass_until_it_is_answered() {
    let mut r = Rig::new(64, 64);
    r.hello(CAPA_PIPE);
    r.client_sends(b"USER a\r\nPASS b\r\nSTAT\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"USER a\r\nPASS b\r\n");
    r.origin_sends(b"+OK\r\n+OK in\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"STAT\r\n");
    assert_eq!(r.relay.stats.user.as_deref(), Some("a"));
}

#[test]
fn sasl_lines_pass_intact() {
    let mut r = Rig::new(4, 64);
    r.hello(CAPA_PIPE);
    r.sent_to_client();
    // "\0alice\0secret", sent after the continuation.
    r.client_sends(b"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\nSTAT\r\n");
    r.settle();
    assert_eq!(
        r.sent_to_origin(),
        b"AUTH PLAIN\r\n",
        "the response waits for the continuation"
    );
    r.origin_sends(b"+ \r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"AGFsaWNlAHNlY3JldA==\r\n");
    r.origin_sends(b"+OK Logged in.\r\n");
    r.settle();
    assert_eq!(r.sent_to_origin(), b"STAT\r\n");
    assert_eq!(r.sent_to_client(), b"+ \r\n+OK Logged in.\r\n");
    assert_eq!(r.relay.stats.user.as_deref(), Some("alice"));
}

#[test]
fn origin_lost_before_and_during_replies() {
    let mut r = Rig::new(64, 64);
    r.hello(CAPA_PIPE);
    r.sent_to_client();
    r.client_sends(b"STAT\r\nNOOP\r\n");
    r.settle();
    assert!(r.relay.origin_lost(), "no reply started: clean");
    r.settle();
    assert_eq!(
        r.sent_to_client(),
        b"-ERR Connection to the origin server lost\r\n".repeat(2)
    );

    let mut r = Rig::new(64, 64);
    r.hello(CAPA_PIPE);
    r.client_sends(b"RETR 1\r\n");
    r.settle();
    r.origin_sends(b"+OK\r\npart of a mess");
    r.settle();
    assert!(r.relay.drained());
    assert!(
        !r.relay.origin_lost(),
        "a reply was cut: the client must be closed"
    );
}

#[test]
fn backpressure_bounds_what_is_read() {
    let mut r = Rig::new(64, 128);
    r.hello(CAPA_PIPE);
    r.client_sends(b"RETR 1\r\n");
    r.settle();
    r.client_stalled = true; // the client stops reading
    r.client.writable = false;
    let mut body = b"+OK\r\n".to_vec();
    body.extend(b"line of text\r\n".repeat(1000));
    body.extend(b".\r\n");
    r.origin_sends(&body);
    r.settle();
    assert!(
        r.origin.io.input.len() >= body.len() - 128 - 64,
        "at most a buffer is read ahead"
    );
    r.client_stalled = false;
    r.settle();
    assert!(r.origin.io.input.is_empty());
}

#[test]
fn random_traffic_never_panics() {
    // Random client lines and random origin bytes, delivered in random chunk sizes: the relay
    // may answer anything, but it never panics and never holds more than its buffers.
    let mut rng = crate::testutil::Rng::new(0x5eed_0006);
    for case in 0..300 {
        let chunk = 1 + rng.below(40);
        let mut r = Rig::new(chunk, 64 + rng.below(200));
        r.origin_sends(b"+OK hi\r\n");
        r.settle();
        r.origin_sends(if case % 2 == 0 {
            CAPA_PIPE
        } else {
            CAPA_NOPIPE
        });
        r.settle();
        for _ in 0..20 {
            let n = rng.below(80);
            let c = rng.bytes(n, b"RETR LIST CAPA AUTH PLAIN STLS QUIT 1\r\n");
            r.client_sends(&c);
            let n = rng.below(200);
            let o = rng.bytes(n, b"+OK -ERR . x\r\n");
            r.origin_sends(&o);
            r.settle();
            r.sent_to_client();
            r.sent_to_origin();
        }
    }
}

mod stls;
