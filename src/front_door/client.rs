//! A client connection, plain TCP or TLS, read into a bounded inbox by
//! deadlines: the [`Transport`] that rustls reads holds each socket read to
//! what is left, and to a record's own deadline once it begun (nothing can
//! be decrypted before, so a head dripped in one record is seen as late).
//!
//! *Plumbing: a reader may skip this file.*

use super::{head::Refusal, relay};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client's socket, and behind TLS the records arriving and their time.
pub(super) struct Transport {
    pub(super) tcp: TcpStream,
    deadline: Option<Instant>,
    records: Option<(Duration, Records)>,
}

/// The timeout of a read due by `deadline`; `TimedOut` once it has passed.
pub(super) fn timeout_until(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline.map(|deadline| deadline.checked_duration_since(Instant::now())) {
        None => Ok(None),
        Some(Some(left)) if !left.is_zero() => Ok(Some(left)),
        Some(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A socket's timeout is `WouldBlock` on Unix, which rustls takes for a
/// non-blocking socket and waits on: it is told `TimedOut`.
fn timed_out<T>(result: io::Result<T>) -> io::Result<T> {
    result.map_err(|err| match err.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
        _ => err,
    })
}

impl Read for Transport {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let records = self.records.as_ref();
        let record = records.and_then(|(time, records)| records.begun?.checked_add(*time));
        let deadline = [self.deadline, record].into_iter().flatten().min();
        self.tcp.set_read_timeout(timeout_until(deadline)?)?;
        let read = timed_out(self.tcp.read(buffer))?;
        if let Some((_, records)) = &mut self.records {
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

/// A client connection, and what it sent that is not used yet.
pub(super) struct Client {
    pub(super) transport: Transport,
    tls: Option<Box<ServerConnection>>,
    inbox: Box<[u8]>,
    unused: Range<usize>,
}

impl Client {
    pub(super) fn new(tcp: TcpStream, inbox: usize) -> Client {
        let deadline = None;
        let records = None;
        let tls = None;
        let transport = Transport {
            tcp,
            deadline,
            records,
        };
        let inbox = vec![0; inbox].into_boxed_slice();
        Client {
            transport,
            tls,
            inbox,
            unused: 0..0,
        }
    }

    pub(super) fn buffered(&self) -> &[u8] {
        &self.inbox[self.unused.clone()]
    }

    pub(super) fn consume(&mut self, count: usize) {
        self.unused.start += count;
    }

    /// Reads more by `deadline` (else `TimedOut`); `Ok(0)`: the client closed.
    pub(super) fn fill(&mut self, deadline: Option<Instant>) -> io::Result<usize> {
        // Compacted only when full, not at each (maybe one-byte) read.
        if self.unused.is_empty() || self.unused.end == self.inbox.len() {
            self.inbox.copy_within(self.unused.clone(), 0);
            self.unused = 0..self.unused.len();
        }
        if self.unused.end == self.inbox.len() {
            return Err(io::Error::other("the inbox is full"));
        }
        self.transport.deadline = deadline;
        let into = &mut self.inbox[self.unused.end..];
        let read = loop {
            let read = match &mut self.tls {
                None => self.transport.read(into),
                Some(tls) => rustls::Stream::new(&mut **tls, &mut self.transport).read(into),
            };
            match read.as_ref().map_err(io::Error::kind) {
                Err(io::ErrorKind::Interrupted) => {}
                // Closed without a TLS `close_notify`: a cut request is still
                // seen as cut, since HTTP requests carry their own length.
                Err(io::ErrorKind::UnexpectedEof) => break 0,
                _ => break read?,
            }
        };
        self.unused.end += read;
        Ok(read)
    }

    /// Tells the client that nothing more will be sent; behind TLS with a
    /// `close_notify`, without which an answer ended by the close would
    /// read as cut off.
    pub(super) fn close_write(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = rustls::Stream::new(&mut **tls, &mut self.transport).flush();
        }
        let _ = self.transport.tcp.shutdown(Shutdown::Write);
    }

    /// Whether part of a TLS record has come, not readable yet.
    pub(super) fn partly_received(&self) -> bool {
        let records = self.transport.records.as_ref();
        records.is_some_and(|(_, records)| records.begun.is_some())
    }

    /// Ends TLS on a fresh client: the handshake must be done within `time`,
    /// which then bounds each record. `None` when it fails; a client that
    /// spoke plain HTTP is told to use `https://`.
    pub(super) fn end_tls(mut self, config: &Arc<ServerConfig>, time: Duration) -> Option<Client> {
        let deadline = Instant::now().checked_add(time);
        let tcp = &self.transport.tcp;
        let mut first = [0u8; 1];
        let peeked = timeout_until(deadline).and_then(|timeout| tcp.set_read_timeout(timeout));
        if peeked.and_then(|()| tcp.peek(&mut first)).is_ok() && first[0].is_ascii_alphabetic() {
            let refusal = Refusal::new(400, "this port speaks TLS: use an https:// address");
            relay::refuse(self, &refusal.answer(), relay::QUICK_LINGER);
            return None;
        }
        // 0x16 begins a TLS handshake record (`ContentType::Handshake`).
        let tls = ServerConnection::new(Arc::clone(config)).ok();
        let mut tls = tls.filter(|_| first[0] == 0x16)?;
        self.transport.deadline = deadline;
        self.transport.records = Some((time, Records::default()));
        while tls.is_handshaking() {
            match tls.complete_io(&mut self.transport) {
                Ok((0, 0)) => return None,
                Ok(_) => {}
                Err(err) => {
                    let peer = self.transport.tcp.peer_addr();
                    log::debug!("front door: no TLS with {peer:?}: {err}");
                    return None;
                }
            }
        }
        self.tls = Some(Box::new(tls));
        Some(self)
    }
}

/// Each write goes out at once, within the send timeout.
impl Write for Client {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return self.transport.write(bytes);
        };
        let mut stream = rustls::Stream::new(&mut **tls, &mut self.transport);
        let written = stream.write(bytes)?;
        stream.flush().map(|()| written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the client's bytes are in TLS's framing, beside rustls: a record
/// is a plain 5-byte header, then as many bytes as its last two say.
#[derive(Default)]
pub(super) struct Records {
    header: Vec<u8>,
    body_left: usize,
    begun: Option<Instant>,
}

impl Records {
    fn saw(&mut self, mut bytes: &[u8], now: Instant) {
        while let Some((&first, rest)) = bytes.split_first() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                (self.body_left, bytes) = (self.body_left - take, &bytes[take..]);
            } else {
                self.begun = self.begun.or(Some(now));
                self.header.push(first);
                bytes = rest;
                if let [_, _, _, high, low] = self.header[..] {
                    self.body_left = usize::from(u16::from_be_bytes([high, low]));
                    self.header.clear();
                }
            }
            if self.header.is_empty() && self.body_left == 0 {
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
