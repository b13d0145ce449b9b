//! Hardening, part 3: the scheduler and the executor binaries against peers
//! that misbehave.
//!
//! The scheduler trusts the master and the executor trusts the agent only so
//! far: each reads an event stream it did not write. Here each binary talks
//! to a fake peer, a few dozen lines of HTTP over a `TcpListener`, that
//! follows the protocol just long enough to get a subscription going and
//! then sends what a broken or hostile peer might: records that do not
//! decode, event types from a newer Mesos, resources nobody has heard of,
//! task payloads that are not ours, and a stream that breaks off in the
//! middle of a record. The binaries must carry on where they can, report
//! clearly where they cannot, and never panic.

mod common;

use common::temp_dir::TempDir;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::mesos::{value, Offer, Resource, TaskInfo, TaskState};
use mesos_tutorial::proto::{executor, scheduler};
use mesos_tutorial::recordio::encode_record;
use protobuf::{EnumOrUnknown, MessageFull};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a peer may take for any one step before the test calls it a
/// hang. A guard, not a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// A fake Mesos peer: answers calls with 202, SUBSCRIBE with an event stream
// ---------------------------------------------------------------------------

/// One call the binary under test made.
struct Received {
    body: Vec<u8>,
    stream_id: Option<String>,
    /// For a `SUBSCRIBE`: the open event stream, for the test to write to.
    events: Option<EventStream>,
}

/// The write end of an event stream: RecordIO records in HTTP chunks.
struct EventStream {
    socket: TcpStream,
    content_type: ContentType,
}

impl EventStream {
    fn send<M: MessageFull>(&mut self, message: &M) {
        self.send_record(&self.content_type.encode(message));
    }

    /// One RecordIO record, as one HTTP chunk, sent at once.
    fn send_record(&mut self, record: &[u8]) {
        self.send_raw(&encode_record(record));
    }

    /// Any bytes as one HTTP chunk, framed as RecordIO or not.
    fn send_raw(&mut self, bytes: &[u8]) {
        let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
        chunk.extend_from_slice(bytes);
        chunk.extend_from_slice(b"\r\n");
        // The binary may be gone already; the test checks what matters.
        let _ = self
            .socket
            .write_all(&chunk)
            .and_then(|()| self.socket.flush());
    }

    /// Breaks the connection without ending the response.
    fn cut(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// A peer that serves one API on 127.0.0.1. `is_subscribe` tells a
/// `SUBSCRIBE` call from the others by its body.
struct FakePeer {
    address: SocketAddr,
    calls: mpsc::Receiver<Received>,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakePeer {
    fn start(content_type: ContentType, is_subscribe: fn(ContentType, &[u8]) -> bool) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake peer");
        let address = listener.local_addr().expect("the fake peer's address");
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (sender, calls) = mpsc::channel();
        let acceptor = {
            let (stopping, connections) = (Arc::clone(&stopping), Arc::clone(&connections));
            std::thread::Builder::new()
                .name("fake-peer-accept".into())
                .spawn(move || {
                    // Numbers the event streams: stream-1, stream-2, ...
                    let streams = Arc::new(AtomicU64::new(0));
                    for socket in listener.incoming() {
                        if stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(socket) = socket else { continue };
                        let (sender, streams) = (sender.clone(), Arc::clone(&streams));
                        let connection = std::thread::Builder::new()
                            .name("fake-peer-connection".into())
                            .spawn(move || {
                                serve(socket, content_type, is_subscribe, &sender, &streams)
                            })
                            .expect("start a connection thread");
                        connections
                            .lock()
                            .expect("connections lock")
                            .push(connection);
                    }
                })
                .expect("start the fake peer")
        };
        FakePeer {
            address,
            calls,
            stopping,
            acceptor: Some(acceptor),
            connections,
        }
    }

    /// The next call `process` makes; a failed test if it exits or makes
    /// none in time.
    fn next_call(&self, process: &mut Process) -> Received {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            match self.calls.recv_timeout(Duration::from_millis(50)) {
                Ok(received) => return received,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("the binary exited ({status}):\n{}", process.stderr());
            }
        }
        panic!("the binary made no call in time:\n{}", process.stderr());
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor with one last connection.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *self.connections.lock().expect("lock"));
        for connection in connections {
            let _ = connection.join();
        }
    }
}

/// Serves one connection: requests one after another (clients keep
/// connections alive), until the client leaves or subscribes.
fn serve(
    socket: TcpStream,
    content_type: ContentType,
    is_subscribe: fn(ContentType, &[u8]) -> bool,
    calls: &mpsc::Sender<Received>,
    streams: &AtomicU64,
) {
    let _ = socket.set_read_timeout(Some(DEADLINE));
    let Ok(reader) = socket.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader);
    let mut socket = socket;
    while let Some(CallRequest { stream_id, body }) = read_request(&mut reader) {
        if is_subscribe(content_type, &body) {
            let number = streams.fetch_add(1, Ordering::SeqCst) + 1;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nMesos-Stream-Id: stream-{number}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n",
                content_type.mime()
            );
            if socket.write_all(head.as_bytes()).is_err() {
                return;
            }
            let events = EventStream {
                socket,
                content_type,
            };
            let _ = calls.send(Received {
                body,
                stream_id,
                events: Some(events),
            });
            return;
        }
        let answered = socket.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        let _ = calls.send(Received {
            body,
            stream_id,
            events: None,
        });
        if answered.is_err() {
            return;
        }
    }
}

/// What the fake peer needs of a request.
struct CallRequest {
    stream_id: Option<String>,
    body: Vec<u8>,
}

/// Reads one request's headers and body (by `Content-Length` or chunks).
fn read_request(reader: &mut impl BufRead) -> Option<CallRequest> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once(':')?;
        headers.push((key.trim().to_string(), value.trim().to_string()));
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = value("Content-Length") {
        let length: usize = length.parse().ok()?;
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    } else if value("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(CallRequest {
        stream_id: value("Mesos-Stream-Id"),
        body,
    })
}

// ---------------------------------------------------------------------------
// The binary under test, killed if a test ends before it does
// ---------------------------------------------------------------------------

struct Process {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    fn start(command: &mut Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let mut pipe = child.stderr.take().expect("a stderr pipe");
        let stderr = std::thread::Builder::new()
            .name("child-stderr".into())
            .spawn(move || {
                let mut text = Vec::new();
                let _ = pipe.read_to_end(&mut text);
                String::from_utf8_lossy(&text).into_owned()
            })
            .expect("start the stderr reader");
        Process {
            child,
            stderr: Some(stderr),
        }
    }

    /// Waits for the process to exit by itself; `None` if it does not in time.
    fn wait(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the process wrote to stderr (after it exited or was killed).
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exits by itself, with `code`, and without a panic; returns stderr.
fn assert_exits(mut process: Process, code: i32) -> String {
    let status = process.wait();
    let stderr = process.stderr();
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked:\n{stderr}"
    );
    let status = status.unwrap_or_else(|| panic!("the binary did not exit in time:\n{stderr}"));
    assert_eq!(status.code(), Some(code), "{stderr}");
    stderr
}

/// A protobuf event of a type number no Mesos 1.11 message declares, as a
/// newer master or agent might send: field 1 (`type`) as the varint 99.
const EVENT_OF_TYPE_99: &[u8] = &[0x08, 99];

// ---------------------------------------------------------------------------
// The scheduler against a fake master
// ---------------------------------------------------------------------------

fn scheduler_call(content_type: ContentType, body: &[u8]) -> scheduler::Call {
    content_type
        .decode(body, "scheduler Call")
        .expect("the scheduler sends calls that decode")
}

fn is_scheduler_subscribe(content_type: ContentType, body: &[u8]) -> bool {
    content_type
        .decode::<scheduler::Call>(body, "scheduler Call")
        .is_ok_and(|call| call.type_() == scheduler::call::Type::SUBSCRIBE)
}

fn start_scheduler(master: &FakePeer, content_type: &str) -> Process {
    Process::start(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(["--master", &master.address.to_string()])
            .args(["--step", "register", "--failover-timeout", "0"])
            .args(["--content-type", content_type])
            .env("RUST_LOG", "info"),
    )
}

fn subscribed(framework: &str) -> scheduler::Event {
    let mut event = scheduler::Event::new();
    event.set_type(scheduler::event::Type::SUBSCRIBED);
    let subscribed = event.subscribed.mut_or_insert_default();
    subscribed
        .framework_id
        .mut_or_insert_default()
        .set_value(framework.into());
    subscribed.set_heartbeat_interval_seconds(15.0);
    event
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

fn error_event(message: &str) -> scheduler::Event {
    let mut event = scheduler::Event::new();
    event.set_type(scheduler::event::Type::ERROR);
    event
        .error
        .mut_or_insert_default()
        .set_message(message.into());
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
