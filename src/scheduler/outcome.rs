//! How a run ends: the table of step 3, and the results page kept up with
//! `--keep-serving`.
//!
//! *Plumbing: a reader may skip this file.*

use super::work::{Table, Work};
use super::Config;
use crate::scheduler::batch::ImageBatch;
use crate::server::FileServer;

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

impl Work {
    /// The end of the run: step 3 prints its table and may keep its
    /// results page (the server, and the batch whose originals it serves).
    pub fn finish(self, config: &Config) -> Outcome {
        let done = |succeeded| Outcome {
            succeeded,
            results: None,
        };
        match (self.table, self.server) {
            (Table::Images(batch), Some(server)) => {
                batch.print_table();
                let succeeded = batch.all_succeeded();
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
                done(succeeded)
            }
            (Table::Launch(noop), _) => {
                log::info!("{} tasks finished", noop.finished());
                done(true)
            }
            _ => done(true),
        }
    }
}
