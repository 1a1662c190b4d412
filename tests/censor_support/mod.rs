//! Helpers shared by `tests/censor.rs` and `tests/censor_clients.rs` (the daemon's built-in
//! censor, `-M`): the `mime` mailbox of `scripts/make-mail.py` and what each of its messages
//! is made of, the censor lists and the leaf types each one must censor (written out by hand,
//! not computed from the list), fetching through raw POP3 and curl, and
//! `tests/clients/censor_check.py`, which checks a censored mailbox against a direct fetch
//! with Python's `email` and byte for byte. Use it after `mod common;` with
//! `mod censor_support;`.

#![allow(dead_code)]

use crate::common::{unstuff, Pop3, PASSWORD};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The mailbox of the censor's sample messages.
pub const USER: &str = "mime";

/// The leaf media types of each message of `mime`, in tree order (message 1 first): 1 mixed
/// (text, PNG, JPEG, PDF); 2 a forward (text, then a message/rfc822 holding text and a PNG,
/// then a message/rfc822 that is itself a JPEG); 3 multipart/related holding a
/// multipart/alternative (text, HTML), a PNG and a GIF; 4 a message that is a GIF; 5 (CRLF
/// file) text, PNG, PDF; 6 (LF file) text, JPEG, PDF; 7 no MIME at all.
pub const LEAVES: [&[&str]; 7] = [
    &["text/plain", "image/png", "image/jpeg", "application/pdf"],
    &["text/plain", "text/plain", "image/png", "image/jpeg"],
    &["text/plain", "text/html", "image/png", "image/gif"],
    &["image/gif"],
    &["text/plain", "image/png", "application/pdf"],
    &["text/plain", "image/jpeg", "application/pdf"],
    &["text/plain"],
];

/// Each `-M` list of the matrix and the leaf types of `LEAVES` it censors.
pub const LISTS: [(&str, &[&str]); 6] = [
    ("image/png", &["image/png"]),
    ("image/png,image/jpeg", &["image/png", "image/jpeg"]),
    ("image/*", &["image/png", "image/jpeg", "image/gif"]),
    ("image/*, image/png;q=0", &["image/jpeg", "image/gif"]),
    ("application/pdf", &["application/pdf"]),
    ("video/*", &[]),
];

/// What `image/*` censors.
pub const IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif"];

/// The default note for a part of `media_type`, CRLF line ends, as the daemon wraps it.
pub fn default_note(media_type: &str) -> String {
    let text = format!(
        "This part of the message was removed by the mail proxy: its type ({media_type}) is \
         not allowed."
    );
    // Wrapped at the last space that leaves at most 76 characters.
    let cut = text[..=76].rfind(' ').unwrap();
    format!("{}\r\n{}\r\n", &text[..cut], &text[cut + 1..])
}

/// The checker's summary for the whole mailbox: one line per message, its leaves with the
/// censored ones marked `!`.
pub fn summary(censored: &[&str]) -> String {
    let mut out = String::new();
    for (i, leaves) in LEAVES.iter().enumerate() {
        let marked: Vec<String> = leaves
            .iter()
            .map(|t| {
                if censored.contains(t) {
                    format!("{t}!")
                } else {
                    t.to_string()
                }
            })
            .collect();
        out += &format!("<{USER}-{}@pop3filter.test> {}\n", i + 1, marked.join(" "));
    }
    out
}

/// (parts, messages) that a list censoring `censored` censors in message `n` (1-based).
pub fn censored_in(n: usize, censored: &[&str]) -> (usize, usize) {
    let parts = LEAVES[n - 1]
        .iter()
        .filter(|t| censored.contains(t))
        .count();
    (parts, usize::from(parts > 0))
}

/// A logged-in raw POP3 session (greeting read).
pub fn session(port: u16, user: &str) -> Pop3 {
    let mut c = Pop3::connect(port);
    c.greeting();
    c.login(user, PASSWORD);
    c
}

/// Every message of `user` from `port` by raw RETR, un-stuffed (CRLF line ends).
pub fn retr_all(port: u16, user: &str, count: usize) -> Vec<Vec<u8>> {
    let mut c = session(port, user);
    let all = (1..=count)
        .map(|n| {
            c.cmd(&format!("RETR {n}"));
            unstuff(&c.multi())
        })
        .collect();
    c.cmd("QUIT");
    assert!(c.line().starts_with(b"+OK"), "QUIT");
    all
}

/// Whether `tool` is on the PATH.
pub fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Message `n` of `user` fetched by curl from `port`.
pub fn curl(port: u16, user: &str, n: usize) -> Vec<u8> {
    let url = format!("pop3://127.0.0.1:{port}/{n}");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "30",
            "-u",
            &format!("{user}:{PASSWORD}"),
            &url,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}; stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A scratch directory, created empty, removed on drop unless the test panics.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("censor-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A fresh empty subdirectory.
    pub fn sub(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A fresh subdirectory holding `messages`, one a file.
    pub fn with(&self, name: &str, messages: &[Vec<u8>]) -> PathBuf {
        let dir = self.sub(name);
        for (i, m) in messages.iter().enumerate() {
            fs::write(dir.join(format!("{}.eml", i + 1)), m).unwrap();
        }
        dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- censor test files kept in {} ---", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `tests/clients/censor_check.py` on the messages in `direct` (fetched from Dovecot)
/// and `proxied` (the same client through the censor), expecting the leaf types `censored`
/// replaced by the note of `notes` (empty: the default note) and everything else
/// byte-identical. Returns the summary it prints (one line per message).
pub fn check(direct: &Path, proxied: &Path, censored: &[&str], notes: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/censor_check.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("--censored").arg(censored.join(","));
    for note in notes {
        cmd.arg("--note").arg(note);
    }
    let out = cmd
        .arg(direct)
        .arg(proxied)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "censor_check.py (censored {censored:?}) failed: {stderr}\nsummary so far:\n{stdout}"
    );
    stdout
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `data` as text for assertion messages.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}
