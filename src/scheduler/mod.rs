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
//! [`run`] is the whole program: it subscribes, hands every event to
//! [`Scheduler::handle`] (one `match`, one short arm per event type, each
//! calling a method below) until the work is done, and tears the framework
//! down. The three workshop steps differ only in their [`Work`]: what they
//! do with an offer and an update.
//!
//! 1. `register`: log each offer and decline it ([`LogOffers`]);
//! 2. `launch`: fill each offer with no-op tasks ([`NoopTasks`]);
//! 3. `images`: one task per image until the batch is done ([`ImageBatch`]).
//!
//! Step 4, surviving failures, sits behind the calls on [`Failover`]
//! (marked "Step 4" below); a first reading may take them as done. Ctrl+C
//! arrives as one more input of the loop ([`Interrupts`]).

pub mod batch;
mod config;
pub mod executor_binary;
pub mod failover;
mod interrupt;
mod limits;
mod log_lines;
pub mod master;
pub mod noop;
mod outcome;
mod reconciliation;
mod reconnect;
mod resources;
pub mod tasks;
mod too_small;
mod work;

use crate::proto::mesos::{Offer, TaskInfo, TaskStatus};
use crate::proto::scheduler::{event, Event};
use batch::ImageBatch;
pub use config::{Config, SchedulerError, Step};
pub use failover::Failover;
pub use interrupt::Interrupts;
pub use master::Input;
use master::MasterConnection;
use noop::NoopTasks;
pub use outcome::Outcome;
pub use work::{LogOffers, Resume, Work};

/// Runs the scheduler until its step is done (steps 2 and 3), or until
/// Ctrl+C reaches it through `interrupts`.
pub fn run(config: &Config, interrupts: Interrupts) -> Result<Outcome, SchedulerError> {
    match config.step {
        Step::Register => run_step(config, interrupts, LogOffers::default()),
        Step::Launch => run_step(config, interrupts, NoopTasks::prepare(config)?),
        Step::Images => run_step(config, interrupts, ImageBatch::prepare(config)?),
    }
}

/// Subscribes, handles events until the work is done or Ctrl+C, and says
/// what was done.
fn run_step<W: Work>(
    config: &Config,
    interrupts: Interrupts,
    mut work: W,
) -> Result<Outcome, SchedulerError> {
    // Step 4: the framework id file, reconnecting, reconciliation.
    let mut failover = Failover::new(config, interrupts);
    // Step 4: the framework of an earlier process, if `--framework-id-file`
    // holds its id; `None` asks the master for a new one.
    let id = failover.earlier_framework(&mut work);
    // `SUBSCRIBE`: the master answers with the stream of our events.
    let attempt = master::connect(config, id.clone());
    // Step 4: a master that is not ready yet is tried again.
    let Some(master) = failover.retry_until_subscribed(attempt, id)? else {
        // Step 4: Ctrl+C while waiting for the master.
        return Ok(failover.interrupted(work));
    };
    let mut scheduler = Scheduler {
        config,
        master,
        work,
        failover,
    };
    match scheduler.run_until_done()? {
        Flow::Interrupted => Ok(scheduler.stop()),
        Flow::Continue | Flow::Done => Ok(scheduler.work.finish(config, false)),
    }
}

/// A running framework: its line to the master, and what it keeps between
/// events.
pub struct Scheduler<'a, W: Work> {
    config: &'a Config,
    master: MasterConnection,
    /// The step's task table.
    work: W,
    /// Step 4: the framework id file, reconciliation, re-subscribing.
    failover: Failover<'a>,
}

/// Whether the event loop goes on.
#[derive(Debug)]
pub enum Flow {
    /// Wait for the next event.
    Continue,
    /// The step's work is done and the framework torn down.
    Done,
    /// Ctrl+C: stop without finishing the work.
    Interrupted,
}

impl<W: Work> Scheduler<'_, W> {
    /// The event loop: one event at a time, until the work is done or
    /// Ctrl+C.
    fn run_until_done(&mut self) -> Result<Flow, SchedulerError> {
        loop {
            let handled = match self.master.next_input() {
                Ok(Input::Event(event)) => self.handle(&event),
                Ok(Input::Interrupted) => Ok(Flow::Interrupted),
                Err(err) => Err(SchedulerError::Events(err)),
            };
            match handled {
                Ok(Flow::Continue) => {}
                Ok(flow) => return Ok(flow),
                // Step 4: a lost master is subscribed to again; any other
                // error ends the run.
                Err(err) => match self.failover.recover(err, &self.master, &mut self.work)? {
                    Some(master) => self.master = master,
                    None => return Ok(Flow::Interrupted),
                },
            }
        }
    }

    /// Reacts to one event: one arm per Mesos event type.
    pub fn handle(&mut self, event: &Event) -> Result<Flow, SchedulerError> {
        match event.type_() {
            event::Type::SUBSCRIBED => self.subscribed(&event.subscribed)?,
            event::Type::OFFERS => self.offers(&event.offers.offers)?,
            // An offer we hold is no longer valid.
            event::Type::RESCIND => {
                log::info!("Offer {} was rescinded", event.rescind.offer_id.value());
            }
            event::Type::UPDATE => self.update(&event.update.status)?,
            // Data an executor sent us (ours sends none).
            event::Type::MESSAGE => log::info!(
                "Message from executor {}: {} bytes",
                event.message.executor_id.value(),
                event.message.data().len()
            ),
            // An executor exited or an agent was lost. The tasks' own
            // updates (`TASK_FAILED`, `TASK_LOST`) tell us what to redo.
            event::Type::FAILURE => log_lines::failure(&event.failure),
            // The master gave up on this framework; the run ends.
            event::Type::ERROR => {
                return Err(SchedulerError::from_error_event(event.error.message()));
            }
            // Heartbeats only prove the stream is alive (step 4: a master
            // silent for five heartbeat intervals is lost, `limits.rs`).
            event::Type::HEARTBEAT => {}
            other => log::debug!("Ignoring event {other:?}"),
        }
        self.after_event()
    }

    /// `SUBSCRIBED`: the master knows us now, under this framework id.
    fn subscribed(&mut self, subscribed: &event::Subscribed) -> Result<(), SchedulerError> {
        let id = subscribed.framework_id.clone().unwrap_or_default();
        // Step 4: kept for a restarted scheduler (`--framework-id-file`).
        self.failover.remember(id.value());
        log::info!("Registered with framework ID {}", id.value());
        // Step 4: back after a break as the same framework, ask what
        // became of our tasks.
        self.failover
            .reconcile(&self.master, &self.work, id.value())?;
        self.master
            .subscribed(id, subscribed.heartbeat_interval_seconds());
        Ok(())
    }

    /// `OFFERS`: each offer is used for tasks, or declined.
    fn offers(&mut self, offers: &[Offer]) -> Result<(), SchedulerError> {
        for offer in offers {
            log_lines::offer(offer);
            // Step 4: an executor left by an earlier process goes first.
            if self
                .failover
                .clear_stale_executor(&self.master, &self.work, offer)?
            {
                continue;
            }
            let tasks = self.work.tasks_for(offer);
            if tasks.is_empty() {
                self.decline(offer)?;
            } else {
                self.launch(offer, tasks)?;
            }
        }
        Ok(())
    }

    /// Gives an offer back. Holding it would keep its resources from every
    /// framework, since Mesos sets no offer timeout by default; the filter
    /// keeps them away from us for `--refuse-seconds`.
    fn decline(&self, offer: &Offer) -> Result<(), SchedulerError> {
        let seconds = self.config.refuse_seconds;
        log::info!("Declining offer {} for {seconds} s", offer.id.value());
        let offer_id = offer.id.clone().unwrap_or_default();
        Ok(self.master.decline(vec![offer_id], seconds)?)
    }

    /// Runs tasks on an offer (`ACCEPT` with a `LAUNCH` operation).
    fn launch(&mut self, offer: &Offer, tasks: Vec<TaskInfo>) -> Result<(), SchedulerError> {
        log::info!(
            "Launching {} for offer {}",
            log_lines::counted(tasks.len(), "task"),
            offer.id.value()
        );
        let ids: Vec<String> = tasks.iter().map(|t| t.task_id.value().into()).collect();
        let refuse_seconds = self.config.refuse_seconds;
        if let Err(err) = self.master.launch(offer, tasks, refuse_seconds) {
            // Step 4: the master did not take the launch (it is restarting,
            // say): the work goes back in the queue, its attempt unused.
            self.work.unlaunch(&ids);
            return Err(err.into());
        }
        Ok(())
    }

    /// `UPDATE`: a task changed state. The agent resends an update until we
    /// acknowledge it, and holds back the task's next one until then; the
    /// master's own updates (they have no uuid: answers to reconciliation,
    /// refused launches) are not acknowledged. So every update is counted
    /// at most once.
    fn update(&mut self, status: &TaskStatus) -> Result<(), SchedulerError> {
        log_lines::update(status);
        // Step 4: answers to reconciliation, and tasks of earlier processes.
        self.failover.update(&self.master, &self.work, status)?;
        self.work.update(status);
        if status.has_uuid() {
            self.master.acknowledge(status)?;
        }
        Ok(())
    }

    /// After every event: ask for offers only while work waits for them,
    /// and end once the work is done.
    fn after_event(&mut self) -> Result<Flow, SchedulerError> {
        // Step 4: reconciliation, and the limit of tasks failing in a row.
        self.failover.after_event(&self.master, &self.work)?;
        // Step 3: the results page.
        self.work.show_progress();
        self.master.want_offers(self.work.wants_offers())?;
        if !self.work.done() {
            return Ok(Flow::Continue);
        }
        // `TEARDOWN` kills what still runs and ends the stream.
        self.master.teardown()?;
        log::info!("All done; the framework is torn down");
        // Step 4: a later run starts a new framework.
        self.failover.finished();
        Ok(Flow::Done)
    }

    /// Ctrl+C: `TEARDOWN`, and the master kills our tasks and executors.
    /// Step 4 may leave the framework to a later process instead.
    fn stop(self) -> Outcome {
        // Step 4: `--failover-timeout` with `--framework-id-file` leaves it
        // to a later process.
        if !self.failover.leave_framework(Some(&self.master)) {
            log::info!("interrupted: tearing down");
            if let Err(err) = self.master.teardown() {
                log::warn!("Could not tear down the framework: {err}");
            }
        }
        self.work.finish(self.config, true)
    }
}
