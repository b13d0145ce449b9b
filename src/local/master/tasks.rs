//! Each task's state as the master records it: status updates from the
//! agent (or made by the master itself) pass through here to the framework,
//! and an ended task frees its resources.

use super::super::State;
use super::{is_terminal, PROMPT_ALLOCATION_GAP};
use crate::proto::mesos::{task_status, TaskState, TaskStatus};
use crate::proto::scheduler::{event, Event};

/// What a status update says of a task: its state, why, and a message for
/// people.
pub(in crate::local) struct Report<'a> {
    pub state: TaskState,
    pub reason: task_status::Reason,
    pub message: &'a str,
}

/// A status update about a task, as the master or the agent makes it.
pub(in crate::local) fn task_status(
    task_id: &str,
    report: Report<'_>,
    source: task_status::Source,
    agent_id: &str,
) -> TaskStatus {
    let mut status = TaskStatus::new();
    status
        .task_id
        .mut_or_insert_default()
        .set_value(task_id.to_string());
    status.set_state(report.state);
    status.set_source(source);
    status.set_reason(report.reason);
    status.set_message(report.message.to_string());
    status
        .agent_id
        .mut_or_insert_default()
        .set_value(agent_id.to_string());
    status.set_timestamp(now_seconds());
    status
}

pub(in crate::local) fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl State {
    /// Records a status update and passes it to the framework. Called for
    /// every update, from the agent or the master itself.
    pub(in crate::local) fn forward_status(&mut self, framework_id: &str, status: TaskStatus) {
        let key = (framework_id.to_string(), status.task_id.value().to_string());
        if let Some(task) = self.master.tasks.get_mut(&key) {
            super::view::record_status(&mut task.record, &status);
            task.last_status = Some(status.clone());
        }
        let task_id = status.task_id.value().to_string();
        let state = status.state();
        // The update goes out first, then any offer of what the task freed.
        self.send_update(framework_id, status);
        self.task_state(framework_id, &task_id, state);
    }

    /// Records the latest state of a task. An ended task stays ended: the
    /// agent may report the end (see `queue_update` in `agent/updates.rs`) before the
    /// framework has acknowledged the updates that come before it. The
    /// master frees a task's resources as soon as it learns that the task
    /// ended, not when the update is acknowledged, as Mesos does with the
    /// `latest_state` the agent sends along with each update.
    pub(in crate::local) fn task_state(
        &mut self,
        framework_id: &str,
        task_id: &str,
        state: TaskState,
    ) {
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
            let agent = task.agent;
            self.master.agents[agent].free.add(&resources);
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
    pub(super) fn master_update(
        &mut self,
        framework_id: &str,
        task_id: &str,
        agent_id: &str,
        report: Report<'_>,
    ) {
        let source = task_status::Source::SOURCE_MASTER;
        let mut status = task_status(task_id, report, source, agent_id);
        if agent_id.is_empty() {
            // A task of no known agent: Mesos leaves the field out.
            status.agent_id.clear();
        }
        self.send_update(framework_id, status);
    }
}
