//! Receiving results: `POST /upload/<name>` from the executors.
//!
//! When an executor has inverted an image it POSTs the result here, with
//! the token the scheduler put in the task's `TaskInfo.data` as the header
//! `X-Upload-Token`. `receive` tells the story of one upload: it is checked
//! (`check_upload`, which lists the checks and why each is made), stored,
//! and recorded for the results page.
//!
//! The body is streamed into a hidden temporary file in the output
//! directory and renamed to `<name>` only once complete: a rename within one
//! directory is atomic, so a reader sees the old file or the whole new one,
//! never a partial one. A retried task uploading the same name again simply
//! replaces the file.

use super::requests::text;
use super::{lock, ServerError, Shared};
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
    let upload = match check_upload(request, name, shared) {
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
            too_large(limit)
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

/// An upload that passed [`check_upload`]: what to store, and where.
struct Upload {
    /// A plain file name that a task of this run produces.
    name: String,
    /// The output directory.
    dir: PathBuf,
    /// The body's `Content-Length`; `None` for a chunked body.
    declared: Option<usize>,
}

/// Checks an upload before any of its body is read, and says where it goes.
/// Anyone who can reach the port could POST: the checks keep a buggy or
/// hostile client from filling the disk. A refusal is the response to send.
///
/// 1. The server must accept uploads at all (`404`): one that was given no
///    output directory only serves files.
/// 2. The token must match (`403`): it is what makes an upload ours. It
///    comes before the name checks, so a client without it learns nothing
///    about the names.
/// 3. The name must be a plain file name (`400`), so that it names a file
///    in the output directory and nowhere else.
/// 4. The name must be one a task of this run produces, when the framework
///    said which (`404`), so that even a client with the token cannot
///    store files of its choosing.
/// 5. The body may not exceed the size limit (`413`). `Content-Length` is
///    checked here, before reading; a chunked body announces no length, so
///    `store` checks again while reading.
fn check_upload(
    request: &Request,
    name: Option<String>,
    shared: &Shared,
) -> Result<Upload, ResponseBox> {
    let Some(target) = lock(&shared.uploads).clone() else {
        return Err(text(404, "this file server does not accept uploads"));
    };
    let token = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("X-Upload-Token"))
        .map(|header| header.value.as_str());
    if !token.is_some_and(|token| same_token(token, &target.token)) {
        warn!("refused an upload without the right X-Upload-Token header");
        return Err(text(
            403,
            "missing or wrong X-Upload-Token header: send the upload_token from TaskInfo.data",
        ));
    }
    let Some(name) = name.filter(|name| super::is_safe_name(name)) else {
        return Err(text(
            400,
            "bad upload name: use 1 to 128 characters from A-Z a-z 0-9 . _ - \
             and do not start with a dot",
        ));
    };
    if !is_expected(&name, lock(&shared.expected_uploads).as_ref()) {
        warn!("refused an upload of {name}: no task of this run produces that name");
        return Err(text(404, &format!("no task of this run uploads {name}")));
    }
    let limit = shared.max_upload_bytes;
    let declared = request.body_length();
    if declared.is_some_and(|length| length as u64 > limit) {
        warn!("refused upload {name}: Content-Length is over {limit} bytes");
        return Err(too_large(limit));
    }
    Ok(Upload {
        name,
        dir: target.dir,
        declared,
    })
}

/// Whether `name` is one the framework waits for: without expectations
/// any safe name is; with them, an expected stem plus an image extension.
fn is_expected(name: &str, expected: Option<&std::collections::HashSet<String>>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    name.rsplit_once('.').is_some_and(|(stem, extension)| {
        expected.contains(stem) && matches!(extension, "png" | "jpg" | "jpeg")
    })
}

fn too_large(limit: u64) -> ResponseBox {
    text(
        413,
        &format!("upload too large: at most {limit} bytes are accepted"),
    )
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

/// Compares tokens in time that does not depend on where they differ, so
/// response times do not reveal the token a byte at a time. An empty
/// expected token accepts nothing.
fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly_and_be_non_empty() {
        assert!(same_token("abc123", "abc123"));
        assert!(!same_token("abc124", "abc123"));
        assert!(!same_token("abc12", "abc123"));
        assert!(!same_token("abc1234", "abc123"));
        assert!(!same_token("", ""));
        // Two differences that would cancel out if they were not all kept.
        assert!(!same_token("ba", "ab"));
    }

    #[test]
    fn expected_names_narrow_what_may_be_uploaded() {
        let mut expected = std::collections::HashSet::new();
        assert!(is_expected("anything.png", None));
        assert!(!is_expected("anything.png", Some(&expected)));
        expected.insert("001-cat-inverted".to_string());
        let expected = Some(&expected);
        assert!(is_expected("001-cat-inverted.png", expected));
        assert!(is_expected("001-cat-inverted.jpg", expected));
        assert!(!is_expected("001-cat-inverted.exe", expected));
        assert!(!is_expected("001-cat-inverted.evil.png", expected));
        assert!(!is_expected("002-dog-inverted.png", expected));
        assert!(!is_expected("001-cat-inverted", expected));
    }

    /// A body that ends with an error, like a connection reset.
    /// Fails its first read with `Interrupted`, then ends.
    struct Interrupted(bool);

    impl Read for Interrupted {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.0) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            Ok(0)
        }
    }

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

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failed_bodies_leave_no_file_behind() {
        let dir = std::env::temp_dir().join(format!("upload-store-{}", random_token()));
        fs::create_dir_all(&dir).unwrap();

        let broken = store(&mut BrokenBody(100), None, &dir, "a.png", 1000);
        assert!(matches!(broken, Err(StoreError::Client(_))));
        let short = store(&mut &[1u8; 10][..], Some(20), &dir, "b.png", 1000);
        assert!(matches!(short, Err(StoreError::Client(reason)) if reason.contains("10 of 20")));
        let large = store(&mut &[1u8; 1001][..], None, &dir, "c.png", 1000);
        assert!(matches!(large, Err(StoreError::TooLarge)));
        assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));

        let (path, bytes) = store(&mut &[5u8; 1000][..], Some(1000), &dir, "d.png", 1000)
            .unwrap_or_else(|_| panic!("a body at the limit is stored"));
        assert_eq!((bytes, fs::read(&path).unwrap()), (1000, vec![5u8; 1000]));
        assert_eq!(entries(&dir), ["d.png"]);
        // A read interrupted by a signal (`EINTR`) is tried again.
        let mut interrupted = io::Read::chain(Interrupted(true), &[6u8; 10][..]);
        let (_, bytes) = store(&mut interrupted, Some(10), &dir, "e.png", 1000)
            .unwrap_or_else(|_| panic!("an interrupted read is retried"));
        assert_eq!(bytes, 10);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_output_dir_is_refused_up_front() {
        let file = std::env::temp_dir().join(format!("upload-not-a-dir-{}", random_token()));
        fs::write(&file, b"x").unwrap();
        let err = prepare_output_dir(&file.join("sub")).unwrap_err();
        fs::remove_file(&file).unwrap();
        assert!(matches!(err, ServerError::OutputDir { .. }), "{err:?}");
        assert!(err.to_string().contains("--output-dir"), "{err}");
    }
}
