//! Step 4: reconciliation until every task asked about has an answer.
//!
//! Mesos answers a `RECONCILE` once and may lose the answer (a master
//! failing over in between), so its reconciliation guide says to ask
//! again, with backoff, about the tasks that got no answer.

use super::reconnect::Backoff;
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
