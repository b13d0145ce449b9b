//! Our side of the conversation with the agent: the calls we make, and the
//! book of what the agent has not acknowledged yet.
//!
//! The executor API has just two calls that matter here:
//!
//! - `SUBSCRIBE` opens the event stream. After a lost connection it carries
//!   the unacknowledged tasks and updates (see [`super::updates`]).
//! - `UPDATE` reports a task's new state. Every update is recorded in the
//!   book *before* it is sent, because the agent's `ACKNOWLEDGED` event
//!   may arrive on the stream before the call returns.
//!
//! Executor calls name the executor and framework in their body; unlike
//! the scheduler API there is no `Mesos-Stream-Id` header. The client is
//! shared (`Arc<AgentClient>`) by the main thread and every task thread, so
//! a task reports its own end without waiting for the main thread.

use super::env::Config;
use super::updates::Updates;
use crate::content_type::ContentType;
use crate::http_api::{ApiError, Endpoint, Subscription};
use crate::proto::executor::{call, Call, Event};
use crate::proto::mesos::task_status::Source;
use crate::proto::mesos::{ExecutorID, FrameworkID, TaskID, TaskInfo, TaskState, TaskStatus};
use protobuf::{Message, UnknownValueRef};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times one `UPDATE` call is tried before we leave it to the
/// next re-subscription.
const UPDATE_ATTEMPTS: u32 = 3;
/// The wait after the first failed attempt; it doubles each time.
const UPDATE_BACKOFF: Duration = Duration::from_millis(200);

/// The agent's executor API, our ids, and the book of unacknowledged
/// updates.
pub struct AgentClient {
    endpoint: Endpoint,
    executor_id: ExecutorID,
    framework_id: FrameworkID,
    book: Mutex<Updates>,
}

impl AgentClient {
    /// A client for the agent named in `config`. Connects to nothing yet.
    pub fn new(config: &Config) -> AgentClient {
        let mut executor_id = ExecutorID::new();
        executor_id.set_value(config.executor_id.clone());
        let mut framework_id = FrameworkID::new();
        framework_id.set_value(config.framework_id.clone());
        AgentClient {
            // Protobuf, the compact encoding; Mesos speaks both.
            endpoint: Endpoint::new(&config.executor_api_url(), ContentType::Protobuf),
            executor_id,
            framework_id,
            book: Mutex::new(Updates::default()),
        }
    }

    /// Sends `SUBSCRIBE` with everything the agent has not acknowledged
    /// (nothing, on first contact) and starts reading events.
    pub fn subscribe(&self) -> Result<Subscription<Event>, ApiError> {
        let mut subscribe = self.call(call::Type::SUBSCRIBE);
        {
            let book = self.book();
            let message = subscribe.subscribe.mut_or_insert_default();
            message.unacknowledged_tasks = book.unacknowledged_tasks();
            message.unacknowledged_updates = book.unacknowledged_updates();
        }
        log::debug!(
            "SUBSCRIBE to {} with {} unacknowledged tasks and {} updates",
            self.endpoint.url(),
            subscribe.subscribe.unacknowledged_tasks.len(),
            subscribe.subscribe.unacknowledged_updates.len()
        );
        self.endpoint.subscribe(&subscribe, "executor-events")
    }

    /// Records a task the agent launched.
    pub fn record_launch(&self, task: TaskInfo) {
        self.book().record_launch(task);
    }

    /// Handles the agent's `ACKNOWLEDGED`; `false` if the update was not in
    /// the book.
    pub fn acknowledge(&self, task_id: &TaskID, uuid: &[u8]) -> bool {
        self.book().acknowledge(task_id, uuid)
    }

    /// Whether the task is known and has not sent a terminal update.
    pub fn is_active(&self, task_id: &str) -> bool {
        self.book().is_active(task_id)
    }

    /// Whether every task has ended and every update was acknowledged.
    pub fn all_terminal_acknowledged(&self) -> bool {
        self.book().all_terminal_acknowledged()
    }

    /// Records and sends an `UPDATE` about a task. A call that keeps
    /// failing is not lost: it stays in the book, and the next
    /// `SUBSCRIBE` carries it.
    pub fn send_status(&self, task_id: &TaskID, state: TaskState, message: Option<&str>) {
        let status = self.task_status(task_id, state, message);
        let mut update = self.call(call::Type::UPDATE);
        update.update.mut_or_insert_default().status = Some(status).into();
        self.book()
            .record_update(update.update.clone().unwrap_or_default());

        let mut backoff = UPDATE_BACKOFF;
        for attempt in 1..=UPDATE_ATTEMPTS {
            match self.endpoint.call(&update, None) {
                Ok(()) => {
                    log::debug!("UPDATE {state:?} for task {} sent", task_id.value());
                    return;
                }
                Err(err) if attempt < UPDATE_ATTEMPTS => {
                    log::debug!("UPDATE attempt {attempt} failed: {err}; retrying");
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(err) => log::warn!(
                    "Could not send {state:?} for task {}: {err}; it will be resent when we \
                     subscribe again",
                    task_id.value()
                ),
            }
        }
    }

    /// A status as the executor reports it: from the executor, stamped with
    /// the time and a fresh UUID that the agent's acknowledgement will name.
    pub fn task_status(
        &self,
        task_id: &TaskID,
        state: TaskState,
        message: Option<&str>,
    ) -> TaskStatus {
        let mut status = TaskStatus::new();
        status.task_id = Some(task_id.clone()).into();
        status.set_state(state);
        if let Some(message) = message {
            status.set_message(message.to_string());
        }
        status.set_source(Source::SOURCE_EXECUTOR);
        status.executor_id = Some(self.executor_id.clone()).into();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        status.set_timestamp(now.as_secs_f64());
        status.set_uuid(crate::random::uuid_v4().to_vec());
        status
    }

    /// A call of the given type, with the ids every executor call carries.
    fn call(&self, call_type: call::Type) -> Call {
        let mut call = Call::new();
        call.set_type(call_type);
        call.executor_id = Some(self.executor_id.clone()).into();
        call.framework_id = Some(self.framework_id.clone()).into();
        call
    }

    /// The book. A task thread that panicked while holding the lock left it
    /// poisoned, but the book itself is always consistent between calls,
    /// so the others carry on with it.
    fn book(&self) -> MutexGuard<'_, Updates> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The tasks of a `LAUNCH_GROUP` event. Our `executor.proto` leaves out
/// `Event.launch_group` (field 8), since we never launch groups, so the
/// group arrives as an unknown field. It holds a `TaskGroupInfo`, whose
/// only field is `repeated TaskInfo tasks = 1`; we read the tasks from it
/// by hand to fail each of them properly.
pub fn task_group(event: &Event) -> Vec<TaskInfo> {
    let Some(UnknownValueRef::LengthDelimited(group)) =
        event.special_fields.unknown_fields().get(8)
    else {
        log::warn!("A LAUNCH_GROUP event without a task group");
        return Vec::new();
    };
    let group = match protobuf::well_known_types::empty::Empty::parse_from_bytes(group) {
        Ok(group) => group,
        Err(err) => {
            log::warn!("Cannot read the task group of a LAUNCH_GROUP event: {err}");
            return Vec::new();
        }
    };
    group
        .special_fields
        .unknown_fields()
        .iter()
        .filter_map(|(number, value)| match (number, value) {
            (1, UnknownValueRef::LengthDelimited(bytes)) => TaskInfo::parse_from_bytes(bytes).ok(),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn client() -> AgentClient {
        let vars: HashMap<String, String> = [
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_FRAMEWORK_ID", "framework-1"),
            ("MESOS_EXECUTOR_ID", "executor-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        AgentClient::new(&Config::from_vars(&vars).expect("valid"))
    }

    #[test]
    fn a_status_says_who_sends_it_and_when() {
        let mut task_id = TaskID::new();
        task_id.set_value("task-1".into());
        let status = client().task_status(&task_id, TaskState::TASK_FAILED, Some("no image"));
        assert_eq!(status.task_id.value(), "task-1");
        assert_eq!(status.state(), TaskState::TASK_FAILED);
        assert_eq!(status.message(), "no image");
        assert_eq!(status.source(), Source::SOURCE_EXECUTOR);
        assert_eq!(status.executor_id.value(), "executor-1");
        assert_eq!(status.uuid().len(), 16);
        // 2020-01-01 as a floor: the clock is read, not left at zero.
        assert!(
            status.timestamp() > 1_577_836_800.0,
            "{}",
            status.timestamp()
        );
        assert!(status.is_initialized());
    }

    #[test]
    fn every_status_has_its_own_uuid() {
        let client = client();
        let task_id = TaskID::new();
        let first = client.task_status(&task_id, TaskState::TASK_RUNNING, None);
        let second = client.task_status(&task_id, TaskState::TASK_RUNNING, None);
        assert_ne!(first.uuid(), second.uuid());
        assert!(!first.has_message());
    }

    #[test]
    fn calls_carry_both_ids() {
        let call = client().call(call::Type::UPDATE);
        assert_eq!(call.type_(), call::Type::UPDATE);
        assert_eq!(call.executor_id.value(), "executor-1");
        assert_eq!(call.framework_id.value(), "framework-1");
    }
}
