//! A fake Mesos peer on 127.0.0.1, a few dozen lines of HTTP over a
//! `TcpListener`: it answers calls with `202 Accepted` and `SUBSCRIBE` with
//! an event stream that the test writes to, and hands the test every call,
//! in the order it came. Tests put our binaries in front of it, as the
//! master or the agent they talk to, and check what goes on the wire.

use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::scheduler;
use mesos_tutorial::recordio::encode_record;
use protobuf::MessageFull;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a peer may take for any one step before the test calls it a
/// hang. A guard, not a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// A fake Mesos peer: answers calls with 202, SUBSCRIBE with an event stream
// ---------------------------------------------------------------------------

/// One call the binary under test made.
pub struct Received {
    pub body: Vec<u8>,
    pub stream_id: Option<String>,
    /// For a `SUBSCRIBE`: the open event stream, for the test to write to.
    pub events: Option<EventStream>,
}

/// The write end of an event stream: RecordIO records in HTTP chunks.
pub struct EventStream {
    socket: TcpStream,
    content_type: ContentType,
}

impl EventStream {
    pub fn send<M: MessageFull>(&mut self, message: &M) {
        self.send_record(&self.content_type.encode(message));
    }

    /// One RecordIO record, as one HTTP chunk, sent at once.
    pub fn send_record(&mut self, record: &[u8]) {
        self.send_raw(&encode_record(record));
    }

    /// Any bytes as one HTTP chunk, framed as RecordIO or not.
    pub fn send_raw(&mut self, bytes: &[u8]) {
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
    pub fn cut(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// A peer that serves one API on 127.0.0.1. `is_subscribe` tells a
/// `SUBSCRIBE` call from the others by its body.
pub struct FakePeer {
    pub address: SocketAddr,
    pub calls: mpsc::Receiver<Received>,
    stopping: Arc<AtomicBool>,
    /// The status the next call other than `SUBSCRIBE` gets instead of
    /// `202`; 0 for none.
    refusal: Arc<AtomicU16>,
    acceptor: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl FakePeer {
    pub fn start(
        content_type: ContentType,
        is_subscribe: fn(ContentType, &[u8]) -> bool,
    ) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake peer");
        let address = listener.local_addr().expect("the fake peer's address");
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (sender, calls) = mpsc::channel();
        let refusal = Arc::new(AtomicU16::new(0));
        let acceptor = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            let refusal = Arc::clone(&refusal);
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
                        let sender = sender.clone();
                        let streams = Arc::clone(&streams);
                        let refusal = Arc::clone(&refusal);
                        let connection = std::thread::Builder::new()
                            .name("fake-peer-connection".into())
                            .spawn(move || {
                                let api = Api {
                                    content_type,
                                    is_subscribe,
                                    calls: &sender,
                                    streams: &streams,
                                    refusal: &refusal,
                                };
                                serve(socket, api)
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
            refusal,
            acceptor: Some(acceptor),
            connections,
        }
    }

    /// Answers the next call other than `SUBSCRIBE` with `status` (a
    /// master that is failing over answers `503`), and then `202` again.
    pub fn refuse_next_call(&self, status: u16) {
        self.refusal.store(status, Ordering::SeqCst);
    }

    /// The next call `process` makes; a failed test if it exits or makes
    /// none in time.
    pub fn next_call(&self, process: &mut Process) -> Received {
        self.next_call_within(process, DEADLINE)
    }

    /// The next call `process` makes within `limit`.
    pub fn next_call_within(&self, process: &mut Process, limit: Duration) -> Received {
        let deadline = Instant::now() + limit;
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
        panic!(
            "the binary made no call within {limit:?}:\n{}",
            process.stderr()
        );
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

/// What one connection of the fake peer shares with the others.
struct Api<'a> {
    content_type: ContentType,
    is_subscribe: fn(ContentType, &[u8]) -> bool,
    calls: &'a mpsc::Sender<Received>,
    /// Numbers the event streams.
    streams: &'a AtomicU64,
    refusal: &'a AtomicU16,
}

/// Serves one connection: requests one after another (clients keep
/// connections alive), until the client leaves or subscribes.
fn serve(socket: TcpStream, api: Api) {
    let Api {
        content_type,
        is_subscribe,
        calls,
        streams,
        refusal,
    } = api;
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
        let answer = match refusal.swap(0, Ordering::SeqCst) {
            0 => "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string(),
            status => {
                format!("HTTP/1.1 {status} Refused\r\nContent-Length: 15\r\n\r\nnot the leader.")
            }
        };
        let answered = socket.write_all(answer.as_bytes());
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

pub struct Process {
    pub child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    pub fn start(command: &mut Command) -> Process {
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
    pub fn wait(&mut self) -> Option<ExitStatus> {
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
    pub fn stderr(&mut self) -> String {
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
pub fn assert_exits(mut process: Process, code: i32) -> String {
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

// ---------------------------------------------------------------------------
// The scheduler's side: calls read, events written
// ---------------------------------------------------------------------------

/// A call of the scheduler's, decoded.
pub fn scheduler_call(content_type: ContentType, body: &[u8]) -> scheduler::Call {
    content_type
        .decode(body, "scheduler Call")
        .expect("the scheduler sends calls that decode")
}

/// Whether a request body is the scheduler's `SUBSCRIBE`.
pub fn is_scheduler_subscribe(content_type: ContentType, body: &[u8]) -> bool {
    content_type
        .decode::<scheduler::Call>(body, "scheduler Call")
        .is_ok_and(|call| call.type_() == scheduler::call::Type::SUBSCRIBE)
}

/// The master's `SUBSCRIBED`, with a heartbeat every 15 s.
pub fn subscribed(framework: &str) -> scheduler::Event {
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

/// The master's `ERROR`: it removed the framework, and the scheduler ends.
pub fn error_event(message: &str) -> scheduler::Event {
    let mut event = scheduler::Event::new();
    event.set_type(scheduler::event::Type::ERROR);
    event
        .error
        .mut_or_insert_default()
        .set_message(message.into());
    event
}
