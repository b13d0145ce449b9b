//! Test certificates, made with the `openssl` command-line tool.
//!
//! TLS tests need a server certificate that a client can be told to trust
//! and that no system trusts by itself: a private certificate authority
//! and a certificate for `127.0.0.1` it signed. Both last a day.

use std::path::Path;
use std::process::{Command, Stdio};

/// Makes, in `dir`, a private certificate authority (`ca.pem`) and a
/// server certificate for 127.0.0.1 signed by it (`cert.pem`, with its
/// private key `key.pem`).
pub fn make_certificates(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the certificate extensions");
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Workshop test CA",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "key.pem",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("the openssl command-line tool is needed to make test certificates");
        assert!(status.success(), "openssl {args:?} failed");
    }
}
