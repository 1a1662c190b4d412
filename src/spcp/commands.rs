//! What each SPCP command does, given the connection's login state and the loop's context.
//!
//! [`execute`] is the whole protocol's semantics in one function per command; the connection
//! (mod.rs) only moves frames. Arguments are checked before anything changes: a request that
//! gets `03` changes nothing.

use super::censor;
use super::wire::{cmd, status, Request, Response};
use crate::args::BUFFER_RANGE;
use crate::ctx::Ctx;
use std::time::Duration;

/// Failed PASS attempts after which the connection is closed.
pub const MAX_FAILURES: u8 = 3;

/// Where a management connection stands with authentication.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user named by the last USER (existing or not), until PASS.
    pub user: Option<Vec<u8>>,
    /// Logged in.
    pub authenticated: bool,
    /// Failed PASS attempts so far.
    pub failures: u8,
}

/// What the connection should do after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep going.
    Continue,
    /// Close once the answer is written.
    Close,
}

fn no_args(req: &Request, answer: impl FnOnce() -> Response) -> Response {
    if req.args.is_empty() {
        answer()
    } else {
        Response::status(status::INVALID_ARGUMENTS)
    }
}

/// Runs one request.
pub fn execute(req: &Request, login: &mut Login, ctx: &mut Ctx, peer: &str) -> (Response, After) {
    let known = matches!(
        req.cmd,
        cmd::USER
            | cmd::PASS
            | cmd::CONNECTIONS
            | cmd::BYTES
            | cmd::ACCESSES
            | cmd::TRANSFORMATION
            | cmd::QUIT
            | cmd::SET_BUFFER
            | cmd::SET_TRANSFORMATION
            | cmd::SET_TIMEOUT
            | cmd::CENSOR_MEDIAS
            | cmd::CENSOR_NOTE
            | cmd::CENSOR_COUNTERS
            | cmd::SET_CENSOR_MEDIAS
            | cmd::SET_CENSOR_NOTE
    );
    if !known {
        return (Response::status(status::INVALID_COMMAND), After::Continue);
    }
    if req.cmd == cmd::QUIT {
        return match req.args.is_empty() {
            true => (Response::status(status::OK), After::Close),
            false => (Response::status(status::INVALID_ARGUMENTS), After::Continue),
        };
    }
    if req.cmd == cmd::USER || req.cmd == cmd::PASS {
        return authenticate(req, login, ctx, peer);
    }
    if !login.authenticated {
        return (Response::status(status::AUTH_ERR), After::Continue);
    }
    let m = &ctx.metrics;
    let response = match req.cmd {
        cmd::CONNECTIONS => no_args(req, || Response::ok(m.sessions_open.to_string())),
        cmd::BYTES => no_args(req, || Response::ok(m.bytes_relayed().to_string())),
        cmd::ACCESSES => no_args(req, || Response::ok(m.sessions_accepted.to_string())),
        cmd::TRANSFORMATION => {
            let current = ctx.config.filter.command.clone().unwrap_or_default();
            no_args(req, || Response::ok(current))
        }
        cmd::CENSOR_MEDIAS => no_args(req, || censor::medias(ctx)),
        cmd::CENSOR_NOTE => no_args(req, || censor::note(ctx)),
        cmd::CENSOR_COUNTERS => no_args(req, || censor::counters(ctx)),
        cmd::SET_CENSOR_MEDIAS => censor::set_medias(req, ctx, peer),
        cmd::SET_CENSOR_NOTE => censor::set_note(req, ctx, peer),
        cmd::SET_BUFFER => set_buffer(req, ctx),
        cmd::SET_TRANSFORMATION => set_transformation(req, ctx, peer),
        _ => set_timeout(req, ctx, peer),
    };
    (response, After::Continue)
}

fn authenticate(req: &Request, login: &mut Login, ctx: &mut Ctx, peer: &str) -> (Response, After) {
    let [arg] = req.args.as_slice() else {
        return (Response::status(status::INVALID_ARGUMENTS), After::Continue);
    };
    let creds = &ctx.config.management.credentials;
    if req.cmd == cmd::USER {
        login.user = Some(arg.clone());
        login.authenticated = false;
        let st = if creds.has_user(arg) {
            status::OK
        } else {
            status::AUTH_ERR
        };
        return (Response::status(st), After::Continue);
    }
    let ok = match login.user.take() {
        Some(user) => {
            let ok = creds.check(&user, arg);
            if !ok {
                log::warn!(
                    "management: failed login for user '{}' from {peer}",
                    String::from_utf8_lossy(&user)
                );
            } else {
                log::info!(
                    "management: {} logged in from {peer}",
                    String::from_utf8_lossy(&user)
                );
            }
            ok
        }
        None => {
            log::warn!("management: PASS without USER from {peer}");
            false
        }
    };
    if ok {
        login.authenticated = true;
        login.failures = 0;
        return (Response::status(status::OK), After::Continue);
    }
    login.failures += 1;
    let after = if login.failures >= MAX_FAILURES {
        log::warn!("management: {MAX_FAILURES} failed logins from {peer}; closing");
        After::Close
    } else {
        After::Continue
    };
    (Response::status(status::AUTH_ERR), after)
}

fn set_buffer(req: &Request, ctx: &mut Ctx) -> Response {
    let [arg] = req.args.as_slice() else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let Ok(bytes) = <[u8; 2]>::try_from(arg.as_slice()) else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let size = u16::from_be_bytes(bytes) as usize;
    if !(BUFFER_RANGE.0..=BUFFER_RANGE.1).contains(&size) {
        return Response::status(status::INVALID_ARGUMENTS);
    }
    log::info!(
        "management: buffer size {} -> {size} for new sessions",
        ctx.config.buffer_size
    );
    ctx.config.buffer_size = size;
    Response::status(status::OK)
}

fn set_transformation(req: &Request, ctx: &mut Ctx, peer: &str) -> Response {
    let [arg] = req.args.as_slice() else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let Ok(text) = std::str::from_utf8(arg) else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let command = (!text.trim().is_empty()).then(|| text.to_string());
    log::info!(
        "management: transformation set to {:?} by {peer}",
        command.as_deref().unwrap_or("(none)")
    );
    ctx.config.filter.command = command;
    Response::status(status::OK)
}

fn set_timeout(req: &Request, ctx: &mut Ctx, peer: &str) -> Response {
    let [secs, millis] = req.args.as_slice() else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let (Ok(secs), Ok(millis)) = (
        <[u8; 4]>::try_from(secs.as_slice()),
        <[u8; 4]>::try_from(millis.as_slice()),
    ) else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let (secs, millis) = (u32::from_be_bytes(secs), u32::from_be_bytes(millis));
    if millis >= 1000 || (secs == 0 && millis == 0) {
        return Response::status(status::INVALID_ARGUMENTS);
    }
    let timeout = Duration::from_secs(secs as u64) + Duration::from_millis(millis as u64);
    log::info!("management: inactivity timeout set to {timeout:?} by {peer}");
    ctx.config.timeout = timeout;
    Response::status(status::OK)
}

#[cfg(test)]
mod tests;
