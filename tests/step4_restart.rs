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

use common::processes::kill_process_group;
use common::temp_dir::TempDir;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
const IMAGES: usize = 30;

/// A program whose output lines arrive on a channel; its process group is
/// killed on drop.
struct Program {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Program {
    fn start(binary: &str, args: &[String], dir: &Path) -> Program {
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("the program starts");
        let (sender, lines) = mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("piped"));
        for stream in [out, err] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Program {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(text);
            self.seen.push(line);
            if found {
                return;
            }
        }
        panic!("no line with {text:?}:\n{}", self.seen.join("\n"));
    }

    /// Waits for the program to end; returns whether it succeeded, and its
    /// output.
    fn finish(&mut self) -> (bool, String) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                break status;
            }
            assert!(Instant::now() < deadline, "{}", self.seen.join("\n"));
            self.seen.extend(self.lines.try_iter());
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
        (status.success(), self.seen.join("\n"))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() && !kill_process_group(self.child.id()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("port 0 can be bound");
    listener.local_addr().expect("a bound address").port()
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
    let (port, agent_port) = (free_port(), free_port());
    let cluster_args = [
        "--port".to_string(),
        port.to_string(),
        "--agent-port".to_string(),
        agent_port.to_string(),
    ];
    let mut cluster = Program::start(env!("CARGO_BIN_EXE_mesos-local"), &cluster_args, dir.path());
    cluster.wait_for("Ready.");

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
    let scheduler = env!("CARGO_BIN_EXE_scheduler");

    let mut first = Program::start(scheduler, &args, dir.path());
    first.wait_for(&format!("5/{IMAGES} images done"));
    drop(first); // killed, as by Ctrl+C: its framework stays with the master
    let done_before = results(&output);
    assert!(
        (5..IMAGES).contains(&done_before.len()),
        "stopped in the middle: {done_before:?}"
    );
    assert!(dir.path().join("framework-id").exists(), "the id is kept");

    let mut second = Program::start(scheduler, &args, dir.path());
    let (succeeded, log) = second.finish();
    assert!(succeeded, "{log}");
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
