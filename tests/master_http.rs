//! The embedded master, driven with raw HTTP, as a client nobody here wrote
//! would drive it: every request below is typed out by hand, so these tests
//! show what the scheduler API looks like on the wire and which status a bad
//! call gets (the same as Mesos 1.11's master).

mod common;

use common::http::agent_address;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Sends raw bytes and reads the answer; a streaming answer is read for a
/// moment and then cut off.
fn send(address: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to the embedded master");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    // A stream sends heartbeats, so stop reading after a while in any case.
    let deadline = std::time::Instant::now() + Duration::from_millis(700);
    while std::time::Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => {} // nothing yet, or a stream between two events
        }
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn post(address: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut request = format!("POST /api/v1/scheduler HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    send(address, &bytes)
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const SUBSCRIBE: &str =
    r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"ada","name":"raw http test"}}}"#;

fn cluster() -> Cluster {
    Cluster::start(ClusterConfig::default()).expect("the embedded cluster starts")
}

/// Subscribes with JSON and returns the answer, the stream id and the
/// framework id taken from the SUBSCRIBED event.
fn subscribe(address: SocketAddr) -> (Answer, String, String) {
    let answer = post(
        address,
        &[JSON, ("Accept", "application/json")],
        SUBSCRIBE.as_bytes(),
    );
    let stream_id = answer
        .header("Mesos-Stream-Id")
        .expect("a Mesos-Stream-Id header");
    let marker = r#""framework_id":{"value":""#;
    let start = answer.body.find(marker).expect("a SUBSCRIBED event") + marker.len();
    let framework_id = answer.body[start..].split('"').next().unwrap().to_string();
    (answer, stream_id, framework_id)
}

#[test]
fn subscribe_in_json_streams_subscribed_and_offers() {
    let cluster = cluster();
    let (answer, stream_id, framework_id) = subscribe(cluster.master_address());
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        answer.header("Transfer-Encoding").as_deref(),
        Some("chunked")
    );
    assert!(!stream_id.is_empty() && !framework_id.is_empty());
    assert!(
        answer.body.contains(r#""type":"SUBSCRIBED""#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(r#""heartbeat_interval_seconds":15"#),
        "{}",
        answer.body
    );
    // The free resources are offered straight away.
    assert!(
        answer.body.contains(r#""type":"OFFERS""#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(r#""begin":31000,"end":32000"#),
        "{}",
        answer.body
    );
}

#[test]
fn a_missing_accept_header_means_json() {
    let cluster = cluster();
    let answer = post(cluster.master_address(), &[JSON], SUBSCRIBE.as_bytes());
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn subscribe_in_protobuf_with_a_chunked_request_body() {
    let cluster = cluster();
    // Call { type: SUBSCRIBE (field 2 = 1), subscribe (field 3) {
    //   framework_info (field 1) { user (1): "u", name (2): "n" } } }
    let call: &[u8] = &[
        0x10, 0x01, 0x1a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'u', 0x12, 0x01, b'n',
    ];
    let mut request = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Accept: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        call.len()
    )
    .into_bytes();
    request.extend_from_slice(call);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    let answer = send(cluster.master_address(), &request);
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("application/x-protobuf")
    );
    // The first chunk holds the first RecordIO record: `<length>\n` and an
    // Event whose first field is `type: SUBSCRIBED` (field 1 = 1).
    let chunk = answer.body.split_once("\r\n").unwrap().1;
    let record = chunk.split_once('\n').unwrap().1.as_bytes();
    assert_eq!(&record[..2], &[0x08, 0x01]);
}

#[test]
fn methods_other_than_post_get_405() {
    let cluster = cluster();
    let answer = send(
        cluster.master_address(),
        b"GET /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("Allow").as_deref(), Some("POST"));
}

#[test]
fn content_type_problems_get_400_and_415() {
    let cluster = cluster();
    let address = cluster.master_address();
    let missing = post(address, &[], SUBSCRIBE.as_bytes());
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("Content-Type"), "{}", missing.body);
    let unsupported = post(
        address,
        &[("Content-Type", "text/plain")],
        SUBSCRIBE.as_bytes(),
    );
    assert_eq!(unsupported.status, 415);
}

#[test]
fn malformed_calls_get_400_with_a_reason() {
    let cluster = cluster();
    let address = cluster.master_address();
    let garbage = post(address, &[JSON], b"{\"type\": ");
    assert_eq!(garbage.status, 400);
    assert!(garbage.body.contains("Failed to parse"), "{}", garbage.body);
    let bad_protobuf = post(
        address,
        &[("Content-Type", "application/x-protobuf")],
        &[0xff, 0xff, 0xff],
    );
    assert_eq!(bad_protobuf.status, 400);
    let no_type = post(address, &[JSON], b"{}");
    assert_eq!(no_type.status, 400);
    assert!(no_type.body.contains("'type'"), "{}", no_type.body);
}

#[test]
fn subscribe_rules_get_400_and_406() {
    let cluster = cluster();
    let address = cluster.master_address();
    let with_stream_id = post(
        address,
        &[JSON, ("Mesos-Stream-Id", "abc")],
        SUBSCRIBE.as_bytes(),
    );
    assert_eq!(with_stream_id.status, 400);
    assert!(
        with_stream_id.body.contains("Mesos-Stream-Id"),
        "{}",
        with_stream_id.body
    );
    let not_acceptable = post(
        address,
        &[JSON, ("Accept", "text/html")],
        SUBSCRIBE.as_bytes(),
    );
    assert_eq!(not_acceptable.status, 406);
}

#[test]
fn calls_must_name_a_subscribed_framework_and_its_stream() {
    let cluster = cluster();
    let address = cluster.master_address();
    let (_, stream_id, framework_id) = subscribe(address);
    let decline = |framework: &str| {
        format!(
            r#"{{"framework_id":{{"value":"{framework}"}},"type":"DECLINE","decline":{{"offer_ids":[]}}}}"#
        )
    };

    let no_framework = post(
        address,
        &[JSON, ("Mesos-Stream-Id", &stream_id)],
        br#"{"type":"DECLINE","decline":{}}"#,
    );
    assert_eq!(no_framework.status, 400);
    assert!(
        no_framework.body.contains("framework_id"),
        "{}",
        no_framework.body
    );

    let unknown = post(
        address,
        &[JSON, ("Mesos-Stream-Id", &stream_id)],
        decline("nobody").as_bytes(),
    );
    assert_eq!(unknown.status, 403);

    let no_stream = post(address, &[JSON], decline(&framework_id).as_bytes());
    assert_eq!(no_stream.status, 400);
    assert!(
        no_stream.body.contains("Mesos-Stream-Id"),
        "{}",
        no_stream.body
    );

    let wrong_stream = post(
        address,
        &[JSON, ("Mesos-Stream-Id", "not-it")],
        decline(&framework_id).as_bytes(),
    );
    assert_eq!(wrong_stream.status, 400);

    let accepted = post(
        address,
        &[JSON, ("Mesos-Stream-Id", &stream_id)],
        decline(&framework_id).as_bytes(),
    );
    assert_eq!(accepted.status, 202, "{}", accepted.body);
}

#[test]
fn a_framework_whose_stream_closed_is_not_subscribed() {
    let config = ClusterConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(config).unwrap();
    let address = cluster.master_address();
    // Our `send` hangs up after reading; without a failover timeout the
    // master then removes the framework. It notices when it next writes
    // to the stream, at the latest with the next heartbeat (100 ms here).
    let (_, stream_id, framework_id) = subscribe(address);
    let call = format!(r#"{{"framework_id":{{"value":"{framework_id}"}},"type":"REVIVE"}}"#);
    let mut status = 0;
    for _ in 0..50 {
        status = post(
            address,
            &[JSON, ("Mesos-Stream-Id", &stream_id)],
            call.as_bytes(),
        )
        .status;
        if status == 403 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, 403);
}

/// A subscription kept open, whose events are read as text.
struct EventStream {
    stream: TcpStream,
    text: String,
}

impl EventStream {
    fn open(address: SocketAddr) -> EventStream {
        EventStream::subscribe(address, "/api/v1/scheduler", SUBSCRIBE)
    }

    /// POSTs a JSON `SUBSCRIBE` call to `path` and keeps the answer open.
    fn subscribe(address: SocketAddr, path: &str, call: &str) -> EventStream {
        let mut stream = TcpStream::connect(address).expect("connect to the embedded cluster");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\n\r\n{call}",
            call.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        EventStream {
            stream,
            text: String::new(),
        }
    }

    /// Reads until `needle` appears after byte `from` of everything read,
    /// and returns where it starts.
    fn wait_for(&mut self, needle: &str, from: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        loop {
            if let Some(at) = self.text.get(from..).and_then(|rest| rest.find(needle)) {
                return from + at;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the events: {}",
                &self.text[from.min(self.text.len())..]
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the master closed the stream: {}", self.text),
                Ok(n) => self.text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
    }

    /// The `Mesos-Stream-Id` of the subscription's answer.
    fn stream_id(&mut self) -> String {
        self.wait_for("\r\n\r\n", 0);
        let head = self.text.split("\r\n\r\n").next().unwrap().to_string();
        Answer {
            status: 200,
            head,
            body: String::new(),
        }
        .header("Mesos-Stream-Id")
        .expect("a stream id")
    }

    /// The first `"<key>":{"value":"…"}` at or after byte `from`.
    fn value_after(&mut self, key: &str, from: usize) -> String {
        let marker = format!(r#""{key}":{{"value":""#);
        let start = self.wait_for(&marker, from) + marker.len();
        self.wait_for("\"", start);
        self.text[start..].split('"').next().unwrap().to_string()
    }
}

#[test]
fn a_launch_that_reuses_a_live_task_id_is_refused_and_leaves_that_task_alone() {
    let cluster = cluster();
    let address = cluster.master_address();
    let mut events = EventStream::open(address);
    let stream_id = events.stream_id();
    let framework_id = events.value_after("framework_id", 0);
    // An executor that never subscribes keeps its task STAGING: enough to
    // hold a live task id for the test.
    let task = |agent: &str| {
        format!(
            r#"{{"name":"t","task_id":{{"value":"task-1"}},"agent_id":{{"value":"{agent}"}},
            "resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":0.5}}}},
                         {{"name":"mem","type":"SCALAR","scalar":{{"value":64}}}}],
            "executor":{{"executor_id":{{"value":"sleeper"}},
                         "command":{{"value":"sleep 30","shell":true}},
                         "resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":0.1}}}},
                                      {{"name":"mem","type":"SCALAR","scalar":{{"value":32}}}}]}}}}"#
        )
    };
    let accept = |offer: &str, agent: &str| {
        format!(
            r#"{{"framework_id":{{"value":"{framework_id}"}},"type":"ACCEPT","accept":{{
            "offer_ids":[{{"value":"{offer}"}}],
            "operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{}]}}}}],
            "filters":{{"refuse_seconds":0}}}}}}"#,
            task(agent)
        )
    };
    let call = |body: String| accepted(address, &stream_id, body);

    let first_offer = events.wait_for(r#""type":"OFFERS""#, 0);
    let offer = events.value_after("id", first_offer);
    let agent = events.value_after("agent_id", first_offer);
    call(accept(&offer, &agent));

    let second_offer = events.wait_for(r#""type":"OFFERS""#, first_offer + 1);
    let offer = events.value_after("id", second_offer);
    call(accept(&offer, &agent));
    let refused = events.wait_for("TASK_ERROR", second_offer);
    events.wait_for("duplicate", refused);

    // The master still records the first task as it was, not as the
    // refused duplicate.
    call(format!(
        r#"{{"framework_id":{{"value":"{framework_id}"}},"type":"RECONCILE",
        "reconcile":{{"tasks":[{{"task_id":{{"value":"task-1"}}}}]}}}}"#
    ));
    let reconciled = events.wait_for("REASON_RECONCILIATION", refused);
    let update = events.text[..reconciled]
        .rfind(r#""type":"UPDATE""#)
        .expect("the reconciliation update");
    let state = &events.text[update..reconciled];
    assert!(state.contains("TASK_STAGING"), "{state}");
}

/// POSTs a JSON call on the subscription `stream_id`; it must be accepted.
fn accepted(address: SocketAddr, stream_id: &str, body: String) {
    let answer = post(
        address,
        &[JSON, ("Mesos-Stream-Id", stream_id)],
        body.as_bytes(),
    );
    assert_eq!(answer.status, 202, "{}", answer.body);
}

/// POSTs a JSON executor call to the agent and returns the status.
fn executor_call(agent: SocketAddr, body: &str) -> Answer {
    let request = format!(
        "POST /api/v1/executor HTTP/1.1\r\nHost: {agent}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(agent, request.as_bytes())
}

#[test]
fn an_update_sent_again_after_its_acknowledgement_is_acknowledged_again_not_delivered_twice() {
    let cluster = cluster();
    let address = cluster.master_address();
    let mut events = EventStream::open(address);
    let stream_id = events.stream_id();
    let framework_id = events.value_after("framework_id", 0);
    let offer_at = events.wait_for(r#""type":"OFFERS""#, 0);
    let offer = events.value_after("id", offer_at);
    let agent_id = events.value_after("agent_id", offer_at);
    let call = |body: String| accepted(address, &stream_id, body);
    // The executor's command never subscribes: this test plays the
    // executor itself, over the agent's executor API.
    call(format!(
        r#"{{"framework_id":{{"value":"{framework_id}"}},"type":"ACCEPT","accept":{{
        "offer_ids":[{{"value":"{offer}"}}],
        "operations":[{{"type":"LAUNCH","launch":{{"task_infos":[{{"name":"t",
          "task_id":{{"value":"task-1"}},"agent_id":{{"value":"{agent_id}"}},
          "resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":0.5}}}},
                       {{"name":"mem","type":"SCALAR","scalar":{{"value":64}}}}],
          "executor":{{"executor_id":{{"value":"played"}},
                       "command":{{"value":"sleep 30","shell":true}},
                       "resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":0.1}}}},
                                    {{"name":"mem","type":"SCALAR","scalar":{{"value":32}}}}]}}}}]}}}}]}}}}"#
    ));

    let agent = agent_address(cluster.master_address());
    let ids = format!(
        r#""framework_id":{{"value":"{framework_id}"}},"executor_id":{{"value":"played"}}"#
    );
    let mut executor = EventStream::subscribe(
        agent,
        "/api/v1/executor",
        &format!(r#"{{{ids},"type":"SUBSCRIBE","subscribe":{{}}}}"#),
    );
    executor.wait_for(r#""type":"LAUNCH""#, 0);
    let update = |state: &str, uuid: &str, source: &str, executor_id: &str| {
        format!(
            r#"{{"framework_id":{{"value":"{framework_id}"}},"executor_id":{{"value":"played"}},
            "type":"UPDATE","update":{{"status":{{"task_id":{{"value":"task-1"}},"state":"{state}",
            "source":"{source}","uuid":"{uuid}","executor_id":{{"value":"{executor_id}"}}}}}}}}"#
        )
    };
    const FIRST: &str = "AQEBAQEBAQEBAQEBAQEBAQ==";
    const SECOND: &str = "AgICAgICAgICAgICAgICAg==";

    // Mesos's checks on the update itself.
    let wrong_source = executor_call(
        agent,
        &update("TASK_RUNNING", FIRST, "SOURCE_MASTER", "played"),
    );
    assert_eq!(wrong_source.status, 400, "{}", wrong_source.body);
    assert!(
        wrong_source.body.contains("SOURCE_EXECUTOR"),
        "{}",
        wrong_source.body
    );
    let wrong_executor = executor_call(
        agent,
        &update("TASK_RUNNING", FIRST, "SOURCE_EXECUTOR", "other"),
    );
    assert_eq!(wrong_executor.status, 400, "{}", wrong_executor.body);

    let running = update("TASK_RUNNING", FIRST, "SOURCE_EXECUTOR", "played");
    assert_eq!(executor_call(agent, &running).status, 202);
    let delivered = events.wait_for("TASK_RUNNING", offer_at);
    call(format!(
        r#"{{"framework_id":{{"value":"{framework_id}"}},"type":"ACKNOWLEDGE","acknowledge":{{
        "agent_id":{{"value":"{agent_id}"}},"task_id":{{"value":"task-1"}},"uuid":"{FIRST}"}}}}"#
    ));
    let acknowledged = executor.wait_for(r#""type":"ACKNOWLEDGED""#, 0);

    // The executor missed that (say its connection dropped) and sends the
    // update again: it hears ACKNOWLEDGED again, the scheduler hears
    // nothing new.
    assert_eq!(executor_call(agent, &running).status, 202);
    executor.wait_for(r#""type":"ACKNOWLEDGED""#, acknowledged + 1);
    let finished = update("TASK_FINISHED", SECOND, "SOURCE_EXECUTOR", "played");
    assert_eq!(executor_call(agent, &finished).status, 202);
    let end = events.wait_for("TASK_FINISHED", delivered);
    let between = &events.text[delivered + 1..end];
    assert!(
        !between.contains("TASK_RUNNING"),
        "TASK_RUNNING was delivered twice: {between}"
    );
}
