//! Finding the executor binary that the agent will fetch, naming it by its
//! content, and the command that starts it on the agent.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Mesos runs an executor by downloading it (a `CommandInfo.URI`) into the
//! task's sandbox, so the scheduler must have the binary at hand to serve.
//! `cargo run --bin scheduler` builds only the scheduler, so on a fresh
//! checkout the executor may not exist yet; in that one case we build it.

use ring::digest;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Variables `cargo run` sets for the program it runs, all describing this
/// package (cargo's reference lists them under "Environment variables Cargo
/// sets for crates"), plus every `CARGO_PKG_*`. A nested cargo must not
/// inherit them: build scripts such as ring's ask to be rerun when some of
/// them change (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...), so a build
/// that saw them would be redone by the next plain `cargo build`. The
/// user's own settings (`RUSTFLAGS`, `CARGO_TARGET_DIR`, `CARGO_HOME`, ...)
/// pass through.
const SET_BY_CARGO_RUN: &[&str] = &[
    "CARGO",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

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
    let beside = directory.join(format!("executor{}", std::env::consts::EXE_SUFFIX));
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

/// The name to serve the executor under: `executor-` and the first 16 hex
/// digits of the SHA-256 of its bytes. Mesos's fetcher cache
/// (`docs/fetcher.md`) never refreshes an entry, and asks frameworks for "a
/// fresh unique URI whenever the resource's content has changed": a URL
/// that names the content is never served stale. A Windows program keeps
/// its `.exe`, which tells how an agent must start it (`tasks.rs`).
pub fn content_name(path: &Path) -> Result<String, String> {
    let unreadable = |err: std::io::Error| format!("cannot read {}: {err}", path.display());
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut sha256 = digest::Context::new(&digest::SHA256);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => sha256.update(&buffer[..read]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(unreadable(err)),
        }
    }
    let hex: String = (sha256.finish().as_ref().iter().take(8))
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let extension = if is_windows_program(&path.to_string_lossy()) {
        ".exe"
    } else {
        ""
    };
    Ok(format!("executor-{hex}{extension}"))
}

/// Whether `name` (a file name, a path or a URL) is a Windows program's:
/// Windows runs only files whose name ends in `.exe`, in any case.
pub fn is_windows_program(name: &str) -> bool {
    let name = name.as_bytes();
    name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case(b".exe")
}

/// How the agent starts the executor it fetched: the file's name in the
/// sandbox, and the shell command (`CommandInfo.shell`) that runs it there.
#[derive(Debug, PartialEq)]
pub struct StartCommand {
    /// The file's name in the sandbox (`CommandInfo.URI.output_file`).
    pub file: &'static str,
    /// The command that runs it (`CommandInfo.value`).
    pub command: &'static str,
}

impl StartCommand {
    /// On Linux and macOS agents, `./executor`, which the agent runs with
    /// `sh -c`. Windows runs only programs whose name ends in `.exe`, and
    /// a Mesos agent on Windows runs a shell command with `cmd /c`, which
    /// does not understand `./`. An executor built for Windows is served
    /// under a name ending in `.exe`, as its binary's
    /// ([`content_name`]), so it is fetched as
    /// `executor.exe` and started as `.\executor.exe`.
    pub fn for_url(executor_url: &str) -> StartCommand {
        if is_windows_program(executor_url) {
            StartCommand {
                file: "executor.exe",
                command: ".\\executor.exe",
            }
        } else {
            StartCommand {
                file: "executor",
                command: "./executor",
            }
        }
    }
}

/// Builds the executor with the same profile as the running scheduler,
/// which cargo puts in the same directory. It builds every binary of the
/// package (the executor and `mesos-local`, both small beside the library
/// they share), so that a later plain `cargo build` has nothing left to do.
fn build_with_cargo(cargo: &str, manifest_dir: &Path, target_dir: &Path) -> Result<(), String> {
    let profile = match target_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    log::info!("The executor binary is missing; building it with `cargo build --bins --profile {profile}` (first run only)");
    let mut command = Command::new(cargo);
    command
        .args(["build", "--bins", "--profile", profile])
        .current_dir(manifest_dir);
    for name in std::env::vars_os().map(|(name, _)| name) {
        if is_set_by_cargo_run(&name) {
            command.env_remove(name);
        }
    }
    let status = command
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

fn is_set_by_cargo_run(name: &OsString) -> bool {
    name.to_str()
        .is_some_and(|name| SET_BY_CARGO_RUN.contains(&name) || name.starts_with("CARGO_PKG_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    #[test]
    fn what_cargo_run_sets_is_not_passed_on_and_the_users_settings_are() {
        for name in [
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_PRE",
            "OUT_DIR",
        ] {
            assert!(is_set_by_cargo_run(&name.into()), "{name}");
        }
        for name in [
            "RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_HOME",
            "CARGO_BUILD_JOBS",
            "PATH",
        ] {
            assert!(!is_set_by_cargo_run(&name.into()), "{name}");
        }
    }

    #[test]
    fn the_content_name_changes_with_the_content_only() {
        let dir = TestDir::new("content-name");
        let (one, same, other) = (dir.0.join("one"), dir.0.join("same"), dir.0.join("other"));
        std::fs::write(&one, b"abc").expect("write");
        std::fs::write(&same, b"abc").expect("write");
        std::fs::write(&other, b"abd").expect("write");
        let names = [&one, &same, &other].map(|path| content_name(path));
        let missing = content_name(&dir.0.join("missing"));
        // SHA-256("abc") begins ba7816bf8f01cfea (FIPS 180-2, appendix B.1).
        assert_eq!(names[0], Ok("executor-ba7816bf8f01cfea".to_string()));
        assert_eq!(names[1], names[0]);
        assert_ne!(names[2], names[0]);
        assert!(missing.is_err_and(|err| err.contains("cannot read")));
    }

    #[test]
    fn a_windows_program_is_told_by_its_name_and_keeps_its_exe() {
        for name in [
            "executor.exe",
            "C:\\bin\\EXECUTOR.EXE",
            "http://s/files/x-1.Exe",
        ] {
            assert!(is_windows_program(name), "{name}");
        }
        for name in ["executor", "exe", ".ex", "executor.exe.txt", "ü.ex", ""] {
            assert!(!is_windows_program(name), "{name}");
        }
        let dir = TestDir::new("content-name-exe");
        std::fs::write(dir.0.join("executor.exe"), b"abc").expect("write");
        let name = content_name(&dir.0.join("executor.exe"));
        assert_eq!(name, Ok("executor-ba7816bf8f01cfea.exe".to_string()));
        let upper = StartCommand::for_url("http://server/files/executor-0123456789abcdef.EXE");
        assert_eq!(upper.file, "executor.exe");
        assert_eq!(upper.command, ".\\executor.exe");
    }
}
