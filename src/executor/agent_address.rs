//! Where the agent is: the address an executor sends its calls to.
//!
//! Mesos's own executor library (`src/executor/executor.cpp` in Mesos's
//! sources) reads the agent's libprocess PID from `MESOS_SLAVE_PID`, such
//! as `slave(1)@10.0.0.5:5051`, and posts its calls to
//! `http://10.0.0.5:5051/slave(1)/api/v1/executor`: the scheme, the PID's
//! address, then the PID's id as the first path segment before
//! `/api/v1/executor`. Every agent serves that path beside the shorter
//! `/api/v1/executor` (Mesos's `docs/endpoints/slave/api/v1/executor.md`
//! lists both). We do the same, and fall back to `MESOS_AGENT_ENDPOINT`
//! (`host:port`, path `/api/v1/executor`) when no PID is given.
//!
//! *Plumbing: a reader may skip this file.*

use std::fmt;
use std::str::FromStr;

/// Where the agent's executor API is, and which variable said so.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentAddress {
    /// `MESOS_SLAVE_PID`: the agent's libprocess PID.
    Pid(Pid),
    /// `MESOS_AGENT_ENDPOINT`: `host:port`.
    Endpoint(String),
}

impl AgentAddress {
    /// The variable this address came from, for error messages.
    pub fn variable(&self) -> &'static str {
        match self {
            AgentAddress::Pid(_) => "MESOS_SLAVE_PID",
            AgentAddress::Endpoint(_) => "MESOS_AGENT_ENDPOINT",
        }
    }

    /// The URL of the agent's executor API. From a PID it is the one
    /// Mesos's executor library builds: the PID's id is the first path
    /// segment.
    pub fn executor_api_url(&self) -> String {
        match self {
            AgentAddress::Pid(pid) => {
                format!(
                    "http://{}:{}/{}/api/v1/executor",
                    pid.host, pid.port, pid.id
                )
            }
            AgentAddress::Endpoint(endpoint) => format!("http://{endpoint}/api/v1/executor"),
        }
    }
}

/// A libprocess PID, `id@host:port` such as `slave(1)@10.0.0.5:5051`: the
/// name of one actor inside a Mesos daemon, and the address it listens on.
#[derive(Clone, Debug, PartialEq)]
pub struct Pid {
    /// The actor's name, such as `slave(1)`.
    pub id: String,
    /// An IPv4 address or a host name.
    pub host: String,
    /// The daemon's port.
    pub port: u16,
}

/// Why a text is not a libprocess PID.
#[derive(Debug, PartialEq)]
pub enum PidError {
    /// No `@` between the id and the address.
    NoAt,
    /// Nothing, or more than letters, digits and `()-_.`, before the `@`.
    BadId,
    /// No `:` between the host and the port.
    NoPort,
    /// The host is empty or not an address or host name.
    BadHost,
    /// The port is not a number from 1 to 65535.
    BadPort,
}

impl fmt::Display for PidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            PidError::NoAt => "no '@' between the process id and the address",
            PidError::BadId => {
                "the process id before '@' is empty or has characters other than letters, \
                 digits and ()-_."
            }
            PidError::NoPort => "no ':' between the host and the port",
            PidError::BadHost => "the host is empty or not an IPv4 address or host name",
            PidError::BadPort => "the port is not a number from 1 to 65535",
        };
        write!(f, "{what}; a PID reads like slave(1)@10.0.0.5:5051")
    }
}

impl std::error::Error for PidError {}

impl FromStr for Pid {
    type Err = PidError;

    /// Splits as libprocess does (`id` up to the first `@`, `host` up to
    /// the next `:`, then the port), but refuses what libprocess would
    /// skip over, such as a port followed by other text.
    fn from_str(text: &str) -> Result<Pid, PidError> {
        let (id, address) = text.split_once('@').ok_or(PidError::NoAt)?;
        let (host, port) = address.split_once(':').ok_or(PidError::NoPort)?;
        let id_char = |c: char| c.is_ascii_alphanumeric() || "()-_.".contains(c);
        if id.is_empty() || !id.chars().all(id_char) {
            return Err(PidError::BadId);
        }
        let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if host.is_empty() || !host.chars().all(host_char) {
            return Err(PidError::BadHost);
        }
        // Digits only: Rust's parser would also take a leading `+`.
        let digits = port.bytes().all(|b| b.is_ascii_digit());
        let port = (port.parse::<u16>().ok())
            .filter(|&port| digits && port > 0)
            .ok_or(PidError::BadPort)?;
        Ok(Pid {
            id: id.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_as_libprocess_writes_them() {
        for (text, id, host, port) in [
            ("slave(1)@127.0.0.1:5051", "slave(1)", "127.0.0.1", 5051),
            (
                "slave(12)@agent-3.example.com:1",
                "slave(12)",
                "agent-3.example.com",
                1,
            ),
            ("master@10.1.2.3:65535", "master", "10.1.2.3", 65535),
            (
                "scheduler-1f_2.a@localhost:80",
                "scheduler-1f_2.a",
                "localhost",
                80,
            ),
        ] {
            let expected = Pid {
                id: id.into(),
                host: host.into(),
                port,
            };
            assert_eq!(text.parse::<Pid>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn a_bad_pid_says_which_part_is_wrong() {
        let cases = [
            ("", PidError::NoAt),
            ("slave(1)", PidError::NoAt),
            ("127.0.0.1:5051", PidError::NoAt),
            ("slave(1)@127.0.0.1", PidError::NoPort),
            ("@127.0.0.1:5051", PidError::BadId),
            ("slave/1@127.0.0.1:5051", PidError::BadId),
            ("slave 1@127.0.0.1:5051", PidError::BadId),
            ("slave(1)@:5051", PidError::BadHost),
            ("slave(1)@[::1]:5051", PidError::BadHost),
            ("slave(1)@host/x:5051", PidError::BadHost),
            ("slave(1)@a@b:5051", PidError::BadHost),
            ("slave(1)@127.0.0.1:", PidError::BadPort),
            ("slave(1)@127.0.0.1:0", PidError::BadPort),
            ("slave(1)@127.0.0.1:65536", PidError::BadPort),
            ("slave(1)@127.0.0.1:+5051", PidError::BadPort),
            ("slave(1)@127.0.0.1:5051x", PidError::BadPort),
            ("slave(1)@127.0.0.1:5051 ", PidError::BadPort),
            ("slave(1)@127.0.0.1:5051:1", PidError::BadPort),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Pid>(), Err(expected), "{text:?}");
        }
    }
}
