//! README.md's Step 4 demo, automated: a scheduler process is killed in the
//! middle of a batch of images, a second one is started with the same
//! `--framework-id-file`, takes the framework over and finishes the batch,
//! and no image is done twice.
//!
//! The cluster runs in a process of its own (`mesos-local`), as in the
//! README, so that it outlives the first scheduler. Each program runs in a
//! process group of its own, and the test kills the groups it started, so
//! that no executor outlives it.

#![cfg(unix)]

mod common;

use common::programs::{start_mesos_local, Program, SCHEDULER};
use common::temp_dir::TempDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const IMAGES: usize = 30;

/// A scheduler run as README's Step 4 runs it: in `dir`, at its default
/// log level, in a process group of its own.
fn start_scheduler(args: &[String], dir: &Path) -> Program {
    Program::start_in_group(
        Command::new(SCHEDULER)
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("TMPDIR", dir),
    )
}

fn results(output: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(output)
        .map(|entries| {
            entries
                .map(|e| {
                    e.expect("an entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .filter(|name| name.ends_with("-inverted.png"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_scheduler_stopped_mid_batch_is_restarted_and_no_image_is_done_twice() {
    let dir = TempDir::new("step4");
    let pictures: Vec<String> = (0..IMAGES)
        .map(|i| {
            let path = dir.path().join(format!("picture-{i}.png"));
            mesos_tutorial::demo_images::write_demo_image(&path, 320, 240, i as u32)
                .expect("a demo image");
            path.display().to_string()
        })
        .collect();
    let (_cluster, port) = start_mesos_local(dir.path(), LIMIT);

    let output = dir.path().join("output");
    let args: Vec<String> = [
        "--master",
        &format!("127.0.0.1:{port}"),
        "--images",
        &pictures.join(","),
        "--task-cpus",
        "1.9",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        "framework-id",
        "--output-dir",
        &output.display().to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();

    let mut first = start_scheduler(&args, dir.path());
    first.wait_for_line(&format!("5/{IMAGES} images done"), LIMIT);
    drop(first); // killed, as by Ctrl+C: its framework stays with the master
    let done_before = results(&output);
    assert!(
        (5..IMAGES).contains(&done_before.len()),
        "stopped in the middle: {done_before:?}"
    );
    assert!(dir.path().join("framework-id").exists(), "the id is kept");

    let run = start_scheduler(&args, dir.path()).finish(LIMIT);
    // Standard output and the log, as a terminal shows them.
    let log = run.dump();
    assert!(run.status.success(), "{log}");
    let earlier = format!(
        "Continuing an earlier run: {} images were done already",
        done_before.len()
    );
    assert!(log.contains(&earlier), "no {earlier:?} in:\n{log}");
    assert!(
        log.contains(&format!("{IMAGES}/{IMAGES} images done, 0 failed")),
        "{log}"
    );
    // Every image has its result, and the second process stored only the
    // ones the first had not.
    assert_eq!(results(&output).len(), IMAGES, "{log}");
    let stored_again: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("stored upload"))
        .filter(|line| done_before.iter().any(|name| line.contains(name.as_str())))
        .collect();
    assert_eq!(stored_again, Vec::<&str>::new(), "images done twice");
    let stored = log.lines().filter(|l| l.contains("stored upload")).count();
    assert_eq!(stored, IMAGES - done_before.len(), "{log}");
    assert!(
        !dir.path().join("framework-id").exists(),
        "a finished framework forgets its id"
    );
}
