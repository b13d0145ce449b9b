//! The agent's status update manager: per task, one update at a time goes
//! to the scheduler and is resent, with backoff, until the scheduler
//! acknowledges it; only then is the executor told (`ACKNOWLEDGED`) and the
//! next update sent.

use super::super::http::HttpError;
use super::super::master::{is_terminal, now_seconds, task_status, Report};
use super::super::State;
use super::LOG_TARGET;
use super::{Executor, Key, REMEMBERED_ACKNOWLEDGEMENTS};
use crate::proto::executor::{event, Event};
use crate::proto::mesos::{task_status, TaskState, TaskStatus};
use std::time::{Duration, Instant};

/// Resends of an unacknowledged update back off up to this (Mesos: 10 min).
const MAX_UPDATE_RETRY: Duration = Duration::from_secs(600);

pub(super) struct PendingUpdate {
    pub(super) status: TaskStatus,
    pub(super) from_executor: bool,
    resend_at: Instant,
    backoff: Duration,
}

/// Mesos's own checks on an executor's `UPDATE` call.
fn check_update(key: &Key, status: &TaskStatus) -> Result<(), HttpError> {
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
    Ok(())
}

/// Tells a subscribed executor that its update `uuid` is acknowledged.
pub(super) fn send_acknowledged(executor: &Executor, task_id: &str, uuid: &[u8]) {
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

impl State {
    /// An `UPDATE` call: checked as Mesos checks it, then queued for the
    /// scheduler.
    pub(super) fn executor_update(
        &mut self,
        agent: usize,
        key: &Key,
        mut status: TaskStatus,
    ) -> Result<(), HttpError> {
        let subscribed = self.agents[agent]
            .executors
            .get(key)
            .is_some_and(|e| e.events.is_some());
        if !subscribed {
            return Err(HttpError::new(403, "Executor is not subscribed"));
        }
        check_update(key, &status)?;
        if let Some(executor) = self.agents[agent].executors.get(key) {
            if executor.acknowledged.contains(status.uuid()) {
                log::debug!(
                    target: LOG_TARGET,
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
        if self.agents[agent].task_executors.get(&task_key) != Some(&key.1) {
            return Err(HttpError::bad_request(format!(
                "Task '{task_id}' is not known on executor '{}'",
                key.1
            )));
        }
        status
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        self.queue_update(agent, &key.0, status, true);
        Ok(())
    }

    /// A status the agent makes itself (the executor cannot speak for a task
    /// it never had, or once it is gone). It carries a uuid: the scheduler
    /// acknowledges it like any agent update.
    pub(super) fn agent_status(
        &mut self,
        agent: usize,
        task_id: &str,
        executor_id: &str,
        state: TaskState,
        reason: task_status::Reason,
        message: &str,
    ) -> TaskStatus {
        let agent = &mut self.agents[agent];
        agent.next_uuid += 1;
        let mut uuid = agent.next_uuid.to_be_bytes().to_vec();
        uuid.extend_from_slice(&now_seconds().to_bits().to_be_bytes());
        let report = Report {
            state,
            reason,
            message,
        };
        let source = task_status::Source::SOURCE_AGENT;
        let mut status = task_status(task_id, report, source, &agent.id);
        status
            .executor_id
            .mut_or_insert_default()
            .set_value(executor_id.to_string());
        status.set_uuid(uuid);
        status
    }

    /// The status update manager: queues an update per task and sends it
    /// when every earlier update of that task has been acknowledged.
    pub(super) fn queue_update(
        &mut self,
        agent: usize,
        framework_id: &str,
        mut status: TaskStatus,
        from_executor: bool,
    ) {
        status
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agents[agent].id.clone());
        if let Some(drain) = &self.agents[agent].draining {
            super::drain::rewrite_update(&mut status, drain.mark_gone);
        }
        let key = (framework_id.to_string(), status.task_id.value().to_string());
        let queue = self.agents[agent].updates.entry(key.clone()).or_default();
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
            self.send_front_update(agent, &key);
        } else if is_terminal(state) {
            // The framework hears of the end in order, after it has
            // acknowledged the earlier updates; the master learns of it now.
            self.task_state(&key.0, &key.1, state);
        }
    }

    fn send_front_update(&mut self, agent: usize, key: &Key) {
        let updates = &mut self.agents[agent].updates;
        let Some(front) = updates.get_mut(key).and_then(|q| q.front_mut()) else {
            return;
        };
        front.resend_at = Instant::now() + front.backoff;
        let status = front.status.clone();
        log::info!(target: LOG_TARGET, "Task {} is {:?}", key.1, status.state());
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
    pub(in crate::local) fn acknowledge(
        &mut self,
        agent: usize,
        framework_id: &str,
        task_id: &str,
        uuid: &[u8],
    ) {
        let key = (framework_id.to_string(), task_id.to_string());
        let Some(queue) = self.agents[agent].updates.get_mut(&key) else {
            log::warn!(
                target: LOG_TARGET,
                "Ignoring acknowledgement for task {task_id}: no update is pending"
            );
            return;
        };
        if queue.front().map(|u| u.status.uuid()) != Some(uuid) {
            log::warn!(
                target: LOG_TARGET,
                "Ignoring acknowledgement for task {task_id}: unknown uuid"
            );
            return;
        }
        let acked = queue.pop_front().expect("front was just checked");
        let finished = queue.is_empty() && is_terminal(acked.status.state());
        if queue.is_empty() {
            self.agents[agent].updates.remove(&key);
        }
        if let Some(executor_id) = self.agents[agent].task_executors.get(&key).cloned() {
            if acked.from_executor {
                let executor_key = (framework_id.to_string(), executor_id);
                if let Some(executor) = self.agents[agent].executors.get_mut(&executor_key) {
                    executor.remember_acknowledged(uuid);
                    send_acknowledged(executor, task_id, uuid);
                }
            }
        }
        if finished {
            self.agents[agent].task_executors.remove(&key);
            self.check_drained(agent);
        }
        self.send_front_update(agent, &key);
    }

    /// Resends every pending update of a framework at once.
    pub(in crate::local) fn resend_updates(&mut self, framework_id: &str) {
        for agent in 0..self.agents.len() {
            let keys: Vec<Key> = self.agents[agent]
                .updates
                .keys()
                .filter(|(fw, _)| fw == framework_id)
                .cloned()
                .collect();
            for key in keys {
                self.send_front_update(agent, &key);
            }
        }
    }

    /// Resends updates that were not acknowledged in time, with backoff.
    pub(in crate::local) fn retry_updates(&mut self) {
        let now = Instant::now();
        for agent in 0..self.agents.len() {
            let updates = &mut self.agents[agent].updates;
            let due: Vec<Key> = updates
                .iter()
                .filter(|(_, q)| q.front().is_some_and(|u| u.resend_at <= now))
                .map(|(key, _)| key.clone())
                .collect();
            for key in due {
                let updates = &mut self.agents[agent].updates;
                if let Some(front) = updates.get_mut(&key).and_then(|q| q.front_mut()) {
                    front.backoff = (front.backoff * 2).min(MAX_UPDATE_RETRY);
                }
                log::debug!(target: LOG_TARGET, "Resending unacknowledged update for task {}", key.1);
                self.send_front_update(agent, &key);
            }
        }
    }
}
