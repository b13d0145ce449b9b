//! One connection: each request passed on to `tiny_http` over a connection
//! of its own, whose close ends the answer, passed back unparsed. Chunked
//! bodies are read with `httparse` (`chunked_transfer`'s decoder gathers a
//! size line without bound, and takes a body cut in a chunk for a whole one).
//!
//! *Plumbing: a reader may skip this file.*

use super::client::{timeout_until, Client};
use super::head::{self, Framing, Refusal};
use super::private::Backend;
use super::{Door, Limits};
use httparse::Status::{self, Complete, Partial};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bodies announced up to this size are read whole before the request is
/// passed on, so that the code answering it never waits for a slow client.
pub const WHOLE_BODY_BYTES: u64 = 64 * 1024;

/// Bytes read at a time; bounds on a chunked body's size and trailer lines.
const BUFFER_BYTES: usize = 64 * 1024;
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 64;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// How long, and how much, [`refuse`] reads after a refusal.
const LINGER_TIME: Duration = Duration::from_secs(2);
pub(super) const QUICK_LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// How a connection ends early: with a refusal, or without a word (`None`).
type Stop = Option<Refusal>;

/// Serves a connection (TLS if the port speaks it) as connection `id`, or
/// over the cap (no `id`) answers `503`, in a second with the handshake.
pub(super) fn serve(tcp: TcpStream, peer: SocketAddr, door: &Door, id: Option<u64>) {
    let limits = &door.limits;
    let quick = Duration::from_secs(1);
    let timeouts = (limits.send_timeout, limits.header_timeout);
    let (send, handshake) = id.map_or((quick, quick), |_| timeouts);
    let ready = tcp.set_nodelay(true).and(tcp.set_write_timeout(Some(send)));
    let client = ready.map(|()| Client::new(tcp, limits.max_header_bytes.max(BUFFER_BYTES)));
    let client = match (client, &door.tls) {
        (Ok(client), Some(config)) => client.end_tls(config, handshake),
        (client, _) => client.ok(),
    };
    let (mut client, id) = match (client, id) {
        (Some(client), Some(id)) => (client, id),
        (Some(client), None) => {
            let most = limits.max_connections;
            let why = format!("too many connections: at most {most} at once; try again shortly");
            return refuse(client, &Refusal::new(503, why).answer(), QUICK_LINGER);
        }
        (None, _) => return,
    };
    match exchanges(&mut client, peer, door, id) {
        Ok(()) => client.close_write(),
        Err(None) => {}
        Err(Some(refusal)) => {
            let status = refusal.status;
            let why = &refusal.message;
            log::debug!("front door: {peer} refused with {status}: {why}");
            refuse(client, &refusal.answer(), LINGER_TIME);
        }
    }
}

/// Request after request, one at a time (a pipelined one after the answer).
fn exchanges(client: &mut Client, peer: SocketAddr, door: &Door, id: u64) -> Result<(), Stop> {
    let limits = &door.limits;
    while let Some(length) = read_head(client, limits)? {
        let head = &client.buffered()[..length];
        let secret = &door.channel.secret;
        let request = head::check_request(head, peer.ip(), &*door.body_limit, secret)?;
        client.consume(length);
        if request.expects_continue {
            // The body fits the limit, so invite it (RFC 9110, 10.1.1).
            let invite = client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            invite.map_err(|_| None)?;
        }
        let not_answering = || Refusal::new(502, "the server behind this port is not answering");
        let mut backend = door.connect(id).ok_or_else(not_answering)?;
        let body = Body {
            client: &mut *client,
            to: &mut backend,
            out: request.forwarded,
            deadline: Instant::now().checked_add(limits.body_timeout),
            whole: matches!(request.framing, Framing::Length(length) if length <= WHOLE_BODY_BYTES),
        };
        if let Err(refusal) = body.forward(request.framing, request.body_limit) {
            wind_down(&backend, limits.send_timeout);
            return Err(Some(refusal));
        }
        pass_answer(&mut backend, client)?;
        if !request.keep_alive {
            break;
        }
    }
    Ok(())
}

/// The length of the next request head; `None` when the client closed or
/// stayed idle too long.
fn read_head(client: &mut Client, limits: &Limits) -> Result<Option<usize>, Stop> {
    let time = limits.header_timeout;
    let late = format!("the request head did not arrive in {time:?}");
    let too_slow = || Some(Refusal::new(408, late.clone()));
    if client.buffered().is_empty() {
        match client.fill(Instant::now().checked_add(limits.idle_timeout)) {
            // Behind TLS a head may have begun in a record that never came
            // whole: that is a slow head, not an idle connection.
            Err(err) if err.kind() == io::ErrorKind::TimedOut && client.partly_received() => {
                return Err(too_slow())
            }
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    // The head's deadline counts from its first byte.
    let deadline = Instant::now().checked_add(limits.header_timeout);
    let most = limits.max_header_bytes;
    let mut searched = 0;
    loop {
        let buffered = client.buffered();
        let window = &buffered[searched..buffered.len().min(most)];
        if let Some(end) = window.windows(4).position(|four| four == b"\r\n\r\n") {
            return Ok(Some(searched + end + 4));
        } else if buffered.len() >= most {
            let why = format!("request head too large: at most {most} bytes");
            return Err(Some(Refusal::new(431, why)));
        }
        searched = buffered.len().saturating_sub(3);
        match client.fill(deadline) {
            Err(err) if err.kind() == io::ErrorKind::TimedOut => return Err(too_slow()),
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
}

/// Passes back what `tiny_http` answers, as it comes, until it closes.
fn pass_answer(backend: &mut Backend, client: &mut Client) -> Result<(), Stop> {
    match io::copy(&mut BufReader::with_capacity(BUFFER_BYTES, backend), client) {
        Ok(0) => Err(Some(Refusal::new(502, "the server did not answer"))),
        Ok(_) => Ok(()),
        Err(_) => Err(None),
    }
}

/// A request on its way to `tiny_http`, its head gathered in `out`.
struct Body<'a, W: Write> {
    client: &'a mut Client,
    to: W,
    out: Vec<u8>,
    deadline: Option<Instant>,
    /// Write nothing before the whole body is gathered.
    whole: bool,
}

impl<W: Write> Body<'_, W> {
    fn forward(mut self, framing: Framing, limit: u64) -> Result<(), Refusal> {
        match framing {
            Framing::Empty => {}
            Framing::Length(length) => self.copy(length, false)?,
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

    /// Waits for more, after passing on what is gathered (unless `whole`).
    fn more(&mut self) -> Result<(), Refusal> {
        if !self.whole {
            self.send()?;
        }
        match self.client.fill(self.deadline) {
            Ok(read) if read > 0 => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                let why = "the request body did not arrive within the body timeout";
                Err(Refusal::new(408, why))
            }
            _ => Err(head::bad("the connection ended inside the request body")),
        }
    }

    /// Passes on `left` bytes as they come, as chunks if `chunks`.
    fn copy(&mut self, mut left: u64, chunks: bool) -> Result<(), Refusal> {
        while left > 0 {
            if self.client.buffered().is_empty() {
                self.more()?;
            }
            let in_hand = self.client.buffered();
            let take = usize::try_from(left).map_or(in_hand.len(), |left| left.min(in_hand.len()));
            let (size, end) = match chunks {
                true => (format!("{take:x}\r\n"), &b"\r\n"[..]),
                false => (String::new(), &b""[..]),
            };
            self.out.extend_from_slice(size.as_bytes());
            self.out.extend_from_slice(&in_hand[..take]);
            self.out.extend_from_slice(end);
            self.client.consume(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Chunk-size lines, chunk data, then trailer lines up to an empty
    /// line (RFC 9112, section 7.1), with the total size held to `limit`.
    fn copy_chunked(&mut self, limit: u64) -> Result<(), Refusal> {
        let mut total: u64 = 0;
        loop {
            // `httparse` reads an empty line as size 0: a size line must
            // begin with a digit.
            let size = self.parse(MAX_CHUNK_LINE, "malformed chunk size", |bytes| {
                let digit = bytes.first().is_none_or(u8::is_ascii_hexdigit);
                httparse::parse_chunk_size(bytes).ok().filter(|_| digit)
            })?;
            total = total.saturating_add(size);
            if total > limit {
                let why = format!("request body too large: at most {limit} bytes here");
                return Err(Refusal::new(413, why));
            } else if size == 0 {
                break;
            }
            self.copy(size, true)?;
            self.parse(2, "chunk data longer than its size", |bytes| match bytes {
                [b'\r', b'\n', ..] => Some(Complete((2, 0))),
                [] | [b'\r'] => Some(Partial),
                _ => None,
            })?;
        }
        // The trailer lines are read, and the body ends without them:
        // `tiny_http` takes none, and a server may drop them (RFC 9110,
        // section 6.5.1).
        self.parse(MAX_TRAILER_BYTES, "malformed trailer lines", |bytes| {
            let mut trailers = [httparse::EMPTY_HEADER; MAX_TRAILERS];
            match httparse::parse_headers(bytes, &mut trailers).ok()? {
                Complete((used, _)) => Some(Complete((used, 0))),
                Partial => Some(Partial),
            }
        })?;
        self.out.extend_from_slice(b"0\r\n\r\n");
        Ok(())
    }

    /// Reads one item with `parse` (`None`: malformed) from the bytes in
    /// hand, waiting for more while it needs more and `most` are not there.
    fn parse<F>(&mut self, most: usize, what: &str, parse: F) -> Result<u64, Refusal>
    where
        F: Fn(&[u8]) -> Option<Status<(usize, u64)>>,
    {
        loop {
            let in_hand = self.client.buffered();
            match parse(in_hand) {
                Some(Complete((used, value))) => {
                    self.client.consume(used);
                    return Ok(value);
                }
                Some(Partial) if in_hand.len() <= most => self.more()?,
                _ => return Err(head::bad(format!("{what} in a chunked body"))),
            }
        }
    }
}

/// Ends the connection to `tiny_http` after a refusal, and waits until a
/// handler reading the body has seen it end and cleaned up.
fn wind_down(backend: &Backend, wait: Duration) {
    let _ = backend.shutdown(Shutdown::Write);
    drain(backend, |timeout| backend.set_read_timeout(timeout), wait);
    let _ = backend.shutdown(Shutdown::Both);
}

/// Sends `answer`, then drains what the client still sends for `linger`:
/// closing with bytes unread would reset the connection before the client
/// reads the answer.
pub(super) fn refuse(mut client: Client, answer: &[u8], linger: Duration) {
    if client.write_all(answer).is_ok() {
        client.close_write();
        let tcp = &client.transport.tcp;
        drain(tcp, |timeout| tcp.set_read_timeout(timeout), linger);
    }
}

/// Reads and drops what `from` sends, for `time` and [`LINGER_BYTES`] at most.
fn drain(mut from: impl Read, set: impl Fn(Option<Duration>) -> io::Result<()>, time: Duration) {
    let deadline = Instant::now().checked_add(time);
    let mut buffer = [0u8; 16 * 1024];
    for _ in 0..LINGER_BYTES / buffer.len() {
        let timeout = timeout_until(deadline).and_then(&set);
        if !matches!(timeout.and_then(|()| from.read(&mut buffer)), Ok(1..)) {
            break;
        }
    }
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
        let mut client = Client::new(receiver, inbox);
        let mut server = Vec::new();
        let body = Body {
            client: &mut client,
            to: &mut server,
            out: Vec::new(),
            deadline: None,
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
