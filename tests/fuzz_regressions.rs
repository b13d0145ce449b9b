//! What the fuzz targets in `fuzz/` found, kept as tests that run under a
//! plain `cargo test` on stable.
//!
//! Each test shows the input as the fuzzer found it (or a minimal form of
//! it), names the target that found it, and asserts what must happen
//! instead. A finding that is not fixed yet is an `#[ignore]`d test whose
//! reason says what is wrong; run those with
//! `cargo test --test fuzz_regressions -- --ignored`. `fuzz/README.md` lists
//! the runs.

mod common;

use common::http::agent_address;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::{executor, scheduler};
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data::{self, TaskDataError};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

// ---------------------------------------------------------------------------
// JSON: escapes JSON does not have
// ---------------------------------------------------------------------------

/// Decodes `bytes` as JSON into every message the framework reads or
/// writes, and returns the errors.
fn json_errors(bytes: &[u8]) -> Vec<String> {
    let json = ContentType::Json;
    [
        json.decode::<scheduler::Event>(bytes, "scheduler Event")
            .map(drop),
        json.decode::<scheduler::Call>(bytes, "scheduler Call")
            .map(drop),
        json.decode::<executor::Event>(bytes, "executor Event")
            .map(drop),
        json.decode::<executor::Call>(bytes, "executor Call")
            .map(drop),
    ]
    .into_iter()
    .map(|result| result.expect_err("not a message").to_string())
    .collect()
}

/// Found by the `task_data` target. protobuf-json-mapping's lexer reads a
/// backslash and a digit as a protobuf-text octal escape, takes `8` and `9`
/// for octal digits, and `\378` overflows the byte it computes: a panic in
/// every build with overflow checks, such as the debug build `cargo run`
/// makes of the executor, which decodes `TaskInfo.data` from the network.
/// `json::parse` now refuses escapes JSON does not have before parsing.
#[test]
fn an_octal_escape_with_an_8_is_refused_instead_of_overflowing() {
    // The input as found: a single-quoted string with `\3780` in it.
    let found = br##"{'ve\\\\\\\\\#t\ng ni\\\\\\\3780'uphoad/\\\""##;
    match task_data::decode(found) {
        Err(TaskDataError::BadJson(reason)) => {
            assert!(reason.contains("escape"), "{reason}")
        }
        other => panic!("expected BadJson, got {other:?}"),
    }
    // The same escape in an ordinary string, in every message decoded from
    // JSON, and the other escapes JSON does not have.
    for escape in [r"\378", r"\777", r"\0", r"\x41", r"\a", r"\v"] {
        let message = format!(r#"{{"type":"HEARTBEAT","x":"{escape}"}}"#);
        for error in json_errors(message.as_bytes()) {
            assert!(error.contains("escape"), "{escape}: {error}");
        }
    }
}

/// JSON's own escapes still decode: `\" \\ \/ \b \f \n \r \t \uXXXX`.
#[test]
fn the_escapes_json_has_still_decode() {
    let payload = br#"{"version":1,"noop_millis":7,"upload_token":"\"\\\/\b\f\n\r\t\u00e9"}"#;
    let data = task_data::decode(payload).expect("valid JSON escapes");
    assert_eq!(data.upload_token, "\"\\/\u{8}\u{c}\n\r\t\u{e9}");
    assert_eq!(data.noop_millis, 7);
}

// ---------------------------------------------------------------------------
// HTTP: requests of version HTTP/2.0 and HTTP/3.0
// ---------------------------------------------------------------------------

/// A guard against a hang, far above what an answer takes; not a timing
/// assertion.
const DEADLINE: Duration = Duration::from_secs(10);

/// Sends `request`, says it is complete (half-close), and reads until the
/// server closes the connection. `None` if it has not closed it by
/// [`DEADLINE`].
fn answer_and_close(address: SocketAddr, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream.write_all(request).expect("send the request");
    stream.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = Vec::new();
    loop {
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => return Some(String::from_utf8_lossy(&answer).into_owned()),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Found by the `file_server` target (its check that every connection of an
/// input is closed afterwards). tiny_http 0.12 parses the versions
/// `HTTP/2.0` and `HTTP/3.0`, then writes its `505` answer through the
/// connection's next response slot while the refused request still holds the
/// current one: the two wait for each other forever. Each such request
/// leaves a blocked thread and an open socket in the server, for good, so a
/// client can exhaust either; the embedded master and agent use tiny_http
/// too. Found as `GET  HTTP/2.0` followed by bytes; minimal: `GET / HTTP/2.0`.
/// Fixed by the front door (`src/front_door/`), which answers any version
/// but HTTP/1.0 and 1.1 with `505` itself, so tiny_http never sees one.
#[test]
fn a_request_of_http_2_or_3_is_answered_505_and_its_connection_closed() {
    let files = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("start a file server");
    let files: SocketAddr = files
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .expect("the base URL names host:port");
    let cluster = Cluster::start(ClusterConfig::default()).expect("start the embedded cluster");
    for address in [
        files,
        cluster.master_address(),
        agent_address(cluster.master_address()),
    ] {
        for version in ["HTTP/2.0", "HTTP/3.0"] {
            let request = format!("GET / {version}\r\nHost: 127.0.0.1\r\n\r\n");
            let answer = answer_and_close(address, request.as_bytes())
                .unwrap_or_else(|| panic!("{address} never closed a {version} request"));
            assert!(
                answer.starts_with("HTTP/1.1 505 "),
                "{address}, {version}: {answer}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Resources: a sum beyond the bound on one amount
// ---------------------------------------------------------------------------

/// Found by the `resources` target (its check that what parses prints as
/// text that parses back): each amount was checked against the largest
/// scalar, but not their sum, so `cpus:1e12;cpus:1e12` parsed into an amount
/// that printed as text the parser refuses, and that no task could ask for.
#[test]
fn amounts_named_twice_may_not_add_up_beyond_the_largest_scalar() {
    use mesos_tutorial::local::resources::Resources;
    let err = Resources::parse("cpus:1e12;cpus:1e12").expect_err("the sum is too large");
    assert!(err.to_string().contains("add up to"), "{err}");
    let fine = Resources::parse("cpus:1;cpus:2").expect("a small sum parses");
    let again = Resources::parse(&fine.to_string()).expect("what parses prints back");
    assert_eq!(again, fine);
}
