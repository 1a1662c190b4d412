//! SPCP under random and hostile traffic (docs/spcp.md): 10 000 seeded random frames get
//! exactly the answers a model of the spec predicts; the listener is on 127.0.0.1 only; `-U FILE`
//! and no credentials; a flood (one connection that never reads its answers, one that does)
//! stalls neither a RETR of the big message nor other management connections; 200 idle
//! management connections do not slow POP3 and all still answer afterwards.

mod common;
mod spcp_support;

use common::{dovecot, Proxy};
use spcp_support::*;
use std::io::Write;
use std::net::{IpAddr, Shutdown, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// xorshift64
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The login state of one connection: logged in, the last USER, failed PASS count.
type Model = (bool, Option<Vec<u8>>, u8);

/// The daemon's settings: the transformation, the censor list, the censor note.
#[derive(Default)]
struct Settings {
    transf: String,
    medias: String,
    note: String,
}

/// The answer docs/spcp.md gives (no POP3 traffic: every counter is 0), and whether it closes.
fn expect(m: &mut Model, set: &mut Settings, cmd: u8, args: &[Vec<u8>]) -> (Answer, bool) {
    let transf = &mut set.transf;
    let (n, st) = (args.len(), |s: u8| (s, String::new()));
    let len = |i: usize| args.get(i).map(Vec::len);
    let int = |i: usize| args[i].iter().fold(0u64, |v, &b| v << 8 | b as u64);
    let buffer_ok = (n, len(0)) == (1, Some(2)) && int(0) >= 512;
    let utf8 = n == 1 && std::str::from_utf8(&args[0]).is_ok();
    let (secs, millis) = (len(0) == Some(4), len(1) == Some(4));
    let timeout_ok = n == 2 && secs && millis && int(1) < 1000 && int(0) + int(1) > 0;
    let answer = match cmd {
        0x06 => return (st(if n == 0 { 0 } else { 3 }), n == 0), // QUIT
        0x00 | 0x01 if n != 1 => st(3),
        0x00 => {
            *m = (false, Some(args[0].clone()), m.2);
            st(if args[0] == b"admin" { 0 } else { 1 })
        }
        0x01 if m.1.take().as_deref() == Some(b"admin") && args[0] == b"s3cr3t" => {
            *m = (true, None, 0);
            st(0)
        }
        0x01 => {
            m.2 += 1;
            return (st(1), m.2 == 3);
        }
        0x02..=0x05 | 0x07..=0x09 | 0x10..=0x14 if !m.0 => st(1),
        0x02..=0x05 | 0x07..=0x09 if n != 0 => st(3),
        0x02..=0x04 => (0, "0".into()),
        0x05 => (0, transf.clone()),
        0x07 => (0, set.medias.clone()),
        0x08 => (0, set.note.clone()),
        0x09 => (0, "0 0 0".into()),
        // The list's syntax is the mime crate's (tested there); here only who answers what.
        0x13 if utf8
            && mime::MediaRanges::parse(std::str::from_utf8(&args[0]).unwrap()).is_ok() =>
        {
            set.medias = String::from_utf8(args[0].clone()).unwrap();
            st(0)
        }
        0x13 => st(3),
        0x14 if n > 0
            && args
                .iter()
                .all(|a| matches!(std::str::from_utf8(a), Ok(t) if !t.contains(['\r', '\n']))) =>
        {
            let paragraphs: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8(a.clone()).unwrap())
                .filter(|p| !p.is_empty())
                .collect();
            set.note = paragraphs.join("\n");
            st(0)
        }
        0x14 => st(3),
        0x11 if utf8 => {
            let text = String::from_utf8(args[0].clone()).unwrap();
            *transf = if text.trim().is_empty() {
                String::new()
            } else {
                text
            };
            st(0)
        }
        0x10 if buffer_ok => st(0),
        0x12 if timeout_ok => st(0),
        0x10..=0x12 => st(3),
        _ => st(2),
    };
    (answer, false)
}

fn random_request(rng: &mut Rng) -> (u8, Vec<Vec<u8>>) {
    const KNOWN: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x12, 0x13, 0x14];
    let cmd = match rng.below(5) {
        0 => rng.below(256) as u8,
        _ => KNOWN[rng.below(KNOWN.len() as u64) as usize],
    };
    let arg = |rng: &mut Rng| match rng.below(8) {
        0 => b"admin".to_vec(),
        1 => b"s3cr3t".to_vec(),
        2 => vec![0, 0, 0, rng.below(3) as u8], // small seconds and millis
        3 => vec![rng.below(256) as u8, rng.below(256) as u8], // buffer sizes
        4 => vec![b' '; rng.below(3) as usize], // blank transformations
        5 if rng.below(2) == 0 => {
            [&b"image/*"[..], b"text/plain;q=0", b"a/", b"*/*, x/y"][rng.below(4) as usize].to_vec()
        } // censor lists, good and bad
        k => {
            let len = rng.below([6, 6, 256][k as usize - 5]);
            (0..len).map(|_| rng.below(256) as u8).collect()
        }
    };
    // Half the time the shape the command wants, so that values get checked too.
    let args = match (rng.below(2), cmd) {
        (0, 0x10) => vec![vec![rng.below(256) as u8, rng.below(256) as u8]],
        (0, 0x12) => (0..2)
            .map(|_| vec![0, 0, rng.below(5) as u8, rng.below(256) as u8]) // 0 to 1279
            .collect(),
        (0, 0x00 | 0x01 | 0x11 | 0x13 | 0x14) => vec![arg(rng)],
        (0, _) => vec![],
        _ => {
            let nargs = match rng.below(9) {
                8 => rng.below(256),
                n => [0, 0, 1, 1, 1, 2, 2, 3][n as usize],
            };
            (0..nargs).map(|_| arg(rng)).collect()
        }
    };
    (cmd, args)
}

#[test]
fn ten_thousand_random_frames_get_the_answers_of_the_spec() {
    let proxy = proxy(&[]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut total, mut connections, mut settings) = (0, 0, Settings::default());
    while total < 10_000 {
        let mut c = Spcp::connect(proxy.mgmt_port);
        let (mut model, mut wire, mut want) = (Model::default(), Vec::new(), Vec::new());
        if connections % 2 == 1 {
            model = (true, None, 0); // every other connection logs in first
            c.script(LOGIN);
        }
        let mut closes = false;
        while !closes && total < 10_000 {
            let (cmd, args) = random_request(&mut rng);
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            wire.extend(frame(cmd, &refs));
            let (answer, close) = expect(&mut model, &mut settings, cmd, &args);
            want.push((answer, cmd, args.len()));
            (closes, total) = (close, total + 1);
        }
        if !closes {
            wire.extend([0x06, 0]); // QUIT
            want.push(((0, String::new()), 0x06, 0));
        }
        let mut out = c.0.try_clone().unwrap();
        let writer = thread::spawn(move || out.write_all(&wire));
        for (i, (answer, cmd, nargs)) in want.iter().enumerate() {
            let what = format!("connection {connections} frame {i}: {cmd:#04x}, {nargs} args");
            assert_eq!(&c.recv(), answer, "{what}");
        }
        c.assert_eof();
        writer.join().unwrap().expect("write the frames");
        connections += 1;
    }
    eprintln!("{total} random frames on {connections} connections");
    let mut c = Spcp::login(proxy.mgmt_port);
    c.send(&[0x05, 0]);
    assert_eq!(
        c.recv(),
        (0, settings.transf),
        "the last transformation set"
    );
    c.script(r#"11 "" > 00; 12 0000003c 00000000 > 00"#);
    let mut p = pop3(proxy.port, "alice");
    p.cmd("STAT");
    assert_eq!(p.line(), dovecot().stat_line("alice").as_bytes());
    assert_eq!(c.num(CONNS), 1);
}

#[test]
fn management_listens_on_loopback_only() {
    let proxy = proxy(&[]);
    Spcp::login(proxy.mgmt_port); // listening by now
    let port = format!(":{:04X}", proxy.mgmt_port);
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f[1].ends_with(&port) && f[3] == "0A" {
                listening.push(f[1].to_string());
            }
        }
    }
    assert_eq!(listening, [format!("0100007F{port}")]);
    // And from the machine's own non-loopback address (a UDP connect sends nothing).
    let local = UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|_| s.local_addr()));
    match local.map(|a| a.ip()) {
        Ok(ip @ IpAddr::V4(v4)) if !v4.is_loopback() && !v4.is_unspecified() => {
            let addr = (ip, proxy.mgmt_port).into();
            let r = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
            assert!(r.is_err(), "management port reachable on {ip}");
        }
        other => eprintln!("skipped the non-loopback check: no such address ({other:?})"),
    }
}

#[test]
fn credentials_file_and_no_credentials() {
    let path = std::env::temp_dir().join(format!("spcp-test-creds-{}", std::process::id()));
    std::fs::write(&path, "# operators: user:pass\n\nops:pa:ss\nro:\n").unwrap();
    let proxy = Proxy::for_dovecot(&["-U", path.to_str().unwrap()]);
    let mut c = Spcp::connect(proxy.mgmt_port);
    std::fs::remove_file(&path).unwrap();
    c.script(
        r##" 00 "# operators" > 01                     // a comment is no user
            00 "ops" > 00; 01 "pa:ss" > 00; 02 > 00 "0"  // all after the first colon
            00 "ro" > 00; 01 "" > 00"##,
    );
    let bare = Proxy::for_dovecot(&[]);
    wait_until("the warning", || {
        bare.log().contains("no management credentials")
    });
    let mut c = Spcp::connect(bare.mgmt_port);
    c.script(r#"00 "admin" > 01; 01 "s3cr3t" > 01; 00 "" > 01; 01 "" > 01"#);
}

#[test]
fn a_flood_stalls_neither_pop3_nor_other_managers() {
    let proxy = proxy(&[]);
    let port = proxy.port;
    // The reference copy is fetched before the clock starts.
    big_direct();
    // Two floods of frames, as fast as the daemon takes them, until the RETR is done: one
    // never reads its answers; the other's are drained, so the daemon never stops reading it.
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<Spcp> = (0..2).map(|_| Spcp::login(proxy.mgmt_port)).collect();
    let writers: Vec<_> = floods
        .iter()
        .map(|f| {
            let (mut out, stop) = (f.0.try_clone().unwrap(), stop.clone());
            out.set_write_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            thread::spawn(move || {
                let (chunk, mut frames) = ([ACCESSES, 0].repeat(2048), 0);
                while !stop.load(Ordering::Relaxed) && out.write_all(&chunk).is_ok() {
                    frames += 2048;
                }
                frames
            })
        })
        .collect();
    let mut drain = floods[1].0.try_clone().unwrap();
    thread::spawn(move || std::io::copy(&mut drain, &mut std::io::sink()));
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let retr = thread::spawn(move || retr(&mut pop3(port, "big"), 1));
    let mut slowest = Duration::ZERO; // of other managers' login and query
    while !retr.is_finished() && started.elapsed() < Duration::from_secs(20) {
        let t = Instant::now();
        assert!(Spcp::login(proxy.mgmt_port).num(CONNS) <= 1);
        slowest = slowest.max(t.elapsed());
        assert!(
            slowest < Duration::from_secs(3),
            "a manager waited {slowest:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    assert!(took < Duration::from_secs(20), "RETR stalled");
    assert_big(&retr.join().unwrap(), "RETR during a flood");
    for f in &floods {
        let _ = f.0.shutdown(Shutdown::Both);
    }
    let frames: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    eprintln!("RETR in {took:?}, floods wrote {frames:?} frames, managers took {slowest:?}");
}

#[test]
fn two_hundred_idle_managers_do_not_slow_pop3() {
    let proxy = proxy(&[]);
    big_direct();
    // 200 management connections held open and idle, half of them logged in.
    let mut idle: Vec<Spcp> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                Spcp::login(proxy.mgmt_port)
            } else {
                Spcp::connect(proxy.mgmt_port)
            }
        })
        .collect();
    // POP3 at full speed meanwhile: three RETRs of the 20 MiB message, each exact.
    let started = Instant::now();
    for _ in 0..3 {
        let got = retr(&mut pop3(proxy.port, "big"), 1);
        assert_big(&got, "RETR with 200 idle managers");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "3 x 20 MiB took {took:?}");
    // Every idle manager is still there and answers.
    for (i, m) in idle.iter_mut().enumerate() {
        if i % 2 == 0 {
            assert!(m.num(CONNS) <= 1, "manager {i}");
        } else {
            m.script("02 > 01"); // not logged in
        }
    }
}
