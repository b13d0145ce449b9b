//! Each executor's sandbox, and the fetcher that downloads the executor's
//! `CommandInfo.URI`s into it before it starts: straight into the sandbox,
//! or through the [fetcher cache](super::cache) for a URI marked `cache`.

use super::cache;
use super::executors::Launch;
use super::LOG_TARGET;
use crate::proto::mesos::command_info::URI;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The largest file the fetcher downloads.
const MAX_FETCH_BYTES: u64 = 512 * 1024 * 1024;

/// Makes the sandbox and fetches the URIs into it, as Mesos's fetcher does.
pub(super) fn prepare_sandbox(launch: &Launch) -> Result<(), String> {
    std::fs::create_dir_all(&launch.sandbox).map_err(|err| {
        format!(
            "could not create sandbox {}: {err}",
            launch.sandbox.display()
        )
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    for uri in &launch.command.uris {
        let path = launch.sandbox.join(file_name(uri)?);
        let url = uri.value();
        let download = |into: &Path| download(&agent, url, into);
        if !uri.cache() {
            download(&path)?;
        } else {
            // As Mesos's fetcher: when the cache fails, fetch around it.
            let cached = launch.cache.fetch(&launch.user, url, download);
            match cached.and_then(|cached| cache::place(&cached, &path)) {
                Ok(()) => {}
                Err(err) => {
                    log::warn!(target: LOG_TARGET, "Fetching {url} without the cache: {err}");
                    download(&path)?;
                }
            }
        }
        if uri.executable() {
            make_executable(&path)?;
        }
        log::info!(
            target: LOG_TARGET,
            "Fetched {url} into the sandbox of executor {}",
            launch.key.1
        );
    }
    Ok(())
}

/// The name a URI gets in the sandbox: `output_file`, or the last part of
/// its path. One plain file name: no folder, no `..`, no drive (`C:`).
fn file_name(uri: &URI) -> Result<PathBuf, String> {
    let url = uri.value();
    let name = match uri.output_file() {
        "" => url
            .split('?')
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or(""),
        name => name,
    };
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(name)), None) => Ok(PathBuf::from(name)),
        _ => Err(format!("cannot derive a file name from URI {url}")),
    }
}

/// Downloads `url` into the file `path`.
fn download(agent: &ureq::Agent, url: &str, path: &Path) -> Result<(), String> {
    let response = agent
        .get(url)
        .call()
        .map_err(|err| format!("failed to fetch {url}: {err}"))?;
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(MAX_FETCH_BYTES)
        .reader();
    let mut file = std::fs::File::create(path)
        .map_err(|err| format!("could not write {}: {err}", path.display()))?;
    std::io::copy(&mut reader, &mut file)
        .map(|_| ())
        .map_err(|err| format!("failed to fetch {url}: {err}"))
}

/// `URI.executable`: the fetched file may be run, which on Unix is its
/// mode bits.
#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|err| format!("could not make {} executable: {err}", path.display()))
}

/// `URI.executable` on Windows: any file whose name ends in `.exe` runs,
/// so there is nothing to set; Mesos's fetcher sets nothing there either
/// (`chmodExecutable` in Mesos's `src/launcher/fetcher.cpp`).
#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::CommandInfo;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    const BODY: &[u8] = b"#!/bin/sh\necho an executor\n";

    /// A launch of executor `id`, for `user`, whose one URI is `url`,
    /// marked `cache`.
    fn launch(
        dir: &Path,
        id: &str,
        user: &str,
        url: &str,
        cache: &Arc<cache::FetcherCache>,
    ) -> Launch {
        let mut uri = URI::new();
        uri.set_value(url.to_string());
        uri.set_cache(true);
        uri.set_executable(true);
        uri.set_output_file("executor".into());
        let mut command = CommandInfo::new();
        command.uris.push(uri);
        Launch {
            agent: 0,
            key: ("F1".into(), id.into()),
            command,
            sandbox: dir.join(id),
            user: user.into(),
            cache: Arc::clone(cache),
            environment: Vec::new(),
            kill: Arc::new(AtomicBool::new(false)),
        }
    }

    #[test]
    fn a_cached_uri_is_downloaded_once_per_user_and_linked_into_each_sandbox() {
        let dir = std::env::temp_dir().join(format!("fetcher-cache-{}", crate::random::token()));
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a free port"));
        let url = format!("http://{}/executor-abc", server.server_addr());
        let downloads = Arc::new(AtomicUsize::new(0));
        let serving = {
            let (server, downloads) = (Arc::clone(&server), Arc::clone(&downloads));
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    downloads.fetch_add(1, Ordering::SeqCst);
                    let _ = request.respond(tiny_http::Response::from_data(BODY));
                }
            })
        };
        let cache = Arc::new(cache::FetcherCache::new(dir.join("fetch")));

        let first = prepare_sandbox(&launch(&dir, "E1", "", &url, &cache));
        let second = prepare_sandbox(&launch(&dir, "E2", "", &url, &cache));
        let after_two = downloads.load(Ordering::SeqCst);
        // The same URI for another user is another cache entry.
        let other_user = prepare_sandbox(&launch(&dir, "E3", "alice", &url, &cache));
        let after_three = downloads.load(Ordering::SeqCst);
        let contents: Vec<_> = ["E1", "E2", "E3"]
            .iter()
            .map(|id| std::fs::read(dir.join(id).join("executor")).ok())
            .collect();
        #[cfg(unix)]
        let linked = {
            use std::os::unix::fs::MetadataExt;
            let inode = |id: &str| {
                std::fs::metadata(dir.join(id).join("executor"))
                    .map(|m| m.ino())
                    .ok()
            };
            inode("E1").is_some() && inode("E1") == inode("E2") && inode("E1") != inode("E3")
        };
        server.unblock();
        let _ = serving.join();
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!((first, second, other_user), (Ok(()), Ok(()), Ok(())));
        assert_eq!(after_two, 1, "two sandboxes, one download");
        assert_eq!(after_three, 2, "another user downloads again");
        assert!(
            contents.iter().all(|c| c.as_deref() == Some(BODY)),
            "{contents:?}"
        );
        #[cfg(unix)]
        assert!(linked, "the sandboxes do not share the cache file");
    }
}
