//! The command line: defaults, every option, and every refusal.

use super::*;

fn run(args: &[&str]) -> Result<Command, String> {
    parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn config(args: &[&str]) -> Config {
    match run(args) {
        Ok(Command::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn defaults() {
    let c = config(&["pop.example.org"]);
    assert_eq!(c.port, 1110);
    assert_eq!(c.origin.port, 110);
    assert_eq!(c.origin.literal, None);
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.buffer_size, DEFAULT_BUFFER);
    assert_eq!(c.filter, FilterConfig::default());
    assert_eq!(c.timeout, Duration::from_secs(600));
    assert_eq!(c.management.listen, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(c.management.port, 9090);
    assert_eq!(c.grace, Duration::from_secs(10));
    assert_eq!(
        config(&["-g", "0.5", "h"]).grace,
        Duration::from_millis(500)
    );
    assert!(run(&["-g", "-1", "h"]).is_err());
    assert!(c.management.credentials.is_empty());
    assert_eq!(c.metrics, None, "no metrics listener unless asked");
    assert_eq!(
        config(&["--metrics", "9100", "h"]).metrics,
        Some("127.0.0.1:9100".parse().unwrap())
    );
    assert!(run(&["--metrics", "x", "h"]).is_err());
    assert!(!c.reuse_port);
    assert!(config(&["--reuse-port", "h"]).reuse_port);
}

#[test]
fn management_options() {
    let c = config(&["-L", "::1", "-o", "9191", "-u", "a:b", "-u", "c:d:e", "h"]);
    assert_eq!(c.management.listen, "::1".parse::<IpAddr>().unwrap());
    assert_eq!(c.management.port, 9191);
    assert!(c.management.credentials.check(b"a", b"b"));
    assert!(c.management.credentials.check(b"c", b"d:e"));
    assert!(run(&["-u", "nopass", "h"]).is_err());
    assert!(run(&["-U", "/nonexistent", "h"])
        .unwrap_err()
        .contains("/nonexistent"));
    assert!(run(&["-o", "0", "h"]).is_err());
}

#[test]
fn filter_options() {
    let c = config(&[
        "-t",
        "grep -v '^Date:'",
        "-e",
        "/tmp/f.err",
        "-m",
        "hi",
        "-M",
        "text/plain",
        "-T",
        "1.5",
        "h",
    ]);
    assert_eq!(c.filter.command.as_deref(), Some("grep -v '^Date:'"));
    assert_eq!(c.filter.stderr.as_deref(), Some("/tmp/f.err"));
    assert_eq!(
        (c.filter.censor.message(), c.filter.censor.medias()),
        ("hi", "text/plain")
    );
    assert_eq!(c.timeout, Duration::from_millis(1500));
    assert!(run(&["-T", "0", "h"]).is_err());
    assert!(run(&["-T", "x", "h"]).is_err());
}

#[test]
fn options_and_literals() {
    let c = config(&[
        "-l", "::1", "-p", "2110", "-P", "1100", "-b", "4096", "[::1]",
    ]);
    assert_eq!(c.listen, vec!["::1".parse::<IpAddr>().unwrap()]);
    assert_eq!((c.port, c.origin.port, c.buffer_size), (2110, 1100, 4096));
    assert_eq!(c.origin.host, "::1");
    assert_eq!(c.origin.literal, Some("::1".parse().unwrap()));
    assert_eq!(
        config(&["10.0.0.1"]).origin.literal,
        Some("10.0.0.1".parse().unwrap())
    );
}

#[test]
fn errors() {
    assert!(run(&[]).unwrap_err().contains("missing origin"));
    assert!(run(&["-p", "0", "x"]).unwrap_err().contains("invalid port"));
    assert!(run(&["-p", "70000", "x"]).is_err());
    assert!(run(&["-P", "abc", "x"])
        .unwrap_err()
        .contains("origin port"));
    assert!(run(&["-x", "x"]).is_err());
    assert!(run(&["-l", "nowhere", "x"]).is_err());
    assert!(run(&["-b", "100", "x"]).is_err());
    assert!(run(&["a", "b"]).unwrap_err().contains("unexpected"));
}

#[test]
fn help_and_version() {
    assert_eq!(run(&["-h"]), Ok(Command::Help));
    assert_eq!(run(&["-v"]), Ok(Command::Version));
    for opt in [
        "-l",
        "-p",
        "-P",
        "-b",
        "-t",
        "-e",
        "-m",
        "-M",
        "-T",
        "-L",
        "-o",
        "-u",
        "-U",
        "-g",
        "-v",
        "-h",
        "--reuse-port",
    ] {
        assert!(usage().contains(opt), "usage lists {opt}");
    }
}
