//! The censor's SPCP commands: read and change the censored media types and the note, and
//! read what the censor did. A change applies from the next RETR or TOP.

use super::wire::{status, Request, Response};
use crate::ctx::Ctx;
use crate::filter::Censoring;

/// 0x07: the censored media types as given (empty: none).
pub fn medias(ctx: &Ctx) -> Response {
    Response::ok(ctx.config.filter.censor.medias())
}

/// 0x08: the note's paragraphs, one a line (empty: the default note).
pub fn note(ctx: &Ctx) -> Response {
    Response::ok(ctx.config.filter.censor.message())
}

/// 0x09: parts censored, messages censored and problems passed through, since start.
pub fn counters(ctx: &Ctx) -> Response {
    let c = ctx.metrics.censor;
    Response::ok(format!("{} {} {}", c.parts, c.messages, c.problems))
}

/// 0x13: one argument, the list in HTTP Accept syntax (empty: censor nothing). A list that
/// cannot be parsed is `03` and changes nothing.
pub fn set_medias(req: &Request, ctx: &mut Ctx, peer: &str) -> Response {
    let [arg] = req.args.as_slice() else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let Ok(list) = std::str::from_utf8(arg) else {
        return Response::status(status::INVALID_ARGUMENTS);
    };
    let current = &ctx.config.filter.censor;
    let paragraphs: Vec<String> = current.message().lines().map(String::from).collect();
    match Censoring::new(list, &paragraphs) {
        Ok(censor) => {
            log::info!("management: censored media types set to {list:?} by {peer}");
            ctx.config.filter.censor = censor;
            Response::status(status::OK)
        }
        Err(e) => {
            log::warn!("management: censor list {list:?} from {peer} refused: {e}");
            Response::status(status::INVALID_ARGUMENTS)
        }
    }
}

/// 0x14: the note, one argument per paragraph (one empty argument: the default note).
pub fn set_note(req: &Request, ctx: &mut Ctx, peer: &str) -> Response {
    if req.args.is_empty() {
        return Response::status(status::INVALID_ARGUMENTS);
    }
    let mut paragraphs = Vec::with_capacity(req.args.len());
    for arg in &req.args {
        match std::str::from_utf8(arg) {
            // A paragraph is one line of FILTER_MSG: no line breaks inside.
            Ok(text) if !text.contains(['\r', '\n']) => paragraphs.push(text.to_string()),
            _ => return Response::status(status::INVALID_ARGUMENTS),
        }
    }
    let medias = ctx.config.filter.censor.medias().to_string();
    match Censoring::new(&medias, &paragraphs) {
        Ok(censor) => {
            log::info!("management: censor note set by {peer}");
            ctx.config.filter.censor = censor;
            Response::status(status::OK)
        }
        Err(_) => Response::status(status::ERROR),
    }
}
