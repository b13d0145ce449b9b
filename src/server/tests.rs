//! The file server over real HTTP on 127.0.0.1: what the fetcher, the
//! executors and a browser see.

use super::*;
use crate::test_dir::TestDir;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP client that returns 4xx and 5xx answers instead of errors.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn start() -> FileServer {
    FileServer::start("127.0.0.1:0", "127.0.0.1").unwrap()
}

/// Sends `request_line` exactly as written (clients such as ureq may
/// normalise a path; an attacker would not) and returns status and body.
/// The body is read by its Content-Length, not to the end of the
/// connection, which may stay open.
fn raw_request(server: &FileServer, request_line: &str) -> (u16, String) {
    let address = server.base_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    // Only a guard against a hanging test, not an assertion about speed.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{request_line}\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let head = loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        // Skip interim answers such as `100 Continue`, as HTTP clients must.
        if !head.starts_with(b"HTTP/1.1 1") {
            break String::from_utf8(head).unwrap();
        }
    };
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))
        .map_or(0, |length| length.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn get(agent: &ureq::Agent, url: &str) -> (u16, Vec<u8>) {
    let mut response = agent.get(url).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().unwrap())
}

fn post(agent: &ureq::Agent, url: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("X-Upload-Token", token);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn a_registered_file_is_served_with_type_and_length() {
    let dir = TestDir::new("file-server-serve");
    // Larger than tiny_http's chunking threshold, so Content-Length is a
    // deliberate choice and not a default.
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.0.join("executor"), &content).unwrap();
    std::fs::write(dir.0.join("x.png"), b"not really a png").unwrap();
    let server = start();
    let url = server
        .serve_file("executor", &dir.0.join("executor"))
        .unwrap();
    assert_eq!(url, format!("{}/files/executor", server.base_url()));
    let png_url = server
        .serve_file("picture.png", &dir.0.join("x.png"))
        .unwrap();

    let agent = agent();
    let mut response = agent.get(&url).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let header = |response: &ureq::http::Response<ureq::Body>, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&response, "content-length").as_deref(),
        Some("100000")
    );
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(response.body_mut().read_to_vec().unwrap(), content);

    let response = agent.get(&png_url).call().unwrap();
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("image/png")
    );

    let mut response = agent.head(&url).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "content-length").as_deref(),
        Some("100000")
    );
    assert!(response.body_mut().read_to_vec().unwrap().is_empty());

    // The file is read when requested, not when registered.
    std::fs::write(dir.0.join("executor"), b"v2").unwrap();
    assert_eq!(get(&agent, &url), (200, b"v2".to_vec()));
    drop(server);
}

#[test]
fn only_registered_names_are_reachable() {
    let dir = TestDir::new("file-server-traversal");
    std::fs::write(dir.0.join("a.png"), b"image").unwrap();
    let server = start();
    server.serve_file("a.png", &dir.0.join("a.png")).unwrap();

    assert_eq!(
        raw_request(&server, "GET /files/a.png?cache=no HTTP/1.1").0,
        200
    );
    for path in [
        "/files/b.png",
        "/files/../Cargo.toml",
        "/files/%2e%2e%2fCargo.toml",
        "/files/%2e%2e/Cargo.toml",
        "/files/..%5cCargo.toml",
        "/files/..\\Cargo.toml",
        "/files/a%00b",
        "/files/a.png%00",
        "/files/a.png/",
        "/files/./a.png",
        "/files/%ff",
        "//files/a.png",
        "/files//a.png",
        "/files/",
        "/Cargo.toml",
        "/src/lib.rs",
    ] {
        let (status, body) = raw_request(&server, &format!("GET {path} HTTP/1.1"));
        assert_eq!(status, 404, "{path}");
        assert!(
            !body.is_empty() && !body.contains("[package]"),
            "{path}: {body}"
        );
    }
    drop(server);
}

#[test]
fn an_upload_is_stored_atomically_and_served_back() {
    let output = TestDir::new("file-server-upload");
    let server = start();
    server.accept_uploads(&output.0, "secret-token").unwrap();
    // The write test leaves nothing behind.
    assert!(output.entries().is_empty());
    let agent = agent();
    let url = server.upload_url("inverted-a.png");
    assert_eq!(url, format!("{}/upload/inverted-a.png", server.base_url()));

    // Bigger than 1 KiB: tiny_http streams such bodies instead of buffering.
    let first: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let (status, body) = post(&agent, &url, Some("secret-token"), &first);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("inverted-a.png"), "{body}");
    assert_eq!(
        std::fs::read(output.0.join("inverted-a.png")).unwrap(),
        first
    );
    // No temporary file is left beside it.
    assert_eq!(output.entries(), ["inverted-a.png"]);
    let output_url = format!("{}/output/inverted-a.png", server.base_url());
    assert_eq!(get(&agent, &output_url), (200, first));

    // A retried task uploads again: the file is replaced, listed once.
    let (status, _) = post(&agent, &url, Some("secret-token"), b"second");
    assert_eq!(status, 201);
    assert_eq!(get(&agent, &output_url), (200, b"second".to_vec()));
    let uploaded = lock(&server.shared.uploaded).clone();
    let stored = [("inverted-a.png".to_owned(), output.0.join("inverted-a.png"))];
    assert_eq!(uploaded, stored.into_iter().collect());
    drop(server);
}

#[test]
fn uploads_without_the_right_token_are_forbidden_and_not_stored() {
    let output = TestDir::new("file-server-token");
    let server = start();
    server.accept_uploads(&output.0, "right").unwrap();
    let agent = agent();
    let url = server.upload_url("r.png");
    for token in [None, Some("wrong"), Some(""), Some("right-but-longer")] {
        let (status, body) = post(&agent, &url, token, &[1u8; 5000]);
        assert_eq!(status, 403, "{token:?}");
        assert!(body.contains("X-Upload-Token"), "{body}");
    }
    assert!(output.entries().is_empty(), "{:?}", output.entries());
    assert!(lock(&server.shared.uploaded).is_empty());
    drop(server);
}

#[test]
fn once_names_are_expected_no_other_upload_is_stored() {
    let output = TestDir::new("file-server-expected");
    let server = start();
    server.accept_uploads(&output.0, "t").unwrap();
    server.expect_uploads_only();
    let (status, _) = post(
        &agent(),
        &server.upload_url("001-cat-inverted.png"),
        Some("t"),
        b"x",
    );
    assert_eq!(status, 404, "nothing is expected yet");
    server.expect_upload("001-cat-inverted");
    let agent = agent();
    for name in ["index.html", "002-dog-inverted.png", "001-cat-inverted.sh"] {
        let (status, body) = post(&agent, &server.upload_url(name), Some("t"), b"x");
        assert_eq!(status, 404, "{name}: {body}");
    }
    assert!(output.entries().is_empty(), "{:?}", output.entries());
    let url = server.upload_url("001-cat-inverted.jpg");
    let (status, body) = post(&agent, &url, Some("t"), b"jpeg");
    assert_eq!(status, 201, "{body}");
    assert_eq!(output.entries(), ["001-cat-inverted.jpg"]);
    drop(server);
}

#[test]
fn oversized_uploads_are_refused_and_not_stored() {
    let output = TestDir::new("file-server-large");
    let server = FileServer::start_with_limit("127.0.0.1:0", "127.0.0.1", 10_000).unwrap();
    server.accept_uploads(&output.0, "t").unwrap();
    let agent = agent();
    let url = server.upload_url("big.png");

    // Announced by Content-Length: refused before reading the body. The
    // body is never sent here, so only an answer that does not wait for
    // it arrives.
    let (status, body) = raw_request(
        &server,
        "POST /upload/big.png HTTP/1.1\r\nX-Upload-Token: t\r\nContent-Length: 10001",
    );
    assert_eq!(status, 413, "{body}");
    // Chunked, with no length announced: refused while counting.
    let mut body = &[0u8; 50_000][..];
    let mut response = agent
        .post(&url)
        .header("X-Upload-Token", "t")
        .send(ureq::SendBody::from_reader(&mut body))
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert!(response
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("10000 bytes"));
    assert!(output.entries().is_empty(), "{:?}", output.entries());

    // At the limit exactly, chunked: accepted.
    let mut body = &[9u8; 10_000][..];
    let response = agent
        .post(&url)
        .header("X-Upload-Token", "t")
        .send(ureq::SendBody::from_reader(&mut body))
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        std::fs::read(output.0.join("big.png")).unwrap(),
        [9u8; 10_000]
    );
    // At the limit exactly, announced by Content-Length: accepted too.
    let (status, body) = post(&agent, &url, Some("t"), &[8u8; 10_000]);
    assert_eq!(status, 201, "{body}");
    drop(server);
}

#[test]
fn bad_upload_names_are_rejected() {
    let output = TestDir::new("file-server-names");
    let server = start();
    server.accept_uploads(&output.0, "t").unwrap();
    let agent = agent();
    for name in [
        ".hidden",
        "..%2fescape.png",
        "a%20b.png",
        "%ff",
        "a/b.png",
        "",
    ] {
        let url = format!("{}/upload/{name}", server.base_url());
        let (status, body) = post(&agent, &url, Some("t"), b"data");
        assert_eq!(status, 400, "{name}: {body}");
    }
    assert!(output.entries().is_empty(), "{:?}", output.entries());
    assert!(matches!(
        server.serve_file("../x", Path::new("Cargo.toml")),
        Err(ServerError::BadName(_))
    ));
    drop(server);
}

#[test]
fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let dir = TestDir::new("file-server-methods");
    std::fs::write(dir.0.join("a.png"), b"image").unwrap();
    let server = start();
    server.serve_file("a.png", &dir.0.join("a.png")).unwrap();
    server.accept_uploads(&dir.0.join("out"), "t").unwrap();
    let agent = agent();
    let base = server.base_url();

    let mut response = agent.get(format!("{base}/upload/a.png")).call().unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers().get("allow").unwrap(), "POST");
    assert!(!response.body_mut().read_to_string().unwrap().is_empty());

    for url in [
        format!("{base}/files/a.png"),
        format!("{base}/"),
        format!("{base}/output/a.png"),
    ] {
        let response = agent.post(&url).send(&b"x"[..]).unwrap();
        assert_eq!(response.status().as_u16(), 405, "{url}");
        assert_eq!(response.headers().get("allow").unwrap(), "GET, HEAD");
    }
    assert_eq!(raw_request(&server, "DELETE /files/a.png HTTP/1.1").0, 405);

    let (status, body) = get(&agent, &format!("{base}/nothing/here"));
    assert_eq!(status, 404);
    assert!(!body.is_empty());
    assert_eq!(
        get(&agent, &format!("{base}/output/never-uploaded.png")).0,
        404
    );
    drop(server);
}

#[test]
fn uploads_are_refused_until_enabled() {
    let server = start();
    let (status, body) = post(&agent(), &server.upload_url("a.png"), Some("t"), b"x");
    assert_eq!(status, 404);
    assert!(body.contains("does not accept uploads"), "{body}");
    drop(server);
}

#[test]
fn the_results_page_shows_images_whose_links_resolve() {
    let dir = TestDir::new("file-server-page");
    std::fs::write(dir.0.join("a.png"), b"original a").unwrap();
    std::fs::write(dir.0.join("b.jpg"), b"original b").unwrap();
    let server = start();
    server.accept_uploads(&dir.0.join("out"), "t").unwrap();
    let a_url = server.serve_file("a.png", &dir.0.join("a.png")).unwrap();
    let b_url = server.serve_file("b.jpg", &dir.0.join("b.jpg")).unwrap();
    let agent = agent();
    let (status, _) = post(
        &agent,
        &server.upload_url("inverted-a.png"),
        Some("t"),
        b"inv",
    );
    assert_eq!(status, 201);
    server.set_progress(Progress {
        total: 2,
        done: 1,
        failed: 0,
        finished: false,
        not_listed: 0,
        images: vec![
            ImageRow {
                name: "a.png".into(),
                original_url: a_url,
                result_name: Some("inverted-a.png".into()),
                status: "TASK_FINISHED".into(),
                ..ImageRow::default()
            },
            ImageRow {
                name: "b.jpg".into(),
                original_url: b_url,
                result_name: None,
                status: "TASK_RUNNING".into(),
                ..ImageRow::default()
            },
        ],
    });

    let (status, page) = get(&agent, &format!("{}/", server.base_url()));
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("1/2 images done, 0 failed"), "{page}");
    assert!(page.contains("TASK_RUNNING"), "{page}");
    let sources: Vec<&str> = page
        .split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert_eq!(sources.len(), 3, "{page}");
    for source in sources {
        let url = if source.starts_with('/') {
            format!("{}{source}", server.base_url())
        } else {
            source.to_owned()
        };
        assert_eq!(get(&agent, &url).0, 200, "{url}");
    }
    drop(server);
}

#[test]
fn a_port_in_use_names_the_flag_to_change() {
    let server = start();
    let taken = server.base_url().trim_start_matches("http://").to_owned();
    let err = FileServer::start(&taken, "127.0.0.1").err().unwrap();
    assert!(
        matches!(&err, ServerError::Bind { source, .. } if source.kind() == io::ErrorKind::AddrInUse),
        "{err:?}"
    );
    assert!(err.to_string().contains("--port"), "{err}");
    drop(server);
}

#[test]
fn urls_bracket_an_ipv6_advertised_host() {
    let server = FileServer::start("127.0.0.1:0", "::1").unwrap();
    assert!(
        server.base_url().starts_with("http://[::1]:"),
        "{}",
        server.base_url()
    );
    drop(server);
}

#[test]
fn an_absurd_content_length_is_refused_without_harm() {
    // tiny_http would try to allocate the announced size to discard the
    // body; the process would abort and the test binary with it.
    let output = TestDir::new("file-server-absurd");
    let server = start();
    server.accept_uploads(&output.0, "t").unwrap();
    let (status, body) = raw_request(
        &server,
        "POST /upload/a.png HTTP/1.1\r\nX-Upload-Token: t\r\nContent-Length: 100000000000000",
    );
    assert_eq!(status, 413);
    assert!(body.contains("too large"), "{body}");
    // The server still answers.
    assert_eq!(raw_request(&server, "GET /nothing HTTP/1.1").0, 404);
    assert!(output.entries().is_empty());
    drop(server);
}

#[test]
fn a_stopped_server_answers_nothing_and_keeps_what_was_uploaded() {
    let output = TestDir::new("file-server-stopped");
    let mut server = start();
    server.accept_uploads(&output.0, "secret-token").unwrap();
    let agent = agent();
    let url = server.upload_url("inverted-a.png");
    assert_eq!(post(&agent, &url, Some("secret-token"), b"result").0, 201);
    let output_url = format!("{}/output/inverted-a.png", server.base_url());
    assert_eq!(get(&agent, &output_url).0, 200);

    server.stop();
    // Once stopped, no request is answered: no upload can arrive after
    // the scheduler printed its table (Ctrl+C in step 3).
    assert!(agent.get(&output_url).call().is_err(), "still answering");
    // What arrived before is still known, and a second stop is harmless.
    assert!(server.uploaded_path("inverted-a.png").is_some());
    server.stop();
}
