//! TLS, ended at the front door: behind it every request is plain HTTP, so
//! every limit holds on an `https://` port exactly as on an `http://` one.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! rustls does the TLS: its `ServerConnection` for the handshake, its
//! `Stream` after it (see the `client` module). The handshake has the
//! head's deadline (`header_timeout`): a client that connects and says
//! nothing, or drips its `ClientHello`, is cut off like one that drips its
//! request head. A client that speaks plain HTTP to the TLS port is told,
//! in plain HTTP, to use `https://`.

use super::client::{timeout_until, Client, Records};
use super::head::Refusal;
use super::relay;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use std::fmt;
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
            TlsError::NoCertificate => f.write_str(
                "the certificate file holds no PEM certificate \
                 (a \"-----BEGIN CERTIFICATE-----\" block)",
            ),
            TlsError::NoPrivateKey(why) => write!(
                f,
                "the key file holds no usable unencrypted PEM private key \
                 (PKCS#8, RSA or EC): {why}"
            ),
            TlsError::Unusable(why) => write!(f, "the certificate and key cannot be served: {why}"),
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

/// The first byte of every TLS handshake record (`ContentType::Handshake`).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Runs the server side of the handshake on a fresh `client` within
/// `time`, which then bounds the time of each record (see the `client`
/// module). `None` when it fails; the reason is logged, and a client that
/// spoke plain HTTP has been told to use `https://`.
pub(super) fn handshake(identity: &TlsIdentity, client: Client, time: Duration) -> Option<Client> {
    let peer = client.transport.tcp.peer_addr();
    let peer = peer.map_or("a client".into(), |peer| peer.to_string());
    shake_hands(identity, client, time)
        .inspect_err(|why| log::debug!("front door: no TLS with {peer}: {why}"))
        .ok()
}

fn shake_hands(
    identity: &TlsIdentity,
    mut client: Client,
    time: Duration,
) -> Result<Client, String> {
    let deadline = Instant::now().checked_add(time);
    let tcp = &client.transport.tcp;
    let mut first = [0u8; 1];
    timeout_until(deadline)
        .and_then(|timeout| tcp.set_read_timeout(timeout))
        .and_then(|()| tcp.peek(&mut first))
        .map_err(|err| err.to_string())?;
    if first[0].is_ascii_alphabetic() {
        let refusal = Refusal::new(400, "this port speaks TLS: use an https:// address");
        relay::refuse(client, &refusal.answer(), relay::QUICK_LINGER);
        return Err("it spoke plain HTTP".into());
    } else if first[0] != HANDSHAKE_RECORD {
        return Err("no TLS handshake came".into());
    }
    let mut connection =
        ServerConnection::new(Arc::clone(&identity.0)).map_err(|err| err.to_string())?;
    client.transport.deadline = deadline;
    client.transport.records = Some((time, Records::default()));
    while connection.is_handshaking() {
        match connection.complete_io(&mut client.transport) {
            Ok((0, 0)) => return Err("the client left".into()),
            Ok(_) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    client.tls = Some(Box::new(connection));
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

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
