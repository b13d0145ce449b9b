//! The embedded cluster: a Mesos master and one or more agents in one
//! process.
//!
//! *Plumbing: a workshop reader may skip this whole folder.* The tutorial
//! (scheduler, executor, file server) never depends on it; it only talks to
//! whatever serves the Mesos HTTP APIs at `--master`.
//!
//! Real Mesos can run a master and an agent in one process for development
//! (`mesos-local`, with `--num_slaves` agents). This module does the same
//! for people without Mesos installed: it speaks the same v1 HTTP APIs on
//! loopback, so the scheduler and executor binaries cannot tell it from a
//! real cluster.
//!
//! - The **master** (`master/`) serves `/api/v1/scheduler`: it registers
//!   frameworks, offers each agent's free resources, validates launches,
//!   forwards status updates and acknowledgements. `master/mod.rs` holds its
//!   state and test knobs; `calls.rs` takes each scheduler call from request
//!   to effect; `streams.rs` holds subscriptions, event streams and
//!   heartbeats; `offers.rs` the allocator, declines and launches; `tasks.rs`
//!   each task's state as updates pass to the framework. It also serves the
//!   operator API, `/api/v1` (`operator.rs`): listing the agents, and
//!   draining, deactivating and reactivating one (`drain.rs`).
//! - Each **agent** (`agent/`) serves `/api/v1/executor`: it makes a sandbox
//!   per executor, fetches its URIs, starts it as a child process with the
//!   `MESOS_*` environment a real agent sets, and relays its status updates.
//!   `agent/mod.rs` holds its state and the executors' subscriptions;
//!   `executors.rs` the executor processes; `updates.rs` the status-update
//!   retries and acknowledgements; `sandbox.rs` the sandboxes and the fetcher;
//!   `cache.rs` the fetcher cache (`CommandInfo.URI.cache`); `drain.rs` what
//!   it does while the operator drains it.
//! - **Resources** (`resources/`): Mesos's resource syntax (`parse.rs`) and
//!   the arithmetic of offers and tasks (`arith.rs`).
//! - `http.rs`: reading calls, Mesos's error answers, writing event streams.
//! - `web.rs`, `state.rs` (with `json_object.rs`) and `page.html`: what a
//!   person or a tool reads on the master's port: the live page at `/`,
//!   `/master/state` (Mesos 1.11's JSON), `/version` and `/master/health`.
//! - `work_dir.rs`: the work folder the cluster makes for itself when no
//!   `--work-dir` is given, removed when it stops (Ctrl+C included), and
//!   the folders of killed runs, removed when the next one starts.
//!
//! Master and agents listen on separate ports, like a real master (5050) and
//! agents (5051, ...), and share one state behind one lock, which is all a
//! cluster on one machine needs: the master refers to an agent by its index
//! in `State::agents`. Each port is a [front door](crate::front_door)
//! that holds clients to [`ClusterConfig::limits`] and refuses call bodies
//! over 4 MiB (`413`) before `tiny_http` sees them.

mod agent;
mod http;
mod json_object;
mod master;
pub mod resources;
mod state;
mod tls;
mod web;
mod work_dir;

use crate::front_door::FrontDoor;
use resources::Resources;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
pub use tls::TlsError;

pub use crate::front_door::Limits;

/// The agent's resources unless told otherwise, in Mesos's syntax.
pub const DEFAULT_RESOURCES: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

/// How the embedded cluster is set up.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Where the master listens, e.g. `127.0.0.1:5050` or `127.0.0.1:0`.
    pub master_bind: String,
    /// Where the first agent listens; port 0 picks a free one for each
    /// agent, any other port is the first of consecutive ones (5051, 5052,
    /// ...).
    pub agent_bind: String,
    /// How many agents the cluster has (Mesos's local mode:
    /// `--num_slaves`, 1 by default).
    pub agents: usize,
    /// Each agent's resources, in Mesos's syntax.
    pub resources: String,
    /// How often heartbeats are sent on idle event streams (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// How often the allocator looks for resources to offer. Mesos batches
    /// allocations every second by default (`--allocation_interval`); the
    /// embedded cluster uses 20 ms, so that resources freed by a finished
    /// task are offered again before a batch of short tasks notices a gap.
    pub allocation_interval: Duration,
    /// How long an unacknowledged status update waits before it is resent
    /// (Mesos: 10 s).
    pub update_retry_interval: Duration,
    /// How long an executor may take to subscribe after it was started.
    pub executor_registration_timeout: Duration,
    /// How long an executor is given to exit after `SHUTDOWN`.
    pub executor_shutdown_grace_period: Duration,
    /// Where sandboxes are made, kept when the cluster stops (Mesos's
    /// `--work_dir`); `None` makes a folder in the temporary directory that
    /// is removed when the cluster stops, and first removes the folders that
    /// killed runs left there (see `work_dir.rs`).
    pub work_dir: Option<PathBuf>,
    /// Act as a master that is not the leader: answer every scheduler call
    /// with a redirect to this `host:port`.
    pub redirect_to: Option<String>,
    /// When not empty, scheduler calls must authenticate as one of these
    /// (principal, secret) pairs with HTTP basic authentication.
    pub credentials: Vec<(String, String)>,
    /// Serve the scheduler API over TLS with this PEM certificate chain and
    /// private key (the agent's executor API stays plain HTTP on loopback).
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// What clients of the master's and the agent's ports are held to:
    /// connections at once, request head size, time for heads and bodies
    /// (see [`Limits`] for each default and `mesos-local` flag).
    pub limits: Limits,
    /// How many ended tasks the master keeps per framework, for
    /// `/master/state` and reconciliation; older ones are forgotten, as by
    /// Mesos's `--max_completed_tasks_per_framework` (default 1000).
    pub max_completed_tasks_per_framework: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            master_bind: "127.0.0.1:0".into(),
            agent_bind: "127.0.0.1:0".into(),
            agents: 1,
            resources: DEFAULT_RESOURCES.into(),
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_millis(20),
            update_retry_interval: Duration::from_secs(10),
            executor_registration_timeout: Duration::from_secs(60),
            executor_shutdown_grace_period: Duration::from_secs(5),
            work_dir: None,
            redirect_to: None,
            credentials: Vec::new(),
            tls: None,
            limits: Limits::default(),
            max_completed_tasks_per_framework: master::MAX_COMPLETED_TASKS,
        }
    }
}

/// Why the embedded cluster could not start.
#[derive(Debug)]
pub enum ClusterError {
    /// The `--resources` text is not valid Mesos resource syntax.
    Resources(resources::ResourceError),
    /// A listening address could not be bound.
    Bind {
        /// The address asked for.
        address: String,
        /// What the operating system said.
        reason: String,
    },
    /// The master's TLS certificate or key (`--tls-cert`, `--tls-key`)
    /// cannot be served.
    Tls(TlsError),
    /// `--agents 0`: a cluster needs at least one agent.
    NoAgents,
    /// The work directory could not be created.
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Resources(err) => write!(f, "invalid agent resources: {err}"),
            ClusterError::Bind { address, reason } => write!(
                f,
                "the embedded cluster could not listen on {address}: {reason} \
                 (is another Mesos master running? choose another --port)"
            ),
            ClusterError::Tls(err) => write!(f, "cannot serve the master over TLS: {err}"),
            ClusterError::NoAgents => {
                write!(
                    f,
                    "the cluster needs at least one agent: give --agents 1 or more"
                )
            }
            ClusterError::WorkDir { path, reason } => write!(
                f,
                "could not create the work directory {}: {reason}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ClusterError {}

impl ClusterError {
    fn bind(address: &str, err: crate::front_door::DoorError) -> ClusterError {
        let reason = match err {
            crate::front_door::DoorError::Bind(err) => err.to_string(),
            other => other.to_string(),
        };
        let address = address.to_string();
        ClusterError::Bind { address, reason }
    }
}

/// Where agent `index` of `count` listens: the port of `agent_bind`, plus
/// `index` unless it is 0 (any free port).
fn agent_address(agent_bind: &str, index: usize) -> String {
    let Some((host, port)) = agent_bind.rsplit_once(':') else {
        return agent_bind.to_string();
    };
    match port.parse::<usize>() {
        Ok(0) | Err(_) => agent_bind.to_string(),
        Ok(first) => format!("{host}:{}", first + index),
    }
}

/// The work folder of agent `index`: the cluster's own with one agent, as
/// before there were several; `agents/<index>/work` in it with more, as
/// Mesos's local mode lays them out.
fn agent_work_dir(work_dir: &std::path::Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        return work_dir.to_path_buf();
    }
    work_dir.join("agents").join(index.to_string()).join("work")
}

/// The listeners: the master's first, then each agent's, with the role
/// each plays.
type Listeners = (
    Vec<FrontDoor>,
    Vec<(Arc<crate::front_door::Requests>, Role)>,
);

/// Opens the master's port and each agent's.
fn open_doors(config: &ClusterConfig) -> Result<Listeners, ClusterError> {
    let open = |address: &str, tls| {
        // Mesos calls are small: every path takes bodies up to 4 MiB.
        let body_limit = |_: &str| http::MAX_CALL_BODY as u64;
        FrontDoor::open(address, config.limits.clone(), body_limit, tls)
            .map_err(|err| ClusterError::bind(address, err))
    };
    let master_tls = match &config.tls {
        None => None,
        Some((chain, key)) => Some(tls::server_config(chain, key).map_err(ClusterError::Tls)?),
    };
    let (master_door, master_server) = open(&config.master_bind, master_tls)?;
    let mut doors = vec![master_door];
    let mut servers = vec![(Arc::new(master_server), Role::Master)];
    for index in 0..config.agents {
        let (door, server) = open(&agent_address(&config.agent_bind, index), None)?;
        doors.push(door);
        servers.push((Arc::new(server), Role::Agent(index)));
    }
    Ok((doors, servers))
}

/// The work folder, and whether the cluster made it for itself (see
/// `work_dir.rs`). One that was given must be usable now. One of our own
/// is made with the first sandbox, so a run that launches nothing (step 1,
/// ended with Ctrl+C) leaves nothing behind.
fn work_folder(
    config: &ClusterConfig,
    master_port: u16,
) -> Result<(PathBuf, Option<PathBuf>), ClusterError> {
    let Some(dir) = &config.work_dir else {
        work_dir::remove_abandoned();
        let dir = work_dir::own_folder(master_port);
        return Ok((dir.clone(), Some(dir)));
    };
    std::fs::create_dir_all(dir).map_err(|err| ClusterError::WorkDir {
        path: dir.clone(),
        reason: err.to_string(),
    })?;
    Ok((dir.clone(), None))
}

/// A running embedded cluster. Dropping it stops it: executors are killed,
/// listeners closed, and a temporary work directory removed.
///
/// This is what `--master local` and `mesos-local` run; tests start one
/// per test:
///
/// ```
/// use mesos_tutorial::local::{Cluster, ClusterConfig};
/// use std::net::TcpStream;
///
/// // The default binds port 0 on 127.0.0.1: the system picks free ports,
/// // so clusters never collide.
/// let cluster = Cluster::start(ClusterConfig::default())?;
/// let master = cluster.master_address();
/// assert!(master.ip().is_loopback());
/// assert_ne!(master.port(), 0);
/// // A scheduler would now run with `--master 127.0.0.1:<port>`.
/// TcpStream::connect(master)?;
/// cluster.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Cluster {
    master_address: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    servers: Vec<Arc<crate::front_door::Requests>>,
    // Dropped after `servers`: each removes the directory of a server's
    // socket.
    doors: Vec<FrontDoor>,
    temporary_work_dir: Option<PathBuf>,
}

/// What every thread of the cluster shares.
struct Shared {
    state: Mutex<State>,
    stopping: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in this module; the state
        // is still usable for shutting down, so carry on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The state of the whole cluster. Master fields live in `master/`'s
/// types, agent fields in `agent/`'s; both are guarded by one lock.
struct State {
    config: ClusterConfig,
    ids: IdGenerator,
    master: master::Master,
    /// Every agent, in the order they started; the master refers to one by
    /// its index here.
    agents: Vec<agent::Agent>,
}

impl State {
    /// Logs where the master and the agent listen, and what the agent has.
    fn announce(&self) {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let master = self.master.address;
        log::info!("Embedded Mesos master listening on {scheme}://{master}");
        for agent in &self.agents {
            let address = agent.address;
            let total = &agent.total;
            match self.agents.len() {
                1 => log::info!("Embedded Mesos agent listening on {address} with {total}"),
                _ => log::info!(
                    "Embedded Mesos agent {} listening on {address} with {total}",
                    agent.id
                ),
            }
        }
    }
}

/// Makes the ids Mesos would: unique per run, readable in logs.
struct IdGenerator {
    prefix: String,
    next: u64,
}

impl IdGenerator {
    /// Ids of this run: a prefix from the clock and the process id.
    fn new() -> IdGenerator {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        IdGenerator {
            prefix: format!("{:08x}", (nanos as u64) ^ u64::from(std::process::id())),
            next: 0,
        }
    }

    /// The id of agent `index`, as Mesos's master names the agents that
    /// register with it: `…-S0`, `…-S1`, ...
    fn agent(&self, index: usize) -> String {
        format!("{}-S{index}", self.prefix)
    }

    fn next(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{}-{kind}{:04}", self.prefix, self.next)
    }
}

impl Cluster {
    /// Starts the master and the agents.
    pub fn start(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        if config.agents == 0 {
            return Err(ClusterError::NoAgents);
        }
        let total = Resources::parse(&config.resources).map_err(ClusterError::Resources)?;
        let (doors, servers) = open_doors(&config)?;
        let master_address = doors[0].local_addr();

        let (work_dir, temporary_work_dir) = work_folder(&config, master_address.port())?;
        let mut ids = IdGenerator::new();
        let master_id = ids.next("M");
        let agents: Vec<agent::Agent> = doors[1..]
            .iter()
            .enumerate()
            .map(|(index, door)| {
                let dir = agent_work_dir(&work_dir, index, config.agents);
                agent::Agent::new(ids.agent(index), door.local_addr(), total.clone(), dir)
            })
            .collect();
        let totals = vec![total; config.agents];
        let master = master::Master::new(master_id, master_address, totals);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                config: config.clone(),
                ids,
                master,
                agents,
            }),
            stopping: AtomicBool::new(false),
        });

        let mut threads = Vec::new();
        for (server, role) in &servers {
            let role = *role;
            for _ in 0..WORKERS {
                let server = Arc::clone(server);
                let shared = Arc::clone(&shared);
                threads.push(spawn(&format!("local-{role:?}-http"), move || {
                    accept_requests(&server, &shared, role)
                }));
            }
        }
        {
            let shared = Arc::clone(&shared);
            let own_folder = temporary_work_dir.clone();
            threads.push(spawn("local-ticker", move || tick(&shared, own_folder)));
        }
        shared.lock().announce();
        Ok(Cluster {
            master_address,
            shared,
            threads,
            servers: servers.into_iter().map(|(server, _)| server).collect(),
            doors,
            temporary_work_dir,
        })
    }

    /// The master's address, what a scheduler's `--master` points to.
    pub fn master_address(&self) -> SocketAddr {
        self.master_address
    }

    /// Stops everything; see the type's documentation.
    pub fn shutdown(self) {
        // Dropping does the work.
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.lock().stop();
        // Cutting every connection ends the event streams and any call
        // still reading its body.
        for door in &mut self.doors {
            door.close();
        }
        for server in &self.servers {
            // Each call wakes one worker blocked in `recv`.
            for _ in 0..WORKERS {
                server.unblock();
            }
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        agent::wait_for_executors(&self.shared);
        if let Some(dir) = &self.temporary_work_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .expect("the OS can start a thread")
}

/// Which process a listener plays: each serves only its own API.
#[derive(Clone, Copy, Debug)]
enum Role {
    Master,
    /// The agent at this index of `State::agents`.
    Agent(usize),
}

/// Threads taking requests off each listener.
const WORKERS: usize = 4;

/// Takes requests off a listener. Calls are handled right here: the front
/// door has read their bodies whole before passing them on, so none can
/// stall on a slow client. A body that still arrives at the client's pace
/// (a large or chunked one) gets a thread of its own; the front door's
/// connection cap bounds how many. Each subscription's event stream also
/// gets its own thread, started where it is accepted.
fn accept_requests(server: &crate::front_door::Requests, shared: &Arc<Shared>, role: Role) {
    while let Ok(request) = server.recv() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        if !crate::front_door::reading_body_may_block(&request) {
            route(request, shared, role);
            continue;
        }
        let shared = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("local-request".into())
            .spawn(move || route(request, &shared, role));
        if let Err(err) = spawned {
            log::error!("could not start a request thread: {err}");
        }
    }
}

fn route(request: tiny_http::Request, shared: &Arc<Shared>, role: Role) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    match (role, path.as_str()) {
        (Role::Master, "/api/v1/scheduler") => master::handle_scheduler_call(request, shared),
        (Role::Master, "/api/v1") => master::handle_operator_call(request, shared),
        (Role::Master, knob) if knob.starts_with("/local/") => master::handle_knob(request, shared),
        // Agents serve both; Mesos's executor library posts to the second,
        // built from MESOS_SLAVE_PID (docs/endpoints/slave/api/v1/executor.md).
        (Role::Agent(index), "/api/v1/executor" | "/slave(1)/api/v1/executor") => {
            agent::handle_executor_call(request, shared, index)
        }
        (Role::Master, page) if web::serves(page) => web::serve(request, page, shared),
        (_, "/health") => http::respond_text(request, 200, "OK"),
        (Role::Master, _) => not_found(
            request,
            &path,
            "the scheduler API, /api/v1/scheduler, and the operator API, /api/v1",
        ),
        (Role::Agent(_), _) => not_found(request, &path, "the executor API, /api/v1/executor"),
    }
}

fn not_found(request: tiny_http::Request, path: &str, serves: &str) {
    let message = format!("No endpoint at {path}; this embedded Mesos listener serves {serves}");
    http::respond_error(request, http::HttpError::new(404, message));
}

/// The cluster's clock: offers free resources, expires filters, resends
/// unacknowledged updates, watches executors, notices drained agents, and
/// keeps the work folder it
/// made for itself marked as in use.
fn tick(shared: &Arc<Shared>, own_folder: Option<PathBuf>) {
    let interval = shared.lock().config.allocation_interval;
    let mut last_mark: Option<std::time::Instant> = None;
    while !shared.stopping.load(Ordering::SeqCst) {
        if let Some(folder) = &own_folder {
            if last_mark.is_none_or(|last| last.elapsed() >= work_dir::MARK_EVERY) {
                work_dir::mark_alive(folder);
                last_mark = Some(std::time::Instant::now());
            }
        }
        {
            let mut state = shared.lock();
            state.allocate();
            state.retry_updates();
            state.check_executors();
            state.expire_frameworks();
            state.probe_streams();
            for agent in 0..state.agents.len() {
                state.check_drained(agent);
            }
        }
        std::thread::sleep(interval);
    }
}
