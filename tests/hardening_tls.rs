//! Hardening, part 4: the embedded master behind TLS holds clients to the
//! same limits as on plain HTTP.
//!
//! `mesos-local --tls-cert F --tls-key F` serves the scheduler API over TLS.
//! A client that misbehaves over TLS is no less a threat than one over plain
//! HTTP: it can trickle its head, announce a terabyte, stall in its body or
//! simply connect and say nothing. These tests repeat the front-door tests of
//! `hardening_servers.rs` over TLS, against the master's port, with a real
//! TLS client (`rustls`, the library `ureq` and the scheduler use) that
//! trusts the test certificate authority of `tests/data/tls/`.
//!
//! Each limit is expected to behave exactly as it does in the clear: the same
//! status, the same message, the same absence of leftovers. The first tests
//! only check that TLS works at all.

mod common;

use common::certificates::{AUTHORITY, CERTIFICATE, PRIVATE_KEY};
use common::http::{
    connect_tcp, exchange_on, kept_alive, read_answer, read_next_answer, read_until_seen, request,
    Answer, DEADLINE,
};
#[cfg(target_os = "linux")]
use common::processes::{least_growth_since, threads_and_descriptors};
use mesos_tutorial::front_door::Limits;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Certificates and a blocking TLS client
// ---------------------------------------------------------------------------

/// A client configuration that trusts only the test authority, speaking
/// the given TLS versions.
fn client_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for authority in CertificateDer::pem_slice_iter(AUTHORITY) {
        roots
            .add(authority.expect("the test authority is a PEM certificate"))
            .expect("the test authority is a usable root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// What a client normally speaks: TLS 1.3, or 1.2 with a server without it.
fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| client_config(rustls::DEFAULT_VERSIONS)))
}

/// A TLS connection: `rustls` over a blocking socket. Reads and writes give
/// up after the timeouts set on `.sock`.
type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the TLS handshake with `config`, so that a server
/// that refuses TLS is told apart from one that refuses the request.
fn try_connect_with(address: SocketAddr, config: Arc<ClientConfig>) -> io::Result<TlsStream> {
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    let connection = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(connection, connect_tcp(address));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

fn try_connect(address: SocketAddr) -> io::Result<TlsStream> {
    try_connect_with(address, default_client_config())
}

fn connect(address: SocketAddr) -> TlsStream {
    try_connect(address).unwrap_or_else(|err| panic!("TLS handshake with {address}: {err}"))
}

// ---------------------------------------------------------------------------
// HTTP over that client (`common::http`, as in `hardening_servers.rs`)
// ---------------------------------------------------------------------------

/// Sends raw bytes over a new TLS connection and reads one response.
/// `None` if the server closed the connection without a complete answer.
fn exchange(address: SocketAddr, request: &[u8]) -> Option<Answer> {
    exchange_on(connect(address), request)
}

fn get(address: SocketAddr, target: &str) -> Answer {
    exchange(address, &request("GET", target, &[], b""))
        .unwrap_or_else(|| panic!("no answer to GET {target} over TLS"))
}

fn assert_healthy(address: SocketAddr) {
    let answer = get(address, "/health");
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "OK"),
        "{answer:?}"
    );
}

// ---------------------------------------------------------------------------
// The embedded master behind TLS
// ---------------------------------------------------------------------------

const SCHEDULER_API: &str = "/api/v1/scheduler";

/// An embedded cluster whose master speaks only TLS, with the test
/// certificate, on a free port of 127.0.0.1.
fn tls_cluster_with(limits: Limits) -> Cluster {
    tls_cluster(ClusterConfig {
        limits,
        ..ClusterConfig::default()
    })
}

fn tls_cluster(config: ClusterConfig) -> Cluster {
    Cluster::start(ClusterConfig {
        master_bind: "127.0.0.1:0".into(),
        agent_bind: "127.0.0.1:0".into(),
        tls: Some((CERTIFICATE.to_vec(), PRIVATE_KEY.to_vec())),
        ..config
    })
    .expect("start the embedded cluster with TLS")
}

/// Limits with deadlines short enough for a test to run into them, yet
/// long enough for a TLS handshake on a busy machine.
fn short_deadlines() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

/// Connections that stall are shut by their guard, even when a test fails,
/// so that no server thread is left waiting on them.
struct Held(Vec<TlsStream>);

impl Drop for Held {
    fn drop(&mut self) {
        for stream in &self.0 {
            let _ = stream.sock.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn the_master_answers_over_tls_1_2_and_1_3() {
    let cluster = tls_cluster_with(Limits::default());
    let master = cluster.master_address();
    for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
        let config = client_config(versions);
        let mut stream = try_connect_with(master, config)
            .unwrap_or_else(|err| panic!("{versions:?} handshake: {err}"));
        stream
            .write_all(&request("GET", "/health", &[], b""))
            .expect("send GET /health");
        let answer = read_answer(&mut stream).expect("an answer to GET /health");
        assert_eq!(
            (answer.status, answer.text().as_str()),
            (200, "OK"),
            "{versions:?}"
        );
    }
    let answer = get(master, "/master/no-such-endpoint");
    assert_eq!(answer.status, 404, "{answer:?}");
    assert!(answer.text().contains(SCHEDULER_API), "{}", answer.text());
    drop(cluster);
}

#[test]
fn a_connection_the_server_ends_ends_with_close_notify() {
    let cluster = tls_cluster_with(Limits::default());
    let master = cluster.master_address();
    let mut stream = connect(master);
    // HTTP/1.0: the server closes the connection after its answer.
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send the request");
    let mut received = Vec::new();
    // Without `close_notify`, rustls reads the end as `UnexpectedEof`: a
    // client could not tell the whole answer from a cut one.
    stream
        .read_to_end(&mut received)
        .expect("the answer, then close_notify");
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200"),
        "{text}"
    );
    assert!(text.ends_with("OK"), "{text}");
    drop(cluster);
}

#[test]
fn one_kept_alive_tls_connection_carries_many_requests() {
    let cluster = tls_cluster_with(Limits::default());
    let mut stream = connect(cluster.master_address());
    let mut received = Vec::new();
    let json = [("Content-Type", "application/json")];
    for (bytes, expected) in [
        (kept_alive("GET", "/health", &[], b""), 200),
        (kept_alive("POST", SCHEDULER_API, &json, b"{"), 400),
        (kept_alive("GET", "/health", &[], b""), 200),
    ] {
        stream.write_all(&bytes).expect("send a request");
        let answer =
            read_next_answer(&mut stream, &mut received).expect("an answer on the same connection");
        assert_eq!(answer.status, expected, "{answer:?}");
    }
    // Two requests in one write (pipelining): two answers, in order.
    let mut both = kept_alive("GET", "/health", &[], b"");
    both.extend_from_slice(&kept_alive("GET", "/missing", &[], b""));
    stream.write_all(&both).expect("send two requests");
    let first = read_next_answer(&mut stream, &mut received).expect("the first answer");
    let second = read_next_answer(&mut stream, &mut received).expect("the second answer");
    assert_eq!((first.status, second.status), (200, 404));
    drop(stream);
    drop(cluster);
}

#[test]
fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let cluster = tls_cluster_with(short_deadlines());
    let master = cluster.master_address();
    let mut stream = connect_tcp(master);
    let _ = stream.write_all(&request("GET", "/health", &[], b""));
    // Not served in the clear, and answered in the only words such a
    // client can read: plain HTTP, naming the way in.
    let answer = read_answer(&mut stream).expect("a plain-HTTP answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.text().contains("https://"), "{}", answer.text());
    assert_healthy(master);
    drop(cluster);
}

#[test]
fn an_event_stream_over_tls_outlives_every_request_deadline() {
    let cluster = tls_cluster(ClusterConfig {
        limits: short_deadlines(),
        heartbeat_interval: Duration::from_millis(100),
        ..ClusterConfig::default()
    });
    let subscribe =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"ada","name":"tls"}}}"#;
    let mut stream = connect(cluster.master_address());
    stream
        .write_all(&kept_alive(
            "POST",
            SCHEDULER_API,
            &[("Content-Type", "application/json")],
            subscribe,
        ))
        .expect("send SUBSCRIBE");
    // Twenty heartbeats take two seconds, twice each deadline.
    let received = read_until_seen(&mut stream, b"HEARTBEAT", 20);
    assert!(received.starts_with(b"HTTP/1.1 200"));
    drop(stream);
    drop(cluster);
}

// ---------------------------------------------------------------------------
// Each limit of the front door, over TLS
// ---------------------------------------------------------------------------

#[test]
fn a_head_over_16_kib_gets_431_over_tls() {
    let cluster = tls_cluster_with(Limits::default());
    let master = cluster.master_address();
    let big = "a".repeat(20 * 1024);
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("X-Header-{i}"), i.to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    for (shape, headers) in [
        ("one large header", &[("X-Big", &big[..])][..]),
        ("2000 headers", &many[..]),
    ] {
        let answer = exchange(master, &request("GET", "/health", headers, b""))
            .unwrap_or_else(|| panic!("{shape}: no answer over TLS"));
        assert_eq!(answer.status, 431, "{shape}: {answer:?}");
        assert!(
            answer.text().contains("16384"),
            "{shape}: {}",
            answer.text()
        );
    }
    assert_healthy(master);
    drop(cluster);
}

#[test]
fn a_content_length_over_the_limit_gets_413_over_tls_before_any_body_is_sent() {
    let cluster = tls_cluster_with(Limits::default());
    let master = cluster.master_address();
    for length in ["4194305", "1000000000000", "18446744073709551615"] {
        // Only the head goes out; the connection stays open for a body that
        // never comes, so an answer proves the server did not wait for it.
        let mut stream = connect(master);
        let head = format!(
            "POST {SCHEDULER_API} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let answer = read_answer(&mut stream)
            .unwrap_or_else(|| panic!("Content-Length {length}: no answer without the body"));
        assert_eq!(answer.status, 413, "Content-Length {length}: {answer:?}");
        assert!(answer.text().contains("4194304"), "{}", answer.text());
    }
    assert_healthy(master);
    drop(cluster);
}

#[cfg(target_os = "linux")]
#[test]
fn oversized_requests_over_tls_leave_no_threads_or_sockets_behind() {
    let cluster = tls_cluster_with(Limits::default());
    let master = cluster.master_address();
    // Warm up: the server's first connections start threads it keeps.
    for _ in 0..4 {
        let _ = exchange(master, &request("GET", "/", &[], b""));
    }
    let before = threads_and_descriptors();
    // More requests than the threads a cluster started by another test of
    // this file has, so that a leak of one per request stands out.
    let requests = 150;
    for i in 0..requests {
        let answer = exchange(
            master,
            &request(
                "POST",
                SCHEDULER_API,
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Length", "1000000000000"),
                ],
                b"",
            ),
        );
        assert_eq!(answer.map(|answer| answer.status), Some(413), "request {i}");
    }
    // A leak of one thread and one socket per refused request never grows
    // by less than 150; a third of that is the bar.
    let (threads, descriptors) = least_growth_since(before, 15);
    assert!(
        threads < requests / 3 && descriptors < requests / 3,
        "{requests} oversized requests over TLS left {threads} more threads and {descriptors} \
         more open descriptors"
    );
    assert_healthy(master);
    drop(cluster);
}

/// How [`drip`] sends each byte.
enum Drip {
    /// Through TLS: each byte in a record of its own.
    InRecords,
    /// As is, straight to the socket: the bytes are records made already.
    Raw,
}

/// Sends `bytes` one every 50 ms, as a slowloris client does, until the
/// server answers or closes. Returns the answer, if any, and how many bytes
/// went out.
fn drip(stream: &mut TlsStream, bytes: &[u8], how: Drip) -> (Option<Answer>, usize) {
    stream
        .sock
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let mut received = Vec::new();
    let mut sent = 0;
    while sent < bytes.len() {
        let byte = &bytes[sent..=sent];
        let written = match how {
            Drip::InRecords => stream.write_all(byte),
            Drip::Raw => stream.sock.write_all(byte),
        };
        if written.is_err() {
            break;
        }
        sent += 1;
        // The pause between bytes doubles as a look for the server's move.
        // Records that carry no data (TLS 1.3 session tickets) are taken in
        // by `rustls` and read as nothing.
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                received.extend_from_slice(&buffer[..n]);
                break;
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    stream
        .sock
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    (read_next_answer(stream, &mut received), sent)
}

/// Sends `head` over a new TLS connection, a byte (and a record) at a time.
fn trickle(address: SocketAddr, head: &[u8]) -> (Option<Answer>, usize) {
    drip(&mut connect(address), head, Drip::InRecords)
}

#[test]
fn a_head_trickled_byte_by_byte_over_tls_is_cut_off_at_the_deadline() {
    let cluster = tls_cluster_with(short_deadlines());
    let master = cluster.master_address();
    // 200 bytes at 50 ms each would take 10 s; the deadline is 1 s.
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(150)
    );
    let (answer, sent) = trickle(master, head.as_bytes());
    assert!(
        sent < head.len(),
        "the whole trickled head was taken in over TLS: {answer:?}"
    );
    let answer = answer.expect("a 408 answer over TLS to a trickled head");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        answer.text().contains("did not arrive"),
        "{}",
        answer.text()
    );
    assert_healthy(master);
    drop(cluster);
}

/// The bytes of one TLS record carrying `plain`, as `stream` would send
/// them, taken out of the client instead of being written.
fn one_record(stream: &mut TlsStream, plain: &[u8]) -> Vec<u8> {
    stream
        .conn
        .writer()
        .write_all(plain)
        .expect("queue the head");
    let mut record = Vec::new();
    while stream.conn.wants_write() {
        stream.conn.write_tls(&mut record).expect("take the record");
    }
    record
}

#[test]
fn a_head_dripped_inside_one_tls_record_gets_408() {
    // A long idle time and a short head deadline: the server cannot see
    // the head begin until its record is whole, so unless a record has a
    // deadline of its own, the drip below would be timed by the idle time.
    let limits = Limits {
        idle_timeout: Duration::from_secs(60),
        ..short_deadlines()
    };
    let cluster = tls_cluster_with(limits);
    let master = cluster.master_address();
    let mut stream = connect(master);
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let record = one_record(&mut stream, head.as_bytes());
    // 250-odd bytes at 50 ms each would take over 12 s.
    let (answer, sent) = drip(&mut stream, &record, Drip::Raw);
    assert!(
        sent < record.len(),
        "the whole dripped record ({} bytes) was taken in",
        record.len()
    );
    let answer = answer.expect("a 408 answer over TLS");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(
        answer.text().contains("did not arrive"),
        "{}",
        answer.text()
    );
    assert_healthy(master);
    drop(cluster);
}

#[test]
fn a_whole_record_without_a_request_leaves_the_idle_time_alone() {
    // Only a record still incomplete runs on the head's deadline; a whole
    // one that carries no request (here a TLS 1.3 key update) does not.
    let limits = Limits {
        idle_timeout: Duration::from_secs(5),
        ..short_deadlines()
    };
    let cluster = tls_cluster_with(limits);
    let master = cluster.master_address();
    let mut stream = connect(master);
    stream
        .conn
        .refresh_traffic_keys()
        .expect("a TLS 1.3 key update");
    stream.flush().expect("send the key update");
    // Longer than the head's deadline, well within the idle time.
    std::thread::sleep(Duration::from_millis(2500));
    stream
        .write_all(&request("GET", "/health", &[], b""))
        .expect("the connection is still open");
    let answer = read_answer(&mut stream).expect("an answer after the pause");
    assert_eq!(answer.status, 200, "{answer:?}");
    drop(cluster);
}

/// Whether the server closes the connection within `patience`, reading
/// (and dropping) whatever comes before, such as a TLS alert. An error
/// other than our own read timeout (a reset) counts as closed.
fn closes_within(stream: &mut impl Read, socket: &TcpStream, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut [0u8; 1024]) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_connection_that_never_says_hello_is_closed() {
    let cluster = tls_cluster_with(short_deadlines());
    let master = cluster.master_address();
    // Plain TCP, no ClientHello: the server waits for the first byte of a
    // handshake that never comes. Ten times the deadline is enough.
    let mut silent = connect_tcp(master);
    let socket = silent.try_clone().expect("clone the socket");
    assert!(
        closes_within(&mut silent, &socket, Duration::from_secs(10)),
        "a connection that sent no ClientHello is still open after 10 s; the deadlines are 1 s"
    );
    assert_healthy(master);
    drop(cluster);
}

#[test]
fn a_tls_connection_that_sends_no_request_is_closed_when_idle() {
    let cluster = tls_cluster_with(short_deadlines());
    let master = cluster.master_address();
    // The handshake completes, then nothing: an idle connection.
    let stream = connect(master);
    let socket = stream.sock.try_clone().expect("clone the socket");
    let mut held = Held(vec![stream]);
    assert!(
        closes_within(&mut held.0[0], &socket, Duration::from_secs(10)),
        "a TLS connection that sent no request is still open after 10 s; the deadlines are 1 s"
    );
    drop(held);
    assert_healthy(master);
    drop(cluster);
}

#[test]
fn connections_over_the_cap_get_503_over_tls() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let cluster = tls_cluster_with(limits);
    let master = cluster.master_address();
    let held = Held(vec![connect(master), connect(master)]);
    // The refusal is meant to come over TLS, as an HTTP answer a client can
    // show, not as a handshake that breaks off.
    let mut third = try_connect(master).unwrap_or_else(|err| {
        panic!(
            "a third TLS connection, over the cap of 2, had its handshake cut off ({err}) \
             instead of being answered 503 over TLS"
        )
    });
    let _ = third.write_all(&request("GET", "/health", &[], b""));
    let answer = read_answer(&mut third).expect("a 503 answer over TLS");
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.text().contains("at most 2"), "{}", answer.text());
    assert!(answer.header("Retry-After").is_some(), "{answer:?}");
    drop(third);
    drop(held);
    // Once those clients leave, their places are free again.
    let deadline = Instant::now() + DEADLINE;
    let status = || {
        try_connect(master).ok().and_then(|mut stream| {
            let _ = stream.write_all(&request("GET", "/health", &[], b""));
            read_answer(&mut stream).map(|answer| answer.status)
        })
    };
    let mut answered = status();
    while answered != Some(200) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        answered = status();
    }
    assert_eq!(answered, Some(200), "the master still refuses");
    drop(cluster);
}

#[test]
fn a_body_that_stalls_gets_408_over_tls() {
    let cluster = tls_cluster_with(short_deadlines());
    let master = cluster.master_address();
    let start = r#"{"type":"SUBSCRIBE","#;
    let cases = [
        // A chunk of 0x100 bytes announced, a few sent, then nothing.
        (
            "a chunked body",
            format!("Transfer-Encoding: chunked\r\n\r\n100\r\n{start}"),
        ),
        // One body small enough to be read whole before it is passed on,
        // one larger than that.
        ("500 bytes", format!("Content-Length: 500\r\n\r\n{start}")),
        (
            "200000 bytes",
            format!("Content-Length: 200000\r\n\r\n{start}"),
        ),
    ];
    for (body, rest) in cases {
        let mut stream = connect(master);
        let head = format!(
            "POST {SCHEDULER_API} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\n{rest}"
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let answer = read_answer(&mut stream)
            .unwrap_or_else(|| panic!("{body}: no answer within {DEADLINE:?} to a stalled body"));
        assert_eq!(answer.status, 408, "{body}: {answer:?}");
        assert!(
            answer.text().contains("did not arrive"),
            "{}",
            answer.text()
        );
    }
    assert_healthy(master);
    drop(cluster);
}
