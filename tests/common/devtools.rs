//! A headless Chromium driven through its DevTools protocol, for a test
//! that must click in a page rather than only read it.
//!
//! No protocol library: Chromium started with `--remote-debugging-port=0`
//! writes the port it chose to `DevToolsActivePort` in its profile; a page
//! opened with `PUT /json/new?URL` has a WebSocket at
//! `/devtools/page/<id>`, which takes JSON commands one per text frame.
//! The only command used is `Runtime.evaluate`, which runs a script in the
//! page and returns its value (awaiting a promise if it returns one). The
//! WebSocket is the least of RFC 6455: one connection, text frames out
//! (masked, as a client's must be), text frames in (unmasked, possibly in
//! pieces).

use super::programs::Program;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long Chromium may take to start, and a script to answer.
const LIMIT: Duration = Duration::from_secs(60);

/// A Chromium with one page open.
pub struct Browser {
    // Dropped first: the connection, then the browser.
    page: TcpStream,
    next_id: u64,
    _chromium: Program,
}

impl Browser {
    /// Starts Chromium with its profile in `profile` and opens `url`.
    pub fn open(url: &str, profile: &Path) -> Browser {
        let mut chromium = Command::new("chromium");
        chromium
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank");
        #[cfg(unix)]
        let chromium = Program::start_in_group(&mut chromium);
        #[cfg(not(unix))]
        let chromium = Program::start(&mut chromium);
        let port = devtools_port(profile);
        let created = http(port, &format!("PUT /json/new?{url}"));
        let path = created
            .split("\"webSocketDebuggerUrl\"")
            .nth(1)
            .and_then(|rest| rest.split(&format!("127.0.0.1:{port}")).nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no page socket in {created}"))
            .to_string();
        let mut page = TcpStream::connect(("127.0.0.1", port)).expect("the DevTools port");
        page.set_read_timeout(Some(LIMIT)).expect("a timeout");
        let upgrade = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        page.write_all(upgrade.as_bytes()).expect("the upgrade");
        let head = read_head(&mut page);
        assert!(head.starts_with("HTTP/1.1 101"), "no WebSocket: {head}");
        let mut browser = Browser {
            page,
            next_id: 0,
            _chromium: chromium,
        };
        browser.wait_until_loaded(url);
        browser
    }

    /// Waits until the tab shows `url`, fully loaded: a script run while
    /// the tab still navigates is lost with the old page.
    fn wait_until_loaded(&mut self, url: &str) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let answer = self.evaluate("location.href + ' ' + document.readyState");
            if answer.contains(&format!(r#""value":"{url} complete""#)) {
                return;
            }
            assert!(Instant::now() < deadline, "{url} never loaded: {answer}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` in the page, awaits it if it is a promise, and returns
    /// the `Runtime.evaluate` answer as JSON text.
    pub fn evaluate(&mut self, script: &str) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let command = format!(
            r#"{{"id":{id},"method":"Runtime.evaluate","params":{{"expression":{},"awaitPromise":true,"returnByValue":true}}}}"#,
            json_string(script)
        );
        send_text(&mut self.page, command.as_bytes());
        let mine = format!("{{\"id\":{id},");
        let deadline = Instant::now() + LIMIT;
        loop {
            let message = receive_text(&mut self.page);
            if message.starts_with(&mine) {
                return message;
            }
            assert!(Instant::now() < deadline, "no answer to {script}");
        }
    }
}

/// The port in the profile's `DevToolsActivePort`, once Chromium wrote it.
fn devtools_port(profile: &Path) -> u16 {
    let deadline = Instant::now() + LIMIT;
    loop {
        let written = std::fs::read_to_string(profile.join("DevToolsActivePort"));
        if let Some(port) = written
            .ok()
            .and_then(|text| text.lines().next().and_then(|l| l.trim().parse().ok()))
        {
            return port;
        }
        assert!(Instant::now() < deadline, "Chromium never opened its port");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request to the DevTools HTTP endpoint; its body.
fn http(port: u16, request_line: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the DevTools port");
    stream.set_read_timeout(Some(LIMIT)).expect("a timeout");
    let request =
        format!("{request_line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("the request");
    // Chromium keeps the connection open despite `Connection: close`:
    // read the body its `Content-Length` announces, not up to the end of
    // the stream (that waited out the whole read timeout).
    let mut reader = BufReader::new(stream);
    let head = head_lines(&mut reader);
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().expect("a length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the answer's body");
    String::from_utf8(body).expect("a text answer")
}

fn read_head(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let head = head_lines(&mut reader);
    // Chromium sends nothing after the head before our first frame.
    assert!(reader.buffer().is_empty(), "bytes after the handshake");
    head
}

/// An HTTP message's head: its lines up to the empty one, which ends it
/// (or up to the end of the stream).
fn head_lines(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).expect("an HTTP head");
        head.push_str(&line);
        if read == 0 || line == "\r\n" {
            return head;
        }
    }
}

/// One masked text frame.
fn send_text(stream: &mut TcpStream, payload: &[u8]) {
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n < 65536 => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).expect("a frame sent");
}

/// The next text message, its frames joined.
fn receive_text(stream: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).expect("a frame");
        let length = match head[1] & 0x7f {
            126 => {
                let mut bytes = [0u8; 2];
                stream.read_exact(&mut bytes).expect("a length");
                u64::from(u16::from_be_bytes(bytes))
            }
            127 => {
                let mut bytes = [0u8; 8];
                stream.read_exact(&mut bytes).expect("a length");
                u64::from_be_bytes(bytes)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(length).expect("a frame that fits")];
        stream.read_exact(&mut payload).expect("a payload");
        message.extend_from_slice(&payload);
        if head[0] & 0x80 != 0 {
            return String::from_utf8_lossy(&message).into_owned();
        }
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
