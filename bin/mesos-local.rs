//! An embedded Mesos cluster (a master and one or more agents) on loopback.
//!
//! Run it in one terminal and the scheduler in another, exactly as against a
//! real Mesos: `cargo run --bin mesos-local -- --port 5050`, then
//! `cargo run --bin scheduler -- --master 127.0.0.1:5050`. Ctrl+C stops it
//! and removes its work folder, unless `--work-dir` named one.

use argh::FromArgs;
use mesos_tutorial::local::{Cluster, ClusterConfig, Limits, DEFAULT_RESOURCES};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// An embedded Mesos master and one or more agents that speak the v1 HTTP
/// APIs.
#[derive(FromArgs)]
struct Args {
    /// the address to listen on (default: 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    ip: String,

    /// the master's port (default: 5050, as Mesos)
    #[argh(option, default = "5050")]
    port: u16,

    /// the agent's port; with several agents, the first of consecutive
    /// ports (default: 5051, as Mesos)
    #[argh(option, default = "5051")]
    agent_port: u16,

    /// how many agents to start, each with --resources (default: 1; Mesos's
    /// spelling, --num_slaves, works too)
    #[argh(option, default = "1")]
    agents: usize,

    /// each agent's resources, in Mesos's syntax
    #[argh(option, default = "String::from(DEFAULT_RESOURCES)")]
    resources: String,

    /// where executor sandboxes go, kept on exit (default: a folder in the
    /// temporary directory, removed on exit, Ctrl+C included)
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

    /// most connections open at once on each port; more are answered
    /// 503 (default: 256)
    #[argh(option, default = "Limits::default().max_connections")]
    max_connections: usize,

    /// most bytes of a request line and headers; more is answered 431
    /// (default: 16384)
    #[argh(option, default = "Limits::default().max_header_bytes")]
    max_header_bytes: usize,

    /// seconds a request head may take to arrive, from its first byte;
    /// slower is answered 408 (default: 10)
    #[argh(option, default = "Limits::default().header_timeout.as_secs_f64()")]
    header_timeout: f64,

    /// seconds a request body may take to arrive after its head; slower is
    /// answered 408 (default: 60)
    #[argh(option, default = "Limits::default().body_timeout.as_secs_f64()")]
    body_timeout: f64,

    /// seconds a connection may stay open with no request in progress
    /// (default: 60)
    #[argh(option, default = "Limits::default().idle_timeout.as_secs_f64()")]
    idle_timeout: f64,

    /// seconds a client may leave a response unread before it is cut off
    /// (default: 30)
    #[argh(option, default = "Limits::default().send_timeout.as_secs_f64()")]
    send_timeout: f64,

    /// how many ended tasks the master keeps per framework, for
    /// /master/state (default: 1000, as Mesos; Mesos's spelling,
    /// --max_completed_tasks_per_framework, works too)
    #[argh(
        option,
        default = "ClusterConfig::default().max_completed_tasks_per_framework"
    )]
    max_completed_tasks_per_framework: usize,
}

fn main() -> ExitCode {
    // rustls warns, at length, about each malformed TLS handshake a client
    // sends; the front door logs what matters about those at debug level.
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,rustls=error"),
    )
    .init();
    let args = parse_args();
    let (config, master) = match config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // Ctrl+C (SIGINT) and SIGTERM stop the cluster cleanly: its executors
    // are killed and the work folder it made is removed. A second one exits
    // at once.
    let (stop, stopped) = std::sync::mpsc::channel();
    let signals = std::sync::atomic::AtomicUsize::new(0);
    let handler = ctrlc::set_handler(move || {
        if signals.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::process::exit(INTERRUPTED);
        }
        let _ = stop.send(());
    });
    if let Err(err) = handler {
        eprintln!("error: cannot catch Ctrl+C: {err}");
        return ExitCode::from(2);
    }
    let cluster = match Cluster::start(config) {
        Ok(cluster) => cluster,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    log::info!("Ready. Point a scheduler at it with --master {master}");
    log::info!("Watch the cluster in a browser: {}", cluster.web_ui_url());
    let _ = stopped.recv();
    log::info!("interrupted: stopping the cluster");
    cluster.shutdown();
    ExitCode::from(INTERRUPTED as u8)
}

/// The exit status after Ctrl+C, as a shell reports a process that SIGINT
/// ended (128 + 2).
const INTERRUPTED: i32 = 130;

/// The cluster's configuration from the flags, and the `--master` value that
/// reaches it.
fn config(args: Args) -> Result<(ClusterConfig, String), String> {
    let limits = limits(&args)?;
    let heartbeat_interval = seconds(args.heartbeat_interval)
        .ok_or("--heartbeat-interval must be a positive number of seconds")?;
    let credentials = match &args.credentials {
        None => Vec::new(),
        Some(path) => read_credentials(path)?,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => match (std::fs::read(cert), std::fs::read(key)) {
            (Ok(cert), Ok(key)) => Some((cert, key)),
            (Err(err), _) | (_, Err(err)) => {
                return Err(format!("cannot read --tls-cert/--tls-key: {err}"))
            }
        },
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let master = match tls {
        Some(_) => format!("https://{}:{}", args.ip, args.port),
        None => format!("{}:{}", args.ip, args.port),
    };
    if args.agents == 0 {
        return Err("--agents must be at least 1".into());
    }
    let last_port = usize::from(args.agent_port) + args.agents - 1;
    if args.agent_port != 0 && last_port > usize::from(u16::MAX) {
        return Err(format!(
            "--agents {} from --agent-port {} would need ports up to {last_port}; \
             choose a lower --agent-port, or 0 for any free ports",
            args.agents, args.agent_port
        ));
    }
    let config = ClusterConfig {
        master_bind: format!("{}:{}", args.ip, args.port),
        agent_bind: format!("{}:{}", args.ip, args.agent_port),
        agents: args.agents,
        resources: args.resources,
        heartbeat_interval,
        work_dir: args.work_dir,
        redirect_to: args.redirect_to,
        credentials,
        tls,
        limits,
        max_completed_tasks_per_framework: args.max_completed_tasks_per_framework,
        ..ClusterConfig::default()
    };
    Ok((config, master))
}

/// The command line, with each flag also accepted as Mesos spells it:
/// `--max_completed_tasks_per_framework` for argh's
/// `--max-completed-tasks-per-framework`, and Mesos's local mode's
/// `--num_slaves` for `--agents`. Exits after printing the help, or what
/// is wrong.
fn parse_args() -> Args {
    let words: Vec<String> = std::env::args()
        .map(|word| match word.strip_prefix("--") {
            Some("num_slaves" | "num-slaves") => "--agents".to_string(),
            Some(name) => format!("--{}", name.replace('_', "-")),
            None => word,
        })
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (command, rest) = words.split_first().unwrap_or((&"mesos-local", &[]));
    match Args::from_args(&[command], rest) {
        Ok(args) => args,
        Err(exit) if exit.status.is_ok() => {
            println!("{}", exit.output);
            std::process::exit(0);
        }
        Err(exit) => {
            eprintln!("{}", exit.output);
            std::process::exit(2);
        }
    }
}

/// A positive, finite number of seconds as a `Duration`.
fn seconds(value: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|duration| !duration.is_zero())
}

/// The limits every client of the master and agent ports is held to.
fn limits(args: &Args) -> Result<Limits, String> {
    let time = |flag: &str, value: f64| {
        seconds(value).ok_or_else(|| format!("--{flag} must be a positive number of seconds"))
    };
    if args.max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    // The shortest head worth serving: a request line and a few headers.
    if args.max_header_bytes < 256 {
        return Err("--max-header-bytes must be at least 256".into());
    }
    Ok(Limits {
        max_connections: args.max_connections,
        max_header_bytes: args.max_header_bytes,
        header_timeout: time("header-timeout", args.header_timeout)?,
        body_timeout: time("body-timeout", args.body_timeout)?,
        idle_timeout: time("idle-timeout", args.idle_timeout)?,
        send_timeout: time("send-timeout", args.send_timeout)?,
    })
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
