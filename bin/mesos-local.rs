//! An embedded single-node Mesos cluster (master and agent) on loopback.
//!
//! Run it in one terminal and the scheduler in another, exactly as against a
//! real Mesos: `cargo run --bin mesos-local -- --port 5050`, then
//! `cargo run --bin scheduler -- --master 127.0.0.1:5050`.

use argh::FromArgs;
use mesos_tutorial::local::{Cluster, ClusterConfig, DEFAULT_RESOURCES};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// An embedded Mesos master and agent that speak the v1 HTTP APIs.
#[derive(FromArgs)]
struct Args {
    /// the address to listen on (default: 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    ip: String,

    /// the master's port (default: 5050, as Mesos)
    #[argh(option, default = "5050")]
    port: u16,

    /// the agent's port (default: 5051, as Mesos)
    #[argh(option, default = "5051")]
    agent_port: u16,

    /// the agent's resources, in Mesos's syntax
    #[argh(option, default = "String::from(DEFAULT_RESOURCES)")]
    resources: String,

    /// where executor sandboxes go (default: a temporary directory, removed
    /// on exit)
    #[argh(option)]
    work_dir: Option<PathBuf>,

    /// act as a master that is not the leader: redirect every scheduler call
    /// to this HOST:PORT
    #[argh(option)]
    redirect_to: Option<String>,

    /// require HTTP basic authentication from schedulers; the file holds
    /// one `principal secret` pair per line
    #[argh(option)]
    credentials: Option<PathBuf>,

    /// serve the master over TLS with this PEM certificate (chain)
    #[argh(option)]
    tls_cert: Option<PathBuf>,

    /// the PEM private key for --tls-cert
    #[argh(option)]
    tls_key: Option<PathBuf>,

    /// seconds between heartbeats on idle event streams (default: 15)
    #[argh(option, default = "15.0")]
    heartbeat_interval: f64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Args = argh::from_env();
    if !(args.heartbeat_interval > 0.0 && args.heartbeat_interval.is_finite()) {
        eprintln!("error: --heartbeat-interval must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let credentials = match &args.credentials {
        None => Vec::new(),
        Some(path) => match read_credentials(path) {
            Ok(credentials) => credentials,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => match (std::fs::read(cert), std::fs::read(key)) {
            (Ok(cert), Ok(key)) => Some((cert, key)),
            (Err(err), _) | (_, Err(err)) => {
                eprintln!("error: cannot read --tls-cert/--tls-key: {err}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("error: --tls-cert and --tls-key go together");
            return ExitCode::from(2);
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let config = ClusterConfig {
        master_bind: format!("{}:{}", args.ip, args.port),
        agent_bind: format!("{}:{}", args.ip, args.agent_port),
        resources: args.resources,
        heartbeat_interval: Duration::from_secs_f64(args.heartbeat_interval),
        work_dir: args.work_dir,
        redirect_to: args.redirect_to,
        credentials,
        tls,
        ..ClusterConfig::default()
    };
    let _cluster = match Cluster::start(config) {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let master = match scheme {
        "https" => format!("https://{}:{}", args.ip, args.port),
        _ => format!("{}:{}", args.ip, args.port),
    };
    log::info!("Ready. Point a scheduler at it with --master {master}");
    loop {
        std::thread::park();
    }
}

/// Reads `principal secret` pairs, one per line (blank lines and `#`
/// comments skipped).
fn read_credentials(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read --credentials {}: {err}", path.display()))?;
    let mut credentials = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(char::is_whitespace) {
            Some((principal, secret)) => {
                credentials.push((principal.to_string(), secret.trim().to_string()))
            }
            None => {
                return Err(format!(
                    "{}:{}: expected `principal secret`",
                    path.display(),
                    number + 1
                ))
            }
        }
    }
    if credentials.is_empty() {
        return Err(format!(
            "--credentials {} holds no `principal secret` line",
            path.display()
        ));
    }
    Ok(credentials)
}
