//! The HTTP/1.1 a scraper speaks: its request head, parsed as it arrives, and the responses the
//! endpoint writes.
//!
//! [`RequestParser::feed`] is given everything received so far (the buffer only grows) and
//! says [`Parse::Incomplete`], [`Parse::Done`] or [`Parse::Bad`] with the status to answer.
//! It remembers how far it looked, so a request trickling in one byte at a time is scanned
//! once, not once per byte; a bad request line is refused as soon as that line is complete.
//! Only what the endpoint needs is kept: the method, the path and which format the `Accept`
//! header prefers. Bodies are never read (the connection closes after one response).
//!
//! Accepted: a request line `METHOD SP target SP HTTP/1.0|HTTP/1.1` (origin form, or absolute
//! form whose authority is ignored), header fields `name: value`, lines ending in CRLF or LF,
//! empty lines before the request line. Refused with 400: anything else, a field folded over
//! two lines, control characters, an HTTP/1.1 request without exactly one `Host`. A head longer
//! than [`MAX_REQUEST`] is refused with 431.

/// Longest request head taken, in bytes.
pub const MAX_REQUEST: usize = 8 * 1024;

/// The statuses the endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200: the metrics.
    Ok,
    /// 400: a malformed request.
    BadRequest,
    /// 404: a path other than `/metrics`.
    NotFound,
    /// 405: a method other than GET or HEAD on `/metrics`.
    MethodNotAllowed,
    /// 431: a request head longer than [`MAX_REQUEST`].
    TooLarge,
}

impl Status {
    /// The status code and its reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::TooLarge => (431, "Request Header Fields Too Large"),
        }
    }
}

/// The request's method, as far as the endpoint cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD: the same head as GET, no body.
    Head,
    /// Any other (well-formed) method.
    Other,
}

/// A complete, well-formed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// `Accept` prefers OpenMetrics to the Prometheus text format.
    pub openmetrics: bool,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not a whole request head yet.
    Incomplete,
    /// A request.
    Done(Request),
    /// A request to refuse with this status.
    Bad(Status),
}

/// A request head parser over a buffer that grows between calls.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Bytes already looked at for a line end.
    scanned: usize,
    /// The request line was complete and checked.
    line_checked: bool,
}

impl RequestParser {
    /// Looks at `buf`, everything received so far (what an earlier call saw, and more).
    pub fn feed(&mut self, buf: &[u8]) -> Parse {
        let start = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buf.len());
        let from = self.scanned.max(start);
        for i in from..buf.len() {
            if buf[i] != b'\n' {
                continue;
            }
            if !self.line_checked {
                self.line_checked = true;
                if let Err(status) = request_line(trim_cr(&buf[start..i])) {
                    return Parse::Bad(status);
                }
                continue;
            }
            let empty = buf[i - 1] == b'\n' || (buf[i - 1] == b'\r' && buf[i - 2] == b'\n');
            if empty {
                return match head(&buf[start..=i]) {
                    Ok(request) => Parse::Done(request),
                    Err(status) => Parse::Bad(status),
                };
            }
        }
        self.scanned = buf.len();
        if buf.len() >= MAX_REQUEST {
            return Parse::Bad(Status::TooLarge);
        }
        Parse::Incomplete
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A token character (RFC 9110 section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks the request line; returns the method, the path and whether it is HTTP/1.1.
fn request_line(line: &[u8]) -> Result<(Method, String, bool), Status> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Status::BadRequest);
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(Status::BadRequest),
    };
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Status::BadRequest);
    }
    let target = String::from_utf8_lossy(target);
    let path = match target.split_once("://") {
        // Absolute form: the path starts after the authority.
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => {
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        _ if target.starts_with('/') => &target,
        _ => return Err(Status::BadRequest),
    };
    let path = path.split(['?', '#']).next().unwrap_or("/").to_string();
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    Ok((method, path, http11))
}

/// Parses a whole head (request line, fields, empty line).
fn head(head: &[u8]) -> Result<Request, Status> {
    let mut lines = head.split(|&b| b == b'\n').map(trim_cr);
    let (method, path, http11) = request_line(lines.next().unwrap_or_default())?;
    let mut hosts = 0;
    let mut accept = String::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(Status::BadRequest);
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // No whitespace before the colon, no folded lines, no control characters.
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(Status::BadRequest);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Status::BadRequest);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"accept") {
            accept.push(',');
            accept.push_str(&String::from_utf8_lossy(value));
        }
    }
    if http11 && hosts != 1 {
        return Err(Status::BadRequest);
    }
    Ok(Request {
        method,
        path,
        openmetrics: prefers_openmetrics(&accept),
    })
}

/// Whether an `Accept` value names `application/openmetrics-text` with a weight at least that
/// of `text/plain` (given directly, as `text/*` or as `*/*`). Without it: the text format.
pub fn prefers_openmetrics(accept: &str) -> bool {
    let (mut om, mut text, mut text_any, mut any) = (None, None, None, None);
    for element in accept.split(',') {
        let mut params = element.split(';');
        let essence = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok());
        let Some(q) = q.filter(|q| (0.0..=1.0).contains(q)) else {
            continue; // a weight that does not parse: the element is ignored
        };
        let slot = match essence.as_str() {
            "application/openmetrics-text" => &mut om,
            "text/plain" => &mut text,
            "text/*" => &mut text_any,
            "*/*" => &mut any,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
    }
    let text = text.or(text_any).or(any).unwrap_or(0.0);
    om.is_some_and(|q| q > 0.0 && q >= text)
}

/// Appends a whole response to `out`: `Connection: close`, a `Content-Length`, and the body
/// unless the request was HEAD.
pub fn response(out: &mut Vec<u8>, status: Status, content_type: &str, body: &[u8], head: bool) {
    let (code, reason) = status.line();
    let allow = match status {
        Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
        _ => "",
    };
    let fields = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {allow}Connection: close\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(fields.as_bytes());
    if !head {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests;
