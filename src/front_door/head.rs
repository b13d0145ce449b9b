//! Checking a request head, and the front door's own answers. To agree with
//! `tiny_http` on where each request ends (or a client could smuggle one
//! in another's body), the head goes on written anew from what `httparse`
//! read, and anything ambiguous is refused.
//!
//! *Plumbing: a reader may skip this file.*

use super::private::SECRET_HEADER;
use std::net::IpAddr;

/// How a request's body is delimited (RFC 9112, section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
}

/// A request head that passed every check.
pub(super) struct RequestHead {
    pub forwarded: Vec<u8>,
    pub framing: Framing,
    pub body_limit: u64,
    /// The client waits for `100 Continue` before it sends the body.
    pub expects_continue: bool,
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
        let message = message.into();
        Refusal { status, message }
    }

    /// The whole answer; it closes the connection, since what the client
    /// sends next cannot be trusted.
    pub(super) fn answer(&self) -> Vec<u8> {
        let status = self.status;
        let reason = tiny_http::StatusCode(status).default_reason_phrase();
        let retry = Some("Retry-After: 1\r\n").filter(|_| status == 503);
        let retry = retry.unwrap_or_default();
        let body = format!("{}\n", self.message);
        let length = body.len();
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {length}\r\n{retry}Connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    }
}

pub(super) fn bad(message: impl Into<String>) -> Refusal {
    Refusal::new(400, message)
}

/// Checks a complete request head from `peer`. What goes on is the head
/// minus `Connection`, `Expect: 100-continue` (answered here) and the
/// headers only the front door may set: `X-Forwarded-For`, the `secret`
/// (see `private.rs`) and `Connection: close` (one request per connection).
pub(super) fn check_request(
    head: &[u8],
    peer: IpAddr,
    body_limit: &dyn Fn(&str) -> u64,
    secret: &str,
) -> Result<RequestHead, Refusal> {
    if !is_clean(head) {
        return Err(bad("a request head must be ASCII with CRLF line ends"));
    }
    // One slot per line: `httparse` never needs more.
    let mut headers = vec![httparse::EMPTY_HEADER; head.iter().filter(|&&b| b == b'\n').count()];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(length)) if length == head.len() => {}
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(bad("a header line must be `Name: value`"))
        }
        Err(httparse::Error::Version) if speaks_another_http(head) => {
            return Err(Refusal::new(505, "only HTTP/1.0 and 1.1 are spoken here"))
        }
        _ => return Err(bad("the request line must be `METHOD TARGET HTTP/1.1`")),
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(bad("the request line is incomplete"));
    };
    let mut forwarded = format!("{method} {target} HTTP/1.{minor}\r\n").into_bytes();
    let headers = read_headers(request.headers, &mut forwarded)?;
    let end = format!("X-Forwarded-For: {peer}\r\n{SECRET_HEADER}: {secret}\r\nConnection: close");
    forwarded.extend_from_slice(format!("{end}\r\n\r\n").as_bytes());
    // `tiny_http` looks for these words anywhere in the header, so we do too.
    if headers.connection.contains("upgrade") {
        return Err(Refusal::new(501, "protocol upgrades are not supported"));
    }
    let body_limit = body_limit(target.split('?').next().unwrap_or_default());
    if headers.length.is_some_and(|length| length > body_limit) {
        let why = format!("request body too large: at most {body_limit} bytes are accepted here");
        return Err(Refusal::new(413, why));
    }
    let framing = match headers.length {
        _ if headers.chunked => Framing::Chunked,
        Some(0) | None => Framing::Empty,
        Some(length) => Framing::Length(length),
    };
    Ok(RequestHead {
        forwarded,
        framing,
        body_limit,
        expects_continue: headers.expects_continue && minor == 1 && framing != Framing::Empty,
        // `tiny_http` never answers `Connection: keep-alive`, without which
        // an HTTP/1.0 client takes a connection to close after an answer.
        keep_alive: minor == 1 && !headers.connection.contains("close"),
    })
}

/// What the headers say: `Content-Length` (`u64::MAX` if too large to
/// count), chunks, `Expect`, and the `Connection` values in lowercase.
#[derive(Default)]
struct Headers {
    length: Option<u64>,
    chunked: bool,
    expects_continue: bool,
    connection: String,
}

/// Reads the headers, and adds those that go on to `forwarded`.
fn read_headers(headers: &[httparse::Header], forwarded: &mut Vec<u8>) -> Result<Headers, Refusal> {
    let mut read = Headers::default();
    for header in headers {
        // Only ASCII reached `httparse`, so this always succeeds.
        let value = std::str::from_utf8(header.value.trim_ascii()).unwrap_or_default();
        let chunked = value.eq_ignore_ascii_case("chunked");
        match header.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                if read.length.is_some() || !digits {
                    let why = format!("Content-Length must be one number: {value:.40}");
                    return Err(bad(why));
                }
                // Only digits, so failing to parse means it overflows u64.
                read.length = Some(value.parse().unwrap_or(u64::MAX));
            }
            "transfer-encoding" if read.chunked => return Err(bad("two Transfer-Encodings")),
            "transfer-encoding" if !chunked => {
                let why = format!("Transfer-Encoding {value:.40} is not supported, only chunked");
                return Err(Refusal::new(501, why));
            }
            "transfer-encoding" => read.chunked = true,
            "connection" => {
                read.connection += &(value.to_ascii_lowercase() + ",");
                continue;
            }
            "expect" if value.eq_ignore_ascii_case("100-continue") => {
                read.expects_continue = true;
                continue;
            }
            // Only the front door says who the client is, and what it knows.
            "x-forwarded-for" => continue,
            name if name.eq_ignore_ascii_case(SECRET_HEADER) => continue,
            _ => {}
        }
        forwarded.extend_from_slice(format!("{}: {value}\r\n", header.name).as_bytes());
    }
    if read.chunked && read.length.is_some() {
        return Err(bad("a request may not have both Content-Length and chunks"));
    }
    Ok(read)
}

/// Whether a head is ASCII, with CR and LF only as a pair: a lone one is a
/// line end to some servers and not to others (RFC 9112 allows refusing it).
fn is_clean(head: &[u8]) -> bool {
    head.iter().enumerate().all(|(i, &byte)| match byte {
        b'\r' => head.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && head[i - 1] == b'\r',
        byte => byte == b'\t' || (b' '..=b'~').contains(&byte),
    })
}

/// Whether the request line ends with an HTTP version `httparse` refuses.
fn speaks_another_http(head: &[u8]) -> bool {
    let request_line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let version = request_line.rsplit(|&byte| byte == b' ').next();
    version.is_some_and(|version| version.starts_with(b"HTTP/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn check(head: &str) -> Result<RequestHead, Refusal> {
        let limit = |path: &str| {
            if path.starts_with("/upload/") {
                1000
            } else {
                10
            }
        };
        check_request(head.as_bytes(), PEER, &limit, "s3cret")
    }

    fn status(head: &str) -> u16 {
        check(head).map_or_else(|refusal| refusal.status, |_| 200)
    }

    #[test]
    fn a_plain_request_goes_on_with_the_client_named_and_the_secret() {
        let head = check(
            "GET /files/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\n\
             X-Front-Door: guess\r\nConnection: keep-alive\r\n\r\n",
        )
        .expect("a valid head");
        assert_eq!(
            String::from_utf8(head.forwarded).unwrap(),
            "GET /files/a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\n\
             X-Front-Door: s3cret\r\nConnection: close\r\n\r\n"
        );
        assert_eq!((head.framing, head.keep_alive), (Framing::Empty, true));
    }

    #[test]
    fn framing_follows_the_headers() {
        let head = check("POST /upload/a HTTP/1.1\r\ncontent-length: 1000\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Length(1000));
        let forwarded = String::from_utf8(head.forwarded).unwrap();
        assert!(
            forwarded.contains("\r\ncontent-length: 1000\r\n"),
            "{forwarded}"
        );
        let head = check("POST /upload/a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let forwarded = String::from_utf8(head.forwarded).unwrap();
        assert!(
            forwarded.contains("\r\nTransfer-Encoding: Chunked\r\n"),
            "{forwarded}"
        );
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
        assert!(!alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
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
            "GET / HTTP/1.1\r\nX-A: b\rContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: \u{e9}t\u{e9}\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET /\r\n\r\n",
            "\r\n\r\n",
            "GET / FTP/1.1\r\n\r\n",
        ] {
            assert_eq!(status(head), 400, "{head:?}");
        }
        assert_eq!(status("GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/0.9\r\n\r\n"), 505);
        assert_eq!(
            status("GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            501
        );
        assert_eq!(status("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n"), 501);
    }

    #[test]
    fn a_refusal_is_a_whole_answer_that_closes() {
        let answer = String::from_utf8(Refusal::new(503, "full").answer()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(answer.contains("Retry-After: 1\r\n") && answer.contains("Connection: close\r\n"));
        assert!(answer
            .ends_with("Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nfull\n"));
    }
}
