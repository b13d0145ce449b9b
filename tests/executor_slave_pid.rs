//! The executor finds the agent as Mesos's own executor library does: from
//! the agent's libprocess PID in `MESOS_SLAVE_PID`, posting to
//! `/slave(1)/api/v1/executor` (see `src/executor/agent_address.rs`), and
//! the embedded agent serves that path as real agents do.
//!
//! The first test runs the real `executor` binary with no
//! `MESOS_AGENT_ENDPOINT` at all, against a small HTTP server that answers
//! only on the PID's path.

mod common;

use common::http::agent_address;
use common::temp_dir::TempDir;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::executor::{call, Call};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");
/// A guard against hanging, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(30);

/// One request the stand-in agent received.
struct Received {
    path: String,
    call: Option<Call>,
}

/// Starts the executor binary with only these `MESOS_*` variables.
fn start_executor(sandbox: &TempDir, vars: &[(&str, &str)]) -> Child {
    let mut command = Command::new(EXECUTOR);
    command
        .env_clear()
        .env("MESOS_FRAMEWORK_ID", "framework-1")
        .env("MESOS_EXECUTOR_ID", "executor-1")
        .env("MESOS_DIRECTORY", sandbox.path())
        .env("RUST_LOG", "info")
        .current_dir(sandbox.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in vars {
        command.env(name, value);
    }
    command.spawn().expect("start the executor")
}

/// The executor's exit and output; killed if it has not exited in time.
fn wait_for_exit(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().expect("wait for the executor").is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect the executor");
            panic!(
                "the executor did not exit within {PATIENCE:?}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect the executor")
}

#[test]
fn the_executor_subscribes_at_the_path_of_mesos_slave_pid() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("listen on loopback");
    let port = server.server_addr().to_ip().expect("an IP address").port();
    let (sender, received) = mpsc::channel();
    let listener = thread::spawn(move || {
        while let Ok(Some(mut request)) = server.recv_timeout(PATIENCE) {
            let path = request.url().to_string();
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            if path == "/slave(1)/api/v1/executor" {
                let call = ContentType::Protobuf.decode(&body, "executor Call").ok();
                let _ = sender.send(Received { path, call });
                // A refusal, so that the executor (whose framework does not
                // checkpoint) exits with an error naming where it called.
                let answer =
                    tiny_http::Response::from_string("stand-in agent").with_status_code(503);
                let _ = request.respond(answer);
                return;
            }
            let _ = sender.send(Received { path, call: None });
            let _ = request.respond(tiny_http::Response::empty(404));
        }
    });

    let sandbox = TempDir::new("executor-slave-pid");
    let pid = format!("slave(1)@127.0.0.1:{port}");
    let child = start_executor(&sandbox, &[("MESOS_SLAVE_PID", &pid)]);
    // The executor exits once refused, and the stand-in records the call
    // before it answers: by the exit the call is in the channel, and an
    // executor that exits without calling fails the test at once.
    let output = wait_for_exit(child);
    let log = String::from_utf8_lossy(&output.stderr);

    let first = received
        .try_recv()
        .unwrap_or_else(|_| panic!("the executor exited without a call:\n{log}"));
    assert_eq!(first.path, "/slave(1)/api/v1/executor");
    let call = first.call.expect("a protobuf executor Call");
    assert_eq!(call.type_(), call::Type::SUBSCRIBE);
    assert_eq!(call.executor_id.value(), "executor-1");
    assert_eq!(call.framework_id.value(), "framework-1");

    assert!(!output.status.success(), "{log}");
    let url = format!("http://127.0.0.1:{port}/slave(1)/api/v1/executor");
    assert!(
        log.contains(&format!("{url} (from MESOS_SLAVE_PID)")),
        "{log}"
    );
    listener.join().expect("the stand-in agent");
    // Nothing went to another path.
    assert!(received.try_iter().next().is_none());
}

#[test]
fn a_bad_mesos_slave_pid_stops_the_executor_naming_the_variable() {
    let sandbox = TempDir::new("executor-bad-slave-pid");
    let child = start_executor(
        &sandbox,
        &[
            ("MESOS_SLAVE_PID", "slave(1)@127.0.0.1"),
            // Set, but a PID that is set wins, broken or not.
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:9"),
        ],
    );
    let output = wait_for_exit(child);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("MESOS_SLAVE_PID=\"slave(1)@127.0.0.1\""),
        "{log}"
    );
    assert!(
        log.contains("no ':' between the host and the port"),
        "{log}"
    );
}

#[test]
fn the_embedded_agent_serves_the_executor_api_under_slave_1_too() {
    let cluster = Cluster::start(ClusterConfig::default()).expect("start the embedded cluster");
    let agent = agent_address(cluster.master_address());
    let mut subscribe = Call::new();
    subscribe.set_type(call::Type::SUBSCRIBE);
    subscribe
        .framework_id
        .mut_or_insert_default()
        .set_value("no-such-framework".into());
    subscribe
        .executor_id
        .mut_or_insert_default()
        .set_value("executor-1".into());
    let body = ContentType::Protobuf.encode(&subscribe);
    let status = |path: &str| {
        let answer = ureq::post(&format!("http://{agent}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .header("Content-Type", ContentType::Protobuf.mime())
            .header("Accept", ContentType::Protobuf.mime())
            .send(&body[..])
            .expect("the agent answers");
        let status = answer.status().as_u16();
        let text = answer.into_body().read_to_string().unwrap_or_default();
        (status, text)
    };
    let short = status("/api/v1/executor");
    let long = status("/slave(1)/api/v1/executor");
    assert_ne!(short.0, 404, "{}", short.1);
    assert_eq!(long, short, "both paths are the same endpoint");
    assert_eq!(status("/slave(2)/api/v1/executor").0, 404);
}
