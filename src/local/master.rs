//! The embedded master: the scheduler API at `/api/v1/scheduler`.
//!
//! *Plumbing: a workshop reader may skip this file.*
//!
//! It keeps the frameworks, the outstanding offers and the tasks, and plays
//! the master's part of two-level scheduling: it decides *which* framework
//! gets free resources (the allocator), the framework decides *what* to run
//! on them. Status codes and messages for bad calls follow Mesos 1.11.

use super::http::{self, HttpError};
use super::resources::Resources;
use super::{Shared, State};
use crate::content_type::ContentType;
use crate::proto::mesos::{
    task_status, FrameworkInfo, MasterInfo, Offer, TaskInfo, TaskState, TaskStatus,
};
use crate::proto::scheduler::{call, event, Call, Event};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::Request;

mod view;

/// The master's part of the cluster state.
pub(super) struct Master {
    id: String,
    address: SocketAddr,
    pub(super) frameworks: HashMap<String, Framework>,
    removed_frameworks: HashSet<String>,
    offers: HashMap<String, OutstandingOffer>,
    pub(super) tasks: HashMap<(String, String), Task>,
    /// Per framework, its ended tasks in the order they ended: only the
    /// last `max_completed_tasks_per_framework` are remembered.
    completed: HashMap<String, VecDeque<String>>,
    /// Resources neither offered nor in use.
    pub(super) free: Resources,
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
}

pub(super) struct Framework {
    pub(super) info: FrameworkInfo,
    /// `None` while the scheduler is disconnected.
    pub(super) events: Option<Sender<Event>>,
    stream_id: String,
    suppressed: bool,
    /// Resources the framework declined, and until when.
    filters: Vec<(Resources, Instant)>,
    /// When a disconnected framework is removed (its failover timeout).
    failover_deadline: Option<Instant>,
    /// When it first subscribed, subscribed again, and last disconnected
    /// (`0` while connected), in seconds since the epoch.
    registered_time: f64,
    reregistered_time: Option<f64>,
    unregistered_time: f64,
}

struct OutstandingOffer {
    framework_id: String,
    resources: Resources,
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
    pub(super) fn new(id: String, address: SocketAddr, total: Resources) -> Master {
        Master {
            id,
            address,
            frameworks: HashMap::new(),
            removed_frameworks: HashSet::new(),
            offers: HashMap::new(),
            tasks: HashMap::new(),
            completed: HashMap::new(),
            free: total,
            down_until: None,
            silent_until: None,
            last_allocation: Instant::now(),
            start_time: now_seconds(),
            completed_frameworks: VecDeque::new(),
        }
    }
}

pub(super) use crate::proto::is_terminal;

/// Entry point of `/api/v1/scheduler`.
pub(super) fn handle_scheduler_call(mut request: Request, shared: &Arc<Shared>) {
    if let Err(err) = check_availability(&request, shared) {
        return http::respond_error(request, err);
    }
    let (content_type, body) = match http::read_call_request(&mut request) {
        Ok(parts) => parts,
        Err(err) => return http::respond_error(request, err),
    };
    let call: Call = match content_type.decode(&body, "scheduler Call") {
        Ok(call) => call,
        Err(err) => {
            let message = format!("Failed to parse body into Call protobuf: {}", err.reason);
            return http::respond_error(request, HttpError::bad_request(message));
        }
    };
    if let Err(err) = validate(&call) {
        return http::respond_error(request, err);
    }
    let stream_id = http::header(&request, crate::http_api::STREAM_ID_HEADER);
    if call.type_() == call::Type::SUBSCRIBE {
        if stream_id.is_some() {
            let err = "Expecting 'Mesos-Stream-Id' to not be present with SUBSCRIBE call";
            return http::respond_error(request, HttpError::bad_request(err));
        }
        return match http::negotiate_accept(&request) {
            Ok(accept) => {
                // The stream holds its thread for as long as it lives.
                let shared = Arc::clone(shared);
                let stream = std::thread::Builder::new()
                    .name("local-scheduler-stream".into())
                    .spawn(move || subscribe(request, &shared, &call, accept));
                if let Err(err) = stream {
                    log::error!("could not start a stream thread: {err}");
                }
            }
            Err(err) => http::respond_error(request, err),
        };
    }
    let result = {
        let mut state = shared.lock();
        let framework_id = call.framework_id.value().to_string();
        state
            .check_caller(&framework_id, stream_id.as_deref())
            .and_then(|()| state.handle_call(&framework_id, call))
    };
    super::agent::start_pending_executors(shared);
    match result {
        Ok(()) => http::respond_accepted(request),
        Err(err) => http::respond_error(request, err),
    }
}

/// What a master checks before it even reads a call: is it the leader (if
/// not, `307` to the leader, whose address Mesos sends without a scheme), is
/// the caller authenticated (`401`), has it finished recovering (`503`).
fn check_availability(request: &Request, shared: &Shared) -> Result<(), HttpError> {
    let state = shared.lock();
    if let Some(leader) = &state.config.redirect_to {
        let mut error = HttpError::new(
            307,
            format!("Not the leading master; the leader is {leader}"),
        );
        error.location = Some(format!("//{leader}/api/v1/scheduler"));
        return Err(error);
    }
    if !state.config.credentials.is_empty() {
        let given = http::header(request, "Authorization").unwrap_or_default();
        let accepted = state.config.credentials.iter().any(|(principal, secret)| {
            let mut expected = String::from("Basic ");
            crate::json::base64_encode(format!("{principal}:{secret}").as_bytes(), &mut expected);
            given == expected
        });
        if !accepted {
            let mut error = HttpError::new(
                401,
                "Authentication required: send HTTP basic credentials of a known principal",
            );
            error.authenticate = true;
            return Err(error);
        }
    }
    if state
        .master
        .down_until
        .is_some_and(|until| Instant::now() < until)
    {
        return Err(HttpError::new(
            503,
            "Master has not finished recovery (the embedded master is restarting)",
        ));
    }
    Ok(())
}

/// The embedded cluster's test knobs, under `/local/` (not a Mesos API):
/// `POST /local/restart-master?downtime_ms=N` closes every scheduler stream
/// and answers `503` for N ms, as a failing-over master would;
/// `POST /local/silence?ms=N` holds every stream back for N ms, as a hung
/// master would; `POST /local/restart-agent?downtime_ms=N` restarts the
/// agent (see `agent.rs`).
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
                HttpError::new(404, "Unknown knob; see src/local/master.rs"),
            );
        }
    }
    drop(state);
    http::respond_text(request, 200, "OK");
}

/// The checks Mesos makes on every call before looking at who sent it.
fn validate(call: &Call) -> Result<(), HttpError> {
    use call::Type::*;
    let missing = |field: &str| {
        Err(HttpError::bad_request(format!(
            "Expecting '{field}' to be present"
        )))
    };
    match call.type_() {
        UNKNOWN => return missing("type"),
        SUBSCRIBE => {
            if call.subscribe.is_none() {
                return missing("subscribe");
            }
            let info = &call.subscribe.framework_info;
            if call.framework_id.is_some()
                && (info.id.is_none() || info.id.value() != call.framework_id.value())
            {
                return Err(HttpError::bad_request(
                    "'framework_id' differs from 'subscribe.framework_info.id'",
                ));
            }
            return Ok(());
        }
        _ => {}
    }
    if call.framework_id.is_none() {
        return missing("framework_id");
    }
    match call.type_() {
        ACCEPT if call.accept.is_none() => missing("accept"),
        DECLINE if call.decline.is_none() => missing("decline"),
        KILL if call.kill.is_none() => missing("kill"),
        SHUTDOWN if call.shutdown.is_none() => missing("shutdown"),
        ACKNOWLEDGE if call.acknowledge.is_none() => missing("acknowledge"),
        RECONCILE if call.reconcile.is_none() => missing("reconcile"),
        MESSAGE if call.message.is_none() => missing("message"),
        ACCEPT_INVERSE_OFFERS
        | DECLINE_INVERSE_OFFERS
        | REQUEST
        | UPDATE_FRAMEWORK
        | RECONCILE_OPERATIONS
        | ACKNOWLEDGE_OPERATION_STATUS => Err(HttpError::new(
            501,
            format!(
                "{:?} is not supported by the embedded cluster",
                call.type_()
            ),
        )),
        _ => Ok(()),
    }
}

/// `SUBSCRIBE`: registers (or re-registers) the framework, then holds the
/// request open as its event stream until it closes.
fn subscribe(request: Request, shared: &Arc<Shared>, call: &Call, accept: ContentType) {
    let (sender, events) = channel();
    let (framework_id, stream_id, heartbeat) = {
        let mut state = shared.lock();
        let heartbeat = state.config.heartbeat_interval;
        match state.subscribe_framework(
            call.subscribe.framework_info.clone().unwrap_or_default(),
            sender,
            accept,
        ) {
            Ok((framework_id, stream_id)) => (framework_id, stream_id, heartbeat),
            Err(message) => {
                drop(state);
                // Mesos answers a removed framework on the stream itself.
                let (sender, events) = channel();
                let _ = sender.send(error_event(&message));
                drop(sender);
                let _ = http::stream_events(
                    request,
                    accept,
                    None,
                    events,
                    heartbeat,
                    heartbeat_event,
                    || silenced(shared),
                );
                return;
            }
        }
    };
    let result = http::stream_events(
        request,
        accept,
        Some(&stream_id),
        events,
        heartbeat,
        heartbeat_event,
        || silenced(shared),
    );
    if let Err(err) = &result {
        log::info!("Event stream of framework {framework_id} broke: {err}");
    }
    shared
        .lock()
        .framework_disconnected(&framework_id, &stream_id);
}

/// Whether the master's streams are held back (the `/local/silence` knob).
fn silenced(shared: &Shared) -> bool {
    shared
        .lock()
        .master
        .silent_until
        .is_some_and(|until| Instant::now() < until)
}

fn heartbeat_event() -> Event {
    let mut event = Event::new();
    event.set_type(event::Type::HEARTBEAT);
    event
}

fn error_event(message: &str) -> Event {
    let mut event = Event::new();
    event.set_type(event::Type::ERROR);
    event
        .error
        .mut_or_insert_default()
        .set_message(message.to_string());
    event
}

impl State {
    fn subscribe_framework(
        &mut self,
        mut info: FrameworkInfo,
        sender: Sender<Event>,
        accept: ContentType,
    ) -> Result<(String, String), String> {
        let framework_id = match info.id.as_ref() {
            Some(id) if self.master.removed_frameworks.contains(id.value()) => {
                return Err("Framework has been removed".into());
            }
            Some(id) => id.value().to_string(),
            None => self.ids.next("F"),
        };
        info.id
            .mut_or_insert_default()
            .set_value(framework_id.clone());
        let stream_id = self.ids.next("stream-");
        let master_info = self.master_info();
        let framework = self
            .master
            .frameworks
            .entry(framework_id.clone())
            .or_insert_with(|| Framework {
                info: info.clone(),
                events: None,
                stream_id: String::new(),
                suppressed: false,
                filters: Vec::new(),
                failover_deadline: None,
                registered_time: 0.0,
                reregistered_time: None,
                unregistered_time: 0.0,
            });
        if framework.registered_time == 0.0 {
            framework.registered_time = now_seconds();
        } else {
            framework.reregistered_time = Some(now_seconds());
        }
        framework.unregistered_time = 0.0;
        let replaced = framework.events.take();
        if let Some(old) = &replaced {
            // A second subscription replaces the first: the old scheduler
            // is told, and its stream is closed.
            let _ = old.send(error_event("Framework failed over"));
        }
        framework.info = info;
        framework.stream_id = stream_id.clone();
        framework.failover_deadline = None;
        let mut subscribed = Event::new();
        subscribed.set_type(event::Type::SUBSCRIBED);
        let details = subscribed.subscribed.mut_or_insert_default();
        details
            .framework_id
            .mut_or_insert_default()
            .set_value(framework_id.clone());
        details.set_heartbeat_interval_seconds(self.config.heartbeat_interval.as_secs_f64());
        details.master_info = Some(master_info).into();
        let _ = sender.send(subscribed);
        framework.events = Some(sender);
        log::info!("Framework {framework_id} subscribed (stream {stream_id}, {accept})");
        if replaced.is_some() {
            // Offers sent on the old stream may never have arrived; as
            // Mesos does on failover, they are taken back and made anew.
            self.recover_all_offers(&framework_id);
        }
        // A framework that comes back gets its pending updates now, rather
        // than at the next retry (a new one has none).
        self.resend_updates(&framework_id);
        self.allocate();
        Ok((framework_id, stream_id))
    }

    fn master_info(&self) -> MasterInfo {
        let mut info = MasterInfo::new();
        info.set_id(self.master.id.clone());
        let ip = match self.master.address.ip() {
            // Mesos packs the address as the in-memory `in_addr`.
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        info.set_ip(ip);
        info.set_port(u32::from(self.master.address.port()));
        info.set_hostname(self.master.address.ip().to_string());
        info.set_version("1.11.0".into());
        let address = info.address.mut_or_insert_default();
        address.set_ip(self.master.address.ip().to_string());
        address.set_port(i32::from(self.master.address.port()));
        info
    }

    /// Who may make a call: a subscribed framework, on its current stream.
    fn check_caller(&self, framework_id: &str, stream_id: Option<&str>) -> Result<(), HttpError> {
        let framework = self
            .master
            .frameworks
            .get(framework_id)
            .ok_or_else(|| HttpError::new(403, "Framework cannot be found"))?;
        if framework.events.is_none() {
            return Err(HttpError::new(403, "Framework is not subscribed"));
        }
        match stream_id {
            None => Err(HttpError::bad_request(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
            )),
            Some(id) if id != framework.stream_id => Err(HttpError::bad_request(format!(
                "The stream ID '{id}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn handle_call(&mut self, framework_id: &str, call: Call) -> Result<(), HttpError> {
        use call::Type::*;
        match call.type_() {
            TEARDOWN => {
                log::info!("Framework {framework_id} asked to be torn down");
                self.remove_framework(framework_id);
            }
            ACCEPT => self.accept(framework_id, &call.accept),
            DECLINE => {
                let decline = &call.decline;
                let ids: Vec<&str> = decline.offer_ids.iter().map(|id| id.value()).collect();
                self.recover_offers(framework_id, &ids, decline.filters.refuse_seconds());
            }
            REVIVE => {
                let framework = self.framework_mut(framework_id);
                framework.suppressed = false;
                framework.filters.clear();
                self.allocate();
            }
            SUPPRESS => self.framework_mut(framework_id).suppressed = true,
            KILL => self.kill_task(framework_id, call.kill.task_id.value()),
            SHUTDOWN => self.shutdown_executor(framework_id, call.shutdown.executor_id.value()),
            ACKNOWLEDGE => {
                let ack = &call.acknowledge;
                if ack.uuid().len() != 16 {
                    return Err(HttpError::bad_request(
                        "Failed to parse UUID: expecting 16 bytes",
                    ));
                }
                if ack.agent_id.value() != self.agent.id {
                    return Err(HttpError::bad_request(format!(
                        "Agent {} cannot be found",
                        ack.agent_id.value()
                    )));
                }
                self.acknowledge(framework_id, ack.task_id.value(), ack.uuid());
            }
            RECONCILE => self.reconcile(framework_id, &call.reconcile),
            MESSAGE => {
                let message = &call.message;
                self.send_framework_message(
                    framework_id,
                    message.executor_id.value(),
                    message.data(),
                );
            }
            other => log::debug!("Ignoring {other:?} from framework {framework_id}"),
        }
        Ok(())
    }

    fn framework_mut(&mut self, framework_id: &str) -> &mut Framework {
        self.master
            .frameworks
            .get_mut(framework_id)
            .expect("check_caller verified that the framework exists")
    }

    /// Sends an event to a framework if it is connected.
    pub(super) fn send_to_framework(&self, framework_id: &str, event: Event) {
        if let Some(Some(events)) = self.master.frameworks.get(framework_id).map(|f| &f.events) {
            let _ = events.send(event);
        }
    }

    /// The allocator: offers all free resources to one connected, unsuppressed
    /// framework that has not declined them. One agent, so one offer at a time.
    pub(super) fn allocate(&mut self) {
        self.master.last_allocation = Instant::now();
        if self.master.free.is_empty() {
            return;
        }
        let now = Instant::now();
        let free = self.master.free.clone();
        let mut candidates: Vec<&String> = self.master.frameworks.keys().collect();
        candidates.sort();
        let chosen = candidates.into_iter().find(|id| {
            let framework = &self.master.frameworks[*id];
            framework.events.is_some()
                && !framework.suppressed
                && !framework
                    .filters
                    .iter()
                    .any(|(filtered, until)| *until > now && filtered.contains(&free))
        });
        let Some(framework_id) = chosen.cloned() else {
            return;
        };
        let offer_id = self.ids.next("O");
        let framework = &self.master.frameworks[&framework_id];
        let mut offer = Offer::new();
        offer.id.mut_or_insert_default().set_value(offer_id.clone());
        offer
            .framework_id
            .mut_or_insert_default()
            .set_value(framework_id.clone());
        offer
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        offer.set_hostname(self.agent.address.ip().to_string());
        let role = framework.role();
        offer.resources = free.to_protos(Some(&role));
        offer.allocation_info.mut_or_insert_default().set_role(role);
        offer.executor_ids = self.agent.executor_ids(&framework_id);
        self.master.free = Resources::default();
        self.master.offers.insert(
            offer_id.clone(),
            OutstandingOffer {
                framework_id: framework_id.clone(),
                resources: free.clone(),
            },
        );
        log::info!("Offering {free} to framework {framework_id} (offer {offer_id})");
        let mut event = Event::new();
        event.set_type(event::Type::OFFERS);
        event.offers.mut_or_insert_default().offers.push(offer);
        self.send_to_framework(&framework_id, event);
    }

    /// Returns offers to the free pool, declining them for `refuse_seconds`.
    fn recover_offers(&mut self, framework_id: &str, offer_ids: &[&str], refuse_seconds: f64) {
        let mut recovered = Resources::default();
        for id in offer_ids {
            match self.master.offers.get(*id) {
                Some(offer) if offer.framework_id == framework_id => {
                    let offer = self.master.offers.remove(*id).expect("just looked up");
                    recovered.add(&offer.resources);
                }
                _ => log::debug!("Framework {framework_id} gave back unknown offer {id}"),
            }
        }
        self.decline(framework_id, recovered, refuse_seconds);
    }

    fn decline(&mut self, framework_id: &str, resources: Resources, refuse_seconds: f64) {
        if resources.is_empty() {
            return;
        }
        // As in Mesos: a negative value means the default, zero means no
        // filter, and a filter lasts at most a year.
        let refuse = if refuse_seconds < 0.0 || refuse_seconds.is_nan() {
            5.0
        } else {
            refuse_seconds
        };
        if refuse > 0.0 {
            let until = Instant::now() + Duration::from_secs_f64(refuse.min(365.0 * 86400.0));
            if let Some(framework) = self.master.frameworks.get_mut(framework_id) {
                framework
                    .filters
                    .retain(|(_, until)| *until > Instant::now());
                framework.filters.push((resources.clone(), until));
            }
        }
        self.master.free.add(&resources);
    }

    /// `ACCEPT`: launches the tasks of `LAUNCH` operations from the offers.
    fn accept(&mut self, framework_id: &str, accept: &call::Accept) {
        let tasks: Vec<TaskInfo> = accept
            .operations
            .iter()
            .filter(|op| op.type_() == crate::proto::mesos::offer::operation::Type::LAUNCH)
            .flat_map(|op| op.launch.task_infos.iter().cloned())
            .collect();
        let ids: Vec<&str> = accept.offer_ids.iter().map(|id| id.value()).collect();
        let invalid = ids.iter().find(
            |id| !matches!(self.master.offers.get(**id), Some(o) if o.framework_id == framework_id),
        );
        if ids.is_empty() || invalid.is_some() {
            // One bad offer invalidates the whole call. The tasks never
            // started, which Mesos reports as TASK_DROPPED (TASK_LOST to
            // frameworks that are not partition-aware).
            let message = match invalid {
                Some(id) => format!("Offer {id} is no longer valid"),
                None => "No offers were given".to_string(),
            };
            self.recover_offers(framework_id, &ids, 0.0);
            let state = if self.master.frameworks[framework_id].partition_aware() {
                TaskState::TASK_DROPPED
            } else {
                TaskState::TASK_LOST
            };
            for task in &tasks {
                let reason = task_status::Reason::REASON_INVALID_OFFERS;
                self.master_update(framework_id, task.task_id.value(), state, reason, &message);
            }
            return;
        }
        let mut remaining = Resources::default();
        for id in &ids {
            let offer = self.master.offers.remove(*id).expect("validated above");
            remaining.add(&offer.resources);
        }
        for task in tasks {
            match self.validate_task(framework_id, &task, &remaining) {
                Ok(needed) => {
                    remaining
                        .subtract(&needed)
                        .expect("validate_task checked that the task fits");
                    self.launch_task(framework_id, task);
                }
                Err(message) => {
                    log::info!(
                        "Refusing task {} of framework {framework_id}: {message}",
                        task.task_id.value()
                    );
                    let reason = task_status::Reason::REASON_TASK_INVALID;
                    self.master_update(
                        framework_id,
                        task.task_id.value(),
                        TaskState::TASK_ERROR,
                        reason,
                        &message,
                    );
                }
            }
        }
        self.decline(framework_id, remaining, accept.filters.refuse_seconds());
    }

    /// The resources a task needs from the offer (its own, plus its
    /// executor's if that executor is not running yet), or why it is invalid.
    fn validate_task(
        &self,
        framework_id: &str,
        task: &TaskInfo,
        available: &Resources,
    ) -> Result<Resources, String> {
        let task_id = task.task_id.value();
        if task_id.is_empty() {
            return Err("Task has an empty TaskID".into());
        }
        let key = (framework_id.to_string(), task_id.to_string());
        if matches!(self.master.tasks.get(&key), Some(t) if !is_terminal(t.state)) {
            return Err(format!("Task has duplicate ID: {task_id}"));
        }
        if task.agent_id.value() != self.agent.id {
            return Err(format!(
                "Task uses an unknown agent {}",
                task.agent_id.value()
            ));
        }
        let Some(executor) = task.executor.as_ref() else {
            return Err("The embedded cluster runs tasks with an ExecutorInfo only (command tasks are not supported)".into());
        };
        if executor.framework_id.is_some() && executor.framework_id.value() != framework_id {
            return Err("ExecutorInfo has a framework_id of another framework".into());
        }
        if executor.command.is_none() {
            return Err("ExecutorInfo has no command".into());
        }
        let mut needed = Resources::from_protos(&task.resources)
            .map_err(|e| format!("Task has invalid resources: {e}"))?;
        let executor_resources = Resources::from_protos(&executor.resources)
            .map_err(|e| format!("Executor has invalid resources: {e}"))?;
        match self
            .agent
            .executor_info(framework_id, executor.executor_id.value())
        {
            Some(running) if !same_executor(running, executor) => {
                return Err(format!(
                    "ExecutorInfo for executor '{}' differs from the one already running",
                    executor.executor_id.value()
                ));
            }
            Some(_) => {}
            None => {
                if executor_resources.scalar("cpus") <= 0.0
                    || executor_resources.scalar("mem") <= 0.0
                {
                    return Err(format!(
                        "Executor '{}' must declare cpus and mem resources of its own",
                        executor.executor_id.value()
                    ));
                }
                needed.add(&executor_resources);
            }
        }
        if !available.contains(&needed) {
            return Err(format!(
                "Task uses more resources ({needed}) than remain in the offers ({available})"
            ));
        }
        Ok(needed)
    }

    fn launch_task(&mut self, framework_id: &str, task: TaskInfo) {
        let key = (framework_id.to_string(), task.task_id.value().to_string());
        let resources = Resources::from_protos(&task.resources).unwrap_or_default();
        let role = self.master.frameworks[framework_id].role();
        self.master.tasks.insert(
            key,
            Task {
                state: TaskState::TASK_STAGING,
                resources,
                last_status: None,
                record: view::launched(&task, &role),
            },
        );
        let info = self.master.frameworks[framework_id].info.clone();
        self.agent_launch_task(framework_id, &info, task);
    }

    /// Records a status update and passes it to the framework. Called for
    /// every update, from the agent or the master itself.
    pub(super) fn forward_status(&mut self, framework_id: &str, status: TaskStatus) {
        let key = (framework_id.to_string(), status.task_id.value().to_string());
        if let Some(task) = self.master.tasks.get_mut(&key) {
            view::record_status(&mut task.record, &status);
            task.last_status = Some(status.clone());
        }
        let (task_id, state) = (status.task_id.value().to_string(), status.state());
        // The update goes out first, then any offer of what the task freed.
        self.send_update(framework_id, status);
        self.task_state(framework_id, &task_id, state);
    }

    /// Records the latest state of a task. An ended task stays ended: the
    /// agent may report the end (see `queue_update` in agent.rs) before the
    /// framework has acknowledged the updates that come before it. The
    /// master frees a task's resources as soon as it learns that the task
    /// ended, not when the update is acknowledged, as Mesos does with the
    /// `latest_state` the agent sends along with each update.
    pub(super) fn task_state(&mut self, framework_id: &str, task_id: &str, state: TaskState) {
        let key = (framework_id.to_string(), task_id.to_string());
        let Some(task) = self.master.tasks.get_mut(&key) else {
            return;
        };
        if is_terminal(task.state) {
            return;
        }
        task.state = state;
        if is_terminal(state) {
            let resources = std::mem::take(&mut task.resources);
            self.master.free.add(&resources);
            // Offer what the task freed now rather than at the next tick, so
            // that a batch of short tasks keeps its cores busy; but not more
            // often than every few milliseconds, so that thousands of tiny
            // tasks ending do not each make an offer of their own.
            if self.master.last_allocation.elapsed() >= PROMPT_ALLOCATION_GAP {
                self.allocate();
            }
            let kept = self.config.max_completed_tasks_per_framework;
            let completed = self
                .master
                .completed
                .entry(framework_id.to_string())
                .or_default();
            completed.push_back(task_id.to_string());
            while completed.len() > kept {
                if let Some(oldest) = completed.pop_front() {
                    // Unless the id was used again for a task still alive.
                    let key = (framework_id.to_string(), oldest);
                    if self
                        .master
                        .tasks
                        .get(&key)
                        .is_some_and(|t| is_terminal(t.state))
                    {
                        self.master.tasks.remove(&key);
                    }
                }
            }
        }
    }

    fn send_update(&self, framework_id: &str, status: TaskStatus) {
        let mut event = Event::new();
        event.set_type(event::Type::UPDATE);
        event.update.mut_or_insert_default().status = Some(status).into();
        self.send_to_framework(framework_id, event);
    }

    /// An update that the master makes itself. Mesos sends these without a
    /// uuid, and frameworks must not acknowledge them. They report on a
    /// launch that was refused, a task the master does not know, or the
    /// state it already records, so they change no task's record: a
    /// refused launch that reuses the id of a running task must not end
    /// that task or free its resources.
    fn master_update(
        &mut self,
        framework_id: &str,
        task_id: &str,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) {
        let source = task_status::Source::SOURCE_MASTER;
        let status = task_status(task_id, state, source, reason, message, &self.agent.id);
        self.send_update(framework_id, status);
    }

    fn kill_task(&mut self, framework_id: &str, task_id: &str) {
        let key = (framework_id.to_string(), task_id.to_string());
        match self.master.tasks.get(&key) {
            Some(task) if !is_terminal(task.state) => self.agent_kill_task(framework_id, task_id),
            Some(_) => log::debug!("Task {task_id} already ended; nothing to kill"),
            None => {
                let reason = task_status::Reason::REASON_RECONCILIATION;
                let message = "Attempted to kill an unknown task";
                self.master_update(framework_id, task_id, TaskState::TASK_LOST, reason, message);
            }
        }
    }

    /// `RECONCILE`: the latest state of the listed tasks, or of every
    /// unfinished task when none is listed.
    fn reconcile(&mut self, framework_id: &str, reconcile: &call::Reconcile) {
        let reason = task_status::Reason::REASON_RECONCILIATION;
        let task_ids: Vec<String> = if reconcile.tasks.is_empty() {
            self.master
                .tasks
                .iter()
                .filter(|((fw, _), task)| fw == framework_id && !is_terminal(task.state))
                .map(|((_, id), _)| id.clone())
                .collect()
        } else {
            reconcile
                .tasks
                .iter()
                .map(|t| t.task_id.value().to_string())
                .collect()
        };
        for task_id in task_ids {
            let key = (framework_id.to_string(), task_id.clone());
            let (state, message) = match self.master.tasks.get(&key) {
                Some(task) => (task.state, "Reconciliation: latest task state"),
                None => (TaskState::TASK_LOST, "Reconciliation: task is unknown"),
            };
            self.master_update(framework_id, &task_id, state, reason, message);
        }
    }

    /// Takes back every offer the framework holds, without a filter: the
    /// scheduler that got them is gone, or was replaced by a new one.
    fn recover_all_offers(&mut self, framework_id: &str) {
        let offers: Vec<String> = self
            .master
            .offers
            .iter()
            .filter(|(_, o)| o.framework_id == framework_id)
            .map(|(id, _)| id.clone())
            .collect();
        let offers: Vec<&str> = offers.iter().map(String::as_str).collect();
        self.recover_offers(framework_id, &offers, 0.0);
    }

    /// The scheduler's event stream ended. Without a failover timeout Mesos
    /// removes the framework (and kills its tasks) at once.
    fn framework_disconnected(&mut self, framework_id: &str, stream_id: &str) {
        let Some(framework) = self.master.frameworks.get_mut(framework_id) else {
            return;
        };
        if framework.stream_id != stream_id {
            return; // An older stream of a framework that re-subscribed.
        }
        framework.events = None;
        framework.unregistered_time = now_seconds();
        let timeout = framework.info.failover_timeout();
        self.recover_all_offers(framework_id);
        if timeout > 0.0 {
            log::info!("Framework {framework_id} disconnected; it has {timeout} s to fail over");
            let deadline = Instant::now() + Duration::from_secs_f64(timeout.min(365.0 * 86400.0));
            self.framework_mut(framework_id).failover_deadline = Some(deadline);
        } else {
            log::info!(
                "Framework {framework_id} disconnected without a failover timeout; removing it"
            );
            self.remove_framework(framework_id);
        }
    }

    /// Removes frameworks whose failover timeout has passed.
    pub(super) fn expire_frameworks(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .master
            .frameworks
            .iter()
            .filter(|(_, f)| matches!(f.failover_deadline, Some(d) if d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in expired {
            log::info!("Framework {framework_id} did not fail over in time; removing it");
            self.remove_framework(&framework_id);
        }
    }

    /// Forgets a framework: its offers return, its executors are shut down,
    /// its tasks end, and its event stream closes.
    fn remove_framework(&mut self, framework_id: &str) {
        self.recover_all_offers(framework_id);
        self.remember_removed_framework(framework_id);
        let tasks: Vec<(String, String)> = self
            .master
            .tasks
            .keys()
            .filter(|(fw, _)| fw == framework_id)
            .cloned()
            .collect();
        for key in tasks {
            if let Some(task) = self.master.tasks.remove(&key) {
                self.master.free.add(&task.resources);
            }
        }
        self.master.completed.remove(framework_id);
        self.agent_remove_framework(framework_id);
        self.master.frameworks.remove(framework_id);
        self.master
            .removed_frameworks
            .insert(framework_id.to_string());
    }

    /// Closes every scheduler stream; used when the cluster stops.
    pub(super) fn disconnect_frameworks(&mut self) {
        for framework in self.master.frameworks.values_mut() {
            framework.events = None;
        }
    }
}

/// Mesos compares a new task's ExecutorInfo with the running executor's;
/// the framework id may be filled in by the master, so it is not compared.
fn same_executor(
    a: &crate::proto::mesos::ExecutorInfo,
    b: &crate::proto::mesos::ExecutorInfo,
) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.framework_id.clear();
    b.framework_id.clear();
    a == b
}

/// A status update about a task, as the master or the agent makes it.
pub(super) fn task_status(
    task_id: &str,
    state: TaskState,
    source: task_status::Source,
    reason: task_status::Reason,
    message: &str,
    agent_id: &str,
) -> TaskStatus {
    let mut status = TaskStatus::new();
    status
        .task_id
        .mut_or_insert_default()
        .set_value(task_id.to_string());
    status.set_state(state);
    status.set_source(source);
    status.set_reason(reason);
    status.set_message(message.to_string());
    status
        .agent_id
        .mut_or_insert_default()
        .set_value(agent_id.to_string());
    status.set_timestamp(now_seconds());
    status
}

pub(super) fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
