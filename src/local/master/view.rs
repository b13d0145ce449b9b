//! The master's state as `/master/state` shows it: a snapshot taken under
//! the lock, written out as JSON by `state.rs` after the lock is released.
//!
//! *Plumbing: a reader may skip this file.*

use super::super::state::{self, AgentView, ClusterView, FrameworkView, OfferView, TaskView};
use super::super::State;
use super::{is_terminal, now_seconds, Framework};
use crate::local::resources::Resources;
use crate::proto::mesos::{TaskInfo, TaskState, TaskStatus};
use std::sync::Arc;

/// How many removed frameworks the master shows, as Mesos's
/// `--max_completed_frameworks` (default 50).
pub(in crate::local) const MAX_COMPLETED_FRAMEWORKS: usize = 50;

/// When a framework subscribed, subscribed again, and last disconnected,
/// in seconds since the epoch, as `/master/state` shows them.
#[derive(Default)]
pub(in crate::local) struct Times {
    registered: f64,
    reregistered: Option<f64>,
    /// `0` while the framework is connected.
    unregistered: f64,
}

impl Times {
    pub(in crate::local) fn subscribed(&mut self) {
        let now = now_seconds();
        if self.registered == 0.0 {
            self.registered = now;
        } else {
            self.reregistered = Some(now);
        }
        self.unregistered = 0.0;
    }

    pub(in crate::local) fn disconnected(&mut self) {
        self.unregistered = now_seconds();
    }
}

/// What the master records of a task it launches, for the state endpoint.
pub(in crate::local) fn launched(task: &TaskInfo, role: &str, agent_id: &str) -> TaskView {
    TaskView {
        id: task.task_id.value().to_string(),
        agent_id: agent_id.to_string(),
        name: task.name().to_string(),
        executor_id: task.executor.executor_id.value().to_string(),
        state: TaskState::TASK_STAGING,
        resources: Resources::from_protos(&task.resources).unwrap_or_default(),
        role: role.to_string(),
        statuses: Vec::new(),
    }
}

/// Records a status update's state and time; an update without a time
/// gets the master's.
pub(in crate::local) fn record_status(task: &mut TaskView, status: &TaskStatus) {
    let time = if status.has_timestamp() {
        status.timestamp()
    } else {
        now_seconds()
    };
    task.statuses.push((status.state(), time));
}

impl State {
    /// The whole cluster, for `/master/state`.
    pub(in crate::local) fn view(&self) -> ClusterView {
        let master = &self.master;
        let mut frameworks: Vec<FrameworkView> = master
            .frameworks
            .iter()
            .map(|(id, framework)| self.framework_view(id, framework))
            .collect();
        frameworks.sort_by(|a, b| a.registered_time.total_cmp(&b.registered_time));
        // An agent marked gone has left the cluster.
        let agents = (0..self.agents.len())
            .filter(|agent| !master.agents[*agent].gone)
            .map(|agent| self.agent_view(agent))
            .collect();
        let max_tasks = self.config.max_completed_tasks_per_framework;
        ClusterView {
            master_id: master.id.clone(),
            master_address: master.address,
            start_time: master.start_time,
            flags: vec![
                (
                    "max_completed_frameworks",
                    MAX_COMPLETED_FRAMEWORKS.to_string(),
                ),
                ("max_completed_tasks_per_framework", max_tasks.to_string()),
                ("port", master.address.port().to_string()),
            ],
            agents,
            frameworks,
            completed_frameworks: master.completed_frameworks.iter().cloned().collect(),
        }
    }

    /// One agent: what it has, what its offers and its tasks hold, and
    /// whether it drains.
    pub(super) fn agent_view(&self, agent: usize) -> AgentView {
        let master = &self.master;
        let record = &master.agents[agent];
        let node = &self.agents[agent];
        let mut offered = Resources::default();
        for offer in master.offers.values().filter(|o| o.agent == agent) {
            offered.add(&offer.resources);
        }
        // Whatever is neither free nor offered is held by tasks and
        // executors.
        let mut used = node.total.clone();
        let held = used
            .subtract(&record.free)
            .and_then(|()| used.subtract(&offered));
        if held.is_err() {
            used = Resources::default();
            for task in master.tasks.values().filter(|t| t.agent == agent) {
                used.add(&task.resources);
            }
        }
        AgentView {
            id: node.id.clone(),
            address: node.address,
            registered_time: master.start_time,
            total: node.total.clone(),
            used,
            offered,
            deactivated: record.deactivated,
            drain: record.drain.clone(),
            drain_start_time: record.drain_start_time,
        }
    }

    fn framework_view(&self, framework_id: &str, framework: &Framework) -> FrameworkView {
        let mut offers: Vec<OfferView> = self
            .master
            .offers
            .iter()
            .filter(|(_, offer)| offer.framework_id == framework_id)
            .map(|(id, offer)| OfferView {
                id: id.clone(),
                agent_id: self.agents[offer.agent].id.clone(),
                role: framework.role(),
                resources: offer.resources.clone(),
            })
            .collect();
        offers.sort_by(|a, b| a.id.cmp(&b.id));
        let mut offered = Resources::default();
        offers
            .iter()
            .for_each(|offer| offered.add(&offer.resources));
        let (tasks, completed_tasks, mut used) = self.tasks_view(framework_id);
        let mut executors = Vec::new();
        for agent in &self.agents {
            for id in agent.executor_ids(framework_id) {
                if let Some(info) = agent.executor_info(framework_id, id.value()) {
                    executors.push((info.clone(), agent.id.clone()));
                }
            }
        }
        for (executor, _) in &executors {
            used.add(&Resources::from_protos(&executor.resources).unwrap_or_default());
        }
        let connected = framework.events.is_some();
        FrameworkView {
            info: framework.info.clone(),
            active: connected,
            connected,
            registered_time: framework.times.registered,
            reregistered_time: framework.times.reregistered,
            unregistered_time: framework.times.unregistered,
            used,
            offered,
            offers,
            tasks,
            completed_tasks,
            executors,
        }
    }

    /// A framework's tasks that have not ended (oldest first), its ended
    /// tasks (in the order they ended), and what the former hold.
    fn tasks_view(&self, framework_id: &str) -> (Vec<TaskView>, Vec<TaskView>, Resources) {
        let master = &self.master;
        let record = |id: &str| {
            let task = master
                .tasks
                .get(&(framework_id.to_string(), id.to_string()))?;
            let mut view = task.record.clone();
            view.state = task.state;
            Some(view)
        };
        let mut used = Resources::default();
        let mut tasks = Vec::new();
        for ((fw, id), task) in &master.tasks {
            if fw == framework_id && !is_terminal(task.state) {
                used.add(&task.resources);
                tasks.extend(record(id));
            }
        }
        // Oldest first: by the first update, then by id.
        let first = |task: &TaskView| task.statuses.first().map_or(f64::MAX, |s| s.1);
        tasks.sort_by(|a, b| first(a).total_cmp(&first(b)).then(a.id.cmp(&b.id)));
        let completed = master
            .completed
            .get(framework_id)
            .map(|ids| ids.iter().filter_map(|id| record(id)).collect())
            .unwrap_or_default();
        (tasks, completed, used)
    }

    /// Keeps a framework that is being removed among the completed ones,
    /// as Mesos does: inactive, its tasks that had not ended shown as
    /// `TASK_KILLED` among its completed tasks.
    pub(in crate::local) fn remember_removed_framework(&mut self, framework_id: &str) {
        let Some(framework) = self.master.frameworks.get(framework_id) else {
            return;
        };
        let mut view = self.framework_view(framework_id, framework);
        let now = now_seconds();
        for mut task in std::mem::take(&mut view.tasks) {
            task.state = TaskState::TASK_KILLED;
            task.statuses.push((TaskState::TASK_KILLED, now));
            view.completed_tasks.push(task);
        }
        view.active = false;
        view.connected = false;
        view.offers.clear();
        view.executors.clear();
        view.used = Resources::default();
        view.offered = Resources::default();
        if view.unregistered_time == 0.0 {
            view.unregistered_time = now;
        }
        let json = state::render_framework(&view);
        let completed = &mut self.master.completed_frameworks;
        completed.push_back(Arc::from(json));
        while completed.len() > MAX_COMPLETED_FRAMEWORKS {
            completed.pop_front();
        }
    }
}
