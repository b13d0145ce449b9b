//! Refusing a request whose announced body is absurdly large, without
//! crashing.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! `tiny_http` 0.12 reads an unread request body to its end when the request
//! is dropped, but first allocates a buffer of the size the client
//! *announced* in `Content-Length`. A request announcing a terabyte makes
//! that allocation fail, which aborts the whole process.
//!
//! The [front door](crate::front_door) of each server reads the announced
//! length before `tiny_http` sees the request and answers `413` itself, then
//! closes the connection cleanly: on a plain-HTTP port such a request never
//! reaches a handler. The one port the front door cannot read is the
//! embedded master behind TLS (`mesos-local --tls-cert`), so its handlers
//! still check with [`announces_more_than`] and send such a request here.

use std::io::Write;
use tiny_http::{Request, Response};

/// Answers `413 Payload Too Large` without ever letting `tiny_http` discard
/// the body. The only way out that keeps the body unread is `upgrade`, which
/// hands us the connection (after writing a head of its own, which we make
/// an interim `100 Continue` that clients skip); we write the real answer
/// and must then leak the connection instead of dropping it, since dropping
/// it would discard the body. The front door closes the client's side, so
/// what stays behind is one idle `tiny_http` thread and one private socket
/// per refused request; only a TLS port ever gets here (see above).
pub fn refuse(request: Request, limit: u64) {
    log::warn!(
        "refused {} {}: it announces a body over {limit} bytes",
        request.method(),
        request.url()
    );
    let body = format!("request body too large: at most {limit} bytes are accepted\n");
    let mut connection = request.upgrade("none", Response::empty(100));
    let answer = format!(
        "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = connection
        .write_all(answer.as_bytes())
        .and_then(|()| connection.flush());
    std::mem::forget(connection);
}

/// Whether a request announces a body longer than `limit` bytes.
pub fn announces_more_than(request: &Request, limit: u64) -> bool {
    request
        .body_length()
        .is_some_and(|length| length as u64 > limit)
}
