//! An embedded agent: the executor API at `/api/v1/executor`, and the
//! executor processes themselves.
//!
//! *Plumbing: a workshop reader may skip this folder.*
//!
//! For each executor it makes a sandbox directory, downloads the executor's
//! `CommandInfo.URI`s into it (Mesos's fetcher), starts the command as a
//! child process with the `MESOS_*` environment a real agent sets, and
//! watches it. Status updates pass through a small status update manager:
//! per task, one update at a time goes to the scheduler, is resent until the
//! scheduler acknowledges it, and only then is the executor told
//! (`ACKNOWLEDGED`) and the next update sent. That is Mesos's at-least-once
//! delivery, in miniature.
//!
//! - this file: the agent's state, executor subscriptions and their event
//!   streams, messages, and the simulated restart;
//! - [`executors`]: launching tasks, the executor processes and their end;
//! - [`updates`]: the status update manager (queues, retries, acknowledgements);
//! - [`sandbox`]: each executor's sandbox and the fetcher that fills it;
//! - [`cache`]: the fetcher cache, for URIs marked `cache`;
//! - [`drain`]: killing every task when the operator drains the agent.
//!
//! The cluster may have several agents (`State::agents`); each function
//! here takes the index of the one it works on.

/// The target of every log line of this folder's files: the agent's lines
/// read the same whichever file they come from (README quotes them).
const LOG_TARGET: &str = module_path!();

mod cache;
mod drain;
mod executors;
mod sandbox;
mod updates;

pub(super) use drain::{nanoseconds, Draining};
pub(super) use executors::{start_pending_executors, wait_for_executors};

use super::http::{self, HttpError};
use super::resources::Resources;
use super::{Shared, State};
use crate::proto::executor::{call, event, Call, Event};
use crate::proto::mesos::{AgentInfo, ExecutorID, ExecutorInfo, FrameworkInfo, TaskInfo};
use crate::proto::scheduler;
use executors::Launch;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tiny_http::Request;
use updates::PendingUpdate;

/// How many acknowledged update uuids each executor's record keeps.
const REMEMBERED_ACKNOWLEDGEMENTS: usize = 1024;

type Key = (String, String);

/// The agent's part of the cluster state.
pub(super) struct Agent {
    pub(super) id: String,
    pub(super) address: SocketAddr,
    pub(super) total: Resources,
    work_dir: PathBuf,
    executors: HashMap<Key, Executor>,
    /// Which executor runs each task, until its last update is acknowledged.
    task_executors: HashMap<Key, String>,
    /// Per task, the updates not yet acknowledged; the front one is sent.
    updates: HashMap<Key, VecDeque<PendingUpdate>>,
    /// After a simulated restart: executor calls get `503` until then.
    down_until: Option<Instant>,
    /// Executors to start once the lock is released.
    pending_launches: Vec<Launch>,
    threads: Vec<JoinHandle<()>>,
    next_uuid: u64,
    /// The fetcher cache, in the work folder.
    cache: Arc<cache::FetcherCache>,
    /// While the operator drains this agent (`drain.rs`).
    draining: Option<Draining>,
}

struct Executor {
    info: ExecutorInfo,
    framework_info: FrameworkInfo,
    container_id: String,
    resources: Resources,
    /// `Some` while the executor is subscribed.
    events: Option<Sender<Event>>,
    generation: u64,
    subscribed_once: bool,
    /// Tasks waiting for the executor to subscribe.
    queued: Vec<TaskInfo>,
    /// The uuids of this executor's updates that the scheduler has
    /// acknowledged: an executor that missed the `ACKNOWLEDGED` event (its
    /// connection dropped) sends the update again, and must be answered
    /// with `ACKNOWLEDGED` again rather than have it delivered twice. Only
    /// the latest [`REMEMBERED_ACKNOWLEDGEMENTS`] are kept: an executor
    /// resends only what it sent last.
    acknowledged: HashSet<Vec<u8>>,
    acknowledged_order: VecDeque<Vec<u8>>,
    started: Instant,
    shutdown_requested: Option<Instant>,
    kill: Arc<AtomicBool>,
}

impl Agent {
    pub(super) fn new(
        id: String,
        address: SocketAddr,
        total: Resources,
        work_dir: PathBuf,
    ) -> Agent {
        Agent {
            id,
            address,
            total,
            work_dir: work_dir.clone(),
            executors: HashMap::new(),
            task_executors: HashMap::new(),
            updates: HashMap::new(),
            down_until: None,
            pending_launches: Vec::new(),
            threads: Vec::new(),
            next_uuid: 0,
            cache: Arc::new(cache::FetcherCache::new(work_dir.join("fetch"))),
            draining: None,
        }
    }

    /// The framework's executors that are running, as offers list them.
    pub(super) fn executor_ids(&self, framework_id: &str) -> Vec<ExecutorID> {
        self.executors
            .iter()
            .filter(|((fw, _), _)| fw == framework_id)
            .map(|(_, e)| e.info.executor_id.as_ref().cloned().unwrap_or_default())
            .collect()
    }

    pub(super) fn executor_info(
        &self,
        framework_id: &str,
        executor_id: &str,
    ) -> Option<&ExecutorInfo> {
        self.executors
            .get(&(framework_id.to_string(), executor_id.to_string()))
            .map(|e| &e.info)
    }
}

/// Entry point of `/api/v1/executor`.
pub(super) fn handle_executor_call(mut request: Request, shared: &Arc<Shared>, agent: usize) {
    let down_until = shared.lock().agents[agent].down_until;
    if down_until.is_some_and(|until| Instant::now() < until) {
        // What a restarting agent answers while it recovers its state.
        let message = "Agent has not finished recovery (the embedded agent is restarting)";
        return http::respond_error(request, HttpError::new(503, message));
    }
    let (content_type, body) = match http::read_call_request(&mut request) {
        Ok(parts) => parts,
        Err(err) => return http::respond_error(request, err),
    };
    let call: Call = match content_type.decode(&body, "executor Call") {
        Ok(call) => call,
        Err(err) => {
            let message = format!("Failed to parse body into Call protobuf: {}", err.reason);
            return http::respond_error(request, HttpError::bad_request(message));
        }
    };
    let key = (
        call.framework_id.value().to_string(),
        call.executor_id.value().to_string(),
    );
    let result = match call.type_() {
        call::Type::SUBSCRIBE => {
            return match http::negotiate_accept(&request) {
                Ok(accept) => {
                    // The stream holds its thread for as long as it lives.
                    let shared = Arc::clone(shared);
                    let stream = std::thread::Builder::new()
                        .name("local-executor-stream".into())
                        .spawn(move || subscribe(request, &shared, agent, key, &call, accept));
                    if let Err(err) = stream {
                        log::error!("could not start a stream thread: {err}");
                    }
                }
                Err(err) => http::respond_error(request, err),
            };
        }
        call::Type::UPDATE if call.update.is_some() => shared.lock().executor_update(
            agent,
            &key,
            call.update.status.clone().unwrap_or_default(),
        ),
        call::Type::MESSAGE if call.message.is_some() => {
            shared
                .lock()
                .executor_message(agent, &key, call.message.data())
        }
        call::Type::HEARTBEAT => Ok(()),
        call::Type::UPDATE => Err(HttpError::bad_request("Expecting 'update' to be present")),
        call::Type::MESSAGE => Err(HttpError::bad_request("Expecting 'message' to be present")),
        call::Type::UNKNOWN => Err(HttpError::bad_request("Expecting 'type' to be present")),
    };
    match result {
        Ok(()) => http::respond_accepted(request),
        Err(err) => http::respond_error(request, err),
    }
}

fn subscribe(
    request: Request,
    shared: &Arc<Shared>,
    agent: usize,
    key: Key,
    call: &Call,
    accept: crate::content_type::ContentType,
) {
    let (sender, events) = channel();
    let (generation, interval) = {
        let mut state = shared.lock();
        match state.subscribe_executor(agent, &key, &call.subscribe, sender) {
            Ok(generation) => (generation, state.config.heartbeat_interval),
            Err(err) => {
                drop(state);
                return http::respond_error(request, err);
            }
        }
    };
    log::info!("Executor {} of framework {} subscribed", key.1, key.0);
    let head = http::StreamHead {
        content_type: accept,
        stream_id: None,
    };
    let heartbeat = http::Heartbeat {
        interval,
        event: || {
            let mut event = Event::new();
            event.set_type(event::Type::HEARTBEAT);
            event
        },
    };
    let _ = http::stream_events(request, head, events, heartbeat, || false);
    let mut state = shared.lock();
    if let Some(executor) = state.agents[agent].executors.get_mut(&key) {
        if executor.generation == generation {
            executor.events = None;
            log::info!("Executor {} of framework {} disconnected", key.1, key.0);
        }
    }
}

impl State {
    fn subscribe_executor(
        &mut self,
        agent: usize,
        key: &Key,
        subscribe: &call::Subscribe,
        sender: Sender<Event>,
    ) -> Result<u64, HttpError> {
        let agent_info = self.agent_info(agent);
        let executor = self.agents[agent].executors.get_mut(key).ok_or_else(|| {
            HttpError::bad_request(format!(
                "Executor '{}' of framework '{}' cannot be found",
                key.1, key.0
            ))
        })?;
        executor.generation += 1;
        executor.subscribed_once = true;
        let mut subscribed = Event::new();
        subscribed.set_type(event::Type::SUBSCRIBED);
        let details = subscribed.subscribed.mut_or_insert_default();
        details.executor_info = Some(executor.info.clone()).into();
        details.framework_info = Some(executor.framework_info.clone()).into();
        details.agent_info = Some(agent_info).into();
        details
            .container_id
            .mut_or_insert_default()
            .set_value(executor.container_id.clone());
        let _ = sender.send(subscribed);
        for task in executor.queued.drain(..) {
            let mut launch = Event::new();
            launch.set_type(event::Type::LAUNCH);
            launch.launch.mut_or_insert_default().task = Some(task).into();
            let _ = sender.send(launch);
        }
        executor.events = Some(sender);
        let generation = executor.generation;
        // A re-subscribing executor resends what it never saw acknowledged;
        // updates we already hold are not forwarded twice.
        if !subscribe.unacknowledged_updates.is_empty()
            || !subscribe.unacknowledged_tasks.is_empty()
        {
            log::info!(
                "Executor {} re-subscribed with {} unacknowledged update(s) and {} unacknowledged task(s)",
                key.1,
                subscribe.unacknowledged_updates.len(),
                subscribe.unacknowledged_tasks.len()
            );
        }
        for update in &subscribe.unacknowledged_updates {
            if let Some(status) = update.status.as_ref() {
                let _ = self.executor_update(agent, key, status.clone());
            }
        }
        Ok(generation)
    }

    pub(super) fn agent_info(&self, agent: usize) -> AgentInfo {
        let agent = &self.agents[agent];
        let mut info = AgentInfo::new();
        info.set_hostname(agent.address.ip().to_string());
        info.set_port(i32::from(agent.address.port()));
        info.id.mut_or_insert_default().set_value(agent.id.clone());
        info.resources = agent.total.to_protos(None);
        info
    }

    /// Which agent has this id, if any.
    pub(super) fn agent_index(&self, agent_id: &str) -> Option<usize> {
        self.agents.iter().position(|agent| agent.id == agent_id)
    }

    fn executor_message(&mut self, agent: usize, key: &Key, data: &[u8]) -> Result<(), HttpError> {
        let mut event = scheduler::Event::new();
        event.set_type(scheduler::event::Type::MESSAGE);
        let message = event.message.mut_or_insert_default();
        message
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agents[agent].id.clone());
        message
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        message.set_data(data.to_vec());
        self.send_to_framework(&key.0, event);
        Ok(())
    }

    pub(super) fn send_framework_message(
        &mut self,
        framework_id: &str,
        agent_id: &str,
        executor_id: &str,
        data: &[u8],
    ) {
        let key = (framework_id.to_string(), executor_id.to_string());
        let Some(agent) = self.agent_index(agent_id) else {
            return;
        };
        if let Some(Some(events)) = self.agents[agent].executors.get(&key).map(|e| &e.events) {
            let mut message = Event::new();
            message.set_type(event::Type::MESSAGE);
            message
                .message
                .mut_or_insert_default()
                .set_data(data.to_vec());
            let _ = events.send(message);
        }
    }

    /// A removed framework's executors are asked to shut down, and its
    /// pending updates dropped: nobody is left to acknowledge them.
    pub(super) fn agent_remove_framework(&mut self, framework_id: &str) {
        for agent in 0..self.agents.len() {
            let executors: Vec<String> = self.agents[agent]
                .executors
                .keys()
                .filter(|(fw, _)| fw == framework_id)
                .map(|(_, id)| id.clone())
                .collect();
            for executor_id in executors {
                self.shutdown_executor(agent, framework_id, &executor_id);
            }
            let agent = &mut self.agents[agent];
            agent.updates.retain(|(fw, _), _| fw != framework_id);
            agent.task_executors.retain(|(fw, _), _| fw != framework_id);
        }
    }

    /// Simulates an agent restart (of every agent): every executor loses
    /// its connection, the agent answers `503` for `downtime`, and it
    /// forgets the executor updates it had not yet passed on (a crashed
    /// agent would). Executors of checkpointing frameworks subscribe again
    /// and resend them; the others exit, and their tasks fail.
    pub(super) fn restart_agent(&mut self, downtime: Duration) {
        log::info!(
            "Restarting the agent: dropping every executor connection, down for {} ms",
            downtime.as_millis()
        );
        for agent in &mut self.agents {
            agent.restart(downtime);
        }
    }

    /// Stops everything, for the cluster's shutdown.
    pub(super) fn stop(&mut self) {
        self.disconnect_frameworks();
        for agent in &mut self.agents {
            for executor in agent.executors.values_mut() {
                executor.events = None;
                executor.kill.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl Agent {
    fn restart(&mut self, downtime: Duration) {
        self.down_until = Some(Instant::now() + downtime);
        for executor in self.executors.values_mut() {
            executor.events = None;
        }
        for queue in self.updates.values_mut() {
            // The front update was already passed on; the rest were not.
            let mut kept: VecDeque<PendingUpdate> = queue.drain(..1).collect();
            kept.extend(queue.drain(..).filter(|update| !update.from_executor));
            *queue = kept;
        }
    }
}
