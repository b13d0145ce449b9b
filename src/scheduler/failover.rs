//! Step 4: surviving failures.
//!
//! On a real cluster masters fail over, connections drop, heartbeats stop,
//! and scheduler processes are restarted. Mesos's rules for a scheduler
//! that wants its work to survive that, and where each one lives:
//!
//! - **Failover timeout.** `FrameworkInfo.failover_timeout`
//!   (`--failover-timeout`) says how long the master keeps a disconnected
//!   framework (and its tasks) alive. Mesos's default is 0: the tasks die
//!   the moment the scheduler disconnects ([`Failover::recover`]).
//! - **Subscribe again as the same framework.** Within that time, a
//!   `SUBSCRIBE` that names the framework id picks up where the old
//!   subscription left off. Keeping the id in a file
//!   (`--framework-id-file`) lets even a restarted scheduler process do it
//!   ([`Failover::earlier_framework`], [`Failover::remember`]).
//! - **Back off.** A master that is down or electing a leader answers with
//!   connection errors or `503`; retry with exponentially growing, jittered
//!   waits so that many frameworks do not hammer it in step (`reconnect.rs`).
//! - **Reconcile.** Updates may have been missed while disconnected, so after
//!   re-subscribing the scheduler asks for the state of every task it
//!   believes is running (`RECONCILE`), and again for those without an
//!   answer ([`Failover::reconcile`], `reconciliation.rs`).
//! - **Take over from an earlier process.** A scheduler restarted with
//!   `--framework-id-file` finds the earlier process's executor still on
//!   the agents, pointing at a file server that is gone: it shuts that
//!   executor down (and with it the orphaned tasks) and uses fresh task ids
//!   ([`Failover::clear_stale_executor`], [`Failover::update`]).
//! - **Lose a machine.** An operator may drain an agent (`DRAIN_AGENT`):
//!   its tasks are killed with `REASON_AGENT_DRAINING`. That is no fault of
//!   the task: its work goes back in the queue without using up an attempt
//!   (`limits::agent_drained`, asked where steps 2 and 3 count failures).

use super::master::{self, MasterConnection};
use super::reconciliation::Reconciliation;
use super::reconnect;
use super::{log_lines, tasks, Config, Interrupts, Outcome, Resume, SchedulerError, Work};
use crate::proto::is_terminal;
use crate::proto::mesos::task_status::Reason;
use crate::proto::mesos::{FrameworkID, FrameworkInfo, Offer, TaskStatus};

/// What the scheduler keeps to survive failures.
pub struct Failover<'a> {
    config: &'a Config,
    /// Where Ctrl+C goes: the inbox of the current subscription, or the
    /// wait between two attempts to subscribe.
    interrupts: Interrupts,
    /// The tasks we asked about after re-subscribing, until answered.
    reconciliation: Reconciliation,
    /// Ctrl+C came while waiting to subscribe: the connection the event
    /// loop holds, if any, is a lost one.
    interrupted_subscribing: bool,
}

/// When the scheduler restarts (step 4's first reading).
impl<'a> Failover<'a> {
    /// Nothing kept yet.
    pub fn new(config: &'a Config, interrupts: Interrupts) -> Failover<'a> {
        Failover {
            config,
            interrupts,
            reconciliation: Reconciliation::default(),
            interrupted_subscribing: false,
        }
    }

    /// The framework to subscribe as: that of an earlier scheduler process
    /// if `--framework-id-file` holds its id (then `work` goes on from where
    /// that process stopped); `None` asks the master for a new one.
    pub fn earlier_framework(&self, work: &mut impl Resume) -> Option<FrameworkID> {
        let earlier_id = load_framework_id(self.config);
        if earlier_id.is_some() {
            work.continue_earlier_run();
        }
        earlier_id
    }

    /// Keeps the framework id for a restarted scheduler. Called before the
    /// id is announced, so that whoever reads the log line can rely on the
    /// file.
    pub fn remember(&self, framework_id: &str) {
        save_framework_id(self.config, Some(framework_id));
    }

    /// Any update answers reconciliation for its task. Implicit
    /// reconciliation may report a task of an earlier scheduler process: it
    /// reports to a file server that is gone, so it cannot deliver; end it.
    pub fn update(
        &mut self,
        master: &MasterConnection,
        work: &impl Resume,
        status: &TaskStatus,
    ) -> Result<(), SchedulerError> {
        let task_id = status.task_id.value();
        self.reconciliation.answered(task_id);
        if status.reason() == Reason::REASON_RECONCILIATION
            && !is_terminal(status.state())
            && !work.running().iter().any(|(task, _)| task == task_id)
        {
            log::warn!("Killing task {task_id}, left by an earlier scheduler process");
            master.kill(
                status.task_id.clone().unwrap_or_default(),
                status.agent_id.clone().unwrap_or_default(),
            )?;
        }
        Ok(())
    }

    /// If the offer's agent still runs the executor of an earlier scheduler
    /// process, shuts it down and declines the offer (for a second: the
    /// agent comes back without it). Returns whether it did.
    pub fn clear_stale_executor(
        &self,
        master: &MasterConnection,
        work: &impl Resume,
        offer: &Offer,
    ) -> Result<bool, SchedulerError> {
        if !work.stale_executor(offer) {
            return Ok(false);
        }
        let agent = offer.agent_id.value();
        log::warn!(
            "Agent {agent} still runs the executor of an earlier scheduler process; \
             shutting it down before launching there"
        );
        let agent_id = offer.agent_id.clone().unwrap_or_default();
        master.shutdown_executor(tasks::EXECUTOR_ID, agent_id)?;
        master.decline(vec![offer.id.clone().unwrap_or_default()], 1.0)?;
        Ok(true)
    }

    /// The work is done and the framework torn down: a later run starts a
    /// new framework.
    pub fn finished(&self) {
        save_framework_id(self.config, None);
    }

    /// After Ctrl+C: leaves the framework to the master, and says so, if a
    /// later process can take it over (`--failover-timeout` with
    /// `--framework-id-file`: the master keeps its tasks until then, and the
    /// file keeps the id); otherwise forgets the id. Returns whether it left
    /// the framework; if not, the caller tears it down. After Ctrl+C while
    /// subscribing there is no subscription to `TEARDOWN` from: a framework
    /// the master still has is left to it in any case.
    pub fn leave_framework(&self, master: Option<&MasterConnection>) -> bool {
        let subscribed = master.filter(|_| !self.interrupted_subscribing);
        let taken_over_later =
            self.config.failover_timeout > 0.0 && self.config.framework_id_file.is_some();
        if !taken_over_later {
            // No later process will ask for this framework.
            save_framework_id(self.config, None);
            return subscribed.is_none();
        }
        match subscribed {
            Some(master) => {
                let id = master.framework_id();
                let timeout = self.config.failover_timeout;
                log::info!(
                    "interrupted: leaving framework {id} to the master for {timeout} s \
                     (--failover-timeout); run the same command again to continue"
                );
            }
            None => log::info!("run the same command again to continue (--framework-id-file)"),
        }
        true
    }

    /// Ctrl+C came before the first subscription: nothing to tear down.
    pub fn interrupted(&self, work: impl Work) -> Outcome {
        self.leave_framework(None);
        work.finish(self.config, true)
    }
}

/// The framework id saved by an earlier run, if `--framework-id-file` names
/// a file that holds one.
pub fn load_framework_id(config: &Config) -> Option<FrameworkID> {
    let path = config.framework_id_file.as_ref()?;
    let text = std::fs::read_to_string(path).ok()?;
    let value = text.trim();
    if value.is_empty() {
        return None;
    }
    log::info!("Subscribing as framework {value} (from {})", path.display());
    let mut id = FrameworkID::new();
    id.set_value(value.to_string());
    Some(id)
}

/// Remembers the framework id for a restarted scheduler, or (with `None`)
/// forgets it because the framework is finished or was removed.
pub fn save_framework_id(config: &Config, id: Option<&str>) {
    let Some(path) = &config.framework_id_file else {
        return;
    };
    let result = match id {
        Some(id) => std::fs::write(path, format!("{id}\n")),
        None => match std::fs::remove_file(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(err) = result {
        log::warn!(
            "Could not update --framework-id-file {}: {err}",
            path.display()
        );
    }
}

/// What `FrameworkInfo` says for step 4: how long the master keeps our
/// tasks while we are away (`--failover-timeout`), and whether agents keep
/// them across their own restarts (`--checkpoint`); and the principal we
/// authenticate as, which must match the one of our credentials.
pub fn framework_settings(config: &Config, info: &mut FrameworkInfo) {
    info.set_failover_timeout(config.failover_timeout);
    info.set_checkpoint(config.checkpoint);
    if let Some(principal) = &config.principal {
        info.set_principal(principal.clone());
    }
}

/// When the master goes away (step 4's second reading).
impl Failover<'_> {
    /// The first subscription, from the answer to its first `attempt`:
    /// tried again while the master is not ready. `None` if Ctrl+C came
    /// first (see [`Failover::interrupted`]).
    pub fn retry_until_subscribed(
        &mut self,
        attempt: Result<MasterConnection, SchedulerError>,
        id: Option<FrameworkID>,
    ) -> Result<Option<MasterConnection>, SchedulerError> {
        // `true`: the first attempt, when a master that cannot be reached at
        // all is an error at once (`--master` is likely wrong).
        let master = reconnect::retry_connect(self.config, id, attempt, true, &self.interrupts)?;
        self.interrupted_subscribing = master.is_none();
        Ok(master)
    }

    /// After an error: a new subscription if the connection to the master
    /// was lost, the error itself otherwise. `None` if Ctrl+C came while
    /// waiting to subscribe again.
    pub fn recover(
        &mut self,
        err: SchedulerError,
        master: &MasterConnection,
        work: &mut impl Resume,
    ) -> Result<Option<MasterConnection>, SchedulerError> {
        if !err.connection_lost() {
            // A framework that was removed is gone for good; one that a
            // newer scheduler process took over lives on under that
            // process, which needs the id.
            if matches!(err, SchedulerError::Removed(_)) {
                save_framework_id(self.config, None);
            }
            return Err(err);
        }
        log::warn!("Lost the master: {err}");
        // Within the failover timeout the master keeps our framework and
        // its tasks, so we come back as the same framework. Without one,
        // our tasks died with the connection.
        let id = if self.config.failover_timeout > 0.0 {
            master.framework_id_message()
        } else {
            work.forget_running();
            None
        };
        let attempt = master::connect(self.config, id.clone());
        // `false`: not the first attempt, so an unreachable master is one
        // that is restarting, and is tried again.
        let master = reconnect::retry_connect(self.config, id, attempt, false, &self.interrupts)?;
        self.interrupted_subscribing = master.is_none();
        Ok(master)
    }

    /// After `SUBSCRIBED` with the id we subscribed with: we are the same
    /// framework, back after a break, and updates may have been lost while
    /// we were away. Mesos's advice: ask about the tasks we know (explicit
    /// reconciliation), then about all of them (implicit), to learn of any
    /// we do not. A new framework has nothing to reconcile.
    pub fn reconcile(
        &mut self,
        master: &MasterConnection,
        work: &impl Resume,
        framework_id: &str,
    ) -> Result<(), SchedulerError> {
        // Called before the connection records the new id: it still holds
        // the one we subscribed with.
        if master.framework_id() != framework_id {
            return Ok(());
        }
        let known = self.reconciliation.start(work.running());
        let tasks = log_lines::counted(known.len(), "task");
        log::info!("Reconciling {tasks} after re-subscribing");
        if !known.is_empty() {
            master.reconcile(&known)?;
        }
        Ok(master.reconcile(&[])?)
    }

    /// After every event: asks again about the tasks that reconciliation
    /// left unanswered, once it is time; and ends a run whose tasks keep
    /// failing (`--max-failures`), since the next ones would fail too.
    pub fn after_event(
        &mut self,
        master: &MasterConnection,
        work: &impl Resume,
    ) -> Result<(), SchedulerError> {
        if let Some(unanswered) = self.reconciliation.due() {
            let count = unanswered.len();
            let tasks = log_lines::counted(count, "task");
            log::info!("Reconciling {tasks} still without an answer");
            master.reconcile(&unanswered)?;
        }
        if let Some((count, last)) = work.failing(self.config.max_failures) {
            master.teardown()?;
            self.finished();
            return Err(SchedulerError::TasksFailing { count, last });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;
    use std::path::PathBuf;

    /// A configuration with this failover timeout and id file.
    fn config(failover_timeout: f64, framework_id_file: PathBuf) -> Config {
        Config {
            failover_timeout,
            framework_id_file: Some(framework_id_file),
            ..crate::scheduler::config::test_config()
        }
    }

    /// After Ctrl+C while waiting to subscribe, with no subscription to
    /// `TEARDOWN` from: the id file is kept only for a framework a later
    /// process can take over, one with a failover timeout.
    #[test]
    fn ctrl_c_while_subscribing_keeps_the_id_only_with_a_failover_timeout() {
        let dir = TestDir::new("failover");
        let id_file = dir.0.join("framework-id");
        for (timeout, kept) in [(60.0, true), (0.0, false)] {
            std::fs::write(&id_file, "F1\n").expect("write the id");
            let config = config(timeout, id_file.clone());
            let mut failover = Failover::new(&config, Interrupts::default());
            failover.interrupted_subscribing = true;
            assert!(failover.leave_framework(None), "nothing to tear down");
            assert_eq!(id_file.exists(), kept, "failover timeout {timeout}");
        }
    }
}
