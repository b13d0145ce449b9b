//! Each executor's sandbox, and the fetcher that downloads the executor's
//! `CommandInfo.URI`s into it before it starts.

use super::executors::Launch;
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
        let url = uri.value();
        let name = match uri.output_file() {
            "" => url
                .split('?')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
            name => name.to_string(),
        };
        if name.is_empty() || name.contains('/') || name == ".." || name == "." {
            return Err(format!("cannot derive a file name from URI {url}"));
        }
        let path = launch.sandbox.join(&name);
        let response = agent
            .get(url)
            .call()
            .map_err(|err| format!("failed to fetch {url}: {err}"))?;
        let mut reader = response
            .into_body()
            .into_with_config()
            .limit(MAX_FETCH_BYTES)
            .reader();
        let mut file = std::fs::File::create(&path)
            .map_err(|err| format!("could not write {}: {err}", path.display()))?;
        std::io::copy(&mut reader, &mut file)
            .map_err(|err| format!("failed to fetch {url}: {err}"))?;
        if uri.executable() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|err| format!("could not make {} executable: {err}", path.display()))?;
        }
        log::info!(
            "Fetched {url} into the sandbox of executor {}",
            launch.key.1
        );
    }
    Ok(())
}
