//! Hardening, part 4: the file server's routing and uploads, tried on paths
//! and names nobody would write by hand.
//!
//! `tests/hardening_servers.rs` shows the attacks someone thought of (`..`,
//! percent-encoded dots and slashes, NUL bytes, symlinks). Here `proptest`
//! builds request targets and upload names out of the same dangerous pieces
//! in any order, sends them to a real `FileServer` over TCP, and checks two
//! rules whatever the input:
//!
//! 1. a `GET` answers `200` only for exactly `/files/<name>` of a served
//!    name (or the page, or an uploaded result), with that file's bytes;
//! 2. an upload is stored only under a safe name, inside the output
//!    directory, and nothing ever appears outside it.
//!
//! Each property runs 64 cases against one server; the server must still
//! answer normally afterwards.

mod common;

use common::temp_dir::TempDir;
use mesos_tutorial::server::{is_safe_name, FileServer};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "property-token";
const SERVED: &[u8] = b"the served file";

/// A file server with one served file and uploads enabled, in a directory
/// of its own that also holds a "secret" file beside the output directory.
struct Site {
    server: FileServer,
    root: TempDir,
}

impl Site {
    fn new(label: &str) -> Site {
        let dir = TempDir::new(label);
        let root = dir.path();
        std::fs::create_dir_all(root.join("public")).unwrap();
        std::fs::write(root.join("public/served.png"), SERVED).unwrap();
        std::fs::write(root.join("secret.txt"), b"secret").unwrap();
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1").unwrap();
        server
            .serve_file("served.png", &root.join("public/served.png"))
            .unwrap();
        server.accept_uploads(&root.join("output"), TOKEN).unwrap();
        Site { server, root: dir }
    }

    /// Sends one raw request and returns the status and body.
    fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let address = self.server.base_url().replace("http://", "");
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
             X-Upload-Token: {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.write_all(&request).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |at| at + 4);
        let status = String::from_utf8_lossy(&answer[..split])
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        (status, answer[split..].to_vec())
    }

    /// Every file under the site's directory, as paths relative to it.
    fn files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, found);
                } else {
                    found.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut found = Vec::new();
        walk(self.root.path(), self.root.path(), &mut found);
        found.sort();
        found
    }
}

/// Pieces of paths that have broken file servers before.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2E".to_string()),
        Just("%2f".to_string()),
        Just("%5c".to_string()),
        Just("\\".to_string()),
        Just("%00".to_string()),
        Just("%".to_string()),
        Just("%zz".to_string()),
        Just("%c0%ae".to_string()),
        Just("files".to_string()),
        Just("upload".to_string()),
        Just("output".to_string()),
        Just("served.png".to_string()),
        Just("secret.txt".to_string()),
        Just("public".to_string()),
        Just("/".to_string()),
        Just("//".to_string()),
        Just("?x=1".to_string()),
        Just("#frag".to_string()),
        "[a-zA-Z0-9._-]{1,12}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..8).prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn only_served_files_are_ever_returned(targets in proptest::collection::vec(target(), 64)) {
        let site = Site::new("get");
        for target in &targets {
            let (status, body) = site.request("GET", target, b"");
            let path = target.split(['?', '#']).next().unwrap_or("");
            match status {
                200 if path == "/" => {}
                200 => {
                    prop_assert!(
                        path == "/files/served.png" || path == "/files/served%2epng"
                            || path == "/files/served%2Epng",
                        "{target} answered 200"
                    );
                    prop_assert_eq!(&body[..], SERVED);
                }
                400 | 404 | 405 | 414 => {}
                other => prop_assert!(false, "{target} answered {other}"),
            }
            prop_assert!(!body.windows(6).any(|w| w == b"secret"), "{target} leaked the secret");
        }
        let (status, body) = site.request("GET", "/files/served.png", b"");
        prop_assert_eq!((status, &body[..]), (200, SERVED));
    }

    #[test]
    fn uploads_land_only_in_the_output_dir_under_safe_names(
        names in proptest::collection::vec(target(), 64)
    ) {
        let site = Site::new("upload");
        let before = site.files();
        for name in &names {
            let target = format!("/upload{name}");
            let (status, _) = site.request("POST", &target, b"result");
            prop_assert!(
                matches!(status, 201 | 400 | 404 | 405),
                "{target} answered {status}"
            );
        }
        for file in site.files() {
            if before.contains(&file) {
                continue;
            }
            let name = file.strip_prefix("output/");
            prop_assert!(name.is_some(), "{file} was written outside the output dir");
            let name = name.unwrap();
            prop_assert!(is_safe_name(name) && !name.contains('/'), "{file} is not a safe name");
        }
        prop_assert_eq!(std::fs::read(site.root.path().join("secret.txt")).unwrap(), b"secret");
        let (status, body) = site.request("GET", "/files/served.png", b"");
        prop_assert_eq!((status, &body[..]), (200, SERVED));
    }
}
