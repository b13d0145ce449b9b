//! How fast a scheduler can read its event stream.
//!
//! Every event a scheduler receives travels in one never-ending HTTP
//! response, framed as RecordIO (see `src/recordio.rs`) and encoded as
//! protobuf or JSON (see `src/content_type.rs`). A busy framework receives
//! two status updates per task and an offer per allocation, so reading the
//! stream must never be the slow part.
//!
//! The benchmark builds in memory the stream a busy no-op framework sees:
//! four `UPDATE` events (a full `TaskStatus`: task id, state, 16-byte uuid,
//! agent and executor ids, timestamp, message) for each `OFFERS` event (one
//! offer of cpus, mem, disk and a port range, with `allocation_info`). Then:
//!
//! - (a) framing alone: every record read from a `&[u8]` and touched, in
//!   MB/s, against memcpy of the same bytes (`copy_from_slice` into a
//!   preallocated buffer). Target: at least half of memcpy.
//! - (b) framing and protobuf decoding into `scheduler::Event`;
//! - (c) framing and JSON decoding, the encoding `curl` users pick.
//!
//! (b) and (c) have no fixed target; they show how many events per second
//! one reader thread can hand to a scheduler. Each figure is the best of
//! several runs.

mod report;

use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::mesos::{task_status, value, Offer, Resource, TaskState, TaskStatus};
use mesos_tutorial::proto::scheduler::{event, Event};
use mesos_tutorial::recordio::{write_record, RecordIoReader};
use report::{best_of, figure, megabytes_per_second, per_second, time, Table, Target};
use std::hint::black_box;
use std::time::Duration;

/// One `OFFERS` event after this many `UPDATE` events.
const UPDATES_PER_OFFER: usize = 4;

fn main() {
    let quick = report::quick_run();
    let (events, runs) = if quick { (2_000, 1) } else { (100_000, 15) };
    let decode_runs = if quick { 1 } else { 3 };

    let protobuf = build_stream(ContentType::Protobuf, events);
    let json = build_stream(ContentType::Json, events);
    let mut table = Table::new(&format!(
        "RecordIO event streams: {events} events, {UPDATES_PER_OFFER} UPDATE per OFFERS \
         ({:.1} MB as protobuf, {:.1} MB as JSON)",
        protobuf.len() as f64 / 1e6,
        json.len() as f64 / 1e6
    ));

    // (a) The limit: copying the same bytes once, as fast as the machine can.
    // Runs alternate, so that both see the same state of the machine.
    let mut copy = vec![0u8; protobuf.len()];
    let (mut memcpy, mut framing) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        memcpy = memcpy.min(time(|| {
            copy.copy_from_slice(black_box(&protobuf));
            black_box(&mut copy);
        }));
        framing = framing.min(time(|| assert_eq!(frame_only(&protobuf), events)));
    }
    table.row(
        "(a) RecordIO framing, protobuf stream",
        figure(megabytes_per_second(protobuf.len(), framing), "MB/s"),
        Some(figure(megabytes_per_second(protobuf.len(), memcpy), "MB/s")),
        Target::Ratio(0.5),
    );

    // (b) and (c): what a scheduler's event reader thread does per record.
    for (label, stream, content_type) in [
        (
            "(b) framing + protobuf decode",
            &protobuf,
            ContentType::Protobuf,
        ),
        ("(c) framing + JSON decode", &json, ContentType::Json),
    ] {
        let elapsed = best_of(decode_runs, || {
            time(|| {
                let counts = frame_and_decode(stream, content_type);
                assert_eq!(counts, expected_counts(events), "{label}");
            })
        });
        let name = format!("{label}, events");
        let events_per_second = figure(per_second(events as f64, elapsed), "events/s");
        table.row(&name, events_per_second, None, Target::Report);
        let name = format!("{label}, bytes");
        let bytes_per_second = figure(megabytes_per_second(stream.len(), elapsed), "MB/s");
        table.row(&name, bytes_per_second, None, Target::Report);
    }

    table.note(format!(
        "best of {runs} runs for (a) and its memcpy limit, best of {decode_runs} for (b) and (c); \
         MB = 10^6 bytes of the framed stream"
    ));
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// Reads every record, touching its first and last byte so that nothing can
/// be skipped. Returns how many records there were.
fn frame_only(stream: &[u8]) -> usize {
    let mut reader = RecordIoReader::new(stream);
    let mut records = 0;
    let mut touched = 0u8;
    while let Some(record) = reader.next_record().expect("the stream was framed by us") {
        let record = black_box(record);
        touched ^= record.first().copied().unwrap_or(0) ^ record.last().copied().unwrap_or(0);
        records += 1;
    }
    black_box(touched);
    records
}

/// Reads and decodes every event. Returns how many `UPDATE` and `OFFERS`
/// events there were, so that a decoder that skipped work would be noticed.
fn frame_and_decode(stream: &[u8], content_type: ContentType) -> (usize, usize) {
    let mut reader = RecordIoReader::new(stream);
    let (mut updates, mut offers) = (0, 0);
    while let Some(record) = reader.next_record().expect("the stream was framed by us") {
        let event: Event = content_type
            .decode(record, "scheduler Event")
            .expect("the events were encoded by us");
        match event.type_() {
            event::Type::UPDATE if event.update.status.uuid().len() == 16 => updates += 1,
            event::Type::OFFERS if event.offers.offers.len() == 1 => offers += 1,
            other => panic!("unexpected event {other:?}"),
        }
        black_box(&event);
    }
    (updates, offers)
}

fn expected_counts(events: usize) -> (usize, usize) {
    let offers = events / (UPDATES_PER_OFFER + 1);
    (events - offers, offers)
}

/// `count` events, encoded and framed as a master would send them.
fn build_stream(content_type: ContentType, count: usize) -> Vec<u8> {
    let mut stream = Vec::new();
    for number in 0..count {
        let event = if number % (UPDATES_PER_OFFER + 1) == UPDATES_PER_OFFER {
            offers_event(number)
        } else {
            update_event(number)
        };
        write_record(&mut stream, &content_type.encode(&event)).expect("writing to a Vec");
    }
    stream
}

fn update_event(number: usize) -> Event {
    let task = number / 2;
    let mut status = TaskStatus::new();
    status
        .task_id
        .mut_or_insert_default()
        .set_value(format!("task-{task}"));
    status.set_state(if number.is_multiple_of(2) {
        TaskState::TASK_RUNNING
    } else {
        TaskState::TASK_FINISHED
    });
    status.set_source(task_status::Source::SOURCE_EXECUTOR);
    // A version 4 uuid's bytes: anything but constant, so every event differs.
    let uuid: Vec<u8> = (0..16u8)
        .map(|i| (number as u8).wrapping_mul(31).wrapping_add(i * 17))
        .collect();
    status.set_uuid(uuid);
    status
        .agent_id
        .mut_or_insert_default()
        .set_value("3f6c2a1e-8d4b-4c1a-9e2f-0a5b7c9d1e3f-S0".into());
    status
        .executor_id
        .mut_or_insert_default()
        .set_value("default".into());
    status.set_timestamp(1_700_000_000.0 + number as f64 * 0.001);
    status.set_message(format!("Task task-{task} is done after 0 ms"));
    let mut event = Event::new();
    event.set_type(event::Type::UPDATE);
    event.update.mut_or_insert_default().status = Some(status).into();
    event
}

fn offers_event(number: usize) -> Event {
    let mut offer = Offer::new();
    offer
        .id
        .mut_or_insert_default()
        .set_value(format!("3f6c2a1e-8d4b-4c1a-9e2f-0a5b7c9d1e3f-O{number}"));
    offer
        .framework_id
        .mut_or_insert_default()
        .set_value("3f6c2a1e-8d4b-4c1a-9e2f-0a5b7c9d1e3f-0000".into());
    offer
        .agent_id
        .mut_or_insert_default()
        .set_value("3f6c2a1e-8d4b-4c1a-9e2f-0a5b7c9d1e3f-S0".into());
    offer.set_hostname("agent-1.cluster.example.org".into());
    offer.resources = vec![
        scalar("cpus", 1.9),
        scalar("mem", 992.0),
        scalar("disk", 4096.0),
        ports(31000, 32000),
    ];
    offer
        .allocation_info
        .mut_or_insert_default()
        .set_role("*".into());
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

fn ports(begin: u64, end: u64) -> Resource {
    let mut resource = Resource::new();
    resource.set_name("ports".into());
    resource.set_type(value::Type::RANGES);
    let mut range = value::Range::new();
    range.set_begin(begin);
    range.set_end(end);
    resource.ranges.mut_or_insert_default().range.push(range);
    resource
        .allocation_info
        .mut_or_insert_default()
        .set_role("*".into());
    resource
}
