//! The scheduler's connection to the Mesos master, and the calls it makes.
//!
//! A scheduler subscribes once (`SUBSCRIBE`, a long-lived POST whose
//! response streams events) and then answers events with calls, each a
//! separate POST to the same URL. Every call after `SUBSCRIBE` carries two
//! things the master checks: the `framework_id` it was given in the
//! `SUBSCRIBED` event, and the `Mesos-Stream-Id` header of the subscription.
//!
//! Each function below builds one kind of call; together they are the whole
//! vocabulary a simple framework needs. Step 4 adds `RECONCILE`.

pub use super::config::{scheduler_url, EventError};
use super::limits::Events;
use super::{failover, Config, SchedulerError};
use crate::http_api::{ApiError, Endpoint, StreamError};
use crate::proto::mesos::{
    offer, AgentID, Filters, FrameworkID, FrameworkInfo, Offer, OfferID, TaskID, TaskInfo,
    TaskStatus,
};
use crate::proto::scheduler::{call, Call, Event};
use std::sync::mpsc::{self, Sender};

/// Subscribes to the master that `--master` names, as framework `id` if
/// given (step 4); otherwise the master gives us an id in `SUBSCRIBED`.
pub fn connect(
    config: &Config,
    id: Option<FrameworkID>,
) -> Result<MasterConnection, SchedulerError> {
    // The master's URL, with `--ca-file` and `--principal` (`config.rs`).
    let endpoint = config.master_endpoint()?;
    Ok(MasterConnection::subscribe(
        endpoint,
        framework_info(config, id),
    )?)
}

/// What we tell the master about ourselves in `SUBSCRIBE`.
pub fn framework_info(config: &Config, id: Option<FrameworkID>) -> FrameworkInfo {
    use crate::proto::mesos::framework_info::{capability, Capability};
    let mut info = FrameworkInfo::new();
    info.id = id.into();
    info.set_user(config.user.clone());
    info.set_name(config.name.clone());
    // MULTI_ROLE: offers say which role they are for, and our tasks must
    // use resources under that role (see `tasks.rs`).
    info.roles.push(config.role.clone());
    let mut multi_role = Capability::new();
    multi_role.set_type(capability::Type::MULTI_ROLE);
    info.capabilities.push(multi_role);
    // Step 4: how long the master keeps our tasks while we are away, and
    // whether agents keep them across their own restarts; and who we
    // authenticate as.
    failover::framework_settings(config, &mut info);
    info
}

/// What the event loop waits for.
pub enum Input {
    /// The master's next event.
    Event(Event),
    /// The user pressed Ctrl+C (or the process got SIGTERM).
    Interrupted,
}

/// What the channel of one subscription carries: inputs, or what broke
/// the stream. Its event reader thread sends into it directly
/// ([`Endpoint::subscribe_into`]), and so does Ctrl+C (`interrupt.rs`).
pub type Inbox = Result<Input, StreamError>;

/// A subscribed scheduler's line to the master.
pub struct MasterConnection {
    endpoint: Endpoint,
    stream_id: Option<String>,
    events: Events,
    /// Where Ctrl+C is sent: the same channel as the events.
    pub(super) interrupter: Sender<Inbox>,
    framework_id: FrameworkID,
    /// Whether we asked for no more offers (`SUPPRESS`). A new subscription
    /// starts with offers on.
    offers_suppressed: bool,
}

impl MasterConnection {
    /// `SUBSCRIBE`: a long-lived POST whose response streams our events.
    pub fn subscribe(
        endpoint: Endpoint,
        framework: FrameworkInfo,
    ) -> Result<MasterConnection, ApiError> {
        let mut call = Call::new();
        call.set_type(call::Type::SUBSCRIBE);
        // Re-subscribing as an existing framework names it twice, as Mesos
        // requires: in the call and in the FrameworkInfo.
        call.framework_id = framework.id.clone();
        call.subscribe.mut_or_insert_default().framework_info = Some(framework).into();
        let (sender, events) = mpsc::channel();
        let stream_id =
            endpoint.subscribe_into(&call, "scheduler-events", sender.clone(), Input::Event)?;
        Ok(MasterConnection {
            endpoint,
            stream_id,
            events: Events::new(events),
            interrupter: sender,
            // Until SUBSCRIBED says otherwise: the id we asked for, if any.
            framework_id: call.framework_id.clone().unwrap_or_default(),
            offers_suppressed: false,
        })
    }

    /// Waits for the next event, or Ctrl+C. Hardening (`limits.rs`): a
    /// master silent for five heartbeat intervals is lost, and an event we
    /// cannot act on is skipped.
    pub fn next_input(&self) -> Result<Input, EventError> {
        self.events.next()
    }

    /// Records what `SUBSCRIBED` told us: our id, and how often the master
    /// sends a heartbeat.
    pub fn subscribed(&mut self, framework_id: FrameworkID, heartbeat_seconds: f64) {
        self.framework_id = framework_id;
        self.events.heartbeat(heartbeat_seconds);
    }

    /// The framework's id as a message, if there is one yet (see
    /// [`MasterConnection::framework_id`]).
    pub fn framework_id_message(&self) -> Option<FrameworkID> {
        (!self.framework_id.value().is_empty()).then(|| self.framework_id.clone())
    }

    /// The framework's id: the one we subscribed with (empty for a new
    /// framework) until [`MasterConnection::subscribed`] records the one
    /// `SUBSCRIBED` gave.
    pub fn framework_id(&self) -> &str {
        self.framework_id.value()
    }

    /// Sends a call of this kind, filled in by `fill`, for this framework
    /// on this subscription.
    fn send(&self, kind: call::Type, fill: impl FnOnce(&mut Call)) -> Result<(), ApiError> {
        // Every call names the framework, which a new one learns from
        // `SUBSCRIBED`; before that (Ctrl+C at once) there is nothing to
        // ask for. A master ends a framework whose scheduler left after
        // its failover timeout, so the run can still end.
        let Some(framework_id) = self.framework_id_message() else {
            log::warn!("Not sending {kind:?}: the master has not said SUBSCRIBED yet");
            return Ok(());
        };
        let mut call = Call::new();
        call.set_type(kind);
        call.framework_id = Some(framework_id).into();
        fill(&mut call);
        self.endpoint.call(&call, self.stream_id.as_deref())
    }

    /// `DECLINE`: we cannot use these offers. The filter keeps the same
    /// resources away from us for `refuse_seconds`; without one, the master
    /// applies `Filters`' default of 5 s.
    pub fn decline(&self, offer_ids: Vec<OfferID>, refuse_seconds: f64) -> Result<(), ApiError> {
        self.send(call::Type::DECLINE, |call| {
            let decline = call.decline.mut_or_insert_default();
            decline.offer_ids = offer_ids;
            decline.filters = Some(refuse_filter(refuse_seconds)).into();
        })
    }

    /// `ACCEPT` with one `LAUNCH` operation: runs `tasks` on the offer's
    /// resources. What the tasks leave unused is declined, with the filter.
    pub fn launch(
        &self,
        offer: &Offer,
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    ) -> Result<(), ApiError> {
        self.send(call::Type::ACCEPT, |call| {
            let accept = call.accept.mut_or_insert_default();
            accept
                .offer_ids
                .push(offer.id.as_ref().cloned().unwrap_or_default());
            let mut operation = offer::Operation::new();
            operation.set_type(offer::operation::Type::LAUNCH);
            operation.launch.mut_or_insert_default().task_infos = tasks;
            accept.operations.push(operation);
            accept.filters = Some(refuse_filter(refuse_seconds)).into();
        })
    }

    /// `ACKNOWLEDGE`: we have recorded this update. Until we say so, the
    /// agent keeps resending it. Only updates with a uuid are acknowledged.
    pub fn acknowledge(&self, status: &TaskStatus) -> Result<(), ApiError> {
        self.send(call::Type::ACKNOWLEDGE, |call| {
            let ack = call.acknowledge.mut_or_insert_default();
            ack.agent_id = status.agent_id.clone();
            ack.task_id = status.task_id.clone();
            ack.set_uuid(status.uuid().to_vec());
        })
    }

    /// `KILL`: stop a task. Its end arrives later as a status update.
    pub fn kill(&self, task_id: TaskID, agent_id: AgentID) -> Result<(), ApiError> {
        self.send(call::Type::KILL, |call| {
            let kill = call.kill.mut_or_insert_default();
            kill.task_id = Some(task_id).into();
            kill.agent_id = Some(agent_id).into();
        })
    }

    /// `SHUTDOWN`: stops an executor and every task it runs.
    pub fn shutdown_executor(&self, executor_id: &str, agent_id: AgentID) -> Result<(), ApiError> {
        self.send(call::Type::SHUTDOWN, |call| {
            let shutdown = call.shutdown.mut_or_insert_default();
            shutdown
                .executor_id
                .mut_or_insert_default()
                .set_value(executor_id.to_string());
            shutdown.agent_id = Some(agent_id).into();
        })
    }

    /// Asks for offers only while work waits for them. A framework with
    /// nothing to run says so (`SUPPRESS`), or the master keeps offering it
    /// resources; `REVIVE` asks for offers again, and forgets every decline
    /// filter.
    pub fn want_offers(&mut self, wanted: bool) -> Result<(), ApiError> {
        if wanted != self.offers_suppressed {
            return Ok(());
        }
        if wanted {
            self.send(call::Type::REVIVE, |_| {})?;
            log::info!("Reviving offers");
        } else {
            self.send(call::Type::SUPPRESS, |_| {})?;
            log::info!("Suppressing offers");
        }
        self.offers_suppressed = !wanted;
        Ok(())
    }

    /// `RECONCILE` (step 4): asks for the latest state of these tasks,
    /// given as (task id, agent id). The answers arrive as `UPDATE` events
    /// from the master (without a uuid); a task the master does not know
    /// comes back `TASK_LOST`. With no task at all ("implicit"
    /// reconciliation) the master answers for every unfinished task of the
    /// framework, which is how a scheduler learns of tasks it did not know
    /// about.
    pub fn reconcile(&self, tasks: &[(String, String)]) -> Result<(), ApiError> {
        self.send(call::Type::RECONCILE, |call| {
            let reconcile = call.reconcile.mut_or_insert_default();
            for (task_id, agent_id) in tasks {
                let mut task = call::reconcile::Task::new();
                task.task_id
                    .mut_or_insert_default()
                    .set_value(task_id.clone());
                // The agent lets the master answer for a task it has not
                // heard of yet from that agent (it may be re-registering).
                if !agent_id.is_empty() {
                    task.agent_id
                        .mut_or_insert_default()
                        .set_value(agent_id.clone());
                }
                reconcile.tasks.push(task);
            }
        })
    }

    /// `TEARDOWN`: the framework is done. The master kills its remaining
    /// tasks, shuts down its executors and closes the event stream.
    pub fn teardown(&self) -> Result<(), ApiError> {
        self.send(call::Type::TEARDOWN, |_| {})
    }
}

fn refuse_filter(refuse_seconds: f64) -> Filters {
    let mut filters = Filters::new();
    filters.set_refuse_seconds(refuse_seconds);
    filters
}
