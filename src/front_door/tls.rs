//! TLS, ended at the front door: behind it every request is plain HTTP, so
//! every limit applies to an `https://` port exactly as to an `http://` one.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The handshake has the head's deadline (`header_timeout`): a client that
//! opens a connection and says nothing, or drips its `ClientHello`, is cut
//! off like one that drips its request head. A client that sends plain
//! HTTP to the TLS port is told, in plain HTTP, to use `https://`.

use super::head::Refusal;
use super::pipe::{Socket, Wait};
use super::relay;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The certificate (chain) and key a TLS port presents, checked and ready.
#[derive(Clone)]
pub struct TlsIdentity(Arc<ServerConfig>);

/// Why a certificate and key cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate file holds no PEM `CERTIFICATE` block.
    NoCertificate,
    /// The key file holds no PEM private key (PKCS#8, RSA or SEC1), or one
    /// that cannot be read.
    NoPrivateKey(String),
    /// The two were read but do not make a usable identity, for instance a
    /// key that does not match the certificate.
    Unusable(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoCertificate => write!(
                f,
                "the certificate file holds no PEM certificate \
                 (a \"-----BEGIN CERTIFICATE-----\" block)"
            ),
            TlsError::NoPrivateKey(why) => write!(
                f,
                "the key file holds no usable unencrypted PEM private key \
                 (PKCS#8, RSA or EC): {why}"
            ),
            TlsError::Unusable(why) => {
                write!(f, "the certificate and key cannot be served: {why}")
            }
        }
    }
}

impl std::error::Error for TlsError {}

impl TlsIdentity {
    /// Reads a PEM certificate chain (the server's certificate first) and
    /// its PEM private key.
    pub fn from_pem(certificates: &[u8], private_key: &[u8]) -> Result<TlsIdentity, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certificates)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(private_key)
            .map_err(|err| TlsError::NoPrivateKey(err.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|err| TlsError::Unusable(err.to_string()))?;
        Ok(TlsIdentity(Arc::new(config)))
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsIdentity(..)")
    }
}

/// A client connection after its handshake: reads and writes plain bytes.
///
/// Not `rustls::StreamOwned`: one read of that may wait on the socket many
/// times over (a record dripped a byte at a time), each wait with the full
/// timeout, so a deadline would never come. Here each `read` ends within
/// the read timeout in all, as a `TcpStream`'s does, and each socket write
/// waits at most the write timeout. (A read may have to write: an alert, or
/// the answer to a key update. Such a write has the write timeout.)
///
/// One more deadline is TLS's own: nothing can be decrypted until a record
/// (up to 16 KiB) is whole, so the first byte of a request head is not
/// seen until its whole record is. A record, once begun, must therefore
/// be whole within `record_time` (the head's deadline); otherwise a client
/// could drip its head within the much longer idle time. [`Framing`]
/// tells when the record now arriving began.
pub(super) struct TlsStream {
    connection: ServerConnection,
    tcp: TcpStream,
    framing: Framing,
    record_time: Duration,
    /// What one `read` may take in all; set by `set_read_timeout`.
    timeout: Cell<Option<Duration>>,
}

impl TlsStream {
    /// Writes out every encrypted byte rustls has ready. An interrupted
    /// write is tried again here: the plaintext is already taken, and a
    /// caller trying again would send it twice.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.connection.wants_write() {
            match self.connection.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Reads what the socket has (waiting at most until `deadline`, or
    /// until the record now arriving is overdue) and decrypts it; `Ok(0)`
    /// when the client closed. A TLS error is sent to the client as an
    /// alert.
    fn receive(&mut self, deadline: Option<Instant>) -> io::Result<usize> {
        let record_deadline = self
            .framing
            .begun
            .and_then(|begun| begun.checked_add(self.record_time));
        let deadline = match (deadline, record_deadline) {
            (Some(deadline), Some(record)) => Some(deadline.min(record)),
            (deadline, record) => deadline.or(record),
        };
        self.tcp
            .set_read_timeout(Wait::until(deadline).timeout()?)?;
        let received = self.connection.read_tls(&mut Watched {
            tcp: &self.tcp,
            framing: &mut self.framing,
        })?;
        if let Err(err) = self.connection.process_new_packets() {
            let _ = self.send_pending();
            return Err(io::Error::new(io::ErrorKind::InvalidData, err));
        }
        self.send_pending()?;
        Ok(received)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let deadline = self
            .timeout
            .get()
            .and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            match self.connection.reader().read(buffer) {
                Ok(read) => return Ok(read),
                // Nothing decrypted yet: read more below.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without a `close_notify`. HTTP requests carry
                // their own length, so a cut one is still seen as cut.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(err) => return Err(err),
            }
            self.receive(deadline)?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let accepted = self.connection.writer().write(bytes)?;
        self.send_pending()?;
        Ok(accepted)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.connection.writer().flush()?;
        self.send_pending()
    }
}

impl Socket for TlsStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)?;
        self.timeout.set(timeout);
        Ok(())
    }
}

impl super::pipe::Client for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// TLS says goodbye with a `close_notify` alert before the TCP close,
    /// so that the client can tell a complete answer from a cut one.
    fn close_write(&mut self) {
        self.connection.send_close_notify();
        let _ = self.send_pending();
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    fn partly_received(&self) -> bool {
        self.framing.begun.is_some()
    }
}

/// Where the client's bytes are in TLS's framing. Every record is a 5-byte
/// header (content type, version, a 2-byte length) and then that many
/// bytes; headers are never encrypted, so the front door can follow the
/// framing itself, without rustls, and tell when the record now arriving
/// began.
#[derive(Default)]
struct Framing {
    /// The current record's header, as far as it has come.
    header: [u8; 5],
    header_seen: usize,
    /// Bytes of the current record's body still to come.
    body_left: usize,
    /// When the first byte of the incomplete record came; `None` between
    /// records.
    begun: Option<Instant>,
}

impl Framing {
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

/// The client's socket as rustls reads it, with every byte followed by
/// [`Framing`] on the way.
struct Watched<'a> {
    tcp: &'a TcpStream,
    framing: &'a mut Framing,
}

impl Read for Watched<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = (&mut &*self.tcp).read(buffer)?;
        self.framing.saw(&buffer[..read], Instant::now());
        Ok(read)
    }
}

/// The first byte of every TLS handshake record (`ContentType::Handshake`).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Runs the server side of the handshake on `client` within `time`, which
/// then bounds the time of each record (see [`TlsStream`]).
/// `None` when it fails; the reason is logged, and a client that spoke
/// plain HTTP has been told to use `https://`.
pub(super) fn handshake(
    identity: &TlsIdentity,
    client: TcpStream,
    time: Duration,
) -> Option<TlsStream> {
    let peer = client
        .peer_addr()
        .map_or_else(|_| "a client".to_string(), |peer| peer.to_string());
    let deadline = Instant::now().checked_add(time);
    let mut first = [0u8; 1];
    let peeked = Wait::until(deadline)
        .timeout()
        .and_then(|timeout| client.set_read_timeout(timeout))
        .and_then(|()| client.peek(&mut first));
    match peeked {
        Ok(1) if first[0] == HANDSHAKE_RECORD => {}
        Ok(1) if first[0].is_ascii_alphabetic() => {
            log::debug!("front door: {peer} sent plain HTTP to the TLS port");
            let refusal = Refusal::new(400, "this port speaks TLS: use an https:// address");
            relay::refuse_at_once(client, &relay::answer(&refusal));
            return None;
        }
        Ok(_) => {
            log::debug!("front door: {peer} did not start a TLS handshake");
            return None;
        }
        Err(err) => {
            log::debug!("front door: no TLS handshake from {peer}: {err}");
            return None;
        }
    }
    let connection = match ServerConnection::new(Arc::clone(&identity.0)) {
        Ok(connection) => connection,
        Err(err) => {
            log::warn!("front door: cannot start TLS for {peer}: {err}");
            return None;
        }
    };
    let mut stream = TlsStream {
        connection,
        tcp: client,
        framing: Framing::default(),
        record_time: time,
        timeout: Cell::new(None),
    };
    while stream.connection.is_handshaking() {
        match stream.receive(deadline) {
            Ok(0) => {
                log::debug!("front door: {peer} left during the TLS handshake");
                return None;
            }
            Ok(_) => {}
            Err(err) => {
                log::debug!("front door: TLS handshake with {peer} failed: {err}");
                return None;
            }
        }
    }
    Some(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_knows_when_the_incomplete_record_began() {
        let start = Instant::now();
        let at = |millis| start + Duration::from_millis(millis);
        let mut framing = Framing::default();
        // A header cut in two: the record began with its first byte.
        framing.saw(&[0x17, 0x03], at(0));
        framing.saw(&[0x03, 0x00, 0x02, 0xaa], at(5));
        assert_eq!(framing.begun, Some(at(0)));
        // Its last byte, then a whole empty record: nothing incomplete.
        framing.saw(&[0xbb, 0x17, 0x03, 0x03, 0x00, 0x00], at(9));
        assert_eq!(framing.begun, None);
        // A whole record and the start of the next in one read: the next
        // began then.
        framing.saw(&[0x17, 0x03, 0x03, 0x00, 0x01, 0xcc, 0x17], at(20));
        assert_eq!(framing.begun, Some(at(20)));
        framing.saw(&[0x03, 0x03, 0x01, 0x00], at(30));
        framing.saw(&[0u8; 255], at(40));
        assert_eq!(framing.begun, Some(at(20)), "one byte of 256 is missing");
        framing.saw(&[0], at(50));
        assert_eq!(framing.begun, None);
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let error = TlsIdentity::from_pem(b"not a certificate", b"").unwrap_err();
        assert_eq!(error, TlsError::NoCertificate);
        assert!(error.to_string().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn a_certificate_without_a_key_is_refused() {
        // A syntactically valid PEM block; its content is never checked
        // because the key is missing first.
        let certificate = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = TlsIdentity::from_pem(certificate, b"no key here").unwrap_err();
        assert!(matches!(error, TlsError::NoPrivateKey(_)), "{error:?}");
    }
}
