//! Offers and allocation: the allocator offers each agent's free resources
//! to one framework at a time; declined resources come back with a filter; an
//! accepted offer's tasks are checked and launched.

use super::super::resources::Resources;
use super::super::State;
use super::LOG_TARGET;
use super::{is_terminal, OutstandingOffer, Report, Task};
use crate::proto::mesos::{task_status, Offer, TaskInfo, TaskState};
use crate::proto::scheduler::{call, event, Event};
use std::time::{Duration, Instant};

/// Mesos compares a new task's ExecutorInfo with the running executor's;
/// the framework id may be filled in by the master, so it is not compared.
fn same_executor(
    a: &crate::proto::mesos::ExecutorInfo,
    b: &crate::proto::mesos::ExecutorInfo,
) -> bool {
    let mut a = a.clone();
    let mut b = b.clone();
    a.framework_id.clear();
    b.framework_id.clear();
    a == b
}

impl State {
    /// The allocator: offers each active agent's free resources to one
    /// connected, unsuppressed framework that has not declined them. One
    /// offer per agent at a time; an agent that is deactivated (draining,
    /// say) is offered to nobody.
    pub(in crate::local) fn allocate(&mut self) {
        self.master.last_allocation = Instant::now();
        for agent in 0..self.agents.len() {
            let record = &self.master.agents[agent];
            if !record.free.is_empty() && !record.deactivated {
                self.offer_agent(agent);
            }
        }
    }

    fn offer_agent(&mut self, agent: usize) {
        let now = Instant::now();
        let free = self.master.agents[agent].free.clone();
        let mut candidates: Vec<&String> = self.master.frameworks.keys().collect();
        candidates.sort();
        let chosen = candidates.into_iter().find(|id| {
            let framework = &self.master.frameworks[*id];
            framework.events.is_some()
                && !framework.suppressed
                && !framework
                    .filters
                    .iter()
                    .any(|(filtered_agent, filtered, until)| {
                        *filtered_agent == agent && *until > now && filtered.contains(&free)
                    })
        });
        let Some(framework_id) = chosen.cloned() else {
            return;
        };
        let offer_id = self.ids.next("O");
        let framework = &self.master.frameworks[&framework_id];
        let mut offer = Offer::new();
        offer.id.mut_or_insert_default().set_value(offer_id.clone());
        offer
            .framework_id
            .mut_or_insert_default()
            .set_value(framework_id.clone());
        let node = &self.agents[agent];
        offer
            .agent_id
            .mut_or_insert_default()
            .set_value(node.id.clone());
        offer.set_hostname(node.address.ip().to_string());
        let role = framework.role();
        offer.resources = free.to_protos(Some(&role));
        offer.allocation_info.mut_or_insert_default().set_role(role);
        offer.executor_ids = node.executor_ids(&framework_id);
        self.master.agents[agent].free = Resources::default();
        self.master.offers.insert(
            offer_id.clone(),
            OutstandingOffer {
                framework_id: framework_id.clone(),
                agent,
                resources: free.clone(),
            },
        );
        log::info!(
            target: LOG_TARGET,
            "Offering {free} to framework {framework_id} (offer {offer_id})"
        );
        let mut event = Event::new();
        event.set_type(event::Type::OFFERS);
        event.offers.mut_or_insert_default().offers.push(offer);
        self.send_to_framework(&framework_id, event);
    }

    /// Returns offers to the free pool, declining them for `refuse_seconds`.
    pub(super) fn recover_offers(
        &mut self,
        framework_id: &str,
        offer_ids: &[&str],
        refuse_seconds: f64,
    ) {
        for id in offer_ids {
            match self.master.offers.get(*id) {
                Some(offer) if offer.framework_id == framework_id => {
                    let offer = self.master.offers.remove(*id).expect("just looked up");
                    self.decline(framework_id, offer.agent, offer.resources, refuse_seconds);
                }
                _ => {
                    log::debug!(
                        target: LOG_TARGET,
                        "Framework {framework_id} gave back unknown offer {id}"
                    )
                }
            }
        }
    }

    fn decline(
        &mut self,
        framework_id: &str,
        agent: usize,
        resources: Resources,
        refuse_seconds: f64,
    ) {
        if resources.is_empty() {
            return;
        }
        // As in Mesos: a negative value means the default, zero means no
        // filter, and a filter lasts at most a year.
        let refuse = if refuse_seconds < 0.0 || refuse_seconds.is_nan() {
            5.0
        } else {
            refuse_seconds
        };
        if refuse > 0.0 {
            let until = Instant::now() + Duration::from_secs_f64(refuse.min(365.0 * 86400.0));
            if let Some(framework) = self.master.frameworks.get_mut(framework_id) {
                framework
                    .filters
                    .retain(|(_, _, until)| *until > Instant::now());
                framework.filters.push((agent, resources.clone(), until));
            }
        }
        self.master.agents[agent].free.add(&resources);
    }

    /// `ACCEPT`: launches the tasks of `LAUNCH` operations from the offers.
    pub(super) fn accept(&mut self, framework_id: &str, accept: &call::Accept) {
        let tasks: Vec<TaskInfo> = accept
            .operations
            .iter()
            .filter(|op| op.type_() == crate::proto::mesos::offer::operation::Type::LAUNCH)
            .flat_map(|op| op.launch.task_infos.iter().cloned())
            .collect();
        let ids: Vec<&str> = accept.offer_ids.iter().map(|id| id.value()).collect();
        let agent = match self.offers_agent(framework_id, &ids) {
            Ok(agent) => agent,
            Err(message) => {
                self.recover_offers(framework_id, &ids, 0.0);
                return self.drop_tasks(framework_id, &tasks, &message);
            }
        };
        let mut remaining = Resources::default();
        for id in &ids {
            let offer = self.master.offers.remove(*id).expect("validated above");
            remaining.add(&offer.resources);
        }
        for task in tasks {
            match self.validate_task(framework_id, agent, &task, &remaining) {
                Ok(needed) => {
                    remaining
                        .subtract(&needed)
                        .expect("validate_task checked that the task fits");
                    self.launch_task(framework_id, agent, task);
                }
                Err(message) => {
                    log::info!(
                        target: LOG_TARGET,
                        "Refusing task {} of framework {framework_id}: {message}",
                        task.task_id.value()
                    );
                    let reason = task_status::Reason::REASON_TASK_INVALID;
                    let report = Report {
                        state: TaskState::TASK_ERROR,
                        reason,
                        message: &message,
                    };
                    let task_id = task.task_id.value();
                    self.master_update(framework_id, task_id, task.agent_id.value(), report);
                }
            }
        }
        let refuse_seconds = accept.filters.refuse_seconds();
        self.decline(framework_id, agent, remaining, refuse_seconds);
    }

    /// The agent whose offers an `ACCEPT` uses, or why they cannot be
    /// used: each must be outstanding and the framework's, and all of one
    /// agent (Mesos: "Aggregated offers must belong to one single agent").
    fn offers_agent(&self, framework_id: &str, ids: &[&str]) -> Result<usize, String> {
        let mut agents = Vec::new();
        for id in ids {
            match self.master.offers.get(*id) {
                Some(offer) if offer.framework_id == framework_id => agents.push(offer.agent),
                _ => return Err(format!("Offer {id} is no longer valid")),
            }
        }
        match agents.first() {
            None => Err("No offers were given".to_string()),
            Some(first) if agents.iter().any(|agent| agent != first) => {
                Err("Aggregated offers must belong to one single agent".to_string())
            }
            Some(first) => Ok(*first),
        }
    }

    /// One bad offer invalidates the whole `ACCEPT`. Its tasks never
    /// started, which Mesos reports as TASK_DROPPED (TASK_LOST to frameworks
    /// that are not partition-aware).
    fn drop_tasks(&mut self, framework_id: &str, tasks: &[TaskInfo], message: &str) {
        let state = if self.master.frameworks[framework_id].partition_aware() {
            TaskState::TASK_DROPPED
        } else {
            TaskState::TASK_LOST
        };
        for task in tasks {
            let reason = task_status::Reason::REASON_INVALID_OFFERS;
            let report = Report {
                state,
                reason,
                message,
            };
            let agent_id = task.agent_id.value();
            self.master_update(framework_id, task.task_id.value(), agent_id, report);
        }
    }

    /// The resources a task needs from the offer (its own, plus its
    /// executor's if that executor is not running yet), or why it is invalid.
    fn validate_task(
        &self,
        framework_id: &str,
        agent: usize,
        task: &TaskInfo,
        available: &Resources,
    ) -> Result<Resources, String> {
        let task_id = task.task_id.value();
        if task_id.is_empty() {
            return Err("Task has an empty TaskID".into());
        }
        let key = (framework_id.to_string(), task_id.to_string());
        if matches!(self.master.tasks.get(&key), Some(t) if !is_terminal(t.state)) {
            return Err(format!("Task has duplicate ID: {task_id}"));
        }
        if task.agent_id.value() != self.agents[agent].id {
            return Err(format!(
                "Task uses an unknown agent {}",
                task.agent_id.value()
            ));
        }
        let Some(executor) = task.executor.as_ref() else {
            return Err("The embedded cluster runs tasks with an ExecutorInfo only (command tasks are not supported)".into());
        };
        if executor.framework_id.is_some() && executor.framework_id.value() != framework_id {
            return Err("ExecutorInfo has a framework_id of another framework".into());
        }
        if executor.command.is_none() {
            return Err("ExecutorInfo has no command".into());
        }
        let mut needed = Resources::from_protos(&task.resources)
            .map_err(|e| format!("Task has invalid resources: {e}"))?;
        needed.add(&self.executor_needs(framework_id, agent, executor)?);
        if !available.contains(&needed) {
            return Err(format!(
                "Task uses more resources ({needed}) than remain in the offers ({available})"
            ));
        }
        Ok(needed)
    }

    /// What a task's executor adds to the task's resources: its own if it
    /// is not running yet, nothing if it is (and is the same executor).
    fn executor_needs(
        &self,
        framework_id: &str,
        agent: usize,
        executor: &crate::proto::mesos::ExecutorInfo,
    ) -> Result<Resources, String> {
        let executor_id = executor.executor_id.value();
        let resources = Resources::from_protos(&executor.resources)
            .map_err(|e| format!("Executor has invalid resources: {e}"))?;
        match self.agents[agent].executor_info(framework_id, executor_id) {
            Some(running) if !same_executor(running, executor) => Err(format!(
                "ExecutorInfo for executor '{executor_id}' differs from the one already running"
            )),
            Some(_) => Ok(Resources::default()),
            None if resources.scalar("cpus") <= 0.0 || resources.scalar("mem") <= 0.0 => Err(
                format!("Executor '{executor_id}' must declare cpus and mem resources of its own"),
            ),
            None => Ok(resources),
        }
    }

    fn launch_task(&mut self, framework_id: &str, agent: usize, task: TaskInfo) {
        let key = (framework_id.to_string(), task.task_id.value().to_string());
        // Mesos lets a framework reuse the id of a task that ended
        // (`TaskID` in mesos.proto); the new task replaces the old one's
        // record, which leaves the list of ended tasks.
        if self.master.tasks.contains_key(&key) {
            if let Some(ended) = self.master.completed.get_mut(framework_id) {
                ended.retain(|id| *id != key.1);
            }
        }
        let resources = Resources::from_protos(&task.resources).unwrap_or_default();
        let role = self.master.frameworks[framework_id].role();
        self.master.tasks.insert(
            key,
            Task {
                agent,
                state: TaskState::TASK_STAGING,
                resources,
                last_status: None,
                record: super::view::launched(&task, &role, &self.agents[agent].id),
            },
        );
        let info = self.master.frameworks[framework_id].info.clone();
        self.agent_launch_task(agent, framework_id, &info, task);
    }

    /// Takes back every offer the framework holds, without a filter: the
    /// scheduler that got them is gone, or was replaced by a new one.
    pub(super) fn recover_all_offers(&mut self, framework_id: &str) {
        let offers: Vec<String> = self
            .master
            .offers
            .iter()
            .filter(|(_, o)| o.framework_id == framework_id)
            .map(|(id, _)| id.clone())
            .collect();
        let offers: Vec<&str> = offers.iter().map(String::as_str).collect();
        self.recover_offers(framework_id, &offers, 0.0);
    }
}
