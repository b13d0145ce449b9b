//! One client connection: requests checked and passed on to `tiny_http`,
//! answers passed back.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! One thread per connection serves one exchange at a time, as HTTP/1.1
//! itself does: read a request head (idle, head-size and head-time limits),
//! check it, pass it and its body on (body-size and body-time limits) over
//! a fresh connection to `tiny_http`, pass the answer back, wait for the
//! next request. A pipelined request is simply read after the answer.
//!
//! Each request goes on with `Connection: close`, so `tiny_http` closes
//! after its answer, and that close is where the answer ends: the front
//! door never parses a response, it passes bytes on as they come (an event
//! on a stream reaches the client at once), with no deadline, so an event
//! stream lives as long as its client reads it. `tiny_http` always gives
//! an answer a `Content-Length` or chunks, so the client still finds its
//! end and may keep its connection.
//!
//! A chunked request body is read with `httparse`'s chunk-size and
//! trailer parsers over our bounded buffer, and passed on re-framed: each
//! piece of data in hand goes on as a chunk of its own. `tiny_http`'s
//! decoder (`chunked_transfer`) takes a connection that ends inside a chunk
//! for the end of the body, so a request cut off there (too slow, too
//! large) would look complete to the code reading it; cut off between
//! chunks, it is an error. `chunked_transfer` is not used here for the same
//! reason: its decoder reads a body cut inside a chunk as complete (and
//! gathers a chunk-size line without bound), its encoder ends a body when
//! dropped, which would pass a body we cut off as a whole one.

use super::client::{timeout_until, Client};
use super::head::{self, Framing, Refusal};
use super::private::Backend;
use super::{Door, Limits};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Bodies announced up to this size are read whole before the request is
/// passed on, so that the code answering it never waits for a slow client.
pub const WHOLE_BODY_BYTES: u64 = 64 * 1024;

/// Bytes read from a socket at a time.
const BUFFER_BYTES: usize = 64 * 1024;
/// The longest chunk-size line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer lines, and their bytes, accepted after a chunked body.
const MAX_TRAILERS: usize = 64;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

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

/// `duration` from now; `None` (no deadline) if too far to count.
pub(super) fn after(duration: Duration) -> Option<Instant> {
    Instant::now().checked_add(duration)
}

/// Serves one client connection (plain TCP, or TLS after its handshake)
/// until it ends.
pub(super) fn serve(mut client: Client, peer: SocketAddr, door: &Door, id: u64) {
    let mut inbox = Inbox::new(door.limits.max_header_bytes.max(BUFFER_BYTES));
    match exchanges(&mut client, &mut inbox, peer, door, id) {
        // Behind TLS this sends `close_notify`, without which an answer
        // that ends with the connection would read as cut off.
        Ok(()) => client.close_write(),
        Err(Stop::Close) => {}
        Err(Stop::Refuse(refusal)) => {
            log::debug!(
                "front door: {peer} refused with {}: {}",
                refusal.status,
                refusal.message
            );
            if client.send(&refusal.answer()).is_ok() {
                linger(&mut client, LINGER_TIME);
            }
        }
    }
}

/// Request after request on one connection.
fn exchanges(
    client: &mut Client,
    inbox: &mut Inbox,
    peer: SocketAddr,
    door: &Door,
    id: u64,
) -> Result<(), Stop> {
    let limits = &door.limits;
    let mut buffer = vec![0; BUFFER_BYTES];
    loop {
        let Some(length) = read_head(client, inbox, limits)? else {
            return Ok(());
        };
        let head = &inbox.buffered()[..length];
        let mut request = head::check_request(head, peer.ip(), &*door.body_limit, &door.secret)
            .map_err(Stop::Refuse)?;
        inbox.consume(length);
        if request.expects_continue {
            // The body fits the limit, so invite it (RFC 9110, 10.1.1).
            let invite = b"HTTP/1.1 100 Continue\r\n\r\n";
            client.send(invite).map_err(|_| Stop::Close)?;
        }
        let Some(mut backend) = door.connect(id) else {
            return Err(Stop::Refuse(Refusal::new(
                502,
                "the server behind this port is not answering",
            )));
        };
        let body = Body {
            out: std::mem::take(&mut request.forwarded),
            client: &mut *client,
            inbox: &mut *inbox,
            to: &mut backend,
            deadline: after(limits.body_timeout),
            timeout: limits.body_timeout,
            whole: matches!(request.framing, Framing::Length(length) if length <= WHOLE_BODY_BYTES),
        };
        if let Err(refusal) = body.forward(request.framing, request.body_limit) {
            wind_down(&backend, limits.send_timeout);
            return Err(Stop::Refuse(refusal));
        }
        pass_answer(&mut backend, client, &mut buffer)?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// Waits for the next request head and returns its length, or `None` when
/// the client closed or stayed idle too long (both normal ends).
fn read_head(
    client: &mut Client,
    inbox: &mut Inbox,
    limits: &Limits,
) -> Result<Option<usize>, Stop> {
    let too_slow = || {
        Stop::Refuse(Refusal::new(
            408,
            format!(
                "the request head did not arrive within {} s",
                limits.header_timeout.as_secs_f64()
            ),
        ))
    };
    if inbox.buffered().is_empty() {
        match inbox.fill(client, after(limits.idle_timeout)) {
            Ok(0) => return Ok(None),
            // Behind TLS a head may have begun in a record that never came
            // whole: that is a slow head, not an idle connection.
            Err(err) if err.kind() == io::ErrorKind::TimedOut && client.partly_received() => {
                return Err(too_slow())
            }
            Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    // The head deadline counts from its first byte.
    let deadline = after(limits.header_timeout);
    let mut searched = 0;
    loop {
        let buffered = inbox.buffered();
        if let Some(end) = find(&buffered[searched..], b"\r\n\r\n") {
            let length = searched + end + 4;
            if length > limits.max_header_bytes {
                break;
            }
            return Ok(Some(length));
        }
        if buffered.len() >= limits.max_header_bytes {
            break;
        }
        searched = buffered.len().saturating_sub(3);
        match inbox.fill(client, deadline) {
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

/// Passes back everything `tiny_http` answers, as it comes, until it
/// closes the connection.
fn pass_answer(backend: &mut Backend, client: &mut Client, buffer: &mut [u8]) -> Result<(), Stop> {
    let mut answered = false;
    loop {
        match backend.read(buffer) {
            Ok(0) if answered => return Ok(()),
            Ok(0) => {
                return Err(Stop::Refuse(Refusal::new(
                    502,
                    "the server closed the connection without answering",
                )))
            }
            Ok(read) => {
                answered = true;
                client.send(&buffer[..read]).map_err(|_| Stop::Close)?;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Stop::Close),
        }
    }
}

/// What a client sent and the front door has not used yet.
struct Inbox {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Inbox {
    fn new(size: usize) -> Inbox {
        Inbox {
            bytes: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, count: usize) {
        self.start += count;
    }

    /// Reads more from the client, waiting until `deadline` at most;
    /// `Ok(0)` when the client closed.
    fn fill(&mut self, client: &mut Client, deadline: Option<Instant>) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.bytes.len() {
            self.bytes.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.bytes.len() {
            return Err(io::Error::other("the inbox is full"));
        }
        loop {
            match client.read(&mut self.bytes[self.end..], deadline) {
                Ok(read) => {
                    self.end += read;
                    return Ok(read);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}

/// A request, its head already gathered in `out`, on its way from the
/// client to `tiny_http`; each step that fails says what to answer.
struct Body<'a, W: Write> {
    client: &'a mut Client,
    inbox: &'a mut Inbox,
    to: W,
    /// What is gathered for `to` and not yet written.
    out: Vec<u8>,
    deadline: Option<Instant>,
    timeout: Duration,
    /// Gather the whole body before writing any of it.
    whole: bool,
}

fn malformed(what: &str) -> Refusal {
    Refusal::new(400, what)
}

impl<W: Write> Body<'_, W> {
    /// Passes the body on, then whatever is still gathered.
    fn forward(mut self, framing: Framing, limit: u64) -> Result<(), Refusal> {
        match framing {
            Framing::Empty => {}
            Framing::Length(length) => self.copy_exact(length)?,
            Framing::Chunked => self.copy_chunked(limit)?,
        }
        self.send()
    }

    fn send(&mut self) -> Result<(), Refusal> {
        let sent = self.to.write_all(&self.out);
        sent.map_err(|_| Refusal::new(502, "the server stopped reading the request body"))?;
        self.out.clear();
        Ok(())
    }

    /// Waits for more from the client; what is gathered goes on first
    /// (unless the body goes whole), so nothing waits in our buffer while
    /// we wait.
    fn more(&mut self) -> Result<(), Refusal> {
        if !self.whole {
            self.send()?;
        }
        match self.inbox.fill(self.client, self.deadline) {
            Ok(read) if read > 0 => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(Refusal::new(
                408,
                format!(
                    "the request body did not arrive within {} s",
                    self.timeout.as_secs_f64()
                ),
            )),
            _ => Err(malformed(
                "the connection ended before the request body was complete",
            )),
        }
    }

    /// How many body bytes (at most `left`) are in hand, after waiting for
    /// some if there were none.
    fn in_hand(&mut self, left: u64) -> Result<usize, Refusal> {
        if self.inbox.buffered().is_empty() {
            self.more()?;
        }
        let buffered = self.inbox.buffered().len();
        Ok(usize::try_from(left).map_or(buffered, |left| left.min(buffered)))
    }

    fn copy_exact(&mut self, mut left: u64) -> Result<(), Refusal> {
        while left > 0 {
            let take = self.in_hand(left)?;
            self.out.extend_from_slice(&self.inbox.buffered()[..take]);
            self.inbox.consume(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Chunk-size lines, chunk data, then trailer lines up to an empty
    /// line (RFC 9112, section 7.1), with the total size held to `limit`.
    fn copy_chunked(&mut self, limit: u64) -> Result<(), Refusal> {
        let mut total: u64 = 0;
        loop {
            let size = self.chunk_size()?;
            total = total.saturating_add(size);
            if total > limit {
                let too_large =
                    format!("request body too large: at most {limit} bytes are accepted here");
                return Err(Refusal::new(413, too_large));
            }
            if size == 0 {
                return self.skip_trailers();
            }
            let mut left = size;
            while left > 0 {
                let take = self.in_hand(left)?;
                self.out
                    .extend_from_slice(format!("{take:x}\r\n").as_bytes());
                self.out.extend_from_slice(&self.inbox.buffered()[..take]);
                self.out.extend_from_slice(b"\r\n");
                self.inbox.consume(take);
                left -= take as u64;
            }
            while self.inbox.buffered().len() < 2 {
                self.more()?;
            }
            if !self.inbox.buffered().starts_with(b"\r\n") {
                return Err(malformed("chunk data longer than its size"));
            }
            self.inbox.consume(2);
        }
    }

    fn chunk_size(&mut self) -> Result<u64, Refusal> {
        loop {
            let buffered = self.inbox.buffered();
            // `httparse` reads an empty line as size 0: a size line must
            // begin with a digit.
            let starts_well = buffered.first().is_none_or(u8::is_ascii_hexdigit);
            match httparse::parse_chunk_size(buffered) {
                Ok(httparse::Status::Complete((used, size))) if starts_well => {
                    self.inbox.consume(used);
                    return Ok(size);
                }
                Ok(httparse::Status::Partial)
                    if starts_well && buffered.len() <= MAX_CHUNK_LINE =>
                {
                    self.more()?
                }
                _ => return Err(malformed("malformed chunk size in a chunked body")),
            }
        }
    }

    /// Reads the trailer lines after the last chunk, and ends the body
    /// without them: `tiny_http` takes none, and a server may drop them
    /// (RFC 9110, section 6.5.1).
    fn skip_trailers(&mut self) -> Result<(), Refusal> {
        loop {
            let mut trailers = [httparse::EMPTY_HEADER; MAX_TRAILERS];
            let parsed = match httparse::parse_headers(self.inbox.buffered(), &mut trailers) {
                Ok(httparse::Status::Complete((used, _))) => Some(used),
                Ok(httparse::Status::Partial) => None,
                Err(_) => Some(0),
            };
            match parsed {
                Some(0) => return Err(malformed("malformed or too many trailer lines")),
                Some(used) => {
                    self.inbox.consume(used);
                    self.out.extend_from_slice(b"0\r\n\r\n");
                    return Ok(());
                }
                None if self.inbox.buffered().len() <= MAX_TRAILER_BYTES => self.more()?,
                None => return Err(malformed("malformed or too many trailer lines")),
            }
        }
    }
}

/// Ends the connection to `tiny_http` after a refusal, and waits (up to
/// `wait`) until `tiny_http` is done with it. A refusal may come in the
/// middle of a body that a handler is already reading, such as an upload
/// that turned out too large or too slow: the handler then sees the body
/// end, cleans up and answers (into the void). Waiting for that means that
/// when the client reads our refusal, nothing of its request is left
/// behind.
fn wind_down(backend: &Backend, wait: Duration) {
    let _ = backend.shutdown(Shutdown::Write);
    drain(
        |timeout| backend.set_read_timeout(timeout),
        backend,
        wait,
        usize::MAX,
    );
    let _ = backend.shutdown(Shutdown::Both);
}

/// Sends `answer` (a [`Refusal::answer`]) to a client whose connection
/// never reached `tiny_http`, then closes, lingering less than after a
/// refused request: the one thread that refuses connections over the cap,
/// or the handshake that refuses plain HTTP on a TLS port, must not wait
/// long.
pub(super) fn refuse_at_once(mut client: Client, answer: &[u8]) {
    if client.send(answer).is_ok() {
        linger(&mut client, Duration::from_millis(500));
    }
}

/// Closes a connection gently after an answer: stop sending, then read and
/// drop what the client still sends for a little while. Closing with
/// unread bytes would make the system reset the connection, and a client
/// still sending its body might never read our answer. What is dropped is
/// read from the TCP connection as is: behind TLS it needs no decrypting.
fn linger(client: &mut Client, time: Duration) {
    client.close_write();
    let tcp = &client.transport.tcp;
    drain(
        |timeout| tcp.set_read_timeout(timeout),
        tcp,
        time,
        LINGER_BYTES,
    );
}

/// Reads and drops what `from` sends, for `time` and `most` bytes at most,
/// or until it closes.
fn drain(
    set_timeout: impl Fn(Option<Duration>) -> io::Result<()>,
    mut from: impl Read,
    time: Duration,
    most: usize,
) {
    let deadline = after(time);
    let mut buffer = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < most {
        let read = timeout_until(deadline)
            .and_then(&set_timeout)
            .and_then(|()| from.read(&mut buffer));
        match read {
            Ok(0) | Err(_) => break,
            Ok(read) => drained += read,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// Passes `input`, as a client sends it, through a chunked body with
    /// `limit`; returns what went on to the server, or why it stopped.
    fn chunked(input: &[u8], limit: u64) -> Result<Vec<u8>, u16> {
        chunked_with(input, limit, 64)
    }

    fn chunked_with(input: &[u8], limit: u64, inbox: usize) -> Result<Vec<u8>, u16> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
        let (receiver, _) = listener.accept().expect("accept");
        sender.write_all(input).expect("send the input");
        drop(sender);
        let mut client = Client::plain(receiver);
        let mut inbox = Inbox::new(inbox);
        let mut server = Vec::new();
        let body = Body {
            client: &mut client,
            inbox: &mut inbox,
            to: &mut server,
            out: Vec::new(),
            deadline: None,
            timeout: Duration::ZERO,
            whole: false,
        };
        let forwarded = body.forward(Framing::Chunked, limit);
        forwarded.map(|()| server).map_err(|refusal| refusal.status)
    }

    const BODY: &[u8] = b"5\r\nhello\r\n6;note=x\r\n, kept\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn a_chunked_body_is_reframed_without_extensions_or_trailers() {
        assert_eq!(
            chunked(BODY, u64::MAX),
            Ok(b"5\r\nhello\r\n6\r\n, kept\r\n0\r\n\r\n".to_vec())
        );
    }

    #[test]
    fn a_chunk_is_reframed_in_the_pieces_at_hand() {
        // The inbox holds 64 bytes: a 100-byte chunk goes on in pieces.
        let mut body = b"64\r\n".to_vec();
        body.extend_from_slice(&[b'x'; 100]);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let output = chunked(&body, u64::MAX).expect("a valid body");
        let mut expected = b"3c\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 60]);
        expected.extend_from_slice(b"\r\n28\r\n");
        expected.extend_from_slice(&[b'x'; 40]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(output, expected);
    }

    #[test]
    fn bad_or_oversized_bodies_stop_the_copy() {
        assert_eq!(chunked(BODY, 10), Err(413));
        assert!(chunked(BODY, 11).is_ok());
        let endless = [b'1'; 5000];
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
            b"\r\n",
            b"0\r\nno colon\r\n\r\n",
            b"5\r\nhel",
            b"5\r\nhello\r\n",
        ] {
            assert_eq!(chunked(bad, u64::MAX), Err(400), "{bad:?}");
        }
        assert_eq!(chunked_with(&endless, u64::MAX, BUFFER_BYTES), Err(400));
    }
}
