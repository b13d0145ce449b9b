//! A framework on a real cluster must survive the cluster misbehaving. Each
//! test here runs the real `mesos-local` and `scheduler` binaries and uses
//! one of the embedded cluster's knobs to make the master misbehave:
//!
//! - a master restart mid-batch: with a failover timeout the scheduler comes
//!   back as the same framework; without one it starts over; either way
//!   every image ends up in the output exactly once;
//! - a master that is not the leader redirects the scheduler to the one that
//!   is;
//! - a master that stops sending heartbeats is noticed and left;
//! - a master that requires authentication refuses a wrong secret with an
//!   error that names the flag to fix;
//! - an agent restart: executors of checkpointing frameworks come back;
//! - a master behind TLS is trusted only through the CA the user names.

mod common;

use common::certificates::write_certificates;
use common::temp_dir::TempDir;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(90);

/// A running binary whose log lines arrive on a channel; killed on drop.
struct Process {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    fn start(binary: &str, args: &[&str], dir: &Path) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .env("TMPDIR", dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (sender, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text` and returns it.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
        panic!(
            "no line containing {text:?}; seen:\n{}",
            self.seen.join("\n")
        );
    }

    /// Waits for the process to exit; returns its status and every line.
    fn finish(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status, self.seen.join("\n"));
            }
            assert!(
                Instant::now() < deadline,
                "did not finish:\n{}",
                self.seen.join("\n")
            );
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An embedded cluster in its own process, as a real one would be.
fn cluster(dir: &Path, extra: &[&str]) -> (Process, u16) {
    let (port, agent_port) = (free_port(), free_port());
    let work_dir = dir.join("work");
    let mut args = vec![
        "--port".to_string(),
        port.to_string(),
        "--agent-port".to_string(),
        agent_port.to_string(),
        "--work-dir".to_string(),
        work_dir.display().to_string(),
        "--heartbeat-interval".to_string(),
        "0.2".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut process = Process::start(env!("CARGO_BIN_EXE_mesos-local"), &args, dir);
    process.wait_for("Ready.");
    (process, port)
}

/// Pulls one of the embedded master's knobs (see `src/local/master/mod.rs`).
fn knob(port: u16, path: &str) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn write_images(dir: &Path, count: u32) -> String {
    let paths: Vec<String> = (0..count)
        .map(|i| {
            let path = dir.join(format!("picture-{i}.png"));
            mesos_tutorial::demo_images::write_demo_image(&path, 320, 240, i).unwrap();
            path.display().to_string()
        })
        .collect();
    paths.join(",")
}

fn scheduler(dir: &Path, port: u16, args: &[&str]) -> Process {
    let master = format!("127.0.0.1:{port}");
    let mut all = vec!["--master", &master];
    all.extend_from_slice(args);
    Process::start(env!("CARGO_BIN_EXE_scheduler"), &all, dir)
}

fn restart_mid_batch(failover_timeout: &str) -> String {
    let dir = TempDir::new("restart");
    let (_cluster, port) = cluster(dir.path(), &[]);
    let images = write_images(dir.path(), 10);
    let output = dir.path().join("output");
    let output_arg = output.display().to_string();
    let mut scheduler = scheduler(
        dir.path(),
        port,
        &[
            "--images",
            &images,
            "--output-dir",
            &output_arg,
            "--failover-timeout",
            failover_timeout,
        ],
    );
    scheduler.wait_for("1/10 images done");
    knob(port, "/local/restart-master?downtime_ms=700");
    let (status, log) = scheduler.finish();
    assert!(status.success(), "{log}");
    // The closed stream or a call answered 503, whichever comes first; said
    // once ("Lost the master: lost the master: …" was a bug).
    assert!(log.contains("Lost the master: "), "{log}");
    assert!(
        !log.to_lowercase().contains("master: lost the master"),
        "{log}"
    );
    assert!(log.contains("10/10 images done, 0 failed"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..10)
        .map(|i| format!("{:03}-picture-{i}-inverted.png", i + 1))
        .collect();
    assert_eq!(names, expected, "every image exactly once, nothing else");
    // Each image ran once: with a failover timeout its task survived the
    // restart; without one it died with the framework, which does not use
    // up an attempt of the image.
    let rows: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("0") && line.contains("picture-"))
        .collect();
    assert_eq!(rows.len(), 10, "one table row per image:\n{log}");
    for row in rows {
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(words.get(1..3), Some(&["1", "done"][..]), "{row}\n{log}");
    }
    log
}

#[test]
fn a_master_restart_with_a_failover_timeout_keeps_the_framework() {
    let log = restart_mid_batch("60");
    let ids: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Registered with framework ID"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(ids.len() >= 2, "registered again after the restart:\n{log}");
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same framework throughout: {ids:?}"
    );
}

#[test]
fn a_master_restart_without_a_failover_timeout_starts_over_and_still_finishes() {
    let log = restart_mid_batch("0");
    let ids: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Registered with framework ID"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(
        ids.len() >= 2 && ids[0] != ids[ids.len() - 1],
        "a new framework after the restart: {ids:?}"
    );
}

#[test]
fn a_redirect_to_the_leader_is_followed() {
    let dir = TempDir::new("redirect");
    let (_leader, leader_port) = cluster(dir.path(), &[]);
    let leader = format!("127.0.0.1:{leader_port}");
    let (_follower, follower_port) = cluster(dir.path(), &["--redirect-to", &leader]);
    let mut scheduler = scheduler(
        dir.path(),
        follower_port,
        &["--step", "launch", "--tasks", "3"],
    );
    let (status, log) = scheduler.finish();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "following the redirect to http://{leader}/api/v1/scheduler"
        )),
        "{log}"
    );
    assert!(log.contains("3 tasks finished"), "{log}");
}

#[test]
fn missing_heartbeats_are_detected_and_the_scheduler_subscribes_again() {
    let dir = TempDir::new("heartbeats");
    let (_cluster, port) = cluster(dir.path(), &[]);
    let mut scheduler = scheduler(
        dir.path(),
        port,
        &[
            "--step",
            "launch",
            "--tasks",
            "4",
            "--task-millis",
            "200",
            "--failover-timeout",
            "30",
        ],
    );
    scheduler.wait_for("is in state TASK_FINISHED");
    // Heartbeats every 0.2 s: five missed ones are a second of silence.
    knob(port, "/local/silence?ms=2500");
    let line = scheduler.wait_for("Lost the master");
    assert!(
        line.contains("Lost the master: no event or heartbeat from the master for 1 s"),
        "{line}"
    );
    let (status, log) = scheduler.finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("4 tasks finished"), "{log}");
}

#[test]
fn wrong_credentials_are_a_clear_error_and_right_ones_work() {
    let dir = TempDir::new("auth");
    std::fs::write(dir.path().join("credentials"), "alice s3cret\n").unwrap();
    std::fs::write(dir.path().join("wrong"), "guess\n").unwrap();
    std::fs::write(dir.path().join("right"), "s3cret\n").unwrap();
    let (_cluster, port) = cluster(dir.path(), &["--credentials", "credentials"]);

    let mut wrong = scheduler(
        dir.path(),
        port,
        &[
            "--step",
            "register",
            "--principal",
            "alice",
            "--secret-file",
            "wrong",
        ],
    );
    let (status, log) = wrong.finish();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("401") && log.contains("--principal") && log.contains("--secret-file"),
        "{log}"
    );

    let mut right = scheduler(
        dir.path(),
        port,
        &[
            "--step",
            "register",
            "--principal",
            "alice",
            "--secret-file",
            "right",
        ],
    );
    right.wait_for("Registered with framework ID");
    right.wait_for("Received offer");
}

#[test]
fn after_an_agent_restart_a_checkpointing_executor_resubscribes_and_delivers_its_update() {
    let dir = TempDir::new("agent-restart");
    let (mut cluster, port) = cluster(dir.path(), &[]);
    let mut scheduler = scheduler(
        dir.path(),
        port,
        &[
            "--step",
            "launch",
            "--tasks",
            "2",
            "--task-millis",
            "1000",
            "--checkpoint",
            "--failover-timeout",
            "30",
        ],
    );
    scheduler.wait_for("task 1 is in state TASK_RUNNING");
    // Task 1 finishes while the agent is down: its TASK_FINISHED cannot be
    // delivered and stays with the executor, unacknowledged.
    knob(port, "/local/restart-agent?downtime_ms=1500");
    let (status, log) = scheduler.finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("task 1 is in state TASK_FINISHED"), "{log}");
    assert!(log.contains("2 tasks finished"), "{log}");
    assert!(!log.contains("TASK_FAILED"), "no task was lost: {log}");
    let line = cluster.wait_for("re-subscribed with");
    assert!(
        !line.contains("with 0 unacknowledged update(s)"),
        "the executor resent its update: {line}"
    );
}

#[test]
fn after_an_agent_restart_a_framework_without_checkpointing_loses_its_tasks_and_goes_on() {
    let dir = TempDir::new("agent-restart-plain");
    let (_cluster, port) = cluster(dir.path(), &[]);
    let mut scheduler = scheduler(
        dir.path(),
        port,
        // Every task that meets the restart fails with its executor, several
        // in a row: not the broken executor `--max-failures` stops for.
        &[
            "--step",
            "launch",
            "--tasks",
            "2",
            "--task-millis",
            "1000",
            "--max-failures",
            "50",
        ],
    );
    scheduler.wait_for("task 1 is in state TASK_RUNNING");
    knob(port, "/local/restart-agent?downtime_ms=300");
    let failed = scheduler.wait_for("task 1 is in state TASK_FAILED");
    assert!(failed.contains("Executor"), "{failed}");
    let (status, log) = scheduler.finish();
    assert!(
        status.success(),
        "the scheduler launches new tasks instead: {log}"
    );
    assert!(log.contains("2 tasks finished"), "{log}");
}

#[test]
fn a_master_behind_tls_is_trusted_through_the_ca_file() {
    let dir = TempDir::new("tls");
    write_certificates(dir.path());
    let (_cluster, port) = cluster(
        dir.path(),
        &["--tls-cert", "cert.pem", "--tls-key", "key.pem"],
    );
    let master = format!("https://127.0.0.1:{port}");
    let scheduler = env!("CARGO_BIN_EXE_scheduler");

    // Not signed by an authority the system trusts: refused, and said so.
    let mut untrusted = Process::start(
        scheduler,
        &["--master", &master, "--step", "register"],
        dir.path(),
    );
    let (status, log) = untrusted.finish();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.to_lowercase().contains("certificate"), "{log}");

    let args = [
        "--master",
        &master,
        "--ca-file",
        "ca.pem",
        "--step",
        "launch",
        "--tasks",
        "2",
    ];
    let mut trusted = Process::start(scheduler, &args, dir.path());
    let (status, log) = trusted.finish();
    assert!(status.success(), "{log}");
    assert!(log.contains("2 tasks finished"), "{log}");
}

/// The step 2 arguments of the restart tests: slow tasks, so that some are
/// running when the scheduler is killed.
fn slow_tasks(id_file: &str) -> Vec<&str> {
    vec![
        "--step",
        "launch",
        "--tasks",
        "4",
        "--task-millis",
        "1500",
        "--task-cpus",
        "0.5",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        id_file,
    ]
}

#[test]
fn a_restarted_scheduler_process_takes_over_its_framework() {
    let dir = TempDir::new("takeover");
    let (_cluster, port) = cluster(dir.path(), &[]);
    let id_file = dir.path().join("framework-id");
    let id_arg = id_file.display().to_string();

    let mut first = scheduler(dir.path(), port, &slow_tasks(&id_arg));
    let registered = first.wait_for("Registered with framework ID");
    let id = registered.rsplit(' ').next().unwrap().to_string();
    first.wait_for("is in state TASK_RUNNING");
    // Killed mid-run: its tasks and its executor stay behind, kept by the
    // master for the failover timeout.
    drop(first);
    assert_eq!(
        std::fs::read_to_string(&id_file).unwrap().trim(),
        id,
        "the id stays for the next process"
    );

    let mut second = scheduler(dir.path(), port, &slow_tasks(&id_arg));
    let (status, log) = second.finish();
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("Registered with framework ID {id}")),
        "the same framework:\n{log}"
    );
    // The old executor serves the dead process's file server, so it is
    // shut down, and the old tasks with it; the new tasks' ids differ.
    assert!(
        log.contains("executor of an earlier scheduler process"),
        "{log}"
    );
    assert!(log.contains("4 tasks finished"), "{log}");
    assert!(!log.contains("TASK_ERROR"), "no launch was refused:\n{log}");
    assert!(!id_file.exists(), "a finished framework forgets its id");
}

#[test]
fn a_scheduler_replaced_by_a_newer_one_stops_and_keeps_the_id() {
    let dir = TempDir::new("replaced");
    let (_cluster, port) = cluster(dir.path(), &[]);
    let id_file = dir.path().join("framework-id");
    let id_arg = id_file.display().to_string();
    let register = [
        "--step",
        "register",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        &id_arg,
    ];
    let mut first = scheduler(dir.path(), port, &register);
    let registered = first.wait_for("Registered with framework ID");
    let id = registered.rsplit(' ').next().unwrap().to_string();

    let mut second = scheduler(dir.path(), port, &register);
    second.wait_for(&format!("Registered with framework ID {id}"));
    // Mesos tells the replaced scheduler with an ERROR event.
    let (status, log) = first.finish();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("another scheduler took over this framework"),
        "{log}"
    );
    assert_eq!(
        std::fs::read_to_string(&id_file).unwrap().trim(),
        id,
        "the newer scheduler still needs the id"
    );
}
