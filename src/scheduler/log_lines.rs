//! How the scheduler writes events in its log: one line each, as the Go
//! tutorial does.
//!
//! *A reader may skip this file.*

use crate::proto::format_ranges;
use crate::proto::is_terminal;
use crate::proto::mesos::{value, Offer, Resource, TaskState, TaskStatus};
use crate::proto::scheduler::event;

/// The lines are the event loop's, so they carry its name.
const TARGET: &str = "mesos_tutorial::scheduler";

/// `count` of `noun`, in the plural unless there is one: `1 task`,
/// `0 tasks`, `3 tasks`.
pub fn counted(count: usize, noun: &str) -> String {
    match count {
        1 => format!("1 {noun}"),
        _ => format!("{count} {noun}s"),
    }
}

/// `Received offer … from agent … (host): cpus 2, mem 1024, …`.
pub(super) fn offer(offer: &Offer) {
    let id = offer.id.value();
    let agent = offer.agent_id.value();
    let host = offer.hostname();
    let resources = describe_resources(&offer.resources);
    log::info!(
        target: TARGET,
        "Received offer {id} from agent {agent} ({host}): {resources}"
    );
}

/// A `FAILURE`: an executor that exited, or an agent lost.
pub(super) fn failure(failure: &event::Failure) {
    let agent = failure.agent_id.value();
    if failure.executor_id.is_some() {
        let executor = failure.executor_id.value();
        let status = failure.status();
        log::warn!(
            target: TARGET,
            "Executor {executor} on agent {agent} exited with status {status}"
        );
    } else {
        log::warn!(target: TARGET, "Agent {agent} was lost");
    }
}

/// One line per update; a task that ended other than finished is a warning.
pub(super) fn update(status: &TaskStatus) {
    let task = status.task_id.value();
    let state = status.state();
    let message = status.message();
    let line = match message {
        "" => format!("task {task} is in state {state:?}"),
        _ => format!("task {task} is in state {state:?}: {message}"),
    };
    if state == TaskState::TASK_FINISHED || !is_terminal(state) {
        log::info!(target: TARGET, "{line}");
    } else {
        log::warn!(target: TARGET, "{line}");
    }
}

/// An offer's resources in a line: `cpus 2, mem 1024, ports [31000-32000]`.
pub fn describe_resources(resources: &[Resource]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for resource in resources {
        let text = match resource.type_() {
            value::Type::SCALAR => format!("{}", resource.scalar.value()),
            value::Type::RANGES => format_ranges(&resource.ranges, ","),
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

    #[test]
    fn one_of_a_thing_is_singular_and_any_other_count_plural() {
        assert_eq!(counted(0, "task"), "0 tasks");
        assert_eq!(counted(1, "task"), "1 task");
        assert_eq!(counted(2, "image"), "2 images");
    }

    fn scalar_resource(name: &str, amount: f64) -> Resource {
        let mut resource = Resource::new();
        resource.set_name(name.to_string());
        resource.set_type(value::Type::SCALAR);
        resource.scalar.mut_or_insert_default().set_value(amount);
        resource
    }

    #[test]
    fn offers_are_described_in_one_line() {
        let mut resources = vec![scalar_resource("cpus", 2.0), scalar_resource("mem", 1024.0)];
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
