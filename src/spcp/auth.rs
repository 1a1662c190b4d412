//! Management credentials: from `-u USER:PASS` (repeatable) and `-U FILE`.
//!
//! The file holds one `user:password` per line; blank lines and lines starting with `#` are
//! ignored; the password is everything after the first colon. Passwords are compared in
//! constant time and never logged.

use std::fs;

/// The users allowed to manage the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    users: Vec<(String, Vec<u8>)>,
}

impl Credentials {
    /// Adds one `user:password` pair.
    pub fn add(&mut self, pair: &str) -> Result<(), String> {
        match pair.split_once(':') {
            Some((user, pass)) if !user.is_empty() => {
                self.users
                    .push((user.to_string(), pass.as_bytes().to_vec()));
                Ok(())
            }
            _ => Err("expected USER:PASSWORD".to_string()),
        }
    }

    /// Adds every pair in a credentials file.
    pub fn load(&mut self, path: &str) -> Result<(), String> {
        let text = fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            self.add(line)
                .map_err(|e| format!("{path} line {}: {e}", n + 1))?;
        }
        Ok(())
    }

    /// True when no one can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` exists.
    pub fn has_user(&self, user: &[u8]) -> bool {
        self.users.iter().any(|(u, _)| u.as_bytes() == user)
    }

    /// Whether `pass` is `user`'s password; the comparison takes the same time wherever the
    /// first difference is.
    pub fn check(&self, user: &[u8], pass: &[u8]) -> bool {
        let mut ok = false;
        for (u, p) in &self.users {
            ok |= u.as_bytes() == user && constant_time_eq(p, pass);
        }
        ok
    }
}

/// Compares two byte strings without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as u64;
    }
    // Keep the optimiser from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_files() {
        let mut c = Credentials::default();
        assert!(c.is_empty());
        c.add("admin:s3cret:with:colons").unwrap();
        assert!(c.add("nocolon").is_err());
        assert!(c.add(":pass").is_err());
        let dir = std::env::temp_dir().join(format!("spcp-cred-{}", std::process::id()));
        std::fs::write(&dir, "# operators\n\nops:pw1\r\nro:\n").unwrap();
        c.load(dir.to_str().unwrap()).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert!(c.has_user(b"ops") && c.has_user(b"ro") && !c.has_user(b"nobody"));
        assert!(c.check(b"admin", b"s3cret:with:colons"));
        assert!(c.check(b"ops", b"pw1"));
        assert!(c.check(b"ro", b""));
        assert!(!c.check(b"ops", b"pw"));
        assert!(!c.check(b"ops", b"pw12"));
        assert!(!c.check(b"admin", b"pw1"), "another user's password");
        assert!(c.load("/nonexistent/file").is_err());
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
    }
}
