//! Step 4: subscribing while the master is unavailable.
//!
//! A master that is down or electing a leader answers with connection
//! errors or `503`; one that is not the leader redirects. Mesos asks
//! schedulers to retry with exponentially growing, jittered waits, so that
//! many frameworks do not hammer a recovering master in step. Ctrl+C
//! ends the wait.

use super::master::{self, MasterConnection};
use super::{Config, Interrupts, SchedulerError};
use crate::http_api::ApiError;
use crate::proto::mesos::FrameworkID;
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

/// Given the answer to an attempt to subscribe (step 1's
/// [`master::connect`], as framework `id` if given), tries again while the
/// master is unreachable or not ready, for a minute, or for the failover
/// timeout if that is longer. Once subscribed, Ctrl+C goes to the new
/// subscription's inbox; `None` if it came while waiting to try again. A
/// master that cannot be reached at all on the `first_attempt` is an error
/// at once: most likely `--master` is wrong, and the user should hear so
/// immediately.
pub fn retry_connect(
    config: &Config,
    id: Option<FrameworkID>,
    mut attempt: Result<MasterConnection, SchedulerError>,
    first_attempt: bool,
    interrupts: &Interrupts,
) -> Result<Option<MasterConnection>, SchedulerError> {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let budget = MIN_RETRY_BUDGET.max(Duration::from_secs_f64(
        config.failover_timeout.clamp(0.0, 86400.0),
    ));
    let deadline = Instant::now() + budget;
    loop {
        let error = match attempt {
            Ok(connection) => {
                interrupts.deliver_to(connection.interrupter.clone());
                return Ok(Some(connection));
            }
            Err(SchedulerError::Master(error)) => error,
            Err(other) => return Err(other),
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
        if interrupts.sleep(wait) {
            log::warn!("interrupted while subscribing: {error}");
            return Ok(None);
        }
        attempt = master::connect(config, id.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
