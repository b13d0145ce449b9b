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
//! [`work::run_task`]. Files: [`env`](mod@env) (what the agent tells us),
//! [`agent_address`] (where the agent is), [`client`] (calls to the agent
//! and the book of unacknowledged updates), [`work`] (what a task does),
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
use client::AgentClient;
use log::{error, info, trace, warn};
use std::collections::HashMap;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task_thread::RunningTask;

/// Reads the agent's environment variables and runs the executor.
pub fn run_from_env() -> Result<(), ExecutorError> {
    run(Environment::from_env().map_err(ExecutorError::Environment)?)
}

/// Runs the executor until the agent shuts it down (`Ok`) or is lost.
pub fn run(config: Environment) -> Result<(), ExecutorError> {
    let mut executor = Executor {
        agent: Arc::new(AgentClient::new(&config)),
        tasks: HashMap::new(),
        config,
    };
    let mut subscription =
        executor
            .agent
            .subscribe()
            .map_err(|error| ExecutorError::Subscribe {
                variable: executor.config.agent.variable(),
                url: executor.config.executor_api_url(),
                error,
            })?;
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
            Type::LAUNCH_GROUP => self.refuse_task_group(&event),
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

    /// `LAUNCH`: the task's story is [`work::run_task`]; we keep its kill
    /// flag for a later `KILL` or `SHUTDOWN`.
    fn launch(&mut self, task: TaskInfo) {
        let id = task.task_id.value().to_string();
        if self.agent.is_active(&id) {
            warn!("Task {id} is already running; ignoring a second launch");
            return;
        }
        info!("Launching task {id}");
        self.tasks.retain(|_, task| !task.has_ended());
        let running = work::run_task(Arc::clone(&self.agent), task);
        self.tasks.insert(id, running);
    }

    /// `LAUNCH_GROUP`: task groups are for Mesos's default executor; we
    /// fail each task of the group so the scheduler hears about it.
    fn refuse_task_group(&mut self, event: &Event) {
        let message = "this executor runs single tasks (LAUNCH), not task groups (LAUNCH_GROUP)";
        for task in task_group::tasks(event) {
            warn!("Task {} failed: {message}", task.task_id.value());
            self.agent.launched(&task);
            self.agent
                .update(&task.task_id, TaskState::TASK_FAILED, Some(message));
        }
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

#[cfg(test)]
mod tests;
