//! The client's end of a connection, plain TCP or TLS, read against
//! deadlines.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Every read from a client has a deadline (the idle time, the head's, the
//! body's). A socket only has a timeout per `read` call, and one TLS read
//! may take many socket reads (a record dripped a byte at a time), each of
//! which would get the whole timeout anew. So the deadline is kept in the
//! [`Transport`], the TCP socket as rustls's `StreamOwned` reads it, and
//! each socket read waits only for what is left of it.
//!
//! TLS adds a deadline of its own: nothing can be decrypted until a record
//! (up to 16 KiB) is whole, so the first byte of a request head is not seen
//! until its whole record is. A record, once begun, must therefore be whole
//! within the head's time; otherwise a client could drip its head within
//! the much longer idle time. [`Records`] tells when the record now
//! arriving began.

use rustls::{ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A client's TCP socket, read against a deadline.
pub(super) struct Transport {
    pub(super) tcp: TcpStream,
    /// When the current read must be done; `None`: it may wait forever.
    pub(super) deadline: Option<Instant>,
    /// Behind TLS: the records arriving, and how long one may take.
    pub(super) records: Option<(Records, Duration)>,
}

impl Transport {
    pub(super) fn new(tcp: TcpStream) -> Transport {
        Transport {
            tcp,
            deadline: None,
            records: None,
        }
    }
}

/// The timeout of a socket read that must end by `deadline` (`None`: no
/// timeout); an error of kind `TimedOut` when the deadline has passed.
pub(super) fn timeout_until(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline.map(|deadline| deadline.checked_duration_since(Instant::now())) {
        None => Ok(None),
        Some(Some(left)) if !left.is_zero() => Ok(Some(left)),
        Some(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A socket timeout shows as `WouldBlock` on Unix; rustls takes that for a
/// non-blocking socket and would try the other direction, so it is told
/// `TimedOut` instead.
fn timed_out<T>(result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Err(io::ErrorKind::TimedOut.into()),
        other => other,
    }
}

impl Read for Transport {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let record_due = self
            .records
            .as_ref()
            .and_then(|(records, time)| records.begun?.checked_add(*time));
        let deadline = match (self.deadline, record_due) {
            (Some(deadline), Some(record)) => Some(deadline.min(record)),
            (deadline, record) => deadline.or(record),
        };
        self.tcp.set_read_timeout(timeout_until(deadline)?)?;
        let read = timed_out(self.tcp.read(buffer))?;
        if let Some((records, _)) = &mut self.records {
            records.saw(&buffer[..read], Instant::now());
        }
        Ok(read)
    }
}

impl Write for Transport {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        timed_out(self.tcp.write(bytes))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A client connection: plain TCP, or TLS after its handshake.
pub(super) enum Client {
    Plain(Transport),
    Tls(Box<StreamOwned<ServerConnection, Transport>>),
}

impl Client {
    fn transport(&mut self) -> &mut Transport {
        match self {
            Client::Plain(transport) => transport,
            Client::Tls(stream) => &mut stream.sock,
        }
    }

    /// The TCP connection underneath.
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Client::Plain(transport) => &transport.tcp,
            Client::Tls(stream) => &stream.sock.tcp,
        }
    }

    /// Reads what has come, waiting until `deadline` at most (an error of
    /// kind `TimedOut` then); `Ok(0)` when the client closed.
    pub(super) fn read(
        &mut self,
        buffer: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        self.transport().deadline = deadline;
        let read = match self {
            Client::Plain(transport) => transport.read(buffer),
            Client::Tls(stream) => stream.read(buffer),
        };
        match read {
            // Closed without a TLS `close_notify`. HTTP requests carry their
            // own length, so a cut one is still seen as cut.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }

    /// Sends `bytes` at once; each socket write waits at most the send
    /// timeout.
    pub(super) fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Client::Plain(transport) => transport.write_all(bytes),
            Client::Tls(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
        }
    }

    /// Tells the client that nothing more will be sent. TLS says so with a
    /// `close_notify` alert before the TCP close, so that the client can
    /// tell a complete answer from a cut one.
    pub(super) fn close_write(&mut self) {
        if let Client::Tls(stream) = self {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }

    /// Whether bytes have come that cannot be read yet (part of a TLS
    /// record).
    pub(super) fn partly_received(&self) -> bool {
        match self {
            Client::Plain(_) => false,
            Client::Tls(stream) => stream
                .sock
                .records
                .as_ref()
                .is_some_and(|(records, _)| records.begun.is_some()),
        }
    }
}

/// Where the client's bytes are in TLS's framing. Every record is a 5-byte
/// header (content type, version, a 2-byte length) and then that many
/// bytes; headers are never encrypted, so the front door can follow the
/// framing itself, beside rustls, and tell when the record now arriving
/// began.
#[derive(Default)]
pub(super) struct Records {
    /// The current record's header, as far as it has come.
    header: [u8; 5],
    header_seen: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
    /// When the first byte of the incomplete record came; `None` between
    /// records.
    begun: Option<Instant>,
}

impl Records {
    /// Follows `bytes`, which came at `now`.
    fn saw(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            if self.header_seen == 0 {
                self.begun = Some(now);
            }
            if self.header_seen < self.header.len() {
                let take = (self.header.len() - self.header_seen).min(bytes.len());
                self.header[self.header_seen..self.header_seen + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_seen += take;
                bytes = &bytes[take..];
                if self.header_seen == self.header.len() {
                    self.body_left =
                        usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                }
            } else {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
            }
            if self.header_seen == self.header.len() && self.body_left == 0 {
                self.header_seen = 0;
                self.begun = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_know_when_the_incomplete_one_began() {
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let mut records = Records::default();
        // A header cut in two: the record began with its first byte.
        records.saw(&[0x17, 0x03], at(0));
        records.saw(&[0x03, 0x00, 0x02, 0xaa], at(5));
        assert_eq!(records.begun, Some(at(0)));
        // Its last byte, then a whole empty record: nothing incomplete.
        records.saw(&[0xbb, 0x17, 0x03, 0x03, 0x00, 0x00], at(9));
        assert_eq!(records.begun, None);
        // A whole record and the start of the next in one read: the next
        // began then.
        records.saw(&[0x17, 0x03, 0x03, 0x00, 0x01, 0xcc, 0x17], at(20));
        assert_eq!(records.begun, Some(at(20)));
        records.saw(&[0x03, 0x03, 0x01, 0x00], at(30));
        records.saw(&[0u8; 255], at(40));
        assert_eq!(records.begun, Some(at(20)), "one byte of 256 is missing");
        records.saw(&[0], at(50));
        assert_eq!(records.begun, None);
    }

    #[test]
    fn a_passed_deadline_is_a_timeout_and_none_is_no_limit() {
        assert_eq!(timeout_until(None).unwrap(), None);
        let past = Instant::now().checked_sub(Duration::from_millis(1));
        let error = timeout_until(past).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let later = Instant::now() + Duration::from_secs(60);
        assert!(timeout_until(Some(later)).unwrap().is_some());
    }
}
