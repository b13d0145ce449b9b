//! Hardening, part 2: the two servers against clients that misbehave.
//!
//! The file server listens on an address every agent can reach, and the
//! embedded master and agent listen on loopback for any local program. Real
//! clients are well behaved; these tests are not. They speak raw TCP to the
//! real servers, so that they can send what no HTTP library would: paths that
//! try to climb out of the served names, bodies that announce a petabyte,
//! requests cut in half, bytes that are not HTTP at all, and clients that stop
//! in the middle. After each attack the server must still answer a normal
//! request, which shows it neither crashed nor got stuck.

mod common;

use common::http::{
    agent_address, connect_tcp, exchange_on, find, kept_alive, read_answer, read_next_answer,
    read_until_seen, request, Answer, DEADLINE,
};
#[cfg(target_os = "linux")]
use common::processes::{least_growth_since, threads_and_descriptors};
use common::temp_dir::TempDir;
use mesos_tutorial::front_door::Limits;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::server::{FileServer, MAX_UPLOAD_BYTES};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Raw HTTP over a plain socket (`common::http`, as in `hardening_tls.rs`)
// ---------------------------------------------------------------------------

/// Sends raw bytes over a new connection and reads one response.
/// `None` if the server closed the connection without a complete answer.
fn exchange(address: SocketAddr, request: &[u8]) -> Option<Answer> {
    exchange_on(connect_tcp(address), request)
}

fn get(address: SocketAddr, target: &str) -> Answer {
    exchange(address, &request("GET", target, &[], b""))
        .unwrap_or_else(|| panic!("no answer to GET {target}"))
}

// ---------------------------------------------------------------------------
// The file server
// ---------------------------------------------------------------------------

const SERVED: &[u8] = b"the one registered file\n";
const SECRET: &[u8] = b"a file nobody registered\n";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A file server that serves one file, `known.txt`, from a folder that also
/// holds a file it does not serve, `secret.txt`, next to another folder
/// outside it with `outside.txt`; uploads go to a third folder.
struct Site {
    server: FileServer,
    address: SocketAddr,
    served: TempDir,
    outside: TempDir,
    uploads: TempDir,
}

impl Site {
    fn start() -> Site {
        Site::start_with(Limits::default(), MAX_UPLOAD_BYTES)
    }

    fn start_with(limits: Limits, max_upload_bytes: u64) -> Site {
        let served = TempDir::new("served");
        let outside = TempDir::new("outside");
        let uploads = TempDir::new("uploads");
        std::fs::write(served.path().join("known.txt"), SERVED).expect("write known.txt");
        std::fs::write(served.path().join("secret.txt"), SECRET).expect("write secret.txt");
        std::fs::write(outside.path().join("outside.txt"), SECRET).expect("write outside.txt");
        let server =
            FileServer::start_with_limits("127.0.0.1:0", "127.0.0.1", limits, max_upload_bytes)
                .expect("start the file server");
        server
            .serve_file("known.txt", &served.path().join("known.txt"))
            .expect("register known.txt");
        server
            .accept_uploads(uploads.path(), TOKEN)
            .expect("accept uploads");
        let address = server
            .base_url()
            .trim_start_matches("http://")
            .parse()
            .expect("the base URL names host:port");
        Site {
            server,
            address,
            served,
            outside,
            uploads,
        }
    }

    /// The server still answers a plain request with the registered file.
    fn assert_still_serving(&self) {
        let answer = get(self.address, "/files/known.txt");
        assert_eq!(
            (answer.status, &answer.body[..]),
            (200, SERVED),
            "{answer:?}"
        );
    }

    fn upload(&self, name: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        exchange(
            self.address,
            &request("POST", &format!("/upload/{name}"), headers, body),
        )
        .unwrap_or_else(|| panic!("no answer to the upload of {name}"))
    }
}

#[test]
fn path_tricks_never_reach_unregistered_files() {
    let site = Site::start();
    let outside = site.outside.path().join("outside.txt");
    let served = site.served.path().join("secret.txt");
    let long = format!("/files/{}", "a/../".repeat(20_000));
    let tricks = [
        "/files/secret.txt".to_string(),
        "/files/../secret.txt".into(),
        "/files/./secret.txt".into(),
        "/files/known.txt/../secret.txt".into(),
        "/files/%2e%2e/secret.txt".into(),
        "/files/%2e%2e%2fsecret.txt".into(),
        "/files/..%2f..%2f..%2fetc%2fpasswd".into(),
        "/files/%252e%252e%252fsecret.txt".into(),
        "/files/..\\secret.txt".into(),
        "/files/..%5csecret.txt".into(),
        "/files/secret.txt%00".into(),
        "/files/known.txt%00.png".into(),
        "/files/known.txt%00/../secret.txt".into(),
        format!("/files/{}", outside.display()),
        format!("/files/{}", served.display()),
        format!(
            "/files/%2f{}",
            outside.display().to_string().trim_start_matches('/')
        ),
        format!("/files//{}", outside.display()),
        "/files/%ff%fe".into(),
        "/files/%".into(),
        "/output/../secret.txt".into(),
        "/output/%2e%2e%2fsecret.txt".into(),
        format!("/output/{}", outside.display()),
        "/../secret.txt".into(),
        "/secret.txt".into(),
        "/etc/passwd".into(),
        "//etc/passwd".into(),
        "http://127.0.0.1/files/secret.txt".into(),
        "*".into(),
        long,
        format!("/files/{}", "%2e".repeat(30_000)),
    ];
    for target in &tricks {
        for method in ["GET", "HEAD"] {
            let shown = &target[..target.len().min(80)];
            let answer = exchange(site.address, &request(method, target, &[], b""))
                .unwrap_or_else(|| panic!("no answer to {method} {shown}"));
            assert!(
                matches!(answer.status, 400 | 404 | 414 | 431),
                "{method} {shown} got {}",
                answer.status
            );
            assert!(
                find(&answer.body, SECRET).is_none(),
                "{method} {shown} leaked a file"
            );
        }
    }
    site.assert_still_serving();
}

#[cfg(unix)]
#[test]
fn a_symlink_is_served_only_when_registered_by_name() {
    let site = Site::start();
    let link = site.served.path().join("link.txt");
    std::os::unix::fs::symlink(site.outside.path().join("outside.txt"), &link)
        .expect("make a symlink");
    for target in ["/files/link.txt", "/output/link.txt"] {
        let answer = get(site.address, target);
        assert_eq!(answer.status, 404, "{target}: {answer:?}");
    }
    // Registering is the framework's explicit choice; then it is served.
    site.server
        .serve_file("link.txt", &link)
        .expect("register the link");
    let answer = get(site.address, "/files/link.txt");
    assert_eq!((answer.status, &answer.body[..]), (200, SECRET));
}

#[test]
fn a_file_placed_in_the_output_folder_is_not_served_unless_uploaded() {
    let site = Site::start();
    std::fs::write(site.uploads.path().join("planted.png"), SECRET).expect("plant a file");
    assert_eq!(get(site.address, "/output/planted.png").status, 404);
}

#[test]
fn refused_uploads_store_nothing() {
    let site = Site::start();
    let body = b"not really a png";
    let wrong_token = "f".repeat(TOKEN.len());
    let wrong_case = TOKEN.to_uppercase();
    // Without the right token: refused whatever the name.
    let tokens = [
        None,
        Some(""),
        Some(&wrong_token[..]),
        Some(&TOKEN[1..]),
        Some(&wrong_case),
    ];
    for token in tokens {
        let headers: Vec<(&str, &str)> = token.map(|t| ("x-upload-token", t)).into_iter().collect();
        let answer = site.upload("a.png", &headers, body);
        assert_eq!(answer.status, 403, "token {token:?}: {answer:?}");
    }
    // With the right token but a name that is not a plain file name.
    let names = [
        "..%2fescape.png",
        "%2e%2e",
        ".hidden",
        "a%2fb.png",
        "a%5cb.png",
        "a%00b.png",
        "%ff.png",
        "",
        "a%20b.png",
        &"n".repeat(129),
    ];
    for name in names {
        let answer = site.upload(name, &[("X-Upload-Token", TOKEN)], body);
        assert_eq!(answer.status, 400, "name {name:?}: {answer:?}");
    }

    // A client that announces more than it sends, then stops sending.
    let mut stream = connect_tcp(site.address);
    let head = request(
        "POST",
        "/upload/short.png",
        &[("X-Upload-Token", TOKEN), ("Content-Length", "100000")],
        b"only a little",
    );
    stream.write_all(&head).expect("send a short upload");
    stream.shutdown(Shutdown::Write).expect("stop sending");
    let answer = read_answer(&mut stream).expect("an answer to a short upload");
    assert_eq!(answer.status, 400, "{answer:?}");

    assert_eq!(site.uploads.entries(), Vec::<String>::new());
    assert_eq!(site.server.uploaded_path("short.png"), None);
    site.assert_still_serving();
}

#[test]
fn a_chunked_upload_cut_off_inside_a_chunk_stores_nothing() {
    let site = Site::start();
    let mut stream = connect_tcp(site.address);
    // A chunk of 4096 bytes announced, 100 sent, then the client stops.
    let upload = format!(
        "POST /upload/cut.png HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Upload-Token: {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n1000\r\n{}",
        "x".repeat(100)
    );
    stream
        .write_all(upload.as_bytes())
        .expect("send the upload");
    stream.shutdown(Shutdown::Write).expect("stop sending");
    let answer = read_answer(&mut stream).expect("an answer to a cut-off upload");
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(site.uploads.entries(), Vec::<String>::new());
    assert_eq!(site.server.uploaded_path("cut.png"), None);
}

#[test]
fn oversized_uploads_get_413_and_store_nothing() {
    let site = Site::start();
    let limit = MAX_UPLOAD_BYTES.to_string();
    let over = (MAX_UPLOAD_BYTES + 1).to_string();

    // Over the limit by one byte: refused from the header alone. The client
    // asks for `100 Continue` first, as curl does for large bodies, and so
    // never has to send the body.
    let answer = site.upload(
        "big.png",
        &[
            ("X-Upload-Token", TOKEN),
            ("Content-Length", &over),
            ("Expect", "100-continue"),
        ],
        b"",
    );
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.text().contains(&limit), "{}", answer.text());

    // Absurd lengths, which a server must not try to allocate or read.
    for absurd in ["1000000000000000", "18446744073709551615"] {
        let answer = site.upload(
            "huge.png",
            &[("X-Upload-Token", TOKEN), ("Content-Length", absurd)],
            b"",
        );
        assert_eq!(answer.status, 413, "Content-Length {absurd}: {answer:?}");
    }

    // A chunked body announces nothing: the server counts as it reads.
    let mut stream = connect_tcp(site.address);
    stream
        .write_all(
            format!(
                "POST /upload/chunked.png HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
                 X-Upload-Token: {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send the head");
    let chunk = vec![b'x'; 1 << 20];
    let chunks = MAX_UPLOAD_BYTES / chunk.len() as u64 + 2;
    let sent_all = (0..chunks).all(|_| {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        stream.write_all(&framed).is_ok()
    });
    if sent_all {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let answer = read_answer(&mut stream).expect("an answer to the chunked upload");
    assert_eq!(answer.status, 413, "{answer:?}");

    assert_eq!(site.uploads.entries(), Vec::<String>::new());
    assert_eq!(site.server.uploaded_path("huge.png"), None);
    assert_eq!(site.server.uploaded_path("chunked.png"), None);
    site.assert_still_serving();
}

#[test]
fn wrong_methods_get_405_with_the_allowed_ones() {
    let site = Site::start();
    let cases = [
        ("POST", "/files/known.txt", "GET, HEAD"),
        ("PUT", "/files/known.txt", "GET, HEAD"),
        ("DELETE", "/files/known.txt", "GET, HEAD"),
        ("POST", "/", "GET, HEAD"),
        ("DELETE", "/output/a.png", "GET, HEAD"),
        ("GET", "/upload/a.png", "POST"),
        ("PUT", "/upload/a.png", "POST"),
        ("OPTIONS", "/upload/a.png", "POST"),
        ("BREW", "/upload/a.png", "POST"),
    ];
    for (method, target, allow) in cases {
        let answer = exchange(
            site.address,
            &request(method, target, &[("X-Upload-Token", TOKEN)], b"body"),
        )
        .unwrap_or_else(|| panic!("no answer to {method} {target}"));
        assert_eq!(answer.status, 405, "{method} {target}");
        assert_eq!(answer.header("Allow"), Some(allow), "{method} {target}");
    }
    assert_eq!(site.uploads.entries(), Vec::<String>::new());
    site.assert_still_serving();
}

#[test]
fn sixty_four_concurrent_uploads_are_all_stored_intact() {
    let site = Site::start();
    let address = site.address;
    let content = |i: usize| -> Vec<u8> {
        (0..20_000 + i * 97)
            .map(|j| (j * 31 + i * 7) as u8)
            .collect()
    };
    let uploads: Vec<_> = (0..64)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("uploader-{i}"))
                .spawn(move || {
                    let body = content(i);
                    let answer = exchange(
                        address,
                        &request(
                            "POST",
                            &format!("/upload/result-{i}.png"),
                            &[("X-Upload-Token", TOKEN)],
                            &body,
                        ),
                    );
                    answer.map(|answer| answer.status)
                })
                .expect("start an uploader")
        })
        .collect();
    for (i, upload) in uploads.into_iter().enumerate() {
        let status = upload.join().expect("the uploader finished");
        assert_eq!(status, Some(201), "upload {i}");
    }
    let mut expected: Vec<String> = (0..64).map(|i| format!("result-{i}.png")).collect();
    expected.sort();
    for name in &expected {
        assert_eq!(
            site.server.uploaded_path(name),
            Some(site.uploads.path().join(name)),
            "{name} is recorded where it was stored"
        );
    }
    assert_eq!(
        site.uploads.entries(),
        expected,
        "no temporary files are left"
    );
    for i in 0..64 {
        let stored = std::fs::read(site.uploads.path().join(format!("result-{i}.png")))
            .expect("read a stored upload");
        assert!(stored == content(i), "upload {i} was stored corrupted");
        let served = get(address, &format!("/output/result-{i}.png"));
        assert!(
            served.status == 200 && served.body == content(i),
            "serving upload {i}"
        );
    }
}

/// Clients that stall are closed by their guard before the server stops, so
/// that no worker is left waiting on them.
struct Stalled(Vec<TcpStream>);

impl Drop for Stalled {
    fn drop(&mut self) {
        for stream in &self.0 {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn clients_stalled_in_their_headers_do_not_block_others() {
    let site = Site::start();
    let mut stalled = Stalled(Vec::new());
    // More stalled clients than the server has workers. The front door reads
    // each connection's head on a thread of its own and passes only complete
    // requests on, so these hold no worker.
    for _ in 0..8 {
        let mut stream = connect_tcp(site.address);
        for byte in b"GET /files/known.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: y" {
            stream.write_all(&[*byte]).expect("send one byte");
            std::thread::sleep(Duration::from_millis(1));
        }
        stalled.0.push(stream);
    }
    site.assert_still_serving();
    drop(stalled);
}

#[test]
fn clients_stalled_in_their_bodies_do_not_block_others() {
    let site = Site::start();
    let mut stalled = Stalled(Vec::new());
    // More stalled clients than the server has workers. The bodies are
    // announced larger than the 64 KiB the front door reads whole before
    // passing a request on, so these reach the upload code unfinished.
    for _ in 0..8 {
        let mut stream = connect_tcp(site.address);
        stream
            .write_all(b"POST /upload/slow.png HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nx")
            .expect("send the head");
        stalled.0.push(stream);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut probe = connect_tcp(site.address);
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    probe
        .write_all(&request("GET", "/files/known.txt", &[], b""))
        .expect("send the probe");
    let answer = read_answer(&mut probe);
    drop(stalled);
    let answer = answer.expect("the server answers while other clients stall");
    assert_eq!(answer.status, 200);
}

/// The resident memory of this process, in bytes, from `/proc/self/statm`.
#[cfg(target_os = "linux")]
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("statm's second field counts resident pages");
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn an_endless_header_line_is_not_buffered_without_bound() {
    let site = Site::start();
    let before = resident_bytes();
    let mut stream = connect_tcp(site.address);
    stream
        .write_all(b"GET /files/known.txt HTTP/1.1\r\nX-Endless: ")
        .expect("send the head");
    // 128 MiB of one header line; a server with a header limit answers or
    // closes the connection long before the end.
    let piece = vec![b'a'; 1 << 20];
    let mut sent = 0;
    while sent < 128 && stream.write_all(&piece).is_ok() {
        sent += 1;
    }
    // Let the server's connection thread take in what was sent.
    std::thread::sleep(Duration::from_millis(500));
    let grown = resident_bytes().saturating_sub(before);
    let _ = stream.shutdown(Shutdown::Both);
    site.assert_still_serving();
    assert!(
        grown < 32 << 20,
        "the server grew by {} MiB while reading {sent} MiB of one header line",
        grown >> 20
    );
}

// ---------------------------------------------------------------------------
// The embedded master and agent
// ---------------------------------------------------------------------------

fn cluster() -> Cluster {
    Cluster::start(ClusterConfig::default()).expect("start the embedded cluster")
}

/// Each listener of the cluster with the API it serves.
fn apis(cluster: &Cluster) -> [(SocketAddr, &'static str); 2] {
    [
        (cluster.master_address(), "/api/v1/scheduler"),
        (agent_address(cluster.master_address()), "/api/v1/executor"),
    ]
}

fn assert_healthy(address: SocketAddr) {
    let answer = get(address, "/health");
    assert_eq!((answer.status, answer.text().as_str()), (200, "OK"));
}

fn post_call(address: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Option<Answer> {
    exchange(
        address,
        &request("POST", path, &[("Content-Type", content_type)], body),
    )
}

#[test]
fn a_petabyte_announced_gets_413_and_the_cluster_lives_on() {
    let cluster = cluster();
    for (address, path) in apis(&cluster) {
        for length in ["1000000000000000", "18446744073709551615"] {
            let answer = exchange(
                address,
                &request(
                    "POST",
                    path,
                    &[
                        ("Content-Type", "application/json"),
                        ("Content-Length", length),
                    ],
                    b"{",
                ),
            )
            .unwrap_or_else(|| panic!("no answer to a body of {length} bytes"));
            assert_eq!(answer.status, 413, "{path} with {length}: {answer:?}");
        }
        assert_healthy(address);
    }
}

#[test]
fn garbage_half_requests_and_old_http_do_not_crash_the_cluster() {
    let cluster = cluster();
    let mut noise: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        b"GET /health\r\n".to_vec(),
        b"GET /health HTTP/0.9\r\n\r\n".to_vec(),
        b"GET /health HTTP/9.9\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Le".to_vec(),
        b"POST /api/v1/scheduler HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"type\":".to_vec(),
        b"POST /api/v1/executor HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
        b"POST /api/v1/executor HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n".to_vec(),
        b"POST /api/v1/scheduler HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST /api/v1/scheduler HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"
            .to_vec(),
        b"GET /health HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        "GET /health HTTP/1.1\r\nX-Name: \u{e9}t\u{e9}\r\n\r\n".as_bytes().to_vec(),
    ];
    noise.push({
        let mut many = b"GET /health HTTP/1.1\r\n".to_vec();
        for i in 0..5_000 {
            many.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        many
    });
    for (address, _) in apis(&cluster) {
        for bytes in &noise {
            let mut stream = connect_tcp(address);
            let _ = stream.write_all(bytes);
            // The client goes away after what it sent: half requests end here.
            let _ = stream.shutdown(Shutdown::Write);
            let answer = read_answer(&mut stream);
            if let Some(answer) = answer {
                assert!(answer.status >= 200, "{answer:?}");
            }
            assert_healthy(address);
        }
    }
}

/// JSON nested 100 000 levels deep, which a recursive parser cannot survive.
fn deep_json(prefix: &str) -> Vec<u8> {
    let depth = 100_000;
    format!("{prefix}{}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

#[test]
fn deeply_nested_json_calls_get_400() {
    let cluster = cluster();
    for (address, path) in apis(&cluster) {
        for body in [
            b"[".repeat(100_000),
            deep_json(r#"{"type":"SUBSCRIBE","subscribe":"#),
            deep_json(r#"{"unknown":"#),
        ] {
            let answer = post_call(address, path, "application/json", &body)
                .unwrap_or_else(|| panic!("no answer from {path}"));
            assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        }
        assert_healthy(address);
    }
}

#[test]
fn deeply_nested_json_behind_a_single_quoted_string_gets_400() {
    let cluster = cluster();
    for (address, path) in apis(&cluster) {
        let body = deep_json(r#"{"note":'"',"unknown":"#);
        let answer = post_call(address, path, "application/json", &body)
            .unwrap_or_else(|| panic!("no answer from {path}"));
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert_healthy(address);
    }
}

#[test]
fn a_thousand_bad_calls_leave_the_cluster_answering() {
    let cluster = cluster();
    let master = cluster.master_address();
    let path = "/api/v1/scheduler";
    for (i, (address, path)) in apis(&cluster).into_iter().cycle().take(1000).enumerate() {
        let answer = match i % 10 {
            0 | 1 => post_call(address, path, "application/x-protobuf", &[0xff, 0x01, i as u8]),
            2 | 3 => post_call(address, path, "application/json", b"{\"type\":"),
            4 | 5 => post_call(address, path, "text/plain", b"hello"),
            6 => post_call(
                address,
                path,
                "application/json",
                br#"{"type":"DECLINE","framework_id":{"value":"nobody"}}"#,
            ),
            7 => post_call(
                address,
                path,
                "application/json",
                br#"{"type":"UPDATE","framework_id":{"value":"nobody"},"executor_id":{"value":"x"}}"#,
            ),
            _ => exchange(address, &request("PUT", path, &[], b"")),
        };
        let answer = answer.unwrap_or_else(|| panic!("no answer to bad call {i} to {path}"));
        assert!(
            (400..500).contains(&answer.status),
            "bad call {i} to {path} got {}: {}",
            answer.status,
            answer.text()
        );
    }
    assert_healthy(agent_address(cluster.master_address()));
    // A proper subscription still works: 200 and a SUBSCRIBED event.
    let subscribe =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"ada","name":"hardening"}}}"#;
    let mut stream = connect_tcp(master);
    stream
        .write_all(&request(
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
            ],
            subscribe,
        ))
        .expect("send SUBSCRIBE");
    let mut received = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while find(&received, b"SUBSCRIBED").is_none() && Instant::now() < deadline {
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("SUBSCRIBED"), "{text}");
}

#[cfg(target_os = "linux")]
#[test]
fn oversized_requests_leave_no_threads_or_sockets_behind() {
    let site = Site::start();
    let cluster = cluster();
    let targets = [
        (site.address, "/upload/a.png"),
        (cluster.master_address(), "/api/v1/scheduler"),
        (agent_address(cluster.master_address()), "/api/v1/executor"),
    ];
    // Warm up: each server's first connections start threads it keeps.
    for (address, _) in targets {
        let _ = exchange(address, &request("GET", "/", &[], b""));
    }
    let before = threads_and_descriptors();
    let requests = 100;
    for (address, path) in targets {
        for _ in 0..requests {
            let answer = exchange(
                address,
                &request("POST", path, &[("Content-Length", "1000000000000000")], b""),
            );
            assert_eq!(answer.map(|answer| answer.status), Some(413));
        }
    }
    // A leak of one thread and one socket per refused request never grows
    // by less than 300; a third of that is the bar.
    let (threads, descriptors) = least_growth_since(before, 30);
    assert!(
        threads < 100 && descriptors < 100,
        "{} oversized requests left {threads} more threads and {descriptors} more open \
         descriptors",
        3 * requests
    );
}

// ---------------------------------------------------------------------------
// The front door: the limits every client of both servers is held to
// ---------------------------------------------------------------------------

/// Limits with deadlines short enough for a test to run into them.
fn short_deadlines() -> Limits {
    Limits {
        header_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        ..Limits::default()
    }
}

fn cluster_with(limits: Limits) -> Cluster {
    Cluster::start(ClusterConfig {
        limits,
        ..ClusterConfig::default()
    })
    .expect("start the embedded cluster")
}

/// Sends `head` one byte every 50 ms, as a slowloris client does, until the
/// server answers or closes. Returns the answer, if any, and how many bytes
/// went out.
fn trickle(address: SocketAddr, head: &[u8]) -> (Option<Answer>, usize) {
    let mut stream = connect_tcp(address);
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    let mut sent = 0;
    while sent < head.len() && stream.write_all(&head[sent..=sent]).is_ok() {
        sent += 1;
        // The pause between bytes doubles as a look for the server's move.
        match stream.peek(&mut [0u8; 1]) {
            Ok(_) => break,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("read timeout");
    (read_answer(&mut stream), sent)
}

#[test]
fn a_head_trickled_byte_by_byte_is_cut_off_at_the_deadline() {
    let site = Site::start_with(short_deadlines(), MAX_UPLOAD_BYTES);
    let cluster = cluster_with(short_deadlines());
    // 400 bytes at 50 ms each would take 20 s; the deadline is 0.5 s.
    let head = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(400)
    );
    for address in [
        site.address,
        cluster.master_address(),
        agent_address(cluster.master_address()),
    ] {
        let (answer, sent) = trickle(address, head.as_bytes());
        assert!(
            sent < head.len(),
            "{address}: the whole trickled head was taken in"
        );
        if let Some(answer) = answer {
            assert_eq!(answer.status, 408, "{address}: {answer:?}");
        }
    }
    site.assert_still_serving();
    assert_healthy(cluster.master_address());
}

#[test]
fn a_connection_that_sends_nothing_is_closed_when_idle() {
    let site = Site::start_with(short_deadlines(), MAX_UPLOAD_BYTES);
    let mut stream = connect_tcp(site.address);
    let mut buffer = [0u8; 16];
    let read = stream.read(&mut buffer);
    assert!(
        matches!(read, Ok(0)),
        "an idle connection is closed, not kept: {read:?}"
    );
    site.assert_still_serving();
}

#[test]
fn a_head_over_16_kib_gets_431() {
    let site = Site::start();
    let cluster = cluster();
    let big = "a".repeat(20 * 1024);
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("X-Header-{i}"), i.to_string()))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    for address in [
        site.address,
        cluster.master_address(),
        agent_address(cluster.master_address()),
    ] {
        for headers in [&[("X-Big", &big[..])][..], &many[..]] {
            let answer = exchange(address, &request("GET", "/health", headers, b""))
                .unwrap_or_else(|| panic!("no answer from {address}"));
            assert_eq!(answer.status, 431, "{address}: {answer:?}");
            assert!(answer.text().contains("16384"), "{}", answer.text());
        }
    }
    site.assert_still_serving();
    assert_healthy(agent_address(cluster.master_address()));
}

#[test]
fn a_content_length_over_the_limit_gets_413_before_any_body_is_sent() {
    let site = Site::start_with(Limits::default(), 1000);
    let cluster = cluster();
    let call_limit = (4 * 1024 * 1024 + 1).to_string();
    let cases = [
        (site.address, "/upload/a.png", "1001", "1000"),
        (
            cluster.master_address(),
            "/api/v1/scheduler",
            &call_limit[..],
            "4194304",
        ),
        (
            agent_address(cluster.master_address()),
            "/api/v1/executor",
            &call_limit[..],
            "4194304",
        ),
    ];
    for (address, path, length, limit) in cases {
        // Only the head goes out; the connection stays open for a body that
        // never comes, so an answer proves the server did not wait for it.
        let mut stream = connect_tcp(address);
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             X-Upload-Token: {TOKEN}\r\nContent-Length: {length}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let answer = read_answer(&mut stream).expect("an answer without the body");
        assert_eq!(answer.status, 413, "{path}: {answer:?}");
        assert!(answer.text().contains(limit), "{}", answer.text());
    }
    assert_eq!(site.uploads.entries(), Vec::<String>::new());
    site.assert_still_serving();
}

#[test]
fn a_body_that_stalls_gets_408_and_stores_nothing() {
    let site = Site::start_with(short_deadlines(), MAX_UPLOAD_BYTES);
    // One body small enough to be read whole before it is passed on, one
    // larger that the upload code reads as it comes.
    for length in [500usize, 200_000] {
        let mut stream = connect_tcp(site.address);
        let head = format!(
            "POST /upload/slow.png HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Upload-Token: {TOKEN}\r\n\
             Content-Length: {length}\r\n\r\nonly the start"
        );
        stream.write_all(head.as_bytes()).expect("send the head");
        let answer = read_answer(&mut stream).expect("an answer to a stalled body");
        assert_eq!(answer.status, 408, "{length}: {answer:?}");
        assert_eq!(site.uploads.entries(), Vec::<String>::new());
    }
    assert_eq!(site.server.uploaded_path("slow.png"), None);
    site.assert_still_serving();
}

#[test]
fn connections_over_the_cap_get_503() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let site = Site::start_with(limits.clone(), MAX_UPLOAD_BYTES);
    let cluster = cluster_with(limits);
    for address in [site.address, cluster.master_address()] {
        let held = Stalled(vec![connect_tcp(address), connect_tcp(address)]);
        let answer = get(address, "/health");
        assert_eq!(answer.status, 503, "{address}: {answer:?}");
        assert!(answer.text().contains("at most 2"), "{}", answer.text());
        assert!(answer.header("Retry-After").is_some(), "{answer:?}");
        drop(held);
        // Once those clients leave, their places are free again.
        let deadline = Instant::now() + DEADLINE;
        let mut answer = get(address, "/files/known.txt");
        while answer.status == 503 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            answer = get(address, "/files/known.txt");
        }
        assert_ne!(answer.status, 503, "{address} still refuses");
    }
    site.assert_still_serving();
}

#[test]
fn one_kept_alive_connection_carries_many_requests() {
    let site = Site::start();
    let mut stream = connect_tcp(site.address);
    let mut received = Vec::new();
    let mut next = |bytes: &[u8]| {
        stream.write_all(bytes).expect("send a request");
        read_next_answer(&mut stream, &mut received).expect("an answer on the same connection")
    };
    let answer = next(&kept_alive("GET", "/files/known.txt", &[], b""));
    assert_eq!((answer.status, &answer.body[..]), (200, SERVED));

    // A chunked upload: the front door must find where it ends to find the
    // next request.
    let chunked = format!(
        "POST /upload/kept.png HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Upload-Token: {TOKEN}\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;note=x\r\n, kept\r\n0\r\n\
         X-Trailer: dropped\r\n\r\n"
    );
    let answer = next(chunked.as_bytes());
    assert_eq!(answer.status, 201, "{answer:?}");
    let answer = next(&kept_alive("GET", "/output/kept.png", &[], b""));
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "hello, kept")
    );

    // Two requests in one write (pipelining): two answers, in order.
    let mut both = kept_alive("GET", "/files/known.txt", &[], b"");
    both.extend_from_slice(&kept_alive("GET", "/files/missing.txt", &[], b""));
    let first = next(&both);
    let second = next(b"");
    assert_eq!((first.status, second.status), (200, 404));

    // The embedded cluster's ports keep connections alive too.
    let cluster = cluster();
    for (address, path) in apis(&cluster) {
        let mut stream = connect_tcp(address);
        let mut received = Vec::new();
        for bytes in [
            kept_alive("GET", "/health", &[], b""),
            kept_alive("POST", path, &[("Content-Type", "application/json")], b"{"),
            kept_alive("GET", "/health", &[], b""),
        ] {
            stream.write_all(&bytes).expect("send a request");
            let answer = read_next_answer(&mut stream, &mut received).expect("an answer");
            assert!(matches!(answer.status, 200 | 400), "{path}: {answer:?}");
        }
    }
}

#[test]
fn fetching_the_executor_and_uploading_results_still_work() {
    let site = Site::start();
    let executor: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = site.served.path().join("executor");
    std::fs::write(&path, &executor).expect("write the executor");
    site.server
        .serve_file("executor", &path)
        .expect("register the executor");
    let answer = get(site.address, "/files/executor");
    assert_eq!(answer.status, 200);
    assert!(answer.body == executor, "the executor arrived changed");

    // HEAD: the length, no body; the connection then carries on.
    let mut stream = connect_tcp(site.address);
    stream
        .write_all(&kept_alive("HEAD", "/files/executor", &[], b""))
        .expect("send HEAD");
    let mut head = Vec::new();
    while find(&head, b"\r\n\r\n").is_none() {
        let mut buffer = [0u8; 1024];
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => panic!("no answer to HEAD"),
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&head).contains("Content-Length: 3000000"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
        .write_all(&request("GET", "/files/known.txt", &[], b""))
        .expect("send GET");
    let answer = read_answer(&mut stream).expect("an answer after HEAD");
    assert_eq!(answer.body, SERVED);

    // A result larger than what the front door reads whole beforehand.
    let result: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let answer = site.upload("big.png", &[("X-Upload-Token", TOKEN)], &result);
    assert_eq!(answer.status, 201, "{answer:?}");
    let stored = std::fs::read(site.uploads.path().join("big.png")).expect("read the upload");
    assert!(stored == result, "the upload was stored changed");

    // A client that waits for `100 Continue` before it sends the body.
    let mut stream = connect_tcp(site.address);
    let head = format!(
        "POST /upload/polite.png HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Upload-Token: {TOKEN}\r\n\
         Expect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("read 100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").expect("send the body");
    let answer = read_answer(&mut stream).expect("an answer to the upload");
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[test]
fn an_event_stream_outlives_every_request_deadline() {
    let cluster = Cluster::start(ClusterConfig {
        limits: short_deadlines(),
        heartbeat_interval: Duration::from_millis(100),
        ..ClusterConfig::default()
    })
    .expect("start the embedded cluster");
    let subscribe =
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"ada","name":"stream"}}}"#;
    let mut stream = connect_tcp(cluster.master_address());
    stream
        .write_all(&kept_alive(
            "POST",
            "/api/v1/scheduler",
            &[("Content-Type", "application/json")],
            subscribe,
        ))
        .expect("send SUBSCRIBE");
    // Twenty heartbeats take two seconds, four times each deadline.
    let received = read_until_seen(&mut stream, b"HEARTBEAT", 20);
    assert!(received.starts_with(b"HTTP/1.1 200"));
}
