//! Task groups, which this executor refuses.
//!
//! *A reader may skip this file.*
//!
//! Mesos's default executor runs task groups (`LAUNCH_GROUP`, pods of
//! tasks that start and end together). Ours runs single tasks; an agent
//! sends it a group only if a scheduler asks for one, and then each task
//! of the group must still end with a status update, or it would stay
//! staging for ever. So the executor reads the group's tasks to fail each.

use super::client::AgentClient;
use crate::proto::executor::Event;
use crate::proto::mesos::{TaskInfo, TaskState};
use protobuf::{Message, UnknownValueRef};

/// The tasks of a `LAUNCH_GROUP` event. Our `executor.proto` leaves out
/// `Event.launch_group` (field 8), since we never launch groups, so the
/// group arrives as an unknown field. It holds a `TaskGroupInfo`, whose
/// only field is `repeated TaskInfo tasks = 1`; we read the tasks from it
/// by hand to fail each of them properly.
pub fn tasks(event: &Event) -> Vec<TaskInfo> {
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

/// `LAUNCH_GROUP`: task groups are for Mesos's default executor; we fail
/// each task of the group so the scheduler hears about it.
pub fn refuse(agent: &AgentClient, event: &Event) {
    let message = "this executor runs single tasks (LAUNCH), not task groups (LAUNCH_GROUP)";
    for task in tasks(event) {
        log::warn!("Task {} failed: {message}", task.task_id.value());
        agent.launched(&task);
        agent.update(&task.task_id, TaskState::TASK_FAILED, Some(message));
    }
}
