//! The standalone embedded cluster (`mesos-local`) over a workshop's
//! first hour, with the real binaries:
//!
//! - `a_scheduler_after_a_killed_one_is_offered_at_once`: a scheduler is
//!   killed mid-run and another is started; the cluster must notice the
//!   first one's closed stream at once, as Mesos does, and offer its
//!   resources to the second, not after a 15 s heartbeat.
//! - `ctrl_c_stops_the_cluster_and_removes_its_work_folder`: with the
//!   default work folder, Ctrl+C (SIGINT) ends `mesos-local` with 130, its
//!   executors gone and the folder removed; a folder that an earlier killed
//!   run left behind is removed when it starts.
//!
//! Every child is killed by a guard if a test fails, every folder removed.

mod common;

use common::processes::{kill_processes, processes_inside};
use common::temp_dir::TempDir;
use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The agent's default resources as the cluster logs them.
const DEFAULT_RESOURCES_SHOWN: &str = "cpus:2; mem:1024; disk:4096; ports:[31000-32000]";

/// How long a binary may take to reach a point a test waits for.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_scheduler_after_a_killed_one_is_offered_at_once() {
    let dir = TempDir::new("killed");
    let work_dir = dir.path().join("work");
    let cluster_log = dir.path().join("mesos-local.log");
    // The default heartbeat (15 s): a test of noticing a closed stream
    // without waiting for one.
    let (mut cluster, master) = start_cluster(&cluster_log, Some(&work_dir), &[]);

    let first_log = dir.path().join("first.log");
    let mut first = Guard::spawn(
        scheduler(&master, "launch", dir.path()).args(["--tasks", "1000000"]),
        &first_log,
    );
    // Tasks come and go: the first framework holds the agent's resources.
    wait_for(&cluster_log, "is TASK_FINISHED", Instant::now() + LIMIT);
    first.kill();

    std::thread::sleep(Duration::from_secs(2));
    let second_log = dir.path().join("second.log");
    let started = Instant::now();
    let _second = Guard::spawn(&mut scheduler(&master, "register", dir.path()), &second_log);
    let second_id = loop {
        let text = std::fs::read_to_string(&cluster_log).unwrap_or_default();
        if let Some(id) = framework_ids(&text).into_iter().nth(1) {
            break id;
        }
        assert!(started.elapsed() < LIMIT, "no second framework:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Seconds, not the heartbeat's 15: the process start is most of it. The
    // killed framework is removed, and all it held is offered to the new one.
    let deadline = started + Duration::from_secs(8);
    wait_for(
        &cluster_log,
        "without a failover timeout; removing it",
        deadline,
    );
    let everything = format!("Offering {DEFAULT_RESOURCES_SHOWN} to framework {second_id} ");
    wait_for(&cluster_log, &everything, deadline);
    cluster.assert_running();
    drop(cluster);
    kill_processes(&processes_inside(&work_dir));
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_cluster_and_removes_its_work_folder() {
    let dir = TempDir::new("ctrl-c");
    // The cluster's temporary directory, where it makes its own folder.
    let temp = dir.path().join("tmp");
    std::fs::create_dir_all(&temp).expect("the test folder is writable");
    // What a killed run left: a pid that cannot run (above Linux's limit).
    let abandoned = temp.join("mesos-local-4294967001-5050");
    std::fs::create_dir_all(abandoned.join("frameworks")).expect("the test folder is writable");
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mark = File::create(abandoned.join(".mesos-local-alive")).expect("writable");
    mark.set_modified(old).expect("the mark's time can be set");

    let cluster_log = dir.path().join("mesos-local.log");
    let (mut cluster, master) = start_cluster(&cluster_log, None, &[("TMPDIR", &temp)]);
    assert!(!abandoned.exists(), "the abandoned folder was not removed");

    let mut step2 = scheduler(&master, "launch", dir.path());
    step2.args(["--tasks", "3"]);
    let scheduler_log = dir.path().join("scheduler.log");
    let status = Guard::spawn(&mut step2, &scheduler_log).wait(Instant::now() + LIMIT);
    let log = std::fs::read_to_string(&scheduler_log).unwrap_or_default();
    assert!(status.success(), "step 2 failed:\n{log}");
    let own = folders(&temp, "mesos-local-");
    assert_eq!(own.len(), 1, "the cluster made no work folder: {own:?}");

    interrupt(cluster.child.id());
    let status = cluster.wait(Instant::now() + LIMIT);
    let text = std::fs::read_to_string(&cluster_log).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "mesos-local's log:\n{text}");
    assert!(text.contains("interrupted: stopping the cluster"), "{text}");
    assert!(
        folders(&temp, "mesos-local-").is_empty(),
        "the work folder stayed: {own:?}"
    );
}

// ---------------------------------------------------------------------------
// Test plumbing: a reader may skip from here on.
// ---------------------------------------------------------------------------

/// Starts `mesos-local` on free ports and waits until it is ready; returns
/// it and its `--master` address.
fn start_cluster(log: &Path, work_dir: Option<&Path>, env: &[(&str, &Path)]) -> (Guard, String) {
    let (master_port, agent_port) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesos-local"));
    command.args(["--port", &master_port.to_string()]);
    command.args(["--agent-port", &agent_port.to_string()]);
    if let Some(work_dir) = work_dir {
        command.arg("--work-dir").arg(work_dir);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let cluster = Guard::spawn(&mut command, log);
    wait_for(log, "Ready.", Instant::now() + LIMIT);
    (cluster, format!("127.0.0.1:{master_port}"))
}

/// A scheduler of workshop `step` against `master`, working in `dir`.
fn scheduler(master: &str, step: &str, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scheduler"));
    command
        .args(["--master", master, "--step", step])
        .args(["--executor", env!("CARGO_BIN_EXE_executor")])
        .current_dir(dir);
    command
}

/// Waits until `log` holds `text` and returns the log so far; fails at
/// `deadline`.
fn wait_for(log: &Path, text: &str, deadline: Instant) -> String {
    loop {
        let so_far = std::fs::read_to_string(log).unwrap_or_default();
        if so_far.contains(text) {
            return so_far;
        }
        assert!(
            Instant::now() < deadline,
            "{} never said {text:?} in time:\n{so_far}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The framework ids in the order the cluster logged their subscriptions.
fn framework_ids(log: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(" subscribed (stream"))
        .filter_map(|line| line.split("Framework ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The folders in `dir` whose name starts with `prefix`.
#[cfg(unix)]
fn folders(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends SIGINT, what Ctrl+C in a terminal sends.
#[cfg(unix)]
fn interrupt(pid: u32) {
    const SIGINT: i32 = 2;
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    let pid = i32::try_from(pid).expect("a pid fits in an i32");
    // SAFETY: `kill` takes two integers and touches no memory of ours.
    let sent = unsafe { kill(pid, SIGINT) } == 0;
    assert!(sent, "SIGINT could not be sent to {pid}");
}

/// A child process that is killed if the test ends before it does.
struct Guard {
    child: Child,
}

impl Guard {
    /// Starts `command` with its output going to `log` (a file never fills
    /// up and blocks the child, as a pipe can).
    fn spawn(command: &mut Command, log: &Path) -> Guard {
        let file = File::create(log).expect("the test folder is writable");
        let stdout = file.try_clone().expect("a file handle can be duplicated");
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        Guard { child }
    }

    #[cfg(unix)]
    fn wait(&mut self, deadline: Instant) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                return status;
            }
            assert!(Instant::now() < deadline, "a child did not exit in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("the child can be polled");
        assert!(status.is_none(), "exited early with {status:?}");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    listener.local_addr().expect("a bound address").port()
}
