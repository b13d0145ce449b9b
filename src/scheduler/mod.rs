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
use crate::proto::mesos::{Offer, TaskState, TaskStatus};
use crate::proto::scheduler::{event, Event};
use crate::server::FileServer;
use batch::ImageBatch;
pub use config::{Config, SchedulerError, Step};
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
        let executor_url = server.serve_file("executor", &executor)?;
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

    let mut master = failover::subscribe(config, failover::load_framework_id(config), true)?;
    let mut suppressed = false;
    loop {
        let reaction = match master.next_event() {
            Ok(event) => react(
                &event,
                config,
                &mut master,
                &mut work,
                plan.as_ref(),
                server.as_ref(),
                &mut suppressed,
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
                suppressed = false;
            }
            Err(err) => {
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
    suppressed: &mut bool,
) -> Result<bool, SchedulerError> {
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
            log::info!("Registered with framework ID {id}");
            failover::save_framework_id(config, Some(&id));
            let running = work.running();
            if resumed && !running.is_empty() {
                log::info!("Reconciling {} tasks after re-subscribing", running.len());
                master.reconcile(&running)?;
            }
        }
        event::Type::OFFERS => {
            for offer in &event.offers.offers {
                log_offer(offer);
                let tasks = match (&mut *work, plan) {
                    (Work::Launch(noop), Some(plan)) => noop.tasks_for(offer, plan),
                    (Work::Images(batch), Some(plan)) => batch.tasks_for(offer, plan),
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
                    master.launch(offer, tasks, config.refuse_seconds)?;
                }
            }
        }
        event::Type::RESCIND => {
            log::info!("Offer {} was rescinded", event.rescind.offer_id.value())
        }
        event::Type::UPDATE => {
            let status = &event.update.status;
            log_update(status);
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
        event::Type::ERROR => {
            return Err(SchedulerError::Removed(event.error.message().to_string()))
        }
        event::Type::HEARTBEAT => log::debug!("Heartbeat"),
        other => log::debug!("Ignoring event {other:?}"),
    }

    // A framework with nothing left to launch suppresses offers, and
    // revives them when work comes back.
    if let Work::Images(batch) = &*work {
        if let Some(server) = server {
            server.set_progress(batch.progress());
        }
        if batch.wants_offers() == *suppressed {
            *suppressed = !*suppressed;
            if *suppressed {
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
    /// The tasks we believe are running, to reconcile.
    fn running(&self) -> Vec<String> {
        match self {
            Work::Register => Vec::new(),
            Work::Launch(noop) => noop.running(),
            Work::Images(batch) => batch.running(),
        }
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
                "Outputs are in {}; add --keep-serving to browse them side by side",
                config.output_dir.display()
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
