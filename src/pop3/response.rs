//! Finds where each POP3 response ends, in a stream that may be split at any byte.
//!
//! The session feeds the origin's bytes through a [`ResponseParser`] as they arrive, one
//! response at a time, and relays them unchanged: the parser only says how many of the bytes
//! it was given belong to the current response and what it learned (the status, the end of
//! the status line, the end of the response). It keeps a few bytes of state and never
//! buffers.
//!
//! A response is a status line (`+OK …`, `-ERR …`, or during SASL a continuation `+ …`) and,
//! for a multi-line command answered `+OK`, a body ending with a line that is a single dot.
//! Lines end in CRLF; a bare LF is accepted too.

/// What kind of response a command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// One status line (USER, STAT, `LIST 1`…).
    Single,
    /// A status line and, after `+OK`, a dot-terminated body (RETR, TOP, CAPA, `LIST`…).
    Multi,
    /// A SASL exchange: continuations (`+ …`) until `+OK` or `-ERR`.
    Sasl,
}

/// The status a response line starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `+OK`.
    Ok,
    /// `-ERR`, or anything that is not a valid status: treated as a failure.
    Err,
    /// `+ ` or a bare `+`: a SASL continuation.
    Continue,
}

/// What a call to [`ResponseParser::feed`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The bytes ran out in the middle of the response.
    NeedMore,
    /// The status line ended (the response goes on: a multi-line body follows).
    StatusLine(Status),
    /// A SASL continuation line ended: the client may send one line; the exchange goes on.
    Continue,
    /// The response ended with this status.
    Done(Status),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the status line; `seen` bytes of it so far.
    Status { seen: u8 },
    /// Status known, looking for the end of the status line.
    StatusRest,
    /// In the body, at the start of a line.
    LineStart,
    /// In the body, in the middle of a line.
    InLine,
    /// Body line that started with `.`.
    Dot,
    /// Body line `.` followed by CR.
    DotCr,
    /// The response is complete.
    Done,
}

/// The stream parser for one response at a time.
#[derive(Debug, Clone)]
pub struct ResponseParser {
    expect: Expect,
    phase: Phase,
    first: [u8; 2],
    status: Status,
}

impl ResponseParser {
    /// A parser waiting for a response of the given kind.
    pub fn new(expect: Expect) -> Self {
        ResponseParser {
            expect,
            phase: Phase::Status { seen: 0 },
            first: [0; 2],
            status: Status::Err,
        }
    }

    /// True once the whole response has been seen.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// True before any byte of the current status line was seen.
    pub fn at_start(&self) -> bool {
        self.phase == Phase::Status { seen: 0 }
    }

    /// Consumes bytes of the current response; returns how many it took and why it stopped.
    /// It stops right after an event, so the caller can act before the next byte.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Event) {
        let mut i = 0;
        while i < data.len() {
            let byte = data[i];
            i += 1;
            match self.phase {
                Phase::Status { seen } => {
                    if byte == b'\n' {
                        self.classify(seen);
                        return (i, self.status_line_ended());
                    }
                    if seen < 2 {
                        self.first[seen as usize] = byte;
                        self.phase = Phase::Status { seen: seen + 1 };
                    } else {
                        self.classify(seen);
                        self.phase = Phase::StatusRest;
                    }
                }
                Phase::StatusRest => {
                    // Skip to the end of the status line in one search.
                    match crate::bytes::find(b'\n', &data[i - 1..]) {
                        Some(at) => {
                            i += at;
                            return (i, self.status_line_ended());
                        }
                        None => return (data.len(), Event::NeedMore),
                    }
                }
                Phase::LineStart => {
                    self.phase = match byte {
                        b'.' => Phase::Dot,
                        b'\n' => Phase::LineStart,
                        _ => Phase::InLine,
                    }
                }
                Phase::InLine => {
                    // Only a line that begins with a dot can end the body: skip to the next
                    // one in one search (the byte at `i - 1` continues a line).
                    let rest = &data[i - 1..];
                    match crate::bytes::find_line_start(b'.', rest) {
                        Some(at) => {
                            i += at;
                            self.phase = Phase::Dot;
                        }
                        None => {
                            if rest.last() == Some(&b'\n') {
                                self.phase = Phase::LineStart;
                            }
                            return (data.len(), Event::NeedMore);
                        }
                    }
                }
                Phase::Dot => {
                    self.phase = match byte {
                        b'\r' => Phase::DotCr,
                        b'\n' => return self.finish(i),
                        _ => Phase::InLine,
                    }
                }
                Phase::DotCr => {
                    self.phase = match byte {
                        b'\n' => return self.finish(i),
                        _ => Phase::InLine,
                    }
                }
                Phase::Done => return (i - 1, Event::Done(self.status)),
            }
        }
        (i, Event::NeedMore)
    }

    fn classify(&mut self, seen: u8) {
        let first = &self.first[..seen as usize];
        self.status = match first {
            [b'+', b'O' | b'o', ..] => Status::Ok,
            [b'+', ..] if self.expect == Expect::Sasl => Status::Continue,
            _ => Status::Err,
        };
    }

    fn status_line_ended(&mut self) -> Event {
        match (self.status, self.expect) {
            (Status::Continue, _) => {
                // One SASL step is over; the next line from the origin is a new status line.
                self.phase = Phase::Status { seen: 0 };
                Event::Continue
            }
            (Status::Ok, Expect::Multi) => {
                self.phase = Phase::LineStart;
                Event::StatusLine(Status::Ok)
            }
            (status, _) => {
                self.phase = Phase::Done;
                Event::Done(status)
            }
        }
    }

    fn finish(&mut self, consumed: usize) -> (usize, Event) {
        self.phase = Phase::Done;
        (consumed, Event::Done(self.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` split at `cut` and returns (bytes the response took, events seen).
    fn run(expect: Expect, input: &[u8], cut: usize) -> (usize, Vec<Event>) {
        let mut p = ResponseParser::new(expect);
        let mut events = Vec::new();
        let mut taken = 0;
        for part in [&input[..cut], &input[cut..]] {
            let mut rest = part;
            while !rest.is_empty() && !p.is_done() {
                let (n, ev) = p.feed(rest);
                taken += n;
                rest = &rest[n..];
                if ev != Event::NeedMore {
                    events.push(ev);
                }
            }
        }
        (taken, events)
    }

    fn every_split(expect: Expect, input: &[u8], len: usize, events: &[Event]) {
        for cut in 0..=input.len() {
            let (taken, seen) = run(expect, input, cut);
            assert_eq!(taken, len, "length, split at {cut}");
            assert_eq!(seen, events, "events, split at {cut}");
        }
    }

    #[test]
    fn single_line() {
        let ok = Event::Done(Status::Ok);
        every_split(Expect::Single, b"+OK 2 320\r\nnext", 11, &[ok]);
        let err = Event::Done(Status::Err);
        every_split(Expect::Single, b"-ERR no\r\n+OK", 9, &[err]);
    }

    #[test]
    fn multi_line_with_dots_in_the_body() {
        let body = b"+OK\r\n..hola\r\n..\r\n.x\r\n\r\n.\r\n+OK next\r\n";
        let end = body.len() - b"+OK next\r\n".len();
        let events = [Event::StatusLine(Status::Ok), Event::Done(Status::Ok)];
        every_split(Expect::Multi, body, end, &events);
    }

    #[test]
    fn multi_line_error_is_one_line() {
        every_split(
            Expect::Multi,
            b"-ERR no such\r\n.\r\n",
            14,
            &[Event::Done(Status::Err)],
        );
    }

    #[test]
    fn empty_body_and_bare_lf() {
        let events = [Event::StatusLine(Status::Ok), Event::Done(Status::Ok)];
        every_split(Expect::Multi, b"+OK\r\n.\r\n", 8, &events);
        every_split(Expect::Multi, b"+OK\n.\nrest", 6, &events);
    }

    #[test]
    fn terminator_needs_a_line_of_its_own() {
        // ".\r\n" inside a line, and "x.\r\n", end nothing.
        let body = b"+OK\r\na.\r\n .\r\n.\r\n";
        let events = [Event::StatusLine(Status::Ok), Event::Done(Status::Ok)];
        every_split(Expect::Multi, body, body.len(), &events);
    }

    #[test]
    fn sasl_continuations() {
        let input = b"+ \r\n+ VXNlcm5hbWU6\r\n+OK Logged in.\r\n";
        let events = [Event::Continue, Event::Continue, Event::Done(Status::Ok)];
        every_split(Expect::Sasl, input, input.len(), &events);
        every_split(
            Expect::Sasl,
            b"+\r\n-ERR bad\r\n",
            13,
            &[Event::Continue, Event::Done(Status::Err)],
        );
    }

    #[test]
    fn garbage_status_is_a_failure() {
        every_split(Expect::Multi, b"HELLO\r\n", 7, &[Event::Done(Status::Err)]);
        every_split(Expect::Single, b"\r\n", 2, &[Event::Done(Status::Err)]);
    }

    #[test]
    fn random_input_at_random_splits() {
        // Whatever the bytes and however they are cut, the parser never panics and finds the
        // same end and events as when it sees them whole.
        let mut rng = crate::testutil::Rng::new(0x5eed_0001);
        for case in 0..2000 {
            let len = rng.below(120);
            let input = rng.bytes(len, b"+-OKER .\r\nx");
            let expect = [Expect::Single, Expect::Multi, Expect::Sasl][case % 3];
            let whole = run(expect, &input, input.len());
            let mut p = ResponseParser::new(expect);
            let (mut taken, mut events) = (0, Vec::new());
            for chunk in rng.chunks(&input, 9) {
                let mut rest = chunk;
                while !rest.is_empty() && !p.is_done() {
                    let (n, ev) = p.feed(rest);
                    assert!(n <= rest.len());
                    if n == 0 && ev == Event::NeedMore {
                        break;
                    }
                    taken += n;
                    rest = &rest[n..];
                    if ev != Event::NeedMore {
                        events.push(ev);
                    }
                }
            }
            assert_eq!((taken, events), whole, "case {case}: {input:?}");
        }
    }

    #[test]
    fn long_bodies_end_at_their_dot_line_only() {
        // Bodies long enough for the block scan, with lines that begin with a dot but do not
        // end the body, and bare LFs: the end is the first ".\r\n" or ".\n" line, at any
        // split.
        let mut rng = crate::testutil::Rng::new(0x5eed_0002);
        for case in 0..300 {
            let mut body = b"+OK\r\n".to_vec();
            for _ in 0..rng.below(30) {
                let line: Vec<u8> = match rng.below(6) {
                    0 => b"..".to_vec(),
                    1 => b".x".to_vec(),
                    2 => Vec::new(),
                    _ => (0..rng.below(150))
                        .map(|i| if i % 37 == 5 { b'.' } else { b'a' })
                        .collect(),
                };
                body.extend_from_slice(&line);
                body.extend_from_slice(if rng.below(4) == 0 { b"\n" } else { b"\r\n" });
            }
            body.extend_from_slice(if case % 2 == 0 { b".\r\n" } else { b".\n" });
            let end = body.len();
            body.extend_from_slice(b"+OK next\r\n.\r\n");
            let events = [Event::StatusLine(Status::Ok), Event::Done(Status::Ok)];
            assert_eq!(
                run(Expect::Multi, &body, body.len()),
                (end, events.to_vec())
            );
            for _ in 0..20 {
                let cut = rng.below(body.len() + 1);
                assert_eq!(
                    run(Expect::Multi, &body, cut),
                    (end, events.to_vec()),
                    "case {case} cut {cut}"
                );
            }
        }
    }
}
