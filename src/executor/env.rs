//! What the agent tells its executor through the environment.
//!
//! An executor is not started by a person but by a Mesos agent, and the
//! agent passes everything the executor needs as environment variables:
//!
//! | variable                               | meaning                                         |
//! |----------------------------------------|-------------------------------------------------|
//! | `MESOS_SLAVE_PID`                      | the agent's process, `slave(1)@host:port`       |
//! | `MESOS_AGENT_ENDPOINT`                 | `host:port` of the agent's HTTP API             |
//! | `MESOS_FRAMEWORK_ID`                   | our framework, sent in every call               |
//! | `MESOS_EXECUTOR_ID`                    | who we are, sent in every call                  |
//! | `MESOS_CHECKPOINT`                     | `1` if the framework checkpoints, else `0`      |
//! | `MESOS_RECOVERY_TIMEOUT`               | how long to try to get a lost agent back        |
//! | `MESOS_SUBSCRIPTION_BACKOFF_MAX`       | the longest wait between two of those tries     |
//! | `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` | how long we have after `SHUTDOWN`               |
//!
//! The agent also sets `MESOS_DIRECTORY` and `MESOS_SANDBOX` (the sandbox
//! on the host, and inside a container); our executor starts in its sandbox
//! and needs neither. The agent's address is read as Mesos's own executor library reads it:
//! see [`agent_address`](super::agent_address).
//!
//! Durations are written in Mesos's own format: a number, possibly
//! fractional, followed by a unit (`ns`, `us`, `ms`, `secs`, `mins`, `hrs`,
//! `days`, `weeks`), such as `15mins` or `0.5secs`.

use super::agent_address::{AgentAddress, PidError};
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Mesos's default `--recovery_timeout`.
const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Mesos's default `--executor_reregistration_timeout`.
const DEFAULT_SUBSCRIPTION_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Mesos's default `--executor_shutdown_grace_period`.
const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(5);

/// Everything the executor learns from its environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    /// Where the agent is (`MESOS_SLAVE_PID` or `MESOS_AGENT_ENDPOINT`).
    pub agent: AgentAddress,
    /// The framework this executor belongs to (`MESOS_FRAMEWORK_ID`).
    pub framework_id: String,
    /// This executor's id within the framework (`MESOS_EXECUTOR_ID`).
    pub executor_id: String,
    /// Whether the framework checkpoints (`MESOS_CHECKPOINT`). Only then
    /// does an agent that restarts reconnect to its executors, so only then
    /// is it worth waiting for a lost agent to come back.
    pub checkpoint: bool,
    /// How long to keep trying to re-subscribe after losing the agent.
    pub recovery_timeout: Duration,
    /// The longest wait between two re-subscription attempts.
    pub subscription_backoff_max: Duration,
    /// How long the agent waits after `SHUTDOWN` before it kills us.
    pub shutdown_grace_period: Duration,
}

/// The environment is not what a Mesos agent would have set.
#[derive(Debug, PartialEq)]
pub enum EnvError {
    /// A variable every agent sets is missing.
    Missing {
        /// The variable's name.
        variable: &'static str,
    },
    /// A variable is set but its value makes no sense.
    Invalid {
        /// The variable's name.
        variable: &'static str,
        /// The value found.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `MESOS_SLAVE_PID` is set but is not a libprocess PID.
    InvalidPid {
        /// The value found.
        value: String,
        /// What is wrong with it.
        error: PidError,
    },
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Missing { variable } => write!(
                f,
                "the environment variable {variable} is not set: the executor is meant to be \
                 started by a Mesos agent, which sets it (run the scheduler instead, and let \
                 Mesos start the executor)"
            ),
            EnvError::Invalid {
                variable,
                value,
                reason,
            } => write!(f, "{variable}={value:?} is not valid: {reason}"),
            EnvError::InvalidPid { value, error } => write!(
                f,
                "MESOS_SLAVE_PID={value:?} is not the agent's libprocess PID: {error}"
            ),
        }
    }
}

impl std::error::Error for EnvError {}

impl Environment {
    /// Reads the configuration from this process's environment.
    pub fn from_env() -> Result<Environment, EnvError> {
        // `std::env::vars` panics on a variable that is not UTF-8; such a
        // variable cannot be one of Mesos's, so it is skipped.
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Environment::from_vars(&vars)
    }

    /// Reads the configuration from a map of variable names to values.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Environment, EnvError> {
        let required = |variable: &'static str| match vars.get(variable) {
            Some(value) if !value.is_empty() => Ok(value.clone()),
            _ => Err(EnvError::Missing { variable }),
        };
        let duration = |variable: &'static str, default: Duration| match vars.get(variable) {
            None => Ok(default),
            Some(value) => parse_duration(value).map_err(|reason| EnvError::Invalid {
                variable,
                value: value.clone(),
                reason,
            }),
        };
        let checkpoint = match vars.get("MESOS_CHECKPOINT").map(String::as_str) {
            // A real agent always sets it; without it we assume the safe
            // answer, "no checkpointing", which never waits for a lost agent.
            None | Some("0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(EnvError::Invalid {
                    variable: "MESOS_CHECKPOINT",
                    value: other.to_string(),
                    reason: "expected 1 or 0".to_string(),
                })
            }
        };
        Ok(Environment {
            agent: agent_address(vars)?,
            framework_id: required("MESOS_FRAMEWORK_ID")?,
            executor_id: required("MESOS_EXECUTOR_ID")?,
            checkpoint,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT)?,
            subscription_backoff_max: duration(
                "MESOS_SUBSCRIPTION_BACKOFF_MAX",
                DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
            )?,
            shutdown_grace_period: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                DEFAULT_SHUTDOWN_GRACE_PERIOD,
            )?,
        })
    }

    /// The URL of the agent's executor API.
    pub fn executor_api_url(&self) -> String {
        self.agent.executor_api_url()
    }
}

/// `MESOS_SLAVE_PID` when it is set, as Mesos's executor library reads it,
/// else `MESOS_AGENT_ENDPOINT`. A PID that is set must be valid: falling
/// back would hide a broken environment.
fn agent_address(vars: &HashMap<String, String>) -> Result<AgentAddress, EnvError> {
    if let Some(value) = vars.get("MESOS_SLAVE_PID") {
        return value
            .parse()
            .map(AgentAddress::Pid)
            .map_err(|error| EnvError::InvalidPid {
                value: value.clone(),
                error,
            });
    }
    match vars.get("MESOS_AGENT_ENDPOINT") {
        Some(endpoint) if !endpoint.is_empty() => Ok(AgentAddress::Endpoint(endpoint.clone())),
        _ => Err(EnvError::Missing {
            variable: "MESOS_SLAVE_PID or MESOS_AGENT_ENDPOINT",
        }),
    }
}

/// Parses a duration written the way Mesos prints one: a non-negative
/// number, possibly fractional, directly followed by a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let unit_start = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| {
            "a duration needs a unit (ns, us, ms, secs, mins, hrs, days, weeks)".to_string()
        })?;
    let (number, unit) = text.split_at(unit_start);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds_per_unit = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86_400.0,
        "weeks" => 604_800.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} (expected ns, us, ms, secs, mins, hrs, days or weeks)"
            ))
        }
    };
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("{text} is not a duration we can wait for (negative or too long)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn agent_vars() -> HashMap<String, String> {
        vars(&[
            ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
            ("MESOS_FRAMEWORK_ID", "framework-1"),
            ("MESOS_EXECUTOR_ID", "executor-1"),
        ])
    }

    #[test]
    fn the_minimal_environment_gets_mesos_defaults() {
        let config = Environment::from_vars(&agent_vars()).expect("valid");
        assert_eq!(
            config.agent,
            AgentAddress::Endpoint("127.0.0.1:5051".to_string())
        );
        assert_eq!(config.framework_id, "framework-1");
        assert_eq!(config.executor_id, "executor-1");
        assert!(!config.checkpoint);
        assert_eq!(config.recovery_timeout, Duration::from_secs(900));
        assert_eq!(config.subscription_backoff_max, Duration::from_secs(2));
        assert_eq!(config.shutdown_grace_period, Duration::from_secs(5));
        assert_eq!(
            config.executor_api_url(),
            "http://127.0.0.1:5051/api/v1/executor"
        );
    }

    #[test]
    fn every_variable_is_read() {
        let mut all = agent_vars();
        all.extend(vars(&[
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "3mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "250ms"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "0.5secs"),
        ]));
        let config = Environment::from_vars(&all).expect("valid");
        assert!(config.checkpoint);
        assert_eq!(config.recovery_timeout, Duration::from_secs(180));
        assert_eq!(config.subscription_backoff_max, Duration::from_millis(250));
        assert_eq!(config.shutdown_grace_period, Duration::from_millis(500));
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for (removed, variable) in [
            (
                "MESOS_AGENT_ENDPOINT",
                "MESOS_SLAVE_PID or MESOS_AGENT_ENDPOINT",
            ),
            ("MESOS_FRAMEWORK_ID", "MESOS_FRAMEWORK_ID"),
            ("MESOS_EXECUTOR_ID", "MESOS_EXECUTOR_ID"),
        ] {
            let mut incomplete = agent_vars();
            incomplete.remove(removed);
            let err = Environment::from_vars(&incomplete).expect_err("incomplete");
            assert_eq!(err, EnvError::Missing { variable });
            let text = err.to_string();
            assert!(text.contains(variable), "{text}");
            assert!(text.contains("started by a Mesos agent"), "{text}");

            // An empty value is as useless as none.
            incomplete.insert(removed.to_string(), String::new());
            assert_eq!(
                Environment::from_vars(&incomplete),
                Err(EnvError::Missing { variable })
            );
        }
    }

    #[test]
    fn the_slave_pid_gives_the_url_mesos_builds_and_wins() {
        let mut env = agent_vars();
        env.insert("MESOS_SLAVE_PID".into(), "slave(1)@10.0.0.5:5052".into());
        let config = Environment::from_vars(&env).expect("valid");
        let pid = super::super::agent_address::Pid {
            id: "slave(1)".into(),
            host: "10.0.0.5".into(),
            port: 5052,
        };
        assert_eq!(config.agent, AgentAddress::Pid(pid));
        assert_eq!(config.agent.variable(), "MESOS_SLAVE_PID");
        assert_eq!(
            config.executor_api_url(),
            "http://10.0.0.5:5052/slave(1)/api/v1/executor"
        );

        // The PID alone is enough, as for Mesos's own library.
        env.remove("MESOS_AGENT_ENDPOINT");
        let config = Environment::from_vars(&env).expect("valid");
        assert_eq!(
            config.executor_api_url(),
            "http://10.0.0.5:5052/slave(1)/api/v1/executor"
        );
    }

    #[test]
    fn a_bad_slave_pid_is_an_error_naming_it_not_a_fallback() {
        let mut env = agent_vars();
        env.insert("MESOS_SLAVE_PID".into(), "slave(1)@127.0.0.1".into());
        let err = Environment::from_vars(&env).expect_err("bad PID");
        assert_eq!(
            err,
            EnvError::InvalidPid {
                value: "slave(1)@127.0.0.1".into(),
                error: PidError::NoPort,
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("MESOS_SLAVE_PID=\"slave(1)@127.0.0.1\""),
            "{text}"
        );
        assert!(
            text.contains("no ':' between the host and the port"),
            "{text}"
        );
        assert!(text.contains("slave(1)@10.0.0.5:5051"), "{text}");
    }

    #[test]
    fn checkpoint_is_one_or_zero() {
        for (value, expected) in [("1", true), ("0", false)] {
            let mut env = agent_vars();
            env.insert("MESOS_CHECKPOINT".into(), value.into());
            assert_eq!(
                Environment::from_vars(&env).expect("valid").checkpoint,
                expected
            );
        }
        for bad in ["true", "yes", "", "2"] {
            let mut env = agent_vars();
            env.insert("MESOS_CHECKPOINT".into(), bad.into());
            match Environment::from_vars(&env) {
                Err(EnvError::Invalid {
                    variable, value, ..
                }) => {
                    assert_eq!(variable, "MESOS_CHECKPOINT");
                    assert_eq!(value, bad);
                }
                other => panic!("{bad:?} was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn a_bad_duration_names_its_variable() {
        let mut env = agent_vars();
        env.insert("MESOS_RECOVERY_TIMEOUT".into(), "soon".into());
        let err = Environment::from_vars(&env).expect_err("bad duration");
        assert!(
            matches!(&err, EnvError::Invalid { variable: "MESOS_RECOVERY_TIMEOUT", value, .. } if value == "soon"),
            "{err:?}"
        );
        assert!(err.to_string().contains("MESOS_RECOVERY_TIMEOUT"));
    }

    #[test]
    fn durations_in_every_mesos_unit() {
        let cases = [
            ("7ns", Duration::from_nanos(7)),
            ("3us", Duration::from_micros(3)),
            ("250ms", Duration::from_millis(250)),
            ("5secs", Duration::from_secs(5)),
            ("15mins", Duration::from_secs(15 * 60)),
            ("2hrs", Duration::from_secs(2 * 3600)),
            ("1days", Duration::from_secs(86_400)),
            ("2weeks", Duration::from_secs(2 * 604_800)),
            ("0secs", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn fractional_durations() {
        assert_eq!(parse_duration("0.5secs"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5mins"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(".25hrs"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration(" 2secs "), Ok(Duration::from_secs(2)));
        let millis = parse_duration("2.5ms").expect("valid");
        assert_eq!(millis.as_micros(), 2500);
    }

    #[test]
    fn bad_durations_say_why() {
        let cases = [
            ("", "unit"),
            ("15", "unit"),
            ("secs", "not a number"),
            ("1.2.3secs", "not a number"),
            ("5s", "unknown unit"),
            ("5 secs", "not a number"),
            ("5SECS", "unknown unit"),
            ("1minutes", "unknown unit"),
            ("-1secs", "negative"),
        ];
        for (text, reason) in cases {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
