//! What a workshop step does with offers and updates.
//!
//! The event loop (`mod.rs`) is the same for every step; what differs is
//! the step's [`Work`]: step 1's [`LogOffers`] launches nothing, step 2's
//! [`NoopTasks`](super::noop::NoopTasks) fills offers with no-op tasks,
//! step 3's [`ImageBatch`](super::batch::ImageBatch) runs one task per
//! image. The loop asks each of them four questions.

use super::{Config, Outcome};
use crate::proto::mesos::{Offer, TaskInfo, TaskStatus};

/// A step's task table, as the event loop sees it. Step 4 asks more of
/// it ([`Resume`], below).
pub trait Work: Resume {
    /// The tasks to launch on this offer; none, and the offer is declined.
    fn tasks_for(&mut self, offer: &Offer) -> Vec<TaskInfo>;

    /// A task changed state.
    fn update(&mut self, status: &TaskStatus);

    /// Whether tasks wait for offers. While none does, the scheduler asks
    /// the master for no offers (`SUPPRESS`).
    fn wants_offers(&self) -> bool;

    /// Whether the work is done, and the framework can end.
    fn done(&self) -> bool;

    /// The end of the run, done or `interrupted`: what it did, said.
    fn finish(self, config: &Config, interrupted: bool) -> Outcome;

    /// Step 3: brings the results page up to date, now and then.
    fn show_progress(&mut self) {}
}

/// Step 4: what surviving failures asks of a step's task table (see
/// `failover.rs`). The defaults are for a table without tasks, as step 1's.
pub trait Resume {
    /// The tasks launched and not yet ended, with their agents.
    fn running(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The master did not take these tasks' launch (it is
    /// restarting, say): their work goes back in the queue, its attempt
    /// unused.
    fn unlaunch(&mut self, _task_ids: &[String]) {}

    /// The running tasks died with the framework (Mesos's rule
    /// without a failover timeout): their work is launched again.
    fn forget_running(&mut self) {}

    /// The framework of an earlier scheduler process is taken over
    /// (`--framework-id-file`): go on from where it stopped.
    fn continue_earlier_run(&mut self) {}

    /// Whether the offer's agent runs an executor of ours that this
    /// process did not launch (see `TaskPlan::stale_executor`).
    fn stale_executor(&self, _offer: &Offer) -> bool {
        false
    }

    /// How many tasks failed in a row and how the last one failed,
    /// once that is `max` or more (`--max-failures`).
    fn failing(&self, _max: u32) -> Option<(u32, String)> {
        None
    }
}

/// Step 1: every offer is logged and declined; nothing is launched.
#[derive(Default)]
pub struct LogOffers {
    offers: usize,
}

/// Step 1 has no tasks to resume.
impl Resume for LogOffers {}

impl Work for LogOffers {
    fn tasks_for(&mut self, _offer: &Offer) -> Vec<TaskInfo> {
        self.offers += 1;
        Vec::new()
    }

    fn update(&mut self, _status: &TaskStatus) {}

    /// Step 1 looks at offers without wanting them: it asks for no more
    /// and no fewer than the master sends.
    fn wants_offers(&self) -> bool {
        true
    }

    /// Step 1 runs until Ctrl+C.
    fn done(&self) -> bool {
        false
    }

    fn finish(self, _config: &Config, interrupted: bool) -> Outcome {
        let offers = super::log_lines::counted(self.offers, "offer");
        println!("{offers} received and declined (step 1 launches nothing)");
        Outcome::new(true, interrupted)
    }
}
