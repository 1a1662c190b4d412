//! The command side of the relay: cutting client bytes into lines, deciding when the next one
//! may go, forwarding it in normal form or answering it locally, and SASL client lines.

use super::xclient;
use super::{trim_eol, Purpose, Relay, Reply, Sasl, COMMAND_BUFFER, MAX_PENDING, TOO_LONG};
use crate::pop3::command::{Command, Keyword, MAX_LINE};
use crate::pop3::sasl;

impl Relay {
    /// Whether the next client line may be taken now.
    fn may_take(&self) -> bool {
        if !self.hello_done || self.quit || self.tls.client_due || self.pending.len() >= MAX_PENDING
        {
            return false;
        }
        let waiting = self
            .pending
            .iter()
            .rev()
            .find(|p| matches!(p.reply, Reply::Origin { .. }));
        match waiting {
            Some(last) if last.awaits_origin() => match last.purpose {
                Purpose::Client(Keyword::Auth) => self.sasl.allowed > 0,
                Purpose::Client(Keyword::Pass | Keyword::Apop | Keyword::Quit) => false,
                _ => self.pipelining,
            },
            _ => true,
        }
    }

    /// Cuts complete lines out of `up_in` and forwards or answers each.
    pub fn take_commands(&mut self) -> bool {
        let mut progress = false;
        loop {
            if self.discarding {
                match self.up_in.find(b'\n') {
                    Some(_) if self.pending.len() >= MAX_PENDING => return progress,
                    Some(lf) => {
                        self.up_in.consume(lf + 1);
                        self.discarding = false;
                        self.reject_long_line();
                        progress = true;
                        continue;
                    }
                    None => {
                        progress |= !self.up_in.is_empty();
                        self.up_in.consume(self.up_in.len());
                        return progress;
                    }
                }
            }
            if self.sasl.streaming {
                if !self.stream_sasl() {
                    return progress;
                }
                progress = true;
                continue;
            }
            if !self.may_take() {
                return progress;
            }
            let in_sasl = self.sasl.allowed > 0;
            let limit = if in_sasl {
                COMMAND_BUFFER - 1
            } else {
                MAX_LINE
            };
            let Some(lf) = self.up_in.find(b'\n') else {
                if self.up_in.len() >= limit {
                    if in_sasl {
                        self.sasl.allowed -= 1;
                        self.sasl.streaming = true;
                    } else {
                        self.discarding = true;
                    }
                    continue;
                }
                return progress;
            };
            let len = lf + 1;
            if len > limit && in_sasl {
                self.sasl.allowed -= 1;
                self.sasl.streaming = true;
                continue;
            }
            if len > limit {
                self.up_in.consume(len);
                self.reject_long_line();
                progress = true;
                continue;
            }
            if self.up_out.free() < len + 1 {
                return progress;
            }
            let mut line = std::mem::take(&mut self.scratch);
            line.resize(len, 0);
            self.up_in.peek_into(&mut line);
            self.up_in.consume(len);
            if in_sasl {
                self.sasl_line(&line);
            } else {
                self.command(&line);
            }
            self.scratch = line;
            progress = true;
        }
    }

    fn reject_long_line(&mut self) {
        self.stats.commands += 1;
        self.push_local(TOO_LONG);
    }

    /// Forwards a raw SASL client line that is too long to inspect, as far as it fits.
    fn stream_sasl(&mut self) -> bool {
        let (a, b) = self.up_in.data();
        let data = if a.is_empty() { b } else { a };
        let end = data
            .iter()
            .position(|&c| c == b'\n')
            .map_or(data.len(), |i| i + 1);
        let n = self.up_out.push(&data[..end]);
        if n == end && data.get(end - 1) == Some(&b'\n') {
            self.sasl.streaming = false;
        }
        self.up_in.consume(n);
        n > 0
    }

    fn sasl_line(&mut self, line: &[u8]) {
        self.sasl.allowed -= 1;
        self.sasl.lines += 1;
        let text = trim_eol(line);
        if self.sasl.lines == 1 {
            let user = match self.sasl.mechanism.as_slice() {
                b"PLAIN" => sasl::plain_user(text),
                b"LOGIN" => sasl::login_user(text),
                _ => None,
            };
            self.stats.user = user.or(self.stats.user.take());
        }
        self.up_out.push(text);
        self.up_out.push(b"\r\n");
    }

    fn command(&mut self, line: &[u8]) {
        let cmd = Command::parse(line);
        self.stats.commands += 1;
        if self.refuse_login(cmd.keyword) {
            return;
        }
        if xclient::is_proxy_command(cmd.word) {
            return self.refuse_proxy_command();
        }
        match cmd.keyword {
            Keyword::Stls => return self.client_stls(),
            Keyword::User | Keyword::Apop => {
                self.stats.user = Some(String::from_utf8_lossy(cmd.first_arg()).into_owned());
            }
            Keyword::Auth if !cmd.args.is_empty() => {
                self.sasl = Sasl {
                    mechanism: cmd.first_arg().to_ascii_uppercase(),
                    ..Sasl::default()
                };
                let initial = cmd
                    .args
                    .get(cmd.first_arg().len() + 1..)
                    .unwrap_or_default();
                if self.sasl.mechanism == b"PLAIN" && !initial.is_empty() {
                    self.stats.user = sasl::plain_user(initial).or(self.stats.user.take());
                }
            }
            Keyword::Quit => self.quit = true,
            _ => {}
        }
        let mut out = Vec::with_capacity(line.len() + 1);
        cmd.write_to(&mut out);
        self.up_out.push(&out);
        self.push_origin(Purpose::Client(cmd.keyword), cmd.expect());
        if cmd.keyword == Keyword::Retr {
            self.stats.retrs += 1;
            if let Some(p) = self.pending.back_mut() {
                p.since = Some(std::time::Instant::now());
            }
        }
    }
}
