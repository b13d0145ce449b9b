//! A directory of its own for one test.
//!
//! Tests run in parallel, and several start binaries that write files and
//! start executors of their own. Each test therefore works in a directory
//! nobody else uses, and takes everything it made with it when it ends,
//! whether it passed or failed.

use super::processes::{kill_processes, processes_inside};
use std::path::{Path, PathBuf};

/// A directory unique to one test, named after the test file and `label`.
/// Dropping it kills any process still working inside it (an executor left
/// behind by a failed test) and removes it.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new directory under the system's temporary directory.
    pub fn new(label: &str) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), label)
    }

    /// A new directory under `base`.
    pub fn new_in(base: &Path, label: &str) -> TempDir {
        // The process id and a random token keep parallel tests, and runs
        // of the same test file, apart.
        let path = base.join(format!(
            "{}-{label}-{}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id(),
            mesos_tutorial::random::token()
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The names in the directory, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("list the directory")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        kill_processes(&processes_inside(&self.0));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
