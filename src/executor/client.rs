//! Our side of the conversation with the agent: the calls we make, and the
//! book of what the agent has not acknowledged yet.
//!
//! *Step 4: a first reading may skip this file.* Until then, take
//! [`AgentClient::update`] as "send this update, and make sure it arrives".
//!
//! The executor API has just two calls that matter here:
//!
//! - `SUBSCRIBE` opens the event stream. After a lost connection it carries
//!   the unacknowledged tasks and updates (see below).
//! - `UPDATE` reports a task's new state. Every update is recorded in the
//!   book *before* it is sent, because the agent's `ACKNOWLEDGED` event
//!   may arrive on the stream before the call returns.
//!
//! Executor calls name the executor and framework in their body; unlike
//! the scheduler API there is no `Mesos-Stream-Id` header. The client is
//! shared (`Arc<AgentClient>`) by the main thread and every task thread, so
//! a task reports its own end without waiting for the main thread.
//!
//! **The book.** Mesos delivers status updates *at least once*. Every
//! update carries a fresh UUID; the agent stores it, forwards it to the
//! scheduler, and answers the executor with an `ACKNOWLEDGED` event naming
//! the task and the UUID. Until that event arrives the update may have been
//! lost on the way, for example because the agent restarted, so the
//! executor keeps it. When the executor subscribes again it hands the agent
//! two lists:
//!
//! - `unacknowledged_updates`: every update without its `ACKNOWLEDGED`;
//! - `unacknowledged_tasks`: every launched task none of whose updates has
//!   been acknowledged, so that an agent that never heard of the launch
//!   learns about the task.
//!
//! The book also knows which tasks are still active (no terminal update
//! yet), so that at `SHUTDOWN` the executor can wait until every task has
//! ended *and* the agent has confirmed every last word about it.

use super::env::Environment;
use crate::content_type::ContentType;
use crate::http_api::{ApiError, Endpoint, Subscription};
use crate::proto::executor::call::Update;
use crate::proto::executor::{call, Call, Event};
use crate::proto::is_terminal;
use crate::proto::mesos::task_status::Source;
use crate::proto::mesos::{ExecutorID, FrameworkID, TaskID, TaskInfo, TaskState, TaskStatus};
use std::collections::BTreeSet;
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
    book: Mutex<Book>,
}

/// Unacknowledged tasks and updates, in the order they happened.
#[derive(Debug, Default)]
struct Book {
    /// Launched tasks none of whose updates the agent has acknowledged.
    tasks: Vec<TaskInfo>,
    /// Sent updates without an `ACKNOWLEDGED` event, oldest first: the
    /// agent expects a task's updates in the order they were sent.
    updates: Vec<Update>,
    /// Tasks that have not sent a terminal update yet.
    active: BTreeSet<String>,
}

impl AgentClient {
    /// A client for the agent named in `config`. Connects to nothing yet.
    pub fn new(config: &Environment) -> AgentClient {
        let mut executor_id = ExecutorID::new();
        executor_id.set_value(config.executor_id.clone());
        let mut framework_id = FrameworkID::new();
        framework_id.set_value(config.framework_id.clone());
        AgentClient {
            // Protobuf, the compact encoding; Mesos speaks both.
            endpoint: Endpoint::new(&config.executor_api_url(), ContentType::Protobuf),
            executor_id,
            framework_id,
            book: Mutex::new(Book::default()),
        }
    }

    /// Sends `SUBSCRIBE` with everything the agent has not acknowledged
    /// (nothing, on first contact) and starts reading events.
    pub fn subscribe(&self) -> Result<Subscription<Event>, ApiError> {
        let mut subscribe = self.call(call::Type::SUBSCRIBE);
        // A block of its own: the book is unlocked before the call goes out.
        {
            let book = self.book();
            let message = subscribe.subscribe.mut_or_insert_default();
            message.unacknowledged_tasks = book.tasks.clone();
            message.unacknowledged_updates = book.updates.clone();
        }
        log::debug!(
            "SUBSCRIBE to {} with {} unacknowledged tasks and {} updates",
            self.endpoint.url(),
            subscribe.subscribe.unacknowledged_tasks.len(),
            subscribe.subscribe.unacknowledged_updates.len()
        );
        self.endpoint.subscribe(&subscribe, "executor-events")
    }

    /// Books a task the agent asked us to run: until the agent acknowledges
    /// one of its updates, every `SUBSCRIBE` names it.
    pub fn launched(&self, task: &TaskInfo) {
        let mut book = self.book();
        book.active.insert(task.task_id.value().to_string());
        book.tasks.push(task.clone());
    }

    /// `UPDATE`, reliably: kept until the agent acknowledges it; each new
    /// `SUBSCRIBE` hands it back.
    pub fn update(&self, task_id: &TaskID, state: TaskState, message: Option<&str>) {
        let status = self.task_status(task_id, state, message);
        let mut update = self.call(call::Type::UPDATE);
        update.update.mut_or_insert_default().status = Some(status).into();
        // Booked before it is sent: the agent's `ACKNOWLEDGED` may overtake
        // the answer to the call.
        self.record(update.update.clone().unwrap_or_default());

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
                // Not lost: it stays in the book, and the next `SUBSCRIBE`
                // carries it.
                Err(err) => log::warn!(
                    "Could not send {state:?} for task {}: {err}; it will be resent when we \
                     subscribe again",
                    task_id.value()
                ),
            }
        }
    }

    /// `ACKNOWLEDGED`: the agent has the update, so the book drops it.
    /// Returns `false` when no such update is in the book: the agent
    /// repeated an acknowledgement, or acknowledged something we never sent.
    pub fn acknowledged(&self, task_id: &TaskID, uuid: &[u8]) -> bool {
        let mut book = self.book();
        let found = book.updates.iter().position(|update| {
            update.status.task_id.value() == task_id.value() && update.status.uuid() == uuid
        });
        let Some(index) = found else {
            return false;
        };
        book.updates.remove(index);
        // One acknowledged update proves the agent knows the task.
        book.tasks
            .retain(|task| task.task_id.value() != task_id.value());
        true
    }

    /// Whether a task is known and has not sent a terminal update yet.
    pub fn is_active(&self, task_id: &str) -> bool {
        self.book().active.contains(task_id)
    }

    /// True once every task has sent its terminal update and the agent has
    /// acknowledged every update: nothing would be lost by exiting now.
    pub fn all_terminal_acknowledged(&self) -> bool {
        let book = self.book();
        book.active.is_empty() && book.updates.is_empty()
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

    /// Books an update that is about to be sent; a terminal one ends its
    /// task.
    fn record(&self, update: Update) {
        let mut book = self.book();
        if is_terminal(update.status.state()) {
            book.active.remove(update.status.task_id.value());
        }
        book.updates.push(update);
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
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message;
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
        AgentClient::new(&Environment::from_vars(&vars).expect("valid"))
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

    // The book: what `SUBSCRIBE` hands back, and what `SHUTDOWN` waits for.

    fn task(id: &str) -> TaskInfo {
        let mut task = TaskInfo::new();
        task.set_name(format!("task {id}"));
        task.task_id
            .mut_or_insert_default()
            .set_value(id.to_string());
        task.agent_id
            .mut_or_insert_default()
            .set_value("agent-1".into());
        task
    }

    fn task_id(id: &str) -> TaskID {
        let mut task_id = TaskID::new();
        task_id.set_value(id.to_string());
        task_id
    }

    fn update(id: &str, state: TaskState, uuid: u8) -> Update {
        let mut update = Update::new();
        let status = update.status.mut_or_insert_default();
        status
            .task_id
            .mut_or_insert_default()
            .set_value(id.to_string());
        status.set_state(state);
        status.set_uuid(vec![uuid; 16]);
        update
    }

    fn states(book: &AgentClient) -> Vec<(String, TaskState)> {
        book.book()
            .updates
            .iter()
            .map(|u| (u.status.task_id.value().to_string(), u.status.state()))
            .collect()
    }

    fn unacknowledged_tasks(book: &AgentClient) -> usize {
        book.book().tasks.len()
    }

    fn unacknowledged_updates(book: &AgentClient) -> usize {
        book.book().updates.len()
    }

    #[test]
    fn an_empty_book_has_nothing_to_wait_for() {
        let book = client();
        assert!(book.all_terminal_acknowledged());
        assert_eq!(unacknowledged_tasks(&book), 0);
        assert_eq!(unacknowledged_updates(&book), 0);
    }

    #[test]
    fn a_launched_task_stays_unacknowledged_until_one_update_is_acknowledged() {
        let book = client();
        book.launched(&task("a"));
        assert!(
            !book.all_terminal_acknowledged(),
            "the task is still running"
        );
        assert_eq!(unacknowledged_tasks(&book), 1);

        book.record(update("a", TaskState::TASK_RUNNING, 1));
        assert_eq!(unacknowledged_tasks(&book), 1);

        assert!(book.acknowledged(&task_id("a"), &[1; 16]));
        assert_eq!(unacknowledged_tasks(&book), 0);
        assert_eq!(unacknowledged_updates(&book), 0);
        assert!(book.is_active("a"));
        assert!(!book.all_terminal_acknowledged(), "no terminal update yet");
    }

    #[test]
    fn a_duplicate_acknowledgement_is_reported() {
        let book = client();
        book.launched(&task("a"));
        book.record(update("a", TaskState::TASK_FINISHED, 1));
        assert!(book.acknowledged(&task_id("a"), &[1; 16]));
        assert!(!book.acknowledged(&task_id("a"), &[1; 16]));
        assert!(book.all_terminal_acknowledged());
    }

    #[test]
    fn an_acknowledgement_for_an_unknown_uuid_changes_nothing() {
        let book = client();
        book.launched(&task("a"));
        book.record(update("a", TaskState::TASK_RUNNING, 1));
        assert!(!book.acknowledged(&task_id("a"), &[9; 16]));
        // The uuid of task a, but named for another task.
        assert!(!book.acknowledged(&task_id("b"), &[1; 16]));
        assert_eq!(unacknowledged_updates(&book), 1);
        assert_eq!(unacknowledged_tasks(&book), 1);
    }

    #[test]
    fn updates_of_one_task_are_acknowledged_one_by_one_and_stay_in_order() {
        let book = client();
        book.launched(&task("a"));
        book.launched(&task("b"));
        book.record(update("a", TaskState::TASK_RUNNING, 1));
        book.record(update("b", TaskState::TASK_RUNNING, 2));
        book.record(update("a", TaskState::TASK_FINISHED, 3));
        assert!(book.acknowledged(&task_id("b"), &[2; 16]));
        assert_eq!(
            states(&book),
            vec![
                ("a".to_string(), TaskState::TASK_RUNNING),
                ("a".to_string(), TaskState::TASK_FINISHED),
            ]
        );
        // Acknowledging the later update first is allowed too.
        assert!(book.acknowledged(&task_id("a"), &[3; 16]));
        assert_eq!(
            states(&book),
            vec![("a".to_string(), TaskState::TASK_RUNNING)]
        );
        assert_eq!(unacknowledged_tasks(&book), 0);
        assert!(!book.all_terminal_acknowledged(), "b is still running");
    }

    #[test]
    fn shutdown_waits_for_terminal_updates_and_their_acknowledgements() {
        let book = client();
        book.launched(&task("a"));
        book.record(update("a", TaskState::TASK_RUNNING, 1));
        assert!(book.acknowledged(&task_id("a"), &[1; 16]));
        book.record(update("a", TaskState::TASK_KILLED, 2));
        assert!(!book.is_active("a"));
        assert!(!book.all_terminal_acknowledged(), "KILLED not acknowledged");
        assert!(book.acknowledged(&task_id("a"), &[2; 16]));
        assert!(book.all_terminal_acknowledged());
    }

    #[test]
    fn every_terminal_state_ends_a_task() {
        for state in [
            TaskState::TASK_FINISHED,
            TaskState::TASK_FAILED,
            TaskState::TASK_KILLED,
            TaskState::TASK_ERROR,
            TaskState::TASK_LOST,
            TaskState::TASK_DROPPED,
        ] {
            let book = client();
            book.launched(&task("a"));
            book.record(update("a", state, 1));
            assert!(!book.is_active("a"), "{state:?}");
        }
        for state in [
            TaskState::TASK_STARTING,
            TaskState::TASK_RUNNING,
            TaskState::TASK_KILLING,
        ] {
            let book = client();
            book.launched(&task("a"));
            book.record(update("a", state, 1));
            assert!(book.is_active("a"), "{state:?}");
        }
    }
}
