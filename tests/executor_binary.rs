//! How the scheduler finds the executor binary it serves to agents (see
//! `src/scheduler/executor_binary.rs`): `--executor PATH` first, then the
//! `executor` beside the scheduler, then (under `cargo run`) a cargo build
//! of it, else an error that says how to build it.
//!
//! Each test copies the scheduler binary into a directory of its own, so
//! that what lies beside it is under the test's control. The cargo build is
//! played by a small script standing in for cargo, which records how it was
//! called and puts the real executor where cargo would.
//!
//! The last test, `#[ignore]`d because it builds the whole package in a
//! fresh target directory (minutes), runs the real `cargo run` and then
//! `cargo build`, which must compile nothing:
//!
//! ```text
//! cargo test --test executor_binary -- --ignored --nocapture
//! ```

mod common;

use common::programs::{Finished, Program};
use common::temp_dir::TempDir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");
/// How long one run of the scheduler (one no-op task) may take.
const LIMIT: Duration = Duration::from_secs(120);
/// How long a build of the whole package may take.
const BUILD_LIMIT: Duration = Duration::from_secs(1800);

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
    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Finished {
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
        // A copy just written may still be open for writing in a child
        // that another test thread was forking at that moment (Linux then
        // refuses to run it: "Text file busy"); that child soon runs its
        // own program and lets go.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Program::try_start(&mut command) {
                Ok(mut program) => return program.finish(LIMIT),
                Err(err)
                    if err.kind() == std::io::ErrorKind::ExecutableFileBusy
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => panic!("cannot start {command:?}: {err}"),
            }
        }
    }
}

#[test]
fn without_an_executor_the_error_says_how_to_build_one() {
    let sandbox = Sandbox::new("missing");
    let output = sandbox.run(&[], &[]);
    let log = &output.stderr;
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(
        log.contains("the executor binary was not found at"),
        "{log}"
    );
    assert!(log.contains("cargo build --bin executor"), "{log}");

    let output = sandbox.run(&["--executor", "/nonexistent/executor"], &[]);
    let log = &output.stderr;
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
    let log = &output.stderr;
    assert!(output.status.success(), "{log}");
    let beside = sandbox.bin().join("executor");
    // Served under a name made from its content: `executor-` and the first
    // 8 bytes of its SHA-256, in hex.
    let bytes = fs::read(&beside).unwrap();
    let sha256 = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = sha256.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert!(
        log.contains(&format!(
            "Serving the executor {} at http://",
            beside.display()
        )),
        "{log}"
    );
    assert!(log.contains(&format!("/files/executor-{hex}\n")), "{log}");
    assert!(log.contains("1 task finished"), "{log}");
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
            "#!/bin/sh\necho \"$@\" > \"$PWD/cargo-args\"\nenv > \"$PWD/cargo-env\"\n\
             cp '{}' '{}'\n",
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
        &[
            ("CARGO", &fake_cargo),
            ("CARGO_MANIFEST_DIR", &package),
            // More of what `cargo run` sets, and two settings of the user's.
            ("CARGO_PKG_NAME", Path::new("mesos-framework-tutorial")),
            ("OUT_DIR", Path::new("/nonexistent/out")),
            ("RUSTFLAGS", Path::new("-Cdebug-assertions")),
            ("CARGO_TARGET_DIR", &sandbox.root.path().join("target")),
        ],
    );
    let log = &output.stderr;
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("The executor binary is missing; building it"),
        "{log}"
    );
    // Run in the package, for the scheduler's profile (its directory is
    // `debug`, cargo's `dev` profile).
    let args = fs::read_to_string(package.join("cargo-args")).expect("cargo ran in the package");
    assert_eq!(args.trim(), "build --bins --profile dev");
    // What `cargo run` set for the scheduler would make the nested build's
    // build scripts differ from the next plain `cargo build`'s: not passed on.
    let env = fs::read_to_string(package.join("cargo-env")).expect("cargo's environment");
    let names: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
        .collect();
    for dropped in ["CARGO", "CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "OUT_DIR"] {
        assert!(!names.contains(&dropped), "{dropped} reached cargo:\n{env}");
    }
    for kept in ["RUSTFLAGS", "CARGO_TARGET_DIR"] {
        assert!(names.contains(&kept), "{kept} did not reach cargo:\n{env}");
    }
    assert!(log.contains("1 task finished"), "{log}");
}

/// Variables `cargo test` sets for this test, which a person's shell would
/// not have: removed from the cargo commands the next test runs.
fn set_by_cargo(name: &str) -> bool {
    (name.starts_with("CARGO_") && name != "CARGO_HOME") || name == "OUT_DIR"
}

/// Runs cargo in the package, as a person would in a terminal, with its
/// own target directory.
fn cargo(target_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if set_by_cargo(&name) {
            command.env_remove(name);
        }
    }
    command
}

#[test]
#[ignore = "builds the whole package in a fresh target directory: minutes"]
fn after_a_first_cargo_run_cargo_build_compiles_nothing() {
    let root = TempDir::new("no-second-build");
    let target = root.path().join("target");
    let log_path = root.path().join("first-run.log");
    let log = fs::File::create(&log_path).unwrap();
    // `--step launch` is the shortest step that serves the executor (step
    // 1 registers only); with no executor built, the scheduler builds it,
    // runs its one task and exits.
    let mut first = cargo(&target, &["run", "--bin", "scheduler", "--"])
        .args(["--step", "launch", "--tasks", "1"])
        .env("TMPDIR", root.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start cargo run");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > BUILD_LIMIT {
            let _ = first.kill();
            let _ = first.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{text}");
    assert!(text.contains("Serving the executor"), "{text}");
    assert!(
        text.contains("The executor binary is missing; building it"),
        "{text}"
    );

    let second = Program::start(&mut cargo(&target, &["build"])).finish(BUILD_LIMIT);
    second.assert_code(0);
    let second_log = &second.stderr;
    assert!(!second_log.contains("Compiling"), "{second_log}");
}
