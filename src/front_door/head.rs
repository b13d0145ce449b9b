//! Checking a request head before it goes on, and reading the head of the
//! response that comes back.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The front door must agree with `tiny_http` on where each request ends, or
//! a client could hide a second request inside the first one's body (request
//! smuggling). So this parser is stricter than `tiny_http`'s: whatever it
//! lets through, `tiny_http` reads the same way, and anything ambiguous (two
//! lengths, a length beside chunking, a header line that `tiny_http` would
//! trim into something else) is refused with `400 Bad Request`.

use std::net::IpAddr;

/// How a message's body is delimited (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunks, up to a chunk of size zero and optional trailer lines.
    Chunked,
    /// Everything until the sender closes (only ever in a response).
    UntilClose,
}

/// A request head that passed every check.
#[derive(Debug)]
pub(super) struct RequestHead {
    /// The head as it goes on to `tiny_http`: the client's, minus
    /// `Expect: 100-continue` (the front door answers that itself) and any
    /// `X-Forwarded-For`, plus our own `X-Forwarded-For` naming the client.
    pub forwarded: Vec<u8>,
    /// A `HEAD` request: its response has a head only.
    pub is_head: bool,
    /// How the body is delimited.
    pub framing: Framing,
    /// The most body bytes this request's path accepts.
    pub body_limit: u64,
    /// The client waits for `100 Continue` before it sends the body.
    pub expects_continue: bool,
    /// The client may send another request on this connection afterwards.
    pub keep_alive: bool,
}

/// A request the front door answers itself, with this status and reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub(super) fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::new(400, message)
}

/// Checks a complete request head (ending with the empty line) from `peer`.
/// `body_limit` gives the largest body each request target accepts.
pub(super) fn check_request(
    head: &[u8],
    peer: IpAddr,
    body_limit: &dyn Fn(&str) -> u64,
) -> Result<RequestHead, Refusal> {
    let text = std::str::from_utf8(head)
        .ok()
        .filter(|text| text.is_ascii())
        .ok_or_else(|| bad("the request head must be ASCII text"))?;
    let text = text.strip_suffix("\r\n\r\n").unwrap_or(text);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    for line in text.split("\r\n") {
        // A lone CR or LF is read as a line end by some servers and not by
        // others: refused, as RFC 9112 allows.
        if !line
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(bad(
                "the request head holds a control character (a lone CR or LF?)",
            ));
        }
    }
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(target), Some(version), None)
            if is_token(method) && !target.is_empty() =>
        {
            (method, target, version)
        }
        _ => {
            return Err(bad(
                "the request line must be `METHOD TARGET HTTP/1.1`, single spaces apart",
            ))
        }
    };
    let http_1_0 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ if version.starts_with("HTTP/") => {
            return Err(Refusal::new(
                505,
                "only HTTP/1.0 and HTTP/1.1 are spoken here",
            ))
        }
        _ => return Err(bad("the request line must end with HTTP/1.1 or HTTP/1.0")),
    };

    let mut forwarded = Vec::with_capacity(head.len() + 40);
    forwarded.extend_from_slice(request_line.as_bytes());
    forwarded.extend_from_slice(b"\r\n");
    let mut length: Option<u64> = None;
    let mut length_too_large = false;
    let mut chunked = false;
    let mut expects_continue = false;
    let mut connection = String::new();
    for line in lines {
        // No whitespace in or after a name: `tiny_http` trims lines, so a
        // folded line or `Name : value` would mean something else to it.
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| is_token(name))
            .ok_or_else(|| bad(format!("malformed header line: {:.60}", line)))?;
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("Content-Length") {
            if length.is_some() || length_too_large {
                return Err(bad("more than one Content-Length header"));
            }
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("Content-Length is not a number: {value:.40}")));
            }
            // Only digits, so failing to parse means it overflows u64.
            match value.parse::<u64>() {
                Ok(parsed) => length = Some(parsed),
                Err(_) => length_too_large = true,
            }
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            if chunked {
                return Err(bad("more than one Transfer-Encoding header"));
            }
            if !value.eq_ignore_ascii_case("chunked") {
                return Err(Refusal::new(
                    501,
                    format!("Transfer-Encoding {value:.40} is not supported; only chunked is"),
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("Expect") && value.eq_ignore_ascii_case("100-continue")
        {
            expects_continue = true;
            continue;
        } else if name.eq_ignore_ascii_case("X-Forwarded-For") {
            // Only the front door says who the client is.
            continue;
        } else if name.eq_ignore_ascii_case("Connection") {
            connection.push_str(&value.to_ascii_lowercase());
            connection.push(',');
        }
        forwarded.extend_from_slice(line.as_bytes());
        forwarded.extend_from_slice(b"\r\n");
    }
    forwarded.extend_from_slice(format!("X-Forwarded-For: {peer}\r\n\r\n").as_bytes());

    if chunked && (length.is_some() || length_too_large) {
        return Err(bad(
            "a request may not have both Content-Length and Transfer-Encoding",
        ));
    }
    // `tiny_http` looks for these words anywhere in the header, so we do too.
    if connection.contains("upgrade") {
        return Err(Refusal::new(501, "protocol upgrades are not supported"));
    }
    let keep_alive = if http_1_0 {
        connection.contains("keep-alive") && !connection.contains("close")
    } else {
        !connection.contains("close")
    };
    let path = target.split('?').next().unwrap_or_default();
    let body_limit = body_limit(path);
    if length_too_large || length.is_some_and(|length| length > body_limit) {
        return Err(Refusal::new(
            413,
            format!("request body too large: at most {body_limit} bytes are accepted here"),
        ));
    }
    let framing = match length {
        _ if chunked => Framing::Chunked,
        Some(0) | None => Framing::Empty,
        Some(length) => Framing::Length(length),
    };
    Ok(RequestHead {
        forwarded,
        is_head: method == "HEAD",
        framing,
        body_limit,
        expects_continue: expects_continue && !http_1_0 && framing != Framing::Empty,
        keep_alive,
    })
}

/// What the relay needs to know of a response head from `tiny_http`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ResponseHead {
    /// An interim `1xx` response: the final one follows.
    pub interim: bool,
    /// How the body is delimited.
    pub framing: Framing,
    /// The server closes the connection after this response.
    pub closes: bool,
}

/// Reads a response head (ending with the empty line) written by
/// `tiny_http`, for a request that was a `HEAD` request or not. `None` if it
/// is not a response head at all.
pub(super) fn read_response(head: &[u8], to_head_request: bool) -> Option<ResponseHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")?
        .get(2..5)
        .and_then(|code| code.parse().ok())?;
    let mut length = None;
    let mut chunked = false;
    let mut closes = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("Content-Length") {
            length = Some(value.parse::<u64>().ok()?);
        } else if name.eq_ignore_ascii_case("Transfer-Encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("Connection") {
            let value = value.to_ascii_lowercase();
            closes = value.contains("close") || (closes && !value.contains("keep-alive"));
        }
    }
    let interim = (100..200).contains(&status);
    // RFC 9112, section 6.3: these responses never have a body.
    let framing = if interim || status == 204 || status == 304 || to_head_request {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(length) => Framing::Length(length),
            None => Framing::UntilClose,
        }
    };
    Some(ResponseHead {
        interim,
        framing,
        closes: closes || framing == Framing::UntilClose,
    })
}

/// A token of RFC 9110 (method and header names): visible ASCII except
/// delimiters.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn check(head: &str) -> Result<RequestHead, Refusal> {
        check_request(head.as_bytes(), PEER, &|path| {
            if path.starts_with("/upload/") {
                1000
            } else {
                10
            }
        })
    }

    fn status(head: &str) -> u16 {
        check(head).map_or_else(|refusal| refusal.status, |_| 200)
    }

    #[test]
    fn a_plain_request_goes_on_with_the_client_named() {
        let head = check("GET /files/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
            .expect("a valid head");
        assert_eq!(
            String::from_utf8(head.forwarded).unwrap(),
            "GET /files/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n"
        );
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, true));
    }

    #[test]
    fn framing_follows_the_headers() {
        let head = check("POST /upload/a HTTP/1.1\r\ncontent-length: 1000\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Length(1000));
        let head = check("POST /upload/a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let head =
            check("POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert!(head.expects_continue);
        assert!(!String::from_utf8(head.forwarded)
            .unwrap()
            .contains("Expect"));
    }

    #[test]
    fn keep_alive_depends_on_version_and_connection() {
        let alive = |head: &str| check(head).unwrap().keep_alive;
        assert!(alive("GET / HTTP/1.1\r\n\r\n"));
        assert!(!alive("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!alive("GET / HTTP/1.0\r\n\r\n"));
        assert!(alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn bodies_over_the_path_limit_are_refused_before_reading() {
        assert_eq!(
            status("POST /upload/a HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST /other HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST /other?x=/upload/ HTTP/1.1\r\nContent-Length: 11\r\n\r\n"),
            413
        );
        let huge = "POST /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(status(huge), 413);
    }

    #[test]
    fn ambiguous_or_malformed_heads_are_refused() {
        for head in [
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length : 1\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: b\nContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: \u{e9}t\u{e9}\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET /\r\n\r\n",
            "\r\n\r\n",
            "GET / FTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(head), 400, "{head:?}");
        }
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(
            status("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(status("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n"), 501);
    }

    #[test]
    fn response_framing() {
        let read = |head: &str, to_head| read_response(head.as_bytes(), to_head).unwrap();
        let ok = read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false);
        assert_eq!((ok.framing, ok.closes), (Framing::Length(5), false));
        let head = read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(head.framing, Framing::Empty);
        let stream = read(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            false,
        );
        assert_eq!((stream.framing, stream.closes), (Framing::Chunked, true));
        let interim = read("HTTP/1.1 100 Continue\r\n\r\n", false);
        assert!(interim.interim);
        let old = read("HTTP/1.0 200 OK\r\n\r\n", false);
        assert_eq!((old.framing, old.closes), (Framing::UntilClose, true));
        assert_eq!(read_response(b"garbage\r\n\r\n", false), None);
    }
}
