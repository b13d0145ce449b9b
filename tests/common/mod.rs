//! What the integration tests share.
//!
//! *Plumbing: a reader may skip this folder.*
//!
//! Cargo compiles each file in `tests/` as a crate of its own, so a helper
//! that two of them need lives here, and each pulls it in with
//! `mod common;`:
//!
//! - [`temp_dir`]: a directory for one test, removed, with any process
//!   still working in it, when the test ends;
//! - [`processes`]: which processes work in a directory, and what this
//!   process holds, read from `/proc`;
//! - [`programs`]: our binaries (`scheduler`, `mesos-local`) run as child
//!   processes, their output collected, their exit awaited;
//! - [`scheduler_api`]: a test that is its own scheduler subscribes and
//!   reads events through the library's `MasterConnection`;
//! - [`json`]: walking a JSON answer, as protobuf's `Value`;
//! - [`held_images`]: a file server that holds downloads back until the
//!   test releases them;
//! - [`http`]: raw HTTP/1.1 over any byte stream, for tests that send what
//!   no HTTP library would;
//! - [`fake_peer`]: a fake master or agent on 127.0.0.1 that records
//!   every call and lets the test write the event stream;
//! - [`devtools`]: a headless Chromium driven through its DevTools
//!   protocol, to click in a page;
//! - [`certificates`]: a test certificate authority and a certificate for
//!   `127.0.0.1`, checked in under `tests/data/tls/`.

// Each test crate uses only part of these helpers; the rest is not dead.
#![allow(dead_code)]

pub mod certificates;
pub mod devtools;
pub mod fake_peer;
pub mod held_images;
pub mod http;
pub mod json;
pub mod processes;
pub mod programs;
pub mod scheduler_api;
pub mod temp_dir;
