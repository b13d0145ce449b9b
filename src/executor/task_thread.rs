//! A task's thread: how it starts, how it is asked to stop, and the guard
//! that makes sure it ends with a status.
//!
//! *Plumbing: a reader may skip this file.* The story of a task is
//! [`super::run_task`]; this file closes the two ways a task could end
//! without a terminal update. Mesos waits for that update: a task without
//! one stays `TASK_RUNNING` forever, and the scheduler waits for it.

use super::client::AgentClient;
use crate::proto::mesos::{TaskID, TaskState};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A task's thread and the flag that asks it to stop.
pub struct RunningTask {
    kill: Arc<AtomicBool>,
    /// `None` when no thread could be started (the task failed at once).
    thread: Option<JoinHandle<()>>,
}

/// Starts `work` on a thread named after the task, handing it the task's
/// kill flag. A thread that cannot start fails the task at once; a panic in
/// the work (a bug, say in a decoder) fails it with the panic's message.
pub fn start(
    agent: Arc<AgentClient>,
    task_id: TaskID,
    work: impl FnOnce(&AtomicBool) + Send + 'static,
) -> RunningTask {
    let kill = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&kill);
    let guard = Arc::clone(&agent);
    let id = task_id.clone();
    let started = std::thread::Builder::new()
        .name(format!("task-{}", task_id.value()))
        .spawn(move || {
            let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| work(&flag)));
            // A task has one terminal update: after a panic, only a task
            // that has not sent it yet gets one.
            if let Err(panic) = panicked {
                if guard.is_active(id.value()) {
                    let message = panic_message(panic.as_ref());
                    log::info!("Task {} failed: {message}", id.value());
                    guard.update(&id, TaskState::TASK_FAILED, Some(&message));
                }
            }
        });
    let thread = match started {
        Ok(thread) => Some(thread),
        Err(err) => {
            let message = format!("could not start a thread for the task: {err}");
            log::error!("Task {} failed: {message}", task_id.value());
            agent.update(&task_id, TaskState::TASK_FAILED, Some(&message));
            None
        }
    };
    RunningTask { kill, thread }
}

impl RunningTask {
    /// Asks the work to stop; it sees the flag between stages and ends the
    /// task with `TASK_KILLED`.
    pub fn kill(&self) {
        // Relaxed is enough: the flag carries no other data with it.
        self.kill.store(true, Ordering::Relaxed);
    }

    /// Whether the task's thread has run to its end (one that never
    /// started has not).
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| t.is_finished())
    }

    /// At exit: joins an ended thread; a busy one ends with the process.
    pub fn join_if_ended(self) {
        match self.thread {
            Some(thread) if thread.is_finished() => {
                let _ = thread.join();
            }
            _ => log::debug!("A task thread is still busy; it ends with the process"),
        }
    }
}

/// The text of a caught panic, for the task's failure message.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("the executor hit a bug while running the task ({detail}); please report it")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caught(work: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let panic = std::panic::catch_unwind(work).expect_err("the work panics");
        panic_message(panic.as_ref())
    }

    #[test]
    fn a_panicking_task_fails_with_the_panic_message() {
        let message = caught(|| panic!("decoder bug at row 7"));
        assert!(message.contains("decoder bug at row 7"), "{message}");
        let formatted = caught(|| panic!("{} and {}", "this", "that"));
        assert!(formatted.contains("this and that"), "{formatted}");
    }
}
