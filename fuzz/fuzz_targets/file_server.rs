//! The file server, sent any bytes as a raw HTTP request.
//!
//! One [`FileServer`] is started for the whole run, on 127.0.0.1 with an
//! ephemeral port. It serves one registered file and accepts uploads with a
//! known token into a temporary folder, so that fuzzed requests can reach
//! every route: the page, `/files/`, `/output/` and authorised uploads. The
//! fuzz input is written to a fresh connection as is, the connection is
//! half-closed (no more bytes will come, so the server never waits for
//! them), and whatever the server answers is read until it closes.
//!
//! After each input the server must still answer a normal `GET` of the
//! registered file with that file; it must have closed every connection of
//! the input (the process's count of open file descriptors returns to what
//! it was before: no socket is leaked); and the upload folder must hold
//! nothing but safe names (and the hidden temporary files of uploads in
//! flight).
//!
//! Every input is sent, including the two kinds of request that once
//! leaked a socket and a thread each (kept in `tests/fuzz_regressions.rs`
//! and `tests/hardening_servers.rs`): a `Content-Length` beyond what
//! `tiny_http` can discard, and a request line of version `HTTP/2.0`. The
//! front door (`src/front_door/`) now answers both before `tiny_http`
//! sees them.
//!
//! The folder is `$TMPDIR/mesos-tutorial-fuzz-file-server-<pid>`; libFuzzer
//! ends the process with `exit`, which runs no destructors, so the folders
//! of earlier runs are removed when a run starts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_tutorial::server::{is_safe_name, FileServer};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The upload token; fuzzed requests that carry it reach the upload code.
const TOKEN: &str = "fuzz-token-0123456789";
/// What the registered file holds.
const CONTENT: &[u8] = b"the one registered file\n";
/// How long the fuzzed exchange may take before it is dropped. The server
/// answers a half-closed connection at once; only an answer that never ends
/// waits this long.
const EXCHANGE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long the check request may take: generous, as other work shares the
/// machine, and still below libFuzzer's `-timeout=10` with the others.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer that is read; the server sends nothing larger.
const MAX_ANSWER: usize = 1 << 20;
const FOLDER_PREFIX: &str = "mesos-tutorial-fuzz-file-server-";
/// How long the server may take to close the connections of an input
/// after the client has closed its end.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(2500);

struct Site {
    /// Kept alive for the whole run; never dropped.
    _server: FileServer,
    address: SocketAddr,
    uploads: PathBuf,
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| {
        remove_folders_of_earlier_runs();
        let root = std::env::temp_dir().join(format!("{FOLDER_PREFIX}{}", std::process::id()));
        let (served, uploads) = (root.join("served"), root.join("uploads"));
        std::fs::create_dir_all(&served).expect("create the served folder");
        std::fs::write(served.join("hello.txt"), CONTENT).expect("write the served file");
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("start a file server");
        server
            .serve_file("hello.txt", &served.join("hello.txt"))
            .expect("a safe name");
        server
            .accept_uploads(&uploads, TOKEN)
            .expect("a writable upload folder");
        let address = server
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .expect("the base URL of a loopback server is an address");
        Site {
            _server: server,
            address,
            uploads,
        }
    })
}

/// Removes the folders of runs whose process is gone (Linux: /proc/<pid>).
fn remove_folders_of_earlier_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(FOLDER_PREFIX) else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// How many file descriptors this process has open (Linux).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

/// What each open file descriptor is, for the message of a leak.
fn open_fd_targets() -> Vec<String> {
    let entries = std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd");
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.path()).ok())
        .map(|target| target.display().to_string())
        .collect()
}

fn connect(address: SocketAddr, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, timeout).expect("connect to the file server");
    stream
        .set_read_timeout(Some(timeout))
        .expect("a read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("a write timeout");
    stream
}

/// Reads until the server closes the connection, the time is up or
/// [`MAX_ANSWER`] bytes arrived. `true` if the server closed it.
fn read_to_close(stream: &mut TcpStream, received: &mut Vec<u8>) -> bool {
    let mut buffer = [0u8; 16 * 1024];
    while received.len() < MAX_ANSWER {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            // libFuzzer's timer signal (SIGALRM, for -timeout) interrupts
            // blocking reads now and then.
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    false
}

fuzz_target!(|request: &[u8]| {
    let site = site();
    // libFuzzer opens files of its own now and then, so the count is taken
    // afresh for each input.
    let idle_fds = open_fds();

    let mut stream = connect(site.address, EXCHANGE_TIMEOUT);
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    read_to_close(&mut stream, &mut answer);
    drop(stream);

    // Every answer starts with a status line (a request that is not HTTP
    // may also get no answer at all). tiny_http echoes the client's version,
    // even a made-up one such as HTTP/0.9.
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/"),
            "not an HTTP answer: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    }

    let mut check = connect(site.address, CHECK_TIMEOUT);
    check
        .write_all(b"GET /files/hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("send the check request");
    let mut answer = Vec::new();
    assert!(
        read_to_close(&mut check, &mut answer),
        "the server did not finish answering a normal GET after this input"
    );
    drop(check);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "a normal GET after this input got: {text}"
    );
    assert!(answer.ends_with(CONTENT), "the served file changed: {text}");

    // Both connections are closed on our side; the server closes its ends
    // once it sees that, or it leaks them.
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut fds = open_fds();
    while fds > idle_fds && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        fds = open_fds();
    }
    assert!(
        fds <= idle_fds,
        "the server still holds {} file descriptors after both clients closed: {:?}",
        fds - idle_fds,
        open_fd_targets()
    );

    for entry in std::fs::read_dir(&site.uploads).expect("list the upload folder") {
        let name = entry.expect("an entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            is_safe_name(&name) || (name.starts_with('.') && name.contains(".part-")),
            "the upload folder holds {name:?}, which is not a safe name"
        );
    }
});
