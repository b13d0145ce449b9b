//! What can go wrong when starting or using the file server, with messages
//! that name the flag to change.
//!
//! *Plumbing: a reader may skip this file.*

use super::MAX_NAME_LEN;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the file server could not do what was asked.
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be opened.
    Bind {
        /// The address asked for.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file name that is not a safe name (see [`is_safe_name`](super::is_safe_name)).
    BadName(String),
    /// The output directory cannot be created or written to.
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another I/O error.
    Io(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The scheduler prefixes these with "file server: ", so they
            // do not name the server again.
            ServerError::Bind { address, source } => {
                write!(f, "cannot listen on {address}: {source}; ")?;
                match source.kind() {
                    io::ErrorKind::AddrInUse => write!(
                        f,
                        "another program uses that port, choose another with --port \
                         (or 0 for any free port)"
                    ),
                    io::ErrorKind::AddrNotAvailable => write!(
                        f,
                        "that is not an address of this machine, change --address"
                    ),
                    _ => write!(f, "check --address and --port"),
                }
            }
            ServerError::BadName(name) => write!(
                f,
                "{name:?} cannot be served: a file name must be 1 to {MAX_NAME_LEN} characters \
                 from A-Z a-z 0-9 . _ - and must not start with a dot"
            ),
            ServerError::OutputDir { path, source } => write!(
                f,
                "cannot write results to {}: {source}; choose a writable directory with \
                 --output-dir",
                path.display()
            ),
            ServerError::Io(err) => write!(f, "I/O error: {err}"),
        }
    }
}

impl std::error::Error for ServerError {}
