//! stripmime: the MIME censor as a filter program, for `pop3filter -t stripmime`, procmail or
//! maildrop.
//!
//! Reads one message on standard input and writes it to standard output, with the parts whose
//! media type is in `FILTER_MEDIAS` replaced by the note `FILTER_MSG` (one paragraph per
//! line). It streams through two fixed 256 KiB buffers and the censor's own fixed storage, so
//! its memory is the same for a 1 KiB message and a 700 MB one. The censoring itself is the
//! `mime` crate's (docs/stripmime.md says what it does).
//!
//! Exit status: 0 when the message went through (input the censor cannot parse is passed on
//! and reported on stderr, not an error), 1 when reading or writing failed, 2 for a
//! `FILTER_MEDIAS` that does not parse or a bad argument, before any output.

use mime::{Censor, MediaRanges, Note};
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;

const USAGE: &str = "Usage: stripmime [-h | --help] [-v | --version]

Copies one mail message from standard input to standard output, replacing the parts
whose media type is censored with a text/plain note. Everything else is copied byte
for byte.

Environment:
    FILTER_MEDIAS   the censored media types, as in HTTP Accept: \"image/*, image/png;q=0\"
                    censors every image but PNG (empty or unset: nothing is censored)
    FILTER_MSG      the note; each line is a paragraph, %s stands for the part's media
                    type (empty or unset: a default note)

Exit status: 0 on success, 1 if reading or writing failed, 2 if FILTER_MEDIAS cannot
be parsed. Input that cannot be parsed as MIME is passed through and reported on stderr.
See docs/stripmime.md and stripmime(1).
";

/// The size of each of the two buffers: reads and writes of this size cost a fraction of
/// those of 64 KiB (at 64 KiB, a 200 MB message took 3,205 reads and 6,396 writes).
const BUFFER: usize = 256 * 1024;

/// A run the censor keeps that is shorter than this is copied into the output buffer rather
/// than written on its own: a write costs more than copying a few KiB.
const SHORT_RUN: usize = 8 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["-h" | "--help"] => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ["-v" | "--version"] => {
            println!("stripmime {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("stripmime: unexpected argument {:?}\n{USAGE}", args[0]);
            return ExitCode::from(2);
        }
    }
    let medias = match std::env::var("FILTER_MEDIAS") {
        Ok(v) => v,
        Err(std::env::VarError::NotPresent) => String::new(),
        Err(std::env::VarError::NotUnicode(_)) => {
            eprintln!("stripmime: FILTER_MEDIAS is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    let ranges = match MediaRanges::parse(&medias) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stripmime: FILTER_MEDIAS: {e}");
            return ExitCode::from(2);
        }
    };
    let note = std::env::var_os("FILTER_MSG")
        .map(|m| Note::from_lines(&m.to_string_lossy()))
        .unwrap_or_default();
    let mut censor = Censor::new(ranges, note);
    // Standard output as a plain file: `io::stdout()` is line buffered, which splits each
    // buffer into two writes (up to its last line end, then the rest) and copies the rest.
    let stdout = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("stripmime: standard output: {e}");
            return ExitCode::from(1);
        }
    };
    match run(&mut censor, &mut io::stdin().lock(), &mut &stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stripmime: {e}");
            ExitCode::from(1)
        }
    }
}

/// Streams `input` through the censor into `output`, reporting problems on stderr. What the
/// censor keeps as it is goes out straight from the input buffer (a short run is gathered
/// into the output buffer instead); the rest is written a full output buffer at a time, or
/// in the same write as the run that follows it. So a message that passes through takes one
/// write per read, and its bytes are copied once, by the kernel.
fn run(censor: &mut Censor, input: &mut impl Read, output: &mut impl Write) -> io::Result<()> {
    let mut inbuf = vec![0u8; BUFFER];
    let mut outbuf = vec![0u8; BUFFER];
    let mut filled = 0;
    let mut reported = 0;
    loop {
        let n = match input.read(&mut inbuf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading: {e}"))),
        };
        let mut rest = &inbuf[..n];
        while !rest.is_empty() {
            let (run, after) = rest.split_at(censor.pass(rest));
            if run.len() < SHORT_RUN && run.len() <= BUFFER - filled {
                outbuf[filled..filled + run.len()].copy_from_slice(run);
                filled += run.len();
            } else {
                write_both(output, &outbuf[..filled], run)?;
                filled = 0;
            }
            // The window is never empty here: a full buffer was written just before.
            let (used, written) = censor.feed_until_pass(after, &mut outbuf[filled..]);
            rest = &after[used..];
            filled += written;
            if filled == BUFFER {
                write_both(output, &outbuf, &[])?;
                filled = 0;
            }
        }
        reported += report(censor);
    }
    while !censor.is_finished() {
        filled += censor.finish(&mut outbuf[filled..]);
        if filled == BUFFER {
            write_both(output, &outbuf, &[])?;
            filled = 0;
        }
    }
    write_both(output, &outbuf[..filled], &[])?;
    output
        .flush()
        .map_err(|e| io::Error::new(e.kind(), format!("writing: {e}")))?;
    reported += report(censor);
    let unreported = censor.counters().problems - reported;
    if unreported > 0 {
        eprintln!("stripmime: {unreported} more problems not shown");
    }
    Ok(())
}

/// Writes `first` then `second`, in one system call when the kernel takes both.
fn write_both(output: &mut impl Write, mut first: &[u8], mut second: &[u8]) -> io::Result<()> {
    while !first.is_empty() || !second.is_empty() {
        match output.write_vectored(&[IoSlice::new(first), IoSlice::new(second)]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "writing: standard output takes no more",
                ))
            }
            Ok(n) => {
                let from_first = n.min(first.len());
                first = &first[from_first..];
                second = &second[n - from_first..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("writing: {e}"))),
        }
    }
    Ok(())
}

/// Prints the problems the censor kept since the last call; returns how many.
fn report(censor: &mut Censor) -> u64 {
    let mut n = 0;
    while let Some(p) = censor.take_problem() {
        eprintln!("stripmime: passed through as it was: {p}");
        n += 1;
    }
    n
}
