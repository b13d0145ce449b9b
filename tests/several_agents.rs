//! Several agents, and losing one: `mesos-local --agents N` and the
//! master's operator API (`POST /api/v1`), run as a reader runs them.
//!
//! - `three_agents_are_listed_in_the_state`: `mesos-local --agents 3` (and
//!   Mesos's spelling, `--num_slaves 3`) lists three agents under `slaves`
//!   of `/master/state`, and in `GET_AGENTS`, each with its own id and port.
//! - `thirty_step2_tasks_spread_over_at_least_two_agents`: step 2 with
//!   `--agents 3` gets offers from each agent and runs its tasks on more
//!   than one of them, as `/master/state` records.
//! - `a_step3_batch_survives_an_agent_drained_in_the_middle`: an agent is
//!   drained while its tasks run (their downloads are held back until it
//!   is); they end `TASK_KILLED` with `REASON_AGENT_DRAINING`, the batch
//!   runs them again elsewhere and ends with every image done, although
//!   `--max-attempts 1` leaves no attempt to spare.
//! - `an_agent_drained_for_good_leaves_and_its_tasks_are_gone_by_operator`:
//!   with `mark_gone`, a step 2 task ends `TASK_GONE_BY_OPERATOR`, which
//!   is no failure, and the agent leaves `/master/state` and the operator
//!   API for good.
//! - `reactivating_a_drained_agent_brings_its_offers_back`: a test that is
//!   its own scheduler sees the drained agent's offer rescinded, no offer of
//!   it while it is deactivated, and its offer again after
//!   `REACTIVATE_AGENT`.
//! - `bad_operator_calls_get_mesos_answers`: an unknown agent, a body that
//!   does not parse, a call without its part, an unsupported type, the
//!   wrong method or media type: each answered with Mesos's status and
//!   words.
//!
//! The page's Drain button is clicked in `tests/web_ui_browser.rs`.
//!
//! *Test plumbing* (starting `mesos-local`, the operator calls) sits at
//! the end of the file; reading JSON and the file server that holds
//! downloads back are in `tests/common/`. Every process is killed by its guard and every temporary
//! directory removed, however a test ends; everything listens on
//! 127.0.0.1.

mod common;

use common::held_images::HeldImages;
use common::json::{at, boolean, fields, list, number, parse, text};
use common::programs::{free_port, Program};
use common::scheduler_api;
use common::temp_dir::TempDir;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::mesos::task_status::Reason;
use mesos_tutorial::proto::mesos::{FrameworkInfo, Offer, TaskState, TaskStatus};
use mesos_tutorial::proto::scheduler::event;
use mesos_tutorial::scheduler::master::MasterConnection;
use mesos_tutorial::scheduler::tasks::TaskPlan;
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use protobuf::well_known_types::struct_::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a scheduler binary may take for its whole run; a healthy run
/// takes a few seconds.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long one wait for the cluster to reach a state may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);

#[test]
fn three_agents_are_listed_in_the_state() {
    for flag in ["--agents", "--num_slaves"] {
        let dir = TempDir::new("three-agents");
        let (_cluster, master) = start_mesos_local(dir.path(), &[flag, "3"]);
        let state = get_json(&master, "/master/state");
        let slaves = list(at(&state, "slaves"));
        assert_eq!(slaves.len(), 3, "{flag} 3: {slaves:?}");
        let ids: BTreeSet<&str> = slaves.iter().map(|s| text(s, "id")).collect();
        let pids: BTreeSet<&str> = slaves.iter().map(|s| text(s, "pid")).collect();
        assert_eq!(ids.len(), 3, "each agent has its own id: {ids:?}");
        assert_eq!(pids.len(), 3, "each agent has its own port: {pids:?}");
        for slave in slaves {
            assert_eq!(number(at(at(slave, "resources"), "cpus")), 2.0);
            assert!(boolean(at(slave, "active")));
            assert!(!boolean(at(slave, "deactivated")));
        }
        assert_eq!(number(at(&state, "activated_slaves")), 3.0);

        let (status, body) = operator(&master, r#"{"type": "GET_AGENTS"}"#);
        assert_eq!(status, 200, "{body}");
        let answer = parse(&body);
        assert_eq!(text(&answer, "type"), "GET_AGENTS");
        let agents = list(at(at(&answer, "get_agents"), "agents"));
        let listed: BTreeSet<&str> = agents
            .iter()
            .map(|a| text(at(at(a, "agent_info"), "id"), "value"))
            .collect();
        assert_eq!(listed, ids, "GET_AGENTS lists the same agents");
    }
}

#[test]
fn thirty_step2_tasks_spread_over_at_least_two_agents() {
    let dir = TempDir::new("spread");
    std::fs::create_dir_all(dir.path().join("tmp")).expect("a TMPDIR");
    let mut scheduler = Program::start(
        common::programs::scheduler_in(dir.path())
            .args(["--step", "launch", "--tasks", "30", "--agents", "3"])
            .args(["--executor", env!("CARGO_BIN_EXE_executor")]),
    );
    let finished = scheduler.finish(RUN_LIMIT);
    finished.assert_code(0);
    let log = &finished.stderr;
    assert!(log.contains("master and 3 agents"), "{log}");
    // Offers came from each agent, and tasks ran on more than one.
    let offered: BTreeSet<&str> = log
        .lines()
        .filter_map(|line| line.split(" from agent ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    assert_eq!(offered.len(), 3, "offers from each of 3 agents:\n{log}");
    let agents_used: BTreeSet<&str> = log
        .lines()
        .filter(|line| line.contains("Launching ") && line.contains(" for offer "))
        .filter_map(|line| line.split(" for offer ").nth(1))
        .filter_map(|offer| {
            // The offer's line names its agent.
            let announced = format!("Received offer {} from agent ", offer.trim());
            log.lines()
                .find_map(|l| l.split(&announced).nth(1))
                .and_then(|rest| rest.split(' ').next())
        })
        .collect();
    assert!(
        agents_used.len() >= 2,
        "30 tasks ran on {agents_used:?} only:\n{log}"
    );
    common::programs::assert_nothing_left_behind(dir.path(), "");
}

#[test]
fn a_step3_batch_survives_an_agent_drained_in_the_middle() {
    let dir = TempDir::new("drain-batch");
    let work = dir.path().join("work");
    let work_flag = work.display().to_string();
    let (_cluster, master) =
        start_mesos_local(dir.path(), &["--agents", "3", "--work-dir", &work_flag]);
    let images = HeldImages::start(6);
    let mut scheduler = Program::start(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args([
                "--master",
                &master,
                "--step",
                "images",
                "--max-attempts",
                "1",
            ])
            .args(["--executor", env!("CARGO_BIN_EXE_executor")])
            .args([
                "--output-dir",
                &dir.path().join("output").display().to_string(),
            ])
            .args(images.urls())
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .current_dir(dir.path()),
    );
    // Every task holds at its download: an agent with a running task is
    // drained while that task runs.
    let state = wait_for(&master, |state| !running_tasks(state).is_empty());
    let (_, drained) = running_tasks(&state)[0].clone();
    let (status, body) = operator(&master, &drain_call(&drained, false));
    assert_eq!(status, 200, "{body}");
    // The downloads go on once an executor has taken the kill: its task
    // then sees the kill before it inverts anything.
    wait_for_sandbox_line(&work, "Killing task");
    images.release();

    let finished = scheduler.finish(RUN_LIMIT);
    finished.assert_code(0);
    let log = &finished.stderr;
    assert!(!log.contains("Giving up"), "an attempt was counted:\n{log}");
    let results = std::fs::read_dir(dir.path().join("output"))
        .expect("the output folder")
        .count();
    assert_eq!(results, 6, "every image done:\n{log}");
    // The drain did kill tasks (the scheduler saw why they ended), and its
    // agent ended drained. (The batch runs an image again under the same
    // task id, so the master's record of the killed task is replaced by
    // that of the task that finished.)
    assert!(
        log.contains("ended because its agent is draining: not counted as a failure"),
        "no task was killed by the drain:\n{log}"
    );
    let state = wait_for(&master, |state| drain_state(state, &drained) == "DRAINED");
    let after_drain: Vec<&Value> = all_tasks(&state)
        .into_iter()
        .filter(|task| text(task, "slave_id") == drained && text(task, "state") == "TASK_FINISHED")
        .filter(|task| {
            let statuses = list(at(task, "statuses"));
            let started = number(at(&statuses[0], "timestamp"));
            started
                > number(at(
                    slave(&state, &drained),
                    "estimated_drain_start_time_seconds",
                ))
        })
        .collect();
    assert!(after_drain.is_empty(), "tasks started on the drained agent");
}

#[test]
fn an_agent_drained_for_good_leaves_and_its_tasks_are_gone_by_operator() {
    let dir = TempDir::new("mark-gone");
    let (_cluster, master) = start_mesos_local(dir.path(), &["--agents", "2"]);
    // Step 2, with a task that runs until it is killed.
    let mut scheduler = Program::start(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(["--master", &master, "--step", "launch", "--tasks", "1"])
            .args(["--task-millis", "600000", "--max-failures", "1"])
            .args(["--executor", env!("CARGO_BIN_EXE_executor")])
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .current_dir(dir.path()),
    );
    let state = wait_for(&master, |state| !running_tasks(state).is_empty());
    let (task, gone) = running_tasks(&state)[0].clone();
    let (status, body) = operator(&master, &drain_call(&gone, true));
    assert_eq!(status, 200, "{body}");
    // The task ends TASK_GONE_BY_OPERATOR, which the scheduler does not
    // count as a failure (one would end it, with --max-failures 1).
    scheduler.wait_for_line(
        &format!("Task {task} ended because its agent is draining"),
        STEP_LIMIT,
    );
    let state = wait_for(&master, |state| {
        !list(at(state, "slaves"))
            .iter()
            .any(|s| text(s, "id") == gone)
    });
    let ended = all_tasks(&state)
        .into_iter()
        .find(|t| text(t, "id") == task)
        .expect("the task is remembered");
    assert_eq!(text(ended, "state"), "TASK_GONE_BY_OPERATOR");
    assert_eq!(list(at(&state, "slaves")).len(), 1);
    // Its executor was shut down as the agent left: the scheduler hears
    // of its exit (`FAILURE`).
    scheduler.wait_for_line(
        &format!("Executor default on agent {gone} exited"),
        STEP_LIMIT,
    );
    // A gone agent is unknown to the operator API.
    let (status, body) = operator(&master, &drain_call(&gone, false));
    assert_eq!((status, body.as_str()), (400, "Unknown agent"));
    // The scheduler runs its task on the agent that is left.
    let state = wait_for(&master, |state| !running_tasks(state).is_empty());
    assert_ne!(running_tasks(&state)[0].1, gone);
}

#[test]
fn reactivating_a_drained_agent_brings_its_offers_back() {
    let dir = TempDir::new("reactivate");
    let config = ClusterConfig {
        agents: 2,
        work_dir: Some(dir.path().join("work")),
        // A heartbeat a second, so that each wait below sees its deadline.
        heartbeat_interval: Duration::from_secs(1),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(config).expect("the cluster starts");
    let master = cluster.master_address().to_string();
    let deadline = Instant::now() + STEP_LIMIT;
    let next = |connection: &_| {
        assert!(Instant::now() < deadline, "the events never came");
        scheduler_api::next_event(connection).expect("an event")
    };
    let mut info = FrameworkInfo::new();
    info.set_name("operator test".into());
    info.set_user("nobody".into());
    let connection = scheduler_api::subscribe(cluster.master_address(), info).expect("subscribed");
    // One offer of each agent; we keep them, so no more come.
    let mut held = BTreeSet::new();
    while held.len() < 2 {
        let event = next(&connection);
        if event.type_() == event::Type::OFFERS {
            for offer in &event.offers.offers {
                held.insert((
                    offer.agent_id.value().to_string(),
                    offer.id.value().to_string(),
                ));
            }
        }
    }
    let (drained, drained_offer) = held.iter().next().cloned().expect("two offers");

    let (status, body) = operator(&master, &drain_call(&drained, false));
    assert_eq!(status, 200, "{body}");
    // Its offer is rescinded, and it is drained at once: nothing ran there.
    loop {
        let event = next(&connection);
        assert_ne!(event.type_(), event::Type::OFFERS, "offered while drained");
        if event.type_() == event::Type::RESCIND {
            assert_eq!(event.rescind.offer_id.value(), drained_offer);
            break;
        }
    }
    let state = wait_for(&master, |state| drain_state(state, &drained) == "DRAINED");
    let agent = slave(&state, &drained);
    assert!(boolean(at(agent, "deactivated")));
    assert_eq!(number(at(at(agent, "offered_resources"), "cpus")), 0.0);

    let (status, body) = operator(&master, &reactivate_call(&drained));
    assert_eq!(status, 200, "{body}");
    loop {
        let event = next(&connection);
        if event.type_() == event::Type::OFFERS {
            let agents: Vec<&str> = event
                .offers
                .offers
                .iter()
                .map(|o| o.agent_id.value())
                .collect();
            assert_eq!(
                agents,
                [drained.as_str()],
                "the reactivated agent is offered"
            );
            break;
        }
    }
    let state = get_json(&master, "/master/state");
    let agent = slave(&state, &drained);
    assert!(!boolean(at(agent, "deactivated")));
    assert!(
        fields(agent).get("drain_info").is_none(),
        "reactivated: no drain"
    );
    // A second REACTIVATE_AGENT finds it active, as Mesos answers.
    let (status, body) = operator(&master, &reactivate_call(&drained));
    assert_eq!((status, body.as_str()), (400, "Agent is not deactivated"));
    drop(connection);
    cluster.shutdown();
}

/// A draining agent is drained only once nothing runs there *and* its
/// frameworks acknowledged every update (Mesos's master waits for both).
/// Reactivated, it drains no more: a kill the framework asks for later is
/// the framework's own, without `REASON_AGENT_DRAINING`.
#[test]
fn an_agent_is_drained_once_its_kills_are_acknowledged_and_reactivation_ends_the_drain() {
    let dir = TempDir::new("drain-acks");
    let config = ClusterConfig {
        work_dir: Some(dir.path().join("work")),
        // A heartbeat a second, so that each wait below sees its deadline.
        heartbeat_interval: Duration::from_secs(1),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(config).expect("the cluster starts");
    let master = cluster.master_address().to_string();
    let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("a file server");
    let executor = Path::new(env!("CARGO_BIN_EXE_executor"));
    let url = server.serve_file("executor", executor).expect("served");
    let mut plan = TaskPlan::new(&url, 0.1, 32.0);
    let deadline = Instant::now() + STEP_LIMIT;
    let mut info = FrameworkInfo::new();
    info.set_name("drain test".into());
    info.set_user("nobody".into());
    let mut connection =
        scheduler_api::subscribe(cluster.master_address(), info).expect("subscribed");
    let mut offers = Vec::new();

    // A long task runs on the agent.
    let running = start_long_task(&mut connection, &mut plan, &mut offers, deadline, "first");
    let agent = running.agent_id.value().to_string();

    // Drained: the task is killed by the drain, and until its end is
    // acknowledged the agent is still draining.
    let (status, body) = operator(&master, &drain_call(&agent, false));
    assert_eq!(status, 200, "{body}");
    let killed = next_update(&mut connection, &mut offers, deadline);
    assert_eq!(killed.state(), TaskState::TASK_KILLED);
    assert_eq!(killed.reason(), Reason::REASON_AGENT_DRAINING);
    let state = get_json(&master, "/master/state");
    assert_eq!(
        drain_state(&state, &agent),
        "DRAINING",
        "an update is unacknowledged"
    );
    connection.acknowledge(&killed).expect("acknowledged");
    wait_for(&master, |state| drain_state(state, &agent) == "DRAINED");

    // Reactivated: a task killed by its framework is not the drain's doing.
    let (status, body) = operator(&master, &reactivate_call(&agent));
    assert_eq!(status, 200, "{body}");
    offers.clear();
    let running = start_long_task(&mut connection, &mut plan, &mut offers, deadline, "second");
    let task_id = running.task_id.clone().unwrap_or_default();
    let agent_id = running.agent_id.clone().unwrap_or_default();
    connection.kill(task_id, agent_id).expect("killed");
    let killed = next_update(&mut connection, &mut offers, deadline);
    assert_eq!(killed.state(), TaskState::TASK_KILLED);
    assert_ne!(killed.reason(), Reason::REASON_AGENT_DRAINING, "{killed:?}");
    connection.acknowledge(&killed).expect("acknowledged");
    let _ = connection.teardown();
    drop(connection);
    cluster.shutdown();
}

#[test]
fn bad_operator_calls_get_mesos_answers() {
    let dir = TempDir::new("operator-errors");
    let config = ClusterConfig {
        agents: 2,
        work_dir: Some(dir.path().join("work")),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(config).expect("the cluster starts");
    let master = cluster.master_address().to_string();
    let cases: [(&str, u16, &str); 7] = [
        (&drain_call("no-such-agent", false), 400, "Unknown agent"),
        (
            &reactivate_call("no-such-agent"),
            400,
            "Agent is not deactivated",
        ),
        ("{not json", 400, "Failed to parse body into JSON"),
        (
            r#"{"type": "DRAIN_AGENT"}"#,
            400,
            "Failed to validate master::Call: Expecting 'drain_agent' to be present",
        ),
        (
            r#"{"drain_agent": {}}"#,
            400,
            "Failed to convert JSON into Call protobuf",
        ),
        (
            r#"{"type": "NO_SUCH_CALL"}"#,
            400,
            "Failed to convert JSON into Call protobuf",
        ),
        (
            r#"{"type": "GET_STATE"}"#,
            501,
            "GET_STATE is not supported by the embedded cluster",
        ),
    ];
    for (body, want_status, want_text) in cases {
        let (status, text) = operator(&master, body);
        assert_eq!(status, want_status, "{body}: {text}");
        assert!(text.starts_with(want_text), "{body}: {text}");
    }
    let (status, _) = operator(&master, "{}");
    assert_eq!(status, 400, "no type");
    // Protobuf: bytes that are no Call.
    let url = format!("http://{master}/api/v1");
    let answer = http()
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .send(&[0xff, 0xff, 0xff][..])
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 400);
    // Neither encoding: 415; GET: 405; an Accept of neither: 406.
    let answer = http()
        .post(&url)
        .header("Content-Type", "text/plain")
        .send("GET_AGENTS")
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 415);
    let answer = http().get(&url).call().expect("an answer");
    assert_eq!(answer.status().as_u16(), 405);
    let answer = http()
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "text/html")
        .send(r#"{"type": "GET_AGENTS"}"#)
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 406);
    // Mesos's own example body, with its `{"seconds": 600}` grace period.
    let state = get_json(&master, "/master/state");
    let agent = text(&list(at(&state, "slaves"))[0], "id").to_string();
    let body = format!(
        r#"{{"type": "DRAIN_AGENT", "drain_agent": {{"agent_id": {{"value": "{agent}"}},
            "max_grace_period": {{"seconds": 600}}, "mark_gone": false}}}}"#
    );
    let (status, text) = operator(&master, &body);
    assert_eq!(status, 200, "{text}");
    let state = get_json(&master, "/master/state");
    let config = at(at(slave(&state, &agent), "drain_info"), "config");
    let grace = number(at(at(config, "max_grace_period"), "nanoseconds"));
    assert_eq!(grace, 600e9);
    cluster.shutdown();
}

// ---------------------------------------------------------------------------
// Test plumbing.
// ---------------------------------------------------------------------------

/// `mesos-local` with `flags`, on free ports, working in `dir`, in a
/// process group of its own (Unix); returns once it is ready, with the
/// master's `host:port`.
fn start_mesos_local(dir: &Path, flags: &[&str]) -> (Program, String) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesos-local"));
    command
        .args(["--port", &port.to_string(), "--agent-port", "0"])
        .args(flags)
        .current_dir(dir)
        .env("TMPDIR", dir)
        .env_remove("RUST_LOG");
    #[cfg(unix)]
    let mut cluster = Program::start_in_group(&mut command);
    #[cfg(not(unix))]
    let mut cluster = Program::start(&mut command);
    cluster.wait_for_line("] Ready. ", STEP_LIMIT);
    (cluster, format!("127.0.0.1:{port}"))
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(STEP_LIMIT))
        .build()
        .into()
}

/// A JSON operator call to `POST /api/v1`: the status and the body.
fn operator(master: &str, body: &str) -> (u16, String) {
    let mut answer = http()
        .post(&format!("http://{master}/api/v1"))
        .header("Content-Type", "application/json")
        .send(body)
        .expect("an answer from the master");
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string().expect("a text body");
    (status, text)
}

fn drain_call(agent: &str, mark_gone: bool) -> String {
    format!(
        r#"{{"type": "DRAIN_AGENT", "drain_agent": {{"agent_id": {{"value": "{agent}"}}, "mark_gone": {mark_gone}}}}}"#
    )
}

fn reactivate_call(agent: &str) -> String {
    format!(
        r#"{{"type": "REACTIVATE_AGENT", "reactivate_agent": {{"agent_id": {{"value": "{agent}"}}}}}}"#
    )
}

fn get_json(master: &str, path: &str) -> Value {
    let mut answer = http()
        .get(&format!("http://{master}{path}"))
        .call()
        .expect("an answer from the master");
    assert_eq!(answer.status().as_u16(), 200);
    parse(&answer.body_mut().read_to_string().expect("a text body"))
}

/// Waits until an executor's log (`stderr` in its sandbox, under the
/// cluster's work folder) has a line containing `text`.
fn wait_for_sandbox_line(work: &Path, text: &str) {
    fn logs(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                logs(&path, found);
            } else if path.file_name().is_some_and(|name| name == "stderr") {
                found.push(path);
            }
        }
    }
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let mut found = Vec::new();
        logs(work, &mut found);
        let seen = found
            .iter()
            .any(|log| std::fs::read_to_string(log).is_ok_and(|t| t.contains(text)));
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "no executor logged {text:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `/master/state` once `ready` says so.
fn wait_for(master: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let state = get_json(master, "/master/state");
        if ready(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "never ready: {state:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every task of every framework, running or ended.
fn all_tasks(state: &Value) -> Vec<&Value> {
    let frameworks = list(at(state, "frameworks"))
        .iter()
        .chain(list(at(state, "completed_frameworks")));
    frameworks
        .flat_map(|f| {
            list(at(f, "tasks"))
                .iter()
                .chain(list(at(f, "completed_tasks")))
        })
        .collect()
}

/// `(task id, agent id)` of each task in `TASK_RUNNING`.
fn running_tasks(state: &Value) -> Vec<(String, String)> {
    all_tasks(state)
        .into_iter()
        .filter(|task| text(task, "state") == "TASK_RUNNING")
        .map(|task| (text(task, "id").into(), text(task, "slave_id").into()))
        .collect()
}

fn slave<'a>(state: &'a Value, id: &str) -> &'a Value {
    list(at(state, "slaves"))
        .iter()
        .find(|s| text(s, "id") == id)
        .unwrap_or_else(|| panic!("no agent {id}"))
}

/// `drain_info.state` of the agent, or "" when it has none.
fn drain_state(state: &Value, id: &str) -> String {
    match fields(slave(state, id)).get("drain_info") {
        Some(info) => text(info, "state").to_string(),
        None => String::new(),
    }
}

/// One event of a test's own framework: `SUBSCRIBED` is answered, offers
/// are kept in `offers` (and dropped when rescinded), an update returned.
fn one_event(
    connection: &mut MasterConnection,
    offers: &mut Vec<Offer>,
    deadline: Instant,
) -> Option<TaskStatus> {
    assert!(Instant::now() < deadline, "the events never came");
    let event = scheduler_api::next_event(connection).expect("an event");
    match event.type_() {
        event::Type::SUBSCRIBED => {
            let subscribed = &event.subscribed;
            let id = subscribed.framework_id.clone().unwrap_or_default();
            connection.subscribed(id, subscribed.heartbeat_interval_seconds());
        }
        event::Type::OFFERS => offers.extend(event.offers.offers.iter().cloned()),
        event::Type::RESCIND => offers.retain(|o| o.id != event.rescind.offer_id),
        event::Type::UPDATE => return Some(event.update.status.clone().unwrap_or_default()),
        _ => {}
    }
    None
}

/// The next task update.
fn next_update(
    connection: &mut MasterConnection,
    offers: &mut Vec<Offer>,
    deadline: Instant,
) -> TaskStatus {
    loop {
        if let Some(status) = one_event(connection, offers, deadline) {
            return status;
        }
    }
}

/// The first offer held, waiting for one; no update may come meanwhile.
fn next_offer(
    connection: &mut MasterConnection,
    offers: &mut Vec<Offer>,
    deadline: Instant,
) -> Offer {
    while offers.is_empty() {
        if let Some(status) = one_event(connection, offers, deadline) {
            panic!("an update while waiting for an offer: {status:?}");
        }
    }
    offers.remove(0)
}

/// Launches a no-op task that runs for ten minutes unless killed, on the
/// next offer, and acknowledges its `TASK_RUNNING`, which it returns.
fn start_long_task(
    connection: &mut MasterConnection,
    plan: &mut TaskPlan,
    offers: &mut Vec<Offer>,
    deadline: Instant,
    id: &str,
) -> TaskStatus {
    let offer = next_offer(connection, offers, deadline);
    let data = task_data::encode(&task_data::noop(600_000));
    let task = scheduler_api::one_task(plan, &offer, id, data);
    connection
        .launch(&offer, vec![task], 0.0)
        .expect("launched");
    let running = next_update(connection, offers, deadline);
    assert_eq!(running.state(), TaskState::TASK_RUNNING);
    connection.acknowledge(&running).expect("acknowledged");
    running
}
