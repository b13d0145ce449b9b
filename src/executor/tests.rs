//! The executor against a fake agent.
//!
//! The fake agent is a tiny_http server on 127.0.0.1. It answers every
//! call with `202 Accepted` and hands it to the test; it answers
//! `SUBSCRIBE` with a chunked `200 OK` whose RecordIO events the test
//! writes one by one, as a real agent would. Each test reads like a
//! conversation between the agent and the executor.

use super::*;
use crate::content_type::ContentType;
use crate::proto::executor::{call, Call};
use crate::recordio::encode_record;
use protobuf::Message;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The write end of one event stream.
struct EventStream {
    writer: Box<dyn Write + Send>,
}

impl EventStream {
    fn send(&mut self, event: &Event) {
        self.send_record(&event.write_to_bytes().expect("a complete event"));
    }

    /// Writes one RecordIO record as one HTTP chunk, and flushes it, so the
    /// executor sees it at once.
    fn send_record(&mut self, record: &[u8]) {
        let framed = encode_record(record);
        let mut chunk = format!("{:x}\r\n", framed.len()).into_bytes();
        chunk.extend_from_slice(&framed);
        chunk.extend_from_slice(b"\r\n");
        // The executor may have gone already; the test checks what matters.
        let _ = self
            .writer
            .write_all(&chunk)
            .and_then(|_| self.writer.flush());
    }

    /// Ends the response, as an agent that goes away would.
    fn close(mut self) {
        let _ = self
            .writer
            .write_all(b"0\r\n\r\n")
            .and_then(|_| self.writer.flush());
    }
}

/// One call the executor made.
struct Received {
    call: Call,
    had_stream_id: bool,
    /// For an accepted `SUBSCRIBE`: where the test writes events.
    stream: Option<EventStream>,
}

struct FakeAgent {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    calls: mpsc::Receiver<Received>,
    /// How many of the next `SUBSCRIBE` calls are answered 503, as by an
    /// agent that is still recovering.
    refuse_subscriptions: Arc<AtomicU32>,
    /// Set once the executor under test has returned: a call it did not
    /// make by then will never come.
    executor_returned: Arc<AtomicBool>,
}

impl FakeAgent {
    fn start() -> FakeAgent {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let refuse_subscriptions = Arc::new(AtomicU32::new(0));
        let (sender, calls) = mpsc::channel();
        let serving = Arc::clone(&server);
        let refusing = Arc::clone(&refuse_subscriptions);
        let thread = std::thread::Builder::new()
            .name("fake-agent".into())
            .spawn(move || {
                while let Ok(mut request) = serving.recv() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let call: Call = ContentType::Protobuf
                        .decode(&body, "executor Call")
                        .expect("the executor sends valid calls");
                    let had_stream_id = request
                        .headers()
                        .iter()
                        .any(|h| h.field.equiv(crate::http_api::STREAM_ID_HEADER));
                    let mut received = Received {
                        call,
                        had_stream_id,
                        stream: None,
                    };
                    // Each call is recorded before it is answered: once the
                    // executor has its answer, the test sees the call.
                    let answer = if received.call.type_() != call::Type::SUBSCRIBE {
                        Some(tiny_http::Response::from_string("").with_status_code(202))
                    } else if refusing.load(Ordering::SeqCst) > 0 {
                        refusing.fetch_sub(1, Ordering::SeqCst);
                        let answer = tiny_http::Response::from_string("agent is recovering");
                        Some(answer.with_status_code(503))
                    } else {
                        None
                    };
                    if let Some(answer) = answer {
                        if sender.send(received).is_err() {
                            return;
                        }
                        let _ = request.respond(answer);
                        continue;
                    }
                    let mut writer = request.into_writer();
                    let _ = writer.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                          Transfer-Encoding: chunked\r\n\r\n",
                    );
                    let _ = writer.flush();
                    received.stream = Some(EventStream { writer });
                    if sender.send(received).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the fake agent");
        FakeAgent {
            server,
            thread: Some(thread),
            calls,
            refuse_subscriptions,
            executor_returned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs the executor on its own thread, as the agent would start it.
    fn start_executor(&self, config: Environment) -> JoinHandle<Result<(), ExecutorError>> {
        let returned = Arc::clone(&self.executor_returned);
        std::thread::Builder::new()
            .name("executor-under-test".into())
            .spawn(move || {
                let result = run(config);
                returned.store(true, Ordering::SeqCst);
                result
            })
            .expect("spawn the executor")
    }

    fn config(&self, checkpoint: bool, recovery_timeout: &str) -> Environment {
        let port = self
            .server
            .server_addr()
            .to_ip()
            .expect("an IP address")
            .port();
        let vars = [
            ("MESOS_AGENT_ENDPOINT", format!("127.0.0.1:{port}")),
            ("MESOS_FRAMEWORK_ID", "framework-1".into()),
            ("MESOS_EXECUTOR_ID", "executor-1".into()),
            (
                "MESOS_CHECKPOINT",
                if checkpoint { "1" } else { "0" }.into(),
            ),
            ("MESOS_RECOVERY_TIMEOUT", recovery_timeout.into()),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "20ms".into()),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "60secs".into()),
        ];
        let vars = vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Environment::from_vars(&vars).expect("a valid test environment")
    }

    /// The next call; fails at once if the executor returned without
    /// making it. The 20 s are a guard against hanging, not a timing
    /// assertion.
    fn next_call(&self) -> Received {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let returned = self.executor_returned.load(Ordering::SeqCst);
            match self.calls.recv_timeout(Duration::from_millis(50)) {
                Ok(received) => return received,
                Err(_) if returned => panic!("the executor returned without making the call"),
                Err(_) if Instant::now() > deadline => {
                    panic!("the executor made no call within 20 s")
                }
                Err(_) => {}
            }
        }
    }

    /// The next call, which must be a `SUBSCRIBE` that was accepted.
    fn subscription(&self) -> (Call, EventStream) {
        let received = self.next_call();
        assert_eq!(received.call.type_(), call::Type::SUBSCRIBE);
        let stream = received.stream.expect("an accepted subscription");
        (received.call, stream)
    }

    /// The next call, which must be an `UPDATE` for `task` in `state`.
    fn update(&self, task: &str, state: TaskState) -> crate::proto::mesos::TaskStatus {
        let received = self.next_call();
        assert_eq!(received.call.type_(), call::Type::UPDATE);
        assert!(!received.had_stream_id, "executor calls carry no stream id");
        let status = received.call.update.status.clone().unwrap_or_default();
        assert_eq!((status.task_id.value(), status.state()), (task, state));
        status
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn event(event_type: Type) -> Event {
    let mut event = Event::new();
    event.set_type(event_type);
    event
}

fn subscribed() -> Event {
    let mut event = event(Type::SUBSCRIBED);
    let subscribed = event.subscribed.mut_or_insert_default();
    let executor = subscribed.executor_info.mut_or_insert_default();
    executor
        .executor_id
        .mut_or_insert_default()
        .set_value("executor-1".into());
    let framework = subscribed.framework_info.mut_or_insert_default();
    framework.set_user("tester".into());
    framework.set_name("tutorial".into());
    subscribed
        .agent_info
        .mut_or_insert_default()
        .set_hostname("fake-agent".into());
    event
}

fn task(id: &str, data: &str) -> TaskInfo {
    let mut task = TaskInfo::new();
    task.set_name(format!("task {id}"));
    task.task_id.mut_or_insert_default().set_value(id.into());
    task.agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    task.set_data(data.as_bytes().to_vec());
    task
}

fn launch(id: &str, data: &str) -> Event {
    let mut event = event(Type::LAUNCH);
    event.launch.mut_or_insert_default().task = Some(task(id, data)).into();
    event
}

fn kill(id: &str) -> Event {
    let mut event = event(Type::KILL);
    let kill = event.kill.mut_or_insert_default();
    kill.task_id.mut_or_insert_default().set_value(id.into());
    event
}

fn acknowledged(status: &crate::proto::mesos::TaskStatus) -> Event {
    let mut event = event(Type::ACKNOWLEDGED);
    let ack = event.acknowledged.mut_or_insert_default();
    ack.task_id = status.task_id.clone();
    ack.set_uuid(status.uuid().to_vec());
    event
}

/// A `LAUNCH_GROUP` event as a real agent encodes it: field 8 holds a
/// `TaskGroupInfo`, whose field 1 repeats `TaskInfo`.
fn launch_group(ids: &[&str]) -> Event {
    let mut group = Vec::new();
    for id in ids {
        let bytes = task(id, "").write_to_bytes().expect("a complete task");
        let mut out = protobuf::CodedOutputStream::vec(&mut group);
        out.write_bytes(1, &bytes).expect("writing to a Vec");
        out.flush().expect("writing to a Vec");
    }
    let mut event = event(Type::LAUNCH_GROUP);
    event
        .special_fields
        .mut_unknown_fields()
        .add_length_delimited(8, group);
    event
}

const LONG_TASK: &str = r#"{"version": 1, "noop_millis": 600000}"#;

#[test]
fn a_no_op_task_runs_and_the_executor_exits_on_shutdown() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1secs"));

    let received = agent.next_call();
    assert_eq!(received.call.type_(), call::Type::SUBSCRIBE);
    assert!(!received.had_stream_id);
    assert_eq!(received.call.executor_id.value(), "executor-1");
    assert_eq!(received.call.framework_id.value(), "framework-1");
    assert!(
        received.call.subscribe.is_some(),
        "SUBSCRIBE always has a subscribe message"
    );
    assert!(received.call.subscribe.unacknowledged_updates.is_empty());
    let mut stream = received.stream.expect("accepted");

    stream.send(&subscribed());
    stream.send_record(b"\xff\xff not an event");
    stream.send(&launch("t1", ""));

    let running = agent.update("t1", TaskState::TASK_RUNNING);
    assert_eq!(
        running.source(),
        crate::proto::mesos::task_status::Source::SOURCE_EXECUTOR
    );
    assert_eq!(running.executor_id.value(), "executor-1");
    assert!(running.timestamp() > 0.0);
    assert_eq!(running.uuid().len(), 16);
    assert_eq!(running.uuid()[6] >> 4, 4, "a version 4 UUID");
    let finished = agent.update("t1", TaskState::TASK_FINISHED);
    assert_eq!(finished.message(), "no-op task done after 0 ms");
    assert_ne!(running.uuid(), finished.uuid());

    stream.send(&acknowledged(&running));
    stream.send(&acknowledged(&running)); // a duplicate is harmless
    stream.send(&acknowledged(&finished));
    stream.send(&event(Type::SHUTDOWN));
    let result = executor.join().expect("the executor does not panic");
    assert!(result.is_ok(), "{result:?}");
    stream.close();
}

#[test]
fn kill_and_shutdown_end_tasks_with_task_killed() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1secs"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());

    stream.send(&launch("t1", LONG_TASK));
    let running_1 = agent.update("t1", TaskState::TASK_RUNNING);
    stream.send(&kill("t1"));
    let killed_1 = agent.update("t1", TaskState::TASK_KILLED);
    stream.send(&kill("no-such-task"));

    stream.send(&launch("t2", LONG_TASK));
    let running_2 = agent.update("t2", TaskState::TASK_RUNNING);
    stream.send(&event(Type::SHUTDOWN));
    let killed_2 = agent.update("t2", TaskState::TASK_KILLED);

    // The executor waits for every acknowledgement before it exits; an
    // event that does not decode (field 1, the type, cut short) is skipped
    // meanwhile, as at any other time.
    for status in [&running_1, &killed_1, &running_2] {
        stream.send(&acknowledged(status));
    }
    stream.send_record(b"\x08");
    stream.send(&event(Type::HEARTBEAT));
    // An executor that wrongly stopped waiting would exit within this
    // time; one that waits exits only after the last acknowledgement.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !executor.is_finished(),
        "exited with an update unacknowledged"
    );
    stream.send(&acknowledged(&killed_2));
    let result = executor.join().expect("the executor does not panic");
    assert!(result.is_ok(), "{result:?}");
    stream.close();
}

/// `--task-millis` in step 3: an image task first waits its `noop_millis`,
/// so a reader can watch it run; the image is fetched only after the wait,
/// and a kill during the wait ends it without a download.
#[test]
fn an_image_task_waits_its_noop_millis_before_the_download() {
    let images = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    images.set_nonblocking(true).unwrap();
    let port = images.local_addr().unwrap().port();
    let data = format!(
        r#"{{"version":1,"noop_millis":600000,"image_url":"http://127.0.0.1:{port}/a.png","upload_url":"http://127.0.0.1:{port}/upload/a-inverted"}}"#
    );
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1secs"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());

    stream.send(&launch("t1", &data));
    let running = agent.update("t1", TaskState::TASK_RUNNING);
    std::thread::sleep(Duration::from_millis(200));
    stream.send(&kill("t1"));
    let killed = agent.update("t1", TaskState::TASK_KILLED);
    assert!(
        images.accept().is_err(),
        "the image was requested before the task's wait was over"
    );

    stream.send(&event(Type::SHUTDOWN));
    for status in [&running, &killed] {
        stream.send(&acknowledged(status));
    }
    let result = executor.join().expect("the executor does not panic");
    assert!(result.is_ok(), "{result:?}");
    stream.close();
}

/// The executor keeps each running task's kill flag for a later `KILL` or
/// `SHUTDOWN`; a launch forgets only the tasks that ended.
#[test]
fn a_launch_keeps_the_running_tasks_and_forgets_the_ended_ones() {
    let agent = FakeAgent::start();
    let config = agent.config(false, "1secs");
    let mut executor = Executor {
        agent: Arc::new(AgentClient::new(&config)),
        tasks: HashMap::new(),
        config,
    };
    let kept = |executor: &Executor| {
        let mut ids: Vec<String> = executor.tasks.keys().cloned().collect();
        ids.sort();
        ids
    };
    for id in ["t1", "t2"] {
        executor.launch(task(id, LONG_TASK));
        agent.update(id, TaskState::TASK_RUNNING);
    }
    assert_eq!(kept(&executor), ["t1", "t2"], "both run");
    executor.kill("t1");
    agent.update("t1", TaskState::TASK_KILLED);
    // Its thread ends just after it sent the update.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !executor.tasks["t1"].has_ended() {
        assert!(Instant::now() < deadline, "t1's thread did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    executor.launch(task("t3", LONG_TASK));
    agent.update("t3", TaskState::TASK_RUNNING);
    assert_eq!(kept(&executor), ["t2", "t3"], "t1 ended");
    for id in ["t2", "t3"] {
        executor.kill(id);
    }
    let mut ended: Vec<String> = (0..2)
        .map(|_| {
            agent
                .next_call()
                .call
                .update
                .status
                .task_id
                .value()
                .to_string()
        })
        .collect();
    ended.sort();
    assert_eq!(ended, ["t2", "t3"], "each killed task reports its end");
}

#[test]
fn a_task_group_is_refused_task_by_task() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1secs"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());
    stream.send(&launch_group(&["g1", "g2"]));
    let first = agent.update("g1", TaskState::TASK_FAILED);
    let second = agent.update("g2", TaskState::TASK_FAILED);
    assert!(
        first.message().contains("LAUNCH_GROUP"),
        "{}",
        first.message()
    );
    stream.send(&acknowledged(&first));
    stream.send(&acknowledged(&second));
    stream.send(&event(Type::SHUTDOWN));
    assert!(executor.join().expect("no panic").is_ok());
    stream.close();
}

#[test]
fn unreadable_data_fails_the_task() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1secs"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());
    let mut statuses = Vec::new();
    let unreadable = [&b"\xff\xfe"[..], b"not json", br#"{"version": 99}"#];
    for (id, data) in ["t1", "t2", "t3"].into_iter().zip(unreadable) {
        let mut event = launch(id, "");
        let launched = event.launch.mut_or_insert_default();
        launched
            .task
            .mut_or_insert_default()
            .set_data(data.to_vec());
        stream.send(&event);
        statuses.push(agent.update(id, TaskState::TASK_RUNNING));
        let failed = agent.update(id, TaskState::TASK_FAILED);
        assert!(
            failed
                .message()
                .starts_with("could not read the task's data"),
            "{}",
            failed.message()
        );
        statuses.push(failed);
    }
    for status in &statuses {
        stream.send(&acknowledged(status));
    }
    stream.send(&event(Type::SHUTDOWN));
    assert!(executor.join().expect("no panic").is_ok());
    stream.close();
}

#[test]
fn a_panicking_task_fails_with_the_panic_message() {
    let fake = FakeAgent::start();
    let agent = Arc::new(AgentClient::new(&fake.config(false, "1secs")));
    let panicking = task("t1", "");
    agent.launched(&panicking);
    let id = panicking.task_id.clone().unwrap_or_default();
    let running = task_thread::start(Arc::clone(&agent), id, |_| panic!("decoder bug at row 7"));
    let failed = fake.update("t1", TaskState::TASK_FAILED);
    assert!(
        failed.message().contains("decoder bug at row 7"),
        "{}",
        failed.message()
    );
    assert!(!agent.is_active("t1"));

    // A task that said its last word before the panic gets no second one.
    let ending = task("t2", "");
    agent.launched(&ending);
    let id = ending.task_id.clone().unwrap_or_default();
    let reporter = Arc::clone(&agent);
    let finished = task_thread::start(Arc::clone(&agent), id, move |_| {
        reporter.update(&ending.task_id, TaskState::TASK_FINISHED, Some("done"));
        panic!("after the end");
    });
    fake.update("t2", TaskState::TASK_FINISHED);
    while !(running.has_ended() && finished.has_ended()) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The fake agent answers a call before it reports it: wait a little.
    let late = fake.calls.recv_timeout(Duration::from_millis(300));
    assert!(late.is_err(), "no second terminal update");
}

#[test]
fn with_checkpointing_a_lost_agent_gets_the_unacknowledged_updates_again() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(true, "1mins"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());
    stream.send(&launch("t1", ""));
    let running_1 = agent.update("t1", TaskState::TASK_RUNNING);
    let finished_1 = agent.update("t1", TaskState::TASK_FINISHED);
    stream.send(&acknowledged(&running_1));
    stream.send(&launch("t2", LONG_TASK));
    let running_2 = agent.update("t2", TaskState::TASK_RUNNING);

    // The agent restarts: the stream ends, and it answers 503 at first.
    agent.refuse_subscriptions.store(1, Ordering::SeqCst);
    stream.close();
    let refused = agent.next_call();
    assert_eq!(refused.call.type_(), call::Type::SUBSCRIBE);
    assert!(refused.stream.is_none());

    let (again, mut stream) = agent.subscription();
    let resent: Vec<_> = again
        .subscribe
        .unacknowledged_updates
        .iter()
        .map(|update| update.status.uuid().to_vec())
        .collect();
    assert_eq!(
        resent,
        vec![finished_1.uuid().to_vec(), running_2.uuid().to_vec()]
    );
    let tasks: Vec<_> = again
        .subscribe
        .unacknowledged_tasks
        .iter()
        .map(|task| task.task_id.value().to_string())
        .collect();
    assert_eq!(tasks, vec!["t2"], "t1 has an acknowledged update");

    stream.send(&subscribed());
    stream.send(&event(Type::SHUTDOWN));
    let killed_2 = agent.update("t2", TaskState::TASK_KILLED);
    for status in [&finished_1, &running_2, &killed_2] {
        stream.send(&acknowledged(status));
    }
    assert!(executor.join().expect("no panic").is_ok());
    stream.close();
}

#[test]
fn without_checkpointing_a_lost_agent_ends_the_executor() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(false, "1mins"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());
    stream.close();
    let err = executor
        .join()
        .expect("no panic")
        .expect_err("the agent is gone");
    assert!(matches!(err, ExecutorError::AgentLost { .. }), "{err:?}");
    assert!(err.to_string().contains("does not checkpoint"), "{err}");
}

#[test]
fn recovery_gives_up_after_the_recovery_timeout() {
    let agent = FakeAgent::start();
    let executor = agent.start_executor(agent.config(true, "300ms"));
    let (_, mut stream) = agent.subscription();
    stream.send(&subscribed());
    agent.refuse_subscriptions.store(u32::MAX, Ordering::SeqCst);
    stream.close();
    let err = executor
        .join()
        .expect("no panic")
        .expect_err("never taken back");
    match &err {
        ExecutorError::RecoveryTimedOut { last_error, .. } => {
            assert!(last_error.contains("503"), "{last_error}")
        }
        other => panic!("expected a recovery timeout, got {other:?}"),
    }
    assert!(agent.calls.try_iter().count() >= 1, "it did try again");
}

#[test]
fn a_refused_first_subscription_is_an_error() {
    let agent = FakeAgent::start();
    agent.refuse_subscriptions.store(1, Ordering::SeqCst);
    let err = run(agent.config(true, "1mins")).expect_err("refused");
    assert!(
        matches!(
            err,
            ExecutorError::Subscribe {
                variable: "MESOS_AGENT_ENDPOINT",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("agent is recovering"), "{err}");
    assert!(
        err.to_string()
            .contains("/api/v1/executor (from MESOS_AGENT_ENDPOINT)"),
        "{err}"
    );
}

#[test]
fn the_tasks_of_a_group_are_read_from_the_unknown_field() {
    let tasks = task_group::tasks(&launch_group(&["a", "b", "c"]));
    let ids: Vec<_> = tasks.iter().map(|t| t.task_id.value()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(task_group::tasks(&event(Type::LAUNCH_GROUP)).is_empty());
}

#[test]
fn errors_say_what_to_do() {
    let lost = ExecutorError::AgentLost {
        reason: "the event stream was closed by the other side".into(),
    };
    assert!(lost.to_string().contains("checkpoint"));
    let timeout = ExecutorError::RecoveryTimedOut {
        waited: Duration::from_secs(900),
        last_error: "connection refused".into(),
    };
    assert!(timeout.to_string().contains("MESOS_RECOVERY_TIMEOUT"));
    assert!(timeout.to_string().contains("connection refused"));
}
