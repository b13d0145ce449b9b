//! Step 2's work: no-op tasks, as many as the offers fit.
//!
//! The point of step 2 is the task life cycle, not the work: each task goes
//! `TASK_RUNNING` then `TASK_FINISHED`, and the scheduler keeps launching
//! more as resources come back.
//!
//! Mesos delivers status updates *at least once*: after a reconnection or a
//! lost acknowledgement the same `TASK_FINISHED` can arrive twice. So
//! finished tasks are counted as a set of ids, never with a counter.

use super::tasks::{self, describe, TaskPlan};
use super::{log_lines, Config, Outcome, Resume, SchedulerError, Work};
use crate::proto::mesos::{Offer, TaskInfo, TaskState, TaskStatus};
use crate::server::FileServer;
use crate::task_data;
use std::collections::{HashMap, HashSet};

/// The task table of step 2.
pub struct NoopTasks {
    plan: TaskPlan,
    /// Serves the executor binary to the agents. Never read: it is kept
    /// because dropping it stops the server.
    _server: FileServer,
    next_id: u64,
    /// Put before every task id: empty, until step 4 takes over an earlier
    /// process's framework (`continue_earlier_run`, below).
    id_prefix: String,
    /// The tasks launched and not yet ended, with their agents.
    running: HashMap<String, String>,
    finished: HashSet<String>,
    /// Stop after this many tasks finished (`--tasks`); `None` runs forever.
    target: Option<usize>,
    task_millis: u32,
    /// Tasks that failed since the last one finished, and how the last
    /// one failed: tasks that fail every time (a broken executor) would
    /// otherwise be relaunched for ever.
    failed_in_row: u32,
    last_failure: String,
}

impl NoopTasks {
    /// Serves the executor, for `--tasks` no-op tasks of `--task-millis`
    /// each.
    pub fn prepare(config: &Config) -> Result<NoopTasks, SchedulerError> {
        let (plan, server) = tasks::serve_executor(config)?;
        Ok(NoopTasks::new(
            plan,
            server,
            config.tasks,
            config.task_millis,
        ))
    }

    /// A table that launches tasks lasting `task_millis` each, until
    /// `target` of them finished.
    pub fn new(
        plan: TaskPlan,
        server: FileServer,
        target: Option<usize>,
        task_millis: u32,
    ) -> NoopTasks {
        NoopTasks {
            plan,
            _server: server,
            next_id: 1,
            id_prefix: String::new(),
            running: HashMap::new(),
            finished: HashSet::new(),
            target,
            task_millis,
            failed_in_row: 0,
            last_failure: String::new(),
        }
    }
}

impl Work for NoopTasks {
    /// As many tasks as fit, but no more than still needed.
    fn tasks_for(&mut self, offer: &Offer) -> Vec<TaskInfo> {
        let wanted = match self.target {
            Some(target) => target.saturating_sub(self.finished.len() + self.running.len()),
            None => usize::MAX,
        };
        let data = task_data::encode(&task_data::noop(self.task_millis));
        let mut tasks = self.plan.tasks(offer, wanted);
        for task in &mut tasks {
            let task_id = format!("{}{}", self.id_prefix, self.next_id);
            self.next_id += 1;
            log::info!("Prepared task {task_id} with offer {}", offer.id.value());
            describe(task, &task_id, data.clone());
            self.running
                .insert(task_id, offer.agent_id.value().to_string());
        }
        tasks
    }

    /// Terminal states end the task; a task that did not finish is not
    /// retried, the next offer simply launches more.
    fn update(&mut self, status: &TaskStatus) {
        let task_id = status.task_id.value();
        // A task we no longer track (a duplicate update, or a task of an
        // earlier scheduler process) is not counted.
        let state = status.state();
        if !crate::proto::is_terminal(state) || self.running.remove(task_id).is_none() {
            return;
        }
        if state == TaskState::TASK_FINISHED {
            self.finished.insert(task_id.to_string());
            self.failed_in_row = 0;
        } else if !super::limits::agent_drained(status) {
            // A failure; step 4 does not count a task whose agent drained.
            self.failed_in_row += 1;
            self.last_failure = failure_text(status);
        }
    }

    /// Always without `--tasks`; otherwise while finished and running tasks
    /// are fewer than asked.
    fn wants_offers(&self) -> bool {
        self.target
            .is_none_or(|target| self.finished.len() + self.running.len() < target)
    }

    /// Whether `--tasks` tasks have finished.
    fn done(&self) -> bool {
        self.target
            .is_some_and(|target| self.finished.len() >= target)
    }

    fn finish(self, _config: &Config, interrupted: bool) -> Outcome {
        let finished = log_lines::counted(self.finished.len(), "task");
        log::info!("{finished} finished");
        Outcome::new(true, interrupted)
    }
}

/// Step 4 (`failover.rs`).
impl Resume for NoopTasks {
    fn running(&self) -> Vec<(String, String)> {
        self.running
            .iter()
            .map(|(task, agent)| (task.clone(), agent.clone()))
            .collect()
    }

    /// New tasks take their place.
    fn unlaunch(&mut self, task_ids: &[String]) {
        for task_id in task_ids {
            self.running.remove(task_id);
        }
    }

    /// New tasks take their place.
    fn forget_running(&mut self) {
        self.running.clear();
    }

    /// New task ids get a fresh prefix, so that none repeats one of the
    /// earlier process's ids.
    fn continue_earlier_run(&mut self) {
        self.id_prefix = format!("{}-", &crate::random::token()[..6]);
    }

    fn stale_executor(&self, offer: &Offer) -> bool {
        self.plan.stale_executor(offer)
    }

    /// Tasks that fail every time (a broken executor) would otherwise be
    /// relaunched for ever.
    fn failing(&self, max: u32) -> Option<(u32, String)> {
        (self.failed_in_row >= max).then(|| (self.failed_in_row, self.last_failure.clone()))
    }
}

/// `task 3 TASK_FAILED (REASON_EXECUTOR_TERMINATED): Executor terminated`:
/// Mesos's own words for why a task failed.
fn failure_text(status: &TaskStatus) -> String {
    let task = status.task_id.value();
    let state = status.state();
    let mut text = format!("task {task} {state:?}");
    if status.reason.is_some() {
        text.push_str(&format!(" ({:?})", status.reason()));
    }
    match status.message() {
        "" => text,
        message => format!("{text}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::Resource;

    fn offer() -> Offer {
        let mut offer = Offer::new();
        offer.id.mut_or_insert_default().set_value("o1".into());
        let mut cpus = Resource::new();
        cpus.set_name("cpus".into());
        cpus.set_type(crate::proto::mesos::value::Type::SCALAR);
        cpus.scalar.mut_or_insert_default().set_value(8.0);
        let mut mem = cpus.clone();
        mem.set_name("mem".into());
        mem.scalar.mut_or_insert_default().set_value(8192.0);
        offer.resources = vec![cpus, mem];
        offer
    }

    fn status(task_id: &str, state: TaskState) -> TaskStatus {
        let mut status = TaskStatus::new();
        status
            .task_id
            .mut_or_insert_default()
            .set_value(task_id.into());
        status.set_state(state);
        status
    }

    /// A table of tasks of 1 CPU and 128 MB, its file server on 127.0.0.1.
    fn table(target: Option<usize>) -> NoopTasks {
        let plan = TaskPlan::new("http://s/executor", 1.0, 128.0);
        let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("a file server");
        NoopTasks::new(plan, server, target, 0)
    }

    #[test]
    fn duplicate_updates_count_once() {
        let mut tasks = table(Some(2));
        let launched = tasks.tasks_for(&offer());
        assert_eq!(launched.len(), 2, "never more than --tasks");
        tasks.update(&status("1", TaskState::TASK_FINISHED));
        tasks.update(&status("1", TaskState::TASK_FINISHED));
        assert_eq!(tasks.finished.len(), 1);
        assert!(!tasks.done());
        tasks.update(&status("2", TaskState::TASK_FINISHED));
        assert!(tasks.done());
    }

    #[test]
    fn failed_tasks_are_replaced_by_new_ones() {
        let mut tasks = table(Some(2));
        assert_eq!(tasks.tasks_for(&offer()).len(), 2);
        tasks.update(&status("1", TaskState::TASK_LOST));
        tasks.update(&status("2", TaskState::TASK_RUNNING));
        let again = tasks.tasks_for(&offer());
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].task_id.value(), "3");
    }

    #[test]
    fn failures_in_a_row_are_counted_until_a_task_finishes() {
        let mut tasks = table(None);
        assert_eq!(tasks.tasks_for(&offer()).len(), 7);
        let mut failed = status("1", TaskState::TASK_FAILED);
        failed.set_reason(crate::proto::mesos::task_status::Reason::REASON_COMMAND_EXECUTOR_FAILED);
        failed.set_message("Executor terminated".into());
        tasks.update(&failed);
        tasks.update(&failed);
        tasks.update(&status("2", TaskState::TASK_LOST));
        assert_eq!(tasks.failing(3), None, "a duplicate update counts once");
        tasks.update(&status("3", TaskState::TASK_FINISHED));
        tasks.update(&status("4", TaskState::TASK_FAILED));
        tasks.update(&status("5", TaskState::TASK_FAILED));
        assert_eq!(
            tasks.failing(3),
            None,
            "a finished task starts the count again"
        );
        let mut last = status("6", TaskState::TASK_FAILED);
        last.set_message("Executor terminated".into());
        last.set_reason(crate::proto::mesos::task_status::Reason::REASON_EXECUTOR_TERMINATED);
        tasks.update(&last);
        assert_eq!(
            tasks.failing(3),
            Some((
                3,
                "task 6 TASK_FAILED (REASON_EXECUTOR_TERMINATED): Executor terminated".into()
            ))
        );
    }

    #[test]
    fn tasks_of_a_drained_agent_are_no_failures() {
        use crate::proto::mesos::task_status::Reason;
        let mut tasks = table(None);
        assert_eq!(tasks.tasks_for(&offer()).len(), 7);
        for id in ["1", "2", "3"] {
            let mut killed = status(id, TaskState::TASK_KILLED);
            killed.set_reason(Reason::REASON_AGENT_DRAINING);
            tasks.update(&killed);
        }
        assert_eq!(tasks.failing(1), None, "a drain is not a failure");
        let mut gone = status("4", TaskState::TASK_GONE_BY_OPERATOR);
        gone.set_reason(Reason::REASON_AGENT_DRAINING);
        tasks.update(&gone);
        assert_eq!(tasks.failing(1), None, "nor is an agent marked gone");
        tasks.update(&status("5", TaskState::TASK_KILLED));
        assert!(tasks.failing(1).is_some(), "a kill for another reason is");
    }
}
