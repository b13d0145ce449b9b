//! Raw HTTP/1.1, typed out by hand, over any byte stream.
//!
//! The hardening tests attack the servers with what no HTTP library would
//! send (heads cut in half, bodies that announce a petabyte, one byte at a
//! time), so they write requests as bytes and read answers the same way.
//! The reading is generic over [`Read`] and [`Write`]: the same code reads
//! a plain TCP socket and a TLS connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long any one exchange may take before the test calls it a hang. Far
/// above what a request needs: a guard, not a timing assertion.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Opens a TCP connection whose reads and writes give up after
/// [`DEADLINE`].
pub fn connect_tcp(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, DEADLINE).expect("connect to the server");
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("write timeout");
    stream
}

/// An HTTP response as read off the connection.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes over `stream` and reads one response (skipping interim
/// `1xx` ones). `None` if the server closed the connection without a
/// complete answer.
pub fn exchange_on(mut stream: impl Read + Write, request: &[u8]) -> Option<Answer> {
    // A server may answer and close before reading everything we send.
    // A TLS client holds written bytes back until flushed; a socket does
    // not, and its flush does nothing.
    let _ = stream.write_all(request).and_then(|()| stream.flush());
    read_answer(&mut stream)
}

/// Reads one final response: status line and headers, then a body framed by
/// `Content-Length`, by chunks, or by the end of the connection.
pub fn read_answer(stream: &mut impl Read) -> Option<Answer> {
    read_next_answer(stream, &mut Vec::new())
}

/// Like [`read_answer`], for a connection that carries more answers:
/// `received` holds bytes read beyond the previous answer, and keeps those
/// read beyond this one.
///
/// The end of the connection and a read error (a reset, a timeout) both
/// end an answer: a TLS connection the server closes without
/// `close_notify` reads as an error, not as `Ok(0)`.
pub fn read_next_answer(stream: &mut impl Read, received: &mut Vec<u8>) -> Option<Answer> {
    loop {
        let head_end = loop {
            if let Some(end) = find(received, b"\r\n\r\n") {
                break end + 4;
            }
            let mut buffer = [0u8; 4096];
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return None,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        };
        let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
        let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
        received.drain(..head_end);
        if (100..200).contains(&status) {
            continue;
        }
        let mut answer = Answer {
            status,
            head,
            body: Vec::new(),
        };
        let length = answer
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = answer
            .header("Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let complete = |received: &[u8]| match (length, chunked) {
            (Some(length), _) => received.len() >= length,
            (None, true) => find(received, b"0\r\n\r\n").is_some(),
            (None, false) => false,
        };
        while !complete(received) {
            let mut buffer = [0u8; 65536];
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        let end = match (length, chunked) {
            (Some(length), _) => length.min(received.len()),
            (None, true) => find(received, b"0\r\n\r\n").map_or(received.len(), |at| at + 5),
            (None, false) => received.len(),
        };
        let rest = received.split_off(end);
        answer.body = std::mem::replace(received, rest);
        return Some(answer);
    }
}

/// Where `needle` first stands in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A complete request with `Connection: close`, so the exchange ends.
/// `Content-Length` is added unless `headers` name one.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
    {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request that keeps the connection open afterwards.
pub fn kept_alive(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads a streaming answer until `word` has come `times` times, and
/// returns all that was read. Panics if the stream ends first.
pub fn read_until_seen(stream: &mut impl Read, word: &[u8], times: usize) -> Vec<u8> {
    let mut received = Vec::new();
    let seen = |received: &[u8]| {
        received
            .windows(word.len())
            .filter(|window| *window == word)
            .count()
    };
    while seen(&received) < times {
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => panic!(
                "the stream ended after {} times {}: {}",
                seen(&received),
                String::from_utf8_lossy(word),
                String::from_utf8_lossy(&received)
            ),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    received
}

/// The embedded agent's address, found as any Mesos client finds an agent:
/// `/master/state` lists each agent with its `pid`, `slave(1)@host:port`.
pub fn agent_address(master: SocketAddr) -> SocketAddr {
    use protobuf::well_known_types::struct_::{value::Kind, Value};
    let answer = exchange_on(
        connect_tcp(master),
        &request("GET", "/master/state", &[], b""),
    )
    .expect("/master/state answers");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let state: Value =
        protobuf_json_mapping::parse_from_str(&answer.text()).expect("/master/state is JSON");
    let field = |value: &Value, name: &str| match &value.kind {
        Some(Kind::StructValue(object)) => object.fields.get(name).cloned(),
        _ => None,
    };
    let agents = field(&state, "slaves").and_then(|agents| match agents.kind {
        Some(Kind::ListValue(list)) => list.values.first().cloned(),
        _ => None,
    });
    let pid = agents
        .and_then(|agent| field(&agent, "pid"))
        .and_then(|pid| match pid.kind {
            Some(Kind::StringValue(pid)) => Some(pid),
            _ => None,
        })
        .expect("/master/state lists an agent with its pid");
    pid.rsplit('@')
        .next()
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("an agent pid of the form slave(1)@host:port, not {pid}"))
}
