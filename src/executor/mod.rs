//! The executor: the part of a framework that runs *on the agent* and does
//! the work of its tasks.
//!
//! In Mesos the scheduler never runs a task itself. It accepts an offer and
//! names, in each `TaskInfo`, an *executor*: a program the agent fetches and
//! starts in a sandbox. The agent then hands the task to that executor and
//! relays what the executor says about it back to the scheduler.
//!
//! **One executor, many tasks.** An agent starts our executor once per
//! `ExecutorID` and sends every later task that names the same executor
//! to the process that is already running. Starting a process (and
//! fetching the binary) is paid once; each task is a thread. Here every task gets
//! its own named thread, while the main thread reacts to the agent's events
//! in one `match`.
//!
//! **At-least-once status updates.** Each `UPDATE` the executor sends has a
//! fresh UUID. The agent stores it, forwards it to the scheduler and, once
//! safe, answers with `ACKNOWLEDGED` for that UUID. Until then the executor
//! keeps the update; if the connection to the agent breaks (say the agent
//! restarts), it subscribes again and hands back everything unacknowledged.
//! So an update can arrive twice, but is never lost. This is the book in
//! [`client`]: a task's story sends each update with one call,
//! [`AgentClient::update`](client::AgentClient::update).
//!
//! The life of the executor:
//!
//! ```text
//!  agent starts us ─► SUBSCRIBE ─► SUBSCRIBED
//!                                  LAUNCH ─► TASK_RUNNING ... TASK_FINISHED / TASK_FAILED
//!                                  KILL   ─► ... TASK_KILLED
//!                                  ACKNOWLEDGED ─► forget that update
//!                                  SHUTDOWN ─► kill all, wait for acknowledgements, exit
//! ```
//!
//! Read `run` and `Executor::handle` here, then the story of one task,
//! [`run_task`]. Files: [`env`](mod@env) (what the agent tells us),
//! [`agent_address`] (where the agent is), [`client`] (calls to the agent
//! and the book of unacknowledged updates), [`work`] (step 3's image task),
//! [`task_thread`] (a task's thread), [`reconnect`] (when the agent goes
//! away).

pub mod agent_address;
pub mod client;
pub mod env;
mod error;
pub mod reconnect;
pub mod task_group;
pub mod task_thread;
pub mod work;

pub use env::{EnvError, Environment};
pub use error::ExecutorError;

use crate::http_api::{StreamError, Subscription};
use crate::proto::executor::event::Type;
use crate::proto::executor::Event;
use crate::proto::mesos::{TaskInfo, TaskState};
use crate::proto::task_data::TaskData;
use crate::task_data;
use client::AgentClient;
use log::{error, info, trace, warn};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task_thread::RunningTask;

/// The longest a sleeping no-op task goes without looking at its kill flag.
const NAP: Duration = Duration::from_millis(50);

/// Reads the agent's environment variables and runs the executor.
pub fn run_from_env() -> Result<(), ExecutorError> {
    run(Environment::from_env().map_err(ExecutorError::Environment)?)
}

/// Runs the executor until the agent shuts it down (`Ok`) or is lost.
pub fn run(config: Environment) -> Result<(), ExecutorError> {
    let agent = Arc::new(AgentClient::new(&config));
    let mut subscription = agent
        .subscribe()
        .map_err(|error| ExecutorError::subscribe(&config, error))?;
    let mut executor = Executor {
        agent,
        tasks: HashMap::new(),
        config,
    };
    loop {
        let lost = match subscription.events.recv() {
            Ok(Ok(event)) => {
                crate::http_api::log_message("<-", &event);
                if executor.handle(event) == AfterEvent::ShutDown {
                    // Step 4: the last updates reach the scheduler.
                    executor.wait_for_acknowledgements(&subscription);
                    info!("Executor exiting");
                    return Ok(());
                }
                continue;
            }
            // An event this executor cannot decode is skipped: its length
            // was read, so the stream goes on with the next one.
            Ok(Err(StreamError::Decode(err))) => {
                warn!("{err}");
                continue;
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => "the event reader stopped".to_string(),
        };
        // Step 4: an agent that restarts takes its executors back.
        subscription = reconnect::subscribe_again(&executor.agent, &executor.config, lost)?;
    }
}

/// Whether the executor goes on after an event.
#[derive(Debug, PartialEq)]
enum AfterEvent {
    /// Read the next event.
    KeepRunning,
    /// `SHUTDOWN`: wait for the last acknowledgements, then exit.
    ShutDown,
}

/// The main thread's state.
struct Executor {
    config: Environment,
    agent: Arc<AgentClient>,
    tasks: HashMap<String, RunningTask>,
}

impl Executor {
    /// Reacts to one event from the agent.
    fn handle(&mut self, event: Event) -> AfterEvent {
        match event.type_() {
            Type::SUBSCRIBED => info!(
                "Registered executor on {}",
                event.subscribed.agent_info.hostname()
            ),
            Type::LAUNCH => self.launch(event.launch.task.clone().unwrap_or_default()),
            Type::LAUNCH_GROUP => task_group::refuse(&self.agent, &event),
            Type::KILL => self.kill(event.kill.task_id.value()),
            // Step 4: the agent has the update; the book forgets it.
            Type::ACKNOWLEDGED => {
                let ack = &event.acknowledged;
                if !self.agent.acknowledged(&ack.task_id, ack.uuid()) {
                    info!(
                        "Ignoring a repeated acknowledgement for task {}",
                        ack.task_id.value()
                    );
                }
            }
            Type::MESSAGE => info!(
                "Message from the scheduler: {} bytes",
                event.message.data().len()
            ),
            Type::ERROR => error!("The agent reports an error: {}", event.error.message()),
            Type::SHUTDOWN => {
                info!("Shutting down");
                for task in self.tasks.values() {
                    task.kill();
                }
                return AfterEvent::ShutDown;
            }
            Type::HEARTBEAT => trace!("Heartbeat from the agent"),
            Type::UNKNOWN => warn!("Ignoring an event of a type this executor does not know"),
        }
        AfterEvent::KeepRunning
    }

    /// `LAUNCH`: the task's story is [`run_task`]; we keep its kill
    /// flag for a later `KILL` or `SHUTDOWN`.
    fn launch(&mut self, task: TaskInfo) {
        let id = task.task_id.value().to_string();
        if self.agent.is_active(&id) {
            warn!("Task {id} is already running; ignoring a second launch");
            return;
        }
        info!("Launching task {id}");
        self.tasks.retain(|_, task| !task.has_ended());
        let running = run_task(Arc::clone(&self.agent), task);
        self.tasks.insert(id, running);
    }

    /// `KILL`: the task's thread sees the flag and reports `TASK_KILLED`.
    fn kill(&mut self, id: &str) {
        match self.tasks.get(id) {
            Some(task) if self.agent.is_active(id) => {
                info!("Killing task {id}");
                task.kill();
            }
            _ => info!("Asked to kill task {id}, which is not running"),
        }
    }

    /// After `SHUTDOWN`: handle events until every terminal update is
    /// acknowledged, or the agent's grace period is nearly over. The agent
    /// kills the executor when the period ends, so we stop waiting a little
    /// earlier (a tenth of it, at most a second) to exit on our own terms.
    fn wait_for_acknowledgements(&mut self, subscription: &Subscription<Event>) {
        let grace = self.config.shutdown_grace_period;
        let margin = (grace / 10).min(Duration::from_secs(1));
        let deadline = Instant::now() + grace.saturating_sub(margin);
        while !self.agent.all_terminal_acknowledged() {
            let left = deadline.saturating_duration_since(Instant::now());
            match subscription.events.recv_timeout(left) {
                Ok(Ok(event)) => {
                    self.handle(event);
                }
                Ok(Err(err)) if !err.is_fatal() => warn!("{err}"),
                Err(RecvTimeoutError::Timeout) => {
                    warn!("The shutdown grace period ended before every update was acknowledged");
                    break;
                }
                Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => {
                    warn!("The agent closed the connection before every update was acknowledged");
                    break;
                }
            }
        }
        for (_, task) in self.tasks.drain() {
            task.join_if_ended();
        }
    }
}

/// `LAUNCH` to the terminal update: says `TASK_RUNNING`, then the task works
/// on a thread of its own, which sends the terminal update itself. The main
/// thread never waits for a task, so it keeps reading events (a `KILL`, an
/// `ACKNOWLEDGED`) while tasks work. The agent relays every update to the
/// scheduler; a task ends with exactly one terminal update.
pub fn run_task(agent: Arc<AgentClient>, task: TaskInfo) -> RunningTask {
    // Step 4: the book keeps the task until the agent has one of its updates.
    agent.launched(&task);
    // Before the thread starts: the agent expects a task's updates in the
    // order they happened, RUNNING first.
    agent.update(&task.task_id, TaskState::TASK_RUNNING, None);
    let task_id = task.task_id.clone().unwrap_or_default();
    task_thread::start(Arc::clone(&agent), task_id, move |kill| {
        // `TaskInfo.data` says what to do (Mesos never reads it): an image
        // to invert (step 3), or a no-op that takes its time (step 2).
        let result = match task_data::decode(task.data()) {
            Ok(data) if task_data::is_image(&data) => sleep(&data, kill).and_then(|_| {
                // `--task-millis` first (0 by default), then the image.
                work::invert_and_upload(&data, &work::decoder_limits(&task), kill)
            }),
            Ok(data) => sleep(&data, kill),
            Err(err) => Err(Stop::Failed(format!(
                "could not read the task's data: {err}"
            ))),
        };
        let id = task.task_id.value();
        match result {
            Ok(done) => {
                info!("Task {id} finished: {done}");
                agent.update(&task.task_id, TaskState::TASK_FINISHED, Some(&done));
            }
            Err(Stop::Failed(why)) => {
                info!("Task {id} failed: {why}");
                agent.update(&task.task_id, TaskState::TASK_FAILED, Some(&why));
            }
            Err(Stop::Killed) => {
                info!("Task {id} killed");
                let why = "killed before it finished";
                agent.update(&task.task_id, TaskState::TASK_KILLED, Some(why));
            }
        }
    })
}

/// Why the work stopped early.
#[derive(Debug, PartialEq)]
pub(crate) enum Stop {
    /// `TASK_FAILED`, with what went wrong.
    Failed(String),
    /// `TASK_KILLED`: the kill flag was seen before the work was done.
    Killed,
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

/// Step 2: pretend to work for `noop_millis` (step 3 waits so before its
/// image, to be watched).
pub(crate) fn sleep(data: &TaskData, kill: &AtomicBool) -> Result<String, Stop> {
    let deadline = Instant::now() + Duration::from_millis(data.noop_millis.into());
    loop {
        check_kill(kill)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(format!("no-op task done after {} ms", data.noop_millis));
        }
        std::thread::sleep(left.min(NAP));
    }
}

/// Whether the task was asked to stop (`KILL`, `SHUTDOWN`).
pub(crate) fn check_kill(kill: &AtomicBool) -> Result<(), Stop> {
    // Relaxed is enough: the flag carries no other data with it.
    if kill.load(Ordering::Relaxed) {
        Err(Stop::Killed)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
