//! How a run ends: the table of step 3, and the results page kept up with
//! `--keep-serving`.
//!
//! *Plumbing: a reader may skip this file.*

use super::work::{Table, Work};
use super::{Config, Interrupts};
use crate::scheduler::batch::ImageBatch;
use crate::server::FileServer;
use std::path::Path;

/// How a run ended: whether all work succeeded, and (with
/// `--keep-serving`) the results page, still up.
pub struct Outcome {
    /// Whether every task (step 2) or image (step 3) succeeded.
    pub succeeded: bool,
    /// Whether Ctrl+C stopped the run before its work was done.
    pub interrupted: bool,
    results: Option<(FileServer, ImageBatch)>,
}

impl Outcome {
    /// Keeps the results page up until Ctrl+C. The caller releases
    /// everything else (such as an embedded cluster) first.
    pub fn serve_results(self, interrupts: &Interrupts) {
        if let Some((server, _batch)) = self.results {
            log::info!(
                "Results: {}/ (serving until Ctrl+C, --keep-serving)",
                server.base_url()
            );
            interrupts.wait();
        }
    }
}

/// Removes the hidden temporary files of uploads that Ctrl+C cut short
/// (`.<name>.part-<token>`, see `server/upload.rs`): only finished results
/// stay in the output folder.
fn remove_partial_uploads(output_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".part-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

impl Work {
    /// The end of the run, done or `interrupted`: step 3 prints its table
    /// and may keep its results page (the server, and the batch whose
    /// originals it serves).
    pub fn finish(self, config: &Config, interrupted: bool) -> Outcome {
        let done = |succeeded| Outcome {
            succeeded,
            interrupted,
            results: None,
        };
        match (self.table, self.server) {
            (Table::Images(batch), Some(server)) if interrupted => {
                batch.print_table();
                // No upload can arrive once the server is down.
                drop(server);
                remove_partial_uploads(&config.output_dir);
                let output_dir = config.output_dir.display();
                log::info!("The finished results are in {output_dir}");
                done(false)
            }
            (Table::Images(batch), Some(server)) => {
                batch.print_table();
                let succeeded = batch.all_succeeded();
                server.set_progress(batch.progress());
                if config.keep_serving {
                    return Outcome {
                        succeeded,
                        interrupted,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hidden_partial_uploads_are_removed() {
        let dir = std::env::temp_dir().join(format!("partial-{}", crate::random::token()));
        std::fs::create_dir_all(&dir).expect("create a folder");
        let names = [
            "001-a-inverted.png",
            ".001-b-inverted.png.part-0123abcd",
            ".keep",
        ];
        for name in names {
            std::fs::write(dir.join(name), b"x").expect("write a file");
        }
        remove_partial_uploads(&dir);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("list the folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        left.sort();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(left, [".keep", "001-a-inverted.png"]);
    }
}
