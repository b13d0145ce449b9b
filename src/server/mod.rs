//! The framework's file server: the third part of the framework, beside the
//! scheduler and the executor.
//!
//! Mesos moves no files for a framework. What it offers is the *fetcher*:
//! each `CommandInfo.URI` in a task's or executor's command is downloaded by
//! the agent into the sandbox (the task's working directory) before the
//! command starts. So a framework that wants its executor binary, or an
//! image, on an agent must serve it over HTTP from somewhere the agent can
//! reach. That is this server, running inside the scheduler process:
//!
//! ```text
//!   scheduler process                              agent
//!  ┌──────────────────────────┐  GET /files/executor  ┌──────────────┐
//!  │ FileServer               │ <──────────────────── │ fetcher      │
//!  │  /files/<name>   (GET)   │  GET /files/<image>   │              │
//!  │  /upload/<name>  (POST)  │ <──────────────────── │ executor     │
//!  │  /output/<name>  (GET)   │  POST /upload/<name>  │  (our task)  │
//!  │  /               (page)  │ <──────────────────── │              │
//!  └──────────────────────────┘                       └──────────────┘
//! ```
//!
//! - `GET /files/<name>`: the executor binary and the demo images, for the
//!   fetcher and for the executor.
//! - `POST /upload/<name>`: the executors upload inverted images (see
//!   `upload.rs` for the checks).
//! - `GET /output/<name>` and `GET /`: the results and a page showing them.
//!
//! **Only registered files are reachable.** The server listens on an address
//! every agent can reach, so anyone else on that network can ask it for
//! anything. It therefore never maps a URL onto a directory: it serves
//! exactly the files the framework registered with
//! [`FileServer::serve_file`], by exact name (see `paths.rs`).
//!
//! Requests are handled by a few named worker threads, each blocking on the
//! next request; `tiny_http` parses them. Clients do not reach `tiny_http`
//! directly: the [front door](crate::front_door) takes their connections and
//! holds them to its limits (connections, header size, time for heads and
//! bodies) and to the upload limit, refusing a `Content-Length` over it
//! with `413` before reading anything. An upload larger than the front door
//! reads whole beforehand gets a thread of its own, so that a slow uploader
//! holds up no worker.

mod error;
mod limits;
mod page;
mod paths;
mod requests;
mod upload;
mod upload_checks;

#[cfg(test)]
mod tests;

pub use error::ServerError;
pub use page::{progress_line, ImageRow, Progress};
pub use paths::{is_safe_name, MAX_NAME_LEN};

use log::{debug, info, warn};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use upload::UploadTarget;

use crate::front_door::FrontDoor;
pub use crate::front_door::Limits;

/// The largest upload accepted unless told otherwise (see
/// [`FileServer::start_with_limits`]): far more than an inverted photo needs.
pub const MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// How many requests are handled at once.
const WORKERS: usize = 4;

/// A running file server. Dropping it stops it: it closes the connections,
/// stops the worker threads and closes the socket.
pub struct FileServer {
    base_url: String,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    http: Arc<crate::front_door::Requests>,
    // Dropped after `http`: it removes the directory of `http`'s socket.
    door: FrontDoor,
}

/// What the worker threads share with the `FileServer` handle.
struct Shared {
    files: Mutex<HashMap<String, PathBuf>>,
    uploads: Mutex<Option<UploadTarget>>,
    uploaded: Mutex<upload::Uploads>,
    /// `Some`: the only names (without extension) that uploads may use,
    /// see [`FileServer::expect_uploads_only`]; `None`: any safe name.
    expected_uploads: Mutex<Option<std::collections::HashSet<String>>>,
    progress: Mutex<Progress>,
    max_upload_bytes: u64,
    stopping: AtomicBool,
    /// Threads answering requests whose body may keep them waiting.
    body_threads: Mutex<Vec<JoinHandle<()>>>,
}

impl FileServer {
    /// Binds `bind` (e.g. `"127.0.0.1:0"` for an ephemeral port) and starts
    /// named worker threads. `advertised_host` is the host name or IP put in
    /// the URLs given to Mesos: the agents must be able to reach it. Uploads
    /// may be up to [`MAX_UPLOAD_BYTES`], and clients are held to the
    /// default [`Limits`].
    pub fn start(bind: &str, advertised_host: &str) -> Result<FileServer, ServerError> {
        FileServer::start_with_limits(bind, advertised_host, Limits::default(), MAX_UPLOAD_BYTES)
    }

    #[cfg(test)]
    fn start_with_limit(
        bind: &str,
        advertised_host: &str,
        max_upload_bytes: u64,
    ) -> Result<FileServer, ServerError> {
        FileServer::start_with_limits(bind, advertised_host, Limits::default(), max_upload_bytes)
    }

    /// Like [`FileServer::start`], with the limits clients are held to and
    /// the largest upload in bytes (a larger `Content-Length` is answered
    /// `413 Payload Too Large` before anything is read).
    pub fn start_with_limits(
        bind: &str,
        advertised_host: &str,
        limits: Limits,
        max_upload_bytes: u64,
    ) -> Result<FileServer, ServerError> {
        let (door, http) = limits::open_door(bind, limits, max_upload_bytes)?;
        // The address bound, with the port the system chose for port 0.
        let listening = door.local_addr();
        let port = listening.port();
        let http = Arc::new(http);
        // An IPv6 address needs brackets in a URL: http://[::1]:8080.
        let host = if advertised_host.contains(':') && !advertised_host.starts_with('[') {
            format!("[{advertised_host}]")
        } else {
            advertised_host.to_owned()
        };
        let shared = Arc::new(Shared {
            files: Mutex::default(),
            uploads: Mutex::default(),
            uploaded: Mutex::default(),
            expected_uploads: Mutex::default(),
            progress: Mutex::default(),
            max_upload_bytes,
            stopping: AtomicBool::new(false),
            body_threads: Mutex::default(),
        });
        let base_url = format!("http://{host}:{port}");
        let mut server = FileServer {
            base_url,
            shared,
            workers: Vec::with_capacity(WORKERS),
            http,
            door,
        };
        for number in 0..WORKERS {
            let http = Arc::clone(&server.http);
            let shared = Arc::clone(&server.shared);
            // Should a spawn fail, `?` drops `server`, which stops the
            // workers already started.
            let worker = std::thread::Builder::new()
                .name(format!("file-server-{number}"))
                .spawn(move || requests::handle_requests(&http, &shared))
                .map_err(ServerError::Io)?;
            server.workers.push(worker);
        }
        info!(
            "file server listening on {listening}, reachable as {}",
            server.base_url
        );
        Ok(server)
    }

    /// The URL the server is reachable at, e.g. `http://127.0.0.1:43125`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Makes `path` downloadable as `<base_url>/files/<name>` and returns
    /// that URL. The file is opened when requested and streamed, so it may
    /// be large, and it may change until then.
    pub fn serve_file(&self, name: &str, path: &Path) -> Result<String, ServerError> {
        if !is_safe_name(name) {
            return Err(ServerError::BadName(name.to_owned()));
        }
        lock(&self.shared.files).insert(name.to_owned(), path.to_path_buf());
        debug!("serving {} as /files/{name}", path.display());
        Ok(format!("{}/files/{name}", self.base_url))
    }

    /// Accepts `POST <base_url>/upload/<name>` into `output_dir`, each upload
    /// carrying the header `X-Upload-Token: <token>`. The directory is
    /// created if missing and a file is written into it now, so that an
    /// unusable directory is an error before any task runs. An empty token
    /// accepts no upload at all.
    pub fn accept_uploads(&self, output_dir: &Path, token: &str) -> Result<(), ServerError> {
        upload::prepare_output_dir(output_dir)?;
        *lock(&self.shared.uploads) = Some(UploadTarget {
            dir: output_dir.to_path_buf(),
            token: token.to_owned(),
        });
        info!("accepting uploads into {}", output_dir.display());
        Ok(())
    }

    /// Narrows uploads to the results a framework waits for: from now on
    /// an upload is stored only if its name is a `stem` given to
    /// [`FileServer::expect_upload`] plus an image extension (`.png`,
    /// `.jpg` or `.jpeg`); any other name gets `404`, even with the right
    /// token. The executor adds the extension, since only it learns the
    /// image's format.
    pub fn expect_uploads_only(&self) {
        lock(&self.shared.expected_uploads).get_or_insert_with(Default::default);
    }

    /// Allows the uploads of one result (see
    /// [`FileServer::expect_uploads_only`]), for example when its task is
    /// launched.
    pub fn expect_upload(&self, stem: &str) {
        lock(&self.shared.expected_uploads)
            .get_or_insert_with(Default::default)
            .insert(stem.to_owned());
    }

    /// Lists a result that is already in the output directory (stored by an
    /// earlier scheduler process of the same framework) as if it had been
    /// uploaded now, so that the results page links it.
    pub fn record_upload(&self, name: &str, path: &Path) {
        lock(&self.shared.uploaded)
            .entry(name.to_owned())
            .or_insert_with(|| path.to_path_buf());
    }

    /// Where an executor uploads the result called `name`:
    /// `<base_url>/upload/<name>`.
    pub fn upload_url(&self, name: &str) -> String {
        format!("{}/upload/{}", self.base_url, paths::percent_encode(name))
    }

    /// Replaces what the results page at `/` shows.
    pub fn set_progress(&self, progress: Progress) {
        *lock(&self.shared.progress) = progress;
    }

    /// Where the upload called `name` was stored, if it arrived.
    pub fn uploaded_path(&self, name: &str) -> Option<PathBuf> {
        lock(&self.shared.uploaded).get(name).cloned()
    }
}

impl FileServer {
    /// Stops serving: cuts the open connections and waits for every worker
    /// and upload, so that each upload is then stored and recorded, or
    /// gone. Dropping the server does the same; a second stop does nothing.
    pub fn stop(&mut self) {
        if self.shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Cutting the connections first ends any request still reading a
        // body or sending a file.
        self.door.close();
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Each unblock() wakes one worker waiting in recv().
        for _ in 0..self.workers.len() {
            self.http.unblock();
        }
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                warn!("a file server worker panicked");
            }
        }
        // Only the workers start upload threads, so this list is complete.
        for upload in std::mem::take(&mut *lock(&self.shared.body_threads)) {
            if upload.join().is_err() {
                warn!("a file server upload thread panicked");
            }
        }
        info!("file server at {} stopped", self.base_url);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop();
        // The socket closes when `http` drops, now that no worker holds it;
        // then `door` removes the socket's directory.
    }
}

/// A Mutex whose holder panicked still holds consistent data here (every
/// update is a single assignment), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
