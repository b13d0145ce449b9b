//! The agent's side of draining (Mesos 1.9 and later): told by the master
//! that the operator drains it, the agent kills every task it runs and
//! marks their last updates as the drain's doing.
//!
//! Mesos's agent does the same on its `DrainSlaveMessage`: it remembers the
//! drain, sends a `KILL` for each task whose grace period is at most the
//! drain's `max_grace_period`, and rewrites the updates that follow: each
//! `TASK_KILLING`, `TASK_KILLED` and `TASK_GONE_BY_OPERATOR` gets the reason
//! `REASON_AGENT_DRAINING`, and with `mark_gone` a `TASK_KILLED` becomes
//! `TASK_GONE_BY_OPERATOR` (the agent will not come back). Executors need
//! not know about draining: the agent changes their updates for them.

use super::super::State;
use super::LOG_TARGET;
use crate::local::master::is_terminal;
use crate::proto::mesos::{task_status, TaskState, TaskStatus};
use std::time::Duration;

/// How the operator asked the agent to drain (Mesos's `DrainConfig`).
#[derive(Clone, Debug, PartialEq)]
pub(in crate::local) struct Draining {
    /// The longest a task is given to end after its `KILL`.
    pub(in crate::local) max_grace_period: Option<Duration>,
    /// Whether the agent leaves the cluster for good once drained.
    pub(in crate::local) mark_gone: bool,
}

/// An update of a task killed because its agent drains, as Mesos's agent
/// rewrites it before sending it on.
pub(super) fn rewrite_update(status: &mut TaskStatus, mark_gone: bool) {
    use TaskState::*;
    let state = status.state();
    if !matches!(state, TASK_KILLING | TASK_KILLED | TASK_GONE_BY_OPERATOR) {
        return;
    }
    if mark_gone && state == TASK_KILLED {
        status.set_state(TASK_GONE_BY_OPERATOR);
    }
    status.set_reason(task_status::Reason::REASON_AGENT_DRAINING);
}

impl State {
    /// The master drains this agent: every task that has not ended is
    /// killed. Executors that run nothing afterwards are left alone, as
    /// Mesos leaves them: they shut down when their framework ends.
    pub(in crate::local) fn agent_drain(&mut self, agent: usize, draining: Draining) {
        self.agents[agent].draining = Some(draining);
        let mut running: Vec<(String, String)> = self.agents[agent]
            .task_executors
            .keys()
            .filter(|key| {
                self.master
                    .tasks
                    .get(*key)
                    .is_some_and(|t| !is_terminal(t.state))
            })
            .cloned()
            .collect();
        running.sort();
        log::info!(
            target: LOG_TARGET,
            "Agent {} is draining: killing {} task(s)",
            self.agents[agent].id,
            running.len()
        );
        for (framework_id, task_id) in running {
            self.agent_kill_task(agent, &framework_id, &task_id);
        }
    }

    /// The agent leaves the cluster (drained with `mark_gone`): its
    /// executors are shut down.
    pub(in crate::local) fn agent_shutdown_executors(&mut self, agent: usize) {
        let mut executors: Vec<(String, String)> =
            self.agents[agent].executors.keys().cloned().collect();
        executors.sort();
        for (framework_id, executor_id) in executors {
            self.shutdown_executor(agent, &framework_id, &executor_id);
        }
    }

    /// The operator reactivated the agent: it no longer drains.
    pub(in crate::local) fn agent_stop_draining(&mut self, agent: usize) {
        self.agents[agent].draining = None;
    }

    /// Whether the agent still runs tasks or holds updates its frameworks
    /// have not acknowledged: a draining agent is drained once it holds
    /// neither (Mesos's master waits for both).
    pub(in crate::local) fn agent_busy(&self, agent: usize) -> bool {
        let agent = &self.agents[agent];
        !agent.updates.is_empty()
            || agent.task_executors.keys().any(|key| {
                self.master
                    .tasks
                    .get(key)
                    .is_some_and(|t| !is_terminal(t.state))
            })
    }

    /// The grace period a `KILL` carries on this agent while it drains.
    pub(super) fn drain_grace_period(&self, agent: usize) -> Option<Duration> {
        self.agents[agent]
            .draining
            .as_ref()
            .and_then(|d| d.max_grace_period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: TaskState) -> TaskStatus {
        let mut status = TaskStatus::new();
        status.set_state(state);
        status.set_reason(task_status::Reason::REASON_TASK_KILLED_DURING_LAUNCH);
        status
    }

    #[test]
    fn killed_tasks_are_the_drains_doing_and_gone_with_mark_gone() {
        let mut killed = status(TaskState::TASK_KILLED);
        rewrite_update(&mut killed, false);
        assert_eq!(killed.state(), TaskState::TASK_KILLED);
        assert_eq!(killed.reason(), task_status::Reason::REASON_AGENT_DRAINING);

        let mut gone = status(TaskState::TASK_KILLED);
        rewrite_update(&mut gone, true);
        assert_eq!(gone.state(), TaskState::TASK_GONE_BY_OPERATOR);
        assert_eq!(gone.reason(), task_status::Reason::REASON_AGENT_DRAINING);

        // A task that finished before its kill arrived keeps its own end.
        let mut finished = status(TaskState::TASK_FINISHED);
        rewrite_update(&mut finished, true);
        assert_eq!(finished.state(), TaskState::TASK_FINISHED);
        assert_ne!(
            finished.reason(),
            task_status::Reason::REASON_AGENT_DRAINING
        );
    }
}
