//! Tasks: how a scheduler turns an offer into `TaskInfo`s.
//!
//! An offer is a list of resources on one agent. To use it, the scheduler
//! describes each task: an id, the resources it takes out of the offer, the
//! executor that runs it, and `data` for that executor. Steps 2 and 3 both
//! use this file; they differ only in what `data` says.
//!
//! Three Mesos rules shape the arithmetic:
//! - the executor needs resources of its own, on top of its tasks', but
//!   only while it is not already running on the agent (the offer lists the
//!   framework's running executors in `executor_ids`);
//! - a task may only use resources exactly as they were offered: the same
//!   role (`allocation_info`), the same reservation. So a task's resources
//!   are cut out of the offer's own `Resource` entries, never written anew;
//! - every task for a running executor must carry the very `ExecutorInfo`
//!   that started it, resources included, or the master refuses the task.
//!   So the plan remembers, per agent, the `ExecutorInfo` it launched there.

pub use super::resources::scalar;
use super::resources::take;
use super::too_small::TooSmall;
use super::{executor_binary, Config, SchedulerError};
use crate::proto::mesos::{command_info, CommandInfo, ExecutorInfo, Offer, Resource, TaskInfo};
use crate::server::FileServer;
use std::collections::HashMap;

/// Every task of this framework runs in one executor per agent, with this
/// id (as in the Go tutorial). Tasks that carry an identical `ExecutorInfo`
/// share it.
pub const EXECUTOR_ID: &str = "default";
/// What the executor process itself needs.
pub const EXECUTOR_CPUS: f64 = 0.1;
/// What the executor process itself needs, in MB.
pub const EXECUTOR_MEM: f64 = 32.0;

/// Steps 2 and 3: starts the file server and serves the executor binary on
/// it, then plans tasks of `--task-cpus` and `--task-mem` run by that
/// executor. Mesos runs an executor by fetching it from a URL into the
/// task's sandbox (`CommandInfo.URI`).
pub fn serve_executor(config: &Config) -> Result<(TaskPlan, FileServer), SchedulerError> {
    let address = format!("{}:{}", config.address, config.port);
    let server = FileServer::start(&address, &config.address)?;
    let executor =
        executor_binary::find(config.executor.as_deref()).map_err(SchedulerError::Executor)?;
    // Named by its content: the agent's fetcher cache never refreshes an
    // entry, so a rebuilt executor must come from a new URL.
    let name = executor_binary::content_name(&executor).map_err(SchedulerError::Executor)?;
    let executor_url = server.serve_file(&name, &executor)?;
    log::info!(
        "Serving the executor {} at {executor_url}",
        executor.display()
    );
    let plan = TaskPlan::new(&executor_url, config.task_cpus, config.task_mem);
    Ok((plan, server))
}

/// What each task needs and which executor runs it.
pub struct TaskPlan {
    executor: ExecutorInfo,
    cpus: f64,
    mem: f64,
    /// The `ExecutorInfo` (with the resources cut for it) that this plan
    /// launched on each agent, by agent id.
    launched: HashMap<String, ExecutorInfo>,
    /// Offers too small for a waiting task, for a warning (`too_small.rs`,
    /// one of step 4's limits).
    too_small: TooSmall,
}

impl TaskPlan {
    /// Tasks of `cpus` and `mem` each, run by the executor that the agent
    /// downloads from `executor_url`.
    pub fn new(executor_url: &str, cpus: f64, mem: f64) -> TaskPlan {
        let mut command = CommandInfo::new();
        let mut uri = command_info::URI::new();
        uri.set_value(executor_url.to_string());
        // The fetcher must make the file runnable.
        uri.set_executable(true);
        uri.set_extract(false);
        let started = executor_binary::StartCommand::for_url(executor_url);
        uri.set_output_file(started.file.into());
        // Fetch it once per agent, not once per sandbox: Mesos's fetcher
        // cache (docs/fetcher.md) keeps a `cache` URI for reuse, and the
        // URL names the executor's content, so a rebuilt one is a new URI.
        uri.set_cache(true);
        command.uris.push(uri);
        command.set_value(started.command.into());
        command.set_shell(true);
        let mut executor = ExecutorInfo::new();
        executor
            .executor_id
            .mut_or_insert_default()
            .set_value(EXECUTOR_ID.into());
        executor.set_name("Tutorial executor (Rust)".into());
        executor.command = Some(command).into();
        TaskPlan {
            executor,
            cpus,
            mem,
            launched: HashMap::new(),
            too_small: TooSmall::new(cpus, mem),
        }
    }

    /// Up to `wanted` tasks on this offer's agent, as many as fit, each
    /// with the executor that runs it and resources cut from what the
    /// earlier ones left. The first task also pays for the executor if it
    /// does not run there yet. Each still needs its name, id and data
    /// ([`describe`]).
    pub fn tasks(&mut self, offer: &Offer, wanted: usize) -> Vec<TaskInfo> {
        let mut left = offer.resources.clone();
        let mut tasks = Vec::new();
        if let Some(executor) = self.executor_for(offer, &mut left) {
            while tasks.len() < wanted {
                let Some(resources) = self.cut_task(&mut left) else {
                    break;
                };
                let mut task = TaskInfo::new();
                task.agent_id = offer.agent_id.clone();
                task.executor = Some(executor.clone()).into();
                task.resources = resources;
                tasks.push(task);
            }
            if !tasks.is_empty() {
                let agent = offer.agent_id.value().to_string();
                self.launched.insert(agent, executor);
            }
        }
        // Step 4: offers that stay too small for waiting tasks get a
        // warning (`too_small.rs`).
        self.too_small.saw(offer, wanted, tasks.len());
        tasks
    }

    /// The executor for tasks on this offer's agent: the very one running
    /// there, or a new one whose resources are cut from `left`. `None` if
    /// a new one does not fit.
    fn executor_for(&self, offer: &Offer, left: &mut [Resource]) -> Option<ExecutorInfo> {
        match self.launched.get(offer.agent_id.value()) {
            Some(executor) if executor_running(offer) => Some(executor.clone()),
            _ => {
                let mut executor = self.executor.clone();
                // An executor whose resources are all zero does not fit,
                // nor does one the offer cannot hold.
                let cpus = take(left, "cpus", EXECUTOR_CPUS)?;
                let mem = take(left, "mem", EXECUTOR_MEM)?;
                executor.resources = [cpus, mem].concat();
                Some(executor)
            }
        }
    }

    /// One task's resources, cut from `left`. `None` if they do not fit
    /// (the caller stops there), and for a task of no resources, which
    /// would "fit" without end and which Mesos refuses anyway.
    fn cut_task(&self, left: &mut [Resource]) -> Option<Vec<Resource>> {
        if !(self.cpus > 0.0 && self.mem > 0.0) {
            return None;
        }
        let cpus = take(left, "cpus", self.cpus)?;
        let mem = take(left, "mem", self.mem)?;
        Some([cpus, mem].concat())
    }

    /// Whether the offer's agent runs an executor of ours that this plan
    /// did not launch: one left by an earlier scheduler process of the same
    /// framework (`--framework-id-file`). Its `ExecutorInfo` names that
    /// process's file server, so no task of ours can join it; it must be
    /// shut down before this agent can run our tasks.
    pub fn stale_executor(&self, offer: &Offer) -> bool {
        executor_running(offer) && !self.launched.contains_key(offer.agent_id.value())
    }
}

/// The rest of a task as Mesos sees it, a `TaskInfo`: a name, an id unique
/// among the framework's tasks, and `data` for the executor, which Mesos
/// passes on unread. [`TaskPlan::tasks`] gave it the offer's agent, its
/// resources and the executor that runs it.
pub fn describe(task: &mut TaskInfo, task_id: &str, data: Vec<u8>) {
    task.set_name(format!("task {task_id}"));
    task.task_id
        .mut_or_insert_default()
        .set_value(task_id.to_string());
    task.set_data(data);
}

/// Whether the offer's agent runs our executor: an offer lists the
/// framework's executors running on its agent (`Offer.executor_ids`).
fn executor_running(offer: &Offer) -> bool {
    offer
        .executor_ids
        .iter()
        .any(|id| id.value() == EXECUTOR_ID)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::{resource, value};

    /// A scalar resource such as `cpus:1`, offered to `role` if given.
    fn scalar_resource(name: &str, amount: f64, role: Option<&str>) -> Resource {
        let mut resource = Resource::new();
        resource.set_name(name.to_string());
        resource.set_type(value::Type::SCALAR);
        resource.scalar.mut_or_insert_default().set_value(amount);
        if let Some(role) = role {
            resource
                .allocation_info
                .mut_or_insert_default()
                .set_role(role.to_string());
        }
        resource
    }

    fn offer(cpus: f64, mem: f64, executor_running: bool) -> Offer {
        let mut offer = Offer::new();
        offer
            .agent_id
            .mut_or_insert_default()
            .set_value("agent-1".into());
        offer.resources = vec![
            scalar_resource("cpus", cpus, Some("*")),
            scalar_resource("mem", mem, Some("*")),
        ];
        if executor_running {
            let mut id = crate::proto::mesos::ExecutorID::new();
            id.set_value(EXECUTOR_ID.into());
            offer.executor_ids.push(id);
        }
        offer
    }

    #[test]
    fn the_executor_takes_its_share_until_it_runs() {
        let mut plan = TaskPlan::new("http://server/executor", 1.0, 128.0);
        // 2 cpus minus the executor's 0.1 leave room for one 1-cpu task.
        let first = plan.tasks(&offer(2.0, 1024.0, false), usize::MAX);
        assert_eq!(first.len(), 1);
        // Once the executor we launched runs there, its share is taken.
        let again = plan.tasks(&offer(2.0, 1024.0, true), usize::MAX);
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn the_executors_memory_counts_until_it_runs() {
        // 256 MB hold two tasks of 128 MB, but not beside the executor's 32.
        let mut plan = TaskPlan::new("http://server/executor", 0.1, 128.0);
        let first = plan.tasks(&offer(2.0, 256.0, false), 3);
        assert_eq!(first.len(), 1);
        assert_eq!(scalar(&first[0].executor.resources, "mem"), EXECUTOR_MEM);
        // Once it runs there, its 32 MB are taken already.
        assert_eq!(plan.tasks(&offer(2.0, 256.0, true), 3).len(), 2);
    }

    #[test]
    fn an_executor_that_stopped_is_paid_for_again() {
        let mut plan = TaskPlan::new("http://server/executor", 0.5, 100.0);
        let first = plan.tasks(&offer(2.0, 1024.0, false), 1);
        assert_eq!(first.len(), 1);
        // The agent no longer lists our executor: it exited, and the next
        // task starts a new one, which needs its resources again. 1 cpu
        // holds two tasks of 0.5, but only one beside a new executor.
        let again = plan.tasks(&offer(1.0, 1024.0, false), 2);
        assert_eq!(again.len(), 1);
        let executor = &again[0].executor.resources;
        assert_eq!(scalar(executor, "cpus"), EXECUTOR_CPUS);
        assert_eq!(scalar(executor, "mem"), EXECUTOR_MEM);
    }

    #[test]
    fn memory_and_the_wanted_count_also_limit_tasks() {
        let mut plan = TaskPlan::new("http://server/executor", 0.25, 128.0);
        let mut count = |offer: Offer, wanted| plan.tasks(&offer, wanted).len();
        assert_eq!(count(offer(2.0, 300.0, true), usize::MAX), 2);
        assert_eq!(count(offer(2.0, 1024.0, true), 3), 3);
        assert_eq!(count(offer(0.2, 1024.0, true), usize::MAX), 0);
    }

    #[test]
    fn tasks_use_the_offers_role_and_agent() {
        let mut plan = TaskPlan::new("http://server/executor", 1.0, 128.0);
        let mut task = plan.tasks(&offer(2.0, 1024.0, false), 1).remove(0);
        describe(&mut task, "7", b"data".to_vec());
        assert_eq!(task.name(), "task 7");
        assert_eq!(task.data(), b"data");
        assert_eq!(task.agent_id.value(), "agent-1");
        assert_eq!(task.task_id.value(), "7");
        assert!(task
            .resources
            .iter()
            .all(|r| r.allocation_info.role() == "*"));
        assert_eq!(scalar(&task.resources, "cpus"), 1.0);
        assert_eq!(task.executor.executor_id.value(), EXECUTOR_ID);
        assert!(task.executor.command.uris[0].executable());
    }

    #[test]
    fn a_windows_executor_is_fetched_and_started_the_windows_way() {
        let started = |url: &str| {
            let plan = TaskPlan::new(url, 1.0, 128.0);
            let command = plan.executor.command.clone().unwrap_or_default();
            let file = command.uris[0].output_file().to_string();
            (file, command.value().to_string(), command.shell())
        };
        // What a Linux or macOS agent gets is what it always got.
        let unix = started("http://server/files/executor-0123456789abcdef");
        assert_eq!(unix, ("executor".into(), "./executor".into(), true));
        let windows = started("http://server/files/executor-0123456789abcdef.exe");
        assert_eq!(
            windows,
            ("executor.exe".into(), ".\\executor.exe".into(), true)
        );
    }

    fn with_agent(mut offer: Offer, agent: &str) -> Offer {
        offer
            .agent_id
            .mut_or_insert_default()
            .set_value(agent.into());
        offer
    }

    #[test]
    fn tasks_are_cut_from_the_offered_entries_reservations_and_all() {
        let mut offer = offer(0.0, 1024.0, false);
        let mut reserved = scalar_resource("cpus", 0.6, Some("web"));
        let mut reservation = resource::ReservationInfo::new();
        reservation.set_type(resource::reservation_info::Type::STATIC);
        reservation.set_role("web".into());
        reserved.reservations.push(reservation);
        offer.resources[0] = reserved;
        offer
            .resources
            .push(scalar_resource("cpus", 1.4, Some("web")));
        let mut plan = TaskPlan::new("http://server/executor", 0.5, 100.0);

        let tasks = plan.tasks(&offer, 4);
        // 2 cpus: 0.1 for the executor and three tasks of 0.5; a fourth does not fit.
        assert_eq!(tasks.len(), 3);
        let executor = &tasks[0].executor.resources;
        assert_eq!(scalar(executor, "cpus"), 0.1);
        assert_eq!(executor[0].reservations[0].role(), "web");
        // The first task takes the rest of the reserved entry, the others
        // the unreserved one; each piece keeps its entry's details.
        assert_eq!(tasks[0].resources[0].reservations.len(), 1);
        assert_eq!(scalar(&tasks[0].resources, "cpus"), 0.5);
        for task in &tasks[1..] {
            assert!(task.resources[0].reservations.is_empty());
            assert_eq!(scalar(&task.resources, "cpus"), 0.5);
        }
        for task in &tasks {
            assert_eq!(scalar(&task.resources, "mem"), 100.0);
            assert!(task
                .resources
                .iter()
                .filter(|r| r.name() == "cpus")
                .all(|r| r.allocation_info.role() == "web"));
        }
    }

    #[test]
    fn an_agent_keeps_the_executor_info_it_was_launched_with() {
        let mut plan = TaskPlan::new("http://server/executor", 0.5, 100.0);
        let first = plan.tasks(&offer(2.0, 1024.0, false), 1);
        let again = plan.tasks(&offer(1.0, 512.0, true), 1);
        assert_eq!(again[0].executor, first[0].executor);
        assert!(!plan.stale_executor(&offer(1.0, 512.0, true)));
        // An executor of ours that this plan never launched there.
        let elsewhere = with_agent(offer(1.0, 512.0, true), "agent-2");
        assert!(plan.stale_executor(&elsewhere));
        assert!(!plan.stale_executor(&with_agent(offer(1.0, 512.0, false), "agent-2")));
    }

    #[test]
    fn nothing_is_cut_when_the_executor_does_not_fit() {
        let mut plan = TaskPlan::new("http://server/executor", 0.05, 10.0);
        let tasks = plan.tasks(&offer(0.05, 1024.0, false), 1);
        assert!(tasks.is_empty());
    }

    #[test]
    fn tasks_without_resources_never_fit() {
        let mut plan = TaskPlan::new("http://server/executor", 0.0, 128.0);
        assert!(plan.tasks(&offer(2.0, 1024.0, true), usize::MAX).is_empty());
        let mut plan = TaskPlan::new("http://server/executor", 1.0, 0.0);
        assert!(plan.tasks(&offer(2.0, 1024.0, true), usize::MAX).is_empty());
    }
}
