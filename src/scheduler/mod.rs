//! The scheduler: the part of a framework that decides what runs where.
//!
//! Mesos schedules in two levels. The master decides which framework gets
//! which free resources, and sends them to it as **offers**. The
//! framework's scheduler decides what to do with each offer: launch tasks
//! on it (`ACCEPT`) or give it back (`DECLINE`). Everything then happens
//! through events on one stream:
//!
//! ```text
//!  scheduler                         master                      agent
//!     |--- SUBSCRIBE ------------------>|                           |
//!     |<-- SUBSCRIBED (framework id) ---|                           |
//!     |<-- OFFERS ----------------------|                           |
//!     |--- ACCEPT (LAUNCH tasks) ------>|--- run task ------------->|
//!     |<-- UPDATE (TASK_RUNNING) -------|<-- status update ---------|
//!     |--- ACKNOWLEDGE ---------------->|--- acknowledged --------->|
//!     |<-- UPDATE (TASK_FINISHED) ------|<--------------------------|
//! ```
//!
//! [`run`] is that loop. Read it top to bottom: it subscribes, then reacts
//! to each event in one `match`, one arm per event type. The three workshop
//! steps differ only in what they do with an offer and an update:
//!
//! 1. `register`: log each offer and decline it;
//! 2. `launch`: fill each offer with no-op tasks ([`noop`]);
//! 3. `images`: one task per image until the batch is done ([`batch`]).

pub mod batch;
mod config;
pub mod executor_binary;
pub mod failover;
pub mod master;
pub mod noop;
pub mod tasks;

use crate::proto::is_terminal;
use crate::proto::mesos::task_status::Reason;
use crate::proto::mesos::{Offer, TaskState, TaskStatus};
use crate::proto::scheduler::{event, Event};
use crate::server::FileServer;
use batch::ImageBatch;
pub use config::{Config, SchedulerError, Step};
use failover::Reconciliation;
use master::MasterConnection;
use noop::NoopTasks;
use tasks::TaskPlan;

/// What the current step does with offers and updates.
enum Work {
    Register,
    Launch(NoopTasks),
    Images(ImageBatch),
}

/// Runs the scheduler until its step is done (steps 2 and 3) or forever
/// (step 1, and step 2 without `--tasks`).
pub fn run(config: &Config) -> Result<Outcome, SchedulerError> {
    // Steps 2 and 3 need the file server: the agent fetches our executor
    // from it, and in step 3 the executor uploads results to it.
    let server = match config.step {
        Step::Register => None,
        _ => Some(FileServer::start(
            &format!("{}:{}", config.address, config.port),
            &config.address,
        )?),
    };
    let mut plan = None;
    let mut work = Work::Register;
    if let Some(server) = &server {
        let executor =
            executor_binary::find(config.executor.as_deref()).map_err(SchedulerError::Executor)?;
        let name = executor_binary::content_name(&executor).map_err(SchedulerError::Executor)?;
        let executor_url = server.serve_file(&name, &executor)?;
        log::info!(
            "Serving the executor {} at {executor_url}",
            executor.display()
        );
        plan = Some(TaskPlan::new(
            &executor_url,
            config.task_cpus,
            config.task_mem,
        ));
        work = match config.step {
            Step::Launch => Work::Launch(NoopTasks::new(config.tasks, config.task_millis)),
            _ => Work::Images(ImageBatch::prepare(config, server)?),
        };
    }

    let earlier_id = failover::load_framework_id(config);
    if earlier_id.is_some() {
        // We take over the framework of an earlier scheduler process.
        match (&mut work, &server) {
            (Work::Launch(noop), _) => noop.continue_earlier_run(),
            (Work::Images(batch), Some(server)) => {
                batch.continue_earlier_run(&config.output_dir, server)
            }
            _ => {}
        }
    }
    let mut master = failover::subscribe(config, earlier_id, true)?;
    let mut state = State {
        suppressed: false,
        reconciliation: Reconciliation::default(),
        progress_shown: None,
    };
    loop {
        let reaction = match master.next_event() {
            Ok(event) => react(
                &event,
                config,
                &mut master,
                &mut work,
                plan.as_ref(),
                server.as_ref(),
                &mut state,
            ),
            Err(err) => Err(SchedulerError::Events(err)),
        };
        match reaction {
            Ok(false) => {}
            Ok(true) => break,
            Err(err) if err.connection_lost() => {
                log::warn!("Lost the master: {err}");
                // Within the failover timeout the master keeps our framework
                // and its tasks, so we come back as the same framework.
                // Without one, our tasks died with the connection.
                let id = if config.failover_timeout > 0.0 {
                    master.framework_id_message()
                } else {
                    work.forget_running();
                    None
                };
                master = failover::subscribe(config, id, false)?;
                state.suppressed = false;
            }
            Err(err) => {
                // A framework that was removed is gone for good; one that a
                // newer scheduler process took over lives on under that
                // process, which needs the id.
                if matches!(err, SchedulerError::Removed(_)) {
                    failover::save_framework_id(config, None);
                }
                return Err(err);
            }
        }
    }
    failover::save_framework_id(config, None);
    Ok(finish(work, server, config))
}

/// What the event loop keeps between events, besides the work itself.
struct State {
    /// Whether we asked the master to stop sending offers.
    suppressed: bool,
    /// The tasks we asked about after re-subscribing, until answered.
    reconciliation: Reconciliation,
    /// When the results page last got the batch's progress.
    progress_shown: Option<std::time::Instant>,
}

/// How often, at most, the results page is brought up to date.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Reacts to one event: one arm per Mesos event type. Returns whether the
/// step's work is done.
#[allow(clippy::too_many_arguments)]
fn react(
    event: &Event,
    config: &Config,
    master: &mut MasterConnection,
    work: &mut Work,
    plan: Option<&TaskPlan>,
    server: Option<&FileServer>,
    state: &mut State,
) -> Result<bool, SchedulerError> {
    if let Some(missing) = missing_part(event) {
        log::warn!("Ignoring a {:?} event without its {missing}", event.type_());
        return Ok(false);
    }
    match event.type_() {
        event::Type::SUBSCRIBED => {
            let subscribed = &event.subscribed;
            let id = subscribed.framework_id.value().to_string();
            // The same id as before: a re-subscription, after which Mesos
            // wants us to reconcile what we believe is running.
            let resumed = master.framework_id() == id;
            master.subscribed(
                subscribed.framework_id.clone().unwrap_or_default(),
                subscribed.heartbeat_interval_seconds(),
            );
            // Saved before it is announced, so that whoever reads the log
            // line can rely on the file.
            failover::save_framework_id(config, Some(&id));
            log::info!("Registered with framework ID {id}");
            if resumed {
                // Updates may have been lost while we were away. Mesos's
                // advice: ask about the tasks we know (explicit), then
                // about all of them (implicit), to learn of any we do not.
                let known = state.reconciliation.start(work.running());
                log::info!("Reconciling {} tasks after re-subscribing", known.len());
                if !known.is_empty() {
                    master.reconcile(&known)?;
                }
                master.reconcile(&[])?;
            }
        }
        event::Type::OFFERS => {
            for offer in &event.offers.offers {
                log_offer(offer);
                if plan.is_some_and(|plan| plan.stale_executor(offer)) {
                    log::warn!(
                        "Agent {} still runs the executor of an earlier scheduler process; \
                         shutting it down before launching there",
                        offer.agent_id.value()
                    );
                    master.shutdown_executor(
                        tasks::EXECUTOR_ID,
                        offer.agent_id.clone().unwrap_or_default(),
                    )?;
                    master.decline(vec![offer.id.clone().unwrap_or_default()], 1.0)?;
                    continue;
                }
                let tasks = match (&mut *work, plan) {
                    (Work::Launch(noop), Some(plan)) => noop.tasks_for(offer, plan),
                    (Work::Images(batch), Some(plan)) => match server {
                        Some(server) => batch.tasks_for(offer, plan, server),
                        None => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                if tasks.is_empty() {
                    // Step 1 never uses an offer. Declining it (with a
                    // filter) returns the resources to the master at
                    // once; holding it would keep them from everyone,
                    // since Mesos sets no offer timeout by default.
                    log::info!(
                        "Declining offer {} for {} s",
                        offer.id.value(),
                        config.refuse_seconds
                    );
                    master.decline(
                        vec![offer.id.clone().unwrap_or_default()],
                        config.refuse_seconds,
                    )?;
                } else {
                    let plural = if tasks.len() == 1 { "" } else { "s" };
                    log::info!(
                        "Launching {} task{plural} for offer {}",
                        tasks.len(),
                        offer.id.value()
                    );
                    let ids: Vec<String> = tasks
                        .iter()
                        .map(|t| t.task_id.value().to_string())
                        .collect();
                    if let Err(err) = master.launch(offer, tasks, config.refuse_seconds) {
                        // The master did not take the launch (it is
                        // restarting, say): the work goes back in the queue,
                        // its attempt unused.
                        work.unlaunch(&ids);
                        return Err(err.into());
                    }
                }
            }
        }
        event::Type::RESCIND => {
            log::info!("Offer {} was rescinded", event.rescind.offer_id.value())
        }
        event::Type::UPDATE => {
            let status = &event.update.status;
            log_update(status);
            state.reconciliation.answered(status.task_id.value());
            if status.reason() == Reason::REASON_RECONCILIATION
                && !is_terminal(status.state())
                && !work.knows(status.task_id.value())
            {
                // Implicit reconciliation found a task of an earlier
                // scheduler process: it reports to a file server that is
                // gone, so it cannot deliver; end it.
                log::warn!(
                    "Killing task {}, left by an earlier scheduler process",
                    status.task_id.value()
                );
                master.kill(
                    status.task_id.clone().unwrap_or_default(),
                    status.agent_id.clone().unwrap_or_default(),
                )?;
            }
            match work {
                Work::Launch(noop) => noop.update(status),
                Work::Images(batch) => batch.update(status, server),
                Work::Register => {}
            }
            // Updates from the agent or executor carry a uuid and are
            // resent until acknowledged. The master's own updates
            // (reconciliation, invalid launches) have none, and must not
            // be acknowledged.
            if status.has_uuid() {
                master.acknowledge(status)?;
            }
        }
        event::Type::MESSAGE => log::info!(
            "Message from executor {}: {} bytes",
            event.message.executor_id.value(),
            event.message.data().len()
        ),
        event::Type::FAILURE => log_failure(event),
        event::Type::ERROR => return Err(SchedulerError::from_error_event(event.error.message())),
        event::Type::HEARTBEAT => log::debug!("Heartbeat"),
        other => log::debug!("Ignoring event {other:?}"),
    }
    if let Some(unanswered) = state.reconciliation.due() {
        log::info!(
            "Reconciling {} tasks still without an answer",
            unanswered.len()
        );
        master.reconcile(&unanswered)?;
    }

    if let (Work::Images(batch), Some(server)) = (&*work, server) {
        // The page reloads every 2 s; rebuilding it after every event of
        // a busy batch would only cost time.
        let due = state
            .progress_shown
            .is_none_or(|shown| shown.elapsed() >= PROGRESS_EVERY);
        if due || batch.done() {
            server.set_progress(batch.progress());
            state.progress_shown = Some(std::time::Instant::now());
        }
    }
    // A framework with nothing left to launch suppresses offers, and
    // revives them when work comes back.
    if let Some(wants_offers) = work.wants_offers() {
        if wants_offers == state.suppressed {
            state.suppressed = !state.suppressed;
            if state.suppressed {
                master.suppress()?;
                log::info!("Suppressing offers");
            } else {
                master.revive()?;
                log::info!("Reviving offers");
            }
        }
    }
    let done = match &*work {
        Work::Register => false,
        Work::Launch(noop) => noop.done(),
        Work::Images(batch) => batch.done(),
    };
    if done {
        master.teardown()?;
        log::info!("All done; the framework is torn down");
    }
    Ok(done)
}

impl Work {
    /// The tasks we believe are running, with their agents, to reconcile.
    fn running(&self) -> Vec<(String, String)> {
        match self {
            Work::Register => Vec::new(),
            Work::Launch(noop) => noop.running(),
            Work::Images(batch) => batch.running(),
        }
    }

    /// Takes back tasks whose launch the master never accepted.
    fn unlaunch(&mut self, task_ids: &[String]) {
        match self {
            Work::Register => {}
            Work::Launch(noop) => noop.unlaunch(task_ids),
            Work::Images(batch) => batch.unlaunch(task_ids),
        }
    }

    /// Whether there is work waiting for offers; `None` for step 1, which
    /// looks at offers without ever wanting them.
    fn wants_offers(&self) -> Option<bool> {
        match self {
            Work::Register => None,
            Work::Launch(noop) => Some(noop.wants_offers()),
            Work::Images(batch) => Some(batch.wants_offers()),
        }
    }

    /// Whether this task is one of ours that has not ended.
    fn knows(&self, task_id: &str) -> bool {
        self.running().iter().any(|(task, _)| task == task_id)
    }

    /// Our running tasks died with the framework: forget them, so that
    /// their work is launched again.
    fn forget_running(&mut self) {
        match self {
            Work::Register => {}
            Work::Launch(noop) => noop.forget_running(),
            Work::Images(batch) => batch.forget_running(),
        }
    }
}

/// How a run ended: whether all work succeeded, and (with
/// `--keep-serving`) the results page, still up.
pub struct Outcome {
    /// Whether every task (step 2) or image (step 3) succeeded.
    pub succeeded: bool,
    results: Option<(FileServer, ImageBatch)>,
}

impl Outcome {
    /// Keeps the results page up until the process is stopped. The caller
    /// releases everything else (such as an embedded cluster) first.
    pub fn serve_results(self) {
        if let Some((server, _batch)) = self.results {
            log::info!(
                "Results: {}/ (serving until Ctrl+C, --keep-serving)",
                server.base_url()
            );
            loop {
                std::thread::park();
            }
        }
    }
}

/// The end of the run: step 3 prints its table and may keep its results
/// page (the server, and the batch whose originals it serves).
fn finish(work: Work, server: Option<FileServer>, config: &Config) -> Outcome {
    match work {
        Work::Images(batch) => {
            batch.print_table();
            let succeeded = batch.all_succeeded();
            let server = server.expect("step 3 always runs the file server");
            server.set_progress(batch.progress());
            if config.keep_serving {
                return Outcome {
                    succeeded,
                    results: Some((server, batch)),
                };
            }
            log::info!(
                "Outputs are in {}; the results page was {}/ (add --keep-serving to keep it up)",
                config.output_dir.display(),
                server.base_url()
            );
            Outcome {
                succeeded,
                results: None,
            }
        }
        Work::Launch(noop) => {
            log::info!("{} tasks finished", noop.finished());
            Outcome {
                succeeded: true,
                results: None,
            }
        }
        Work::Register => Outcome {
            succeeded: true,
            results: None,
        },
    }
}

/// The part of an event that its type requires and that is missing, if
/// any. Protobuf cannot enforce it (`subscribed` is optional on the wire),
/// and a broken or hostile peer must not make us act on defaults: an empty
/// framework id, an update of task "".
fn missing_part(event: &Event) -> Option<&'static str> {
    match event.type_() {
        event::Type::SUBSCRIBED if event.subscribed.framework_id.is_none() => Some("framework id"),
        event::Type::UPDATE
            if event.update.status.task_id.is_none() || event.update.status.state.is_none() =>
        {
            Some("task status")
        }
        event::Type::RESCIND if event.rescind.offer_id.is_none() => Some("offer id"),
        _ => None,
    }
}

fn log_offer(offer: &Offer) {
    log::info!(
        "Received offer {} from agent {} ({}): {}",
        offer.id.value(),
        offer.agent_id.value(),
        offer.hostname(),
        tasks::describe_resources(&offer.resources)
    );
}

fn log_update(status: &TaskStatus) {
    let mut line = format!(
        "task {} is in state {:?}",
        status.task_id.value(),
        status.state()
    );
    if !status.message().is_empty() {
        line.push_str(&format!(": {}", status.message()));
    }
    if status.state() == TaskState::TASK_FINISHED || !is_terminal(status.state()) {
        log::info!("{line}");
    } else {
        log::warn!("{line}");
    }
}

fn log_failure(event: &Event) {
    let failure = &event.failure;
    if failure.executor_id.is_some() {
        log::warn!(
            "Executor {} on agent {} exited with status {}",
            failure.executor_id.value(),
            failure.agent_id.value(),
            failure.status()
        );
    } else {
        log::warn!("Agent {} was lost", failure.agent_id.value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_without_their_required_part_are_recognised() {
        let mut event = Event::new();
        event.set_type(event::Type::SUBSCRIBED);
        assert_eq!(missing_part(&event), Some("framework id"));
        event
            .subscribed
            .mut_or_insert_default()
            .framework_id
            .mut_or_insert_default()
            .set_value("F1".into());
        assert_eq!(missing_part(&event), None);

        let mut update = Event::new();
        update.set_type(event::Type::UPDATE);
        assert_eq!(missing_part(&update), Some("task status"));
        let status = update
            .update
            .mut_or_insert_default()
            .status
            .mut_or_insert_default();
        status.task_id.mut_or_insert_default().set_value("t".into());
        assert_eq!(missing_part(&update), Some("task status"), "no state");
        let status = update
            .update
            .mut_or_insert_default()
            .status
            .mut_or_insert_default();
        status.set_state(TaskState::TASK_RUNNING);
        assert_eq!(missing_part(&update), None);

        let mut heartbeat = Event::new();
        heartbeat.set_type(event::Type::HEARTBEAT);
        assert_eq!(missing_part(&heartbeat), None);
    }
}
