//! How a run ended, and the results page kept up with `--keep-serving`.
//!
//! *Plumbing: a reader may skip this file.*

use super::Interrupts;
use crate::scheduler::batch::ImageBatch;

/// How a run ended: whether all work succeeded, and (with
/// `--keep-serving`) the results page, still up.
pub struct Outcome {
    /// Whether every task (step 2) or image (step 3) succeeded.
    pub succeeded: bool,
    /// Whether Ctrl+C stopped the run before its work was done.
    pub interrupted: bool,
    /// The results page's address, and the batch that serves it.
    results: Option<(String, ImageBatch)>,
}

impl Outcome {
    /// A run that ended, all its work `succeeded` or not.
    pub fn new(succeeded: bool, interrupted: bool) -> Outcome {
        Outcome {
            succeeded,
            interrupted,
            results: None,
        }
    }

    /// A finished step 3 whose results page, at `page`, stays up
    /// (`--keep-serving`) with the batch, whose file server serves it.
    pub fn serving(succeeded: bool, page: String, batch: ImageBatch) -> Outcome {
        Outcome {
            succeeded,
            interrupted: false,
            results: Some((page, batch)),
        }
    }

    /// Keeps the results page up until Ctrl+C, and says whether it did
    /// (a run without results has no page). The caller releases everything
    /// else (such as an embedded cluster) first.
    pub fn serve_results(self, interrupts: &Interrupts) -> bool {
        let Some((page, _batch)) = self.results else {
            return false;
        };
        log::info!("Results: {page} (serving until Ctrl+C, --keep-serving)");
        interrupts.wait();
        true
    }
}
