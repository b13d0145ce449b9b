//! How a run ends when it does not simply finish: Ctrl+C in each step,
//! mistakes that would otherwise wait for ever, and images given as a
//! shell gives them. Each test runs the real `scheduler` binary on the
//! embedded cluster, with its `TMPDIR` and output folder inside a
//! directory of the test's own.

mod common;

use common::temp_dir::TempDir;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");

/// How long any step below may take on a busy machine.
const LIMIT: Duration = Duration::from_secs(90);

/// A test's directory: `tmp/` is the scheduler's `TMPDIR`, `output/` its
/// output folder.
struct Workspace {
    root: TempDir,
}

impl Workspace {
    fn new(test: &str) -> Workspace {
        let root = TempDir::new(test);
        std::fs::create_dir_all(root.path().join("tmp")).expect("create tmp");
        Workspace { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The names in a folder of the workspace, hidden ones included.
    fn entries(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(name))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Small demo JPEGs to invert.
    fn images(&self, count: u32, size: u32) -> Vec<String> {
        (1..=count)
            .map(|seed| {
                let path = self.path(&format!("picture-{seed:03}.jpg"));
                mesos_tutorial::demo_images::write_demo_image(&path, size, size, seed)
                    .expect("write a JPEG");
                path.display().to_string()
            })
            .collect()
    }
}

/// A running scheduler; dropping it kills it.
struct Scheduler {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    log: Vec<String>,
}

/// How a run ended.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn dump(&self) -> String {
        format!(
            "\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Scheduler {
    fn start(workspace: &Workspace, args: &[&str]) -> Scheduler {
        let mut child = Command::new(SCHEDULER)
            .arg("--output-dir")
            .arg(workspace.path("output"))
            .args(args)
            .env("TMPDIR", workspace.path("tmp"))
            .env("RUST_LOG", "info")
            .env("RUST_LOG_STYLE", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the scheduler");
        let mut out = child.stdout.take().expect("stdout is piped");
        let (stdout_sender, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let _ = stdout_sender.send(text);
        });
        let err = child.stderr.take().expect("stderr is piped");
        let (stderr_sender, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if stderr_sender.send(line).is_err() {
                    break;
                }
            }
        });
        Scheduler {
            child,
            stdout,
            stderr,
            log: Vec::new(),
        }
    }

    #[cfg(unix)]
    fn wait_for_line(&mut self, text: &str) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.log.push(line);
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("no {text:?} within {LIMIT:?}:\n{}", self.log.join("\n"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("ended without {text:?}:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// Ctrl+C, as the terminal sends it.
    #[cfg(unix)]
    fn interrupt(&self) {
        assert!(
            common::processes::interrupt(self.child.id()),
            "SIGINT delivered"
        );
    }

    fn finish(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the scheduler") {
                break status;
            }
            while let Ok(line) = self.stderr.try_recv() {
                self.log.push(line);
            }
            assert!(
                Instant::now() < deadline,
                "the scheduler did not end within {limit:?}:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let grace = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .stderr
            .recv_timeout(grace.saturating_duration_since(Instant::now()))
        {
            self.log.push(line);
        }
        let stdout = self
            .stdout
            .recv_timeout(grace.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        Finished {
            status,
            stdout,
            stderr: self.log.join("\n"),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every interrupted run must leave: nothing in its `TMPDIR` (the
/// embedded cluster's work folder and sockets, the demo pictures), and no
/// process working in the test's directory (executors in their
/// sandboxes).
#[cfg(unix)]
fn assert_clean(workspace: &Workspace, run: &Finished) {
    assert_eq!(
        workspace.entries("tmp"),
        Vec::<String>::new(),
        "left in TMPDIR{}",
        run.dump()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = common::processes::processes_inside(workspace.root.path());
        if running.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running: {running:?}{}",
            run.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_1_says_how_many_offers_were_declined() {
    let workspace = Workspace::new("ctrl-c-step1");
    let mut scheduler = Scheduler::start(&workspace, &["--step", "register"]);
    scheduler.wait_for_line("Declining offer");
    scheduler.interrupt();
    let run = scheduler.finish(LIMIT);
    assert_eq!(run.status.code(), Some(130), "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted: tearing down"),
        "{}",
        run.dump()
    );
    assert!(
        run.stdout
            .contains(" received and declined (step 1 launches nothing)"),
        "{}",
        run.dump()
    );
    assert_clean(&workspace, &run);
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_2_tears_down_and_says_how_many_tasks_finished() {
    let workspace = Workspace::new("ctrl-c-step2");
    let mut scheduler = Scheduler::start(
        &workspace,
        &[
            "--step",
            "launch",
            "--executor",
            EXECUTOR,
            "--task-millis",
            "200",
        ],
    );
    scheduler.wait_for_line("is in state TASK_FINISHED");
    scheduler.interrupt();
    let run = scheduler.finish(LIMIT);
    assert_eq!(run.status.code(), Some(130), "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted: tearing down"),
        "{}",
        run.dump()
    );
    assert!(run.stderr.contains("tasks finished"), "{}", run.dump());
    assert_clean(&workspace, &run);
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_3_prints_the_table_and_keeps_only_finished_results() {
    let workspace = Workspace::new("ctrl-c-step3");
    let images = workspace.images(40, 400);
    let mut args = vec!["--executor", EXECUTOR, "--images"];
    args.extend(images.iter().map(String::as_str));
    let mut scheduler = Scheduler::start(&workspace, &args);
    scheduler.wait_for_line("/40 images done");
    scheduler.interrupt();
    let run = scheduler.finish(LIMIT);
    assert_eq!(run.status.code(), Some(130), "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted: tearing down"),
        "{}",
        run.dump()
    );
    assert!(run.stdout.contains("images done"), "{}", run.dump());
    assert!(run.stdout.contains("attempts  result"), "{}", run.dump());
    assert!(
        run.stderr.contains("The finished results are in"),
        "{}",
        run.dump()
    );
    let outputs = workspace.entries("output");
    assert!(!outputs.is_empty(), "{}", run.dump());
    assert!(
        outputs.len() < 40,
        "the batch was not interrupted{}",
        run.dump()
    );
    for name in &outputs {
        assert!(
            name.contains("-picture-") && name.contains("-inverted."),
            "{name} is not a finished result{}",
            run.dump()
        );
    }
    assert_clean(&workspace, &run);
}

#[cfg(unix)]
#[test]
fn ctrl_c_with_failover_leaves_the_framework_and_keeps_its_id() {
    let workspace = Workspace::new("ctrl-c-failover");
    let id_file = workspace.path("framework-id");
    let id_file_arg = id_file.display().to_string();
    let mut scheduler = Scheduler::start(
        &workspace,
        &[
            "--step",
            "launch",
            "--executor",
            EXECUTOR,
            "--failover-timeout",
            "60",
            "--framework-id-file",
            &id_file_arg,
        ],
    );
    scheduler.wait_for_line("Registered with framework ID");
    scheduler.interrupt();
    let run = scheduler.finish(LIMIT);
    assert_eq!(run.status.code(), Some(130), "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted: leaving framework")
            && run.stderr.contains("for 60 s (--failover-timeout)"),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("tearing down"), "{}", run.dump());
    let id = std::fs::read_to_string(&id_file).expect("the id file is kept");
    assert!(run.stderr.contains(id.trim()), "{}", run.dump());
}

#[test]
fn a_task_larger_than_the_embedded_agent_is_refused_at_once() {
    let workspace = Workspace::new("too-large");
    let started = Instant::now();
    let mut scheduler = Scheduler::start(&workspace, &["--task-mem", "999999"]);
    let run = scheduler.finish(Duration::from_secs(20));
    assert_eq!(run.status.code(), Some(2), "{}", run.dump());
    assert!(
        run.stderr.contains("--task-mem 999999 MB")
            && run.stderr.contains("embedded agent's 1024 MB")
            && run.stderr.contains("raise --resources"),
        "{}",
        run.dump()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !run.stderr.contains("Started an embedded"),
        "{}",
        run.dump()
    );
}

#[cfg(unix)]
#[test]
fn tasks_that_keep_failing_stop_step_2_with_mesos_reason() {
    let workspace = Workspace::new("failing");
    let mut scheduler = Scheduler::start(
        &workspace,
        &["--step", "launch", "--executor", "/bin/false"],
    );
    let run = scheduler.finish(LIMIT);
    assert_eq!(run.status.code(), Some(2), "{}", run.dump());
    assert!(
        run.stderr
            .contains("error: 5 tasks failed in a row (--max-failures 5)"),
        "{}",
        run.dump()
    );
    assert!(run.stderr.contains("TASK_FAILED"), "{}", run.dump());
    assert_clean(&workspace, &run);
}

#[test]
fn images_may_follow_as_arguments() {
    let workspace = Workspace::new("positional");
    let images = workspace.images(3, 32);
    // `--images a b c`, as `--images *.jpg` expands: `b` and `c` are
    // positional arguments.
    let mut args = vec!["--executor", EXECUTOR, "--images"];
    args.extend(images.iter().map(String::as_str));
    let run = Scheduler::start(&workspace, &args).finish(LIMIT);
    assert_eq!(run.status.code(), Some(0), "{}", run.dump());
    assert!(run.stdout.contains("3/3 images done"), "{}", run.dump());
    assert_eq!(
        workspace.entries("output"),
        [
            "001-picture-001-inverted.jpg",
            "002-picture-002-inverted.jpg",
            "003-picture-003-inverted.jpg"
        ],
        "{}",
        run.dump()
    );
}

#[test]
fn images_with_another_step_are_refused() {
    let workspace = Workspace::new("positional-step2");
    let run = Scheduler::start(&workspace, &["--step", "launch", "a.jpg"]).finish(LIMIT);
    assert_eq!(run.status.code(), Some(2), "{}", run.dump());
    assert!(
        run.stderr
            .contains("'a.jpg' is an image, but --step launch"),
        "{}",
        run.dump()
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_ends_keep_serving_after_a_finished_batch() {
    let workspace = Workspace::new("keep-serving");
    let images = workspace.images(2, 32);
    let mut args = vec!["--executor", EXECUTOR, "--keep-serving", "--images"];
    args.extend(images.iter().map(String::as_str));
    let mut scheduler = Scheduler::start(&workspace, &args);
    scheduler.wait_for_line("serving until Ctrl+C");
    scheduler.interrupt();
    let run = scheduler.finish(Duration::from_secs(20));
    // The batch succeeded before Ctrl+C, so the run did too.
    assert_eq!(run.status.code(), Some(0), "{}", run.dump());
    assert!(run.stdout.contains("2/2 images done"), "{}", run.dump());
    assert_clean(&workspace, &run);
}

/// `mesos-local` in a process group of its own, killed (executors and all)
/// on drop.
#[cfg(unix)]
struct Cluster {
    child: Child,
    port: u16,
}

#[cfg(unix)]
impl Cluster {
    fn start(workspace: &Workspace) -> Cluster {
        use std::os::unix::process::CommandExt;
        let free_port = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
            listener.local_addr().expect("a bound address").port()
        };
        let (port, agent_port) = (free_port(), free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesos-local"))
            .args(["--port", &port.to_string()])
            .args(["--agent-port", &agent_port.to_string()])
            .env("TMPDIR", workspace.path("tmp"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start mesos-local");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready, is_ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("] Ready. ") {
                    let _ = ready.send(());
                }
            }
        });
        let cluster = Cluster { child, port };
        is_ready.recv_timeout(LIMIT).expect("mesos-local is ready");
        cluster
    }
}

#[cfg(unix)]
impl Drop for Cluster {
    fn drop(&mut self) {
        if !common::processes::kill_process_group(self.child.id()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// README's Step 4 demo as a person runs it: Ctrl+C in the middle of the
/// batch leaves the framework to the master, and the same command again
/// finishes it.
#[cfg(unix)]
#[test]
fn ctrl_c_mid_batch_with_failover_then_the_same_command_finishes_it() {
    let workspace = Workspace::new("ctrl-c-restart");
    let cluster = Cluster::start(&workspace);
    let images = workspace.images(30, 320);
    let master = format!("127.0.0.1:{}", cluster.port);
    let id_file = workspace.path("framework-id").display().to_string();
    let mut args = vec![
        "--master",
        &master,
        "--executor",
        EXECUTOR,
        "--task-cpus",
        "1.9",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        &id_file,
        "--images",
    ];
    args.extend(images.iter().map(String::as_str));

    let mut first = Scheduler::start(&workspace, &args);
    first.wait_for_line("5/30 images done");
    first.interrupt();
    let run = first.finish(LIMIT);
    assert_eq!(run.status.code(), Some(130), "{}", run.dump());
    assert!(
        run.stderr.contains("interrupted: leaving framework"),
        "{}",
        run.dump()
    );
    assert!(run.stdout.contains("attempts  result"), "{}", run.dump());
    let done_before = workspace.entries("output");
    assert!(
        (5..30).contains(&done_before.len()),
        "{done_before:?}{}",
        run.dump()
    );
    assert!(done_before.iter().all(|name| !name.starts_with('.')));
    assert!(workspace.path("framework-id").exists(), "the id is kept");

    let again = Scheduler::start(&workspace, &args).finish(LIMIT);
    assert_eq!(again.status.code(), Some(0), "{}", again.dump());
    assert!(
        again.stderr.contains(&format!(
            "Continuing an earlier run: {} images were done already",
            done_before.len()
        )),
        "{}",
        again.dump()
    );
    assert!(
        again.stdout.contains("30/30 images done, 0 failed"),
        "{}",
        again.dump()
    );
    assert_eq!(workspace.entries("output").len(), 30);
    assert!(!workspace.path("framework-id").exists());
}
