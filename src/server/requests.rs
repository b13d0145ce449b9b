//! How one request is answered: the routing table of the file server.
//!
//! | path             | method      | answer                                   |
//! |------------------|-------------|------------------------------------------|
//! | `/`              | GET, HEAD   | the results page                         |
//! | `/files/<name>`  | GET, HEAD   | a file registered with `serve_file`      |
//! | `/upload/<name>` | POST        | stores an executor's result (`upload.rs`) |
//! | `/output/<name>` | GET, HEAD   | a stored result                          |
//! | the same paths   | any other   | `405 Method Not Allowed` with `Allow`    |
//! | anything else    | any         | `404 Not Found`                          |
//!
//! Every answer has a body, so a person testing with `curl` reads why.

use super::paths::Route;
use super::{lock, page, upload, Shared};
use log::{debug, info, warn};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response, ResponseBox, StatusCode};

/// A worker: answers requests until the server stops. The front door has
/// already refused any body over its path's limit.
pub(super) fn handle_requests(http: &crate::front_door::Requests, shared: &Arc<Shared>) {
    loop {
        let request = match http.recv() {
            Ok(request) => request,
            Err(err) => {
                if !shared.stopping.load(Ordering::SeqCst) {
                    warn!("file server stopped accepting connections: {err}");
                }
                return;
            }
        };
        if !crate::front_door::reading_body_may_block(&request) {
            answer(request, shared);
            continue;
        }
        // A large upload arrives at the client's pace: a thread of its own
        // keeps the workers free meanwhile. The front door's connection cap
        // bounds how many such threads there can be.
        let for_thread = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("file-server-upload".into())
            .spawn(move || answer(request, &for_thread));
        match spawned {
            Ok(thread) => {
                let mut threads = lock(&shared.body_threads);
                threads.retain(|thread| !thread.is_finished());
                threads.push(thread);
            }
            // The request was dropped with the closure: tiny_http answers 500.
            Err(err) => warn!("could not start a thread for an upload: {err}"),
        }
    }
}

fn answer(mut request: Request, shared: &Shared) {
    let method = request.method().clone();
    let url = request.url().to_owned();
    let reading = matches!(method, Method::Get | Method::Head);
    let response = match Route::parse(&url) {
        Route::Page if reading => {
            let html = page::render(&lock(&shared.progress));
            Response::from_string(html)
                .with_header(header("Content-Type", "text/html; charset=utf-8"))
                .with_header(header("Cache-Control", "no-store"))
                .boxed()
        }
        Route::File(name) if reading => {
            let path = name.and_then(|name| lock(&shared.files).get(&name).cloned());
            file_response(path.as_deref(), &url, &request)
        }
        Route::Output(name) if reading => {
            let path = name.and_then(|name| lock(&shared.uploaded).get(&name).cloned());
            file_response(path.as_deref(), &url, &request)
        }
        Route::Upload(name) if method == Method::Post => {
            upload::receive(&mut request, name, shared)
        }
        Route::Page | Route::File(_) | Route::Output(_) => not_allowed("GET, HEAD"),
        Route::Upload(_) => not_allowed("POST"),
        Route::Unknown => text(
            404,
            "not found: this server has /, /files/, /upload/ and /output/",
        ),
    };
    debug!("{method} {url} -> {}", response.status_code().0);
    discard_unread_body(&mut request, shared.max_upload_bytes);
    if let Err(err) = request.respond(response) {
        debug!("could not send the response to {method} {url}: {err}");
    }
}

/// Streams a file, or 404 if `path` is `None`.
fn file_response(path: Option<&Path>, url: &str, request: &Request) -> ResponseBox {
    let Some(path) = path else {
        return text(404, "no such file");
    };
    let opened = File::open(path).and_then(|file| Ok((file.metadata()?.len(), file)));
    let (length, file) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            warn!("cannot serve {url} from {}: {err}", path.display());
            return text(500, &format!("the file behind {url} cannot be read"));
        }
    };
    if *request.method() == Method::Get {
        // The front door names the client; `tiny_http` only sees the door.
        let client = request
            .headers()
            .iter()
            .find(|header| header.field.equiv("X-Forwarded-For"))
            .map_or("an unknown client", |header| header.value.as_str());
        info!("sending {url} ({length} bytes) to {client}");
    }
    let content_type = match path.extension().and_then(|ext| ext.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("png") => "image/png",
        Some(ext) if ext.eq_ignore_ascii_case("jpg") || ext.eq_ignore_ascii_case("jpeg") => {
            "image/jpeg"
        }
        _ => "application/octet-stream",
    };
    // A known length and no chunking: the fetcher sees a Content-Length and
    // can tell a complete download from a cut one. `take` keeps the body to
    // that length should the file grow meanwhile.
    let length_usize = usize::try_from(length).unwrap_or(usize::MAX);
    Response::new(
        StatusCode(200),
        vec![header("Content-Type", content_type)],
        file.take(length),
        Some(length_usize),
        None,
    )
    .with_chunked_threshold(usize::MAX)
    .boxed()
}

/// Reads and drops what is left of a request body (up to `limit` bytes,
/// which the front door already holds it to) before answering. A client sends its whole
/// body before it reads the answer, so it sees our `403` or `413` instead of
/// a broken connection; and the next request on a kept-alive connection
/// starts where it should. (`tiny_http` does this itself for bodies with a
/// `Content-Length`, but not for chunked ones.) A client waiting for
/// `100 Continue` has sent nothing and is not invited to.
fn discard_unread_body(request: &mut Request, limit: u64) {
    let waits_for_continue = request.headers().iter().any(|header| {
        header.field.equiv("Expect") && header.value.as_str().eq_ignore_ascii_case("100-continue")
    });
    if !waits_for_continue {
        let _ = io::copy(&mut request.as_reader().take(limit), &mut io::sink());
    }
}

/// A plain-text response; every error response has a body saying why.
pub(super) fn text(status: u16, message: &str) -> ResponseBox {
    Response::from_string(format!("{message}\n"))
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .boxed()
}

fn not_allowed(allow: &str) -> ResponseBox {
    let mut response = text(405, &format!("method not allowed here; allowed: {allow}"));
    response.add_header(header("Allow", allow));
    response
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header names and values written in this file are ASCII")
}
