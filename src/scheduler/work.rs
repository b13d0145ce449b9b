//! What each step does with offers and updates.
//!
//! Step 1 keeps nothing; steps 2 and 3 keep a task table ([`NoopTasks`],
//! [`ImageBatch`]), describe tasks with a [`TaskPlan`] and run a
//! [`FileServer`], from which the agent fetches our executor (and, in step
//! 3, to which executors upload results). [`Work`] passes each question of
//! the event loop to the step's table, so that the loop reads the same for
//! all three steps.

use super::batch::ImageBatch;
use super::master::MasterConnection;
use super::noop::NoopTasks;
use super::tasks::TaskPlan;
use super::too_small::TooSmall;
use super::{executor_binary, Config, SchedulerError, Step};
use crate::http_api::ApiError;
use crate::proto::mesos::{Offer, TaskInfo, TaskStatus};
use crate::server::FileServer;
use std::path::Path;
use std::time::Instant;

/// The task table of the current step.
pub(super) enum Table {
    Register,
    Launch(NoopTasks),
    Images(ImageBatch),
}

/// The step's work: its task table, and (steps 2 and 3) how tasks are
/// described and the file server they need.
pub struct Work {
    pub(super) table: Table,
    plan: Option<TaskPlan>,
    pub(super) server: Option<FileServer>,
    /// Whether we asked the master to stop sending offers.
    pub(super) suppressed: bool,
    /// Offers too small for our tasks, for a warning once a minute.
    too_small: TooSmall,
}

impl Work {
    /// Step 1 needs nothing. Steps 2 and 3 start the file server and serve
    /// the executor binary on it: Mesos runs an executor by fetching it
    /// from a URL into the task's sandbox (`CommandInfo.URI`).
    pub fn prepare(config: &Config) -> Result<Work, SchedulerError> {
        if config.step == Step::Register {
            return Ok(Work {
                table: Table::Register,
                plan: None,
                server: None,
                suppressed: false,
                too_small: TooSmall::new(config.task_cpus, config.task_mem),
            });
        }
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
        let table = match config.step {
            Step::Launch => Table::Launch(NoopTasks::new(config.tasks, config.task_millis)),
            _ => Table::Images(ImageBatch::prepare(config, &server)?),
        };
        Ok(Work {
            table,
            plan: Some(plan),
            server: Some(server),
            suppressed: false,
            too_small: TooSmall::new(config.task_cpus, config.task_mem),
        })
    }

    /// The tasks to launch on this offer; none in step 1. Offers too small
    /// for work that waits are watched (`too_small.rs`).
    pub fn tasks_for(&mut self, offer: &Offer) -> Vec<TaskInfo> {
        let waiting = self.wants_offers() == Some(true);
        let tasks = match (&mut self.table, &self.plan, &self.server) {
            (Table::Launch(noop), Some(plan), _) => noop.tasks_for(offer, plan),
            (Table::Images(batch), Some(plan), Some(server)) => {
                batch.tasks_for(offer, plan, server)
            }
            _ => Vec::new(),
        };
        if !tasks.is_empty() {
            self.too_small.used();
        } else if waiting {
            if let Some(warning) = self.too_small.too_small(offer, Instant::now()) {
                log::warn!("{warning}");
            }
        }
        tasks
    }

    /// Step 2: how many tasks failed in a row and how the last one failed,
    /// once that is `max` or more.
    pub fn failing(&self, max: u32) -> Option<(u32, String)> {
        match &self.table {
            Table::Launch(noop) => noop.failing(max),
            _ => None,
        }
    }

    /// Records a status update in the step's table.
    pub fn update(&mut self, status: &TaskStatus) {
        match &mut self.table {
            Table::Register => {}
            Table::Launch(noop) => noop.update(status),
            Table::Images(batch) => batch.update(status, self.server.as_ref()),
        }
    }

    /// Takes back tasks whose launch the master never accepted.
    pub fn unlaunch(&mut self, task_ids: &[String]) {
        match &mut self.table {
            Table::Register => {}
            Table::Launch(noop) => noop.unlaunch(task_ids),
            Table::Images(batch) => batch.unlaunch(task_ids),
        }
    }

    /// Whether there is work waiting for offers; `None` for step 1, which
    /// looks at offers without ever wanting them.
    pub fn wants_offers(&self) -> Option<bool> {
        match &self.table {
            Table::Register => None,
            Table::Launch(noop) => Some(noop.wants_offers()),
            Table::Images(batch) => Some(batch.wants_offers()),
        }
    }

    /// A framework with nothing left to launch suppresses offers (or the
    /// master keeps sending them), and revives them when work comes back.
    /// Step 1 looks at offers without wanting them, and does neither.
    pub fn suppress_or_revive(&mut self, master: &MasterConnection) -> Result<(), ApiError> {
        let Some(wants_offers) = self.wants_offers() else {
            return Ok(());
        };
        if wants_offers == self.suppressed {
            self.suppressed = !self.suppressed;
            if self.suppressed {
                master.suppress()?;
                log::info!("Suppressing offers");
            } else {
                master.revive()?;
                log::info!("Reviving offers");
            }
        }
        Ok(())
    }

    /// Whether the step's work is done (never, in step 1).
    pub fn done(&self) -> bool {
        match &self.table {
            Table::Register => false,
            Table::Launch(noop) => noop.done(),
            Table::Images(batch) => batch.done(),
        }
    }

    /// The tasks we believe are running, with their agents.
    pub fn running(&self) -> Vec<(String, String)> {
        match &self.table {
            Table::Register => Vec::new(),
            Table::Launch(noop) => noop.running(),
            Table::Images(batch) => batch.running(),
        }
    }

    /// Whether this task is one of ours that has not ended.
    pub fn knows(&self, task_id: &str) -> bool {
        self.running().iter().any(|(task, _)| task == task_id)
    }

    /// Step 4: our running tasks died with the framework; forget them, so
    /// that their work is launched again.
    pub fn forget_running(&mut self) {
        match &mut self.table {
            Table::Register => {}
            Table::Launch(noop) => noop.forget_running(),
            Table::Images(batch) => batch.forget_running(),
        }
    }

    /// Step 4: whether the offer's agent runs an executor of ours that this
    /// process did not launch (see [`TaskPlan::stale_executor`]).
    pub fn stale_executor(&self, offer: &Offer) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|plan| plan.stale_executor(offer))
    }

    /// Step 4: continues the work of an earlier scheduler process whose
    /// framework this one takes over.
    pub fn continue_earlier_run(&mut self, output_dir: &Path) {
        match (&mut self.table, &self.server) {
            (Table::Launch(noop), _) => noop.continue_earlier_run(),
            (Table::Images(batch), Some(server)) => batch.continue_earlier_run(output_dir, server),
            _ => {}
        }
    }

    /// Brings the results page up to date (step 3), now and then.
    pub fn show_progress(&mut self) {
        if let (Table::Images(batch), Some(server)) = (&mut self.table, &self.server) {
            batch.show_progress(server);
        }
    }
}
