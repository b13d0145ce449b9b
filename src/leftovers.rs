//! Temporary folders that a process names after itself (`<prefix><pid>-…`)
//! and removes when it stops, and the sweep that removes those of processes
//! killed before they could: the embedded cluster's work folder, the front
//! door's private channel, the demo images.
//!
//! *Plumbing: a reader may skip this file.*

use std::path::{Path, PathBuf};

/// Whether process `pid` has ended, where the system tells cheaply
/// (Linux's `/proc`); `None` elsewhere.
pub fn process_gone(pid: u32) -> Option<bool> {
    // On Windows `/proc` would name a folder of the current drive: under
    // wine, Linux's own, whose pids are not Windows's.
    if cfg!(windows) {
        return None;
    }
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then(|| !proc.join(pid.to_string()).exists())
}

/// Removes each folder in `parent` named `<prefix><pid>-…` that
/// `abandoned(folder, pid)` says is left over, and returns those removed.
/// Another user's folders cannot be removed, and stay.
pub fn remove_abandoned(
    parent: &Path,
    prefix: &str,
    abandoned: impl Fn(&Path, u32) -> bool,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let owner = |name: &str| name.strip_prefix(prefix)?.split('-').next()?.parse().ok();
    let named = entries.flatten().filter_map(|entry| {
        let pid = owner(entry.file_name().to_str()?)?;
        Some((entry.path(), pid))
    });
    let left = named.filter(|(folder, pid)| abandoned(folder, *pid));
    left.filter_map(|(folder, _)| std::fs::remove_dir_all(&folder).ok().map(|()| folder))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    #[test]
    fn only_folders_with_the_prefix_and_said_abandoned_are_removed() {
        let parent = TestDir::new("leftovers-test");
        let folder = |name: &str| {
            let folder = parent.0.join(name);
            std::fs::create_dir_all(folder.join("inside")).expect("temp is writable");
            folder
        };
        let (gone, kept, other) = (folder("p-7-a"), folder("p-8-b"), folder("q-7-c"));
        let removed = remove_abandoned(&parent.0, "p-", |_, pid| pid == 7);
        let left = (gone.exists(), kept.exists(), other.exists());
        assert_eq!(removed, vec![gone]);
        assert_eq!(left, (false, true, true));
    }

    #[test]
    fn this_process_is_not_gone() {
        let answer = process_gone(std::process::id());
        // On Linux the answer comes from `/proc`: a definite "not gone".
        #[cfg(target_os = "linux")]
        assert_eq!(answer, Some(false));
        // Elsewhere `/proc` may be missing (macOS, Windows: `None`) or mounted
        // (some BSDs: `Some(false)`); either way this process is not gone.
        #[cfg(not(target_os = "linux"))]
        assert_ne!(answer, Some(true));
    }
}
