//! What one task asks the executor to do: the payload of `TaskInfo.data`.
//!
//! A `TaskInfo` tells Mesos *how* to run a task: its resources, its
//! executor, its id. It has no field for *what* the task should work on,
//! because Mesos cannot know what frameworks do. Instead it carries
//! `TaskInfo.data`, a field of opaque bytes: the master and the agent pass
//! them, untouched and unread, from the scheduler to the executor in the
//! executor's `LAUNCH` event. The format of those bytes is a contract between
//! our scheduler and our executor only, and this file is that contract.
//!
//! The payload is the [`TaskData`] message from `src/task_data.proto`,
//! written as JSON (with the same printer we use for Mesos's JSON API, see
//! [`crate::json`]):
//!
//! ```text
//! {"version":1,"image_url":"http://10.0.0.5:43125/files/001-gradient.png",
//!  "upload_url":"http://10.0.0.5:43125/upload/001-gradient-inverted","upload_token":"9f3c…"}
//! ```
//!
//! The upload URL names the result without an extension: only the executor
//! knows, once it has downloaded the image, whether it is a PNG or a JPEG,
//! and it adds `.png` or `.jpg` (see `src/executor/work.rs`).
//!
//! - **JSON** rather than protobuf bytes, so that the payload can be read in
//!   the master's web UI, in `mesos-execute` output and in our own logs, and
//!   a person can write one by hand when testing an executor.
//! - **A version number**, because the scheduler and the executor are
//!   deployed separately: the agent fetches whatever executor binary the
//!   framework serves, and a long-running framework may launch an older or
//!   newer one. An executor that meets a version it does not understand must
//!   fail the task with a clear message instead of guessing.
//!
//! The tasks of workshop step 2 do no work: they sleep for
//! [`TaskData::noop_millis`]. Step 3 tasks fetch an image, invert it and
//! upload the result, after waiting their `noop_millis` if the scheduler
//! was given `--task-millis` (a wait to watch them by). Empty `data` is
//! also a no-op task, because the Go tutorial's step 2 sent no data at all.
//!
//! # Example
//!
//! The scheduler's side ([`image()`], [`encode`]) and the executor's
//! ([`decode`]) of one step 3 task, and the bytes that travel between them
//! through the master and the agent:
//!
//! ```
//! use mesos_tutorial::task_data::{self, TaskDataError};
//!
//! // The scheduler, for the first demo image, served by its file server.
//! let data = task_data::image(
//!     "http://127.0.0.1:43125/files/001-gradient.png",
//!     "http://127.0.0.1:43125/upload/001-gradient-inverted",
//!     "9f3c2a",
//! );
//! let bytes = task_data::encode(&data); // goes into TaskInfo.data
//! assert_eq!(
//!     String::from_utf8(bytes.clone()).unwrap(),
//!     r#"{"version":1,"image_url":"http://127.0.0.1:43125/files/001-gradient.png","upload_url":"http://127.0.0.1:43125/upload/001-gradient-inverted","upload_token":"9f3c2a"}"#
//! );
//!
//! // The executor, from the LAUNCH event the agent sends it.
//! let received = task_data::decode(&bytes)?;
//! assert!(task_data::is_image(&received));
//! assert_eq!(received.image_url, "http://127.0.0.1:43125/files/001-gradient.png");
//!
//! // A step 2 task, and a payload this executor must refuse.
//! assert_eq!(task_data::encode(&task_data::noop(500)), br#"{"version":1,"noop_millis":500}"#);
//! assert_eq!(
//!     task_data::decode(br#"{"version":2}"#),
//!     Err(TaskDataError::UnsupportedVersion(2))
//! );
//! # Ok::<(), TaskDataError>(())
//! ```

use crate::proto::task_data::TaskData;
use std::fmt;

/// The payload format this code writes and understands.
pub const VERSION: u32 = 1;

/// The largest payload [`decode`] accepts. A real one is a few hundred bytes;
/// the bound keeps a broken scheduler from making the executor parse
/// megabytes.
pub const MAX_ENCODED_BYTES: usize = 64 * 1024;

/// Why a `TaskInfo.data` payload could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDataError {
    /// The payload is larger than [`MAX_ENCODED_BYTES`].
    TooLarge(usize),
    /// The payload is not UTF-8 text, so it is not our JSON.
    NotUtf8,
    /// The payload is text but not the JSON of a `TaskData` message.
    BadJson(String),
    /// The payload has a version this executor does not understand.
    UnsupportedVersion(u32),
    /// An image task whose image URL is missing or not `http(s)://`.
    BadImageUrl(String),
    /// An image task without an upload URL.
    MissingUploadUrl,
}

impl fmt::Display for TaskDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDataError::TooLarge(len) => write!(
                f,
                "TaskInfo.data is {len} bytes, more than the {MAX_ENCODED_BYTES} bytes a task \
                 description may have; check what the scheduler puts in it"
            ),
            TaskDataError::NotUtf8 => write!(
                f,
                "TaskInfo.data is not UTF-8 text, so it is not this tutorial's JSON task \
                 description; was the task launched by another framework's scheduler?"
            ),
            TaskDataError::BadJson(reason) => write!(
                f,
                "TaskInfo.data is not a valid JSON task description ({reason}); \
                 expected something like {{\"version\":1,\"noop_millis\":500}}"
            ),
            TaskDataError::UnsupportedVersion(version) => write!(
                f,
                "TaskInfo.data has version {version}, but this executor understands only \
                 version {VERSION}; run a scheduler and an executor built from the same code"
            ),
            TaskDataError::BadImageUrl(url) => write!(
                f,
                "the image URL {url:?} in TaskInfo.data is not an http:// or https:// URL; \
                 give the scheduler image URLs the agent can download"
            ),
            TaskDataError::MissingUploadUrl => write!(
                f,
                "TaskInfo.data describes an image task but has no upload_url, so the \
                 result could not be delivered; this is a bug in the scheduler"
            ),
        }
    }
}

impl std::error::Error for TaskDataError {}

/// A step 2 task: do nothing for `millis` milliseconds, then finish.
pub fn noop(millis: u32) -> TaskData {
    let mut data = TaskData::new();
    data.version = VERSION;
    data.noop_millis = millis;
    data
}

/// A step 3 task: download `image_url`, invert it, and POST the result to
/// `upload_url` with the header `X-Upload-Token: <upload_token>`.
pub fn image(image_url: &str, upload_url: &str, upload_token: &str) -> TaskData {
    let mut data = TaskData::new();
    data.version = VERSION;
    data.image_url = image_url.to_owned();
    data.upload_url = upload_url.to_owned();
    data.upload_token = upload_token.to_owned();
    data
}

/// Whether the task inverts an image (step 3) rather than doing nothing.
pub fn is_image(data: &TaskData) -> bool {
    !data.image_url.is_empty() || !data.upload_url.is_empty()
}

/// The bytes to put in `TaskInfo.data`.
pub fn encode(data: &TaskData) -> Vec<u8> {
    crate::json::print(data).into_bytes()
}

/// Reads `TaskInfo.data` as the executor receives it, and checks that it
/// describes a task this executor can run.
pub fn decode(bytes: &[u8]) -> Result<TaskData, TaskDataError> {
    if bytes.is_empty() {
        return Ok(noop(0));
    }
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(TaskDataError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| TaskDataError::NotUtf8)?;
    let data: TaskData = crate::json::parse(text).map_err(TaskDataError::BadJson)?;
    // Version 0 is what a payload without a version parses to: it was not
    // written by this code either.
    if data.version != VERSION {
        return Err(TaskDataError::UnsupportedVersion(data.version));
    }
    if is_image(&data) {
        if !is_http_url(&data.image_url) {
            return Err(TaskDataError::BadImageUrl(data.image_url));
        }
        if data.upload_url.is_empty() {
            return Err(TaskDataError::MissingUploadUrl);
        }
    }
    Ok(data)
}

fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    ["http://", "https://"]
        .iter()
        .any(|scheme| lower.len() > scheme.len() && lower.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_task_is_readable_json_on_the_wire() {
        let data = image(
            "http://10.0.0.5:43125/files/gradient.png",
            "http://10.0.0.5:43125/upload/gradient.png",
            "c0ffee",
        );
        let bytes = encode(&data);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"version":1,"image_url":"http://10.0.0.5:43125/files/gradient.png","upload_url":"http://10.0.0.5:43125/upload/gradient.png","upload_token":"c0ffee"}"#
        );
        assert_eq!(decode(&bytes).unwrap(), data);
        assert!(is_image(&data));
    }

    #[test]
    fn a_noop_task_round_trips_and_is_not_an_image_task() {
        let data = noop(250);
        assert_eq!(encode(&data), br#"{"version":1,"noop_millis":250}"#);
        let back = decode(&encode(&data)).unwrap();
        assert_eq!(back.noop_millis, 250);
        assert!(!is_image(&back));
    }

    #[test]
    fn empty_data_is_a_noop_task_of_zero_millis() {
        let data = decode(b"").unwrap();
        assert_eq!(data.version, VERSION);
        assert_eq!(data.noop_millis, 0);
        assert!(!is_image(&data));
    }

    #[test]
    fn unknown_fields_from_a_newer_scheduler_are_ignored() {
        let data = decode(br#"{"version":1,"noop_millis":5,"priority":"high"}"#).unwrap();
        assert_eq!(data.noop_millis, 5);
    }

    #[test]
    fn payloads_we_cannot_run_are_typed_errors() {
        let cases: [(&[u8], TaskDataError); 7] = [
            (&[0xff, 0xfe, 0x00], TaskDataError::NotUtf8),
            (br#"{"version":2}"#, TaskDataError::UnsupportedVersion(2)),
            (
                br#"{"noop_millis":5}"#,
                TaskDataError::UnsupportedVersion(0),
            ),
            (
                br#"{"version":1,"image_url":"file:///etc/passwd","upload_url":"http://h/u"}"#,
                TaskDataError::BadImageUrl("file:///etc/passwd".into()),
            ),
            (
                br#"{"version":1,"image_url":"http://","upload_url":"http://h/u"}"#,
                TaskDataError::BadImageUrl("http://".into()),
            ),
            (
                br#"{"version":1,"upload_url":"http://h/u"}"#,
                TaskDataError::BadImageUrl(String::new()),
            ),
            (
                br#"{"version":1,"image_url":"HTTPS://h/a.png"}"#,
                TaskDataError::MissingUploadUrl,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                decode(input),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn malformed_json_says_what_was_expected() {
        for input in [&b"{"[..], b"[1,2]", b"not json", b"{\"version\":\"one\"}"] {
            let err = decode(input).unwrap_err();
            assert!(matches!(err, TaskDataError::BadJson(_)), "{err:?}");
            assert!(err.to_string().contains("\"version\":1"), "{err}");
        }
    }

    #[test]
    fn oversized_and_deeply_nested_payloads_are_refused_without_parsing() {
        let big = vec![b' '; MAX_ENCODED_BYTES + 1];
        assert_eq!(
            decode(&big),
            Err(TaskDataError::TooLarge(MAX_ENCODED_BYTES + 1))
        );
        // The limit itself is allowed.
        let payload = br#"{"version":1,"noop_millis":5}"#;
        let mut at_limit = vec![b' '; MAX_ENCODED_BYTES - payload.len()];
        at_limit.extend_from_slice(payload);
        assert_eq!(decode(&at_limit), Ok(noop(5)));
        let mut deep = String::from(r#"{"version":1,"x":"#);
        deep.push_str(&"[".repeat(30_000));
        deep.push_str(&"]".repeat(30_000));
        deep.push('}');
        assert!(matches!(
            decode(deep.as_bytes()),
            Err(TaskDataError::BadJson(_))
        ));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let data =
            decode(br#"{"version":1,"noop_millis":1,"note":"[[[[[[[[[[[[[[[[[[[[\"]"}"#).unwrap();
        assert_eq!(data.noop_millis, 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A tiny deterministic generator walks through many odd inputs.
        const ALPHABET: &[u8] = b"{}[]\":,0123456789abcdefghijklmnopqrstuvwxyz\\ \xff";
        let mut state = 0x2545_f491_u32;
        for len in 0..400 {
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    ALPHABET[state as usize % ALPHABET.len()]
                })
                .collect();
            let _ = decode(&input);
        }
    }
}
