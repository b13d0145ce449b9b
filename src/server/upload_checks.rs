//! The checks an upload must pass before any of its body is read.
//!
//! *Hardening: a reader may skip this file.* Anyone who can reach the file
//! server's port could POST to `/upload/`; these checks keep a buggy or
//! hostile client from writing files of its choosing or filling the disk.
//! [`check_upload`] lists them, with the reason for each.

use super::requests::text;
use super::{lock, Shared};
use log::warn;
use std::collections::HashSet;
use std::path::PathBuf;
use tiny_http::{Request, ResponseBox};

/// An upload that passed [`check_upload`]: what to store, and where.
pub(super) struct Upload {
    /// A plain file name that a task of this run produces.
    pub(super) name: String,
    /// The output directory.
    pub(super) dir: PathBuf,
    /// The body's `Content-Length`; `None` for a chunked body.
    pub(super) declared: Option<usize>,
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
pub(super) fn check_upload(
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
fn is_expected(name: &str, expected: Option<&HashSet<String>>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    name.rsplit_once('.').is_some_and(|(stem, extension)| {
        expected.contains(stem) && matches!(extension, "png" | "jpg" | "jpeg")
    })
}

pub(super) fn too_large(limit: u64) -> ResponseBox {
    text(
        413,
        &format!("upload too large: at most {limit} bytes are accepted"),
    )
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
        let mut expected = HashSet::new();
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
}
