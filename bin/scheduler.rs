//! The framework's scheduler: `cargo run --bin scheduler -- --help`.
//!
//! With no flags it runs workshop step 3 (invert the demo images) against an
//! embedded single-node Mesos cluster. `--step register` and `--step launch`
//! run steps 1 and 2; `--master HOST:5050` uses a real Mesos master.

use argh::FromArgs;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::local::{Cluster, ClusterConfig, DEFAULT_RESOURCES};
use mesos_tutorial::scheduler::{self, Config, Step};
use std::path::PathBuf;
use std::process::ExitCode;

/// A Mesos framework that inverts images, written to be read: see README.md.
#[derive(FromArgs)]
struct Args {
    /// the Mesos master: `local` (the default) starts an embedded master and
    /// agent in this process; otherwise HOST:PORT, e.g. 127.0.0.1:5050
    #[argh(option, default = "String::from(\"local\")")]
    master: String,

    /// the workshop step: `register` (1), `launch` (2) or `images` (3, the
    /// default)
    #[argh(option, default = "Step::Images", from_str_fn(parse_step))]
    step: Step,

    /// how calls and events are encoded: `protobuf` (default) or `json`
    #[argh(option, default = "ContentType::Protobuf")]
    content_type: ContentType,

    /// the framework's name, shown by the master
    #[argh(option, default = "String::from(\"Rust Tutorial Framework\")")]
    name: String,

    /// the Unix user tasks run as (default: the current user)
    #[argh(option)]
    user: Option<String>,

    /// the role whose resources the framework receives (default: *)
    #[argh(option, default = "String::from(\"*\")")]
    role: String,

    /// the executor binary to serve to agents (default: `executor` next to
    /// this program, built by cargo if missing)
    #[argh(option)]
    executor: Option<PathBuf>,

    /// the address of the file server; agents must reach it (default:
    /// 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    address: String,

    /// the port of the file server (default: 0, any free port)
    #[argh(option, default = "0")]
    port: u16,

    /// CPUs per task (default: 1)
    #[argh(option, default = "1.0")]
    task_cpus: f64,

    /// memory per task in MB (default: 128)
    #[argh(option, default = "128.0")]
    task_mem: f64,

    /// step 2: stop and tear down after this many tasks finished (default:
    /// run forever)
    #[argh(option)]
    tasks: Option<usize>,

    /// step 2: how long each no-op task works, in milliseconds (default: 0)
    #[argh(option, default = "0")]
    task_millis: u32,

    /// how long declined resources are not offered again, in seconds
    /// (default: 5, as Mesos)
    #[argh(option, default = "5.0")]
    refuse_seconds: f64,

    /// step 3: an image URL or local file; repeat the flag or separate with
    /// commas (default: generated demo images)
    #[argh(option)]
    images: Vec<String>,

    /// step 3: a file with one image URL or path per line
    #[argh(option)]
    images_file: Option<PathBuf>,

    /// step 3: where inverted images are written (default: ./output)
    #[argh(option, default = "PathBuf::from(\"output\")")]
    output_dir: PathBuf,

    /// step 3: attempts per image before it counts as failed (default: 3)
    #[argh(option, default = "3")]
    max_attempts: u32,

    /// step 3: keep the results page up after the batch, until Ctrl+C
    #[argh(switch)]
    keep_serving: bool,

    /// seconds the master keeps our tasks after we disconnect (default: 0,
    /// as Mesos: they die with the connection)
    #[argh(option, default = "0.0")]
    failover_timeout: f64,

    /// ask agents to checkpoint our tasks, so that our executors survive an
    /// agent restart
    #[argh(switch)]
    checkpoint: bool,

    /// a file that keeps the framework id, so that a restarted scheduler
    /// comes back as the same framework (use with --failover-timeout)
    #[argh(option)]
    framework_id_file: Option<PathBuf>,

    /// a PEM file of certificate authorities to trust for an https://
    /// master (default: the system's)
    #[argh(option)]
    ca_file: Option<PathBuf>,

    /// the principal to authenticate as (HTTP basic authentication)
    #[argh(option)]
    principal: Option<String>,

    /// a file holding the principal's secret
    #[argh(option)]
    secret_file: Option<PathBuf>,

    /// with --master local: the embedded agent's resources, in Mesos's
    /// syntax
    #[argh(option, default = "String::from(DEFAULT_RESOURCES)")]
    resources: String,
}

fn parse_step(value: &str) -> Result<Step, String> {
    match value {
        "register" | "1" => Ok(Step::Register),
        "launch" | "2" => Ok(Step::Launch),
        "images" | "3" => Ok(Step::Images),
        other => Err(format!(
            "unknown step '{other}': use register, launch or images"
        )),
    }
}

/// Refuses flags that would make the run hang or misbehave: a task of zero
/// CPUs "fits" an offer without end, zero attempts never run, and an
/// address of "anywhere" cannot be fetched from.
fn check_numbers(args: &Args) -> Result<(), String> {
    let positive = |value: f64| value > 0.0 && value.is_finite();
    let non_negative = |value: f64| value >= 0.0 && value.is_finite();
    if !positive(args.task_cpus) {
        return Err(format!(
            "--task-cpus must be more than 0 (got {})",
            args.task_cpus
        ));
    }
    if !positive(args.task_mem) {
        return Err(format!(
            "--task-mem must be more than 0 MB (got {})",
            args.task_mem
        ));
    }
    if !non_negative(args.refuse_seconds) {
        return Err("--refuse-seconds must be a number of seconds, 0 or more".into());
    }
    if !non_negative(args.failover_timeout) {
        return Err("--failover-timeout must be a number of seconds, 0 or more".into());
    }
    if args.max_attempts == 0 {
        return Err("--max-attempts must be at least 1".into());
    }
    // The address goes into the URLs that agents fetch from and executors
    // upload to, so it must be one they can connect to.
    if args
        .address
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        return Err(format!(
            "--address {} would listen everywhere, but agents need an address to connect \
             to: give this machine's address as the agents reach it",
            args.address
        ));
    }
    Ok(())
}

/// Logs that read like the Go tutorial's: the scheduler's events at `info`,
/// the wire (`-> DECLINE`, `<- OFFERS`) at `debug`, its JSON at `trace`.
/// Without `RUST_LOG` the embedded cluster (`--master local`) shows only
/// warnings, so that step 1 shows the scheduler's own lines; with it,
/// `RUST_LOG` decides for the cluster too (`RUST_LOG=info` shows what the
/// master and agent do). The HTTP libraries and TLS stay at warnings unless
/// `RUST_LOG` names them: their transport lines would drown the wire. The
/// cluster's lines say `cluster` where others name their module.
fn init_logging() {
    const CLUSTER: &str = "mesos_tutorial::local";
    let asked = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filters = if asked.trim().is_empty() {
        format!("info,{CLUSTER}=warn")
    } else {
        asked.clone()
    };
    for quiet in ["tiny_http", "ureq", "rustls"] {
        if !asked.contains(quiet) {
            filters.push_str(&format!(",{quiet}=warn"));
        }
    }
    env_logger::Builder::new()
        .parse_filters(&filters)
        .parse_write_style(&std::env::var("RUST_LOG_STYLE").unwrap_or_default())
        .format(|out, record| {
            use std::io::Write;
            let target = match record.target().strip_prefix(CLUSTER) {
                Some(rest) => format!("cluster{rest}"),
                None => record.target().to_string(),
            };
            let level = record.level();
            let style = out.default_level_style(level);
            let time = out.timestamp();
            writeln!(
                out,
                "[{time} {style}{level:<5}{style:#} {target}] {}",
                record.args()
            )
        })
        .init();
}

fn main() -> ExitCode {
    init_logging();
    let args: Args = argh::from_env();
    let mut images: Vec<String> = args
        .images
        .iter()
        .flat_map(|i| i.split(','))
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(String::from)
        .collect();
    if let Some(path) = &args.images_file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let before = images.len();
                images.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(String::from),
                );
                // An empty list must not silently turn into the demo set.
                if images.len() == before {
                    eprintln!(
                        "error: --images-file {} lists no image (one URL or path per line)",
                        path.display()
                    );
                    return ExitCode::from(2);
                }
            }
            Err(err) => {
                eprintln!("error: cannot read --images-file {}: {err}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    // A principal alone names the framework (FrameworkInfo.principal) on a
    // master that does not authenticate; a secret needs a principal.
    let secret = match (&args.principal, &args.secret_file) {
        (Some(_), Some(path)) => match std::fs::read_to_string(path) {
            Ok(secret) => Some(secret.trim().to_string()),
            Err(err) => {
                eprintln!("error: cannot read --secret-file {}: {err}", path.display());
                return ExitCode::from(2);
            }
        },
        (_, None) => None,
        (None, Some(_)) => {
            eprintln!("error: --secret-file needs --principal, the name the secret belongs to");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = check_numbers(&args) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "root".into());

    // `--master local` runs the embedded cluster for as long as `_cluster`
    // lives; dropping it at the end of main stops it and its executors.
    let mut _cluster = None;
    let master = if args.master == "local" {
        let cluster_config = ClusterConfig {
            resources: args.resources.clone(),
            ..ClusterConfig::default()
        };
        match Cluster::start(cluster_config) {
            Ok(cluster) => {
                let address = cluster.master_address().to_string();
                log::info!(
                    "Started an embedded Mesos master and agent (--master local) at {address}"
                );
                _cluster = Some(cluster);
                address
            }
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        args.master.clone()
    };

    let config = Config {
        master,
        step: args.step,
        content_type: args.content_type,
        name: args.name,
        user,
        role: args.role,
        executor: args.executor,
        address: args.address,
        port: args.port,
        task_cpus: args.task_cpus,
        task_mem: args.task_mem,
        tasks: args.tasks,
        task_millis: args.task_millis,
        refuse_seconds: args.refuse_seconds,
        images,
        output_dir: args.output_dir,
        max_attempts: args.max_attempts,
        keep_serving: args.keep_serving,
        failover_timeout: args.failover_timeout,
        checkpoint: args.checkpoint,
        framework_id_file: args.framework_id_file,
        ca_file: args.ca_file,
        principal: args.principal,
        secret,
    };
    match scheduler::run(&config) {
        Ok(outcome) => {
            let code = if outcome.succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            if config.keep_serving {
                // The batch is over: stop the cluster (and its executors'
                // sandboxes) before serving the results indefinitely.
                drop(_cluster.take());
                outcome.serve_results();
            }
            code
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
