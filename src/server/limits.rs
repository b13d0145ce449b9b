//! The file server behind the front door: which body each path may carry.
//!
//! *Plumbing: a reader may skip this file.* A production file server keeps
//! its clients to limits (connections, header size, time for heads and
//! bodies); the [front door](crate::front_door) does that for ours.

use super::ServerError;
use crate::front_door::{DoorError, FrontDoor, Limits, Requests, WHOLE_BODY_BYTES};
use std::io;

/// Opens the front door on `bind`. Only uploads carry a body of up to
/// `max_upload_bytes`; other requests may have a small one, which is read
/// and dropped.
pub(super) fn open_door(
    bind: &str,
    limits: Limits,
    max_upload_bytes: u64,
) -> Result<(FrontDoor, Requests), ServerError> {
    let body_limit = move |path: &str| {
        if path.starts_with("/upload/") {
            max_upload_bytes
        } else {
            WHOLE_BODY_BYTES
        }
    };
    FrontDoor::open(bind, limits, body_limit, None).map_err(|err| match err {
        DoorError::Bind(source) => ServerError::Bind {
            address: bind.to_owned(),
            source,
        },
        other => ServerError::Io(io::Error::other(other.to_string())),
    })
}
