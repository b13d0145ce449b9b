//! The embedded master's read-only endpoints, read as a tool written for
//! real Mesos would read them: `/master/state` (also `/state`,
//! `/state.json`), `/version`, `/master/health`, and the live page at `/`.
//!
//! - `every_field_of_the_state_is_one_mesos_1_11_has` holds every field
//!   name the embedded master writes, at every level, to the list taken
//!   from Mesos 1.11 (`tests/data/mesos-1.11-state-fields.txt`), and checks
//!   that the fields the workshop needs are all there.
//! - `a_client_written_for_mesos_reads_the_state` is such a tool: it
//!   counts each framework's tasks by state and the agent's free CPUs from
//!   fields real Mesos has, and nothing else.
//! - `completed_tasks_are_bounded_per_framework`: the master keeps the
//!   last `max_completed_tasks_per_framework` ended tasks of a framework,
//!   as Mesos does.
//! - `version_health_and_the_page_answer_as_from_mesos` covers the small
//!   endpoints, and `405` for anything but `GET`.
//!
//! The live page in a real browser is `tests/web_ui_browser.rs`.
//!
//! *Test plumbing* (the framework that keeps a task running, reading JSON)
//! sits at the end of the file.

mod common;

use common::http::{connect_tcp, exchange_on, request, Answer};
use common::json::{at, fields, list, number, text};
use common::programs::Program;
use common::scheduler_api;
use common::temp_dir::TempDir;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::mesos::{framework_info, FrameworkInfo};
use mesos_tutorial::proto::scheduler::event;
use mesos_tutorial::scheduler::tasks::TaskPlan;
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use protobuf::well_known_types::struct_::{value::Kind, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Fields the workshop and the issue ask for, by the object that holds
/// them; each must be in every such object the master writes.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "state",
        &[
            "version",
            "id",
            "pid",
            "hostname",
            "start_time",
            "activated_slaves",
            "frameworks",
            "completed_frameworks",
            "slaves",
            "unregistered_frameworks",
        ],
    ),
    (
        "framework",
        &[
            "id",
            "name",
            "active",
            "connected",
            "failover_timeout",
            "registered_time",
            "resources",
            "used_resources",
            "offered_resources",
            "tasks",
            "completed_tasks",
            "offers",
        ],
    ),
    (
        "task",
        &[
            "id",
            "name",
            "framework_id",
            "executor_id",
            "slave_id",
            "state",
            "resources",
            "statuses",
        ],
    ),
    ("status", &["state", "timestamp"]),
    ("offer", &["id", "framework_id", "slave_id", "resources"]),
    (
        "slave",
        &[
            "id",
            "pid",
            "hostname",
            "resources",
            "used_resources",
            "offered_resources",
            "active",
        ],
    ),
];

#[test]
fn every_field_of_the_state_is_one_mesos_1_11_has() {
    let dir = TempDir::new("fields");
    let cluster = Cluster::start(test_config(&dir)).expect("the cluster starts");
    // A framework that finished (step 2, three tasks), and one that holds a
    // running task and an offer: every kind of object is in the state.
    run_step2(&cluster, &dir, 3);
    let live = LiveFramework::start(&cluster, "live framework");
    let state = wait_for_state(&cluster, |state| {
        list(at(state, "frameworks"))
            .first()
            .is_some_and(|framework| {
                !list(at(framework, "offers")).is_empty()
                    && !list(at(framework, "tasks")).is_empty()
            })
    });

    let mesos = mesos_fields();
    let mut objects = BTreeMap::new();
    collect_objects(&state, "state", &mut objects);
    for kind in [
        "state",
        "framework",
        "task",
        "status",
        "offer",
        "slave",
        "executor",
    ] {
        assert!(objects.contains_key(kind), "the state holds no {kind}");
    }
    for (kind, fields) in &objects {
        let known = &mesos[kind.as_str()];
        let invented: Vec<&String> = fields.iter().filter(|f| !known.contains(*f)).collect();
        assert!(
            invented.is_empty(),
            "{kind} has fields Mesos 1.11 does not: {invented:?}"
        );
    }
    for (kind, required) in REQUIRED {
        for object in objects_of(&state, "state", kind) {
            for field in *required {
                assert!(object.contains_key(*field), "a {kind} lacks {field}");
            }
        }
    }
    // The same answer under each of Mesos's names for it.
    for path in ["/state", "/state.json", "/master/state.json"] {
        let again = json(&get(cluster.master_address(), path));
        assert_eq!(text(&again, "id"), text(&state, "id"), "{path}");
    }
    drop(live);
}

#[test]
fn a_drained_agent_shows_mesos_1_11_drain_fields() {
    let dir = TempDir::new("drain-fields");
    let config = ClusterConfig {
        agents: 2,
        ..test_config(&dir)
    };
    let cluster = Cluster::start(config).expect("the cluster starts");
    let state = json(&get(cluster.master_address(), "/master/state"));
    let agent = text(&list(at(&state, "slaves"))[1], "id").to_string();
    let call = format!(
        r#"{{"type": "DRAIN_AGENT", "drain_agent": {{"agent_id": {{"value": "{agent}"}},
            "max_grace_period": "30s"}}}}"#
    );
    let headers = [("Content-Type", "application/json")];
    let answer = exchange_on(
        connect_tcp(cluster.master_address()),
        &request("POST", "/api/v1", &headers, call.as_bytes()),
    )
    .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Nothing runs there: drained at once.
    let state = wait_for_state(&cluster, |state| {
        list(at(state, "slaves")).iter().any(|slave| {
            let drain = fields(slave).get("drain_info");
            drain.is_some_and(|info| text(info, "state") == "DRAINED")
        })
    });
    let mut objects = BTreeMap::new();
    collect_objects(&state, "state", &mut objects);
    let mesos = mesos_fields();
    for kind in ["slave", "drain_info", "drain_config", "duration"] {
        let fields = objects
            .get(kind)
            .unwrap_or_else(|| panic!("no {kind} in the state"));
        let known = &mesos[kind];
        let invented: Vec<&String> = fields.iter().filter(|f| !known.contains(*f)).collect();
        assert!(
            invented.is_empty(),
            "{kind} has fields Mesos 1.11 does not: {invented:?}"
        );
    }
    let slaves = list(at(&state, "slaves"));
    let drained = slaves
        .iter()
        .find(|s| text(s, "id") == agent)
        .expect("the agent");
    assert!(matches!(
        at(drained, "deactivated").kind,
        Some(Kind::BoolValue(true))
    ));
    assert!(matches!(
        at(drained, "active").kind,
        Some(Kind::BoolValue(false))
    ));
    let config = at(at(drained, "drain_info"), "config");
    let grace = at(at(config, "max_grace_period"), "nanoseconds");
    assert!(matches!(grace.kind, Some(Kind::NumberValue(n)) if n == 30e9));
    assert_eq!(number(at(&state, "activated_slaves")), 1.0);
    assert_eq!(number(at(&state, "deactivated_slaves")), 1.0);
}

#[test]
fn a_client_written_for_mesos_reads_the_state() {
    let dir = TempDir::new("client");
    let cluster = Cluster::start(test_config(&dir)).expect("the cluster starts");
    run_step2(&cluster, &dir, 4);
    let live = LiveFramework::start(&cluster, "live framework");
    let state = wait_for_state(&cluster, |state| {
        list(at(state, "frameworks"))
            .first()
            .is_some_and(|framework| {
                let running = list(at(framework, "tasks"))
                    .first()
                    .is_some_and(|task| text(task, "state") == "TASK_RUNNING");
                running && !list(at(framework, "offers")).is_empty()
            })
    });

    let summary = MesosClient::read(&state);
    assert_eq!(summary.agents, 1);
    assert_eq!(summary.agent_cpus, 2.0);
    // Of the agent's 2 CPUs, the live framework's task holds 0.1 and its
    // executor 0.1 (used); the 1.8 its launch left came back with no filter,
    // and the allocator offered them to it again, the only framework, within
    // an allocation interval; it keeps that offer unanswered (offered). Free
    // is 2 - 0.2 used - 1.8 offered = 0.
    assert!(summary.free_cpus.abs() < 1e-9, "{summary:?}");
    let live_tasks = &summary.frameworks["live framework"];
    assert_eq!(live_tasks.get("TASK_RUNNING"), Some(&1), "{summary:?}");
    let finished = &summary.completed_frameworks["Rust Tutorial Framework"];
    assert_eq!(finished.get("TASK_FINISHED"), Some(&4), "{summary:?}");
    drop(live);
}

#[test]
fn completed_tasks_are_bounded_per_framework() {
    let dir = TempDir::new("bounded");
    let config = ClusterConfig {
        max_completed_tasks_per_framework: 3,
        ..test_config(&dir)
    };
    let cluster = Cluster::start(config).expect("the cluster starts");
    run_step2(&cluster, &dir, 8);
    let state = json(&get(cluster.master_address(), "/master/state"));
    let framework = &list(at(&state, "completed_frameworks"))[0];
    let kept: Vec<&str> = list(at(framework, "completed_tasks"))
        .iter()
        .map(|task| text(task, "id"))
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    // The last to end are kept: at most two tasks (one CPU each) run at
    // once on the default agent's two CPUs, so none of the first four ends
    // among the last three.
    assert!(
        kept.iter().all(|id| !["1", "2", "3", "4"].contains(id)),
        "{kept:?}"
    );
}

#[test]
fn version_health_and_the_page_answer_as_from_mesos() {
    let dir = TempDir::new("small");
    let cluster = Cluster::start(test_config(&dir)).expect("the cluster starts");
    let master = cluster.master_address();

    let version = get(master, "/version");
    assert_eq!(version.status, 200);
    assert_eq!(version.header("Content-Type"), Some("application/json"));
    assert_eq!(text(&json(&version), "version"), "1.11.0");

    // Mesos: `200 OK`, no body; only a slow answer signals poor health.
    let health = get(master, "/master/health");
    assert_eq!(health.status, 200);
    assert!(health.body.is_empty());

    let page = get(master, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("/master/state"));
    assert_eq!(cluster.web_ui_url(), format!("http://{master}/"));

    // With nothing running, the state still has its agent and no framework.
    let state = json(&get(master, "/master/state"));
    assert!(list(at(&state, "frameworks")).is_empty());
    assert_eq!(list(at(&state, "slaves")).len(), 1);

    let post = exchange_on(
        connect_tcp(master),
        &request("POST", "/master/state", &[], b""),
    );
    let post = post.expect("an answer");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), Some("GET"));
}

/// A tool written against real Mesos: it reads only fields Mesos 1.11
/// writes, as such tools do.
#[derive(Debug, Default)]
struct MesosClient {
    agents: usize,
    agent_cpus: f64,
    free_cpus: f64,
    /// Per framework name, its tasks (running and completed) by state.
    frameworks: BTreeMap<String, BTreeMap<String, usize>>,
    completed_frameworks: BTreeMap<String, BTreeMap<String, usize>>,
}

impl MesosClient {
    fn read(state: &Value) -> MesosClient {
        let mut client = MesosClient::default();
        for agent in list(at(state, "slaves")) {
            client.agents += 1;
            let cpus = number(at(at(agent, "resources"), "cpus"));
            let used = number(at(at(agent, "used_resources"), "cpus"));
            let offered = number(at(at(agent, "offered_resources"), "cpus"));
            client.agent_cpus += cpus;
            client.free_cpus += cpus - used - offered;
        }
        for (field, into) in [
            ("frameworks", &mut client.frameworks),
            ("completed_frameworks", &mut client.completed_frameworks),
        ] {
            for framework in list(at(state, field)) {
                let counts = into.entry(text(framework, "name").to_string()).or_default();
                for tasks in ["tasks", "completed_tasks"] {
                    for task in list(at(framework, tasks)) {
                        *counts.entry(text(task, "state").to_string()).or_default() += 1;
                    }
                }
            }
        }
        client
    }
}

// ---------------------------------------------------------------------------
// Test plumbing: a reader may skip from here on.
// ---------------------------------------------------------------------------

fn test_config(dir: &TempDir) -> ClusterConfig {
    ClusterConfig {
        heartbeat_interval: Duration::from_secs(1),
        work_dir: Some(dir.path().join("work")),
        ..ClusterConfig::default()
    }
}

/// Runs workshop step 2 with `tasks` tasks against the cluster, to its end
/// (the framework tears itself down), for at most two minutes.
fn run_step2(cluster: &Cluster, dir: &TempDir, tasks: usize) {
    let master = cluster.master_address().to_string();
    let step2 = Program::start(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(["--master", &master, "--step", "launch"])
            .args(["--tasks", &tasks.to_string()])
            .args(["--executor", env!("CARGO_BIN_EXE_executor")])
            .current_dir(dir.path()),
    )
    .finish(Duration::from_secs(120));
    step2.assert_code(0);
}

/// A framework that keeps one long task running and an offer outstanding,
/// until dropped.
struct LiveFramework {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveFramework {
    fn start(cluster: &Cluster, name: &str) -> LiveFramework {
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("a file server");
        let executor = Path::new(env!("CARGO_BIN_EXE_executor"));
        let url = server.serve_file("executor", executor).expect("served");
        let mut info = FrameworkInfo::new();
        info.set_user("tester".into());
        info.set_name(name.into());
        info.roles.push("*".into());
        let mut multi_role = framework_info::Capability::new();
        multi_role.set_type(framework_info::capability::Type::MULTI_ROLE);
        info.capabilities.push(multi_role);
        let mut master =
            scheduler_api::subscribe(cluster.master_address(), info).expect("subscribed");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut plan = TaskPlan::new(&url, 0.1, 32.0);
            let mut launched = false;
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                // Heartbeats every second wake this loop up.
                let Ok(event) = scheduler_api::next_event(&master) else {
                    break;
                };
                match event.type_() {
                    event::Type::SUBSCRIBED => {
                        let subscribed = &event.subscribed;
                        let id = subscribed.framework_id.clone().unwrap_or_default();
                        master.subscribed(id, subscribed.heartbeat_interval_seconds());
                    }
                    // The first offer runs a task for a minute; later
                    // offers are kept, unanswered.
                    event::Type::OFFERS if !launched => {
                        let offer = &event.offers.offers[0];
                        let data = task_data::encode(&task_data::noop(60_000));
                        let task = scheduler_api::one_task(&mut plan, offer, "long", data);
                        master.launch(offer, vec![task], 0.0).expect("launched");
                        launched = true;
                    }
                    event::Type::UPDATE if event.update.status.has_uuid() => {
                        master
                            .acknowledge(&event.update.status)
                            .expect("acknowledged");
                    }
                    _ => {}
                }
            }
            let _ = master.teardown();
            drop(server);
        });
        LiveFramework {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LiveFramework {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn get(address: SocketAddr, path: &str) -> Answer {
    exchange_on(connect_tcp(address), &request("GET", path, &[], b""))
        .unwrap_or_else(|| panic!("no answer to GET {path}"))
}

/// Reads `/master/state` until `ready` holds, for at most 20 seconds.
fn wait_for_state(cluster: &Cluster, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = json(&get(cluster.master_address(), "/master/state"));
        if ready(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "the state never got ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Any JSON, through protobuf's `google.protobuf.Value`.
fn json(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text());
    protobuf_json_mapping::parse_from_str::<Value>(&answer.text()).expect("valid JSON")
}

/// What kind of object a field holds, by Mesos's name for its parent and
/// the field; `None` for fields that hold no objects of a listed kind
/// (resources, flags: their keys are resource and flag names).
fn child_kind(parent: &str, field: &str) -> Option<&'static str> {
    Some(match (parent, field) {
        ("state", "frameworks" | "completed_frameworks") => "framework",
        ("state", "slaves" | "recovered_slaves") => "slave",
        ("state", "leader_info") => "leader_info",
        ("framework", "tasks" | "completed_tasks" | "unreachable_tasks") => "task",
        ("framework", "offers") => "offer",
        ("framework", "executors") => "executor",
        ("task", "statuses") => "status",
        ("offer", "allocation_info") => "allocation_info",
        ("slave", "drain_info") => "drain_info",
        ("drain_info", "config") => "drain_config",
        ("drain_config", "max_grace_period") => "duration",
        _ => return None,
    })
}

/// Every object under `value` (itself of `kind`), by kind, with the union
/// of their field names.
fn collect_objects(value: &Value, kind: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    let Some(Kind::StructValue(object)) = &value.kind else {
        return;
    };
    into.entry(kind.to_string())
        .or_default()
        .extend(object.fields.keys().cloned());
    for (field, child) in &object.fields {
        if let Some(child_kind) = child_kind(kind, field) {
            for item in elements(child) {
                collect_objects(item, child_kind, into);
            }
        }
    }
}

/// The objects of kind `wanted` at or under `value` (of kind `kind`).
fn objects_of<'a>(value: &'a Value, kind: &str, wanted: &str) -> Vec<&'a HashMap<String, Value>> {
    let Some(Kind::StructValue(object)) = &value.kind else {
        return Vec::new();
    };
    if kind == wanted {
        return vec![&object.fields];
    }
    let mut found = Vec::new();
    for (field, child) in &object.fields {
        if let Some(child_kind) = child_kind(kind, field) {
            for item in elements(child) {
                found.extend(objects_of(item, child_kind, wanted));
            }
        }
    }
    found
}

/// An array's elements, or the value itself.
fn elements(value: &Value) -> Vec<&Value> {
    match &value.kind {
        Some(Kind::ListValue(items)) => items.values.iter().collect(),
        _ => vec![value],
    }
}

/// `tests/data/mesos-1.11-state-fields.txt`: field names by object kind.
fn mesos_fields() -> BTreeMap<String, BTreeSet<String>> {
    let text = include_str!("data/mesos-1.11-state-fields.txt");
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut kind = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            Some(name) => kind = name.to_string(),
            None => {
                fields
                    .entry(kind.clone())
                    .or_default()
                    .insert(line.to_string());
            }
        }
    }
    fields
}
