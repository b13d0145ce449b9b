//! One client connection: requests checked and passed on to `tiny_http`,
//! responses passed back.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! One thread per connection does everything, one exchange at a time, as
//! HTTP/1.1 itself does: read a request head (with the idle, head-size and
//! head-time limits), check it, pass it and its body on (with the body-size
//! and body-time limits), then pass the whole response back, then wait for
//! the next request. A client that sends its next request early (pipelining)
//! simply finds it read after the response. While a response is being
//! passed back no deadline runs, so a never-ending event stream stays open;
//! only a client that stops reading it is cut off, by the send timeout.
//!
//! Bytes are passed on as soon as the next step would wait, so an event on a
//! stream reaches the client at once; while nothing waits, small writes are
//! gathered into one.

use super::head::{self, Framing, Refusal};
use super::pipe::{
    copy_chunked, copy_exact, copy_until_closed, find, read_more, BodyError, Chunks, Client, Side,
    Wait, BUFFER_BYTES,
};
use super::{Door, Limits};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Bodies announced up to this size are read whole before the request is
/// passed on, so that the code answering it never waits for a slow client.
pub const WHOLE_BODY_BYTES: u64 = 64 * 1024;

/// After the front door refuses a request, how long and how much of what
/// the client still sends it reads and drops, so that the client gets to
/// read the answer instead of a reset connection.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// Why a connection ends early.
enum Stop {
    /// Answer the client this, then close.
    Refuse(Refusal),
    /// Close without a word: the client left, or the server closed.
    Close,
}

/// Serves one client connection (plain TCP, or TLS after its handshake)
/// until it ends. `backend` is a fresh connection to `tiny_http`.
pub(super) fn serve<C: Client>(client: C, peer: SocketAddr, backend: UnixStream, door: &Door) {
    let limits = &door.limits;
    let inbox = limits.max_header_bytes.max(BUFFER_BYTES);
    let mut client = Side::new(client, inbox);
    let mut backend = Side::new(backend, BUFFER_BYTES);
    match relay_exchanges(&mut client, &mut backend, peer, door) {
        // Behind TLS this sends `close_notify`, without which a response
        // that ends with the connection would read as cut off.
        Ok(()) => client.socket.close_write(),
        Err(Stop::Close) => {}
        Err(Stop::Refuse(refusal)) => {
            log::debug!(
                "front door: {peer} refused with {}: {}",
                refusal.status,
                refusal.message
            );
            wind_down(&backend.socket, limits.send_timeout);
            let _ = client
                .socket
                .write_all(&answer(&refusal))
                .and_then(|()| client.socket.flush());
            linger(&mut client.socket, LINGER_TIME);
        }
    }
}

/// Request after request on one connection.
fn relay_exchanges<C: Client>(
    client: &mut Side<C>,
    backend: &mut Side<UnixStream>,
    peer: SocketAddr,
    door: &Door,
) -> Result<(), Stop> {
    let limits = &door.limits;
    loop {
        let Some(head) = read_request_head(client, limits)? else {
            return Ok(());
        };
        let request =
            head::check_request(&head, peer.ip(), &*door.body_limit).map_err(Stop::Refuse)?;
        if request.expects_continue {
            // The body fits the limit, so invite it (RFC 9110, 10.1.1).
            client
                .socket
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .and_then(|()| client.socket.flush())
                .map_err(|_| Stop::Close)?;
        }
        forward_request(client, backend, &request, limits)?;
        let server_closes = relay_response(backend, client, request.is_head)?;
        if server_closes || !request.keep_alive {
            return Ok(());
        }
    }
}

/// Waits for the next request head and returns it, or `None` when the
/// client closed or stayed idle too long (both normal ends).
fn read_request_head<C: Client>(
    client: &mut Side<C>,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, Stop> {
    let too_slow = || {
        Stop::Refuse(Refusal::new(
            408,
            format!(
                "the request head did not arrive within {} s",
                limits.header_timeout.as_secs_f64()
            ),
        ))
    };
    if client.buffered().is_empty() {
        match client.fill(Wait::For(limits.idle_timeout)) {
            Ok(0) => return Ok(None),
            // Behind TLS a head may have begun in a record that never came
            // whole: that is a slow head, not an idle connection.
            Err(err)
                if err.kind() == io::ErrorKind::TimedOut && client.socket.partly_received() =>
            {
                return Err(too_slow())
            }
            Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    // The head deadline counts from its first byte.
    let deadline = Wait::after(limits.header_timeout);
    let mut searched = 0;
    loop {
        let buffered = client.buffered();
        if let Some(end) = find(&buffered[searched..], b"\r\n\r\n") {
            let length = searched + end + 4;
            if length > limits.max_header_bytes {
                break;
            }
            let head = buffered[..length].to_vec();
            client.consume(length);
            return Ok(Some(head));
        }
        if buffered.len() >= limits.max_header_bytes {
            break;
        }
        searched = buffered.len().saturating_sub(3);
        match client.fill(deadline) {
            Ok(0) => return Err(Stop::Close),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Err(too_slow()),
            Err(_) => return Err(Stop::Close),
        }
    }
    Err(Stop::Refuse(Refusal::new(
        431,
        format!(
            "request head too large: at most {} bytes of request line and headers",
            limits.max_header_bytes
        ),
    )))
}

/// Passes the checked head and the body on to `tiny_http`.
fn forward_request<C: Client>(
    client: &mut Side<C>,
    backend: &mut Side<UnixStream>,
    request: &head::RequestHead,
    limits: &Limits,
) -> Result<(), Stop> {
    let deadline = Wait::after(limits.body_timeout);
    let body_error = |error| match error {
        BodyError::Ended | BodyError::Read => Stop::Refuse(Refusal::new(
            400,
            "the connection ended before the request body was complete",
        )),
        BodyError::TimedOut => Stop::Refuse(Refusal::new(
            408,
            format!(
                "the request body did not arrive within {} s",
                limits.body_timeout.as_secs_f64()
            ),
        )),
        BodyError::Malformed(what) => Stop::Refuse(Refusal::new(400, what)),
        BodyError::TooLarge => Stop::Refuse(Refusal::new(
            413,
            format!(
                "request body too large: at most {} bytes are accepted here",
                request.body_limit
            ),
        )),
        BodyError::Write => Stop::Refuse(Refusal::new(
            502,
            "the server stopped reading the request body",
        )),
    };
    // Queued, not sent: with a small body, head and body go on together.
    backend.outbox.extend_from_slice(&request.forwarded);
    match request.framing {
        Framing::Empty | Framing::UntilClose => {}
        Framing::Length(length) if length <= WHOLE_BODY_BYTES => {
            // Gathered whole, then sent: whoever reads it never waits.
            let mut left = length as usize;
            loop {
                let take = left.min(client.buffered().len());
                backend.outbox.extend_from_slice(&client.buffered()[..take]);
                client.consume(take);
                left -= take;
                if left == 0 {
                    break;
                }
                read_more(client, deadline).map_err(body_error)?;
            }
        }
        Framing::Length(length) => {
            copy_exact(client, backend, length, deadline).map_err(body_error)?
        }
        Framing::Chunked => copy_chunked(
            client,
            backend,
            Some(request.body_limit),
            deadline,
            Chunks::Reframed,
        )
        .map_err(body_error)?,
    }
    backend.flush().map_err(|_| body_error(BodyError::Write))
}

/// Passes one response (after any interim `1xx` ones) back to the client.
/// Returns whether the server closes the connection after it.
fn relay_response<C: Client>(
    backend: &mut Side<UnixStream>,
    client: &mut Side<C>,
    to_head_request: bool,
) -> Result<bool, Stop> {
    loop {
        let mut searched = 0;
        let length = loop {
            let buffered = backend.buffered();
            if let Some(end) = find(&buffered[searched..], b"\r\n\r\n") {
                break searched + end + 4;
            }
            searched = buffered.len().saturating_sub(3);
            match backend.fill(Wait::Forever) {
                Ok(0) if backend.buffered().is_empty() => {
                    return Err(Stop::Refuse(Refusal::new(
                        502,
                        "the server closed the connection without answering",
                    )))
                }
                Ok(0) | Err(_) => return Err(Stop::Close),
                Ok(_) => {}
            }
        };
        let Some(response) = head::read_response(&backend.buffered()[..length], to_head_request)
        else {
            return Err(Stop::Refuse(Refusal::new(
                502,
                "the server answered garbage",
            )));
        };
        let head = backend.buffered()[..length].to_vec();
        backend.consume(length);
        client.send(&head).map_err(|_| Stop::Close)?;
        let copied = match response.framing {
            Framing::Empty => Ok(()),
            Framing::Length(length) => copy_exact(backend, client, length, Wait::Forever),
            Framing::Chunked => copy_chunked(backend, client, None, Wait::Forever, Chunks::AsSent),
            Framing::UntilClose => copy_until_closed(backend, client),
        };
        copied.map_err(|_| Stop::Close)?;
        client.flush().map_err(|_| Stop::Close)?;
        if !response.interim {
            return Ok(response.closes);
        }
    }
}

/// A complete answer from the front door itself; it always closes the
/// connection, since what the client sends next cannot be trusted to start
/// a request.
pub(super) fn answer(refusal: &Refusal) -> Vec<u8> {
    let reason = match refusal.status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let body = format!("{}\n", refusal.message);
    let retry = if refusal.status == 503 {
        "Retry-After: 1\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{retry}Connection: close\r\n\r\n{body}",
        refusal.status,
        body.len()
    )
    .into_bytes()
}

/// Ends the connection to `tiny_http` after a refusal, and waits (up to
/// `wait`) until `tiny_http` is done with it. A refusal may come in the
/// middle of a body that a handler is already reading, such as an upload
/// that turned out too large or too slow: the handler then sees the body
/// end, cleans up and answers (into the void). Waiting for that means that
/// when the client reads our refusal, nothing of its request is left
/// behind.
fn wind_down(backend: &UnixStream, wait: Duration) {
    let _ = backend.shutdown(Shutdown::Write);
    let Some(deadline) = Instant::now().checked_add(wait) else {
        return;
    };
    let mut buffer = [0u8; 16 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || backend.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&mut &*backend).read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = backend.shutdown(Shutdown::Both);
}

/// Sends `answer` (made by [`answer`]) to a client whose connection never
/// reached `tiny_http`, then closes, lingering less than after a refused
/// request: the one thread that refuses connections over the cap, or the
/// handshake that refuses plain HTTP on a TLS port, must not wait long.
pub(super) fn refuse_at_once(mut client: impl Client, answer: &[u8]) {
    if client
        .write_all(answer)
        .and_then(|()| client.flush())
        .is_ok()
    {
        linger(&mut client, Duration::from_millis(500));
    }
}

/// Closes a connection gently after an answer: stop sending, then read and
/// drop what the client still sends for a little while. Closing with
/// unread bytes would make the system reset the connection, and a client
/// still sending its body might never read our answer. What is dropped is
/// read from the TCP connection as is: behind TLS it needs no decrypting.
pub(super) fn linger(client: &mut impl Client, time: Duration) {
    client.close_write();
    let tcp = client.tcp();
    let deadline = Instant::now() + time;
    let mut buffer = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&mut &*tcp).read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => drained += read,
        }
    }
}
