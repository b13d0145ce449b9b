//! Subscriptions and their event streams: `SUBSCRIBE` registers a framework
//! and holds the request open as its stream of events, with heartbeats on
//! an idle stream. When the stream ends, the framework has its failover
//! timeout to come back before it is removed with its tasks.

use super::super::http::{self, Heartbeat, StreamHead};
use super::super::{Shared, State};
use super::Framework;
use super::LOG_TARGET;
use crate::content_type::ContentType;
use crate::proto::mesos::{FrameworkInfo, MasterInfo};
use crate::proto::scheduler::{event, Call, Event};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::Request;

/// How long every stream is probed after a framework subscribed or revived
/// (see `probe_others`).
const PROBE_WINDOW: Duration = Duration::from_secs(2);

/// How often they are probed meanwhile.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// `SUBSCRIBE`: registers (or re-registers) the framework, then holds the
/// request open as its event stream until it closes.
pub(super) fn subscribe(request: Request, shared: &Arc<Shared>, call: &Call, accept: ContentType) {
    let (sender, events) = channel();
    let (framework_id, stream_id, heartbeat) = {
        let mut state = shared.lock();
        let heartbeat = Heartbeat {
            interval: state.config.heartbeat_interval,
            event: heartbeat_event,
        };
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
                let head = StreamHead {
                    content_type: accept,
                    stream_id: None,
                };
                let _ = http::stream_events(request, head, events, heartbeat, || silenced(shared));
                return;
            }
        }
    };
    let head = StreamHead {
        content_type: accept,
        stream_id: Some(&stream_id),
    };
    let result = http::stream_events(request, head, events, heartbeat, || silenced(shared));
    if let Err(err) = &result {
        log::info!(target: LOG_TARGET, "Event stream of framework {framework_id} broke: {err}");
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
        let subscribed = self.subscribed_event(&framework_id);
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
                times: Default::default(),
            });
        framework.times.subscribed();
        let replaced = framework.events.take();
        if let Some(old) = &replaced {
            // A second subscription replaces the first: the old scheduler
            // is told, and its stream is closed.
            let _ = old.send(error_event("Framework failed over"));
        }
        framework.info = info;
        framework.stream_id = stream_id.clone();
        framework.failover_deadline = None;
        let _ = sender.send(subscribed);
        framework.events = Some(sender);
        log::info!(
            target: LOG_TARGET,
            "Framework {framework_id} subscribed (stream {stream_id}, {accept})"
        );
        if replaced.is_some() {
            // Offers sent on the old stream may never have arrived; as
            // Mesos does on failover, they are taken back and made anew.
            self.recover_all_offers(&framework_id);
        }
        // A framework that comes back gets its pending updates now, rather
        // than at the next retry (a new one has none).
        self.resend_updates(&framework_id);
        self.allocate();
        self.probe_others(&framework_id);
        Ok((framework_id, stream_id))
    }

    /// The first event of a stream: the framework's id, how often to expect
    /// heartbeats, and who the master is.
    fn subscribed_event(&self, framework_id: &str) -> Event {
        let mut subscribed = Event::new();
        subscribed.set_type(event::Type::SUBSCRIBED);
        let details = subscribed.subscribed.mut_or_insert_default();
        details
            .framework_id
            .mut_or_insert_default()
            .set_value(framework_id.to_string());
        details.set_heartbeat_interval_seconds(self.config.heartbeat_interval.as_secs_f64());
        details.master_info = Some(self.master_info()).into();
        subscribed
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

    /// Sends an event to a framework if it is connected.
    pub(in crate::local) fn send_to_framework(&self, framework_id: &str, event: Event) {
        if let Some(Some(events)) = self.master.frameworks.get(framework_id).map(|f| &f.events) {
            let _ = events.send(event);
        }
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
        framework.times.disconnected();
        let timeout = framework.info.failover_timeout();
        self.recover_all_offers(framework_id);
        if timeout > 0.0 {
            log::info!(
                target: LOG_TARGET,
                "Framework {framework_id} disconnected; it has {timeout} s to fail over"
            );
            let deadline = Instant::now() + Duration::from_secs_f64(timeout.min(365.0 * 86400.0));
            self.framework_mut(framework_id).failover_deadline = Some(deadline);
        } else {
            log::info!(
                target: LOG_TARGET,
                "Framework {framework_id} disconnected without a failover timeout; removing it"
            );
            self.remove_framework(framework_id);
        }
    }

    /// A framework subscribed or revived: it wants offers, and what it
    /// needs may be offered to, or used by, others. If one of those others
    /// is gone, its resources must come back now: Mesos sees a scheduler's
    /// connection close at once, deactivates the framework and rescinds its
    /// offers. Behind the front door this master learns of a closed stream
    /// only when a write to it fails, so for a short while it writes
    /// heartbeats to every stream (a live scheduler takes an extra heartbeat
    /// as one more sign of life); a dead one fails within a few writes.
    pub(super) fn probe_others(&mut self, framework_id: &str) {
        let others = self
            .master
            .frameworks
            .iter()
            .any(|(id, f)| id != framework_id && f.events.is_some());
        if others {
            self.master.probe_until = Some(Instant::now() + PROBE_WINDOW);
        }
    }

    /// Sends the probing heartbeats of `probe_others`, one every
    /// [`PROBE_INTERVAL`] while the window lasts; the cluster's ticker calls it.
    pub(in crate::local) fn probe_streams(&mut self) {
        let Some(until) = self.master.probe_until else {
            return;
        };
        let now = Instant::now();
        if now >= until {
            self.master.probe_until = None;
            return;
        }
        if now.duration_since(self.master.last_probe) < PROBE_INTERVAL {
            return;
        }
        self.master.last_probe = now;
        for framework in self.master.frameworks.values() {
            if let Some(events) = &framework.events {
                let _ = events.send(heartbeat_event());
            }
        }
    }

    /// Removes frameworks whose failover timeout has passed.
    pub(in crate::local) fn expire_frameworks(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .master
            .frameworks
            .iter()
            .filter(|(_, f)| matches!(f.failover_deadline, Some(d) if d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for framework_id in expired {
            log::info!(
                target: LOG_TARGET,
                "Framework {framework_id} did not fail over in time; removing it"
            );
            self.remove_framework(&framework_id);
        }
    }

    /// Forgets a framework: its offers return, its executors are shut down,
    /// its tasks end, and its event stream closes.
    pub(super) fn remove_framework(&mut self, framework_id: &str) {
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
                self.master.agents[task.agent].free.add(&task.resources);
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
    pub(in crate::local) fn disconnect_frameworks(&mut self) {
        for framework in self.master.frameworks.values_mut() {
            framework.events = None;
        }
    }
}
