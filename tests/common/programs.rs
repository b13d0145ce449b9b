//! Our binaries, and the other programs a test runs (`cargo`, `chromium`),
//! as child processes.
//!
//! A test starts `scheduler` or `mesos-local`, may wait for a line of its
//! log, then waits for its exit and asserts on what it printed. Both pipes
//! are drained by threads of their own, so a chatty log can never fill a
//! pipe and stall the program; every wait has a deadline, so a hung program
//! fails its test instead of hanging `cargo test`; and a program is killed
//! when the value that owns it is dropped, however the test ends.

use super::processes::{kill_process_group, processes_inside};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The scheduler binary that Cargo built for the tests.
pub const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");

/// The `scheduler` binary, set to work inside `dir` on its embedded
/// cluster: its results go to `dir/output`, its temporary files (the
/// embedded agent's sandboxes, the demo pictures) to `dir/tmp`, which the
/// test creates, and it logs at `info`, without colours.
pub fn scheduler_in(dir: &Path) -> Command {
    let mut command = Command::new(SCHEDULER);
    command
        .arg("--output-dir")
        .arg(dir.join("output"))
        .env("TMPDIR", dir.join("tmp"))
        .env("RUST_LOG", "info")
        .env("RUST_LOG_STYLE", "never");
    command
}

/// A running program. Its standard output is read whole, its standard
/// error (the log) line by line. Dropping it kills it, and its process
/// group if it leads one.
pub struct Program {
    child: Child,
    /// The whole standard output, sent once the pipe closes.
    stdout: Receiver<String>,
    /// Standard error, line by line.
    stderr: Receiver<String>,
    /// The lines of standard error read so far.
    log: Vec<String>,
    /// Whether it leads a process group of its own.
    group: bool,
    /// Whether it was waited for.
    reaped: bool,
}

/// How a program's run ended, and everything it printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts that the program exited with `code`; shows what it printed
    /// if not.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code(), Some(code), "{}", self.dump());
    }

    /// Asserts that the program printed `text` on standard output; shows
    /// all it printed if not.
    #[track_caller]
    pub fn assert_stdout(&self, text: &str) {
        assert!(self.stdout.contains(text), "no {text:?} in{}", self.dump());
    }

    /// Asserts that the program printed `text` on standard error (its log).
    #[track_caller]
    pub fn assert_stderr(&self, text: &str) {
        assert!(self.stderr.contains(text), "no {text:?} in{}", self.dump());
    }

    /// Everything the program printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Program {
    /// Starts `command` with no standard input and its output piped to us.
    pub fn start(command: &mut Command) -> Program {
        Program::try_start(command).unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"))
    }

    /// As [`Program::start`], but a program that cannot be started (not
    /// installed) is an error to handle rather than a failed test.
    pub fn try_start(command: &mut Command) -> std::io::Result<Program> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
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
        Ok(Program {
            child,
            stdout,
            stderr,
            log: Vec::new(),
            group: false,
            reaped: false,
        })
    }

    /// Starts `command` as the leader of a process group of its own, so
    /// that dropping it also kills every process it started (executors).
    #[cfg(unix)]
    pub fn start_in_group(command: &mut Command) -> Program {
        use std::os::unix::process::CommandExt;
        let mut program = Program::start(command.process_group(0));
        program.group = true;
        program
    }

    /// Waits for a log line containing `text` and returns it.
    pub fn wait_for_line(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {text:?} within {limit:?}:\n{}", self.log.join("\n"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("ended without logging {text:?}:\n{}", self.log.join("\n"))
                }
            }
        }
    }

    /// Ctrl+C, as the terminal sends it.
    #[cfg(unix)]
    pub fn interrupt(&self) {
        assert!(
            super::processes::interrupt(self.child.id()),
            "SIGINT delivered"
        );
    }

    /// Waits for the program to exit and collects what it printed.
    pub fn finish(&mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the program") {
                break status;
            }
            self.log.extend(self.stderr.try_iter());
            assert!(
                Instant::now() < deadline,
                "the program did not end within {limit:?}:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.reaped = true;
        // The pipes close with the process (or with the last process it
        // started that holds them); a little grace for the readers.
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

    /// Kills the program and waits until it is gone.
    pub fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.reaped = true;
        self.child.wait().expect("wait for the killed program")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // Once waited for, its id may name another process: leave it be.
        if !self.reaped {
            let group_killed = self.group && kill_process_group(self.child.id());
            if !group_killed {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now: one the system gave us, closed again.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("a bound address").port()
}

/// `mesos-local`, the master and agent in a process of their own, on free
/// ports, working in `dir` (its `TMPDIR` too), in a process group of its
/// own. Returns once it logged that it is ready, with its master's port.
#[cfg(unix)]
pub fn start_mesos_local(dir: &Path, limit: Duration) -> (Program, u16) {
    let (port, agent_port) = (free_port(), free_port());
    let mut cluster = Program::start_in_group(
        Command::new(env!("CARGO_BIN_EXE_mesos-local"))
            .args(["--port", &port.to_string()])
            .args(["--agent-port", &agent_port.to_string()])
            .current_dir(dir)
            .env("TMPDIR", dir)
            .env_remove("RUST_LOG"),
    );
    cluster.wait_for_line("] Ready. ", limit);
    (cluster, port)
}

/// What a scheduler that ran in `dir` (see [`scheduler_in`]) must leave
/// once it exited: nothing in its `TMPDIR` (the embedded cluster's work
/// folder and sockets, the demo pictures), and no process working in `dir`
/// (an executor in its sandbox), given five seconds to end. `context` is
/// added to each failure message.
pub fn assert_nothing_left_behind(dir: &Path, context: &str) {
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("tmp"))
        .expect("the scheduler's TMPDIR")
        .map(|entry| entry.expect("a directory entry").file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "the scheduler left {leftovers:?} in its TMPDIR{context}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = processes_inside(dir);
        if running.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still run in the test's directory: {running:?}{context}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
