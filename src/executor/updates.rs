//! The book of status updates the agent has not acknowledged yet.
//!
//! Mesos delivers status updates *at least once*. Every update carries a
//! fresh UUID; the agent stores it, forwards it to the scheduler, and
//! answers the executor with an `ACKNOWLEDGED` event naming the task and
//! the UUID. Until that event arrives the update may have been lost on the
//! way, for example because the agent restarted, so the executor keeps it.
//! When the executor subscribes again it hands the agent two lists:
//!
//! - `unacknowledged_updates`: every update without its `ACKNOWLEDGED`;
//! - `unacknowledged_tasks`: every launched task none of whose updates has
//!   been acknowledged, so that an agent that never heard of the launch
//!   learns about the task.
//!
//! The book also knows which tasks are still active (no terminal update
//! yet), so that at `SHUTDOWN` the executor can wait until every task has
//! ended *and* the agent has confirmed every last word about it.

use crate::proto::executor::call::Update;
use crate::proto::mesos::{TaskID, TaskInfo};
use std::collections::BTreeSet;

/// Unacknowledged tasks and updates, in the order they happened.
#[derive(Debug, Default)]
pub struct Updates {
    /// Launched tasks none of whose updates the agent has acknowledged.
    tasks: Vec<TaskInfo>,
    /// Sent updates without an `ACKNOWLEDGED` event, oldest first: the
    /// agent expects a task's updates in the order they were sent.
    updates: Vec<Update>,
    /// Tasks that have not sent a terminal update yet.
    active: BTreeSet<String>,
}

impl Updates {
    /// Records a task the agent asked us to run.
    pub fn record_launch(&mut self, task: TaskInfo) {
        self.active.insert(task.task_id.value().to_string());
        self.tasks.push(task);
    }

    /// Records an update that is about to be sent. Record first, send
    /// second: the `ACKNOWLEDGED` event may race the sender back.
    pub fn record_update(&mut self, update: Update) {
        if is_terminal(update.status.state()) {
            self.active.remove(update.status.task_id.value());
        }
        self.updates.push(update);
    }

    /// Drops the update the agent has acknowledged. Returns `false` when no
    /// such update is in the book: the agent repeated an acknowledgement,
    /// or acknowledged something we never sent.
    pub fn acknowledge(&mut self, task_id: &TaskID, uuid: &[u8]) -> bool {
        let found = self.updates.iter().position(|update| {
            update.status.task_id.value() == task_id.value() && update.status.uuid() == uuid
        });
        let Some(index) = found else {
            return false;
        };
        self.updates.remove(index);
        // One acknowledged update proves the agent knows the task.
        self.tasks
            .retain(|task| task.task_id.value() != task_id.value());
        true
    }

    /// Whether a task is known and has not ended yet.
    pub fn is_active(&self, task_id: &str) -> bool {
        self.active.contains(task_id)
    }

    /// The updates to resend when subscribing again, oldest first.
    pub fn unacknowledged_updates(&self) -> Vec<Update> {
        self.updates.clone()
    }

    /// The tasks to report when subscribing again.
    pub fn unacknowledged_tasks(&self) -> Vec<TaskInfo> {
        self.tasks.clone()
    }

    /// True once every task has sent its terminal update and the agent has
    /// acknowledged every update: nothing would be lost by exiting now.
    pub fn all_terminal_acknowledged(&self) -> bool {
        self.active.is_empty() && self.updates.is_empty()
    }
}

pub use crate::proto::is_terminal;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::TaskState;

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

    fn states(updates: &Updates) -> Vec<(String, TaskState)> {
        updates
            .unacknowledged_updates()
            .iter()
            .map(|u| (u.status.task_id.value().to_string(), u.status.state()))
            .collect()
    }

    #[test]
    fn an_empty_book_has_nothing_to_wait_for() {
        let book = Updates::default();
        assert!(book.all_terminal_acknowledged());
        assert!(book.unacknowledged_tasks().is_empty());
        assert!(book.unacknowledged_updates().is_empty());
    }

    #[test]
    fn a_launched_task_stays_unacknowledged_until_one_update_is_acknowledged() {
        let mut book = Updates::default();
        book.record_launch(task("a"));
        assert!(
            !book.all_terminal_acknowledged(),
            "the task is still running"
        );
        assert_eq!(book.unacknowledged_tasks().len(), 1);

        book.record_update(update("a", TaskState::TASK_RUNNING, 1));
        assert_eq!(book.unacknowledged_tasks().len(), 1);

        assert!(book.acknowledge(&task_id("a"), &[1; 16]));
        assert!(book.unacknowledged_tasks().is_empty());
        assert!(book.unacknowledged_updates().is_empty());
        assert!(book.is_active("a"));
        assert!(!book.all_terminal_acknowledged(), "no terminal update yet");
    }

    #[test]
    fn a_duplicate_acknowledgement_is_reported() {
        let mut book = Updates::default();
        book.record_launch(task("a"));
        book.record_update(update("a", TaskState::TASK_FINISHED, 1));
        assert!(book.acknowledge(&task_id("a"), &[1; 16]));
        assert!(!book.acknowledge(&task_id("a"), &[1; 16]));
        assert!(book.all_terminal_acknowledged());
    }

    #[test]
    fn an_acknowledgement_for_an_unknown_uuid_changes_nothing() {
        let mut book = Updates::default();
        book.record_launch(task("a"));
        book.record_update(update("a", TaskState::TASK_RUNNING, 1));
        assert!(!book.acknowledge(&task_id("a"), &[9; 16]));
        // The uuid of task a, but named for another task.
        assert!(!book.acknowledge(&task_id("b"), &[1; 16]));
        assert_eq!(book.unacknowledged_updates().len(), 1);
        assert_eq!(book.unacknowledged_tasks().len(), 1);
    }

    #[test]
    fn updates_of_one_task_are_acknowledged_one_by_one_and_stay_in_order() {
        let mut book = Updates::default();
        book.record_launch(task("a"));
        book.record_launch(task("b"));
        book.record_update(update("a", TaskState::TASK_RUNNING, 1));
        book.record_update(update("b", TaskState::TASK_RUNNING, 2));
        book.record_update(update("a", TaskState::TASK_FINISHED, 3));
        assert!(book.acknowledge(&task_id("b"), &[2; 16]));
        assert_eq!(
            states(&book),
            vec![
                ("a".to_string(), TaskState::TASK_RUNNING),
                ("a".to_string(), TaskState::TASK_FINISHED),
            ]
        );
        // Acknowledging the later update first is allowed too.
        assert!(book.acknowledge(&task_id("a"), &[3; 16]));
        assert_eq!(
            states(&book),
            vec![("a".to_string(), TaskState::TASK_RUNNING)]
        );
        assert!(book.unacknowledged_tasks().is_empty());
        assert!(!book.all_terminal_acknowledged(), "b is still running");
    }

    #[test]
    fn shutdown_waits_for_terminal_updates_and_their_acknowledgements() {
        let mut book = Updates::default();
        book.record_launch(task("a"));
        book.record_update(update("a", TaskState::TASK_RUNNING, 1));
        assert!(book.acknowledge(&task_id("a"), &[1; 16]));
        book.record_update(update("a", TaskState::TASK_KILLED, 2));
        assert!(!book.is_active("a"));
        assert!(!book.all_terminal_acknowledged(), "KILLED not acknowledged");
        assert!(book.acknowledge(&task_id("a"), &[2; 16]));
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
            let mut book = Updates::default();
            book.record_launch(task("a"));
            book.record_update(update("a", state, 1));
            assert!(!book.is_active("a"), "{state:?}");
        }
        for state in [
            TaskState::TASK_STARTING,
            TaskState::TASK_RUNNING,
            TaskState::TASK_KILLING,
        ] {
            let mut book = Updates::default();
            book.record_launch(task("a"));
            book.record_update(update("a", state, 1));
            assert!(book.is_active("a"), "{state:?}");
        }
    }
}
