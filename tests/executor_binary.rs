//! How the scheduler finds the executor binary it serves to agents (see
//! `src/scheduler/executor_binary.rs`): `--executor PATH` first, then the
//! `executor` beside the scheduler, then (under `cargo run`) a cargo build
//! of it, else an error that says how to build it.
//!
//! Each test copies the scheduler binary into a directory of its own, so
//! that what lies beside it is under the test's control. The cargo build is
//! played by a small script standing in for cargo, which records how it was
//! called and puts the real executor where cargo would.

mod common;

use common::temp_dir::TempDir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");

/// A directory of its own, removed on drop. The scheduler sits in
/// `<root>/debug/`, as in a cargo target directory.
struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    fn new(label: &str) -> Sandbox {
        let root = TempDir::new(label);
        fs::create_dir_all(root.path().join("debug")).unwrap();
        fs::create_dir_all(root.path().join("tmp")).unwrap();
        fs::copy(SCHEDULER, root.path().join("debug/scheduler")).unwrap();
        Sandbox { root }
    }

    fn bin(&self) -> PathBuf {
        self.root.path().join("debug")
    }

    /// Runs the copied scheduler for one no-op task on the embedded cluster.
    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut command = Command::new(self.bin().join("scheduler"));
        command
            .args(["--step", "launch", "--tasks", "1"])
            .args(args)
            .current_dir(self.root.path())
            .env("TMPDIR", self.root.path().join("tmp"))
            .env_remove("CARGO")
            .env_remove("CARGO_MANIFEST_DIR");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("run the scheduler")
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn without_an_executor_the_error_says_how_to_build_one() {
    let sandbox = Sandbox::new("missing");
    let output = sandbox.run(&[], &[]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(
        log.contains("the executor binary was not found at"),
        "{log}"
    );
    assert!(log.contains("cargo build --bin executor"), "{log}");

    let output = sandbox.run(&["--executor", "/nonexistent/executor"], &[]);
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(
        log.contains("--executor /nonexistent/executor does not exist"),
        "{log}"
    );
}

#[test]
fn the_executor_beside_the_scheduler_is_used() {
    let sandbox = Sandbox::new("beside");
    fs::copy(EXECUTOR, sandbox.bin().join("executor")).unwrap();
    let output = sandbox.run(&[], &[]);
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    let beside = sandbox.bin().join("executor");
    assert!(
        log.contains(&format!("Serving the executor {}", beside.display())),
        "{log}"
    );
    assert!(log.contains("1 tasks finished"), "{log}");
}

#[test]
fn under_cargo_run_a_missing_executor_is_built_with_the_same_profile() {
    let sandbox = Sandbox::new("cargo");
    let package = sandbox.root.path().join("package");
    fs::create_dir_all(&package).unwrap();
    let fake_cargo = sandbox.root.path().join("fake-cargo");
    fs::write(
        &fake_cargo,
        format!(
            "#!/bin/sh\necho \"$@\" > \"$PWD/cargo-args\"\ncp '{}' '{}'\n",
            EXECUTOR,
            sandbox.bin().join("executor").display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&fake_cargo, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let output = sandbox.run(
        &[],
        &[("CARGO", &fake_cargo), ("CARGO_MANIFEST_DIR", &package)],
    );
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("The executor binary is missing; building it"),
        "{log}"
    );
    // Run in the package, for the scheduler's profile (its directory is
    // `debug`, cargo's `dev` profile).
    let args = fs::read_to_string(package.join("cargo-args")).expect("cargo ran in the package");
    assert_eq!(args.trim(), "build --bin executor --profile dev");
    assert!(log.contains("1 tasks finished"), "{log}");
}
