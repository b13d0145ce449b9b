//! Test certificates: a private certificate authority and a certificate
//! for `127.0.0.1` that it signed.
//!
//! TLS tests need a server certificate that a client can be told to trust
//! and that no system trusts by itself. These are checked in under
//! `tests/data/tls/` (its README says how they were made), so the tests
//! need no `openssl` tool.

use std::path::Path;

/// The authority, in PEM.
pub const AUTHORITY: &[u8] = include_bytes!("../data/tls/ca.pem");
/// The server certificate for 127.0.0.1, in PEM.
pub const CERTIFICATE: &[u8] = include_bytes!("../data/tls/cert.pem");
/// The server certificate's private key, in PEM.
pub const PRIVATE_KEY: &[u8] = include_bytes!("../data/tls/key.pem");

/// Writes, in `dir`, the authority (`ca.pem`) and the server certificate
/// (`cert.pem`, with its private key `key.pem`), for programs that take
/// file names.
pub fn write_certificates(dir: &Path) {
    for (name, pem) in [
        ("ca.pem", AUTHORITY),
        ("cert.pem", CERTIFICATE),
        ("key.pem", PRIVATE_KEY),
    ] {
        std::fs::write(dir.join(name), pem).expect("write a test certificate");
    }
}
