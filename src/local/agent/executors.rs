//! The executor processes: a task launched on an executor that is not
//! running starts it (sandbox, fetch, child process with the `MESOS_*`
//! environment); a killed task or a shut-down executor is passed on; an
//! executor that exits fails its unfinished tasks.

use super::super::resources::Resources;
use super::super::{Shared, State};
use super::sandbox::prepare_sandbox;
use super::LOG_TARGET;
use super::{Executor, Key};
use crate::local::master::is_terminal;
use crate::proto::executor::{event, Event};
use crate::proto::mesos::{task_status, FrameworkInfo, TaskInfo, TaskState};
use crate::proto::scheduler;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Everything the thread that runs one executor process needs.
pub(super) struct Launch {
    /// Which agent runs it.
    pub(super) agent: usize,
    pub(super) key: Key,
    pub(super) command: crate::proto::mesos::CommandInfo,
    pub(super) sandbox: PathBuf,
    /// Whom the fetch is for: `CommandInfo.user`, else the framework's.
    pub(super) user: String,
    pub(super) cache: Arc<super::cache::FetcherCache>,
    pub(super) environment: Vec<(String, String)>,
    pub(super) kill: Arc<AtomicBool>,
}

/// Starts the threads for executors that `ACCEPT` created.
pub(in crate::local) fn start_pending_executors(shared: &Arc<Shared>) {
    let mut state = shared.lock();
    let launches: Vec<Launch> = state
        .agents
        .iter_mut()
        .flat_map(|agent| agent.pending_launches.drain(..))
        .collect();
    for launch in launches {
        let shared_for_thread = Arc::clone(shared);
        let name = format!("local-executor-{}", launch.key.1);
        let agent = launch.agent;
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run_executor(&shared_for_thread, launch));
        match thread {
            Ok(handle) => state.agents[agent].threads.push(handle),
            Err(err) => {
                log::error!(target: LOG_TARGET, "could not start an executor thread: {err}")
            }
        }
    }
}

/// Waits for every executor process to be gone; the cluster is stopping.
pub(in crate::local) fn wait_for_executors(shared: &Arc<Shared>) {
    let threads: Vec<JoinHandle<()>> = shared
        .lock()
        .agents
        .iter_mut()
        .flat_map(|agent| agent.threads.drain(..))
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

/// One executor's life: sandbox, fetch, start, watch, report.
fn run_executor(shared: &Arc<Shared>, launch: Launch) {
    let result = prepare_sandbox(&launch).and_then(|()| start_process(&launch));
    let mut child = match result {
        Ok(child) => child,
        Err(message) => {
            log::warn!(target: LOG_TARGET, "Executor {} failed to start: {message}", launch.key.1);
            let mut state = shared.lock();
            fail_queued_tasks(&mut state, launch.agent, &launch.key, &message);
            let description = format!("failed to start: {message}");
            state.executor_exited(launch.agent, &launch.key, None, &description);
            return;
        }
    };
    let mut killed = false;
    let description = loop {
        match child.try_wait() {
            Ok(Some(status)) => break describe_exit(status),
            Ok(None) => {}
            Err(err) => break format!("could not be watched: {err}"),
        }
        let must_die = launch.kill.load(Ordering::SeqCst) || shared.stopping.load(Ordering::SeqCst);
        if must_die && !killed {
            kill(&mut child);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = child.try_wait().ok().flatten().map(raw_status);
    shared
        .lock()
        .executor_exited(launch.agent, &launch.key, code, &description);
}

fn fail_queued_tasks(state: &mut State, agent: usize, key: &Key, message: &str) {
    let queued: Vec<String> = state.agents[agent]
        .executors
        .get(key)
        .map(|e| {
            e.queued
                .iter()
                .map(|t| t.task_id.value().to_string())
                .collect()
        })
        .unwrap_or_default();
    for task_id in queued {
        let reason = task_status::Reason::REASON_CONTAINER_LAUNCH_FAILED;
        let failed = TaskState::TASK_FAILED;
        let status = state.agent_status(agent, &task_id, &key.1, failed, reason, message);
        state.queue_update(agent, &key.0, status, false);
    }
    if let Some(executor) = state.agents[agent].executors.get_mut(key) {
        executor.queued.clear();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("was terminated by signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "exited".to_string(),
    }
}

/// What `FAILURE.status` carries: Mesos reports the raw wait status, which
/// also covers death by signal.
#[cfg(unix)]
fn raw_status(status: std::process::ExitStatus) -> i32 {
    std::os::unix::process::ExitStatusExt::into_raw(status)
}

/// What `FAILURE.status` carries: Windows has only the exit code.
#[cfg(not(unix))]
fn raw_status(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// The program that runs a shell command, as Mesos's `os::Shell`: `sh -c`.
#[cfg(not(windows))]
fn shell_command(command: &str) -> Command {
    let mut process = Command::new("/bin/sh");
    process.arg("-c").arg(command);
    process
}

/// The program that runs a shell command, as Mesos's `os::Shell` on
/// Windows: `cmd.exe /c` (stout's `os/windows/shell.hpp`).
#[cfg(windows)]
fn shell_command(command: &str) -> Command {
    use std::os::windows::process::CommandExt;
    let mut process = Command::new("cmd.exe");
    // cmd parses its own command line: the command goes as written,
    // without the quoting Rust adds for other programs.
    process.arg("/c").raw_arg(command);
    process
}

/// Kills the executor's process.
#[cfg(not(windows))]
fn kill(child: &mut std::process::Child) {
    let _ = child.kill();
}

/// Kills the executor on Windows, where `cmd /c` stays the executor's
/// parent: killing `cmd` alone would leave the executor running. A Mesos
/// agent on Windows starts each executor in a job object and kills the
/// whole job (Mesos's `src/slave/containerizer/mesos/launcher.cpp`);
/// `taskkill /T` kills the same tree. Where it cannot (wine's `taskkill`
/// has no `/T`), `cmd` alone is killed, and the executor ends once it
/// finds its agent gone.
#[cfg(windows)]
fn kill(child: &mut std::process::Child) {
    let tree = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &child.id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !tree.is_ok_and(|status| status.success()) {
        let _ = child.kill();
    }
}

fn start_process(launch: &Launch) -> Result<std::process::Child, String> {
    let command = &launch.command;
    let mut process = if command.shell() {
        shell_command(command.value())
    } else {
        // A relative path names a file in the sandbox, where the command
        // runs. Said so here because Windows would look for it beside the
        // agent instead; a bare name is still looked up in `PATH`.
        let program = Path::new(command.value());
        let program = if program.is_relative() && program.components().count() > 1 {
            launch.sandbox.join(program)
        } else {
            program.to_path_buf()
        };
        let mut process = Command::new(program);
        process.args(command.arguments.iter().skip(1));
        process
    };
    let output = |name: &str| {
        std::fs::File::create(launch.sandbox.join(name))
            .map(Stdio::from)
            .map_err(|err| format!("could not create {name} in the sandbox: {err}"))
    };
    process
        .current_dir(&launch.sandbox)
        .envs(launch.environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(output("stdout")?)
        .stderr(output("stderr")?)
        .spawn()
        .map_err(|err| format!("could not start '{}': {err}", command.value()))
}

impl State {
    /// Hands a task to its executor, starting the executor if needed.
    pub(in crate::local) fn agent_launch_task(
        &mut self,
        agent: usize,
        framework_id: &str,
        framework: &FrameworkInfo,
        task: TaskInfo,
    ) {
        let mut info = task.executor.clone().unwrap_or_default();
        info.framework_id
            .mut_or_insert_default()
            .set_value(framework_id.to_string());
        let key = (
            framework_id.to_string(),
            info.executor_id.value().to_string(),
        );
        let task_key = (framework_id.to_string(), task.task_id.value().to_string());
        self.agents[agent]
            .task_executors
            .insert(task_key, key.1.clone());
        log::info!(
            target: LOG_TARGET,
            "Launching task {} on executor {}",
            task.task_id.value(),
            key.1
        );
        if let Some(executor) = self.agents[agent].executors.get_mut(&key) {
            match &executor.events {
                Some(events) => {
                    let mut launch = Event::new();
                    launch.set_type(event::Type::LAUNCH);
                    launch.launch.mut_or_insert_default().task = Some(task).into();
                    let _ = events.send(launch);
                }
                None => executor.queued.push(task),
            }
            return;
        }
        self.start_executor(agent, key, info, framework, task);
    }

    /// A task for an executor that is not running: the executor gets a
    /// sandbox of its own and is started once the lock is released, with
    /// the task queued until it subscribes.
    fn start_executor(
        &mut self,
        agent: usize,
        key: Key,
        info: crate::proto::mesos::ExecutorInfo,
        framework: &FrameworkInfo,
        task: TaskInfo,
    ) {
        let container_id = self.ids.next("C");
        let sandbox = self.agents[agent]
            .work_dir
            .join("frameworks")
            .join(&key.0)
            .join("executors")
            .join(&key.1)
            .join("runs")
            .join(&container_id);
        let kill = Arc::new(AtomicBool::new(false));
        let environment = self.executor_environment(agent, &key, framework, &sandbox);
        let command = info.command.clone().unwrap_or_default();
        let user = match command.has_user() {
            true => command.user().to_string(),
            false => framework.user().to_string(),
        };
        let cache = Arc::clone(&self.agents[agent].cache);
        self.agents[agent].pending_launches.push(Launch {
            agent,
            key: key.clone(),
            command,
            sandbox,
            user,
            cache,
            environment,
            kill: Arc::clone(&kill),
        });
        let resources = Resources::from_protos(&info.resources).unwrap_or_default();
        self.agents[agent].executors.insert(
            key,
            Executor {
                info,
                framework_info: framework.clone(),
                container_id,
                resources,
                events: None,
                generation: 0,
                subscribed_once: false,
                queued: vec![task],
                acknowledged: HashSet::new(),
                acknowledged_order: VecDeque::new(),
                started: Instant::now(),
                shutdown_requested: None,
                kill,
            },
        );
    }

    /// The environment a Mesos agent gives an HTTP executor, on Windows as
    /// elsewhere (`executorEnvironment` in Mesos's `src/slave/slave.cpp`).
    /// The executor gets it on top of the agent's own environment, so that
    /// `RUST_LOG` reaches ours too. (Mesos gives an executor on Linux only
    /// these and a default `PATH`; on Windows these and the system's
    /// variables, `SystemRoot`, `TEMP` and `PATH` among them, without which
    /// programs fail to start there: stout's `create_process_env`.)
    fn executor_environment(
        &self,
        agent: usize,
        key: &Key,
        framework: &FrameworkInfo,
        sandbox: &Path,
    ) -> Vec<(String, String)> {
        let grace = self.config.executor_shutdown_grace_period.as_secs_f64();
        let sandbox = sandbox.display().to_string();
        // As a Mesos agent does, the recovery settings are only given to the
        // executors of checkpointing frameworks: only those are waited for
        // when the agent restarts; the others shut down when it goes away.
        let recovery = framework.checkpoint().then(|| {
            [
                ("MESOS_RECOVERY_TIMEOUT", "15mins".to_string()),
                ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs".to_string()),
            ]
        });
        [
            ("MESOS_FRAMEWORK_ID", key.0.clone()),
            ("MESOS_EXECUTOR_ID", key.1.clone()),
            (
                "MESOS_AGENT_ENDPOINT",
                self.agents[agent].address.to_string(),
            ),
            ("MESOS_SLAVE_ID", self.agents[agent].id.clone()),
            ("MESOS_DIRECTORY", sandbox.clone()),
            ("MESOS_SANDBOX", sandbox),
            (
                "MESOS_CHECKPOINT",
                if framework.checkpoint() { "1" } else { "0" }.into(),
            ),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                format!("{grace}secs"),
            ),
            ("MESOS_HTTP_COMMAND_EXECUTOR", "0".into()),
        ]
        .into_iter()
        .chain(recovery.into_iter().flatten())
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    pub(in crate::local) fn agent_kill_task(
        &mut self,
        agent: usize,
        framework_id: &str,
        task_id: &str,
    ) {
        let task_key = (framework_id.to_string(), task_id.to_string());
        let Some(executor_id) = self.agents[agent].task_executors.get(&task_key).cloned() else {
            return;
        };
        let key = (framework_id.to_string(), executor_id);
        let grace = self.drain_grace_period(agent);
        let Some(executor) = self.agents[agent].executors.get_mut(&key) else {
            return;
        };
        if let Some(position) = executor
            .queued
            .iter()
            .position(|t| t.task_id.value() == task_id)
        {
            // The executor never saw the task, so the agent answers for it.
            executor.queued.remove(position);
            let reason = task_status::Reason::REASON_TASK_KILLED_DURING_LAUNCH;
            let status = self.agent_status(
                agent,
                task_id,
                &key.1,
                TaskState::TASK_KILLED,
                reason,
                "Killed before the executor started it",
            );
            self.queue_update(agent, framework_id, status, false);
        } else if let Some(events) = &executor.events {
            let mut kill = Event::new();
            kill.set_type(event::Type::KILL);
            let details = kill.kill.mut_or_insert_default();
            details
                .task_id
                .mut_or_insert_default()
                .set_value(task_id.to_string());
            // A draining agent gives the task at most the drain's grace
            // period (`DrainConfig.max_grace_period`).
            if let Some(grace) = grace {
                let nanoseconds = i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
                details
                    .kill_policy
                    .mut_or_insert_default()
                    .grace_period
                    .mut_or_insert_default()
                    .set_nanoseconds(nanoseconds);
            }
            let _ = events.send(kill);
        }
    }

    pub(in crate::local) fn shutdown_executor(
        &mut self,
        agent: usize,
        framework_id: &str,
        executor_id: &str,
    ) {
        let key = (framework_id.to_string(), executor_id.to_string());
        if let Some(executor) = self.agents[agent].executors.get_mut(&key) {
            executor.shutdown_requested = Some(Instant::now());
            match &executor.events {
                Some(events) => {
                    let mut shutdown = Event::new();
                    shutdown.set_type(event::Type::SHUTDOWN);
                    let _ = events.send(shutdown);
                }
                None => executor.kill.store(true, Ordering::SeqCst),
            }
        }
    }

    /// Kills executors that never subscribed, or outlived their shutdown
    /// grace period.
    pub(in crate::local) fn check_executors(&mut self) {
        let registration = self.config.executor_registration_timeout;
        let grace = self.config.executor_shutdown_grace_period;
        let executors = self.agents.iter().flat_map(|agent| &agent.executors);
        for ((framework_id, executor_id), executor) in executors {
            let unregistered =
                !executor.subscribed_once && executor.started.elapsed() > registration;
            let overdue = executor
                .shutdown_requested
                .is_some_and(|t| t.elapsed() > grace);
            if (unregistered || overdue) && !executor.kill.swap(true, Ordering::SeqCst) {
                log::warn!(
                    target: LOG_TARGET,
                    "Killing executor {executor_id} of framework {framework_id}"
                );
            }
        }
    }

    /// The executor process is gone: its unfinished tasks fail, its
    /// resources return, and the scheduler hears of it.
    fn executor_exited(&mut self, agent: usize, key: &Key, status: Option<i32>, description: &str) {
        let Some(executor) = self.agents[agent].executors.remove(key) else {
            return;
        };
        log::info!(target: LOG_TARGET, "Executor {} of framework {} {description}", key.1, key.0);
        self.master.agents[agent].free.add(&executor.resources);
        self.check_drained(agent);
        if !self.master.frameworks.contains_key(&key.0) {
            return;
        }
        let orphans: Vec<String> = self.agents[agent]
            .task_executors
            .iter()
            .filter(|((fw, task), eid)| {
                fw == &key.0
                    && *eid == &key.1
                    && self
                        .master
                        .tasks
                        .get(&(fw.clone(), task.clone()))
                        .is_some_and(|t| !is_terminal(t.state))
                    && !self.agents[agent]
                        .updates
                        .get(&(fw.clone(), task.clone()))
                        .is_some_and(|q| q.iter().any(|u| is_terminal(u.status.state())))
            })
            .map(|((_, task), _)| task.clone())
            .collect();
        for task_id in orphans {
            let message = format!("Executor {description}");
            let reason = task_status::Reason::REASON_EXECUTOR_TERMINATED;
            let failed = TaskState::TASK_FAILED;
            let update = self.agent_status(agent, &task_id, &key.1, failed, reason, &message);
            self.queue_update(agent, &key.0, update, false);
        }
        let mut failure = scheduler::Event::new();
        failure.set_type(scheduler::event::Type::FAILURE);
        let details = failure.failure.mut_or_insert_default();
        details
            .agent_id
            .mut_or_insert_default()
            .set_value(self.agents[agent].id.clone());
        details
            .executor_id
            .mut_or_insert_default()
            .set_value(key.1.clone());
        if let Some(code) = status {
            details.set_status(code);
        }
        self.send_to_framework(&key.0, failure);
    }
}
