//! Offers and allocation: the allocator offers the agent's free resources to
//! one framework at a time; declined resources come back with a filter; an
//! accepted offer's tasks are checked and launched.

use super::super::resources::Resources;
use super::super::State;
use super::LOG_TARGET;
use super::{is_terminal, OutstandingOffer, Task};
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
    /// The allocator: offers all free resources to one connected, unsuppressed
    /// framework that has not declined them. One agent, so one offer at a time.
    pub(in crate::local) fn allocate(&mut self) {
        self.master.last_allocation = Instant::now();
        if self.master.free.is_empty() {
            return;
        }
        let now = Instant::now();
        let free = self.master.free.clone();
        let mut candidates: Vec<&String> = self.master.frameworks.keys().collect();
        candidates.sort();
        let chosen = candidates.into_iter().find(|id| {
            let framework = &self.master.frameworks[*id];
            framework.events.is_some()
                && !framework.suppressed
                && !framework
                    .filters
                    .iter()
                    .any(|(filtered, until)| *until > now && filtered.contains(&free))
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
        offer
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agent.id.clone());
        offer.set_hostname(self.agent.address.ip().to_string());
        let role = framework.role();
        offer.resources = free.to_protos(Some(&role));
        offer.allocation_info.mut_or_insert_default().set_role(role);
        offer.executor_ids = self.agent.executor_ids(&framework_id);
        self.master.free = Resources::default();
        self.master.offers.insert(
            offer_id.clone(),
            OutstandingOffer {
                framework_id: framework_id.clone(),
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
        let mut recovered = Resources::default();
        for id in offer_ids {
            match self.master.offers.get(*id) {
                Some(offer) if offer.framework_id == framework_id => {
                    let offer = self.master.offers.remove(*id).expect("just looked up");
                    recovered.add(&offer.resources);
                }
                _ => {
                    log::debug!(
                        target: LOG_TARGET,
                        "Framework {framework_id} gave back unknown offer {id}"
                    )
                }
            }
        }
        self.decline(framework_id, recovered, refuse_seconds);
    }

    fn decline(&mut self, framework_id: &str, resources: Resources, refuse_seconds: f64) {
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
                    .retain(|(_, until)| *until > Instant::now());
                framework.filters.push((resources.clone(), until));
            }
        }
        self.master.free.add(&resources);
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
        let invalid = ids.iter().find(
            |id| !matches!(self.master.offers.get(**id), Some(o) if o.framework_id == framework_id),
        );
        if ids.is_empty() || invalid.is_some() {
            let message = match invalid {
                Some(id) => format!("Offer {id} is no longer valid"),
                None => "No offers were given".to_string(),
            };
            self.recover_offers(framework_id, &ids, 0.0);
            return self.drop_tasks(framework_id, &tasks, &message);
        }
        let mut remaining = Resources::default();
        for id in &ids {
            let offer = self.master.offers.remove(*id).expect("validated above");
            remaining.add(&offer.resources);
        }
        for task in tasks {
            match self.validate_task(framework_id, &task, &remaining) {
                Ok(needed) => {
                    remaining
                        .subtract(&needed)
                        .expect("validate_task checked that the task fits");
                    self.launch_task(framework_id, task);
                }
                Err(message) => {
                    log::info!(
                        target: LOG_TARGET,
                        "Refusing task {} of framework {framework_id}: {message}",
                        task.task_id.value()
                    );
                    let reason = task_status::Reason::REASON_TASK_INVALID;
                    self.master_update(
                        framework_id,
                        task.task_id.value(),
                        TaskState::TASK_ERROR,
                        reason,
                        &message,
                    );
                }
            }
        }
        self.decline(framework_id, remaining, accept.filters.refuse_seconds());
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
            self.master_update(framework_id, task.task_id.value(), state, reason, message);
        }
    }

    /// The resources a task needs from the offer (its own, plus its
    /// executor's if that executor is not running yet), or why it is invalid.
    fn validate_task(
        &self,
        framework_id: &str,
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
        if task.agent_id.value() != self.agent.id {
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
        needed.add(&self.executor_needs(framework_id, executor)?);
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
        executor: &crate::proto::mesos::ExecutorInfo,
    ) -> Result<Resources, String> {
        let executor_id = executor.executor_id.value();
        let resources = Resources::from_protos(&executor.resources)
            .map_err(|e| format!("Executor has invalid resources: {e}"))?;
        match self.agent.executor_info(framework_id, executor_id) {
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

    fn launch_task(&mut self, framework_id: &str, task: TaskInfo) {
        let key = (framework_id.to_string(), task.task_id.value().to_string());
        let resources = Resources::from_protos(&task.resources).unwrap_or_default();
        let role = self.master.frameworks[framework_id].role();
        self.master.tasks.insert(
            key,
            Task {
                state: TaskState::TASK_STAGING,
                resources,
                last_status: None,
                record: super::view::launched(&task, &role),
            },
        );
        let info = self.master.frameworks[framework_id].info.clone();
        self.agent_launch_task(framework_id, &info, task);
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
