//! The cluster's work folder, where the agent makes sandboxes.
//!
//! As Mesos's `--work_dir`, a folder that was given is the user's: it is
//! made if missing and kept. Without one, the cluster makes its own under
//! the temporary directory, `mesos-local-<pid>-<port>`, and removes it when
//! it stops (`Cluster`'s `Drop`, which `mesos-local` reaches on Ctrl+C too).
//! A process that is killed outright cannot clean up, so each start removes
//! the folders such runs left behind: those whose process is gone, where
//! `/proc` tells (Linux), or else whose [`ALIVE_MARK`] has not been touched
//! for [`ABANDONED_AFTER`] (a running cluster touches it every
//! [`MARK_EVERY`]).
//!
//! On Windows the temporary directory is `%TEMP%`, usually
//! `C:\Users\<name>\AppData\Local\Temp`: short enough for the sandboxes
//! below it to stay within Windows's 260 characters, as programs that do
//! not handle longer paths (`cmd` among them) need. Mesos's
//! `docs/windows.md` asks for a short `--work_dir` for them too.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How the folders the cluster makes for itself are named.
const PREFIX: &str = "mesos-local-";

/// A file in a folder of our own whose modification time says the cluster
/// that made the folder still runs.
pub const ALIVE_MARK: &str = ".mesos-local-alive";

/// How often a running cluster touches its [`ALIVE_MARK`].
pub const MARK_EVERY: Duration = Duration::from_secs(10);

/// How long after its last touch a folder counts as abandoned, where the
/// operating system cannot tell whether its process runs.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(120);

/// The folder a cluster makes for itself: its pid tells whose it is, the
/// master's port tells two clusters of one process apart.
pub(super) fn own_folder(master_port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("{PREFIX}{}-{master_port}", std::process::id()))
}

/// Removes the folders that killed runs left in the temporary directory.
/// A folder another user owns cannot be removed, and is left alone.
pub(super) fn remove_abandoned() {
    let own = std::process::id();
    let left_over = |folder: &Path, pid| pid != own && abandoned(folder, pid);
    for folder in crate::leftovers::remove_abandoned(&std::env::temp_dir(), PREFIX, left_over) {
        let folder = folder.display();
        log::info!("Removed {folder}, left behind by an earlier run that was killed");
    }
}

fn abandoned(folder: &Path, pid: u32) -> bool {
    if let Some(gone) = crate::leftovers::process_gone(pid) {
        return gone;
    }
    // No /proc (macOS, Windows): the mark's age, or the folder's if the
    // cluster stopped before its first touch.
    let touched = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let last = touched(&folder.join(ALIVE_MARK)).or_else(|| touched(folder));
    last.and_then(|last| SystemTime::now().duration_since(last).ok())
        .is_some_and(|age| age > ABANDONED_AFTER)
}

/// Touches the folder's [`ALIVE_MARK`], if the folder exists yet (it is made
/// with the first sandbox).
pub(super) fn mark_alive(folder: &Path) {
    if !folder.is_dir() {
        return;
    }
    let mark = std::fs::File::create(folder.join(ALIVE_MARK));
    if let Ok(mark) = mark {
        let _ = mark.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_a_gone_process_is_removed_and_a_live_one_kept() {
        // A pid that cannot run now: above Linux's pid_max limit (2^22).
        let gone = std::env::temp_dir().join(format!("{PREFIX}4294967001-5050"));
        // pid 1 always runs; its mark is fresh.
        let live = std::env::temp_dir().join(format!("{PREFIX}1-{}", std::process::id()));
        for folder in [&gone, &live] {
            std::fs::create_dir_all(folder.join("frameworks")).expect("temp is writable");
        }
        mark_alive(&live);
        assert!(live.join(ALIVE_MARK).is_file());
        // An old mark, where /proc cannot tell.
        let old = SystemTime::now() - ABANDONED_AFTER - Duration::from_secs(1);
        let mark = std::fs::File::create(gone.join(ALIVE_MARK)).expect("temp is writable");
        mark.set_modified(old).expect("mtime can be set");

        remove_abandoned();
        let (gone_left, live_left) = (gone.exists(), live.exists());
        let _ = std::fs::remove_dir_all(&gone);
        let _ = std::fs::remove_dir_all(&live);
        assert!(!gone_left, "the folder of a killed run stayed");
        assert!(live_left, "the folder of a running process was removed");
    }
}
