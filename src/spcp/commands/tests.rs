//! Every SPCP command's statuses and error paths, against a real `Ctx`.

use super::*;
use crate::args::{self, Command};
use crate::filter::spawner::Spawner;
use crate::filter::Orphans;
use crate::metrics::Metrics;
use crate::resolve::Resolver;
use selector::Selector;

fn ctx() -> Ctx {
    let argv: Vec<String> = ["-u", "admin:pw", "origin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let Ok(Command::Run(config)) = args::parse(&argv) else {
        panic!()
    };
    let selector = Selector::new(8).unwrap();
    let resolver = Resolver::new(selector.waker());
    let spawner = Spawner::new(selector.waker(), 1);
    Ctx {
        selector,
        resolver,
        config: *config,
        metrics: Metrics::default(),
        orphans: Orphans::default(),
        spawner,
        starved: Vec::new(),
        listening: Vec::new(),
        outgoing: Default::default(),
        xclient_missing_logged: false,
        out_of_fds_since: None,
        tls: Default::default(),
    }
}

fn req(cmd: u8, args: &[&[u8]]) -> Request {
    Request {
        cmd,
        args: args.iter().map(|a| a.to_vec()).collect(),
    }
}

fn run(ctx: &mut Ctx, login: &mut Login, cmd: u8, args: &[&[u8]]) -> (u8, String, After) {
    let (r, after) = execute(&req(cmd, args), login, ctx, "test");
    (r.status, String::from_utf8(r.data).unwrap(), after)
}

fn logged_in(ctx: &mut Ctx) -> Login {
    let mut login = Login::default();
    assert_eq!(run(ctx, &mut login, cmd::USER, &[b"admin"]).0, status::OK);
    assert_eq!(run(ctx, &mut login, cmd::PASS, &[b"pw"]).0, status::OK);
    login
}

#[test]
fn authentication() {
    let mut c = ctx();
    let mut l = Login::default();
    assert_eq!(
        run(&mut c, &mut l, cmd::CONNECTIONS, &[]).0,
        status::AUTH_ERR
    );
    assert_eq!(
        run(&mut c, &mut l, cmd::PASS, &[b"pw"]).0,
        status::AUTH_ERR,
        "PASS without USER"
    );
    assert_eq!(
        run(&mut c, &mut l, cmd::USER, &[b"nobody"]).0,
        status::AUTH_ERR
    );
    assert_eq!(
        run(&mut c, &mut l, cmd::USER, &[]).0,
        status::INVALID_ARGUMENTS
    );
    assert_eq!(run(&mut c, &mut l, cmd::USER, &[b"admin"]).0, status::OK);
    assert_eq!(run(&mut c, &mut l, cmd::PASS, &[b"no"]).0, status::AUTH_ERR);
    assert_eq!(
        run(&mut c, &mut l, cmd::PASS, &[b"pw"]).0,
        status::AUTH_ERR,
        "USER is used up"
    );
    assert_eq!(l.failures, 3);
    let mut l = Login::default();
    run(&mut c, &mut l, cmd::USER, &[b"admin"]);
    assert_eq!(run(&mut c, &mut l, cmd::PASS, &[b"pw"]).0, status::OK);
    assert_eq!(run(&mut c, &mut l, cmd::CONNECTIONS, &[]).0, status::OK);
}

#[test]
fn three_failures_close() {
    let mut c = ctx();
    let mut l = Login::default();
    for i in 1..=3 {
        run(&mut c, &mut l, cmd::USER, &[b"admin"]);
        let (st, _, after) = run(&mut c, &mut l, cmd::PASS, &[b"wrong"]);
        assert_eq!(st, status::AUTH_ERR);
        assert_eq!(after == After::Close, i == 3);
    }
}

#[test]
fn metrics_and_settings() {
    let mut c = ctx();
    let mut l = logged_in(&mut c);
    c.metrics.session_opened();
    c.metrics.bytes_to_client = 1000;
    c.metrics.bytes_to_origin = 234;
    assert_eq!(run(&mut c, &mut l, cmd::CONNECTIONS, &[]).1, "1");
    assert_eq!(run(&mut c, &mut l, cmd::BYTES, &[]).1, "1234");
    assert_eq!(run(&mut c, &mut l, cmd::ACCESSES, &[]).1, "1");
    assert_eq!(run(&mut c, &mut l, cmd::TRANSFORMATION, &[]).1, "");
    assert_eq!(
        run(&mut c, &mut l, cmd::SET_TRANSFORMATION, &[b"cat -v"]).0,
        status::OK
    );
    assert_eq!(run(&mut c, &mut l, cmd::TRANSFORMATION, &[]).1, "cat -v");
    assert_eq!(
        run(&mut c, &mut l, cmd::SET_TRANSFORMATION, &[b""]).0,
        status::OK
    );
    assert_eq!(c.config.filter.command, None);
    assert_eq!(
        run(&mut c, &mut l, cmd::SET_BUFFER, &[&4096u16.to_be_bytes()]).0,
        status::OK
    );
    assert_eq!(c.config.buffer_size, 4096);
    let secs = 2u32.to_be_bytes();
    let ms = 500u32.to_be_bytes();
    assert_eq!(
        run(&mut c, &mut l, cmd::SET_TIMEOUT, &[&secs, &ms]).0,
        status::OK
    );
    assert_eq!(c.config.timeout, Duration::from_millis(2500));
    assert_eq!(run(&mut c, &mut l, cmd::QUIT, &[]).2, After::Close);
}

#[test]
fn invalid_arguments_change_nothing() {
    let mut c = ctx();
    let mut l = logged_in(&mut c);
    let before = c.config.clone();
    let bad: &[(u8, &[&[u8]])] = &[
        (cmd::CONNECTIONS, &[b"x"]),
        (cmd::SET_BUFFER, &[]),
        (cmd::SET_BUFFER, &[&[0x01]]),
        (cmd::SET_BUFFER, &[&[0, 1, 0]]),
        (cmd::SET_BUFFER, &[&511u16.to_be_bytes()]),
        (cmd::SET_TRANSFORMATION, &[]),
        (cmd::SET_TRANSFORMATION, &[&[0xff, 0xfe]]),
        (cmd::SET_TIMEOUT, &[&[0, 0, 0, 1]]),
        (cmd::SET_TIMEOUT, &[&[0, 0, 0, 0], &[0, 0, 0, 0]]),
        (cmd::SET_TIMEOUT, &[&[0, 0, 0, 1], &1000u32.to_be_bytes()]),
        (cmd::SET_TIMEOUT, &[&[0, 0, 1], &[0, 0, 0, 0]]),
    ];
    for (code, args) in bad {
        assert_eq!(
            run(&mut c, &mut l, *code, args).0,
            status::INVALID_ARGUMENTS,
            "{code:#x} {args:?}"
        );
    }
    assert_eq!(c.config, before);
    let (st, _, after) = run(&mut c, &mut l, cmd::QUIT, &[b"x"]);
    assert_eq!((st, after), (status::INVALID_ARGUMENTS, After::Continue));
}

#[test]
fn unknown_commands_in_both_states() {
    let mut c = ctx();
    let mut fresh = Login::default();
    for code in [0x0a, 0x0f, 0x15, 0x80, 0xff] {
        assert_eq!(
            run(&mut c, &mut fresh, code, &[]).0,
            status::INVALID_COMMAND
        );
    }
    let mut l = logged_in(&mut c);
    assert_eq!(
        run(&mut c, &mut l, 0x15, &[b"x"]).0,
        status::INVALID_COMMAND
    );
}

#[test]
fn censor_commands() {
    let mut c = ctx();
    let mut fresh = Login::default();
    assert_eq!(
        run(&mut c, &mut fresh, cmd::CENSOR_MEDIAS, &[]).0,
        status::AUTH_ERR
    );
    let mut l = logged_in(&mut c);
    let get = |c: &mut Ctx, l: &mut Login, code| {
        let (st, data, _) = run(c, l, code, &[]);
        assert_eq!(st, status::OK);
        data
    };
    assert_eq!(get(&mut c, &mut l, cmd::CENSOR_MEDIAS), "");
    assert_eq!(get(&mut c, &mut l, cmd::CENSOR_COUNTERS), "0 0 0");
    let set = |c: &mut Ctx, l: &mut Login, code, args: &[&[u8]]| run(c, l, code, args).0;
    assert_eq!(
        set(&mut c, &mut l, cmd::SET_CENSOR_MEDIAS, &[b"image/*"]),
        status::OK
    );
    assert!(c.config.filter.censor.is_on());
    let before = c.config.clone();
    for bad in [&b"image/"[..], b"*", b"a/b;q=x"] {
        let st = set(&mut c, &mut l, cmd::SET_CENSOR_MEDIAS, &[bad]);
        assert_eq!(st, status::INVALID_ARGUMENTS, "{bad:?}");
    }
    let st = set(&mut c, &mut l, cmd::SET_CENSOR_MEDIAS, &[b"a/b", b"c/d"]);
    assert_eq!(st, status::INVALID_ARGUMENTS);
    assert_eq!(
        set(&mut c, &mut l, cmd::SET_CENSOR_NOTE, &[]),
        status::INVALID_ARGUMENTS
    );
    let st = set(&mut c, &mut l, cmd::SET_CENSOR_NOTE, &[b"a\nb"]);
    assert_eq!(st, status::INVALID_ARGUMENTS);
    assert_eq!(c.config, before, "a refused change changes nothing");
    assert_eq!(get(&mut c, &mut l, cmd::CENSOR_MEDIAS), "image/*");
    assert_eq!(
        set(&mut c, &mut l, cmd::SET_CENSOR_NOTE, &[b"One.", b"Two."]),
        status::OK
    );
    assert_eq!(get(&mut c, &mut l, cmd::CENSOR_NOTE), "One.\nTwo.");
    assert_eq!(
        get(&mut c, &mut l, cmd::CENSOR_MEDIAS),
        "image/*",
        "the list stays"
    );
    assert_eq!(
        set(&mut c, &mut l, cmd::SET_CENSOR_MEDIAS, &[b""]),
        status::OK
    );
    assert!(!c.config.filter.censor.is_on());
    assert_eq!(
        get(&mut c, &mut l, cmd::CENSOR_NOTE),
        "One.\nTwo.",
        "the note stays"
    );
}
