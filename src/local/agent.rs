//! The embedded agent: the executor API at `/api/v1/executor`, and the
//! executor processes themselves.
//!
//! *Plumbing: a workshop reader may skip this file.*
//!
//! For each executor it makes a sandbox directory, downloads the executor's
//! `CommandInfo.URI`s into it (Mesos's fetcher), starts the command as a
//! child process with the `MESOS_*` environment a real agent sets, and
//! watches it. Status updates pass through a small status update manager:
//! per task, one update at a time goes to the scheduler, is resent until the
//! scheduler acknowledges it, and only then is the executor told
//! (`ACKNOWLEDGED`) and the next update sent. That is Mesos's at-least-once
//! delivery, in miniature.

use super::http::{self, HttpError};
use super::master::{is_terminal, now_seconds, task_status};
use super::resources::Resources;
use super::{Shared, State};
use crate::proto::executor::{call, event, Call, Event};
use crate::proto::mesos::{
    task_status, AgentInfo, ExecutorID, ExecutorInfo, FrameworkInfo, TaskInfo, TaskState,
    TaskStatus,
};
use crate::proto::scheduler;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tiny_http::Request;

/// The largest file the fetcher downloads.
const MAX_FETCH_BYTES: u64 = 512 * 1024 * 1024;
/// How many acknowledged update uuids each executor's record keeps.
const REMEMBERED_ACKNOWLEDGEMENTS: usize = 1024;
/// Resends of an unacknowledged update back off up to this (Mesos: 10 min).
const MAX_UPDATE_RETRY: Duration = Duration::from_secs(600);

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

struct PendingUpdate {
    status: TaskStatus,
    from_executor: bool,
    resend_at: Instant,
    backoff: Duration,
}

/// Everything the thread that runs one executor process needs.
struct Launch {
    key: Key,
    command: crate::proto::mesos::CommandInfo,
    sandbox: PathBuf,
    environment: Vec<(String, String)>,
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
            work_dir,
            executors: HashMap::new(),
            task_executors: HashMap::new(),
            updates: HashMap::new(),
            down_until: None,
            pending_launches: Vec::new(),
            threads: Vec::new(),
            next_uuid: 0,
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
pub(super) fn handle_executor_call(mut request: Request, shared: &Arc<Shared>) {
    let down = shared
        .lock()
        .agent
        .down_until
        .is_some_and(|until| Instant::now() < until);
    if down {
        // What a restarting agent answers while it recovers its state.
        let err = HttpError::new(
            503,
            "Agent has not finished recovery (the embedded agent is restarting)",
        );
        return http::respond_error(request, err);
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
                        .spawn(move || subscribe(request, &shared, key, &call, accept));
                    if let Err(err) = stream {
                        log::error!("could not start a stream thread: {err}");
                    }
                }
                Err(err) => http::respond_error(request, err),
            };
        }
        call::Type::UPDATE if call.update.is_some() => shared
            .lock()
            .executor_update(&key, call.update.status.clone().unwrap_or_default()),
        call::Type::MESSAGE if call.message.is_some() => {
            shared.lock().executor_message(&key, call.message.data())
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
    key: Key,
    call: &Call,
    accept: crate::content_type::ContentType,
) {
    let (sender, events) = channel();
    let (generation, heartbeat) = {
        let mut state = shared.lock();
        match state.subscribe_executor(&key, &call.subscribe, sender) {
            Ok(generation) => (generation, state.config.heartbeat_interval),
            Err(err) => {
                drop(state);
                return http::respond_error(request, err);
            }
        }
    };
    log::info!("Executor {} of framework {} subscribed", key.1, key.0);
    let heartbeat_event = || {
        let mut event = Event::new();
        event.set_type(event::Type::HEARTBEAT);
        event
    };
    let _ = http::stream_events(
        request,
        accept,
        None,
        events,
        heartbeat,
        heartbeat_event,
        || false,
    );
    let mut state = shared.lock();
    if let Some(executor) = state.agent.executors.get_mut(&key) {
        if executor.generation == generation {
            executor.events = None;
            log::info!("Executor {} of framework {} disconnected", key.1, key.0);
        }
    }
}

impl State {
    fn subscribe_executor(
        &mut self,
        key: &Key,
        subscribe: &call::Subscribe,
        sender: Sender<Event>,
    ) -> Result<u64, HttpError> {
        let agent_info = self.agent_info();
        let executor = self.agent.executors.get_mut(key).ok_or_else(|| {
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
                "Executor {} re-subscribed with {} unacknowledged updates and {} unacknowledged tasks",
                key.1,
                subscribe.unacknowledged_updates.len(),
                subscribe.unacknowledged_tasks.len()
            );
        }
        for update in &subscribe.unacknowledged_updates {
            if let Some(status) = update.status.as_ref() {
                let _ = self.executor_update(key, status.clone());
            }
        }
        Ok(generation)
    }

    fn agent_info(&self) -> AgentInfo {
        let mut info = AgentInfo::new();
        info.set_hostname(self.agent.address.ip().to_string());
        info.set_port(i32::from(self.agent.address.port()));
        info.id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        info.resources = self.agent.total.to_protos(None);
        info
    }

    /// An `UPDATE` call: checked as Mesos checks it, then queued for the
    /// scheduler.
    fn executor_update(&mut self, key: &Key, mut status: TaskStatus) -> Result<(), HttpError> {
        let subscribed = self
            .agent
            .executors
            .get(key)
            .is_some_and(|e| e.events.is_some());
        if !subscribed {
            return Err(HttpError::new(403, "Executor is not subscribed"));
        }
        if status.uuid().len() != 16 {
            return Err(HttpError::bad_request(
                "Expecting 'uuid' to be a 16-byte UUID",
            ));
        }
        if status.state() == TaskState::TASK_STAGING {
            return Err(HttpError::bad_request(
                "Received TASK_STAGING from the executor, which is not allowed",
            ));
        }
        // Mesos's own checks on an executor's UPDATE call.
        if status.executor_id.is_some() && status.executor_id.value() != key.1 {
            return Err(HttpError::bad_request(format!(
                "ExecutorID in Call: {} does not match ExecutorID in TaskStatus: {}",
                key.1,
                status.executor_id.value()
            )));
        }
        if status.source() != task_status::Source::SOURCE_EXECUTOR {
            return Err(HttpError::bad_request(format!(
                "Received Call from executor '{}' of framework '{}' with invalid source, \
                 expecting 'SOURCE_EXECUTOR'",
                key.1, key.0
            )));
        }
        if let Some(executor) = self.agent.executors.get(key) {
            if executor.acknowledged.contains(status.uuid()) {
                log::debug!(
                    "Update {:?} of task {} was acknowledged already; acknowledging it again",
                    status.state(),
                    status.task_id.value()
                );
                send_acknowledged(executor, status.task_id.value(), status.uuid());
                return Ok(());
            }
        }
        let task_id = status.task_id.value().to_string();
        let task_key = (key.0.clone(), task_id.clone());
        if self.agent.task_executors.get(&task_key) != Some(&key.1) {
            return Err(HttpError::bad_request(format!(
                "Task '{task_id}' is not known on executor '{}'",
                key.1
            )));
        }
        status
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        self.queue_update(&key.0, status, true);
        Ok(())
    }

    fn executor_message(&mut self, key: &Key, data: &[u8]) -> Result<(), HttpError> {
        let mut event = scheduler::Event::new();
        event.set_type(scheduler::event::Type::MESSAGE);
        let message = event.message.mut_or_insert_default();
        message
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        message
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        message.set_data(data.to_vec());
        self.send_to_framework(&key.0, event);
        Ok(())
    }

    /// Hands a task to its executor, starting the executor if needed.
    pub(super) fn agent_launch_task(
        &mut self,
        framework_id: &str,
        framework: &FrameworkInfo,
        task: TaskInfo,
    ) {
        let mut info = task.executor.clone().unwrap_or_default();
        info.framework_id
            .mut_or_insert_default()
            .set_value(framework_id.to_string());
        let key = (
            framework_id.to_string(),
            info.executor_id.value().to_string(),
        );
        let task_key = (framework_id.to_string(), task.task_id.value().to_string());
        self.agent.task_executors.insert(task_key, key.1.clone());
        log::info!(
            "Launching task {} on executor {}",
            task.task_id.value(),
            key.1
        );
        if let Some(executor) = self.agent.executors.get_mut(&key) {
            match &executor.events {
                Some(events) => {
                    let mut launch = Event::new();
                    launch.set_type(event::Type::LAUNCH);
                    launch.launch.mut_or_insert_default().task = Some(task).into();
                    let _ = events.send(launch);
                }
                None => executor.queued.push(task),
            }
            return;
        }
        let container_id = self.ids.next("C");
        let sandbox = self
            .agent
            .work_dir
            .join("frameworks")
            .join(&key.0)
            .join("executors")
            .join(&key.1)
            .join("runs")
            .join(&container_id);
        let kill = Arc::new(AtomicBool::new(false));
        let environment = self.executor_environment(&key, framework, &sandbox);
        self.agent.pending_launches.push(Launch {
            key: key.clone(),
            command: info.command.clone().unwrap_or_default(),
            sandbox,
            environment,
            kill: Arc::clone(&kill),
        });
        let resources = Resources::from_protos(&info.resources).unwrap_or_default();
        self.agent.executors.insert(
            key,
            Executor {
                info,
                framework_info: framework.clone(),
                container_id,
                resources,
                events: None,
                generation: 0,
                subscribed_once: false,
                queued: vec![task],
                acknowledged: HashSet::new(),
                acknowledged_order: VecDeque::new(),
                started: Instant::now(),
                shutdown_requested: None,
                kill,
            },
        );
    }

    /// The environment a Mesos agent gives an HTTP executor.
    fn executor_environment(
        &self,
        key: &Key,
        framework: &FrameworkInfo,
        sandbox: &Path,
    ) -> Vec<(String, String)> {
        let grace = self.config.executor_shutdown_grace_period.as_secs_f64();
        let sandbox = sandbox.display().to_string();
        // As a Mesos agent does, the recovery settings are only given to the
        // executors of checkpointing frameworks: only those are waited for
        // when the agent restarts; the others shut down when it goes away.
        let recovery = framework.checkpoint().then(|| {
            [
                ("MESOS_RECOVERY_TIMEOUT", "15mins".to_string()),
                ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs".to_string()),
            ]
        });
        [
            ("MESOS_FRAMEWORK_ID", key.0.clone()),
            ("MESOS_EXECUTOR_ID", key.1.clone()),
            ("MESOS_AGENT_ENDPOINT", self.agent.address.to_string()),
            ("MESOS_SLAVE_ID", self.agent.id.clone()),
            ("MESOS_DIRECTORY", sandbox.clone()),
            ("MESOS_SANDBOX", sandbox),
            (
                "MESOS_CHECKPOINT",
                if framework.checkpoint() { "1" } else { "0" }.into(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                format!("{grace}secs"),
            ),
            ("MESOS_HTTP_COMMAND_EXECUTOR", "0".into()),
        ]
        .into_iter()
        .chain(recovery.into_iter().flatten())
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    pub(super) fn agent_kill_task(&mut self, framework_id: &str, task_id: &str) {
        let task_key = (framework_id.to_string(), task_id.to_string());
        let Some(executor_id) = self.agent.task_executors.get(&task_key).cloned() else {
            return;
        };
        let key = (framework_id.to_string(), executor_id);
        let Some(executor) = self.agent.executors.get_mut(&key) else {
            return;
        };
        if let Some(position) = executor
            .queued
            .iter()
            .position(|t| t.task_id.value() == task_id)
        {
            // The executor never saw the task, so the agent answers for it.
            executor.queued.remove(position);
            let status = self.agent_status(
                task_id,
                &key.1,
                TaskState::TASK_KILLED,
                task_status::Reason::REASON_TASK_KILLED_DURING_LAUNCH,
                "Killed before the executor started it",
            );
            self.queue_update(framework_id, status, false);
        } else if let Some(events) = &executor.events {
            let mut kill = Event::new();
            kill.set_type(event::Type::KILL);
            kill.kill
                .mut_or_insert_default()
                .task_id
                .mut_or_insert_default()
                .set_value(task_id.to_string());
            let _ = events.send(kill);
        }
    }

    pub(super) fn shutdown_executor(&mut self, framework_id: &str, executor_id: &str) {
        let key = (framework_id.to_string(), executor_id.to_string());
        if let Some(executor) = self.agent.executors.get_mut(&key) {
            executor.shutdown_requested = Some(Instant::now());
            match &executor.events {
                Some(events) => {
                    let mut shutdown = Event::new();
                    shutdown.set_type(event::Type::SHUTDOWN);
                    let _ = events.send(shutdown);
                }
                None => executor.kill.store(true, Ordering::SeqCst),
            }
        }
    }

    pub(super) fn send_framework_message(
        &mut self,
        framework_id: &str,
        executor_id: &str,
        data: &[u8],
    ) {
        let key = (framework_id.to_string(), executor_id.to_string());
        if let Some(Some(events)) = self.agent.executors.get(&key).map(|e| &e.events) {
            let mut message = Event::new();
            message.set_type(event::Type::MESSAGE);
            message
                .message
                .mut_or_insert_default()
                .set_data(data.to_vec());
            let _ = events.send(message);
        }
    }

    /// A status the agent makes itself (the executor cannot speak for a task
    /// it never had, or once it is gone). It carries a uuid: the scheduler
    /// acknowledges it like any agent update.
    fn agent_status(
        &mut self,
        task_id: &str,
        executor_id: &str,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) -> TaskStatus {
        self.agent.next_uuid += 1;
        let mut uuid = self.agent.next_uuid.to_be_bytes().to_vec();
        uuid.extend_from_slice(&now_seconds().to_bits().to_be_bytes());
        let source = task_status::Source::SOURCE_AGENT;
        let mut status = task_status(task_id, state, source, reason, message, &self.agent.id);
        status
            .executor_id
            .mut_or_insert_default()
            .set_value(executor_id.to_string());
        status.set_uuid(uuid);
        status
    }

    /// The status update manager: queues an update per task and sends it
    /// when every earlier update of that task has been acknowledged.
    fn queue_update(&mut self, framework_id: &str, mut status: TaskStatus, from_executor: bool) {
        status
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        let key = (framework_id.to_string(), status.task_id.value().to_string());
        let queue = self.agent.updates.entry(key.clone()).or_default();
        if queue.iter().any(|u| u.status.uuid() == status.uuid()) {
            return;
        }
        let retry = self.config.update_retry_interval;
        let state = status.state();
        queue.push_back(PendingUpdate {
            status,
            from_executor,
            resend_at: Instant::now() + retry,
            backoff: retry,
        });
        if queue.len() == 1 {
            self.send_front_update(&key);
        } else if is_terminal(state) {
            // The framework hears of the end in order, after it has
            // acknowledged the earlier updates; the master learns of it now.
            self.task_state(&key.0, &key.1, state);
        }
    }

    fn send_front_update(&mut self, key: &Key) {
        let Some(front) = self.agent.updates.get_mut(key).and_then(|q| q.front_mut()) else {
            return;
        };
        front.resend_at = Instant::now() + front.backoff;
        let status = front.status.clone();
        log::info!("Task {} is {:?}", key.1, status.state());
        self.forward_status(&key.0, status);
    }

    /// An `ACKNOWLEDGE` from the scheduler: the front update of the task is
    /// done; the executor hears of it, and the next update goes out.
    ///
    /// A real Mesos agent sends `ACKNOWLEDGED` to the executor as soon as
    /// its status update manager has recorded (checkpointed) the update.
    /// This agent keeps no checkpoint, so it waits for the scheduler's
    /// acknowledgement instead: a stricter order, under which an executor
    /// that forgot an unacknowledged update would be caught by the tests.
    pub(super) fn acknowledge(&mut self, framework_id: &str, task_id: &str, uuid: &[u8]) {
        let key = (framework_id.to_string(), task_id.to_string());
        let Some(queue) = self.agent.updates.get_mut(&key) else {
            log::warn!("Ignoring acknowledgement for task {task_id}: no update is pending");
            return;
        };
        if queue.front().map(|u| u.status.uuid()) != Some(uuid) {
            log::warn!("Ignoring acknowledgement for task {task_id}: unknown uuid");
            return;
        }
        let acked = queue.pop_front().expect("front was just checked");
        let finished = queue.is_empty() && is_terminal(acked.status.state());
        if queue.is_empty() {
            self.agent.updates.remove(&key);
        }
        if let Some(executor_id) = self.agent.task_executors.get(&key).cloned() {
            if acked.from_executor {
                let executor_key = (framework_id.to_string(), executor_id);
                if let Some(executor) = self.agent.executors.get_mut(&executor_key) {
                    executor.remember_acknowledged(uuid);
                    send_acknowledged(executor, task_id, uuid);
                }
            }
        }
        if finished {
            self.agent.task_executors.remove(&key);
        }
        self.send_front_update(&key);
    }

    /// How many updates wait for an acknowledgement, across all tasks.
    pub(super) fn unacknowledged_updates(&self) -> usize {
        self.agent.updates.values().map(VecDeque::len).sum()
    }

    /// Resends every pending update of a framework at once.
    pub(super) fn resend_updates(&mut self, framework_id: &str) {
        let keys: Vec<Key> = self
            .agent
            .updates
            .keys()
            .filter(|(fw, _)| fw == framework_id)
            .cloned()
            .collect();
        for key in keys {
            self.send_front_update(&key);
        }
    }

    /// Resends updates that were not acknowledged in time, with backoff.
    pub(super) fn retry_updates(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .agent
            .updates
            .iter()
            .filter(|(_, q)| q.front().is_some_and(|u| u.resend_at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(front) = self.agent.updates.get_mut(&key).and_then(|q| q.front_mut()) {
                front.backoff = (front.backoff * 2).min(MAX_UPDATE_RETRY);
            }
            log::debug!("Resending unacknowledged update for task {}", key.1);
            self.send_front_update(&key);
        }
    }

    /// Kills executors that never subscribed, or outlived their shutdown
    /// grace period.
    pub(super) fn check_executors(&mut self) {
        let registration = self.config.executor_registration_timeout;
        let grace = self.config.executor_shutdown_grace_period;
        for ((framework_id, executor_id), executor) in &self.agent.executors {
            let unregistered =
                !executor.subscribed_once && executor.started.elapsed() > registration;
            let overdue = executor
                .shutdown_requested
                .is_some_and(|t| t.elapsed() > grace);
            if (unregistered || overdue) && !executor.kill.swap(true, Ordering::SeqCst) {
                log::warn!("Killing executor {executor_id} of framework {framework_id}");
            }
        }
    }

    /// The executor process is gone: its unfinished tasks fail, its
    /// resources return, and the scheduler hears of it.
    fn executor_exited(&mut self, key: &Key, status: Option<i32>, description: &str) {
        let Some(executor) = self.agent.executors.remove(key) else {
            return;
        };
        log::info!("Executor {} of framework {} {description}", key.1, key.0);
        self.master.free.add(&executor.resources);
        if !self.master.frameworks.contains_key(&key.0) {
            return;
        }
        let orphans: Vec<String> = self
            .agent
            .task_executors
            .iter()
            .filter(|((fw, task), eid)| {
                fw == &key.0
                    && *eid == &key.1
                    && self
                        .master
                        .tasks
                        .get(&(fw.clone(), task.clone()))
                        .is_some_and(|t| !is_terminal(t.state))
                    && !self
                        .agent
                        .updates
                        .get(&(fw.clone(), task.clone()))
                        .is_some_and(|q| q.iter().any(|u| is_terminal(u.status.state())))
            })
            .map(|((_, task), _)| task.clone())
            .collect();
        for task_id in orphans {
            let message = format!("Executor {description}");
            let reason = task_status::Reason::REASON_EXECUTOR_TERMINATED;
            let update =
                self.agent_status(&task_id, &key.1, TaskState::TASK_FAILED, reason, &message);
            self.queue_update(&key.0, update, false);
        }
        let mut failure = scheduler::Event::new();
        failure.set_type(scheduler::event::Type::FAILURE);
        let details = failure.failure.mut_or_insert_default();
        details
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        details
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        if let Some(code) = status {
            details.set_status(code);
        }
        self.send_to_framework(&key.0, failure);
    }

    /// A removed framework's executors are asked to shut down, and its
    /// pending updates dropped: nobody is left to acknowledge them.
    pub(super) fn agent_remove_framework(&mut self, framework_id: &str) {
        let executors: Vec<String> = self
            .agent
            .executors
            .keys()
            .filter(|(fw, _)| fw == framework_id)
            .map(|(_, id)| id.clone())
            .collect();
        for executor_id in executors {
            self.shutdown_executor(framework_id, &executor_id);
        }
        self.agent.updates.retain(|(fw, _), _| fw != framework_id);
        self.agent
            .task_executors
            .retain(|(fw, _), _| fw != framework_id);
    }

    /// Simulates an agent restart: every executor loses its connection, the
    /// agent answers `503` for `downtime`, and it forgets the executor
    /// updates it had not yet passed on (a crashed agent would). Executors
    /// of checkpointing frameworks subscribe again and resend them; the
    /// others exit, and their tasks fail.
    pub(super) fn restart_agent(&mut self, downtime: Duration) {
        log::info!(
            "Restarting the agent: dropping every executor connection, down for {} ms",
            downtime.as_millis()
        );
        self.agent.down_until = Some(Instant::now() + downtime);
        for executor in self.agent.executors.values_mut() {
            executor.events = None;
        }
        for queue in self.agent.updates.values_mut() {
            // The front update was already passed on; the rest were not.
            let mut kept: VecDeque<PendingUpdate> = queue.drain(..1).collect();
            kept.extend(queue.drain(..).filter(|update| !update.from_executor));
            *queue = kept;
        }
    }

    /// Stops everything, for the cluster's shutdown.
    pub(super) fn stop(&mut self) {
        self.disconnect_frameworks();
        for executor in self.agent.executors.values_mut() {
            executor.events = None;
            executor.kill.store(true, Ordering::SeqCst);
        }
    }
}

/// Starts the threads for executors that `ACCEPT` created.
impl Executor {
    fn remember_acknowledged(&mut self, uuid: &[u8]) {
        if self.acknowledged.insert(uuid.to_vec()) {
            self.acknowledged_order.push_back(uuid.to_vec());
        }
        if self.acknowledged_order.len() > REMEMBERED_ACKNOWLEDGEMENTS {
            if let Some(oldest) = self.acknowledged_order.pop_front() {
                self.acknowledged.remove(&oldest);
            }
        }
    }
}

/// Tells a subscribed executor that its update `uuid` is acknowledged.
fn send_acknowledged(executor: &Executor, task_id: &str, uuid: &[u8]) {
    let Some(events) = &executor.events else {
        return;
    };
    let mut event = Event::new();
    event.set_type(event::Type::ACKNOWLEDGED);
    let ack = event.acknowledged.mut_or_insert_default();
    ack.task_id
        .mut_or_insert_default()
        .set_value(task_id.to_string());
    ack.set_uuid(uuid.to_vec());
    let _ = events.send(event);
}

pub(super) fn start_pending_executors(shared: &Arc<Shared>) {
    let mut state = shared.lock();
    let launches: Vec<Launch> = state.agent.pending_launches.drain(..).collect();
    for launch in launches {
        let shared_for_thread = Arc::clone(shared);
        let name = format!("local-executor-{}", launch.key.1);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_executor(&shared_for_thread, launch));
        match thread {
            Ok(handle) => state.agent.threads.push(handle),
            Err(err) => log::error!("could not start an executor thread: {err}"),
        }
    }
}

/// Waits for every executor process to be gone; the cluster is stopping.
pub(super) fn wait_for_executors(shared: &Arc<Shared>) {
    let threads: Vec<JoinHandle<()>> = shared.lock().agent.threads.drain(..).collect();
    for thread in threads {
        let _ = thread.join();
    }
}

/// One executor's life: sandbox, fetch, start, watch, report.
fn run_executor(shared: &Arc<Shared>, launch: Launch) {
    let result = prepare_sandbox(&launch).and_then(|()| start_process(&launch));
    let mut child = match result {
        Ok(child) => child,
        Err(message) => {
            log::warn!("Executor {} failed to start: {message}", launch.key.1);
            let mut state = shared.lock();
            fail_queued_tasks(&mut state, &launch.key, &message);
            state.executor_exited(&launch.key, None, &format!("failed to start: {message}"));
            return;
        }
    };
    let description = loop {
        match child.try_wait() {
            Ok(Some(status)) => break describe_exit(status),
            Ok(None) => {}
            Err(err) => break format!("could not be watched: {err}"),
        }
        if launch.kill.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Mesos reports the raw wait status, which also covers death by signal.
    let code = child
        .try_wait()
        .ok()
        .flatten()
        .map(std::os::unix::process::ExitStatusExt::into_raw);
    shared
        .lock()
        .executor_exited(&launch.key, code, &description);
}

fn fail_queued_tasks(state: &mut State, key: &Key, message: &str) {
    let queued: Vec<String> = state
        .agent
        .executors
        .get(key)
        .map(|e| {
            e.queued
                .iter()
                .map(|t| t.task_id.value().to_string())
                .collect()
        })
        .unwrap_or_default();
    for task_id in queued {
        let reason = task_status::Reason::REASON_CONTAINER_LAUNCH_FAILED;
        let status = state.agent_status(&task_id, &key.1, TaskState::TASK_FAILED, reason, message);
        state.queue_update(&key.0, status, false);
    }
    if let Some(executor) = state.agent.executors.get_mut(key) {
        executor.queued.clear();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was terminated by signal {signal}"),
        _ => "exited".to_string(),
    }
}

/// Makes the sandbox and fetches the URIs into it, as Mesos's fetcher does.
fn prepare_sandbox(launch: &Launch) -> Result<(), String> {
    std::fs::create_dir_all(&launch.sandbox).map_err(|err| {
        format!(
            "could not create sandbox {}: {err}",
            launch.sandbox.display()
        )
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    for uri in &launch.command.uris {
        let url = uri.value();
        let name = match uri.output_file() {
            "" => url
                .split('?')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
            name => name.to_string(),
        };
        if name.is_empty() || name.contains('/') || name == ".." || name == "." {
            return Err(format!("cannot derive a file name from URI {url}"));
        }
        let path = launch.sandbox.join(&name);
        let response = agent
            .get(url)
            .call()
            .map_err(|err| format!("failed to fetch {url}: {err}"))?;
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(MAX_FETCH_BYTES)
            .reader();
        let mut file = std::fs::File::create(&path)
            .map_err(|err| format!("could not write {}: {err}", path.display()))?;
        std::io::copy(&mut reader, &mut file)
            .map_err(|err| format!("failed to fetch {url}: {err}"))?;
        if uri.executable() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|err| format!("could not make {} executable: {err}", path.display()))?;
        }
        log::info!(
            "Fetched {url} into the sandbox of executor {}",
            launch.key.1
        );
    }
    Ok(())
}

fn start_process(launch: &Launch) -> Result<std::process::Child, String> {
    let command = &launch.command;
    let mut process = if command.shell() {
        let mut process = Command::new("/bin/sh");
        process.arg("-c").arg(command.value());
        process
    } else {
        let mut process = Command::new(command.value());
        process.args(command.arguments.iter().skip(1));
        process
    };
    let output = |name: &str| {
        std::fs::File::create(launch.sandbox.join(name))
            .map(Stdio::from)
            .map_err(|err| format!("could not create {name} in the sandbox: {err}"))
    };
    process
        .current_dir(&launch.sandbox)
        .envs(launch.environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output("stdout")?)
        .stderr(output("stderr")?)
        .spawn()
        .map_err(|err| format!("could not start '{}': {err}", command.value()))
}
