//! A test acting as a scheduler itself, through the library's
//! `MasterConnection`: what the `scheduler` binary's loop does, minus
//! Ctrl+C and everything a test does not need.

use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::http_api::{ApiError, Endpoint};
use mesos_tutorial::proto::mesos::{FrameworkInfo, Offer, TaskInfo};
use mesos_tutorial::proto::scheduler::Event;
use mesos_tutorial::scheduler::master::{scheduler_url, EventError, MasterConnection};
use mesos_tutorial::scheduler::tasks::{describe, TaskPlan};
use mesos_tutorial::scheduler::Input;
use std::net::SocketAddr;

/// Subscribes to the master at `master` as `framework`, in protobuf.
pub fn subscribe(
    master: SocketAddr,
    framework: FrameworkInfo,
) -> Result<MasterConnection, ApiError> {
    let endpoint = Endpoint::new(&scheduler_url(&master.to_string()), ContentType::Protobuf);
    MasterConnection::subscribe(endpoint, framework)
}

/// The next event on the subscription (no Ctrl+C reaches a test).
pub fn next_event(master: &MasterConnection) -> Result<Event, EventError> {
    loop {
        if let Input::Event(event) = master.next_input()? {
            return Ok(event);
        }
    }
}

/// One task with this id and data, cut from the offer by `plan`, as the
/// scheduler's steps cut theirs.
pub fn one_task(plan: &mut TaskPlan, offer: &Offer, task_id: &str, data: Vec<u8>) -> TaskInfo {
    let mut task = plan
        .tasks(offer, 1)
        .pop()
        .unwrap_or_else(|| panic!("task {task_id} does not fit the offer: {offer:?}"));
    describe(&mut task, task_id, data);
    task
}
