//! What steps 1 and 2 teach, checked where it matters: on the wire.
//!
//! The real `scheduler` binary talks to a fake master
//! (`tests/common/fake_peer.rs`) that writes the events and records every
//! call. The scheduler handles events one at a time and sends each call
//! before it reads the next event, so the calls that one event causes all
//! arrive before those of the next: each test ends its script with an event
//! (mostly an offer) and reads every call up to the answer to it. No test waits to see that a
//! call does *not* come; what the scheduler sends before that answer is all
//! it sent.
//!
//! - Step 1: every offer is declined with the `--refuse-seconds` filter (a
//!   `DECLINE` without one leaves Mesos's default of 5 s).
//! - Step 2: the `ACCEPT` that launches tasks carries the same filter, for
//!   what the tasks leave unused.
//! - Every update from an agent (it has a uuid) is acknowledged, and the
//!   master's own updates (no uuid) are not: the agent resends an update
//!   until it is acknowledged, and holds back the task's next one.
//! - A framework with nothing to launch says so (`SUPPRESS`), or the master
//!   keeps offering it resources; it asks again (`REVIVE`) when work comes
//!   back.
//! - A framework whose work is done says so (`TEARDOWN`): the master then
//!   kills what still runs and forgets it.
//! - Step 3: the results page shows the batch while it runs; an image is
//!   no longer wanted offers for once its task is launched, and a launch
//!   the master dropped (the offer was gone) does not use up an attempt;
//!   an image is done once its task finished and its result arrived.
//! - Step 4: a scheduler whose connection broke subscribes again as the same
//!   framework (within `--failover-timeout`) and then reconciles, since
//!   updates may have been lost meanwhile; answers about its own running
//!   tasks leave them be, a task it never launched is killed. Without a
//!   failover timeout it subscribes as a new framework and launches the lost
//!   work again. A launch the master refused (`503`) goes back in the queue.
//!   A framework taken over from an earlier process shuts down that
//!   process's executor and uses fresh task ids.
//! - `--max-failures` tasks failing in a row end the run.

mod common;

use common::fake_peer::{
    assert_exits, error_event, is_scheduler_subscribe, scheduler_call, subscribed, EventStream,
    FakePeer, Process,
};
use common::temp_dir::TempDir;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::mesos::task_status::{Reason, Source};
use mesos_tutorial::proto::mesos::{
    value, ExecutorID, Offer, Resource, TaskInfo, TaskState, TaskStatus,
};
use mesos_tutorial::proto::scheduler::{call, event, Call, Event};
use mesos_tutorial::task_data;
use std::process::Command;
use std::time::Duration;

const FRAMEWORK: &str = "framework-wire";

/// Step 2, until one task finished, with the real executor binary.
const STEP_2_ONE_TASK: &[&str] = &[
    "--step",
    "launch",
    "--tasks",
    "1",
    "--executor",
    env!("CARGO_BIN_EXE_executor"),
];

/// How long a call the script asks for may take to come, once subscribed:
/// a call answers an event within milliseconds, so a call left out fails
/// the test within seconds.
const CALL_LIMIT: Duration = Duration::from_secs(5);

/// Not Mesos's default of 5, so that a filter left out shows.
const REFUSE_SECONDS: f64 = 7.5;

/// The scheduler, subscribed to a fake master (which has just sent
/// `SUBSCRIBED`, unless the test asked it not to).
struct Subscribed {
    /// Killed first when a test fails: the fake master waits for its
    /// connections to end.
    scheduler: Process,
    events: EventStream,
    master: FakePeer,
    content_type: ContentType,
    /// The framework id the master gave (`FRAMEWORK`, unless a test
    /// subscribes it as a new framework): every call must name it.
    framework: String,
    /// The stream id of the current subscription (`stream-1`, then
    /// `stream-2`...): every call must name it.
    stream_id: String,
    /// The scheduler's temporary files (its file server's, in step 2).
    _tmp: TempDir,
}

impl Subscribed {
    /// The scheduler, once the master has sent `SUBSCRIBED`.
    fn start(content_type: ContentType, args: &[&str]) -> Subscribed {
        let mut run = Subscribed::subscribing(content_type, args);
        run.events.send(&subscribed(FRAMEWORK));
        run
    }

    /// The scheduler, once it has called `SUBSCRIBE` and before the master
    /// answers with `SUBSCRIBED`.
    fn subscribing(content_type: ContentType, args: &[&str]) -> Subscribed {
        let master = FakePeer::start(content_type, is_scheduler_subscribe);
        let tmp = TempDir::new("wire-scheduler");
        let mut scheduler = Process::start(
            Command::new(env!("CARGO_BIN_EXE_scheduler"))
                .args(["--master", &master.address.to_string()])
                .args(["--content-type", &content_type.to_string()])
                .args(["--refuse-seconds", &REFUSE_SECONDS.to_string()])
                .args(args)
                .current_dir(tmp.path())
                .env("TMPDIR", tmp.path())
                .env("RUST_LOG", "info"),
        );
        let first = master.next_call(&mut scheduler);
        let call = scheduler_call(content_type, &first.body);
        assert_eq!(call.type_(), call::Type::SUBSCRIBE);
        let events = first.events.expect("SUBSCRIBE gets an event stream");
        Subscribed {
            scheduler,
            events,
            master,
            content_type,
            framework: FRAMEWORK.into(),
            stream_id: "stream-1".into(),
            _tmp: tmp,
        }
    }

    /// Every call up to and including the first of type `last`.
    fn calls_until(&mut self, last: call::Type) -> Vec<Call> {
        self.calls_until_one_of(&[last])
    }

    /// Every call up to and including the first of one of these types.
    fn calls_until_one_of(&mut self, last: &[call::Type]) -> Vec<Call> {
        let mut calls = Vec::new();
        loop {
            let received = self
                .master
                .next_call_within(&mut self.scheduler, CALL_LIMIT);
            let call = scheduler_call(self.content_type, &received.body);
            assert_eq!(call.framework_id.value(), self.framework, "{call:?}");
            assert_eq!(received.stream_id, Some(self.stream_id.clone()));
            let done = last.contains(&call.type_());
            calls.push(call);
            if done {
                return calls;
            }
        }
    }

    /// Breaks the event stream (a record whose length is not a number),
    /// then expects the scheduler to subscribe again ([`Self::resubscribed`]).
    fn break_stream_and_resubscribe(&mut self, new_id: Option<&str>) {
        self.events.send_raw(b"12x\n{}");
        self.resubscribed(new_id);
    }

    /// Expects the scheduler to subscribe again: naming the id the master
    /// gave it, so that the master keeps its framework, or (`new_id`) as a
    /// new framework. Answers with `SUBSCRIBED` on a new stream.
    fn resubscribed(&mut self, new_id: Option<&str>) {
        let again = self
            .master
            .next_call_within(&mut self.scheduler, CALL_LIMIT * 4);
        let call = scheduler_call(self.content_type, &again.body);
        assert_eq!(call.type_(), call::Type::SUBSCRIBE);
        match new_id {
            None => assert_eq!(call.framework_id.value(), self.framework, "{call:?}"),
            Some(id) => {
                assert!(call.framework_id.is_none(), "a new framework: {call:?}");
                self.framework = id.to_string();
            }
        }
        self.events = again.events.expect("a second event stream");
        self.events.send(&subscribed(&self.framework));
        self.stream_id = "stream-2".into();
    }

    /// The run's only task runs and finishes: both updates are
    /// acknowledged, then the framework is torn down (an offer sent after
    /// them would be used or declined by a run that goes on); the master
    /// ends the stream and the scheduler exits 0, having said `said`.
    fn finish_only_task(mut self, task_id: &str, said: &str) {
        for (state, byte) in [(TaskState::TASK_RUNNING, 1), (TaskState::TASK_FINISHED, 2)] {
            let mut status = status(task_id, state, Source::SOURCE_EXECUTOR);
            status.set_uuid(vec![byte; 16]);
            self.events.send(&update(status));
        }
        self.events.send(&offers("offer-after", 2.0, 1024.0));
        let last = [
            call::Type::TEARDOWN,
            call::Type::DECLINE,
            call::Type::ACCEPT,
        ];
        let calls = self.calls_until_one_of(&last);
        assert_eq!(
            call_types(&calls),
            [
                call::Type::ACKNOWLEDGE,
                call::Type::ACKNOWLEDGE,
                call::Type::TEARDOWN
            ],
            "the work is done: both updates acknowledged, then the framework ends"
        );
        self.events.cut();
        let stderr = assert_exits(self.scheduler, 0);
        assert!(stderr.contains(said), "{stderr}");
    }

    /// The master removes the framework: the scheduler stops with exit
    /// code 2, and takes its file server and temporary files with it.
    fn stop(mut self) {
        self.events.send(&error_event("the test is over"));
        let stderr = assert_exits(self.scheduler, 2);
        assert!(stderr.contains("the test is over"), "{stderr}");
    }
}

/// The types of these calls, in order.
fn call_types(calls: &[Call]) -> Vec<call::Type> {
    calls.iter().map(Call::type_).collect()
}

fn offers(offer_id: &str, cpus: f64, mem: f64) -> Event {
    let mut offer = Offer::new();
    offer.id.mut_or_insert_default().set_value(offer_id.into());
    offer
        .framework_id
        .mut_or_insert_default()
        .set_value(FRAMEWORK.into());
    offer
        .agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    offer.set_hostname("127.0.0.1".into());
    offer.resources = vec![scalar("cpus", cpus), scalar("mem", mem)];
    let mut event = Event::new();
    event.set_type(event::Type::OFFERS);
    event.offers.mut_or_insert_default().offers.push(offer);
    event
}

fn scalar(name: &str, amount: f64) -> Resource {
    let mut resource = Resource::new();
    resource.set_name(name.into());
    resource.set_type(value::Type::SCALAR);
    resource.scalar.mut_or_insert_default().set_value(amount);
    resource
        .allocation_info
        .mut_or_insert_default()
        .set_role("*".into());
    resource
}

fn update(status: TaskStatus) -> Event {
    let mut event = Event::new();
    event.set_type(event::Type::UPDATE);
    event.update.mut_or_insert_default().status = Some(status).into();
    event
}

fn status(task: &str, state: TaskState, source: Source) -> TaskStatus {
    let mut status = TaskStatus::new();
    status
        .task_id
        .mut_or_insert_default()
        .set_value(task.into());
    status
        .agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    status.set_state(state);
    status.set_source(source);
    status
}

/// An event that does not decode, in a record that is framed well, is
/// skipped: the stream goes on, and so does the framework (no
/// re-subscription).
#[test]
fn an_undecodable_event_is_skipped_and_the_stream_goes_on() {
    let mut run = Subscribed::start(ContentType::Protobuf, &["--step", "register"]);
    // Field 1 with a length of 5 and no bytes: a truncated message.
    run.events.send_raw(b"2\n\x0a\x05");
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::DECLINE);
    assert_eq!(call_types(&calls), [call::Type::DECLINE]);
    run.stop();
}

fn offers_are_declined_with_the_configured_filter(content_type: ContentType) {
    let mut run = Subscribed::start(content_type, &["--step", "register"]);
    for offer_id in ["offer-1", "offer-2"] {
        run.events.send(&offers(offer_id, 2.0, 1024.0));
        let calls = run.calls_until(call::Type::DECLINE);
        assert_eq!(calls.len(), 1, "only the DECLINE: {calls:?}");
        let decline = &calls[0].decline;
        assert_eq!(decline.offer_ids.len(), 1);
        assert_eq!(decline.offer_ids[0].value(), offer_id);
        assert!(
            decline.filters.has_refuse_seconds(),
            "a DECLINE without a filter leaves Mesos's default of 5 s: {decline:?}"
        );
        assert_eq!(decline.filters.refuse_seconds(), REFUSE_SECONDS);
    }
    run.stop();
}

/// Ctrl+C leaves a framework to the master only with a failover timeout
/// *and* an id file for a later process to take it over with; a failover
/// timeout alone would leave tasks nobody can come back for, so the
/// framework is torn down.
#[cfg(unix)]
#[test]
fn ctrl_c_tears_down_a_framework_with_a_failover_timeout_but_no_id_file() {
    let run = Subscribed::start(
        ContentType::Protobuf,
        &["--step", "register", "--failover-timeout", "60"],
    );
    interrupt_and_expect_teardown(run);
}

/// The same with an id file but no failover timeout: the master would end
/// the framework the moment the scheduler leaves.
#[cfg(unix)]
#[test]
fn ctrl_c_tears_down_a_framework_with_an_id_file_but_no_failover_timeout() {
    let ids = TempDir::new("wire-id");
    let id_file = ids.path().join("framework-id").display().to_string();
    let run = Subscribed::start(
        ContentType::Protobuf,
        &["--step", "register", "--framework-id-file", &id_file],
    );
    interrupt_and_expect_teardown(run);
    // A later run starts a new framework.
    assert!(
        !std::path::Path::new(&id_file).exists(),
        "{id_file} is left"
    );
}

/// Ctrl+C before `SUBSCRIBED`: no framework id to name in a `TEARDOWN`,
/// so none is sent, and the run ends as after any Ctrl+C (it once
/// panicked building a call without its framework id).
#[cfg(unix)]
#[test]
fn ctrl_c_before_subscribed_ends_the_run_without_a_call() {
    let run = Subscribed::subscribing(ContentType::Protobuf, &["--step", "register"]);
    assert!(common::processes::interrupt(run.scheduler.child.id()));
    let stderr = assert_exits(run.scheduler, 130);
    assert!(stderr.contains("Not sending TEARDOWN"), "{stderr}");
    run.events.cut();
}

/// Step 1 declines an offer, which shows that `SUBSCRIBED` was read, then
/// gets Ctrl+C and must tear the framework down.
#[cfg(unix)]
fn interrupt_and_expect_teardown(mut run: Subscribed) {
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.calls_until(call::Type::DECLINE);
    interrupted_with_teardown(run);
}

/// Ctrl+C: the only call is `TEARDOWN`, and the scheduler exits 130; what it
/// logged, returned.
#[cfg(unix)]
fn interrupted_with_teardown(mut run: Subscribed) -> String {
    assert!(common::processes::interrupt(run.scheduler.child.id()));
    let calls = run.calls_until(call::Type::TEARDOWN);
    assert_eq!(call_types(&calls), [call::Type::TEARDOWN]);
    run.events.cut();
    let stderr = assert_exits(run.scheduler, 130);
    assert!(stderr.contains("interrupted: tearing down"), "{stderr}");
    stderr
}

#[test]
fn step1_declines_each_offer_with_the_refuse_seconds_filter() {
    offers_are_declined_with_the_configured_filter(ContentType::Protobuf);
}

#[test]
fn step1_declines_each_offer_with_the_refuse_seconds_filter_in_json() {
    offers_are_declined_with_the_configured_filter(ContentType::Json);
}

#[test]
fn updates_from_the_agent_are_acknowledged_and_the_masters_are_not() {
    let mut run = Subscribed::start(ContentType::Protobuf, &["--step", "register"]);
    let uuid: Vec<u8> = (1..=16).collect();
    let mut from_executor = status("task-1", TaskState::TASK_RUNNING, Source::SOURCE_EXECUTOR);
    from_executor.set_uuid(uuid.clone());
    run.events.send(&update(from_executor));
    // What the master says itself has no uuid: here, a launch it dropped.
    let mut from_master = status("task-2", TaskState::TASK_DROPPED, Source::SOURCE_MASTER);
    from_master.set_reason(Reason::REASON_INVALID_OFFERS);
    run.events.send(&update(from_master));
    let mut from_agent = status("task-3", TaskState::TASK_FAILED, Source::SOURCE_AGENT);
    from_agent.set_uuid(vec![7; 16]);
    run.events.send(&update(from_agent));
    run.events.send(&offers("offer-1", 2.0, 1024.0));

    let calls = run.calls_until(call::Type::DECLINE);
    let acknowledged: Vec<(&str, &str, &[u8])> = calls
        .iter()
        .filter(|call| call.type_() == call::Type::ACKNOWLEDGE)
        .map(|call| {
            let ack = &call.acknowledge;
            (ack.task_id.value(), ack.agent_id.value(), ack.uuid())
        })
        .collect();
    assert_eq!(
        acknowledged,
        vec![
            ("task-1", "agent-1", &uuid[..]),
            ("task-3", "agent-1", &[7; 16][..]),
        ],
        "each update with a uuid is acknowledged, in order, and no other: {calls:?}"
    );
    assert_eq!(
        calls.len(),
        3,
        "two ACKNOWLEDGEs, then the DECLINE: {calls:?}"
    );
    run.stop();
}

#[test]
fn step2_launches_with_the_refuse_seconds_filter_on_what_is_left() {
    let mut run = Subscribed::start(ContentType::Protobuf, STEP_2_ONE_TASK);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::ACCEPT);
    assert_eq!(calls.len(), 1, "only the ACCEPT: {calls:?}");
    let accept = &calls[0].accept;
    assert_eq!(accept.offer_ids[0].value(), "offer-1");
    assert_eq!(accept.operations.len(), 1);
    assert_eq!(accept.operations[0].launch.task_infos.len(), 1);
    assert!(
        accept.filters.has_refuse_seconds(),
        "an ACCEPT without a filter leaves Mesos's default of 5 s on the rest: {accept:?}"
    );
    assert_eq!(accept.filters.refuse_seconds(), REFUSE_SECONDS);
    run.stop();
}

#[test]
fn offers_are_suppressed_while_no_task_waits_and_revived_for_a_retry() {
    let mut run = Subscribed::start(ContentType::Protobuf, STEP_2_ONE_TASK);
    // Each offer ends with a call we wait for, so what came before it is
    // all that was sent: no test here waits for a call that never comes.
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::DECLINE);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [
            call::Type::ACCEPT,
            call::Type::SUPPRESS,
            call::Type::DECLINE
        ],
        "the one task is launched: no more offers wanted"
    );
    let task_id = calls[0].accept.operations[0].launch.task_infos[0]
        .task_id
        .value()
        .to_string();
    // The task fails: step 2 launches another, so it wants offers again.
    let mut failed = status(&task_id, TaskState::TASK_FAILED, Source::SOURCE_EXECUTOR);
    failed.set_uuid(vec![3; 16]);
    run.events.send(&update(failed));
    run.events.send(&offers("offer-3", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::ACCEPT);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [
            call::Type::ACKNOWLEDGE,
            call::Type::REVIVE,
            call::Type::ACCEPT
        ]
    );
    run.stop();
}

#[test]
fn the_framework_is_torn_down_once_its_tasks_finished() {
    let mut run = Subscribed::start(ContentType::Protobuf, STEP_2_ONE_TASK);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    let accept = run.calls_until(call::Type::SUPPRESS);
    let task_id = accept[0].accept.operations[0].launch.task_infos[0]
        .task_id
        .value()
        .to_string();
    // `--tasks 1`: this is all the work.
    run.finish_only_task(&task_id, "1 task finished");
}

#[test]
fn a_lost_connection_is_resubscribed_as_the_same_framework_and_reconciled() {
    let mut run = Subscribed::start(
        ContentType::Protobuf,
        &["--step", "register", "--failover-timeout", "60"],
    );
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.calls_until(call::Type::DECLINE);
    run.break_stream_and_resubscribe(None);
    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::DECLINE);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [call::Type::RECONCILE, call::Type::DECLINE],
        "back as the same framework, it asks what it missed: {calls:?}"
    );
    assert!(
        calls[0].reconcile.tasks.is_empty(),
        "step 1 knows no task: it asks about all (implicit reconciliation)"
    );
    run.stop();
}

/// An answer to reconciliation: the master's word, without a uuid.
fn reconciled(task: &str, state: TaskState) -> Event {
    let mut status = status(task, state, Source::SOURCE_MASTER);
    status.set_reason(Reason::REASON_RECONCILIATION);
    update(status)
}

/// A step's arguments, then `extra`, and the executor binary unless the
/// step names one.
fn with_executor<'a>(step: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args: Vec<&str> = step.iter().map(String::as_str).collect();
    args.extend(extra);
    if !args.contains(&"--executor") {
        args.extend(["--executor", env!("CARGO_BIN_EXE_executor")]);
    }
    args
}

/// Step 3's arguments for a batch of `count` small images in `dir`, one
/// attempt each.
fn step3_images(dir: &TempDir, count: usize) -> Vec<String> {
    let mut args = vec!["--max-attempts".to_string(), "1".into()];
    for number in 1..=count {
        let path = dir.path().join(format!("wire-picture-{number}.png"));
        image::RgbImage::new(4, 4)
            .save(&path)
            .expect("write a test image");
        args.push("--images".into());
        args.push(path.display().to_string());
    }
    let output = dir.path().join("output").display().to_string();
    args.extend(["--output-dir".to_string(), output]);
    args.extend([
        "--executor".to_string(),
        env!("CARGO_BIN_EXE_executor").into(),
    ]);
    args
}

#[test]
fn after_resubscribing_step2_asks_about_its_tasks_and_kills_only_strangers() {
    let args = ["--step", "launch", "--tasks", "2"];
    reconciles_its_tasks_and_kills_only_strangers(&args.map(String::from));
}

#[test]
fn after_resubscribing_step3_asks_about_its_tasks_and_kills_only_strangers() {
    let images = TempDir::new("wire-images");
    reconciles_its_tasks_and_kills_only_strangers(&step3_images(&images, 2));
}

/// Two tasks run on one offer when the connection breaks.
fn reconciles_its_tasks_and_kills_only_strangers(step: &[String]) {
    let args = with_executor(step, &["--failover-timeout", "60"]);
    let mut run = Subscribed::start(ContentType::Protobuf, &args);
    run.events.send(&offers("offer-1", 4.0, 4096.0));
    let calls = run.calls_until(call::Type::SUPPRESS);
    let mut launched: Vec<String> = calls[0].accept.operations[0]
        .launch
        .task_infos
        .iter()
        .map(|task| task.task_id.value().to_string())
        .collect();
    launched.sort();
    assert_eq!(launched.len(), 2, "both tasks in one offer: {calls:?}");

    run.break_stream_and_resubscribe(None);
    // Explicit reconciliation names each running task with its agent (the
    // master then answers for the agent), then implicit asks about all.
    let calls = run.calls_until(call::Type::RECONCILE);
    let mut asked: Vec<(String, String)> = calls[0]
        .reconcile
        .tasks
        .iter()
        .map(|task| {
            let agent = task.agent_id.as_ref().map(|id| id.value().to_string());
            (task.task_id.value().to_string(), agent.unwrap_or_default())
        })
        .collect();
    asked.sort();
    let expected: Vec<(String, String)> = launched
        .iter()
        .map(|task| (task.clone(), "agent-1".to_string()))
        .collect();
    assert_eq!(asked, expected, "the tasks it launched: {calls:?}");
    let calls = run.calls_until(call::Type::RECONCILE);
    assert!(calls[0].reconcile.tasks.is_empty(), "{calls:?}");

    // The master answers: our two tasks still run, and a task we never
    // launched (an earlier scheduler process's) runs too. Only that one is
    // killed: its executor reports to a file server that is gone.
    for task in &launched {
        run.events.send(&reconciled(task, TaskState::TASK_RUNNING));
    }
    run.events
        .send(&reconciled("stranger", TaskState::TASK_RUNNING));
    let calls = run.calls_until(call::Type::KILL);
    let killed: Vec<(&str, &str)> = calls
        .iter()
        .filter(|call| call.type_() == call::Type::KILL)
        .map(|call| (call.kill.task_id.value(), call.kill.agent_id.value()))
        .collect();
    assert_eq!(
        killed,
        [("stranger", "agent-1")],
        "answers carry no uuid: nothing to acknowledge, and our tasks live: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|call| call.type_() != call::Type::ACKNOWLEDGE),
        "{calls:?}"
    );
    run.stop();
}

#[test]
fn without_a_failover_timeout_step2_subscribes_anew_and_replaces_its_lost_tasks() {
    subscribes_anew_and_replaces_its_lost_task(STEP_2_ONE_TASK);
}

/// With one attempt per image: the lost task's attempt is not counted.
#[test]
fn without_a_failover_timeout_step3_subscribes_anew_and_replaces_its_lost_tasks() {
    let images = TempDir::new("wire-images");
    let args = step3_images(&images, 1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    subscribes_anew_and_replaces_its_lost_task(&args);
}

fn subscribes_anew_and_replaces_its_lost_task(args: &[&str]) {
    let mut run = Subscribed::start(ContentType::Protobuf, args);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.calls_until(call::Type::SUPPRESS);
    // Without a failover timeout (Mesos's default of 0) the master removes
    // a framework the moment its scheduler disconnects, and kills its
    // tasks: the scheduler subscribes as a new framework, and launches the
    // lost task's work again.
    run.break_stream_and_resubscribe(Some("framework-new"));
    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until_one_of(&[call::Type::ACCEPT, call::Type::DECLINE]);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [call::Type::ACCEPT],
        "a new framework has nothing to reconcile, and wants the task again"
    );
    let launched = &calls[0].accept.operations[0].launch.task_infos;
    assert_eq!(launched.len(), 1, "{calls:?}");

    run.stop();
}

#[test]
fn step3_suppresses_while_its_image_runs_and_a_dropped_launch_costs_no_attempt() {
    let images = TempDir::new("wire-images");
    let args = step3_images(&images, 1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Subscribed::start(ContentType::Protobuf, &args);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::DECLINE);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [
            call::Type::ACCEPT,
            call::Type::SUPPRESS,
            call::Type::DECLINE
        ],
        "the only image runs: no more offers wanted"
    );
    let task = &calls[0].accept.operations[0].launch.task_infos[0];
    let task_id = task.task_id.value().to_string();
    let data = task_data::decode(task.data()).expect("the task's data");
    assert_eq!(data.noop_millis, 0, "without --task-millis nothing waits");

    // The results page (served by the file server that serves the
    // executor) shows the batch while it runs.
    let executor_url = task.executor.command.uris[0].value();
    let files = executor_url.find("/files/").expect("the executor's URL");
    let page_url = format!("{}/", &executor_url[..files]);
    let page = ureq::get(&page_url)
        .call()
        .expect("the results page answers")
        .into_body()
        .read_to_string()
        .expect("the page is text");
    assert!(page.contains("wire-picture-1"), "{page}");

    // The master drops the launch: the offer was gone. The task never ran,
    // so even with `--max-attempts 1` the image is queued again.
    let mut dropped = status(&task_id, TaskState::TASK_DROPPED, Source::SOURCE_MASTER);
    dropped.set_reason(Reason::REASON_INVALID_OFFERS);
    run.events.send(&update(dropped));
    let calls = run.calls_until_one_of(&[call::Type::REVIVE, call::Type::TEARDOWN]);
    let kinds = call_types(&calls);
    assert_eq!(kinds, [call::Type::REVIVE], "the image waits again");
    run.events.send(&offers("offer-3", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::ACCEPT);
    let again = &calls[0].accept.operations[0].launch.task_infos;
    assert_eq!(again.len(), 1, "{calls:?}");
    run.stop();
}

/// `--task-millis` reaches step 3's tasks too: the executor waits that
/// long before the image, so that a reader can watch the task run.
#[test]
fn step3_task_millis_travels_in_the_tasks_data() {
    let images = TempDir::new("wire-images");
    let mut args = step3_images(&images, 1);
    args.extend(["--task-millis".to_string(), "1500".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Subscribed::start(ContentType::Protobuf, &args);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::SUPPRESS);
    let task = &calls[0].accept.operations[0].launch.task_infos[0];
    let data = task_data::decode(task.data()).expect("the task's data");
    assert!(task_data::is_image(&data), "{data:?}");
    assert_eq!(data.noop_millis, 1500);
    run.stop();
}

/// Step 3's rule for the end: an image is done once its task finished
/// *and* its result arrived; then the batch is done and torn down.
/// What the executor would do: upload the result where `TaskInfo.data`
/// says, with its token.
fn upload_result(task: &TaskInfo) {
    let data = task_data::decode(task.data()).expect("the task's data");
    let mut result = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(4, 4)
        .write_to(&mut result, image::ImageFormat::Png)
        .expect("encode a result");
    let stored = ureq::post(format!("{}.png", data.upload_url))
        .header("X-Upload-Token", &data.upload_token)
        .header("Content-Type", "image/png")
        .send(&result.into_inner()[..])
        .expect("the file server takes the upload");
    assert_eq!(stored.status(), 201);
}

/// Step 3 with one image, launched on the first offer, whose result the
/// test then uploads as the executor would; and the task's id. The folder
/// of the image lives as long as the run needs it.
fn one_image_uploaded() -> (Subscribed, TempDir, String) {
    let images = TempDir::new("wire-images");
    let args = step3_images(&images, 1);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = Subscribed::start(ContentType::Protobuf, &args);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::SUPPRESS);
    let task = &calls[0].accept.operations[0].launch.task_infos[0];
    upload_result(task);
    (run, images, task.task_id.value().to_string())
}

#[test]
fn step3_is_done_once_the_result_arrived_and_the_task_finished() {
    let (run, _images, task_id) = one_image_uploaded();
    // The only image is done: the batch ends.
    run.finish_only_task(&task_id, "1/1 images done, 0 failed");
}

/// Ctrl+C between a result's upload and its task's `TASK_FINISHED`: the
/// result is in the output folder, so the table says the image is done.
#[cfg(unix)]
#[test]
fn step3_ctrl_c_counts_a_result_that_arrived_before_its_task_finished() {
    let (run, _images, _task_id) = one_image_uploaded();
    let stderr = interrupted_with_teardown(run);
    assert!(
        stderr.contains("arrived before its task finished: done"),
        "{stderr}"
    );
    assert!(stderr.contains("1/1 images done, 0 failed"), "{stderr}");
}

#[test]
fn a_launch_the_master_refused_is_launched_again_step2() {
    refused_launch_goes_back_to_the_queue(&["--step", "launch", "--tasks", "1"].map(String::from));
}

#[test]
fn a_launch_the_master_refused_is_launched_again_step3() {
    let images = TempDir::new("wire-images");
    refused_launch_goes_back_to_the_queue(&step3_images(&images, 1));
}

/// The master answers the `ACCEPT` with `503` (it is failing over): the
/// task never reached it, so its work waits again, its attempt unused.
/// The scheduler subscribes again as the same framework.
fn refused_launch_goes_back_to_the_queue(step: &[String]) {
    let args = with_executor(step, &["--failover-timeout", "60"]);
    let mut run = Subscribed::start(ContentType::Protobuf, &args);
    run.master.refuse_next_call(503);
    run.events.send(&offers("offer-1", 2.0, 1024.0));
    run.calls_until(call::Type::ACCEPT);
    run.resubscribed(None);
    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until_one_of(&[call::Type::ACCEPT, call::Type::DECLINE]);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds,
        [call::Type::RECONCILE, call::Type::ACCEPT],
        "no task of ours runs, so only the implicit RECONCILE; the work is launched again"
    );
    assert!(calls[0].reconcile.tasks.is_empty(), "{calls:?}");
    run.stop();
}

/// `--max-failures`: tasks that fail every time (a broken executor) end
/// the run, with Mesos's words for the last failure, instead of being
/// launched for ever.
#[test]
fn step2_ends_after_max_failures_in_a_row() {
    let mut run = Subscribed::start(
        ContentType::Protobuf,
        &[
            "--step",
            "launch",
            "--max-failures",
            "2",
            "--executor",
            env!("CARGO_BIN_EXE_executor"),
        ],
    );
    for (number, offer) in ["offer-1", "offer-2"].into_iter().enumerate() {
        run.events.send(&offers(offer, 1.2, 256.0));
        let calls = run.calls_until(call::Type::ACCEPT);
        let task = calls[calls.len() - 1].accept.operations[0]
            .launch
            .task_infos[0]
            .task_id
            .value()
            .to_string();
        let mut failed = status(&task, TaskState::TASK_FAILED, Source::SOURCE_AGENT);
        failed.set_reason(Reason::REASON_EXECUTOR_TERMINATED);
        failed.set_message("Executor terminated".into());
        failed.set_uuid(vec![number as u8 + 1; 16]);
        run.events.send(&update(failed));
    }
    // A run that goes on would use this offer.
    run.events.send(&offers("offer-3", 1.2, 256.0));
    let calls = run.calls_until_one_of(&[call::Type::TEARDOWN, call::Type::ACCEPT]);
    let kinds = call_types(&calls);
    assert_eq!(
        kinds.last(),
        Some(&call::Type::TEARDOWN),
        "two failures in a row end the run: {kinds:?}"
    );
    run.events.cut();
    let stderr = assert_exits(run.scheduler, 2);
    assert!(stderr.contains("REASON_EXECUTOR_TERMINATED"), "{stderr}");
}

/// A scheduler that takes over the framework of an earlier process
/// (`--framework-id-file`) shuts down that process's executor, which
/// serves a file server that is gone, before it launches on its agent; and
/// it gives its tasks new ids, so that an update about one of the earlier
/// process's tasks is not taken for one of its own.
#[test]
fn a_taken_over_framework_clears_the_stale_executor_and_uses_fresh_ids_step2() {
    takes_over_a_framework(&["--step", "launch", "--tasks", "1"].map(String::from), "1");
}

#[test]
fn a_taken_over_framework_clears_the_stale_executor_and_uses_fresh_ids_step3() {
    let images = TempDir::new("wire-images");
    takes_over_a_framework(&step3_images(&images, 1), "image-1-attempt-1");
}

/// `first_id`: the first task's id in a new framework.
fn takes_over_a_framework(step: &[String], first_id: &str) {
    let id_dir = TempDir::new("wire-id");
    let id_file = id_dir.path().join("framework-id");
    std::fs::write(&id_file, format!("{FRAMEWORK}\n")).expect("write the id file");
    let id_file = id_file.display().to_string();
    let args = with_executor(
        step,
        &["--failover-timeout", "60", "--framework-id-file", &id_file],
    );
    let mut run = Subscribed::start(ContentType::Protobuf, &args);

    // The agent still runs the earlier process's executor.
    let mut stale = offers("offer-1", 2.0, 1024.0);
    stale.offers.mut_or_insert_default().offers[0]
        .executor_ids
        .push(ExecutorID {
            value: Some("default".into()),
            ..Default::default()
        });
    run.events.send(&stale);
    let calls = run.calls_until_one_of(&[call::Type::DECLINE, call::Type::ACCEPT]);
    let kinds = call_types(&calls);
    // Back as an existing framework, it first asks about all its tasks (it
    // knows none of the earlier process's).
    assert_eq!(
        kinds,
        [
            call::Type::RECONCILE,
            call::Type::SHUTDOWN,
            call::Type::DECLINE
        ]
    );
    assert!(calls[0].reconcile.tasks.is_empty(), "{calls:?}");
    assert_eq!(calls[1].shutdown.executor_id.value(), "default");
    assert_eq!(calls[1].shutdown.agent_id.value(), "agent-1");

    run.events.send(&offers("offer-2", 2.0, 1024.0));
    let calls = run.calls_until(call::Type::ACCEPT);
    let accept = &calls[calls.len() - 1].accept;
    let task_id = accept.operations[0].launch.task_infos[0].task_id.value();
    assert_ne!(task_id, first_id, "the earlier process's first task");
    assert!(
        task_id.ends_with(&format!("-{first_id}")),
        "a fresh prefix: {task_id}"
    );
    run.stop();
}
