//! Staying subscribed: what a scheduler does when the connection to the
//! master breaks.
//!
//! On a real cluster masters fail over, connections drop and heartbeats stop.
//! Mesos's rules for a scheduler that wants its work to survive that:
//!
//! - **Failover timeout.** `FrameworkInfo.failover_timeout` says how long the
//!   master keeps a disconnected framework (and its tasks) alive. Mesos's
//!   default is 0: the tasks die the moment the scheduler disconnects.
//! - **Subscribe again as the same framework.** Within that time, a
//!   `SUBSCRIBE` that names the framework id picks up where the old
//!   subscription left off. Keeping the id in a file
//!   (`--framework-id-file`) lets even a restarted scheduler process do it.
//! - **Back off.** A master that is down or electing a leader answers with
//!   connection errors or `503`; retry with exponentially growing, jittered
//!   waits so that many frameworks do not hammer it in step.
//! - **Reconcile.** Updates may have been missed while disconnected, so after
//!   re-subscribing the scheduler asks for the state of every task it
//!   believes is running (`RECONCILE`), and again for those without an
//!   answer ([`Reconciliation`]).
//! - **Take over from an earlier process.** A scheduler restarted with
//!   `--framework-id-file` finds the earlier process's executor still on
//!   the agents, pointing at a file server that is gone: it shuts that
//!   executor down (and with it the orphaned tasks) and uses fresh task ids.
//!
//! One limit: the HTTP client cannot close a stream that went silent, so
//! after a heartbeat timeout the old stream's reader thread lingers until
//! the operating system gives up on the connection; each re-subscription
//! opens a new one.

use super::master::{scheduler_url, MasterConnection};
use super::{Config, SchedulerError};
use crate::http_api::{ApiError, Endpoint};
use crate::proto::mesos::{FrameworkID, FrameworkInfo};
use std::time::{Duration, Instant};

/// The first wait before retrying.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Waits grow up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// How long a master may stay unavailable before we give up, at least.
const MIN_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter: each wait is a random point in the
/// upper half of the current step, and the step doubles up to a cap.
pub struct Backoff {
    step: Duration,
    cap: Duration,
}

impl Backoff {
    /// Backoff starting at `first`, growing up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { step: first, cap }
    }

    /// How long to wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.step.mul_f64(0.5 + 0.5 * crate::random::fraction());
        self.step = (self.step * 2).min(self.cap);
        wait
    }
}

/// Reconciliation until every task asked about has an answer. Mesos answers
/// a `RECONCILE` once and may lose it (a master failing over in between), so
/// its reconciliation guide says to ask again, with backoff, about the tasks
/// that got no answer.
pub struct Reconciliation {
    /// Task id to agent id, for the tasks without an answer yet.
    pending: std::collections::HashMap<String, String>,
    next_at: Instant,
    backoff: Backoff,
}

impl Default for Reconciliation {
    fn default() -> Reconciliation {
        Reconciliation {
            pending: Default::default(),
            next_at: Instant::now(),
            backoff: Backoff::new(RECONCILE_FIRST_WAIT, RECONCILE_MAX_WAIT),
        }
    }
}

/// The first wait for reconciliation answers before asking again.
const RECONCILE_FIRST_WAIT: Duration = Duration::from_secs(2);
/// Waits for reconciliation answers grow up to this.
const RECONCILE_MAX_WAIT: Duration = Duration::from_secs(60);

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

/// Subscribes to the master, as framework `id` if given, retrying while the
/// master is unreachable or not ready. A master that cannot be reached at
/// all on the first attempt is an error at once: most likely `--master` is
/// wrong, and the user should hear so immediately.
pub fn subscribe(
    config: &Config,
    id: Option<FrameworkID>,
    first_attempt: bool,
) -> Result<MasterConnection, SchedulerError> {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let budget = MIN_RETRY_BUDGET.max(Duration::from_secs_f64(
        config.failover_timeout.clamp(0.0, 86400.0),
    ));
    let deadline = Instant::now() + budget;
    loop {
        let mut endpoint = Endpoint::new(&scheduler_url(&config.master), config.content_type);
        if let Some(ca_file) = &config.ca_file {
            endpoint = endpoint
                .with_ca_file(ca_file)
                .map_err(SchedulerError::Tls)?;
        }
        if let (Some(principal), Some(secret)) = (&config.principal, &config.secret) {
            endpoint = endpoint.with_basic_auth(principal, secret);
        }
        let error =
            match MasterConnection::subscribe_to(endpoint, framework_info(config, id.clone())) {
                Ok(connection) => return Ok(connection),
                Err(error) => error,
            };
        let retry = match &error {
            ApiError::Unreachable { .. } => !first_attempt,
            // Not the leader yet, or still recovering its state.
            ApiError::Rejected { status, .. } => matches!(status, 503 | 404),
            ApiError::Redirected { .. } => true,
        };
        if !retry || Instant::now() >= deadline {
            return Err(SchedulerError::Master(error));
        }
        let wait = backoff.next_wait();
        log::warn!("{error}; subscribing again in {:.1} s", wait.as_secs_f64());
        std::thread::sleep(wait);
    }
}

/// What we tell the master about ourselves.
fn framework_info(config: &Config, id: Option<FrameworkID>) -> FrameworkInfo {
    use crate::proto::mesos::framework_info::{capability, Capability};
    let mut info = FrameworkInfo::new();
    info.id = id.into();
    info.set_user(config.user.clone());
    info.set_name(config.name.clone());
    info.set_failover_timeout(config.failover_timeout);
    info.set_checkpoint(config.checkpoint);
    if let Some(principal) = &config.principal {
        info.set_principal(principal.clone());
    }
    // MULTI_ROLE: offers say which role they are for, and our tasks must
    // use resources under that role (see `tasks.rs`).
    info.roles.push(config.role.clone());
    let mut multi_role = Capability::new();
    multi_role.set_type(capability::Type::MULTI_ROLE);
    info.capabilities.push(multi_role);
    info
}

/// The framework id saved by an earlier run, if `--framework-id-file` names
/// a file that holds one.
pub fn load_framework_id(config: &Config) -> Option<FrameworkID> {
    let path = config.framework_id_file.as_ref()?;
    let text = std::fs::read_to_string(path).ok()?;
    let value = text.trim();
    if value.is_empty() {
        return None;
    }
    log::info!("Subscribing as framework {value} (from {})", path.display());
    let mut id = FrameworkID::new();
    id.set_value(value.to_string());
    Some(id)
}

/// Remembers the framework id for a restarted scheduler, or (with `None`)
/// forgets it because the framework is finished or was removed.
pub fn save_framework_id(config: &Config, id: Option<&str>) {
    let Some(path) = &config.framework_id_file else {
        return;
    };
    let result = match id {
        Some(id) => std::fs::write(path, format!("{id}\n")),
        None => match std::fs::remove_file(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    if let Err(err) = result {
        log::warn!(
            "Could not update --framework-id-file {}: {err}",
            path.display()
        );
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

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next_wait()).collect();
        // Each wait lies in the upper half of its step: 100, 200, 400, 800, 800...
        let steps = [100u64, 200, 400, 800, 800, 800, 800, 800];
        for (wait, step) in waits.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *wait >= step / 2 && *wait <= step,
                "{wait:?} outside ({:?}, {step:?}]",
                step / 2
            );
        }
    }
}
