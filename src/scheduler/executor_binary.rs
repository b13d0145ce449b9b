//! Finding the executor binary that the agent will fetch.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Mesos runs an executor by downloading it (a `CommandInfo.URI`) into the
//! task's sandbox, so the scheduler must have the binary at hand to serve.
//! `cargo run --bin scheduler` builds only the scheduler, so on a fresh
//! checkout the executor may not exist yet; in that one case we build it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The executor binary: `--executor PATH` if given, else the `executor`
/// next to this program, else (under `cargo run`) freshly built by cargo.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "--executor {} does not exist or is not a file",
                path.display()
            ))
        };
    }
    let current = std::env::current_exe()
        .map_err(|err| format!("cannot locate the scheduler binary: {err}"))?;
    let directory = current.parent().unwrap_or(Path::new("."));
    let beside = directory.join("executor");
    if beside.is_file() {
        return Ok(beside);
    }
    // `cargo run` tells the program where cargo and the package are.
    if let (Ok(cargo), Ok(manifest_dir)) =
        (std::env::var("CARGO"), std::env::var("CARGO_MANIFEST_DIR"))
    {
        build_with_cargo(&cargo, Path::new(&manifest_dir), directory)?;
        if beside.is_file() {
            return Ok(beside);
        }
    }
    Err(format!(
        "the executor binary was not found at {}; build it with `cargo build --bin executor` \
         (add --release for a release scheduler) or pass --executor PATH",
        beside.display()
    ))
}

/// Builds the executor with the same profile as the running scheduler,
/// which cargo puts in the same directory.
fn build_with_cargo(cargo: &str, manifest_dir: &Path, target_dir: &Path) -> Result<(), String> {
    let profile = match target_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    log::info!("The executor binary is missing; building it with `cargo build --bin executor --profile {profile}` (first run only)");
    let status = Command::new(cargo)
        .args(["build", "--bin", "executor", "--profile", profile])
        .current_dir(manifest_dir)
        .status()
        .map_err(|err| format!("could not run cargo to build the executor: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the executor failed ({status}); run `cargo build --bin executor` to see why"
        ))
    }
}
