//! The limit of the task throughput benchmark: loopback HTTP round trips.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Every Mesos call is one HTTP POST answered with `202 Accepted`. The
//! fastest a call can be on this machine is one `ureq` agent posting to a
//! `tiny_http` server that does nothing but answer, on one kept-alive
//! connection. That is the [`Setup::BARE`] round trip.
//!
//! The framework's own calls add two costs, which the other setups measure
//! one at a time, so that a slow task rate can be traced to its cause:
//!
//! - the calls of `http_api::Endpoint` carry a `timeout_global`; with any
//!   timeout that covers name resolution, ureq 3 resolves the host on a new
//!   thread at every request (even an IP address, even on a pooled
//!   connection), so that the lookup can be abandoned;
//! - the embedded cluster (`src/local/mod.rs`, `accept_requests`) answers
//!   every request on a new thread.

use crate::report::Cpu;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::scheduler::{call, Call};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the round trips are made.
#[derive(Clone, Copy)]
pub struct Setup {
    /// The client has a 30 s `timeout_global`, as `Endpoint`'s calls do.
    pub client_timeout: bool,
    /// The server answers each request on a new thread, as the embedded
    /// cluster does.
    pub thread_per_request: bool,
}

impl Setup {
    /// Nothing but the round trip: the limit.
    pub const BARE: Setup = Setup {
        client_timeout: false,
        thread_per_request: false,
    };
    /// With the client's timeout only.
    pub const CLIENT_TIMEOUT: Setup = Setup {
        client_timeout: true,
        thread_per_request: false,
    };
    /// With the server's thread per request only.
    pub const THREAD_PER_REQUEST: Setup = Setup {
        client_timeout: false,
        thread_per_request: true,
    };
    /// With both, as the framework's calls to the embedded cluster.
    pub const BOTH: Setup = Setup {
        client_timeout: true,
        thread_per_request: true,
    };
}

/// What one round trip cost.
pub struct RoundTrip {
    /// Its wall time.
    pub time: Duration,
    /// The CPU time of client and server together.
    pub cpu: Duration,
}

/// Posts an `ACKNOWLEDGE` call, one request after the other, for `window`,
/// and returns the cost of one round trip.
pub fn measure(window: Duration, setup: Setup) -> RoundTrip {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind a loopback port"));
    let url = format!("http://{}/api/v1/scheduler", server.server_addr());
    let answering = Arc::clone(&server);
    let answerer = std::thread::Builder::new()
        .name("answer-202".into())
        .spawn(move || answer(&answering, setup.thread_per_request))
        .expect("start the answering thread");

    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if setup.client_timeout {
        config = config.timeout_global(Some(Duration::from_secs(30)));
    }
    let agent: ureq::Agent = config.build().into();
    let body = ContentType::Protobuf.encode(&acknowledge_call());
    let cpu_before = Cpu::now();
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed() < window {
        let response = agent
            .post(&url)
            .header("Content-Type", ContentType::Protobuf.mime())
            .header("Mesos-Stream-Id", "bench-stream")
            .send(&body[..])
            .expect("a loopback POST");
        assert_eq!(response.status().as_u16(), 202);
        calls += 1;
    }
    let elapsed = start.elapsed();
    let cpu = Cpu::now().since(&cpu_before);
    server.unblock();
    answerer.join().expect("the answering thread ends");
    RoundTrip {
        time: elapsed / calls.max(1),
        cpu: cpu.own / calls.max(1),
    }
}

fn answer(server: &tiny_http::Server, thread_per_request: bool) {
    while let Ok(request) = server.recv() {
        let respond = move || {
            let _ = request.respond(tiny_http::Response::empty(202));
        };
        if thread_per_request {
            let spawned = std::thread::Builder::new()
                .name("answer-request".into())
                .spawn(respond);
            // Dropping the handle detaches the thread, as the cluster does.
            drop(spawned.expect("start a request thread"));
        } else {
            respond();
        }
    }
}

/// The call a scheduler makes most: two per task.
fn acknowledge_call() -> Call {
    let mut call = Call::new();
    call.set_type(call::Type::ACKNOWLEDGE);
    call.framework_id
        .mut_or_insert_default()
        .set_value("bench-framework".into());
    let acknowledge = call.acknowledge.mut_or_insert_default();
    acknowledge
        .agent_id
        .mut_or_insert_default()
        .set_value("bench-S0".into());
    acknowledge
        .task_id
        .mut_or_insert_default()
        .set_value("42".into());
    acknowledge.set_uuid(vec![7; 16]);
    call
}
