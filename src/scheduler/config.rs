//! What the scheduler is told (its configuration, from the command line)
//! and how it can fail.
//!
//! *Plumbing: a reader may skip this file* (step 4 reads one method,
//! [`SchedulerError::connection_lost`]). Each field of [`Config`] is a flag
//! of `scheduler --help`, and each [`SchedulerError`] says what to do.

use crate::content_type::ContentType;
use crate::http_api::{ApiError, Endpoint, StreamError};
use crate::server::ServerError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The workshop step to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Step 1: register and log offers.
    Register,
    /// Step 2: launch no-op tasks.
    Launch,
    /// Step 3: invert a batch of images.
    Images,
}

/// Everything the scheduler needs to know; `bin/scheduler.rs` fills it from
/// the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// The master's address, `host:port` or a URL.
    pub master: String,
    /// Which workshop step to run.
    pub step: Step,
    /// How calls and events are encoded.
    pub content_type: ContentType,
    /// `FrameworkInfo.name`, shown in the master's UI.
    pub name: String,
    /// `FrameworkInfo.user`: the Unix user tasks run as.
    pub user: String,
    /// The role whose resources we are offered.
    pub role: String,
    /// The executor binary; `None` looks for it next to the scheduler.
    pub executor: Option<PathBuf>,
    /// The file server's address, which the agent must be able to reach.
    pub address: String,
    /// The file server's port; 0 picks a free one.
    pub port: u16,
    /// CPUs per task.
    pub task_cpus: f64,
    /// Memory per task, in MB.
    pub task_mem: f64,
    /// Step 2: stop after this many tasks finished.
    pub tasks: Option<usize>,
    /// Step 2: how long each no-op task works; step 3: how long each task
    /// waits before its image, so that a reader can watch it run.
    pub task_millis: u32,
    /// Step 2 stops after this many tasks failed in a row (a limit of
    /// step 4, `failover.rs`).
    pub max_failures: u32,
    /// How long declined resources stay away from us.
    pub refuse_seconds: f64,
    /// Step 3: image URLs and local files; empty means the demo images.
    pub images: Vec<String>,
    /// Step 3: where inverted images are written.
    pub output_dir: PathBuf,
    /// Step 3: attempts per image before it fails for good.
    pub max_attempts: u32,
    /// Step 3: keep the results page up after the batch.
    pub keep_serving: bool,
    /// How long the master keeps our tasks after we disconnect (seconds).
    pub failover_timeout: f64,
    /// Whether agents checkpoint our tasks and updates, so that executors
    /// survive an agent restart.
    pub checkpoint: bool,
    /// Where the framework id is kept between runs of the scheduler.
    pub framework_id_file: Option<PathBuf>,
    /// Certificate authorities to trust for an `https://` master, instead
    /// of the system's.
    pub ca_file: Option<PathBuf>,
    /// Who we authenticate as (HTTP basic authentication).
    pub principal: Option<String>,
    /// The principal's secret.
    pub secret: Option<String>,
}

impl Config {
    /// The master's scheduler API, reached with `--ca-file` for an
    /// `https://` master, and with HTTP basic authentication when
    /// `--principal` comes with a secret.
    pub fn master_endpoint(&self) -> Result<Endpoint, SchedulerError> {
        let url = scheduler_url(&self.master);
        let mut endpoint = Endpoint::new(&url, self.content_type);
        if let Some(ca_file) = &self.ca_file {
            endpoint = endpoint
                .with_ca_file(ca_file)
                .map_err(SchedulerError::Tls)?;
        }
        if let (Some(principal), Some(secret)) = (&self.principal, &self.secret) {
            endpoint = endpoint.with_basic_auth(principal, secret);
        }
        Ok(endpoint)
    }
}

/// `host:port`, `http://host:port` or `https://host:port` to the scheduler
/// API's URL.
pub fn scheduler_url(master: &str) -> String {
    let master = master.trim_end_matches('/');
    match crate::http_api::http_url(master) {
        Some(url) => format!("{url}/api/v1/scheduler"),
        None => format!("http://{master}/api/v1/scheduler"),
    }
}

/// Why the scheduler stopped early.
#[derive(Debug)]
pub enum SchedulerError {
    /// A call to the master failed.
    Master(ApiError),
    /// The event stream ended or went silent.
    Events(EventError),
    /// The master sent an `ERROR` event: it gave up on this framework.
    Removed(String),
    /// The master sent an `ERROR` event because another scheduler process
    /// subscribed as this framework and replaced this one.
    FailedOver(String),
    /// The file server could not start or store results.
    Server(ServerError),
    /// The executor binary could not be found or built.
    Executor(String),
    /// The images to process could not be prepared.
    Images(String),
    /// The TLS settings (`--ca-file`) are unusable.
    Tls(String),
    /// Step 2: `--max-failures` tasks failed in a row; what the last one
    /// said.
    TasksFailing {
        /// How many failed in a row.
        count: u32,
        /// The last failure, with Mesos's state, reason and message.
        last: String,
    },
}

impl fmt::Display for SchedulerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedulerError::Master(err) => write!(f, "{err}"),
            // Logged as "Lost the master: …" (`Failover::recover`).
            SchedulerError::Events(err) => write!(f, "{err}"),
            SchedulerError::Removed(message) => {
                write!(f, "the master removed this framework: {message}")
            }
            SchedulerError::FailedOver(message) => write!(
                f,
                "another scheduler took over this framework ({message}); this one stops"
            ),
            SchedulerError::Server(err) => write!(f, "file server: {err}"),
            SchedulerError::Executor(message) => write!(f, "{message}"),
            SchedulerError::Images(message) => write!(f, "{message}"),
            SchedulerError::Tls(message) => write!(f, "{message}"),
            SchedulerError::TasksFailing { count, last } => write!(
                f,
                "{count} tasks failed in a row (--max-failures {count}), so more would fail \
                 too; the last: {last}. Check --executor and the task's sandbox on the agent \
                 (its stderr), or raise --max-failures"
            ),
        }
    }
}

impl std::error::Error for SchedulerError {}

impl SchedulerError {
    /// What an `ERROR` event means. Mesos sends one when it removes the
    /// framework, and ("Framework failed over") to the scheduler that a
    /// newer one with the same framework id replaced.
    pub fn from_error_event(message: &str) -> SchedulerError {
        if message.to_ascii_lowercase().contains("failed over") {
            SchedulerError::FailedOver(message.to_string())
        } else {
            SchedulerError::Removed(message.to_string())
        }
    }

    /// Whether this error means the connection to the master is gone, so
    /// that subscribing again is the cure: a broken or silent event stream,
    /// a master that cannot be reached, or one that no longer knows our
    /// subscription (it restarted).
    pub fn connection_lost(&self) -> bool {
        match self {
            SchedulerError::Events(_) => true,
            SchedulerError::Master(ApiError::Unreachable { .. }) => true,
            // A master that restarted or failed over no longer knows our
            // subscription ("Framework is not subscribed", "Framework
            // cannot be found"); any other 403 is a refusal to report.
            SchedulerError::Master(ApiError::Rejected {
                status: 403,
                message,
                ..
            }) => message.contains("not subscribed") || message.contains("cannot be found"),
            SchedulerError::Master(ApiError::Rejected { status, .. }) => *status == 503,
            _ => false,
        }
    }
}

impl From<ApiError> for SchedulerError {
    fn from(err: ApiError) -> Self {
        match err {
            // Every call names this scheduler's stream. Once a newer
            // scheduler subscribed as this framework, the master answers a
            // call on the old stream with 400; the replaced scheduler may
            // hear that before the `ERROR` event that says so.
            ApiError::Rejected {
                status: 400,
                message,
                ..
            } if message.contains("didn't match the stream ID") => {
                SchedulerError::FailedOver(message)
            }
            err => SchedulerError::Master(err),
        }
    }
}

impl From<ServerError> for SchedulerError {
    fn from(err: ServerError) -> Self {
        SchedulerError::Server(err)
    }
}

/// Why waiting for the next event failed.
#[derive(Debug)]
pub enum EventError {
    /// The stream ended or broke.
    Stream(StreamError),
    /// Nothing (not even a heartbeat) arrived for this long.
    Silent(Duration),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Stream(err) => write!(f, "{err}"),
            EventError::Silent(after) => write!(
                f,
                "no event or heartbeat from the master for {} s; the connection is dead",
                after.as_secs()
            ),
        }
    }
}

/// A configuration for unit tests: step 1 against a master nobody runs
/// (`127.0.0.1:1`), the flags' defaults otherwise.
#[cfg(test)]
pub(crate) fn test_config() -> Config {
    Config {
        master: "127.0.0.1:1".into(),
        step: Step::Register,
        content_type: ContentType::Protobuf,
        name: "test".into(),
        user: "test".into(),
        role: "*".into(),
        executor: None,
        address: "127.0.0.1".into(),
        port: 0,
        task_cpus: 1.0,
        task_mem: 128.0,
        tasks: None,
        task_millis: 0,
        max_failures: 5,
        refuse_seconds: 5.0,
        images: Vec::new(),
        output_dir: PathBuf::from("output"),
        max_attempts: 3,
        keep_serving: false,
        failover_timeout: 0.0,
        checkpoint: false,
        framework_id_file: None,
        ca_file: None,
        principal: None,
        secret: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(status: u16, message: &str) -> SchedulerError {
        SchedulerError::from(ApiError::Rejected {
            url: "http://127.0.0.1:5050/api/v1/scheduler".into(),
            status,
            message: message.into(),
        })
    }

    #[test]
    fn a_call_on_a_replaced_stream_means_another_scheduler_took_over() {
        let replaced = rejected(
            400,
            "The stream ID 'a' included in this request didn't match the stream ID \
             currently associated with framework ID F1",
        );
        assert!(
            matches!(replaced, SchedulerError::FailedOver(_)),
            "{replaced:?}"
        );
        assert!(replaced.to_string().contains("took over"), "{replaced}");
        assert!(!replaced.connection_lost());
    }

    #[test]
    fn other_refusals_stay_errors_of_the_master() {
        for (status, message) in [(400, "Failed to validate scheduler::Call"), (403, "")] {
            let error = rejected(status, message);
            assert!(matches!(error, SchedulerError::Master(_)), "{error:?}");
        }
    }

    #[test]
    fn master_addresses_become_scheduler_urls() {
        assert_eq!(
            scheduler_url("127.0.0.1:5050"),
            "http://127.0.0.1:5050/api/v1/scheduler"
        );
        assert_eq!(
            scheduler_url("http://m:5050/"),
            "http://m:5050/api/v1/scheduler"
        );
        assert_eq!(
            scheduler_url("https://m:5050"),
            "https://m:5050/api/v1/scheduler"
        );
    }
}
