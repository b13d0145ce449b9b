//! Hardening, part 1: every parser of outside bytes, tried on inputs nobody
//! would write by hand.
//!
//! The framework reads four kinds of data it does not control: RecordIO
//! framing from the master and the agent, the protobuf or JSON events and
//! calls inside it, the `TaskInfo.data` payload the executor receives, and the
//! `--resources` text a user types. Unit tests beside each parser show the
//! edge cases someone thought of. The properties here let `proptest` think of
//! the rest: each parser gets random bytes and near-valid text and must
//! return an error rather than panic; and each encoder's output, for randomly
//! generated valid values, must decode to the same value.
//!
//! Every property runs `proptest`'s default 256 cases or fewer, so the file
//! stays quick in a debug build.

use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::local::resources::Resources;
use mesos_tutorial::proto::mesos::{
    value, AgentID, FrameworkID, Offer, OfferID, Resource, TaskID, TaskInfo, TaskState, TaskStatus,
};
use mesos_tutorial::proto::{executor, scheduler};
use mesos_tutorial::recordio::{write_record, RecordIoError, RecordIoReader};
use mesos_tutorial::task_data;
use proptest::collection::vec;
use proptest::prelude::*;
use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

// ---------------------------------------------------------------------------
// RecordIO
// ---------------------------------------------------------------------------

/// A byte stream that arrives in pieces of the given sizes, as from a socket.
/// A size of 0 stands for a read interrupted by a signal (`EINTR`), which a
/// reader must retry. Once the data is used up it reports `finished`:
/// the end of the stream, or an error for tests in which reading on would be
/// wrong.
struct Fragments {
    data: Vec<u8>,
    position: usize,
    sizes: Vec<usize>,
    /// How many times `read` was called, shared with the test.
    reads: Rc<Cell<usize>>,
    finished: Finished,
}

#[derive(Clone, Copy)]
enum Finished {
    AtEnd,
    WithError,
}

impl Fragments {
    fn new(data: Vec<u8>, sizes: Vec<usize>, finished: Finished) -> Fragments {
        assert!(!sizes.is_empty(), "at least one fragment size");
        Fragments {
            data,
            position: 0,
            sizes,
            reads: Rc::default(),
            finished,
        }
    }
}

impl Read for Fragments {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reads = self.reads.get();
        self.reads.set(reads + 1);
        let size = self.sizes[reads % self.sizes.len()];
        let left = self.data.len() - self.position;
        if left == 0 {
            return match self.finished {
                Finished::AtEnd => Ok(0),
                Finished::WithError => Err(io::Error::other("read past the record header")),
            };
        }
        if size == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = size.min(buf.len()).min(left);
        buf[..n].copy_from_slice(&self.data[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Fragment sizes, with some interrupted reads among them.
fn fragment_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![1 => Just(0usize), 8 => 1usize..80], 1..6)
        .prop_filter("some size must deliver bytes", |sizes| {
            sizes.iter().any(|&size| size > 0)
        })
}

/// Bytes that look like RecordIO some of the time: digits and newlines are
/// frequent, so headers, bodies and their mistakes all occur.
fn recordio_noise() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => b'0'..=b'9',
        2 => Just(b'\n'),
        1 => Just(b'\r'),
        3 => any::<u8>(),
    ];
    vec(byte, 0..400)
}

proptest! {
    #[test]
    fn recordio_reads_any_bytes_without_panicking_in_bounded_reads(
        noise in recordio_noise(),
        sizes in fragment_sizes(),
        limit in 0usize..=1 << 20,
    ) {
        let length = noise.len();
        let mut reader = RecordIoReader::with_max_record_len(
            Fragments::new(noise, sizes, Finished::AtEnd), limit);
        // Each record takes at least two bytes (`0\n`), so a stream of n bytes
        // holds at most n / 2 records; the loop must end well before that.
        let mut calls = 0;
        loop {
            calls += 1;
            prop_assert!(calls <= length / 2 + 2, "more records than the bytes allow");
            match reader.next_record() {
                Ok(Some(record)) => prop_assert!(record.len() <= limit),
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn recordio_reads_no_more_often_than_there_are_bytes(
        noise in recordio_noise(),
        sizes in vec(1usize..80, 1..6),
    ) {
        let length = noise.len();
        let source = Fragments::new(noise, sizes, Finished::AtEnd);
        let reads = Rc::clone(&source.reads);
        let mut reader = RecordIoReader::new(source);
        let mut calls = 0usize;
        loop {
            calls += 1;
            match reader.next_record() {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        // Every read but the ones that find the end delivers a byte, and
        // each call finds the end at most a few times.
        let reads = reads.get();
        prop_assert!(reads <= length + 4 * calls, "{reads} reads for {length} bytes");
    }

    #[test]
    fn recordio_round_trips_any_records_in_any_fragments(
        records in vec(vec(any::<u8>(), 0..300), 0..20),
        sizes in fragment_sizes(),
    ) {
        let mut stream = Vec::new();
        for record in &records {
            write_record(&mut stream, record).expect("writing to a Vec");
        }
        let mut reader = RecordIoReader::new(Fragments::new(stream, sizes, Finished::AtEnd));
        let mut read = Vec::new();
        while let Some(record) = reader.next_record()? {
            read.push(record.to_vec());
        }
        prop_assert_eq!(read, records);
    }

    #[test]
    fn recordio_refuses_a_length_over_the_limit_before_reading_the_body(
        limit in 0usize..=1 << 24,
        excess in 1u64..=u64::MAX / 4,
        extra_digits in "[0-9]{0,40}",
        leading_zeros in 0usize..5,
        sizes in fragment_sizes(),
    ) {
        // A length just over the limit, or far over it, or longer than any
        // integer: all announce more than the limit allows.
        let over = (limit as u64).saturating_add(excess);
        let header = format!("{}{over}{extra_digits}\n", "0".repeat(leading_zeros));
        // The source ends with an error right after the header: a reader that
        // went on to read the body would see it.
        let source = Fragments::new(header.into_bytes(), sizes, Finished::WithError);
        let mut reader = RecordIoReader::with_max_record_len(source, limit);
        match reader.next_record() {
            Err(RecordIoError::TooLarge { len, max }) => {
                prop_assert_eq!(max, limit);
                prop_assert!(len > limit as u64);
            }
            other => prop_assert!(false, "expected TooLarge, got {:?}", other.map(|r| r.map(<[u8]>::len))),
        }
    }

    #[test]
    fn recordio_accepts_a_length_at_the_limit(limit in 0usize..4096, sizes in fragment_sizes()) {
        let body = vec![b'x'; limit];
        let mut stream = format!("{limit}\n").into_bytes();
        stream.extend_from_slice(&body);
        let mut reader = RecordIoReader::with_max_record_len(
            Fragments::new(stream, sizes, Finished::AtEnd), limit);
        prop_assert_eq!(reader.next_record()?, Some(&body[..]));
    }
}

#[test]
fn recordio_with_no_practical_limit_still_refuses_an_absurd_length() {
    // The length is checked against the limit after each digit, which keeps
    // it from overflowing only while the limit is below u64::MAX / 10.
    let header = format!("{}\n", "9".repeat(30));
    let mut reader = RecordIoReader::with_max_record_len(header.as_bytes(), usize::MAX);
    assert!(matches!(
        reader.next_record(),
        Err(RecordIoError::TooLarge { .. })
    ));
}

// ---------------------------------------------------------------------------
// Events and calls, in protobuf and in JSON
// ---------------------------------------------------------------------------

/// Decodes `bytes` as each message the framework reads or writes, in both
/// content types. Only a panic (or an abort) can fail this.
fn decode_everything(bytes: &[u8]) {
    for content_type in [ContentType::Protobuf, ContentType::Json] {
        let _ = content_type.decode::<scheduler::Event>(bytes, "x");
        let _ = content_type.decode::<scheduler::Call>(bytes, "x");
        let _ = content_type.decode::<executor::Event>(bytes, "x");
        let _ = content_type.decode::<executor::Call>(bytes, "x");
    }
}

/// Field and enum names of the Mesos messages, so that random JSON reaches
/// past the first key into the fields' own parsers.
fn mesos_words() -> Vec<&'static str> {
    "type offers task_id framework_id agent_id value id hostname resources name scalar \
     ranges range begin end set item subscribed heartbeat_interval_seconds update status \
     state uuid launch task data decline offer_ids filters refuse_seconds executor_id \
     acknowledged message kill error SUBSCRIBED OFFERS UPDATE LAUNCH SHUTDOWN HEARTBEAT \
     DECLINE TASK_RUNNING SCALAR"
        .split_whitespace()
        .collect()
}

/// Strings from the grammar of JSON's punctuation, digits, letters and the
/// words above, in any order: mostly malformed JSON.
fn json_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => prop::sample::select(vec!["{", "}", "[", "]", "\"", ":", ",", " ", "'", "\\"]),
        1 => prop::sample::select(vec!["0", "1", "-", ".", "e", "9", "1e400", "-0", "true", "null"]),
        2 => prop::sample::select(mesos_words()),
    ];
    vec(token, 0..80).prop_map(|tokens| tokens.concat())
}

/// Well-formed JSON built from the same words: it parses as JSON, so the
/// message parser is tried on every field with values of every JSON type.
fn json_value() -> impl Strategy<Value = String> {
    let word = prop::sample::select(mesos_words());
    let leaf = prop_oneof![
        word.clone().prop_map(|w| format!("\"{w}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            f.to_string()
        } else {
            "1e999".into()
        }),
        prop::sample::select(vec!["true", "false", "null", "\"\"", "\"AAAA\"", "\"%%\""])
            .prop_map(String::from),
    ];
    leaf.prop_recursive(8, 96, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(|items| format!("[{}]", items.join(","))),
            vec((word.clone(), inner), 0..6).prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn json_soup_never_panics_any_decoder(text in json_soup()) {
        decode_everything(text.as_bytes());
    }

    #[test]
    fn well_formed_json_of_any_shape_never_panics_any_decoder(json in json_value()) {
        decode_everything(json.as_bytes());
        // The same inside a message whose known fields it fills.
        decode_everything(format!("{{\"type\":\"UPDATE\",\"update\":{json},\"offers\":{json}}}").as_bytes());
    }
}

/// Ids and names: any Unicode, including control characters and quotes.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z0-9-]{1,20}", 1 => any::<String>()]
}

/// Any finite number (JSON has no NaN or infinity, and Mesos sends neither).
fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn framework_id(value: String) -> FrameworkID {
    let mut id = FrameworkID::new();
    id.set_value(value);
    id
}

fn offer_id(value: String) -> OfferID {
    let mut id = OfferID::new();
    id.set_value(value);
    id
}

/// A scheduler's `DECLINE` or `ACKNOWLEDGE` or `RECONCILE`, with random ids.
fn scheduler_call() -> impl Strategy<Value = scheduler::Call> {
    let decline = (id(), vec(id(), 0..5), proptest::option::of(finite_f64())).prop_map(
        |(framework, offers, refuse_seconds)| {
            let mut call = scheduler::Call::new();
            call.set_type(scheduler::call::Type::DECLINE);
            call.framework_id = Some(framework_id(framework)).into();
            let decline = call.decline.mut_or_insert_default();
            decline.offer_ids = offers.into_iter().map(offer_id).collect();
            if let Some(seconds) = refuse_seconds {
                decline
                    .filters
                    .mut_or_insert_default()
                    .set_refuse_seconds(seconds);
            }
            call
        },
    );
    let acknowledge =
        (id(), id(), id(), vec(any::<u8>(), 0..32)).prop_map(|(framework, agent, task, uuid)| {
            let mut call = scheduler::Call::new();
            call.set_type(scheduler::call::Type::ACKNOWLEDGE);
            call.framework_id = Some(framework_id(framework)).into();
            let acknowledge = call.acknowledge.mut_or_insert_default();
            acknowledge
                .agent_id
                .mut_or_insert_default()
                .set_value(agent);
            acknowledge.task_id.mut_or_insert_default().set_value(task);
            acknowledge.set_uuid(uuid);
            call
        });
    let reconcile = (id(), vec(id(), 0..5)).prop_map(|(framework, tasks)| {
        let mut call = scheduler::Call::new();
        call.set_type(scheduler::call::Type::RECONCILE);
        call.framework_id = Some(framework_id(framework)).into();
        let reconcile = call.reconcile.mut_or_insert_default();
        for task in tasks {
            let mut wanted = scheduler::call::reconcile::Task::new();
            wanted.task_id.mut_or_insert_default().set_value(task);
            reconcile.tasks.push(wanted);
        }
        call
    });
    prop_oneof![decline, acknowledge, reconcile]
}

/// A resource of any kind, with values across the whole range of its type.
fn resource() -> impl Strategy<Value = Resource> {
    let scalar = finite_f64().prop_map(|amount| {
        let mut scalar = value::Scalar::new();
        scalar.set_value(amount);
        (value::Type::SCALAR, Some(scalar), None, None)
    });
    let ranges = vec((any::<u64>(), any::<u64>()), 0..4).prop_map(|pairs| {
        let mut ranges = value::Ranges::new();
        for (begin, end) in pairs {
            let mut range = value::Range::new();
            range.set_begin(begin);
            range.set_end(end);
            ranges.range.push(range);
        }
        (value::Type::RANGES, None, Some(ranges), None)
    });
    let set = vec(id(), 0..4).prop_map(|items| {
        let mut set = value::Set::new();
        set.item = items;
        (value::Type::SET, None, None, Some(set))
    });
    (id(), prop_oneof![scalar, ranges, set]).prop_map(|(name, (kind, scalar, ranges, set))| {
        let mut resource = Resource::new();
        resource.set_name(name);
        resource.set_type(kind);
        resource.scalar = scalar.into();
        resource.ranges = ranges.into();
        resource.set = set.into();
        resource
    })
}

/// A scheduler's `OFFERS` event.
fn offers_event() -> impl Strategy<Value = scheduler::Event> {
    let offer = (id(), id(), id(), id(), vec(resource(), 0..4)).prop_map(
        |(id, framework, agent, hostname, resources)| {
            let mut offer = Offer::new();
            offer.id = Some(offer_id(id)).into();
            offer.framework_id = Some(framework_id(framework)).into();
            offer.agent_id.mut_or_insert_default().set_value(agent);
            offer.set_hostname(hostname);
            offer.resources = resources;
            offer
        },
    );
    vec(offer, 0..4).prop_map(|offers| {
        let mut event = scheduler::Event::new();
        event.set_type(scheduler::event::Type::OFFERS);
        event.offers.mut_or_insert_default().offers = offers;
        event
    })
}

fn task_state() -> impl Strategy<Value = TaskState> {
    prop::sample::select(vec![
        TaskState::TASK_STAGING,
        TaskState::TASK_RUNNING,
        TaskState::TASK_FINISHED,
        TaskState::TASK_FAILED,
        TaskState::TASK_KILLED,
        TaskState::TASK_LOST,
    ])
}

/// An executor's `UPDATE` or `MESSAGE` call.
fn executor_call() -> impl Strategy<Value = executor::Call> {
    let update = (id(), task_state(), id(), vec(any::<u8>(), 0..32)).prop_map(
        |(task, state, message, uuid)| {
            let mut status = TaskStatus::new();
            status.task_id.mut_or_insert_default().set_value(task);
            status.set_state(state);
            status.set_message(message);
            status.set_uuid(uuid);
            let mut call = executor::Call::new();
            call.set_type(executor::call::Type::UPDATE);
            call.update.mut_or_insert_default().status = Some(status).into();
            call
        },
    );
    let message = vec(any::<u8>(), 0..200).prop_map(|data| {
        let mut call = executor::Call::new();
        call.set_type(executor::call::Type::MESSAGE);
        call.message.mut_or_insert_default().set_data(data);
        call
    });
    (id(), id(), prop_oneof![update, message]).prop_map(|(framework, executor_id, mut call)| {
        call.framework_id = Some(framework_id(framework)).into();
        call.executor_id
            .mut_or_insert_default()
            .set_value(executor_id);
        call
    })
}

/// An executor's `LAUNCH` event, with any bytes as the task's data.
fn launch_event() -> impl Strategy<Value = executor::Event> {
    (
        id(),
        id(),
        id(),
        vec(any::<u8>(), 0..200),
        vec(resource(), 0..3),
    )
        .prop_map(|(name, task, agent, data, resources)| {
            let mut info = TaskInfo::new();
            info.set_name(name);
            info.task_id = Some({
                let mut id = TaskID::new();
                id.set_value(task);
                id
            })
            .into();
            info.agent_id = Some({
                let mut id = AgentID::new();
                id.set_value(agent);
                id
            })
            .into();
            info.set_data(data);
            info.resources = resources;
            let mut event = executor::Event::new();
            event.set_type(executor::event::Type::LAUNCH);
            event.launch.mut_or_insert_default().task = Some(info).into();
            event
        })
}

/// Encodes and decodes `message` in both content types; both must give it back.
fn round_trip<M: protobuf::MessageFull>(message: &M) -> Result<(), TestCaseError> {
    for content_type in [ContentType::Protobuf, ContentType::Json] {
        let bytes = content_type.encode(message);
        let back: M = content_type
            .decode(&bytes, "round trip")
            .map_err(|err| TestCaseError::fail(format!("{content_type}: {err}")))?;
        prop_assert_eq!(&back, message, "{}", content_type);
    }
    Ok(())
}

proptest! {
    #[test]
    fn scheduler_calls_round_trip(call in scheduler_call()) {
        round_trip(&call)?;
    }

    #[test]
    fn offers_events_round_trip(event in offers_event()) {
        round_trip(&event)?;
    }

    #[test]
    fn executor_calls_round_trip(call in executor_call()) {
        round_trip(&call)?;
    }

    #[test]
    fn launch_events_round_trip(event in launch_event()) {
        round_trip(&event)?;
    }
}

// ---------------------------------------------------------------------------
// TaskInfo.data, the scheduler-to-executor payload
// ---------------------------------------------------------------------------

/// Text close to a task payload: its keys, JSON punctuation and values.
fn task_data_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => prop::sample::select(vec!["{", "}", "[", "]", "\"", ":", ",", "'"]),
        2 => prop::sample::select(vec![
            "\"version\"", "\"noop_millis\"", "\"image_url\"", "\"upload_url\"",
            "\"upload_token\"", "\"http://h/a.png\"", "\"file:///etc/passwd\"",
        ]),
        1 => prop::sample::select(vec!["1", "2", "0", "-1", "4294967296", "1.5", "true"]),
    ];
    vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

/// An `http://` or `https://` URL, in any letter case, with anything after
/// the scheme (a scheme alone is refused by design).
fn http_url() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["http://", "https://", "HTTP://", "Https://"]);
    let rest = id().prop_filter("something after the scheme", |rest| !rest.is_empty());
    (scheme, rest).prop_map(|(scheme, rest)| format!("{scheme}{rest}"))
}

proptest! {
    #[test]
    fn task_data_decode_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = task_data::decode(&bytes);
    }

    #[test]
    fn task_data_decode_never_panics_on_near_json(text in task_data_soup()) {
        let _ = task_data::decode(text.as_bytes());
    }

    #[test]
    fn image_tasks_round_trip(image in http_url(), upload in http_url(), token in id()) {
        let data = task_data::image(&image, &upload, &token);
        let decoded = task_data::decode(&task_data::encode(&data));
        prop_assert_eq!(decoded, Ok(data));
    }

    #[test]
    fn noop_tasks_round_trip(millis in any::<u32>()) {
        let data = task_data::noop(millis);
        prop_assert_eq!(task_data::decode(&task_data::encode(&data)), Ok(data));
    }
}

// ---------------------------------------------------------------------------
// Agent resources: the `--resources` text
// ---------------------------------------------------------------------------

/// Text made of the resource syntax's pieces: mostly near misses.
fn resource_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => prop::sample::select(vec![":", ";", "[", "]", "{", "}", "-", ",", "(", ")", "*", ".", " "]),
        2 => prop::sample::select(vec!["cpus", "mem", "ports", "disks", "é", "\u{0}", "role"]),
        2 => prop::sample::select(vec!["0", "1", "9", "18446744073709551615", "18446744073709551616",
                                       "1e12", "1e13", "NaN", "inf", "-1", "0.0005", "1e-400"]),
    ];
    vec(token, 0..60).prop_map(|tokens| tokens.concat())
}

/// A label: Mesos's characters for names and set items.
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_/.-]{1,10}"
}

/// Names from a small pool, so that generated resources overlap.
fn resource_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["cpus", "mem", "ports", "disks"]).prop_map(String::from),
        1 => label(),
    ]
}

/// One valid `name:value` item, of any kind, in varied but valid spelling.
fn resource_item() -> impl Strategy<Value = String> {
    let scalar = (0u64..1_000_000_000, 0u32..1000, any::<bool>()).prop_map(
        |(whole, thousandths, with_fraction)| {
            if with_fraction {
                format!("{whole}.{thousandths:03}")
            } else {
                whole.to_string()
            }
        },
    );
    let ranges = vec((any::<u64>(), any::<u64>()), 0..4).prop_map(|pairs| {
        let ranges: Vec<String> = pairs
            .iter()
            .map(|&(a, b)| format!("{}-{}", a.min(b), a.max(b)))
            .collect();
        format!("[{}]", ranges.join(","))
    });
    let small_ranges = vec((0u64..200, 0u64..20), 0..4).prop_map(|pairs| {
        let ranges: Vec<String> = pairs
            .iter()
            .map(|&(begin, width)| format!("{begin}-{}", begin + width))
            .collect();
        format!("[{}]", ranges.join(", "))
    });
    let set = vec(label(), 0..4).prop_map(|items| format!("{{{}}}", items.join(",")));
    let role = prop::sample::select(vec!["", "(*)", "( * )"]);
    (
        resource_name(),
        role,
        prop_oneof![scalar, ranges, small_ranges, set],
    )
        .prop_map(|(name, role, value)| format!("{name}{role}:{value}"))
}

/// A valid resource text of several items.
fn resource_text() -> impl Strategy<Value = String> {
    vec(resource_item(), 0..6).prop_map(|items| items.join(";"))
}

fn parse(text: &str) -> Result<Resources, TestCaseError> {
    Resources::parse(text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))
}

proptest! {
    #[test]
    fn resource_parse_never_panics_on_any_string(text in any::<String>()) {
        let _ = Resources::parse(&text);
    }

    #[test]
    fn resource_parse_never_panics_on_near_misses(text in resource_soup()) {
        let _ = Resources::parse(&text);
    }

    #[test]
    fn resources_print_as_text_that_parses_back(text in resource_text()) {
        let resources = parse(&text)?;
        let printed = resources.to_string();
        prop_assert_eq!(&parse(&printed)?, &resources, "printed as {:?}", printed);
        prop_assert_eq!(parse(&printed)?.to_string(), printed);
    }

    #[test]
    fn resources_survive_an_offer_in_both_content_types(text in resource_text()) {
        // The embedded master offers the agent's resources as protobufs;
        // the scheduler may read them as JSON.
        let resources = parse(&text)?;
        let mut offer = Offer::new();
        offer.id = Some(offer_id("offer-1".into())).into();
        offer.framework_id = Some(framework_id("framework-1".into())).into();
        offer.agent_id.mut_or_insert_default().set_value("agent-1".into());
        offer.set_hostname("localhost".into());
        offer.resources = resources.to_protos(Some("*"));
        for content_type in [ContentType::Protobuf, ContentType::Json] {
            let back: Offer = content_type.decode(&content_type.encode(&offer), "Offer")?;
            let back = Resources::from_protos(&back.resources)
                .map_err(|err| TestCaseError::fail(format!("{content_type}: {err}")))?;
            prop_assert_eq!(&back, &resources, "{}", content_type);
        }
    }

    #[test]
    fn adding_gives_a_sum_that_contains_both(a in resource_text(), b in resource_text()) {
        let (a, b) = (parse(&a)?, parse(&b)?);
        let mut sum = a.clone();
        sum.add(&b);
        prop_assert!(sum.contains(&a), "{} does not contain {}", sum, a);
        prop_assert!(sum.contains(&b), "{} does not contain {}", sum, b);
    }

    #[test]
    fn subtracting_what_was_added_leaves_part_of_the_original(a in resource_text(), b in resource_text()) {
        let (a, b) = (parse(&a)?, parse(&b)?);
        let mut sum = a.clone();
        sum.add(&b);
        let mut rest = sum.clone();
        rest.subtract(&b).map_err(|err| TestCaseError::fail(format!("{sum} - {b}: {err}")))?;
        // Ranges and sets that a and b share are gone with b, so the rest is
        // within a; adding b again restores the sum.
        prop_assert!(a.contains(&rest), "{} is not within {}", rest, a);
        rest.add(&b);
        prop_assert_eq!(rest, sum);
    }

    #[test]
    fn scalars_added_then_subtracted_are_unchanged(
        a in vec((resource_name(), 0u64..1_000_000, 0u32..1000), 0..5),
        b in vec((resource_name(), 0u64..1_000_000, 0u32..1000), 0..5),
    ) {
        let text = |items: &[(String, u64, u32)]| {
            let items: Vec<String> =
                items.iter().map(|(n, w, t)| format!("{n}:{w}.{t:03}")).collect();
            items.join(";")
        };
        let (a, b) = (parse(&text(&a))?, parse(&text(&b))?);
        let mut result = a.clone();
        result.add(&b);
        result.subtract(&b).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(result, a);
    }

    #[test]
    fn taking_a_part_and_giving_it_back_restores_the_whole(
        whole in resource_text(),
        picks in vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let whole = parse(&whole)?;
        // A part of `whole`: some of its items, as `whole` prints them.
        let printed = whole.to_string();
        let items: Vec<&str> = printed.split("; ").filter(|item| !item.is_empty()).collect();
        let part: Vec<&str> = if items.is_empty() {
            Vec::new()
        } else {
            picks.iter().map(|pick| *pick.get(&items)).collect()
        };
        let mut part_resources = Resources::default();
        for item in &part {
            let item = parse(item)?;
            if !part_resources.contains(&item) {
                part_resources.add(&item);
            }
        }
        prop_assert!(whole.contains(&part_resources));
        let mut rest = whole.clone();
        rest.subtract(&part_resources).map_err(|err| TestCaseError::fail(err.to_string()))?;
        rest.add(&part_resources);
        prop_assert_eq!(rest, whole);
    }

    #[test]
    fn a_subtract_that_does_not_fit_changes_nothing(a in resource_text(), b in resource_text()) {
        let (a, b) = (parse(&a)?, parse(&b)?);
        let mut result = a.clone();
        match result.subtract(&b) {
            Ok(()) => prop_assert!(a.contains(&b)),
            Err(_) => {
                prop_assert!(!a.contains(&b));
                prop_assert_eq!(result, a);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Nesting: the one input a recursive parser cannot survive
// ---------------------------------------------------------------------------

/// JSON nested 100 000 levels deep after `prefix`. `json::parse` refuses
/// anything nested deeper than `json::MAX_NESTING` before the recursive
/// parser sees it, since running out of stack aborts the whole process.
fn deeply_nested_after(prefix: &str) -> String {
    let depth = 100_000;
    format!("{prefix}{}{}}}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_nesting_is_refused_in_every_message() {
    let json = deeply_nested_after(r#"{"type":"SUBSCRIBED","x":"#);
    let bytes = json.as_bytes();
    let json = ContentType::Json;
    assert!(json.decode::<scheduler::Event>(bytes, "x").is_err());
    assert!(json.decode::<scheduler::Call>(bytes, "x").is_err());
    assert!(json.decode::<executor::Event>(bytes, "x").is_err());
    assert!(json.decode::<executor::Call>(bytes, "x").is_err());
}

#[test]
fn deep_nesting_behind_a_single_quoted_string_is_refused() {
    // protobuf-json-mapping also accepts single-quoted strings, in which `"`
    // is an ordinary character. Read as double-quoted JSON, `'"'` opens a
    // string that never closes, so the brackets after it are not counted.
    let json = deeply_nested_after(r#"{"note":'"',"x":"#);
    assert!(ContentType::Json
        .decode::<scheduler::Event>(json.as_bytes(), "x")
        .is_err());
}

#[test]
fn a_task_payload_hiding_deep_nesting_is_refused() {
    let mut payload = String::from(r#"{"version":1,"note":'"',"x":"#);
    payload.push_str(&"[".repeat(task_data::MAX_ENCODED_BYTES - payload.len()));
    assert!(task_data::decode(payload.as_bytes()).is_err());
}
