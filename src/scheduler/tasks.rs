//! Tasks: how a scheduler turns an offer into `TaskInfo`s.
//!
//! An offer is a list of resources on one agent. To use it, the scheduler
//! describes each task: an id, the resources it takes out of the offer, the
//! executor that runs it, and `data` for that executor. Steps 2 and 3 both
//! use this file; they differ only in what `data` says.
//!
//! Two Mesos rules shape the arithmetic:
//! - the executor needs resources of its own, on top of its tasks', but
//!   only while it is not already running on the agent (the offer lists the
//!   framework's running executors in `executor_ids`);
//! - resources must be used under the role they were offered to, so each
//!   resource we ask for carries the offer's `allocation_info`.

use crate::proto::mesos::{
    command_info, value, CommandInfo, ExecutorInfo, Offer, Resource, TaskInfo,
};

/// Every task of this framework runs in one executor per agent, with this
/// id (as in the Go tutorial). Tasks that carry an identical `ExecutorInfo`
/// share it.
pub const EXECUTOR_ID: &str = "default";
/// What the executor process itself needs.
pub const EXECUTOR_CPUS: f64 = 0.1;
/// What the executor process itself needs, in MB.
pub const EXECUTOR_MEM: f64 = 32.0;

/// Scalars in offers are decimals; compare them with a little slack.
const EPSILON: f64 = 1e-6;

/// What each task needs and which executor runs it.
pub struct TaskPlan {
    executor: ExecutorInfo,
    cpus: f64,
    mem: f64,
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
        uri.set_output_file("executor".into());
        command.uris.push(uri);
        command.set_value("./executor".into());
        command.set_shell(true);
        let mut executor = ExecutorInfo::new();
        executor
            .executor_id
            .mut_or_insert_default()
            .set_value(EXECUTOR_ID.into());
        executor.set_name("Tutorial executor (Rust)".into());
        executor.command = Some(command).into();
        executor.resources = vec![
            scalar_resource("cpus", EXECUTOR_CPUS, None),
            scalar_resource("mem", EXECUTOR_MEM, None),
        ];
        TaskPlan {
            executor,
            cpus,
            mem,
        }
    }

    /// How many tasks (at most `wanted`) fit in this offer.
    pub fn fit(&self, offer: &Offer, wanted: usize) -> usize {
        let mut cpus = scalar(&offer.resources, "cpus");
        let mut mem = scalar(&offer.resources, "mem");
        if !self.executor_running(offer) {
            cpus -= EXECUTOR_CPUS;
            mem -= EXECUTOR_MEM;
        }
        let mut count = 0;
        while count < wanted && cpus + EPSILON >= self.cpus && mem + EPSILON >= self.mem {
            cpus -= self.cpus;
            mem -= self.mem;
            count += 1;
        }
        count
    }

    fn executor_running(&self, offer: &Offer) -> bool {
        offer
            .executor_ids
            .iter()
            .any(|id| id.value() == EXECUTOR_ID)
    }

    /// One task on this offer's agent.
    pub fn task(&self, offer: &Offer, task_id: &str, data: Vec<u8>) -> TaskInfo {
        let role = offer
            .resources
            .first()
            .and_then(|r| r.allocation_info.as_ref())
            .map(|a| a.role());
        let mut task = TaskInfo::new();
        task.set_name(format!("task {task_id}"));
        task.task_id
            .mut_or_insert_default()
            .set_value(task_id.to_string());
        task.agent_id = offer.agent_id.clone();
        task.resources = vec![
            scalar_resource("cpus", self.cpus, role),
            scalar_resource("mem", self.mem, role),
        ];
        let mut executor = self.executor.clone();
        for resource in &mut executor.resources {
            if let Some(role) = role {
                resource
                    .allocation_info
                    .mut_or_insert_default()
                    .set_role(role.to_string());
            }
        }
        task.executor = Some(executor).into();
        task.set_data(data);
        task
    }
}

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

/// The total of a scalar resource (`cpus`, `mem`, `disk`) in a list.
pub fn scalar(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name() == name && r.type_() == value::Type::SCALAR)
        .map(|r| r.scalar.value())
        .sum()
}

/// An offer's resources in a line: `cpus 2, mem 1024, ports [31000-32000]`.
pub fn describe_resources(resources: &[Resource]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for resource in resources {
        let text = match resource.type_() {
            value::Type::SCALAR => format!("{}", resource.scalar.value()),
            value::Type::RANGES => {
                let ranges: Vec<String> = resource
                    .ranges
                    .range
                    .iter()
                    .map(|r| format!("{}-{}", r.begin(), r.end()))
                    .collect();
                format!("[{}]", ranges.join(","))
            }
            value::Type::SET => format!("{{{}}}", resource.set.item.join(",")),
            value::Type::TEXT => "(text)".to_string(),
        };
        parts.push(format!("{} {text}", resource.name()));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let plan = TaskPlan::new("http://server/executor", 1.0, 128.0);
        // 2 cpus minus the executor's 0.1 leave room for one 1-cpu task.
        assert_eq!(plan.fit(&offer(2.0, 1024.0, false), usize::MAX), 1);
        assert_eq!(plan.fit(&offer(2.0, 1024.0, true), usize::MAX), 2);
    }

    #[test]
    fn memory_and_the_wanted_count_also_limit_tasks() {
        let plan = TaskPlan::new("http://server/executor", 0.25, 128.0);
        assert_eq!(plan.fit(&offer(2.0, 300.0, true), usize::MAX), 2);
        assert_eq!(plan.fit(&offer(2.0, 1024.0, true), 3), 3);
        assert_eq!(plan.fit(&offer(0.2, 1024.0, true), usize::MAX), 0);
    }

    #[test]
    fn tasks_use_the_offers_role_and_agent() {
        let plan = TaskPlan::new("http://server/executor", 1.0, 128.0);
        let task = plan.task(&offer(2.0, 1024.0, false), "7", b"data".to_vec());
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
    fn offers_are_described_in_one_line() {
        let mut resources = offer(2.0, 1024.0, false).resources;
        let mut ports = Resource::new();
        ports.set_name("ports".into());
        ports.set_type(value::Type::RANGES);
        let mut range = value::Range::new();
        range.set_begin(31000);
        range.set_end(32000);
        ports.ranges.mut_or_insert_default().range.push(range);
        resources.push(ports);
        assert_eq!(
            describe_resources(&resources),
            "cpus 2, mem 1024, ports [31000-32000]"
        );
    }
}
