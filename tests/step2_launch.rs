//! Workshop step 2, end to end: launching tasks and watching them end.
//!
//! Step 1 only looked at offers. Step 2 uses them: the scheduler answers an
//! offer with `ACCEPT` and a `LAUNCH` operation, the agent fetches our
//! executor into a sandbox and starts it, and the task's life comes back as
//! status updates on the scheduler's event stream. Each test below shows one
//! part of that life against the embedded single-node cluster:
//!
//! - `twenty_tasks_finish_and_the_scheduler_exits_cleanly` runs the step as
//!   a workshop attendee does (`scheduler --step launch --tasks 20`). The
//!   framework serves the executor binary from its own file server, the
//!   agent's fetcher downloads it from there, and every task reports
//!   `TASK_RUNNING` and then `TASK_FINISHED`. The JSON variant shows that
//!   the encoding of the scheduler API changes nothing else.
//! - `a_killed_task_ends_in_task_killed`: `KILL` is only a request. The
//!   task's end arrives later, as a `TASK_KILLED` update from the executor,
//!   and is acknowledged like any other update that carries a uuid.
//! - `an_executor_killed_from_outside_fails_its_tasks_and_resources_come_back`:
//!   when an executor process dies, nobody is left to speak for its tasks,
//!   so the agent does (`TASK_FAILED`, `REASON_EXECUTOR_TERMINATED`,
//!   `SOURCE_AGENT`) and the master sends a `FAILURE` event. The task's and
//!   the executor's resources are offered again, and the next task starts a
//!   fresh executor in a fresh sandbox.
//! - `accepting_a_stale_offer_drops_its_tasks`: an offer can be used once.
//!   After a `DECLINE` its id is dead, and the master answers an `ACCEPT` of
//!   it by ending its tasks itself: `TASK_LOST`, or `TASK_DROPPED` for a
//!   partition-aware framework. Those updates come from the master, carry no
//!   uuid, and must not be acknowledged.
//! - `the_standalone_cluster_serves_a_separate_scheduler`: `mesos-local`
//!   in its own process, and the scheduler pointed at it with `--master`,
//!   exactly as with a real Mesos master.
//!
//! *Test plumbing* (process guards, the event-waiting helper) sits at the
//! end of the file; the directory guard and `/proc` scanning are shared, in
//! `tests/common/`. Every wait has a deadline, every child process is killed
//! by a guard if a test fails, every temporary directory is removed, and
//! everything listens on 127.0.0.1 only.

mod common;

use common::processes::{kill_processes, processes_inside};
use common::scheduler_api;
use common::temp_dir::TempDir;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::mesos::framework_info::capability::Type as Capability;
use mesos_tutorial::proto::mesos::task_status::{Reason, Source};
use mesos_tutorial::proto::mesos::{framework_info, FrameworkInfo, Offer, TaskState, TaskStatus};
use mesos_tutorial::proto::scheduler::{event, Event};
use mesos_tutorial::scheduler::master::MasterConnection;
use mesos_tutorial::scheduler::tasks::{self, TaskPlan};
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a scheduler binary may take for its whole run. A healthy run
/// takes a few seconds; the bound only stops a broken one from hanging.
const BINARY_RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long one step of a library-driven test (say, "wait for
/// `TASK_RUNNING`") may take.
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// The embedded agent's CPUs (`cpus:2` in `local::DEFAULT_RESOURCES`).
const AGENT_CPUS: f64 = 2.0;
/// A no-op task that outlives every test: it ends only when we end it.
const LONG_TASK_MILLIS: u32 = 30_000;

// ---------------------------------------------------------------------------
// The step as a workshop attendee runs it: the scheduler binary.
// ---------------------------------------------------------------------------

#[test]
fn twenty_tasks_finish_and_the_scheduler_exits_cleanly() {
    let log = run_step2_scheduler("twenty-protobuf", &["--tasks", "20"]);
    assert_every_task_ran_and_finished(&log, 20);
    assert_executor_fetched_from_the_framework(&log);
}

#[test]
fn twenty_tasks_finish_over_the_json_scheduler_api() {
    let log = run_step2_scheduler("twenty-json", &["--tasks", "20", "--content-type", "json"]);
    assert_every_task_ran_and_finished(&log, 20);
    assert_executor_fetched_from_the_framework(&log);
}

/// Runs `scheduler --step launch` with `extra` flags, asserts that it exits
/// 0, and returns its log.
fn run_step2_scheduler(label: &str, extra: &[&str]) -> String {
    let dir = TempDir::new(label);
    let mut command = Command::new(env!("CARGO_BIN_EXE_scheduler"));
    command
        .args([
            "--step",
            "launch",
            "--executor",
            env!("CARGO_BIN_EXE_executor"),
        ])
        .args(extra)
        .current_dir(dir.path())
        // The embedded cluster puts its sandboxes under the temporary
        // directory; this one, so that the guard can clean them up.
        .env("TMPDIR", dir.path());
    let (status, log) = run_to_completion(
        &mut command,
        &dir.path().join("scheduler.log"),
        BINARY_RUN_LIMIT,
    );
    assert!(
        status.success(),
        "the scheduler exited with {status}; its log:\n{log}"
    );
    assert!(
        log.contains("All done; the framework is torn down"),
        "no teardown in the log:\n{log}"
    );
    log
}

/// Each of `count` tasks (ids 1 to `count`: none failed, so none was
/// replaced) was reported running and then finished, and nothing else.
fn assert_every_task_ran_and_finished(log: &str, count: usize) {
    let mut states: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (task_id, state) in task_states(log) {
        let task_id = task_id
            .parse()
            .unwrap_or_else(|_| panic!("task id {task_id:?} is not a number"));
        states.entry(task_id).or_default().push(state);
    }
    let expected_ids: BTreeSet<u64> = (1..=count as u64).collect();
    let seen_ids: BTreeSet<u64> = states.keys().copied().collect();
    assert_eq!(
        seen_ids, expected_ids,
        "tasks with updates in the log:\n{log}"
    );
    for (task_id, task_states) in &states {
        // Updates are delivered at least once, so a state may repeat; but
        // the agent sends a task's updates in order.
        let mut distinct = task_states.clone();
        distinct.dedup();
        assert_eq!(
            distinct,
            ["TASK_RUNNING", "TASK_FINISHED"],
            "the states of task {task_id}"
        );
    }
    let line = format!("task {count} is in state TASK_FINISHED");
    assert!(log.contains(&line), "no line {line:?} in the log:\n{log}");
}

/// The executor URL the scheduler served is the one the agent fetched.
fn assert_executor_fetched_from_the_framework(log: &str) {
    let serving = log
        .lines()
        .find(|line| line.contains("Serving the executor"))
        .unwrap_or_else(|| panic!("the scheduler did not serve the executor:\n{log}"));
    let url = serving
        .rsplit_once(" at ")
        .map(|(_, url)| url.trim())
        .unwrap_or_else(|| panic!("no URL in {serving:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "the file server is not on loopback: {url}"
    );
    let fetched = format!("Fetched {url} into the sandbox");
    assert!(
        log.contains(&fetched),
        "the agent never logged {fetched:?}:\n{log}"
    );
}

/// The scheduler's `task N is in state S[: message]` lines, as `(N, S)`.
fn task_states(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" is in state ")?;
            let (_, task_id) = before.rsplit_once("task ")?;
            let state = after.split(':').next().unwrap_or(after).trim();
            Some((task_id.trim().to_string(), state.to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The task life cycle, driven call by call through the library.
// ---------------------------------------------------------------------------

#[test]
fn a_killed_task_ends_in_task_killed() {
    let config = ClusterConfig {
        update_retry_interval: UPDATE_RETRY,
        ..test_cluster_config(None)
    };
    let mut framework = TestFramework::start(config, &[]);
    let deadline = Instant::now() + STEP_LIMIT;
    let offer = framework.first_offer(deadline);
    let task = scheduler_api::one_task(
        &mut framework.plan,
        &offer,
        "long",
        task_data::encode(&task_data::noop(LONG_TASK_MILLIS)),
    );
    framework
        .master
        .launch(&offer, vec![task], 0.0)
        .expect("the master accepts the launch");

    let running = framework.wait_for_update("long", Instant::now() + STEP_LIMIT);
    assert_eq!(running.state(), TaskState::TASK_RUNNING, "{running:?}");

    // KILL is answered with 202 at once; the task's end comes later.
    framework
        .master
        .kill(
            running.task_id.clone().unwrap_or_default(),
            offer.agent_id.clone().unwrap_or_default(),
        )
        .expect("the master accepts the kill");
    let killed = framework.wait_for_update("long", Instant::now() + STEP_LIMIT);
    assert_eq!(killed.state(), TaskState::TASK_KILLED, "{killed:?}");
    assert_eq!(
        killed.source(),
        Source::SOURCE_EXECUTOR,
        "the executor reports the kill: {killed:?}"
    );
    assert!(
        killed.has_uuid(),
        "an executor's update carries a uuid, which was acknowledged: {killed:?}"
    );
    // Both updates were acknowledged, so the agent resends neither: an
    // agent resends an update until it is acknowledged (here every 100 ms).
    let quiet_until = Instant::now() + UPDATE_RETRY * 10;
    while Instant::now() < quiet_until {
        // Heartbeats come every second, so this wakes up in time.
        let event = scheduler_api::next_event(&framework.master).expect("the stream stays up");
        assert_ne!(
            event.type_(),
            event::Type::UPDATE,
            "an acknowledged update came again: {event:?}"
        );
    }

    framework
        .master
        .teardown()
        .expect("the master accepts the teardown");
}

#[test]
fn an_executor_killed_from_outside_fails_its_tasks_and_resources_come_back() {
    // Declared first, so dropped last: after the cluster has stopped.
    let work_dir = TempDir::new("executor-killed");
    let mut framework = TestFramework::start(test_cluster_config(Some(work_dir.path())), &[]);
    let offer = framework.first_offer(Instant::now() + STEP_LIMIT);
    let task = scheduler_api::one_task(
        &mut framework.plan,
        &offer,
        "doomed",
        task_data::encode(&task_data::noop(LONG_TASK_MILLIS)),
    );
    // A long filter keeps the offer's unused remainder away from us.
    framework
        .master
        .launch(&offer, vec![task], 3600.0)
        .expect("the master accepts the launch");
    let running = framework.wait_for_update("doomed", Instant::now() + STEP_LIMIT);
    assert_eq!(running.state(), TaskState::TASK_RUNNING, "{running:?}");

    // The executor runs with its sandbox as working directory, and the
    // sandbox is inside our work dir: that finds it (and the shell the
    // agent started it with).
    let executor_processes = processes_inside(work_dir.path());
    assert!(
        !executor_processes.is_empty(),
        "no executor process runs in {}",
        work_dir.path().display()
    );
    kill_processes(&executor_processes);

    let deadline = Instant::now() + STEP_LIMIT;
    let (mut failed, mut failure, mut full_offer) = (None, None, None);
    while failed.is_none() || failure.is_none() || full_offer.is_none() {
        let event = framework.next_event(deadline, "TASK_FAILED, FAILURE and a full offer");
        match event.type_() {
            event::Type::UPDATE => {
                let status = event.update.status.clone().unwrap_or_default();
                assert_eq!(status.task_id.value(), "doomed", "{status:?}");
                framework.acknowledge(&status);
                if status.state() == TaskState::TASK_FAILED {
                    failed = Some(status);
                }
            }
            event::Type::FAILURE => failure = event.failure.clone().into_option(),
            event::Type::OFFERS => {
                for offer in &event.offers.offers {
                    if tasks::scalar(&offer.resources, "cpus") >= AGENT_CPUS {
                        full_offer = Some(offer.clone());
                    } else {
                        let id = offer.id.clone().unwrap_or_default();
                        framework
                            .master
                            .decline(vec![id], 3600.0)
                            .expect("the master accepts the decline");
                    }
                }
            }
            _ => {}
        }
    }
    let failed = failed.expect("the loop ends only once it is set");
    assert_eq!(
        failed.reason(),
        Reason::REASON_EXECUTOR_TERMINATED,
        "{failed:?}"
    );
    assert_eq!(
        failed.source(),
        Source::SOURCE_AGENT,
        "the agent speaks for the dead executor: {failed:?}"
    );
    assert!(
        failed.has_uuid(),
        "an agent's update is acknowledged like an executor's: {failed:?}"
    );
    let failure = failure.expect("the loop ends only once it is set");
    assert_eq!(
        failure.executor_id.value(),
        tasks::EXECUTOR_ID,
        "{failure:?}"
    );
    assert_eq!(
        failure.agent_id.value(),
        offer.agent_id.value(),
        "{failure:?}"
    );

    // All 2 CPUs are free again, and no executor is listed as running, so
    // the next task brings a new one (and pays for its resources again).
    let full_offer = full_offer.expect("the loop ends only once it is set");
    assert!(full_offer.executor_ids.is_empty(), "{full_offer:?}");
    let task = scheduler_api::one_task(
        &mut framework.plan,
        &full_offer,
        "phoenix",
        task_data::encode(&task_data::noop(0)),
    );
    framework
        .master
        .launch(&full_offer, vec![task], 0.0)
        .expect("the master accepts the launch");
    let deadline = Instant::now() + STEP_LIMIT;
    let mut status = framework.wait_for_update("phoenix", deadline);
    while status.state() != TaskState::TASK_FINISHED {
        assert_eq!(status.state(), TaskState::TASK_RUNNING, "{status:?}");
        status = framework.wait_for_update("phoenix", deadline);
    }

    // Like a Mesos agent, the embedded one gives each executor run its own
    // sandbox: .../frameworks/<id>/executors/<id>/runs/<container id>.
    let runs = work_dir
        .path()
        .join("frameworks")
        .join(framework.master.framework_id())
        .join("executors")
        .join(tasks::EXECUTOR_ID)
        .join("runs");
    let sandboxes = std::fs::read_dir(&runs)
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(
        sandboxes,
        2,
        "one sandbox per executor run in {}",
        runs.display()
    );
    framework
        .master
        .teardown()
        .expect("the master accepts the teardown");
}

#[test]
fn accepting_a_stale_offer_drops_its_tasks() {
    let lost = launch_on_a_declined_offer(&[]);
    assert_eq!(
        lost.state(),
        TaskState::TASK_LOST,
        "not partition-aware: {lost:?}"
    );
}

#[test]
fn a_partition_aware_framework_sees_task_dropped_for_a_stale_offer() {
    let dropped = launch_on_a_declined_offer(&[Capability::PARTITION_AWARE]);
    assert_eq!(
        dropped.state(),
        TaskState::TASK_DROPPED,
        "partition-aware: {dropped:?}"
    );
}

/// Declines an offer, launches a task on it anyway, and returns the update
/// the task gets, after checking what both variants share.
fn launch_on_a_declined_offer(capabilities: &[Capability]) -> TaskStatus {
    let mut framework = TestFramework::start(test_cluster_config(None), capabilities);
    let offer = framework.first_offer(Instant::now() + STEP_LIMIT);
    let stale_id = offer.id.value().to_string();
    framework
        .master
        .decline(vec![offer.id.clone().unwrap_or_default()], 0.0)
        .expect("the master accepts the decline");
    let task = scheduler_api::one_task(
        &mut framework.plan,
        &offer,
        "too-late",
        task_data::encode(&task_data::noop(0)),
    );
    // The call itself is well-formed, so the master answers 202; what is
    // wrong with it comes back as the task's update.
    framework
        .master
        .launch(&offer, vec![task], 0.0)
        .expect("the master accepts the call");

    let deadline = Instant::now() + STEP_LIMIT;
    let (mut update, mut fresh_offer) = (None, None);
    while update.is_none() || fresh_offer.is_none() {
        let event = framework.next_event(deadline, "the stale task's update and a new offer");
        match event.type_() {
            event::Type::UPDATE => {
                let status = event.update.status.clone().unwrap_or_default();
                assert_eq!(status.task_id.value(), "too-late", "{status:?}");
                assert!(
                    update.is_none(),
                    "a second update for a task that never ran: {status:?}"
                );
                // No ACKNOWLEDGE: the master made this update, without a
                // uuid, and nobody is waiting for its acknowledgement.
                update = Some(status);
            }
            event::Type::OFFERS => fresh_offer = event.offers.offers.first().cloned(),
            _ => {}
        }
    }
    let status = update.expect("the loop ends only once it is set");
    assert_eq!(status.reason(), Reason::REASON_INVALID_OFFERS, "{status:?}");
    assert_eq!(status.source(), Source::SOURCE_MASTER, "{status:?}");
    assert!(
        !status.has_uuid(),
        "the master's own updates carry no uuid: {status:?}"
    );

    // The declined resources come back whole, under a new offer id: the
    // stale launch used none of them.
    let fresh_offer = fresh_offer.expect("the loop ends only once it is set");
    assert_ne!(fresh_offer.id.value(), stale_id);
    assert_eq!(
        tasks::scalar(&fresh_offer.resources, "cpus"),
        AGENT_CPUS,
        "{fresh_offer:?}"
    );
    framework
        .master
        .teardown()
        .expect("the master accepts the teardown");
    status
}

// ---------------------------------------------------------------------------
// A cluster in its own process.
// ---------------------------------------------------------------------------

#[test]
fn the_standalone_cluster_serves_a_separate_scheduler() {
    let dir = TempDir::new("standalone");
    let work_dir = dir.path().join("work");
    let cluster_log = dir.path().join("mesos-local.log");
    let (master_port, agent_port) = (free_port(), free_port());
    let mut cluster = ChildGuard::spawn(
        Command::new(env!("CARGO_BIN_EXE_mesos-local"))
            .args([
                "--port",
                &master_port.to_string(),
                "--agent-port",
                &agent_port.to_string(),
            ])
            .arg("--work-dir")
            .arg(&work_dir)
            .args(["--heartbeat-interval", "1"]),
        &cluster_log,
        "mesos-local",
    );
    cluster.wait_for_log_line(&cluster_log, "Ready.", Instant::now() + STEP_LIMIT);

    let master = format!("127.0.0.1:{master_port}");
    let mut scheduler = Command::new(env!("CARGO_BIN_EXE_scheduler"));
    scheduler
        .args(["--master", &master, "--step", "launch", "--tasks", "5"])
        .args(["--executor", env!("CARGO_BIN_EXE_executor")])
        .current_dir(dir.path());
    let (status, log) = run_to_completion(
        &mut scheduler,
        &dir.path().join("scheduler.log"),
        BINARY_RUN_LIMIT,
    );
    assert!(
        status.success(),
        "the scheduler exited with {status}; its log:\n{log}"
    );
    assert!(
        !log.contains("Started an embedded Mesos master"),
        "it used its own cluster:\n{log}"
    );
    assert_every_task_ran_and_finished(&log, 5);
    let cluster_text = std::fs::read_to_string(&cluster_log).unwrap_or_default();
    assert!(
        cluster_text
            .lines()
            .any(|line| line.contains("Framework ") && line.contains(" subscribed")),
        "mesos-local never saw the framework:\n{cluster_text}"
    );
    assert!(
        cluster_text.contains("asked to be torn down"),
        "mesos-local never saw the teardown:\n{cluster_text}"
    );

    // The teardown shuts the executor down. Killing mesos-local skips its
    // cleanup, so wait for the executor to be gone first (the guards kill
    // whatever remains if it is not).
    let deadline = Instant::now() + STEP_LIMIT;
    while !processes_inside(&work_dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processes_inside(&work_dir).is_empty(),
        "the executor outlived the teardown"
    );
    cluster.assert_running();
}

// ---------------------------------------------------------------------------
// Test plumbing: a reader may skip from here on.
// ---------------------------------------------------------------------------

/// A cluster that sends heartbeats every second, so that every wait for an
/// event returns at least that often and can check its deadline.
/// How soon the agent resends an update that is not acknowledged, where a
/// test watches for resends (Mesos: 10 s).
const UPDATE_RETRY: Duration = Duration::from_millis(100);

fn test_cluster_config(work_dir: Option<&Path>) -> ClusterConfig {
    ClusterConfig {
        heartbeat_interval: Duration::from_secs(1),
        work_dir: work_dir.map(Path::to_path_buf),
        ..ClusterConfig::default()
    }
}

/// A scheduler driven by hand: a cluster, the file server that serves the
/// real executor binary, and a subscribed connection to the master. Fields
/// drop in order, so the cluster (and its executors) stops last.
struct TestFramework {
    master: MasterConnection,
    plan: TaskPlan,
    _server: FileServer,
    _cluster: Cluster,
}

impl TestFramework {
    fn start(config: ClusterConfig, capabilities: &[Capability]) -> TestFramework {
        let cluster = Cluster::start(config).expect("the embedded cluster starts on 127.0.0.1");
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1")
            .expect("the file server starts on 127.0.0.1");
        let executor_url = server
            .serve_file("executor", Path::new(env!("CARGO_BIN_EXE_executor")))
            .expect("`executor` is a valid file name");
        let mut info = FrameworkInfo::new();
        info.set_user(std::env::var("USER").unwrap_or_else(|_| "root".into()));
        info.set_name("step 2 test".into());
        info.roles.push("*".into());
        for kind in [Capability::MULTI_ROLE].iter().chain(capabilities) {
            let mut capability = framework_info::Capability::new();
            capability.set_type(*kind);
            info.capabilities.push(capability);
        }
        let master = scheduler_api::subscribe(cluster.master_address(), info)
            .expect("the embedded master takes the subscription");
        let mut framework = TestFramework {
            master,
            plan: TaskPlan::new(&executor_url, 1.0, 128.0),
            _server: server,
            _cluster: cluster,
        };
        let event = framework.next_event(Instant::now() + STEP_LIMIT, "SUBSCRIBED");
        assert_eq!(event.type_(), event::Type::SUBSCRIBED, "{event:?}");
        let subscribed = &event.subscribed;
        let framework_id = subscribed.framework_id.clone().unwrap_or_default();
        framework
            .master
            .subscribed(framework_id, subscribed.heartbeat_interval_seconds());
        framework
    }

    /// The next event other than a heartbeat. Heartbeats arrive every
    /// second, so this notices a passed deadline within about a second.
    fn next_event(&self, deadline: Instant, waiting_for: &str) -> Event {
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {waiting_for}"
            );
            let event = scheduler_api::next_event(&self.master).unwrap_or_else(|err| {
                panic!("the event stream failed while waiting for {waiting_for}: {err}")
            });
            if event.type_() != event::Type::HEARTBEAT {
                return event;
            }
        }
    }

    /// The first offer. The cluster has one agent, so it holds everything.
    fn first_offer(&self, deadline: Instant) -> Offer {
        loop {
            let event = self.next_event(deadline, "an offer");
            if let Some(offer) = event.offers.offers.first() {
                return offer.clone();
            }
        }
    }

    /// The next update for `task_id`, acknowledged if it has a uuid, as a
    /// scheduler must. Offers that arrive meanwhile are simply kept: an
    /// unanswered offer stays ours until the teardown.
    fn wait_for_update(&self, task_id: &str, deadline: Instant) -> TaskStatus {
        loop {
            let event = self.next_event(deadline, &format!("an update for task {task_id}"));
            if event.type_() == event::Type::UPDATE {
                let status = event.update.status.clone().unwrap_or_default();
                self.acknowledge(&status);
                if status.task_id.value() == task_id {
                    return status;
                }
            }
        }
    }

    fn acknowledge(&self, status: &TaskStatus) {
        if status.has_uuid() {
            self.master
                .acknowledge(status)
                .expect("the master accepts the acknowledgement");
        }
    }
}

/// A child process that is killed if the test ends before it does.
struct ChildGuard {
    child: Child,
    what: &'static str,
}

impl ChildGuard {
    /// Starts `command` with its stdout and stderr (where `env_logger`
    /// writes) going to `log`. A file, unlike a pipe, never fills up and
    /// blocks the child.
    fn spawn(command: &mut Command, log: &Path, what: &'static str) -> ChildGuard {
        let file = File::create(log)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log.display()));
        let stdout = file
            .try_clone()
            .expect("a log file handle can be duplicated");
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {what}: {err}"));
        ChildGuard { child, what }
    }

    /// Waits for the child to exit, polling until `deadline`.
    fn wait_until(&mut self, deadline: Instant, log: &Path) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                return status;
            }
            if Instant::now() >= deadline {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                panic!("{} did not exit in time; its log:\n{text}", self.what);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the child's log contains `line`; fails if the child exits
    /// or the deadline passes first.
    fn wait_for_log_line(&mut self, log: &Path, line: &str, deadline: Instant) {
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains(line) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                panic!(
                    "{} exited with {status} before logging {line:?}; its log:\n{text}",
                    self.what
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} never logged {line:?}; its log:\n{text}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("the child can be polled");
        assert!(
            status.is_none(),
            "{} exited early with {status:?}",
            self.what
        );
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `command` to its end (killing it at `limit`) and returns its exit
/// status and log.
fn run_to_completion(command: &mut Command, log: &Path, limit: Duration) -> (ExitStatus, String) {
    let mut child = ChildGuard::spawn(command, log, "the scheduler");
    let status = child.wait_until(Instant::now() + limit, log);
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", log.display()));
    (status, text)
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("the OS has a free port on 127.0.0.1");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}
