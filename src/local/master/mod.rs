//! The embedded master: the scheduler API at `/api/v1/scheduler`, and the
//! operator API at `/api/v1`.
//!
//! *Plumbing: a workshop reader may skip this folder.*
//!
//! It keeps the frameworks, the outstanding offers and the tasks, and plays
//! the master's part of two-level scheduling: it decides *which* framework
//! gets free resources (the allocator), the framework decides *what* to run
//! on them. Status codes and messages for bad calls follow Mesos 1.11.
//!
//! - this file: the master's state and its test knobs under `/local/`;
//! - [`calls`]: a scheduler call from its HTTP request to its effect
//!   (`ACCEPT`, `DECLINE`, `KILL`, `ACKNOWLEDGE`, ...);
//! - [`streams`]: subscriptions, their event streams and heartbeats, and
//!   what happens when a stream ends (failover timeout, removal);
//! - [`offers`]: the allocator, declines and their filters, and launching
//!   the tasks of an accepted offer;
//! - [`tasks`]: each task's state as status updates reach the framework;
//! - [`view`]: the snapshot of all this that `/master/state` shows;
//! - [`operator`]: the operator API at `/api/v1` (`GET_AGENTS`,
//!   `DRAIN_AGENT`, `DEACTIVATE_AGENT`, `REACTIVATE_AGENT`);
//! - [`drain`]: what those calls do: taking an agent out of offers, its
//!   drain, and bringing it back.

/// The target of every log line of this folder's files: the master's lines
/// read the same whichever file they come from (README quotes them).
const LOG_TARGET: &str = module_path!();

mod calls;
mod drain;
mod offers;
mod operator;
mod streams;
mod tasks;
mod view;

pub(in crate::local) use crate::proto::is_terminal;
pub(super) use calls::handle_scheduler_call;
pub(super) use operator::handle_operator_call;
pub(in crate::local) use tasks::{now_seconds, task_status, Report};

use super::http::{self, HttpError};
use super::resources::Resources;
use super::Shared;
use crate::proto::mesos::{DrainInfo, FrameworkInfo, TaskState, TaskStatus};
use crate::proto::scheduler::Event;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::Request;

/// The master's part of the cluster state.
pub(super) struct Master {
    id: String,
    pub(super) address: SocketAddr,
    pub(super) frameworks: HashMap<String, Framework>,
    removed_frameworks: HashSet<String>,
    offers: HashMap<String, OutstandingOffer>,
    pub(super) tasks: HashMap<(String, String), Task>,
    /// Per framework, its ended tasks in the order they ended: only the
    /// last `max_completed_tasks_per_framework` are remembered.
    completed: HashMap<String, VecDeque<String>>,
    /// What the master knows of each agent, in the order of
    /// `State::agents`.
    pub(super) agents: Vec<AgentRecord>,
    /// After a simulated restart: calls get `503` until then.
    down_until: Option<Instant>,
    /// While set, event streams are held back (a hung master).
    silent_until: Option<Instant>,
    /// When the allocator last ran, to space out allocations triggered by
    /// tasks ending (see `task_state`).
    last_allocation: Instant,
    /// When the master started, in seconds since the epoch.
    start_time: f64,
    /// Removed frameworks as `/master/state` shows them, oldest first.
    completed_frameworks: VecDeque<Arc<str>>,
    /// Until when the streams of frameworks holding offers are probed for a
    /// closed connection, and when they last were (see `probe_streams`).
    probe_until: Option<Instant>,
    last_probe: Instant,
}

pub(super) struct Framework {
    pub(super) info: FrameworkInfo,
    /// `None` while the scheduler is disconnected.
    pub(super) events: Option<Sender<Event>>,
    stream_id: String,
    suppressed: bool,
    /// Resources the framework declined, of which agent, and until when:
    /// Mesos's filters are per agent.
    filters: Vec<(usize, Resources, Instant)>,
    /// When a disconnected framework is removed (its failover timeout).
    failover_deadline: Option<Instant>,
    /// When it subscribed and disconnected, for `/master/state`.
    times: view::Times,
}

struct OutstandingOffer {
    framework_id: String,
    /// Which agent's resources it offers (an index into `State::agents`).
    agent: usize,
    resources: Resources,
}

/// An agent as the master sees it.
pub(super) struct AgentRecord {
    /// Resources neither offered nor in use.
    pub(super) free: Resources,
    /// No offers are made of a deactivated agent (`DRAIN_AGENT`,
    /// `DEACTIVATE_AGENT`; `REACTIVATE_AGENT` ends it).
    pub(super) deactivated: bool,
    /// Set by `DRAIN_AGENT`, with how far the drain has come.
    pub(super) drain: Option<DrainInfo>,
    /// When `DRAIN_AGENT` came, in seconds since the epoch.
    pub(super) drain_start_time: Option<f64>,
    /// Drained with `mark_gone`: it has left the cluster for good.
    pub(super) gone: bool,
}

/// How many ended tasks the master remembers per framework unless told
/// otherwise, as Mesos's `--max_completed_tasks_per_framework` (default
/// 1000). Older ones are
/// forgotten (reconciling one answers `TASK_LOST`, "unknown"), so that a
/// long-running framework does not grow the master without bound.
pub const MAX_COMPLETED_TASKS: usize = 1000;

/// The least time between two allocations that ended tasks trigger.
const PROMPT_ALLOCATION_GAP: Duration = Duration::from_millis(5);

/// A task as the master sees it.
pub(super) struct Task {
    /// The agent it runs on (an index into `State::agents`).
    pub(super) agent: usize,
    pub(super) state: TaskState,
    pub(super) resources: Resources,
    pub(super) last_status: Option<TaskStatus>,
    /// What `/master/state` shows of it (`view.rs`).
    pub(super) record: super::state::TaskView,
}

impl Framework {
    fn partition_aware(&self) -> bool {
        self.info.capabilities.iter().any(|c| {
            c.type_() == crate::proto::mesos::framework_info::capability::Type::PARTITION_AWARE
        })
    }

    fn role(&self) -> String {
        self.info
            .roles
            .first()
            .cloned()
            .unwrap_or_else(|| self.info.role().to_string())
    }
}

impl Master {
    /// The master of agents with these resources.
    pub(super) fn new(id: String, address: SocketAddr, totals: Vec<Resources>) -> Master {
        let agents = totals
            .into_iter()
            .map(|free| AgentRecord {
                free,
                deactivated: false,
                drain: None,
                drain_start_time: None,
                gone: false,
            })
            .collect();
        Master {
            id,
            address,
            frameworks: HashMap::new(),
            removed_frameworks: HashSet::new(),
            offers: HashMap::new(),
            tasks: HashMap::new(),
            completed: HashMap::new(),
            agents,
            down_until: None,
            silent_until: None,
            last_allocation: Instant::now(),
            start_time: now_seconds(),
            completed_frameworks: VecDeque::new(),
            probe_until: None,
            last_probe: Instant::now(),
        }
    }
}

/// The embedded cluster's test knobs, under `/local/` (not a Mesos API):
/// `POST /local/restart-master?downtime_ms=N` closes every scheduler stream
/// and answers `503` for N ms, as a failing-over master would;
/// `POST /local/silence?ms=N` holds every stream back for N ms, as a hung
/// master would; `POST /local/restart-agent?downtime_ms=N` restarts the
/// agent (see `restart_agent` in `agent/mod.rs`).
pub(super) fn handle_knob(request: Request, shared: &Arc<Shared>) {
    if request.method() != &tiny_http::Method::Post {
        return http::respond_error(request, HttpError::new(405, "Use POST"));
    }
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let millis = query
        .split('&')
        .find_map(|pair| {
            pair.split_once('=')
                .and_then(|(_, v)| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        .min(600_000);
    let duration = Duration::from_millis(millis);
    let mut state = shared.lock();
    match path {
        "/local/restart-master" => {
            log::info!(
                "Restarting the master: dropping every scheduler connection, down for {millis} ms"
            );
            state.master.down_until = Some(Instant::now() + duration);
            for framework in state.master.frameworks.values_mut() {
                framework.events = None;
            }
        }
        "/local/restart-agent" => state.restart_agent(duration),
        "/local/silence" => {
            log::info!("Holding every scheduler stream back for {millis} ms");
            state.master.silent_until = Some(Instant::now() + duration);
        }
        _ => {
            drop(state);
            return http::respond_error(
                request,
                HttpError::new(404, "Unknown knob; see src/local/master/mod.rs"),
            );
        }
    }
    drop(state);
    http::respond_text(request, 200, "OK");
}
