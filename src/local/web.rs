//! The master's read-only endpoints, for people and for tools: the live
//! page at `/`, the state at `/master/state`, `/version` and
//! `/master/health`.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! A real Mesos master serves its web UI and these endpoints on the same
//! port as the scheduler API (5050); so does the embedded one. The page is
//! one file, `page.html`, built into the binary: it asks `/master/state`
//! once a second and draws the agent's resources, each framework's offers
//! and tasks, and the frameworks that finished. See `state.rs` for the JSON.

use super::{Cluster, Shared};
use tiny_http::{Header, Method, Request, Response};

/// The live page, as served at `/`.
const PAGE: &str = include_str!("page.html");

impl Cluster {
    /// The address of the embedded master's live page, for a person to open
    /// in a browser: `http://127.0.0.1:5050/`.
    pub fn web_ui_url(&self) -> String {
        let scheme = if self.shared.lock().config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/", self.master_address)
    }
}

/// Mesos serves the state under the master's name and without it, with or
/// without the `.json` of older releases.
const STATE_PATHS: [&str; 4] = [
    "/master/state",
    "/state",
    "/master/state.json",
    "/state.json",
];

/// Whether `path` is one of these endpoints.
pub(super) fn serves(path: &str) -> bool {
    STATE_PATHS.contains(&path) || ["/", "/version", "/master/health"].contains(&path)
}

/// Answers a request for one of these endpoints.
pub(super) fn serve(request: Request, path: &str, shared: &Shared) {
    // These endpoints only read: anything but `GET` (or `HEAD`) gets `405`,
    // as from Mesos.
    if !matches!(request.method(), Method::Get | Method::Head) {
        let message = format!(
            "Expecting one of {{ 'GET' }}, but received '{}'",
            request.method()
        );
        let mut response = text(&message, "text/plain; charset=utf-8").with_status_code(405);
        response.add_header(header("Allow", "GET"));
        let _ = request.respond(response);
        return;
    }
    let response = match path {
        "/" => text(PAGE, "text/html; charset=utf-8"),
        "/version" => text(&super::state::render_version(), "application/json"),
        // Mesos answers `200 OK` with no body: a slow answer is the sign of
        // poor health.
        "/master/health" => Response::from_string(""),
        _ => {
            // Taken under the lock, written out after it is released.
            let view = shared.lock().view();
            text(&super::state::render(&view), "application/json")
        }
    };
    let _ = request.respond(response);
}

fn text(body: &str, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let mut response = Response::from_string(body);
    response.add_header(header("Content-Type", content_type));
    // The page polls: every answer must be fresh.
    response.add_header(header("Cache-Control", "no-cache"));
    response
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name, value).expect("a valid header")
}
