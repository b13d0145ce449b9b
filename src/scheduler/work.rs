//! What a workshop step does with offers and updates.
//!
//! The event loop (`mod.rs`) is the same for every step; what differs is
//! the step's [`Work`]: step 1's [`LogOffers`] launches nothing, step 2's
//! [`NoopTasks`](super::noop::NoopTasks) fills offers with no-op tasks,
//! step 3's [`ImageBatch`](super::batch::ImageBatch) runs one task per
//! image. The loop asks each of them four questions.

use super::{Config, Outcome, Resume};
use crate::proto::mesos::{Offer, TaskInfo, TaskStatus};

/// A step's task table, as the event loop sees it. Step 4 asks more of
/// it ([`Resume`], `failover.rs`).
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
        let noun = if self.offers == 1 { "offer" } else { "offers" };
        println!(
            "{} {noun} received and declined (step 1 launches nothing)",
            self.offers
        );
        Outcome::new(true, interrupted)
    }
}
