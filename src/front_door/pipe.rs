//! Passing bytes along: each socket's buffers, and bodies copied by their
//! framing (a length, chunks, or until the sender closes).
//!
//! *Plumbing: a reader may skip this file.*

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Bytes read from or gathered for a socket at a time.
pub(super) const BUFFER_BYTES: usize = 64 * 1024;
/// The longest chunk-size line or trailer line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// The most trailer lines accepted after a chunked body.
const MAX_TRAILER_LINES: usize = 64;

/// How long a read may wait.
#[derive(Clone, Copy)]
pub(super) enum Wait {
    Forever,
    For(Duration),
    Until(Instant),
}

impl Wait {
    /// Until `duration` from now (or forever, for a duration too long to
    /// count in `Instant`s).
    pub(super) fn after(duration: Duration) -> Wait {
        Wait::until(Instant::now().checked_add(duration))
    }

    /// Until `deadline`, or forever for none.
    pub(super) fn until(deadline: Option<Instant>) -> Wait {
        deadline.map_or(Wait::Forever, Wait::Until)
    }

    /// The timeout a socket read gets for this wait (`None`: no timeout);
    /// an error of kind `TimedOut` when a deadline has come already.
    pub(super) fn timeout(self) -> io::Result<Option<Duration>> {
        match self {
            Wait::Forever => Ok(None),
            Wait::For(duration) => Ok(Some(duration)),
            Wait::Until(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(io::ErrorKind::TimedOut.into()),
            },
        }
    }
}

/// What goes wrong while passing a body along.
pub(super) enum BodyError {
    /// The sender closed before the body was complete.
    Ended,
    /// The body did not arrive before its deadline.
    TimedOut,
    /// The chunked framing is broken.
    Malformed(&'static str),
    /// The body is larger than allowed.
    TooLarge,
    /// Reading from the sender failed.
    Read,
    /// Writing to the receiver failed.
    Write,
}

/// The socket types a connection joins: a client's TCP socket and the Unix
/// socket to `tiny_http`.
pub(super) trait Socket: Read + Write {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl Socket for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

/// The client's end of a connection: plain TCP, or TLS over TCP.
pub(super) trait Client: Socket {
    /// The TCP connection underneath.
    fn tcp(&self) -> &TcpStream;
    /// Tells the client that nothing more will be sent.
    fn close_write(&mut self);
    /// Whether bytes have come that cannot be read yet (part of a TLS
    /// record).
    fn partly_received(&self) -> bool {
        false
    }
}

impl Client for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn close_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// One end of the relay: what was read from a socket and not yet used, and
/// what is gathered to be written to it.
pub(super) struct Side<S: Socket> {
    pub(super) socket: S,
    inbox: Box<[u8]>,
    start: usize,
    end: usize,
    pub(super) outbox: Vec<u8>,
    timeout: Option<Duration>,
}

impl<S: Socket> Side<S> {
    pub(super) fn new(socket: S, inbox: usize) -> Side<S> {
        Side {
            socket,
            inbox: vec![0; inbox].into_boxed_slice(),
            start: 0,
            end: 0,
            outbox: Vec::new(),
            timeout: None,
        }
    }

    pub(super) fn buffered(&self) -> &[u8] {
        &self.inbox[self.start..self.end]
    }

    pub(super) fn consume(&mut self, count: usize) {
        self.start += count;
    }

    /// Reads more into the inbox; `Ok(0)` when the peer closed. A wait that
    /// runs out is an error of kind `TimedOut`.
    pub(super) fn fill(&mut self, wait: Wait) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.inbox.len() {
            self.inbox.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.inbox.len() {
            return Err(io::Error::other("the inbox is full"));
        }
        let timeout = wait.timeout()?;
        if timeout != self.timeout {
            self.socket.set_read_timeout(timeout)?;
            self.timeout = timeout;
        }
        loop {
            match self.socket.read(&mut self.inbox[self.end..]) {
                Ok(read) => {
                    self.end += read;
                    return Ok(read);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::ErrorKind::TimedOut.into())
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Queues bytes for the socket; large amounts go out at once.
    pub(super) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.outbox.len() + bytes.len() <= BUFFER_BYTES {
            self.outbox.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush()?;
        self.socket.write_all(bytes)
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        if !self.outbox.is_empty() {
            self.socket.write_all(&self.outbox)?;
            self.outbox.clear();
        }
        Ok(())
    }
}

/// Reads more from `from`, mapping the outcome for a body.
pub(super) fn read_more<S: Socket>(from: &mut Side<S>, wait: Wait) -> Result<(), BodyError> {
    match from.fill(wait) {
        Ok(0) => Err(BodyError::Ended),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(BodyError::TimedOut),
        Err(_) => Err(BodyError::Read),
    }
}

/// Sends on what `to` has gathered, then reads more from `from`: nothing
/// waits in our buffers while we wait.
pub(super) fn flush_and_read<A: Socket, B: Socket>(
    from: &mut Side<A>,
    to: &mut Side<B>,
    wait: Wait,
) -> Result<(), BodyError> {
    to.flush().map_err(|_| BodyError::Write)?;
    read_more(from, wait)
}

/// Passes exactly `length` bytes along.
pub(super) fn copy_exact<A: Socket, B: Socket>(
    from: &mut Side<A>,
    to: &mut Side<B>,
    mut length: u64,
    wait: Wait,
) -> Result<(), BodyError> {
    while length > 0 {
        if from.buffered().is_empty() {
            flush_and_read(from, to, wait)?;
        }
        let take = from
            .buffered()
            .len()
            .min(usize::try_from(length).unwrap_or(usize::MAX));
        to.send(&from.buffered()[..take])
            .map_err(|_| BodyError::Write)?;
        from.consume(take);
        length -= take as u64;
    }
    Ok(())
}

/// Passes everything along until `from` closes.
pub(super) fn copy_until_closed<A: Socket, B: Socket>(
    from: &mut Side<A>,
    to: &mut Side<B>,
) -> Result<(), BodyError> {
    loop {
        let buffered = from.buffered().len();
        to.send(from.buffered()).map_err(|_| BodyError::Write)?;
        from.consume(buffered);
        match flush_and_read(from, to, Wait::Forever) {
            Err(BodyError::Ended) => return Ok(()),
            other => other?,
        }
    }
}

/// How a chunked body is passed along.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunks {
    /// Byte for byte (a response, from `tiny_http`).
    AsSent,
    /// Re-framed: each piece of data in hand goes on as a chunk of its own,
    /// so that `tiny_http` never holds part of a chunk. Its decoder takes a
    /// connection that ends inside a chunk for the end of the body, so a
    /// request cut off there (too slow, too large) would look complete to
    /// the code reading it; cut off between chunks, it is an error.
    Reframed,
}

/// Passes a chunked body along, checking its framing and, with a `limit`,
/// its size: chunk-size lines, chunk data, then trailer lines up to an
/// empty line (RFC 9112, section 7.1).
pub(super) fn copy_chunked<A: Socket, B: Socket>(
    from: &mut Side<A>,
    to: &mut Side<B>,
    limit: Option<u64>,
    wait: Wait,
    chunks: Chunks,
) -> Result<(), BodyError> {
    let mut total: u64 = 0;
    loop {
        let line = take_line(from, to, wait)?;
        let size = line[..line.len() - 2]
            .split(|&b| b == b';')
            .next()
            .map(|size| size.trim_ascii())
            .filter(|size| !size.is_empty() && size.len() <= 15)
            .and_then(|size| std::str::from_utf8(size).ok())
            .and_then(|size| u64::from_str_radix(size, 16).ok())
            .ok_or(BodyError::Malformed(
                "malformed chunk size in a chunked body",
            ))?;
        total = total.saturating_add(size);
        if limit.is_some_and(|limit| total > limit) {
            return Err(BodyError::TooLarge);
        }
        let write = |to: &mut Side<B>, bytes: &[u8]| to.send(bytes).map_err(|_| BodyError::Write);
        if size == 0 {
            write(
                to,
                if chunks == Chunks::AsSent {
                    &line
                } else {
                    b"0\r\n"
                },
            )?;
            // Trailer lines, up to an empty line. `tiny_http` takes none,
            // and a server may drop them (RFC 9110, section 6.5.1): a
            // re-framed body ends bare.
            for _ in 0..=MAX_TRAILER_LINES {
                let trailer = take_line(from, to, wait)?;
                if chunks == Chunks::AsSent || trailer == b"\r\n" {
                    write(to, &trailer)?;
                }
                if trailer == b"\r\n" {
                    return Ok(());
                }
            }
            return Err(BodyError::Malformed(
                "too many trailer lines after a chunked body",
            ));
        }
        match chunks {
            Chunks::AsSent => {
                write(to, &line)?;
                copy_exact(from, to, size, wait)?;
            }
            Chunks::Reframed => {
                let mut left = size;
                while left > 0 {
                    if from.buffered().is_empty() {
                        flush_and_read(from, to, wait)?;
                    }
                    let take = from
                        .buffered()
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    write(to, format!("{take:x}\r\n").as_bytes())?;
                    write(to, &from.buffered()[..take])?;
                    write(to, b"\r\n")?;
                    from.consume(take);
                    left -= take as u64;
                }
            }
        }
        while from.buffered().len() < 2 {
            flush_and_read(from, to, wait)?;
        }
        if &from.buffered()[..2] != b"\r\n" {
            return Err(BodyError::Malformed("chunk data longer than its size"));
        }
        from.consume(2);
        if chunks == Chunks::AsSent {
            write(to, b"\r\n")?;
        }
    }
}

/// Takes one line ending with CRLF from `from`.
pub(super) fn take_line<A: Socket, B: Socket>(
    from: &mut Side<A>,
    to: &mut Side<B>,
    wait: Wait,
) -> Result<Vec<u8>, BodyError> {
    let mut searched = 0;
    loop {
        let buffered = from.buffered();
        if let Some(end) = find(&buffered[searched..], b"\r\n") {
            let line = buffered[..searched + end + 2].to_vec();
            from.consume(line.len());
            return Ok(line);
        }
        if buffered.len() > MAX_CHUNK_LINE {
            return Err(BodyError::Malformed("a line of a chunked body is too long"));
        }
        searched = buffered.len().saturating_sub(1);
        flush_and_read(from, to, wait)?;
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passes `input` through `copy_chunked`; returns what came out, or
    /// which error stopped it.
    fn chunked(input: &[u8], limit: Option<u64>, chunks: Chunks) -> Result<Vec<u8>, &'static str> {
        let (mut sender, receiver) = UnixStream::pair().expect("a socket pair");
        let (out, mut collector) = UnixStream::pair().expect("a socket pair");
        sender.write_all(input).expect("write the input");
        drop(sender);
        let (mut from, mut to) = (Side::new(receiver, 64), Side::new(out, 64));
        let copied = copy_chunked(&mut from, &mut to, limit, Wait::Forever, chunks);
        to.flush().expect("flush");
        drop(to);
        let mut output = Vec::new();
        collector.read_to_end(&mut output).expect("read the output");
        match copied {
            Ok(()) => Ok(output),
            Err(BodyError::Ended) => Err("ended"),
            Err(BodyError::TooLarge) => Err("too large"),
            Err(BodyError::Malformed(_)) => Err("malformed"),
            Err(BodyError::TimedOut | BodyError::Read | BodyError::Write) => Err("i/o"),
        }
    }

    const BODY: &[u8] = b"5\r\nhello\r\n6;note=x\r\n, kept\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn a_response_passes_byte_for_byte() {
        assert_eq!(chunked(BODY, None, Chunks::AsSent), Ok(BODY.to_vec()));
    }

    #[test]
    fn a_request_is_reframed_without_extensions_or_trailers() {
        assert_eq!(
            chunked(BODY, None, Chunks::Reframed),
            Ok(b"5\r\nhello\r\n6\r\n, kept\r\n0\r\n\r\n".to_vec())
        );
    }

    #[test]
    fn a_chunk_is_reframed_in_the_pieces_at_hand() {
        // The inbox holds 64 bytes: a 100-byte chunk goes on in pieces.
        let mut body = b"64\r\n".to_vec();
        body.extend_from_slice(&[b'x'; 100]);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let output = chunked(&body, None, Chunks::Reframed).expect("a valid body");
        let mut expected = b"3c\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 60]);
        expected.extend_from_slice(b"\r\n28\r\n");
        expected.extend_from_slice(&[b'x'; 40]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(output, expected);
    }

    #[test]
    fn bad_or_oversized_bodies_stop_the_copy() {
        assert_eq!(chunked(BODY, Some(10), Chunks::Reframed), Err("too large"));
        assert_eq!(
            chunked(BODY, Some(11), Chunks::Reframed).map(|_| ()),
            Ok(())
        );
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
            b"\r\n",
        ] {
            assert_eq!(
                chunked(bad, None, Chunks::Reframed),
                Err("malformed"),
                "{bad:?}"
            );
        }
        assert_eq!(chunked(b"5\r\nhel", None, Chunks::Reframed), Err("ended"));
        assert_eq!(
            chunked(b"5\r\nhello\r\n", None, Chunks::Reframed),
            Err("ended")
        );
    }
}
