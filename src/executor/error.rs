//! Why the executor stopped, in words that say what to change.
//!
//! *Plumbing: a reader may skip this file.*

use super::env::{EnvError, Environment};
use crate::http_api::ApiError;
use std::fmt;
use std::time::Duration;

/// Why the executor stopped.
#[derive(Debug)]
pub enum ExecutorError {
    /// The environment is not one a Mesos agent sets up.
    Environment(EnvError),
    /// The first `SUBSCRIBE` failed.
    Subscribe {
        /// The variable the agent's address came from.
        variable: &'static str,
        /// The URL the call went to.
        url: String,
        /// How it failed.
        error: ApiError,
    },
    /// The connection to the agent broke and the framework does not
    /// checkpoint, so the agent will not take us back.
    AgentLost {
        /// How the connection ended.
        reason: String,
    },
    /// The connection broke and re-subscribing failed until
    /// `MESOS_RECOVERY_TIMEOUT` ran out.
    RecoveryTimedOut {
        /// The recovery timeout.
        waited: Duration,
        /// The last re-subscription error.
        last_error: String,
    },
}

impl ExecutorError {
    /// The first `SUBSCRIBE` to the agent that `config` names failed.
    pub fn subscribe(config: &Environment, error: ApiError) -> ExecutorError {
        ExecutorError::Subscribe {
            variable: config.agent.variable(),
            url: config.executor_api_url(),
            error,
        }
    }
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutorError::Environment(err) => write!(f, "{err}"),
            ExecutorError::Subscribe {
                variable,
                url,
                error,
            } => write!(
                f,
                "could not subscribe to the agent at {url} (from {variable}): {error}"
            ),
            ExecutorError::AgentLost { reason } => write!(
                f,
                "lost the agent and the framework does not checkpoint ({reason}); without \
                 checkpointing a restarted agent does not reconnect to its executors, so we \
                 exit (set checkpoint in FrameworkInfo to survive agent restarts)"
            ),
            ExecutorError::RecoveryTimedOut { waited, last_error } => write!(
                f,
                "lost the agent and could not subscribe again within MESOS_RECOVERY_TIMEOUT \
                 ({waited:?}); last error: {last_error}"
            ),
        }
    }
}

impl std::error::Error for ExecutorError {}
