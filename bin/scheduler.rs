//! The framework's scheduler: `cargo run --bin scheduler -- --help`.
//!
//! With no flags it runs workshop step 3 (invert the demo images) against an
//! embedded single-node Mesos cluster. `--step register` and `--step launch`
//! run steps 1 and 2; `--master HOST:5050` uses a real Mesos master.

use argh::FromArgs;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::local::resources::Resources;
use mesos_tutorial::local::{Cluster, ClusterConfig, DEFAULT_RESOURCES};
use mesos_tutorial::scheduler::tasks::{EXECUTOR_CPUS, EXECUTOR_MEM};
use mesos_tutorial::scheduler::{self, Config, Interrupts, Step};
use std::path::PathBuf;
use std::process::ExitCode;

/// A Mesos framework that inverts images, written to be read: see README.md.
#[derive(FromArgs)]
#[argh(
    usage = "[--step register|launch|images] [<options>] [<images>...]",
    note = "The steps:\n  1 `--step register`: log each offer and decline it\n  \
            2 `--step launch`: run no-op tasks\n  \
            3 `--step images` (the default): invert images, the demo set or those named\n  \
            4 add --failover-timeout and --framework-id-file to any step, so that a\n    \
            scheduler started again continues the same framework\n\
            Each flag says the steps it is for. Ctrl+C stops cleanly (exit code 130).\n\
            README.md walks through each step."
)]
struct Args {
    /// all steps: the Mesos master: `local` starts an embedded master and agent
    /// in this process; otherwise HOST:PORT, e.g. 127.0.0.1:5050 (default:
    /// local)
    #[argh(option, default = "String::from(\"local\")")]
    master: String,

    /// all steps: the workshop step: register (1), launch (2) or images (3)
    /// (default: images)
    #[argh(option, default = "Step::Images", from_str_fn(parse_step))]
    step: Step,

    /// all steps: with --master local: the embedded agent's resources, in
    /// Mesos's syntax (default: cpus:2;mem:1024;disk:4096;ports:[31000-32000])
    #[argh(option, default = "String::from(DEFAULT_RESOURCES)")]
    resources: String,

    /// all steps: with --master local: how many agents the embedded cluster
    /// starts, each with --resources (default: 1)
    #[argh(option, default = "1")]
    agents: usize,

    /// all steps: how calls and events are encoded: protobuf or json (default:
    /// protobuf)
    #[argh(option, default = "ContentType::Protobuf")]
    content_type: ContentType,

    /// all steps: the framework's name, shown by the master (default: Rust
    /// Tutorial Framework)
    #[argh(option, default = "String::from(\"Rust Tutorial Framework\")")]
    name: String,

    /// all steps: the Unix user tasks run as (default: the current user)
    #[argh(option)]
    user: Option<String>,

    /// all steps: the role whose resources the framework receives (default: *)
    #[argh(option, default = "String::from(\"*\")")]
    role: String,

    /// all steps: how long declined resources are not offered again, in seconds
    /// (default: 5, as Mesos)
    #[argh(option, default = "5.0")]
    refuse_seconds: f64,

    /// all steps: the principal to authenticate as, with HTTP basic
    /// authentication (default: none)
    #[argh(option)]
    principal: Option<String>,

    /// all steps: a file holding the principal's secret (default: none)
    #[argh(option)]
    secret_file: Option<PathBuf>,

    /// all steps: a PEM file of certificate authorities to trust for an
    /// https:// master (default: the system's)
    #[argh(option)]
    ca_file: Option<PathBuf>,

    /// steps 2, 3: the executor binary to serve to agents (default:
    /// `executor` next to this program, built by cargo if missing)
    #[argh(option)]
    executor: Option<PathBuf>,

    /// steps 2, 3: the file server's address; agents must reach it
    /// (default: 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    address: String,

    /// steps 2, 3: the file server's port (default: 0, any free port)
    #[argh(option, default = "0")]
    port: u16,

    /// steps 2, 3: CPUs per task (default: 1)
    #[argh(option, default = "1.0")]
    task_cpus: f64,

    /// steps 2, 3: memory per task in MB (default: 128)
    #[argh(option, default = "128.0")]
    task_mem: f64,

    /// step 2: stop and tear down after this many tasks finished
    /// (default: run until Ctrl+C)
    #[argh(option)]
    tasks: Option<usize>,

    /// steps 2, 3: how long each task works (step 3: waits before its
    /// image), in milliseconds (default: 0)
    #[argh(option, default = "0")]
    task_millis: u32,

    /// step 2: stop with an error after this many tasks failed in a row
    /// (default: 5)
    #[argh(option, default = "5")]
    max_failures: u32,

    /// step 3: image URLs or local files, separated by commas; more may
    /// follow as arguments (default: generated demo images)
    #[argh(option)]
    images: Vec<String>,

    /// step 3: a file with one image URL or path per line (default: none)
    #[argh(option)]
    images_file: Option<PathBuf>,

    /// step 3: where inverted images are written (default: output)
    #[argh(option, default = "PathBuf::from(\"output\")")]
    output_dir: PathBuf,

    /// step 3: attempts per image before it counts as failed (default: 3)
    #[argh(option, default = "3")]
    max_attempts: u32,

    /// step 3: keep the results page up after the batch, until Ctrl+C
    #[argh(switch)]
    keep_serving: bool,

    /// step 4: seconds the master keeps our tasks after we disconnect
    /// (default: 0, as Mesos: they die with the connection)
    #[argh(option, default = "0.0")]
    failover_timeout: f64,

    /// step 4: a file that keeps the framework id, so that a restarted
    /// scheduler comes back as the same framework (use with
    /// --failover-timeout; default: none)
    #[argh(option)]
    framework_id_file: Option<PathBuf>,

    /// step 4: ask agents to checkpoint our tasks, so that our executors
    /// survive an agent restart
    #[argh(switch)]
    checkpoint: bool,

    /// step 3: image URLs or local files, as a shell glob gives them
    #[argh(positional, arg_name = "images")]
    more_images: Vec<String>,
}

/// The command line's flags. `--help` prints to stdout and exits 0; a
/// mistyped or missing flag says what is wrong and exits 2, as the other
/// flag errors do (1 means "some images failed").
fn parse_flags() -> Result<Args, ExitCode> {
    let mut words = Vec::new();
    for word in std::env::args_os() {
        match word.into_string() {
            Ok(word) => words.push(word),
            Err(word) => {
                eprintln!("error: {} is not valid UTF-8", word.to_string_lossy());
                return Err(ExitCode::from(2));
            }
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let (command, flags) = words.split_first().unwrap_or((&"scheduler", &[]));
    Args::from_args(&[command], flags).map_err(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}", exit.output);
            ExitCode::from(2)
        }
    })
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
    if args.agents == 0 {
        return Err("--agents must be at least 1".into());
    }
    if args.agents != 1 && args.master != "local" {
        return Err(format!(
            "--agents {} starts agents of the embedded cluster (--master local); \
             the cluster at --master {} has its own",
            args.agents, args.master
        ));
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

/// A task that needs more than the embedded agent has would be declined
/// for ever: refuse it before starting. The executor needs its own share
/// beside the task (see `scheduler::tasks`).
fn check_fits_embedded_agent(args: &Args) -> Result<(), String> {
    if args.master != "local" || args.step == Step::Register {
        return Ok(());
    }
    // A malformed --resources is reported when the cluster starts.
    let Ok(agent) = Resources::parse(&args.resources) else {
        return Ok(());
    };
    let checks = [
        ("--task-cpus", args.task_cpus, "", "cpus", EXECUTOR_CPUS),
        ("--task-mem", args.task_mem, " MB", "mem", EXECUTOR_MEM),
    ];
    for (flag, task, unit, name, executor) in checks {
        let has = agent.scalar(name);
        if task + executor > has + 1e-6 {
            return Err(format!(
                "{flag} {task}{unit} (plus {executor}{unit} for the executor) is more than the \
                 embedded agent's {has}{unit}, so no offer could ever fit a task; lower {flag} \
                 or raise --resources (now {})",
                args.resources
            ));
        }
    }
    Ok(())
}

/// The images of step 3: `--images` (comma lists), then the positional
/// arguments, then `--images-file`. Other steps take none.
fn read_images(args: &Args) -> Result<Vec<String>, String> {
    if args.step != Step::Images && !args.more_images.is_empty() {
        return Err(format!(
            "'{}' is an image, but --step {} inverts none: images are for step 3 \
             (--step images, the default)",
            args.more_images[0],
            step_name(args.step)
        ));
    }
    let mut images: Vec<String> = args
        .images
        .iter()
        .flat_map(|i| i.split(','))
        .chain(args.more_images.iter().map(String::as_str))
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(String::from)
        .collect();
    let Some(path) = &args.images_file else {
        return checked(images);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read --images-file {}: {err}", path.display()))?;
    let before = images.len();
    images.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from),
    );
    // An empty list must not silently turn into the demo set.
    if images.len() == before {
        return Err(format!(
            "--images-file {} lists no image (one URL or path per line)",
            path.display()
        ));
    }
    checked(images)
}

/// The images, once each is known to be a URL or a file: a typo must not
/// wait until the cluster and the file server have started.
fn checked(images: Vec<String>) -> Result<Vec<String>, String> {
    images
        .iter()
        .try_for_each(|image| scheduler::batch::check_source(image))?;
    Ok(images)
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Register => "register",
        Step::Launch => "launch",
        Step::Images => "images",
    }
}

/// A principal alone names the framework (FrameworkInfo.principal) on a
/// master that does not authenticate; a secret needs a principal.
fn read_secret(args: &Args) -> Result<Option<String>, String> {
    match (&args.principal, &args.secret_file) {
        (Some(_), Some(path)) => std::fs::read_to_string(path)
            .map(|secret| Some(secret.trim().to_string()))
            .map_err(|err| format!("cannot read --secret-file {}: {err}", path.display())),
        (_, None) => Ok(None),
        (None, Some(_)) => {
            Err("--secret-file needs --principal, the name the secret belongs to".into())
        }
    }
}

/// `--master local` starts the embedded cluster, which runs for as long as
/// the returned `Cluster` lives. The master's address either way.
fn start_cluster(args: &Args) -> Result<(Option<Cluster>, String), String> {
    if args.master != "local" {
        return Ok((None, args.master.clone()));
    }
    let cluster_config = ClusterConfig {
        resources: args.resources.clone(),
        agents: args.agents,
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(cluster_config).map_err(|err| err.to_string())?;
    let address = cluster.master_address().to_string();
    let agents = match args.agents {
        1 => "agent".to_string(),
        count => format!("{count} agents"),
    };
    log::info!("Started an embedded Mesos master and {agents} (--master local) at {address}");
    log::info!("Watch the cluster in a browser: {}", cluster.web_ui_url());
    Ok((Some(cluster), address))
}

fn config(args: Args, master: String, images: Vec<String>, secret: Option<String>) -> Config {
    let user = args
        .user
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "root".into());
    Config {
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
        max_failures: args.max_failures,
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
    }
}

fn main() -> ExitCode {
    init_logging();
    let args = match parse_flags() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let checked = check_numbers(&args)
        .and_then(|()| check_fits_embedded_agent(&args))
        .and_then(|()| Ok((read_images(&args)?, read_secret(&args)?)));
    let (images, secret) = match checked {
        Ok(inputs) => inputs,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // Caught before the cluster starts, so that Ctrl+C always ends the
    // run through the event loop, and the cluster is dropped on the way.
    let interrupts = match Interrupts::catch_signals() {
        Ok(interrupts) => interrupts,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let (cluster, master) = match start_cluster(&args) {
        Ok(started) => started,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let config = config(args, master, images, secret);
    run(&config, interrupts, cluster)
}

/// Runs the scheduler; the embedded cluster, if any, is dropped (its
/// executors stopped, its work folder removed) before the process exits.
fn run(config: &Config, interrupts: Interrupts, _cluster: Option<Cluster>) -> ExitCode {
    match scheduler::run(config, interrupts.clone()) {
        // 128 + SIGINT, as shells report a process that Ctrl+C ended.
        Ok(outcome) if outcome.interrupted => ExitCode::from(130),
        Ok(outcome) => {
            let code = if outcome.succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
            if config.keep_serving {
                // The batch is over and the framework torn down. The
                // embedded cluster stays up with the results, so that the
                // page it printed at start shows how the batch went; Ctrl+C
                // ends both, and the process as it always does: 130.
                if outcome.serve_results(&interrupts) {
                    return ExitCode::from(130);
                }
            }
            code
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
