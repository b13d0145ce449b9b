//! How long the embedded master's `/master/state` takes with 10,000
//! finished tasks.
//!
//! A workshop leaves the live page open while a batch runs; the page asks
//! for the state every second. This benchmark runs 10,000 no-op tasks on
//! the embedded cluster (the real executor, fetched from a `FileServer`),
//! keeps the framework connected so that its ended tasks stay in the
//! state, and then times `GET /master/state` over HTTP: the snapshot taken
//! under the master's lock, the JSON written after it, the bytes sent.
//!
//! Two clusters: one keeping all 10,000 ended tasks
//! (`max_completed_tasks_per_framework` 10,000, the worst case the page
//! meets), and one with Mesos's default, 1,000. The target: well under a
//! second, here 250 ms at the median.
//!
//! `cargo bench --bench state_endpoint` runs it; without `--bench` (as
//! `cargo test --benches` runs it) it does 200 tasks, to check it works.

mod report;
// The calls a test that is its own scheduler makes, shared with the tests.
#[path = "../tests/common/scheduler_api.rs"]
#[allow(dead_code)]
mod scheduler_api;

use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::mesos::{framework_info, FrameworkInfo};
use mesos_tutorial::proto::scheduler::event;
use mesos_tutorial::scheduler::master::MasterConnection;
use mesos_tutorial::scheduler::tasks::{describe, TaskPlan};
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The median that counts as "well under a second".
const TARGET: Duration = Duration::from_millis(250);

fn main() {
    let tasks = if report::quick_run() { 200 } else { 10_000 };
    let mut met = true;
    for kept in [10_000, 1_000] {
        let cluster = Cluster::start(ClusterConfig {
            max_completed_tasks_per_framework: kept,
            heartbeat_interval: Duration::from_secs(1),
            ..ClusterConfig::default()
        })
        .expect("the embedded cluster starts");
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("a file server");
        let executor = Path::new(env!("CARGO_BIN_EXE_executor"));
        let url = server.serve_file("executor", executor).expect("served");
        let started = Instant::now();
        let master = run_tasks(&cluster, &url, tasks);
        let ran = started.elapsed();

        let address = cluster.master_address();
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..21 {
            let start = Instant::now();
            bytes = get(address, "/master/state").len();
            times.push(start.elapsed());
        }
        times.sort();
        let median = times[times.len() / 2];
        met &= median < TARGET;
        println!(
            "/master/state, {tasks} tasks finished, {} kept: median {:.1} ms, \
             fastest {:.1} ms, slowest {:.1} ms, {:.1} MB (21 requests; the tasks ran in {:.1} s)",
            kept.min(tasks),
            ms(median),
            ms(times[0]),
            ms(times[times.len() - 1]),
            bytes as f64 / 1e6,
            ran.as_secs_f64(),
        );
        let _ = master.teardown();
        drop(master);
        drop(cluster);
        drop(server);
    }
    println!(
        "target: median under {} ms: {}",
        TARGET.as_millis(),
        if met { "met" } else { "NOT met" }
    );
}

/// Runs `tasks` no-op tasks to their end and returns the still-connected
/// framework.
fn run_tasks(cluster: &Cluster, executor_url: &str, tasks: usize) -> MasterConnection {
    let mut info = FrameworkInfo::new();
    info.set_user("bench".into());
    info.set_name("state endpoint benchmark".into());
    info.roles.push("*".into());
    let mut multi_role = framework_info::Capability::new();
    multi_role.set_type(framework_info::capability::Type::MULTI_ROLE);
    info.capabilities.push(multi_role);
    let mut master = scheduler_api::subscribe(cluster.master_address(), info).expect("subscribed");
    let mut plan = TaskPlan::new(executor_url, 0.01, 1.0);
    let payload = task_data::encode(&task_data::noop(0));
    let (mut launched, mut ended) = (0, HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    while ended.len() < tasks {
        assert!(
            Instant::now() < deadline,
            "only {} tasks ended",
            ended.len()
        );
        let event = scheduler_api::next_event(&master).expect("an event");
        match event.type_() {
            event::Type::SUBSCRIBED => {
                let subscribed = &event.subscribed;
                let id = subscribed.framework_id.clone().unwrap_or_default();
                master.subscribed(id, subscribed.heartbeat_interval_seconds());
            }
            event::Type::OFFERS => {
                for offer in &event.offers.offers {
                    let mut infos = plan.tasks(offer, tasks - launched);
                    for info in &mut infos {
                        launched += 1;
                        describe(info, &launched.to_string(), payload.clone());
                    }
                    master.launch(offer, infos, 1.0).expect("launched");
                }
            }
            event::Type::UPDATE => {
                let status = &event.update.status;
                if mesos_tutorial::proto::is_terminal(status.state()) {
                    ended.insert(status.task_id.value().to_string());
                }
                if status.has_uuid() {
                    master.acknowledge(status).expect("acknowledged");
                }
            }
            _ => {}
        }
    }
    master
}

/// The body of a `GET`, read to the end of the connection.
fn get(address: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).expect("connected");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "not 200");
    answer
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
