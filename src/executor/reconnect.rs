//! When the agent goes away: subscribe again, or give up.
//!
//! The event stream can break at any time, most often because the agent
//! restarts (say, for an upgrade). What the executor should do depends on
//! whether the framework *checkpoints* (`MESOS_CHECKPOINT`):
//!
//! - **Without checkpointing** the agent forgets its executors when it
//!   restarts and will not take this one back, so the executor exits.
//! - **With checkpointing** the restarted agent recovers its state and waits
//!   for its executors to subscribe again. The executor retries `SUBSCRIBE`
//!   until `MESOS_RECOVERY_TIMEOUT`, pausing a random time of at most
//!   `MESOS_SUBSCRIPTION_BACKOFF_MAX` before each try (the agent counts an
//!   executor that does not try within that time as hung). Each `SUBSCRIBE`
//!   carries the unacknowledged tasks and updates, so nothing said while
//!   the agent was away is lost. A recovering agent answers `503` for a
//!   while; that is just one more try.

use super::client::AgentClient;
use super::{Environment, ExecutorError};
use crate::http_api::Subscription;
use crate::proto::executor::Event;
use std::time::{Duration, Instant};

/// Called when the event stream ended for `reason`: returns a new
/// subscription, or why there will be none.
pub fn subscribe_again(
    agent: &AgentClient,
    config: &Environment,
    reason: String,
) -> Result<Subscription<Event>, ExecutorError> {
    if !config.checkpoint {
        return Err(ExecutorError::AgentLost { reason });
    }
    let waited = config.recovery_timeout;
    log::warn!("Lost the agent ({reason}); subscribing again for up to {waited:?}");
    let deadline = Instant::now() + waited;
    let mut last_error = reason;
    while Instant::now() < deadline {
        let pause = random_pause(config.subscription_backoff_max);
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        match agent.subscribe() {
            Ok(subscription) => return Ok(subscription),
            Err(err) => {
                log::info!("Subscribing again failed: {err}");
                last_error = err.to_string();
            }
        }
    }
    Err(ExecutorError::RecoveryTimedOut { waited, last_error })
}

/// A random duration between zero and `max`. Random, so that the many
/// executors of a restarted agent do not all knock at the same moment.
fn random_pause(max: Duration) -> Duration {
    max.mul_f64(crate::random::fraction())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_pauses_stay_within_the_maximum() {
        let max = Duration::from_millis(250);
        let pauses: Vec<_> = (0..20).map(|_| random_pause(max)).collect();
        assert!(pauses.iter().all(|pause| *pause <= max), "{pauses:?}");
        assert!(
            pauses.windows(2).any(|w| w[0] != w[1]),
            "not random: {pauses:?}"
        );
    }
}
