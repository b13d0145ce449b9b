//! Step 4: reconciliation until every task asked about has an answer.
//!
//! Mesos answers a `RECONCILE` once and may lose the answer (a master
//! failing over in between), so its reconciliation guide says to ask
//! again, with backoff, about the tasks that got no answer.

use super::master::MasterConnection;
use super::reconnect::Backoff;
use crate::http_api::ApiError;
use crate::proto::scheduler::call;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first wait for reconciliation answers before asking again.
const RECONCILE_FIRST_WAIT: Duration = Duration::from_secs(2);
/// Waits for reconciliation answers grow up to this.
const RECONCILE_MAX_WAIT: Duration = Duration::from_secs(60);

/// The tasks asked about and not yet answered, and when to ask again.
pub struct Reconciliation {
    /// Task id to agent id, for the tasks without an answer yet.
    pending: HashMap<String, String>,
    next_at: Instant,
    backoff: Backoff,
}

impl Default for Reconciliation {
    fn default() -> Reconciliation {
        Reconciliation {
            pending: HashMap::new(),
            next_at: Instant::now(),
            backoff: Backoff::new(RECONCILE_FIRST_WAIT, RECONCILE_MAX_WAIT),
        }
    }
}

impl Reconciliation {
    /// Starts over (after a subscription) with these (task id, agent id)
    /// and returns them, to be sent now.
    pub fn start(&mut self, tasks: Vec<(String, String)>) -> Vec<(String, String)> {
        *self = Reconciliation::default();
        self.pending = tasks.iter().cloned().collect();
        self.next_at = Instant::now() + self.backoff.next_wait();
        tasks
    }

    /// Any update about a task answers for it.
    pub fn answered(&mut self, task_id: &str) {
        self.pending.remove(task_id);
    }

    /// The tasks to ask about again, once it is time.
    pub fn due(&mut self) -> Option<Vec<(String, String)>> {
        if self.pending.is_empty() || Instant::now() < self.next_at {
            return None;
        }
        self.next_at = Instant::now() + self.backoff.next_wait();
        Some(
            self.pending
                .iter()
                .map(|(task, agent)| (task.clone(), agent.clone()))
                .collect(),
        )
    }
}

impl MasterConnection {
    /// `RECONCILE`: asks for the latest state of these tasks, given as
    /// (task id, agent id). The answers arrive as `UPDATE` events from the
    /// master (without a uuid); a task the master does not know comes back
    /// `TASK_LOST`. With no task at all ("implicit" reconciliation) the
    /// master answers for every unfinished task of the framework, which is
    /// how a scheduler learns of tasks it did not know about.
    pub fn reconcile(&self, tasks: &[(String, String)]) -> Result<(), ApiError> {
        self.send(call::Type::RECONCILE, |call| {
            let reconcile = call.reconcile.mut_or_insert_default();
            for (task_id, agent_id) in tasks {
                let mut task = call::reconcile::Task::new();
                task.task_id
                    .mut_or_insert_default()
                    .set_value(task_id.clone());
                // The agent lets the master answer for a task it has not
                // heard of yet from that agent (it may be re-registering).
                if !agent_id.is_empty() {
                    task.agent_id
                        .mut_or_insert_default()
                        .set_value(agent_id.clone());
                }
                reconcile.tasks.push(task);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciliation_asks_again_until_every_task_is_answered() {
        let mut reconciliation = Reconciliation::default();
        assert_eq!(reconciliation.due(), None, "nothing to ask about");
        let tasks = vec![
            ("a".to_string(), "agent".to_string()),
            ("b".into(), "agent".into()),
        ];
        assert_eq!(reconciliation.start(tasks.clone()), tasks);
        assert_eq!(reconciliation.due(), None, "not before the first wait");
        reconciliation.next_at = Instant::now();
        reconciliation.answered("a");
        assert_eq!(
            reconciliation.due(),
            Some(vec![("b".to_string(), "agent".to_string())])
        );
        reconciliation.answered("b");
        reconciliation.next_at = Instant::now();
        assert_eq!(reconciliation.due(), None, "every task has its answer");
    }
}
