//! What the embedded master shows at `/master/state` and `/version`, as Mesos
//! 1.11 writes them.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Tools and the web UI of a real Mesos read a master's state from
//! `GET /master/state` (also served as `/state` and `/state.json`): one JSON
//! object with the agents, the frameworks, their offers and their tasks. The
//! embedded master takes a [`ClusterView`] of its state while it holds the
//! lock, and this file writes it out as JSON after the lock is released, so
//! a large state never holds up the scheduler's calls.
//!
//! Field names, and which fields appear, are Mesos's: the master's
//! `src/master/readonly_handler.cpp` (the state, frameworks, agents) and
//! `src/common/http.cpp` (tasks, statuses, offers, resources) at tag 1.11.0.
//! `tests/data/mesos-1.11-state-fields.txt` lists them, and a test holds this
//! file to that list. What the embedded cluster does not have (git build
//! facts, labels, reservations, health checks) is left out, as Mesos leaves
//! out what is not set, rather than made up.
//!
//! Two of Mesos's choices a reader of the JSON meets:
//! - resources are an object keyed by resource name: scalars as numbers
//!   (`cpus`, `gpus`, `mem` and `disk` are always there, `0` when absent),
//!   ranges and sets as Mesos prints them, `"[31000-32000]"`, `"{a, b}"`;
//! - a framework with the `MULTI_ROLE` capability shows `roles`, any other
//!   framework the single `role` it registered with.

use super::json_object::Object;
use super::resources::Resources;
use crate::json::print_string;
use crate::proto::format_ranges;
use crate::proto::mesos::framework_info::capability::Type as Capability;
use crate::proto::mesos::{value, DrainInfo, ExecutorInfo, FrameworkInfo, TaskState};
use std::net::SocketAddr;
use std::sync::Arc;

/// The Mesos release whose master API the embedded cluster speaks.
pub const MESOS_VERSION: &str = "1.11.0";

/// The embedded cluster at one moment: what `/master/state` shows.
pub(super) struct ClusterView {
    pub(super) master_id: String,
    pub(super) master_address: SocketAddr,
    /// Seconds since the Unix epoch.
    pub(super) start_time: f64,
    /// The master's flags that the embedded cluster has, by Mesos's names.
    pub(super) flags: Vec<(&'static str, String)>,
    /// Every agent, in the order they started.
    pub(super) agents: Vec<AgentView>,
    pub(super) frameworks: Vec<FrameworkView>,
    /// Frameworks that were removed, oldest first, each written out as JSON
    /// when it was removed (see [`render_framework`]).
    pub(super) completed_frameworks: Vec<Arc<str>>,
}

/// An agent.
pub(super) struct AgentView {
    pub(super) id: String,
    pub(super) address: SocketAddr,
    pub(super) registered_time: f64,
    pub(super) total: Resources,
    /// What tasks and executors hold.
    pub(super) used: Resources,
    /// What sits in outstanding offers.
    pub(super) offered: Resources,
    /// Whether the operator took it out of offers.
    pub(super) deactivated: bool,
    /// Whether, and how far, the operator drains it.
    pub(super) drain: Option<DrainInfo>,
    /// When the drain started, in seconds since the epoch.
    pub(super) drain_start_time: Option<f64>,
}

/// A framework, with its offers and tasks.
pub(super) struct FrameworkView {
    /// What the framework subscribed with; the id is filled in.
    pub(super) info: FrameworkInfo,
    pub(super) active: bool,
    pub(super) connected: bool,
    pub(super) registered_time: f64,
    /// When it last subscribed again, if it did.
    pub(super) reregistered_time: Option<f64>,
    /// When its scheduler went away, `0` while it is connected.
    pub(super) unregistered_time: f64,
    pub(super) used: Resources,
    pub(super) offered: Resources,
    pub(super) offers: Vec<OfferView>,
    /// Tasks that have not ended, oldest first.
    pub(super) tasks: Vec<TaskView>,
    /// Ended tasks in the order they ended; Mesos keeps the last
    /// `--max_completed_tasks_per_framework`.
    pub(super) completed_tasks: Vec<TaskView>,
    /// Each executor, with the id of the agent it runs on.
    pub(super) executors: Vec<(ExecutorInfo, String)>,
}

/// An outstanding offer of an agent.
pub(super) struct OfferView {
    pub(super) id: String,
    pub(super) agent_id: String,
    /// The role the resources are offered to.
    pub(super) role: String,
    pub(super) resources: Resources,
}

/// A task as the master records it.
#[derive(Clone, Debug)]
pub(super) struct TaskView {
    pub(super) id: String,
    /// The agent it was launched on.
    pub(super) agent_id: String,
    pub(super) name: String,
    pub(super) executor_id: String,
    pub(super) state: TaskState,
    pub(super) resources: Resources,
    /// The role its resources were allocated to.
    pub(super) role: String,
    /// Every state the task reported, with its time (seconds since the
    /// epoch), oldest first. Mesos keeps each status update's state and
    /// timestamp, without the data the executor attached.
    pub(super) statuses: Vec<(TaskState, f64)>,
}

/// `GET /version`, as Mesos answers it. The build facts describe a build of
/// Mesos, which the embedded cluster is not: `build_user` names this crate
/// instead, and the date and time stay empty.
pub(super) fn render_version() -> String {
    let mut out = String::new();
    let mut object = Object::open(&mut out);
    object.string("version", MESOS_VERSION);
    version_fields(&mut object);
    object.close();
    out
}

fn version_fields(object: &mut Object<'_>) {
    object.string("build_date", "");
    object.integer("build_time", 0);
    let crate_name = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));
    object.string("build_user", crate_name);
}

/// `GET /master/state`.
pub(super) fn render(view: &ClusterView) -> String {
    // About 400 bytes per task; reserving avoids most regrowth.
    let tasks: usize = view
        .frameworks
        .iter()
        .map(|f| f.tasks.len() + f.completed_tasks.len())
        .sum();
    let completed: usize = view.completed_frameworks.iter().map(|f| f.len()).sum();
    let mut out = String::with_capacity(4096 + 400 * tasks + completed);
    let mut object = Object::open(&mut out);
    object.string("version", MESOS_VERSION);
    version_fields(&mut object);
    object.number("start_time", view.start_time);
    object.number("elected_time", view.start_time);
    object.string("id", &view.master_id);
    let pid = format!("master@{}", view.master_address);
    object.string("pid", &pid);
    object.string("hostname", &view.master_address.ip().to_string());
    let deactivated = view.agents.iter().filter(|a| a.deactivated).count() as u64;
    object.integer("activated_slaves", view.agents.len() as u64 - deactivated);
    object.integer("deactivated_slaves", deactivated);
    object.integer("unreachable_slaves", 0);
    object.string("leader", &pid);
    let mut leader = Object::open(object.key("leader_info"));
    leader.string("id", &view.master_id);
    leader.string("pid", &pid);
    leader.integer("port", u64::from(view.master_address.port()));
    leader.string("hostname", &view.master_address.ip().to_string());
    leader.close();
    let mut flags = Object::open(object.key("flags"));
    for (name, value) in &view.flags {
        flags.string(name, value);
    }
    flags.close();
    object.array("slaves", &view.agents, agent_json);
    object.array("recovered_slaves", [(); 0], |_, _| {});
    object.array("frameworks", &view.frameworks, framework_json);
    object.array(
        "completed_frameworks",
        &view.completed_frameworks,
        |out, json| out.push_str(json),
    );
    // Mesos 1.11 keeps these two, always empty, for older tools.
    object.array("orphan_tasks", [(); 0], |_, _| {});
    object.array("unregistered_frameworks", [(); 0], |_, _| {});
    object.close();
    out
}

/// One framework as JSON; a removed framework is written once, when it is
/// removed, and kept as text.
pub(super) fn render_framework(framework: &FrameworkView) -> String {
    let mut out = String::new();
    framework_json(&mut out, framework);
    out
}

fn agent_json(out: &mut String, agent: &AgentView) {
    let mut object = Object::open(out);
    object.string("id", &agent.id);
    object.string("hostname", &agent.address.ip().to_string());
    object.integer("port", u64::from(agent.address.port()));
    Object::open(object.key("attributes")).close();
    object.string("pid", &format!("slave(1)@{}", agent.address));
    object.number("registered_time", agent.registered_time);
    resources_json(object.key("resources"), &agent.total);
    resources_json(object.key("used_resources"), &agent.used);
    resources_json(object.key("offered_resources"), &agent.offered);
    Object::open(object.key("reserved_resources")).close();
    resources_json(object.key("unreserved_resources"), &agent.total);
    // Mesos's master deactivates an agent that the operator deactivates or
    // drains: it is no longer `active`, and gets no offers.
    object.boolean("active", !agent.deactivated);
    object.boolean("deactivated", agent.deactivated);
    object.string("version", MESOS_VERSION);
    if let Some(drain) = &agent.drain {
        object
            .key("drain_info")
            .push_str(&crate::json::print(drain));
        if let Some(start) = agent.drain_start_time {
            object.number("estimated_drain_start_time_seconds", start);
        }
    }
    object.close();
}

fn framework_json(out: &mut String, framework: &FrameworkView) {
    let info = &framework.info;
    let id = info.id.value();
    let mut object = Object::open(out);
    object.string("id", id);
    object.string("name", info.name());
    resources_json(object.key("used_resources"), &framework.used);
    resources_json(object.key("offered_resources"), &framework.offered);
    object.array("capabilities", &info.capabilities, |out, capability| {
        out.push_str(&crate::json::print(capability))
    });
    object.string("hostname", info.hostname());
    object.string("webui_url", info.webui_url());
    object.boolean("active", framework.active);
    object.boolean("connected", framework.connected);
    object.boolean("recovered", false);
    object.string("user", info.user());
    object.number("failover_timeout", info.failover_timeout());
    object.boolean("checkpoint", info.checkpoint());
    object.number("registered_time", framework.registered_time);
    object.number("unregistered_time", framework.unregistered_time);
    if info.has_principal() {
        object.string("principal", info.principal());
    }
    let mut resources = framework.used.clone();
    resources.add(&framework.offered);
    resources_json(object.key("resources"), &resources);
    if let Some(time) = framework.reregistered_time {
        object.number("reregistered_time", time);
    }
    let multi_role = info
        .capabilities
        .iter()
        .any(|c| c.type_() == Capability::MULTI_ROLE);
    if multi_role {
        object.array("roles", &info.roles, |out, role| print_string(role, out));
    } else {
        object.string("role", info.role());
    }
    let task = |out: &mut String, task: &TaskView| task_json(out, task, id);
    object.array("tasks", &framework.tasks, task);
    object.array("unreachable_tasks", [(); 0], |_, _| {});
    object.array("completed_tasks", &framework.completed_tasks, task);
    object.array("offers", &framework.offers, |out, offer| {
        offer_json(out, offer, id)
    });
    object.array(
        "executors",
        &framework.executors,
        |out, (executor, agent)| executor_json(out, executor, id, agent),
    );
    object.close();
}

fn offer_json(out: &mut String, offer: &OfferView, framework_id: &str) {
    let mut object = Object::open(out);
    object.string("id", &offer.id);
    object.string("framework_id", framework_id);
    let mut allocation = Object::open(object.key("allocation_info"));
    allocation.string("role", &offer.role);
    allocation.close();
    object.string("slave_id", &offer.agent_id);
    resources_json(object.key("resources"), &offer.resources);
    object.close();
}

fn executor_json(out: &mut String, executor: &ExecutorInfo, framework_id: &str, agent_id: &str) {
    let mut object = Object::open(out);
    object.string("executor_id", executor.executor_id.value());
    object.string("name", executor.name());
    object.string("framework_id", framework_id);
    let resources = Resources::from_protos(&executor.resources).unwrap_or_default();
    resources_json(object.key("resources"), &resources);
    object.string("slave_id", agent_id);
    object.close();
}

fn task_json(out: &mut String, task: &TaskView, framework_id: &str) {
    let mut object = Object::open(out);
    object.string("id", &task.id);
    object.string("name", &task.name);
    object.string("framework_id", framework_id);
    object.string("executor_id", &task.executor_id);
    object.string("slave_id", &task.agent_id);
    object.string("state", &state_name(task.state));
    resources_json(object.key("resources"), &task.resources);
    object.string("role", &task.role);
    object.array("statuses", &task.statuses, |out, (state, timestamp)| {
        let mut status = Object::open(out);
        status.string("state", &state_name(*state));
        status.number("timestamp", *timestamp);
        status.close();
    });
    object.close();
}

/// A state's name as Mesos writes it, `TASK_FINISHED`: the generated
/// enum's variants carry the names of `mesos.proto`.
fn state_name(state: TaskState) -> String {
    format!("{state:?}")
}

/// Resources as Mesos's state endpoints write them: one field per name.
fn resources_json(out: &mut String, resources: &Resources) {
    let mut object = Object::open(out);
    let protos = resources.to_protos(None);
    let scalar = |name: &str| {
        protos
            .iter()
            .find(|r| r.name() == name && r.type_() == value::Type::SCALAR)
            .map_or(0.0, |r| r.scalar.value())
    };
    // Mesos writes these four even when the agent has none.
    const ALWAYS: [&str; 4] = ["cpus", "gpus", "mem", "disk"];
    for name in ALWAYS {
        object.number(name, scalar(name));
    }
    for resource in &protos {
        let name = resource.name();
        match resource.type_() {
            value::Type::SCALAR if !ALWAYS.contains(&name) => {
                object.number(name, resource.scalar.value())
            }
            value::Type::RANGES => object.string(name, &format_ranges(&resource.ranges, ", ")),
            value::Type::SET => {
                object.string(name, &format!("{{{}}}", resource.set.item.join(", ")));
            }
            _ => {}
        }
    }
    object.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::framework_info::Capability as CapabilityInfo;
    use protobuf::well_known_types::struct_::{value::Kind, Value};

    fn parse(json: &str) -> Value {
        protobuf_json_mapping::parse_from_str::<Value>(json).expect("valid JSON")
    }

    /// The value at a path of object fields and array indexes, `"a.0.b"`.
    fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
        path.split('.')
            .fold(value, |value, step| match &value.kind {
                Some(Kind::StructValue(object)) => &object.fields[step],
                Some(Kind::ListValue(list)) => &list.values[step.parse::<usize>().unwrap()],
                other => panic!("no {step} in {other:?}"),
            })
    }

    fn text<'a>(value: &'a Value, path: &str) -> &'a str {
        match &at(value, path).kind {
            Some(Kind::StringValue(text)) => text,
            other => panic!("{path} is {other:?}, not a string"),
        }
    }

    fn task(id: &str, state: TaskState, statuses: &[(TaskState, f64)]) -> TaskView {
        TaskView {
            id: id.into(),
            agent_id: "S1".into(),
            name: format!("task {id}"),
            executor_id: "default".into(),
            state,
            resources: Resources::parse("cpus:0.1;mem:32").unwrap(),
            role: "*".into(),
            statuses: statuses.to_vec(),
        }
    }

    fn framework(name: &str, multi_role: bool) -> FrameworkView {
        let mut info = FrameworkInfo::new();
        info.id
            .mut_or_insert_default()
            .set_value(format!("{name}-id"));
        info.set_name(name.into());
        info.set_user("alice".into());
        if multi_role {
            info.roles.push("web".into());
            let mut capability = CapabilityInfo::new();
            capability.set_type(Capability::MULTI_ROLE);
            info.capabilities.push(capability);
        } else {
            info.set_role("batch".into());
        }
        FrameworkView {
            info,
            active: true,
            connected: true,
            registered_time: 1_700_000_000.5,
            reregistered_time: None,
            unregistered_time: 0.0,
            used: Resources::parse("cpus:0.2;mem:64").unwrap(),
            offered: Resources::parse("cpus:1.8;mem:960").unwrap(),
            offers: vec![OfferView {
                id: "O1".into(),
                agent_id: "S1".into(),
                role: "web".into(),
                resources: Resources::parse("cpus:1.8;mem:960").unwrap(),
            }],
            tasks: vec![task(
                "2",
                TaskState::TASK_RUNNING,
                &[(TaskState::TASK_RUNNING, 2.0)],
            )],
            completed_tasks: vec![task(
                "1",
                TaskState::TASK_FINISHED,
                &[
                    (TaskState::TASK_RUNNING, 1.0),
                    (TaskState::TASK_FINISHED, 1.5),
                ],
            )],
            executors: Vec::new(),
        }
    }

    fn cluster(frameworks: Vec<FrameworkView>, completed: Vec<Arc<str>>) -> ClusterView {
        let total = Resources::parse(super::super::DEFAULT_RESOURCES).unwrap();
        ClusterView {
            master_id: "M1".into(),
            master_address: "127.0.0.1:5050".parse().unwrap(),
            start_time: 1_700_000_000.0,
            flags: vec![("max_completed_tasks_per_framework", "1000".into())],
            agents: vec![AgentView {
                id: "S1".into(),
                address: "127.0.0.1:5051".parse().unwrap(),
                registered_time: 1_700_000_000.0,
                used: Resources::default(),
                offered: total.clone(),
                total,
                deactivated: false,
                drain: None,
                drain_start_time: None,
            }],
            frameworks,
            completed_frameworks: completed,
        }
    }

    #[test]
    fn resources_are_one_field_per_name_as_mesos_writes_them() {
        let resources =
            Resources::parse("cpus:2;mem:1000;ports:[31000-32000,33000-33010];disks:{b,a}");
        let mut out = String::new();
        resources_json(&mut out, &resources.unwrap());
        // The four scalars Mesos always writes come first, `0.0` when absent.
        assert_eq!(
            out,
            r#"{"cpus":2.0,"gpus":0.0,"mem":1000.0,"disk":0.0,"ports":"[31000-32000, 33000-33010]","disks":"{a, b}"}"#
        );
    }

    #[test]
    fn the_state_shows_each_framework_with_its_offers_and_tasks() {
        let gone = Arc::from(render_framework(&framework("old", false)));
        let json = render(&cluster(vec![framework("live", true)], vec![gone]));
        let state = parse(&json);
        assert_eq!(text(&state, "version"), MESOS_VERSION);
        assert_eq!(text(&state, "pid"), "master@127.0.0.1:5050");
        assert_eq!(text(&state, "slaves.0.resources.ports"), "[31000-32000]");
        assert_eq!(text(&state, "slaves.0.id"), "S1");
        assert_eq!(text(&state, "frameworks.0.name"), "live");
        assert_eq!(text(&state, "frameworks.0.offers.0.slave_id"), "S1");
        assert_eq!(
            text(&state, "frameworks.0.offers.0.allocation_info.role"),
            "web"
        );
        assert_eq!(text(&state, "frameworks.0.tasks.0.state"), "TASK_RUNNING");
        assert_eq!(text(&state, "frameworks.0.tasks.0.framework_id"), "live-id");
        let finished = "frameworks.0.completed_tasks.0.statuses.1.state";
        assert_eq!(text(&state, finished), "TASK_FINISHED");
        assert_eq!(text(&state, "completed_frameworks.0.name"), "old");
        // The used and the offered add up to what the framework holds.
        let held = at(&state, "frameworks.0.resources.cpus");
        assert_eq!(held.kind, Some(Kind::NumberValue(2.0)));
        assert!(json.contains(r#""registered_time":1700000000.5"#), "{json}");
    }

    #[test]
    fn a_multi_role_framework_shows_roles_and_any_other_its_role() {
        let multi = parse(&render_framework(&framework("multi", true)));
        assert_eq!(text(&multi, "roles.0"), "web");
        assert_eq!(text(&multi, "capabilities.0.type"), "MULTI_ROLE");
        let single = parse(&render_framework(&framework("single", false)));
        assert_eq!(text(&single, "role"), "batch");
        let Some(Kind::StructValue(object)) = &single.kind else {
            panic!("not an object")
        };
        assert!(!object.fields.contains_key("roles"));
    }

    #[test]
    fn names_from_frameworks_are_escaped() {
        let name = "quote \" backslash \\ newline \n </script>";
        let state = parse(&render(&cluster(vec![framework(name, true)], Vec::new())));
        assert_eq!(text(&state, "frameworks.0.name"), name);
    }

    #[test]
    fn the_version_is_the_mesos_release_the_api_follows() {
        let version = parse(&render_version());
        assert_eq!(text(&version, "version"), "1.11.0");
        assert!(text(&version, "build_user").starts_with("mesos-framework-tutorial"));
    }
}
