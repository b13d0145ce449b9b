//! HTTP details of the embedded cluster: reading calls, answering errors the
//! way Mesos does, and streaming events.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Event streams are written by hand (status line, headers, then one HTTP
//! chunk per RecordIO record, flushed at once). tiny_http's own chunked
//! responses buffer several kilobytes before sending, which would hold a
//! small event back until more arrive.

use crate::content_type::ContentType;
use crate::recordio::encode_record;
use protobuf::MessageFull;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response};

/// The largest call body the embedded cluster reads. Mesos calls are small;
/// a larger body is refused with `413`.
pub const MAX_CALL_BODY: usize = 4 * 1024 * 1024;

/// An HTTP error answer: a status and a readable reason.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
    /// For `307`: where the client should send the request instead.
    pub location: Option<String>,
    /// For `401`: ask for basic authentication.
    pub authenticate: bool,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            location: None,
            authenticate: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(400, message)
    }
}

/// The value of a request header, if present (names are case-insensitive).
pub fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

/// Checks what every call request must have, as the Mesos master and agent
/// check it: POST, a supported `Content-Type`, and a body that fits.
/// Returns the content type and the body.
pub fn read_call_request(request: &mut Request) -> Result<(ContentType, Vec<u8>), HttpError> {
    if request.method() != &Method::Post {
        return Err(HttpError::new(
            405,
            format!(
                "Expecting one of {{ 'POST' }}, but received '{}'",
                request.method()
            ),
        ));
    }
    let content_type = match header(request, "Content-Type") {
        None => return Err(HttpError::bad_request("Expecting 'Content-Type' to be present")),
        Some(value) => ContentType::from_mime(&value).ok_or_else(|| {
            HttpError::new(
                415,
                format!(
                    "Expecting 'Content-Type' of application/json or application/x-protobuf, not '{value}'"
                ),
            )
        })?,
    };
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_CALL_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|err| HttpError::bad_request(format!("Failed to read the request body: {err}")))?;
    if body.len() > MAX_CALL_BODY {
        return Err(HttpError::new(
            413,
            format!("Request body exceeds the limit of {MAX_CALL_BODY} bytes"),
        ));
    }
    Ok((content_type, body))
}

/// Which encoding a subscriber wants its events in, from its `Accept`
/// header. As in Mesos: no header, `*/*` or `application/*` mean JSON, which
/// wins when both are acceptable; neither acceptable is `406`.
pub fn negotiate_accept(request: &Request) -> Result<ContentType, HttpError> {
    let accept = match header(request, "Accept") {
        None => return Ok(ContentType::Json),
        Some(accept) => accept,
    };
    let accepts = |wanted: &str| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
            });
            !refused && (media == wanted || media == "*/*" || media == "application/*")
        })
    };
    if accepts(ContentType::Json.mime()) {
        Ok(ContentType::Json)
    } else if accepts(ContentType::Protobuf.mime()) {
        Ok(ContentType::Protobuf)
    } else {
        Err(HttpError::new(
            406,
            "Expecting 'Accept' to allow application/json or application/x-protobuf",
        ))
    }
}

/// Answers with an error status and its reason as plain text.
pub fn respond_error(request: Request, error: HttpError) {
    log::debug!(
        "{} {} -> {} {}",
        request.method(),
        request.url(),
        error.status,
        error.message
    );
    let mut response = Response::from_string(error.message).with_status_code(error.status);
    response.add_header(text_plain());
    if error.status == 405 {
        response.add_header(Header::from_bytes("Allow", "POST").expect("a valid header"));
    }
    if let Some(location) = &error.location {
        if let Ok(header) = Header::from_bytes("Location", location.as_bytes()) {
            response.add_header(header);
        }
    }
    if error.authenticate {
        let challenge = Header::from_bytes("WWW-Authenticate", r#"Basic realm="mesos""#);
        response.add_header(challenge.expect("a valid header"));
    }
    let _ = request.respond(response);
}

/// Answers `202 Accepted` with no body: the call was taken; its effects
/// arrive as events.
pub fn respond_accepted(request: Request) {
    let _ = request.respond(Response::empty(202));
}

/// Answers with a status and a plain-text body.
pub fn respond_text(request: Request, status: u16, text: &str) {
    let mut response = Response::from_string(text).with_status_code(status);
    response.add_header(text_plain());
    let _ = request.respond(response);
}

fn text_plain() -> Header {
    Header::from_bytes("Content-Type", "text/plain; charset=utf-8").expect("a valid header")
}

/// The head of an event stream's response: the media type its records are
/// encoded in, and for a scheduler the `Mesos-Stream-Id` that its later
/// calls must carry.
pub struct StreamHead<'a> {
    pub content_type: ContentType,
    pub stream_id: Option<&'a str>,
}

/// What an idle stream sends: `event()` after `interval` of silence, which
/// is how both sides notice a dead connection.
pub struct Heartbeat<F> {
    pub interval: Duration,
    pub event: F,
}

/// Writes a never-ending `200 OK` response of RecordIO-framed events until
/// `events` closes or the client goes away, with a `heartbeat` between
/// events; `silenced` can hold the stream back. Returns why the stream
/// ended.
pub fn stream_events<E: MessageFull>(
    request: Request,
    head: StreamHead<'_>,
    events: Receiver<E>,
    heartbeat: Heartbeat<impl Fn() -> E>,
    silenced: impl Fn() -> bool,
) -> io::Result<()> {
    let mut writer = request.into_writer();
    let mut status_and_headers = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\
         Cache-Control: no-cache\r\nConnection: close\r\n",
        head.content_type.mime()
    );
    if let Some(stream_id) = head.stream_id {
        status_and_headers.push_str(&format!("Mesos-Stream-Id: {stream_id}\r\n"));
    }
    status_and_headers.push_str("\r\n");
    writer.write_all(status_and_headers.as_bytes())?;
    writer.flush()?;
    loop {
        // A silenced stream (a test knob) holds events and heartbeats back,
        // as a hung master would, without closing the connection.
        while silenced() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let event = match events.recv_timeout(heartbeat.interval) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => (heartbeat.event)(),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // Events that queued up meanwhile go out with this one, in one
        // flush: a busy stream costs fewer system calls per event.
        for event in std::iter::once(event).chain(events.try_iter().take(63)) {
            let record = encode_record(&head.content_type.encode(&event));
            write!(writer, "{:x}\r\n", record.len())?;
            writer.write_all(&record)?;
            writer.write_all(b"\r\n")?;
        }
        writer.flush()?;
    }
    // The last chunk: the stream ends cleanly, between two records.
    writer.write_all(b"0\r\n\r\n")?;
    writer.flush()
}
