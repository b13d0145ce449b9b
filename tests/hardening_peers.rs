//! Hardening, part 3: the scheduler and the executor binaries against peers
//! that misbehave.
//!
//! The scheduler trusts the master and the executor trusts the agent only so
//! far: each reads an event stream it did not write. Here each binary talks
//! to a fake peer (`tests/common/fake_peer.rs`) that
//! follows the protocol just long enough to get a subscription going and
//! then sends what a broken or hostile peer might: records that do not
//! decode, event types from a newer Mesos, resources nobody has heard of,
//! task payloads that are not ours, and a stream that breaks off in the
//! middle of a record. The binaries must carry on where they can, report
//! clearly where they cannot, and never panic.

mod common;

use common::fake_peer::{
    assert_exits, error_event, is_scheduler_subscribe, scheduler_call, subscribed, FakePeer,
    Process,
};
use common::temp_dir::TempDir;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::mesos::{value, Offer, Resource, TaskInfo, TaskState};
use mesos_tutorial::proto::{executor, scheduler};
use protobuf::EnumOrUnknown;
use std::process::Command;

/// A protobuf event of a type number no Mesos 1.11 message declares, as a
/// newer master or agent might send: field 1 (`type`) as the varint 99.
const EVENT_OF_TYPE_99: &[u8] = &[0x08, 99];

// ---------------------------------------------------------------------------
// The scheduler against a fake master
// ---------------------------------------------------------------------------

fn start_scheduler(master: &FakePeer, content_type: &str) -> Process {
    Process::start(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(["--master", &master.address.to_string()])
            .args(["--step", "register", "--failover-timeout", "0"])
            .args(["--content-type", content_type])
            .env("RUST_LOG", "info"),
    )
}

/// An offer whose resources no scheduler could use: names nobody defined, a
/// type number from the future, values missing or contradicting their type.
fn offer_of_strange_resources(framework: &str) -> scheduler::Event {
    let mut offer = Offer::new();
    offer
        .id
        .mut_or_insert_default()
        .set_value("offer-strange".into());
    offer
        .framework_id
        .mut_or_insert_default()
        .set_value(framework.into());
    offer
        .agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    offer.set_hostname("agent.example".into());
    let resource = |name: &str, kind: EnumOrUnknown<value::Type>| {
        let mut resource = Resource::new();
        resource.set_name(name.into());
        resource.type_ = Some(kind);
        resource
    };
    let mut from_the_future = resource("quantum-qubits", EnumOrUnknown::from_i32(42));
    from_the_future
        .scalar
        .mut_or_insert_default()
        .set_value(7.0);
    let empty_scalar = resource("cpus", EnumOrUnknown::new(value::Type::SCALAR));
    let mut backwards = resource("ports", EnumOrUnknown::new(value::Type::RANGES));
    let mut range = value::Range::new();
    range.set_begin(u64::MAX);
    range.set_end(0);
    backwards.ranges.mut_or_insert_default().range.push(range);
    let mut nan = resource("mem", EnumOrUnknown::new(value::Type::SCALAR));
    nan.scalar.mut_or_insert_default().set_value(f64::NAN);
    let text = resource("\u{1f980}\n\"", EnumOrUnknown::new(value::Type::TEXT));
    offer.resources = vec![from_the_future, empty_scalar, backwards, nan, text];
    let mut event = scheduler::Event::new();
    event.set_type(scheduler::event::Type::OFFERS);
    event.offers.mut_or_insert_default().offers.push(offer);
    event
}

/// How the fake master breaks its first event stream.
#[derive(Clone, Copy, Debug)]
enum Breakage {
    /// A record whose length is not a number.
    GarbageLength,
    /// A record that announces 100 bytes, sends 3, and the connection ends.
    CutMidRecord,
}

/// The whole conversation: the scheduler must skip what it cannot read, use
/// what it can, subscribe again when the stream breaks, and end with a
/// clear error when the master removes it.
fn scheduler_survives_a_bad_master(content_type: ContentType, breakage: Breakage) {
    let master = FakePeer::start(content_type, is_scheduler_subscribe);
    let flag = match content_type {
        ContentType::Protobuf => "protobuf",
        ContentType::Json => "json",
    };
    let mut scheduler = start_scheduler(&master, flag);

    let first = master.next_call(&mut scheduler);
    let call = scheduler_call(content_type, &first.body);
    assert_eq!(call.type_(), scheduler::call::Type::SUBSCRIBE);
    assert!(
        call.framework_id.is_none(),
        "a first SUBSCRIBE names no framework"
    );
    let mut events = first.events.expect("an event stream");

    events.send(&subscribed("framework-1"));
    let undecodable: &[u8] = match content_type {
        ContentType::Protobuf => &[0xff, 0xff, 0xff, 0x0f],
        ContentType::Json => br#"{"type":"OFFERS","offers":{"offers":[{"id":"#,
    };
    events.send_record(undecodable);
    match content_type {
        ContentType::Protobuf => events.send_record(EVENT_OF_TYPE_99),
        ContentType::Json => events.send_record(br#"{"type":"FROM_THE_FUTURE"}"#),
    }
    events.send(&offer_of_strange_resources("framework-1"));

    // The scheduler read past the bad records and declined the strange offer.
    let decline = master.next_call(&mut scheduler);
    let call = scheduler_call(content_type, &decline.body);
    assert_eq!(call.type_(), scheduler::call::Type::DECLINE);
    assert_eq!(call.framework_id.value(), "framework-1");
    assert_eq!(call.decline.offer_ids[0].value(), "offer-strange");
    assert_eq!(decline.stream_id.as_deref(), Some("stream-1"));

    match breakage {
        Breakage::GarbageLength => events.send_raw(b"12x\n{}"),
        Breakage::CutMidRecord => {
            events.send_raw(b"100\nabc");
            events.cut();
        }
    }

    // Without a failover timeout the old framework is gone with its
    // connection: the scheduler subscribes again as a new framework.
    let second = master.next_call(&mut scheduler);
    let call = scheduler_call(content_type, &second.body);
    assert_eq!(call.type_(), scheduler::call::Type::SUBSCRIBE);
    assert!(
        call.framework_id.is_none(),
        "with --failover-timeout 0 it comes back as new"
    );
    assert!(call.subscribe.framework_info.id.is_none());
    let mut events = second.events.expect("a second event stream");
    events.send(&subscribed("framework-2"));
    events.send(&error_event("hardening test over"));

    let stderr = assert_exits(scheduler, 2);
    assert!(stderr.contains("skipped an undecodable event"), "{stderr}");
    assert!(stderr.contains("Received offer offer-strange"), "{stderr}");
    assert!(stderr.contains("Lost the master"), "{stderr}");
    assert!(
        stderr.contains("the master removed this framework: hardening test over"),
        "{stderr}"
    );
}

#[test]
fn the_scheduler_skips_bad_records_and_resubscribes_after_a_garbage_length() {
    scheduler_survives_a_bad_master(ContentType::Protobuf, Breakage::GarbageLength);
}

#[test]
fn the_scheduler_skips_bad_records_and_resubscribes_after_a_cut_record() {
    scheduler_survives_a_bad_master(ContentType::Protobuf, Breakage::CutMidRecord);
}

#[test]
fn the_scheduler_in_json_skips_bad_records_and_resubscribes() {
    scheduler_survives_a_bad_master(ContentType::Json, Breakage::CutMidRecord);
}

#[test]
fn the_scheduler_in_json_survives_deeply_nested_events() {
    let master = FakePeer::start(ContentType::Json, is_scheduler_subscribe);
    let mut scheduler = start_scheduler(&master, "json");
    let mut events = master
        .next_call(&mut scheduler)
        .events
        .expect("an event stream");
    events.send(&subscribed("framework-1"));
    let mut nested = String::from(r#"{"type":"HEARTBEAT","note":'"',"x":"#);
    nested.push_str(&"[".repeat(200_000));
    events.send_record(nested.as_bytes());
    events.send(&error_event("hardening test over"));
    assert_exits(scheduler, 2);
}

#[test]
fn a_heartbeat_interval_that_is_not_a_positive_number_is_ignored() {
    for interval in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let master = FakePeer::start(ContentType::Protobuf, is_scheduler_subscribe);
        let mut scheduler = start_scheduler(&master, "protobuf");
        let mut events = master
            .next_call(&mut scheduler)
            .events
            .expect("an event stream");
        let mut event = subscribed("framework-1");
        event
            .subscribed
            .mut_or_insert_default()
            .set_heartbeat_interval_seconds(interval);
        events.send(&event);
        // Taken as a silence limit, such an interval would declare the
        // master lost before its next event: the scheduler would subscribe
        // again instead of declining this offer.
        std::thread::sleep(std::time::Duration::from_millis(200));
        events.send(&offer_of_strange_resources("framework-1"));
        let call = scheduler_call(
            ContentType::Protobuf,
            &master.next_call(&mut scheduler).body,
        );
        assert_eq!(
            call.type_(),
            scheduler::call::Type::DECLINE,
            "heartbeat interval {interval}"
        );
        events.send(&error_event("hardening test over"));
        assert_exits(scheduler, 2);
    }
}

// ---------------------------------------------------------------------------
// The executor against a fake agent
// ---------------------------------------------------------------------------

fn executor_call(body: &[u8]) -> executor::Call {
    ContentType::Protobuf
        .decode(body, "executor Call")
        .expect("the executor sends calls that decode")
}

fn is_executor_subscribe(content_type: ContentType, body: &[u8]) -> bool {
    content_type
        .decode::<executor::Call>(body, "executor Call")
        .is_ok_and(|call| call.type_() == executor::call::Type::SUBSCRIBE)
}

/// Starts the executor binary as an agent would, with its sandbox in
/// `sandbox`.
fn start_executor(agent: &FakePeer, sandbox: &TempDir) -> Process {
    Process::start(
        Command::new(env!("CARGO_BIN_EXE_executor"))
            .env_clear()
            .env("MESOS_AGENT_ENDPOINT", agent.address.to_string())
            .env("MESOS_FRAMEWORK_ID", "framework-1")
            .env("MESOS_EXECUTOR_ID", "executor-1")
            .env("MESOS_CHECKPOINT", "0")
            .env("MESOS_DIRECTORY", sandbox.path())
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "20secs")
            .env("RUST_LOG", "info")
            .current_dir(sandbox.path()),
    )
}

fn executor_event(kind: executor::event::Type) -> executor::Event {
    let mut event = executor::Event::new();
    event.set_type(kind);
    event
}

fn executor_subscribed() -> executor::Event {
    let mut event = executor_event(executor::event::Type::SUBSCRIBED);
    let subscribed = event.subscribed.mut_or_insert_default();
    subscribed
        .executor_info
        .mut_or_insert_default()
        .executor_id
        .mut_or_insert_default()
        .set_value("executor-1".into());
    let framework = subscribed.framework_info.mut_or_insert_default();
    framework.set_user("nobody".into());
    framework.set_name("hardening".into());
    subscribed
        .agent_info
        .mut_or_insert_default()
        .set_hostname("fake-agent".into());
    event
}

fn launch(task: &str, data: &[u8]) -> executor::Event {
    let mut info = TaskInfo::new();
    info.set_name(task.into());
    info.task_id.mut_or_insert_default().set_value(task.into());
    info.agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    info.set_data(data.to_vec());
    let mut event = executor_event(executor::event::Type::LAUNCH);
    event.launch.mut_or_insert_default().task = Some(info).into();
    event
}

fn acknowledged(task: &str, uuid: &[u8]) -> executor::Event {
    let mut event = executor_event(executor::event::Type::ACKNOWLEDGED);
    let acknowledged = event.acknowledged.mut_or_insert_default();
    acknowledged
        .task_id
        .mut_or_insert_default()
        .set_value(task.into());
    acknowledged.set_uuid(uuid.to_vec());
    event
}

#[test]
fn the_executor_fails_tasks_whose_data_is_not_ours_and_shuts_down_cleanly() {
    let agent = FakePeer::start(ContentType::Protobuf, is_executor_subscribe);
    let sandbox = TempDir::new("executor-sandbox");
    let mut executor = start_executor(&agent, &sandbox);

    let subscribe = agent.next_call(&mut executor);
    let call = executor_call(&subscribe.body);
    assert_eq!(call.type_(), executor::call::Type::SUBSCRIBE);
    assert_eq!(call.executor_id.value(), "executor-1");
    let mut events = subscribe.events.expect("an event stream");
    events.send(&executor_subscribed());
    events.send_record(&[0xff, 0xff, 0xff, 0x0f]);
    events.send_record(EVENT_OF_TYPE_99);

    let too_big = vec![b' '; 70 * 1024];
    // Each task's data, and what the failure message must say about it.
    let tasks: [(&str, &[u8], &str); 5] = [
        ("garbage", &[0xff, 0x00, 0x13, 0x37], "not UTF-8"),
        ("not-json", b"invert everything, please", "not a valid JSON task"),
        ("newer", br#"{"version":2,"noop_millis":1}"#, "version 2"),
        ("too-big", &too_big, "bytes"),
        (
            "local-file",
            br#"{"version":1,"image_url":"file:///etc/passwd","upload_url":"http://127.0.0.1:9/u"}"#,
            "not an http:// or https:// URL",
        ),
    ];
    for (task, data, _) in &tasks {
        events.send(&launch(task, data));
    }

    // Every task is reported running, then failed with a reason; each
    // update is acknowledged as an agent would.
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut running = 0;
    while failed.len() < tasks.len() {
        let call = executor_call(&agent.next_call(&mut executor).body);
        assert_eq!(call.type_(), executor::call::Type::UPDATE, "{call:?}");
        let status = &call.update.status;
        let task = status.task_id.value().to_string();
        match status.state() {
            TaskState::TASK_RUNNING => running += 1,
            TaskState::TASK_FAILED => failed.push((task.clone(), status.message().to_string())),
            other => panic!("task {task} went to {other:?}"),
        }
        events.send(&acknowledged(&task, status.uuid()));
    }
    assert_eq!(running, tasks.len());
    for (task, _, reason) in &tasks {
        let (_, message) = failed
            .iter()
            .find(|(failed, _)| failed == task)
            .unwrap_or_else(|| panic!("no TASK_FAILED for {task}"));
        assert!(
            message.contains("could not read the task's data"),
            "{task}: {message}"
        );
        assert!(message.contains(reason), "{task}: {message}");
    }

    events.send(&executor_event(executor::event::Type::SHUTDOWN));
    let stderr = assert_exits(executor, 0);
    assert!(stderr.contains("could not decode"), "{stderr}");
    assert!(stderr.contains("Ignoring an event of a type"), "{stderr}");
}

#[test]
fn the_executor_reports_a_broken_stream_clearly_without_checkpointing() {
    for cut_mid_record in [false, true] {
        let agent = FakePeer::start(ContentType::Protobuf, is_executor_subscribe);
        let sandbox = TempDir::new("executor-sandbox");
        let mut executor = start_executor(&agent, &sandbox);
        let mut events = agent
            .next_call(&mut executor)
            .events
            .expect("an event stream");
        events.send(&executor_subscribed());
        if cut_mid_record {
            events.send_raw(b"100\nabc");
            events.cut();
        } else {
            events.send_raw(b"\xff\xfe\n");
        }
        let stderr = assert_exits(executor, 1);
        assert!(stderr.contains("executor: lost the agent"), "{stderr}");
    }
}

#[test]
fn the_executor_fails_a_task_whose_data_nests_deeply() {
    let agent = FakePeer::start(ContentType::Protobuf, is_executor_subscribe);
    let sandbox = TempDir::new("executor-sandbox");
    let mut executor = start_executor(&agent, &sandbox);
    let mut events = agent
        .next_call(&mut executor)
        .events
        .expect("an event stream");
    events.send(&executor_subscribed());
    let mut data = String::from(r#"{"version":1,"note":'"',"x":"#);
    data.push_str(&"[".repeat(60_000));
    events.send(&launch("nested", data.as_bytes()));
    let mut states = Vec::new();
    while !states.contains(&TaskState::TASK_FAILED) {
        let call = executor_call(&agent.next_call(&mut executor).body);
        let status = &call.update.status;
        states.push(status.state());
        events.send(&acknowledged(status.task_id.value(), status.uuid()));
    }
    events.send(&executor_event(executor::event::Type::SHUTDOWN));
    assert_exits(executor, 0);
}
