//! The master's TLS identity: its certificate chain and key
//! (`--tls-cert`, `--tls-key`), read from PEM into the rustls configuration
//! that the master's [front door](crate::front_door) ends TLS with.
//!
//! *Plumbing: a reader may skip this file.*

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::fmt;
use std::sync::Arc;

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

/// Reads a PEM certificate chain (the server's certificate first) and its
/// PEM private key.
pub(super) fn server_config(
    certificates: &[u8],
    private_key: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
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
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let error = server_config(b"not a certificate", b"").unwrap_err();
        assert_eq!(error, TlsError::NoCertificate);
        assert!(error.to_string().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn a_certificate_without_a_key_is_refused() {
        // A syntactically valid PEM block; its content is never checked
        // because the key is missing first.
        let certificate = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = server_config(certificate, b"no key here").unwrap_err();
        assert!(matches!(error, TlsError::NoPrivateKey(_)), "{error:?}");
    }
}
