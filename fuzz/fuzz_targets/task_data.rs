//! The executor's decoder of `TaskInfo.data`, on any bytes.
//!
//! Decoding must never panic; a payload that decodes must describe a task
//! the executor can run (version 1, and for an image task an http(s) image
//! URL and an upload URL), and must encode to a payload that decodes to the
//! same task.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_tutorial::task_data::{self, TaskDataError, MAX_ENCODED_BYTES, VERSION};

fuzz_target!(|bytes: &[u8]| {
    let data = match task_data::decode(bytes) {
        Ok(data) => data,
        Err(TaskDataError::TooLarge(len)) => {
            assert!(len > MAX_ENCODED_BYTES && len == bytes.len());
            return;
        }
        Err(err) => {
            // Every refusal says what to do; formatting it must not panic.
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    assert!(bytes.len() <= MAX_ENCODED_BYTES);
    assert_eq!(data.version, VERSION);
    if task_data::is_image(&data) {
        let scheme = data.image_url.to_ascii_lowercase();
        assert!(scheme.starts_with("http://") || scheme.starts_with("https://"));
        assert!(!data.upload_url.is_empty());
    }
    let encoded = task_data::encode(&data);
    assert_eq!(
        task_data::decode(&encoded),
        Ok(data),
        "a decoded payload round trips"
    );
});
