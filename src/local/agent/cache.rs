//! The fetcher cache: a URI whose `CommandInfo.URI.cache` is set is
//! downloaded once, and each sandbox gets it from here.
//!
//! The rules are those of Mesos's fetcher cache (`docs/fetcher.md`):
//!
//! - "the combination of user name and URI uniquely identifies a cacheable
//!   fetch result"; a task without a user counts as one more user;
//! - a URI met for the first time is downloaded into the cache, then put in
//!   the sandbox from there; met again, it is not downloaded again, and
//!   requests that compete for it wait for the first one to finish;
//! - an entry is never refreshed: a framework names changed content with a
//!   new URI (ours names the executor by a hash of its content);
//! - if anything goes wrong with the cache, the fetcher downloads straight
//!   into the sandbox instead (see `sandbox.rs`).
//!
//! Mesos copies the cache file into the sandbox; this agent makes a hard
//! link where it can (the same file system) and copies only where it
//! cannot, so a 169 MB development executor is not copied into every
//! sandbox. A link shares its file's permissions: making the sandbox's file
//! executable makes the cache file executable too. The cache lives in the
//! work folder, as Mesos's `--fetcher_cache_dir` does by default, and goes
//! with it; it is not bounded in size (Mesos's `--fetcher_cache_size`), as
//! a single-node development cluster fetches few distinct URIs. A hard
//! link, not a symbolic one: on Windows only administrators and Developer
//! Mode may make symbolic links (Mesos's `docs/windows.md`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The cache of one agent, shared by the threads that fetch.
pub(in crate::local) struct FetcherCache {
    dir: PathBuf,
    entries: Mutex<HashMap<(String, String), Arc<Entry>>>,
}

/// One (user, URI) of the cache.
struct Entry {
    /// Cache files are numbered in the order their URIs are met: the URI
    /// itself may be long and hold any character.
    number: usize,
    /// The cache file once it is whole. Held while it is downloaded, so
    /// that competing requests for this URI wait while others go ahead.
    file: Mutex<Option<PathBuf>>,
}

impl FetcherCache {
    pub(in crate::local) fn new(dir: PathBuf) -> FetcherCache {
        FetcherCache {
            dir,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache file for `url` as `user` fetches it, downloaded by
    /// `download` (into the path it is given) if it is not cached yet.
    pub(super) fn fetch(
        &self,
        user: &str,
        url: &str,
        download: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, String> {
        let entry = {
            let mut entries = lock(&self.entries);
            let number = entries.len();
            let key = (user.to_string(), url.to_string());
            let entry = entries.entry(key).or_insert_with(|| {
                Arc::new(Entry {
                    number,
                    file: Mutex::new(None),
                })
            });
            Arc::clone(entry)
        };
        let mut file = lock(&entry.file);
        if let Some(path) = file.as_ref().filter(|path| path.is_file()) {
            return Ok(path.clone());
        }
        std::fs::create_dir_all(&self.dir).map_err(|err| {
            format!(
                "could not create the fetcher cache {}: {err}",
                self.dir.display()
            )
        })?;
        let path = self.dir.join(entry.number.to_string());
        // Downloaded under another name first, so that a download cut
        // short never passes for a whole cache file.
        let partial = self.dir.join(format!("{}.partial", entry.number));
        let result = download(&partial).and_then(|()| {
            std::fs::rename(&partial, &path)
                .map_err(|err| format!("could not fill the fetcher cache: {err}"))
        });
        if let Err(err) = result {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
        *file = Some(path.clone());
        Ok(path)
    }
}

/// Puts the cache file `cached` into a sandbox at `path`: a hard link, or
/// a copy where no link can be made (another file system).
pub(super) fn place(cached: &Path, path: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    if std::fs::hard_link(cached, path).is_ok() {
        return Ok(());
    }
    std::fs::copy(cached, path).map(|_| ()).map_err(|err| {
        format!(
            "could not copy {} into the sandbox: {err}",
            cached.display()
        )
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it leaves a map or an entry that is still
    // whole: carry on with it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
