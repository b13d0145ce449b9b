//! Receiving results: `POST /upload/<name>` from the executors.
//!
//! When an executor has inverted an image it POSTs the result here, with
//! the token the scheduler put in the task's `TaskInfo.data` as the header
//! `X-Upload-Token`. `receive` tells the story of one upload: it is checked
//! (`upload_checks.rs`, which lists the checks and why each is made),
//! stored, and recorded for the results page.
//!
//! The body is streamed into a hidden temporary file in the output
//! directory and renamed to `<name>` only once complete: a rename within one
//! directory is atomic, so a reader sees the old file or the whole new one,
//! never a partial one. A retried task uploading the same name again simply
//! replaces the file.

use super::requests::text;
use super::{lock, upload_checks, ServerError, Shared};
use crate::random::token as random_token;
use log::{info, warn};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tiny_http::{Request, ResponseBox};

/// The results stored so far, by name: where each one is. A batch of
/// thousands of images looks one up per finished task.
pub(super) type Uploads = std::collections::HashMap<String, PathBuf>;

/// Where uploads go and the token they must carry.
#[derive(Clone, Debug)]
pub(super) struct UploadTarget {
    pub(super) dir: PathBuf,
    pub(super) token: String,
}

/// Creates `dir` if needed and proves it is writable by writing a file into
/// it, so a wrong `--output-dir` fails at start-up and not after the tasks
/// have done their work.
pub(super) fn prepare_output_dir(dir: &Path) -> Result<(), ServerError> {
    let output_dir_error = |source: io::Error| ServerError::OutputDir {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(output_dir_error)?;
    let probe = dir.join(format!(".write-test-{}", random_token()));
    fs::write(&probe, b"test").map_err(output_dir_error)?;
    fs::remove_file(&probe).map_err(output_dir_error)
}

/// Handles one `POST /upload/<name>`: the upload is checked, stored, and
/// recorded so that the results page links it. `name` is the decoded name
/// from the path, `None` if it did not decode.
pub(super) fn receive(request: &mut Request, name: Option<String>, shared: &Shared) -> ResponseBox {
    // What an upload must pass before any of its body is read, and why:
    // `upload_checks.rs`.
    let upload = match upload_checks::check_upload(request, name, shared) {
        Ok(upload) => upload,
        Err(refusal) => return refusal,
    };
    let name = upload.name;
    let limit = shared.max_upload_bytes;
    let body = request.as_reader();
    match store(body, upload.declared, &upload.dir, &name, limit) {
        Ok((path, bytes)) => {
            info!("stored upload {name} ({bytes} bytes) in {}", path.display());
            lock(&shared.uploaded).insert(name.clone(), path);
            text(201, &format!("stored {name} ({bytes} bytes)"))
        }
        Err(StoreError::TooLarge) => {
            warn!("refused upload {name}: body over {limit} bytes");
            upload_checks::too_large(limit)
        }
        Err(StoreError::Client(reason)) => {
            warn!("upload {name} was interrupted: {reason}");
            text(400, &format!("upload incomplete: {reason}"))
        }
        Err(StoreError::Disk(err)) => {
            warn!("could not store upload {name}: {err}");
            text(500, &format!("could not store {name}: {err}"))
        }
    }
}

/// Why a body was not stored.
enum StoreError {
    /// The body is over the size limit.
    TooLarge,
    /// The client sent less than it announced, or broke the connection.
    Client(String),
    /// Writing the file failed.
    Disk(io::Error),
}

/// Streams `body` into `<dir>/<name>` through a temporary file. Returns the
/// final path and the number of bytes. On error nothing is left behind.
fn store(
    body: &mut dyn Read,
    declared: Option<usize>,
    dir: &Path,
    name: &str,
    limit: u64,
) -> Result<(PathBuf, u64), StoreError> {
    // The leading dot keeps a partial file out of the names a client can
    // ask for (safe names never start with a dot).
    let temporary = dir.join(format!(".{name}.part-{}", random_token()));
    let written = write_body(body, &temporary, limit).and_then(|bytes| match declared {
        Some(length) if length as u64 != bytes => Err(StoreError::Client(format!(
            "the connection ended after {bytes} of {length} bytes"
        ))),
        _ => Ok(bytes),
    });
    let path = dir.join(name);
    let result = written.and_then(|bytes| {
        fs::rename(&temporary, &path)
            .map(|()| (path, bytes))
            .map_err(StoreError::Disk)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Copies the body into a new file at `path`, counting as it goes: a body
/// longer than `limit` bytes stops there (a `Content-Length` may lie or be
/// absent), and the data is on disk before the caller renames the file.
fn write_body(body: &mut dyn Read, path: &Path, limit: u64) -> Result<u64, StoreError> {
    let mut file = File::create_new(path).map_err(StoreError::Disk)?;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let read = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(StoreError::Client(err.to_string())),
        };
        total += read as u64;
        if total > limit {
            return Err(StoreError::TooLarge);
        }
        file.write_all(&buffer[..read]).map_err(StoreError::Disk)?;
    }
    // The rename must not make visible a file whose data is still in flight.
    file.sync_all().map_err(StoreError::Disk)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    /// A body whose first read is interrupted by a signal (`EINTR`), and
    /// that then ends.
    struct Interrupted(bool);

    impl Read for Interrupted {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.0) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            Ok(0)
        }
    }

    /// A body that ends with an error, like a connection reset.
    struct BrokenBody(usize);

    impl Read for BrokenBody {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn failed_bodies_leave_no_file_behind() {
        let folder = TestDir::new("upload-store");
        let dir = folder.0.clone();

        let broken = store(&mut BrokenBody(100), None, &dir, "a.png", 1000);
        assert!(matches!(broken, Err(StoreError::Client(_))));
        let short = store(&mut &[1u8; 10][..], Some(20), &dir, "b.png", 1000);
        assert!(matches!(short, Err(StoreError::Client(reason)) if reason.contains("10 of 20")));
        let large = store(&mut &[1u8; 1001][..], None, &dir, "c.png", 1000);
        assert!(matches!(large, Err(StoreError::TooLarge)));
        assert!(folder.entries().is_empty(), "{:?}", folder.entries());

        let (path, bytes) = store(&mut &[5u8; 1000][..], Some(1000), &dir, "d.png", 1000)
            .unwrap_or_else(|_| panic!("a body at the limit is stored"));
        assert_eq!((bytes, fs::read(&path).unwrap()), (1000, vec![5u8; 1000]));
        assert_eq!(folder.entries(), ["d.png"]);
        // A read interrupted by a signal (`EINTR`) is tried again.
        let mut interrupted = io::Read::chain(Interrupted(true), &[6u8; 10][..]);
        let (_, bytes) = store(&mut interrupted, Some(10), &dir, "e.png", 1000)
            .unwrap_or_else(|_| panic!("an interrupted read is retried"));
        assert_eq!(bytes, 10);
    }

    #[test]
    fn an_unwritable_output_dir_is_refused_up_front() {
        let folder = TestDir::new("upload-not-a-dir");
        let file = folder.0.join("a-file");
        fs::write(&file, b"x").unwrap();
        let err = prepare_output_dir(&file.join("sub")).unwrap_err();
        assert!(matches!(err, ServerError::OutputDir { .. }), "{err:?}");
        assert!(err.to_string().contains("--output-dir"), "{err}");
    }
}
