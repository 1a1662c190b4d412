//! Client command lines: what each one is, what reply it gets, and the form it is forwarded in.
//!
//! The session cuts the client's byte stream into lines (CRLF or bare LF) and hands each
//! complete line here. Keywords are case-insensitive; trailing spaces and tabs are dropped
//! (except from PASS, whose argument may end in spaces); the line goes to the origin with CRLF.

use super::response::Expect;

/// RFC 2449: a command line is at most 255 octets, CRLF included.
pub const MAX_LINE: usize = 255;

/// The commands the proxy has to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `USER name`: remembered for the log.
    User,
    /// `PASS secret`: never logged.
    Pass,
    /// `APOP name digest`.
    Apop,
    /// `AUTH [mechanism [initial-response]]`.
    Auth,
    /// `CAPA`: the reply is rewritten.
    Capa,
    /// `STLS`: answered by the proxy (no TLS yet).
    Stls,
    /// `QUIT`.
    Quit,
    /// `RETR n`.
    Retr,
    /// `TOP n m`.
    Top,
    /// `LIST [n]`.
    List,
    /// `UIDL [n]`.
    Uidl,
    /// Anything else (STAT, DELE, NOOP, RSET, unknown words): one line back.
    Other,
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// What it is.
    pub keyword: Keyword,
    /// The keyword as the client wrote it.
    pub word: &'a [u8],
    /// Everything after the keyword and its separating space(s), trailing blanks removed
    /// (kept for PASS).
    pub args: &'a [u8],
    /// The line without its terminator.
    line: &'a [u8],
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_end_blanks(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

impl<'a> Command<'a> {
    /// Parses one complete line (its terminator included or not).
    pub fn parse(line: &'a [u8]) -> Command<'a> {
        let line = trim_eol(line);
        let split = line
            .iter()
            .position(|&c| c == b' ' || c == b'\t')
            .unwrap_or(line.len());
        let (word, rest) = line.split_at(split);
        let keyword = match word.to_ascii_uppercase().as_slice() {
            b"USER" => Keyword::User,
            b"PASS" => Keyword::Pass,
            b"APOP" => Keyword::Apop,
            b"AUTH" => Keyword::Auth,
            b"CAPA" => Keyword::Capa,
            b"STLS" => Keyword::Stls,
            b"QUIT" => Keyword::Quit,
            b"RETR" => Keyword::Retr,
            b"TOP" => Keyword::Top,
            b"LIST" => Keyword::List,
            b"UIDL" => Keyword::Uidl,
            _ => Keyword::Other,
        };
        let rest = rest
            .strip_prefix(b" ")
            .or_else(|| rest.strip_prefix(b"\t"))
            .unwrap_or(rest);
        let args = if keyword == Keyword::Pass {
            rest
        } else {
            trim_end_blanks(rest)
        };
        Command {
            keyword,
            word,
            args,
            line,
        }
    }

    /// The reply this command gets.
    pub fn expect(&self) -> Expect {
        match self.keyword {
            Keyword::Retr | Keyword::Top | Keyword::Capa => Expect::Multi,
            Keyword::List | Keyword::Uidl | Keyword::Auth if self.args.is_empty() => Expect::Multi,
            Keyword::Auth => Expect::Sasl,
            _ => Expect::Single,
        }
    }

    /// The first argument as text, such as the user name of USER or APOP.
    pub fn first_arg(&self) -> &'a [u8] {
        let end = self
            .args
            .iter()
            .position(|&c| c == b' ')
            .unwrap_or(self.args.len());
        &self.args[..end]
    }

    /// Writes the line as it goes to the origin: keyword, arguments, CRLF.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if self.keyword == Keyword::Pass {
            out.extend_from_slice(self.line);
        } else {
            out.extend_from_slice(self.word);
            if !self.args.is_empty() {
                out.push(b' ');
                out.extend_from_slice(self.args);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(line: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Command::parse(line).write_to(&mut out);
        out
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(Command::parse(b"retr 1\r\n").keyword, Keyword::Retr);
        assert_eq!(Command::parse(b"CaPa\n").keyword, Keyword::Capa);
        assert_eq!(Command::parse(b"NOOP\r\n").keyword, Keyword::Other);
        assert_eq!(Command::parse(b"\r\n").keyword, Keyword::Other);
    }

    #[test]
    fn multi_line_commands() {
        let expect = |l: &[u8]| Command::parse(l).expect();
        assert_eq!(expect(b"LIST\r\n"), Expect::Multi);
        assert_eq!(
            expect(b"LIST   \r\n"),
            Expect::Multi,
            "trailing spaces are no argument"
        );
        assert_eq!(expect(b"LIST 1\r\n"), Expect::Single);
        assert_eq!(expect(b"UIDL\n"), Expect::Multi);
        assert_eq!(expect(b"UIDL 3 \r\n"), Expect::Single);
        assert_eq!(expect(b"TOP 1 0\r\n"), Expect::Multi);
        assert_eq!(expect(b"RETR 1\r\n"), Expect::Multi);
        assert_eq!(expect(b"AUTH\r\n"), Expect::Multi);
        assert_eq!(expect(b"AUTH PLAIN\r\n"), Expect::Sasl);
        assert_eq!(expect(b"STAT\r\n"), Expect::Single);
    }

    #[test]
    fn forwarded_form() {
        assert_eq!(forwarded(b"stat  \t \n"), b"stat\r\n");
        assert_eq!(forwarded(b"LIST 1   \r\n"), b"LIST 1\r\n");
        assert_eq!(forwarded(b"STAT\t\r\n"), b"STAT\r\n");
        assert_eq!(Command::parse(b"LIST\t\r\n").expect(), Expect::Multi);
        assert_eq!(forwarded(b"TOP 1 0\r\n"), b"TOP 1 0\r\n");
        // A password keeps its spaces, inside and at the end.
        assert_eq!(forwarded(b"PASS a b  \r\n"), b"PASS a b  \r\n");
        assert_eq!(forwarded(b"PASS \n"), b"PASS \r\n");
        assert_eq!(forwarded(b"PASS\n"), b"PASS\r\n");
    }

    #[test]
    fn user_names() {
        assert_eq!(Command::parse(b"USER alice \r\n").first_arg(), b"alice");
        assert_eq!(
            Command::parse(b"APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n").first_arg(),
            b"bob"
        );
    }

    #[test]
    fn any_line_parses() {
        let mut rng = crate::testutil::Rng::new(0x5eed_0005);
        for _ in 0..5000 {
            let len = rng.below(40);
            let line = rng.bytes(len, b"RETRlistUSERPASS \t\r\n1");
            let cmd = Command::parse(&line);
            let mut out = Vec::new();
            cmd.write_to(&mut out);
            assert!(out.ends_with(b"\r\n"));
            assert!(out.len() <= line.len() + 2);
            if line.ends_with(b"\n") {
                // The relay forwards a line only when `up_out` has this much room: the
                // normal form must never need more.
                assert!(out.len() <= line.len() + 1, "{line:?}");
            }
        }
    }
}
