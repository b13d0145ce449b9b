//! How much memory the scheduler's task table takes at scale.
//!
//! A batch framework may be handed a very long list of work. This
//! benchmark fills the scheduler's own step 3 state, through the same
//! public calls `scheduler::run` makes, with 110,000 image URLs; it then
//! launches 10,000 of them and finishes them, so that the table holds
//! 100,000 queued images and 10,000 finished tasks. The figure is this
//! process's peak resident memory (`VmHWM` in `/proc/self/status`), which
//! the target caps at 64 MiB; the baseline before the batch (the program,
//! its libraries and threads) is reported beside it.
//!
//! What it runs is what the scheduler's process holds for the batch:
//!
//! - an [`ImageBatch`] prepared from a `Config` whose `images` are the
//!   110,000 URLs (http URLs, so that nothing is read from disk);
//! - the [`FileServer`] it takes its upload endpoint from: each finished
//!   task's result is really uploaded to it over HTTP (a few bytes), since
//!   `ImageBatch::update` counts an image as done only once the server has
//!   stored its result;
//! - offers of 100 tasks each, turned into `TaskInfo`s by
//!   `ImageBatch::tasks_for` (dropped at once, as `launch` sends them);
//! - `TASK_RUNNING` and `TASK_FINISHED` updates for each task, given to
//!   `ImageBatch::update`;
//! - the results page's `Progress`, rebuilt and handed to the server after
//!   every offer. The scheduler does this after *every* event; here it is
//!   done once per 100 tasks, which holds the same data at its peak.
//!
//! Not included: the embedded master and agent that `--master local` runs
//! in the same process (they keep their own copy of the tasks), and the
//! connection to the master.

mod report;

use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::proto::mesos::{value, ExecutorID, Offer, Resource, TaskState, TaskStatus};
use mesos_tutorial::scheduler::batch::{progress, summary, ImageBatch};
use mesos_tutorial::scheduler::tasks::EXECUTOR_ID;
use mesos_tutorial::scheduler::{Config, Step, Work};
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use report::{figure, Table, Target, TempDir};
use std::time::{Duration, Instant};

/// Tasks per offer.
const OFFER_TASKS: usize = 100;
/// What each task asks for: the scheduler's defaults.
const TASK_CPUS: f64 = 1.0;
const TASK_MEM: f64 = 128.0;

fn main() {
    let quick = report::quick_run();
    let (queued, finished) = if quick {
        (1_000, 100)
    } else {
        (100_000, 10_000)
    };
    let baseline = status_kib("VmRSS");

    let dir = TempDir::create("memory-bench");
    let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("start the file server");
    let before_config = status_kib("VmRSS");
    let config = config(queued + finished, &dir.path.join("output"));
    let after_config = status_kib("VmRSS");
    let mut batch = ImageBatch::prepare(&config).expect("prepare the batch");
    let after_prepare = status_kib("VmRSS");
    server.set_progress(progress(&batch));
    let after_progress = status_kib("VmRSS");
    let uploader = ureq::Agent::new_with_defaults();

    let mut update_time = Duration::ZERO;
    let mut progress_time = Duration::ZERO;
    let mut progress_builds = 0;
    let mut launched = 0;
    while launched < finished {
        let offer = offer(
            launched / OFFER_TASKS,
            (finished - launched).min(OFFER_TASKS),
        );
        let tasks = batch.tasks_for(&offer);
        assert!(!tasks.is_empty(), "the offer holds tasks");
        launched += tasks.len();
        for task in &tasks {
            let data = task_data::decode(task.data()).expect("the batch's own task data");
            // The executor's upload: `update` looks for it.
            let response = uploader
                .post(format!("{}.png", data.upload_url))
                .header("X-Upload-Token", data.upload_token.as_str())
                .send(&b"not an image: the server stores any bytes"[..])
                .expect("upload a result");
            assert_eq!(response.status(), 201, "the upload is stored");
            for state in [TaskState::TASK_RUNNING, TaskState::TASK_FINISHED] {
                let status = status(task.task_id.value(), state);
                let start = Instant::now();
                batch.update(&status);
                update_time += start.elapsed();
            }
        }
        drop(tasks);
        let start = Instant::now();
        server.set_progress(progress(&batch));
        progress_time += start.elapsed();
        progress_builds += 1;
    }
    let summary = summary(&batch);
    assert_eq!(
        summary,
        format!("{finished}/{} images done, 0 failed", queued + finished),
        "every launched task finished and the rest is queued"
    );
    assert!(batch.wants_offers(), "images are still queued");
    let peak = status_kib("VmHWM");
    let end = status_kib("VmRSS");
    drop(batch);
    drop(server);

    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut table = Table::new(&format!(
        "Memory: the scheduler's step 3 state with {queued} queued images and {finished} \
         finished tasks"
    ));
    table.row(
        "peak RSS (VmHWM)",
        figure(mib(peak), "MiB"),
        None,
        Target::AtMost(64.0),
    );
    table.row(
        "  of which the batch: peak - baseline",
        figure(mib(peak.saturating_sub(baseline)), "MiB"),
        None,
        Target::Report,
    );
    table.row(
        "  baseline RSS before the batch",
        figure(mib(baseline), "MiB"),
        None,
        Target::Report,
    );
    table.note(format!(
        "RSS at the end: {:.1} MiB; URLs like {:?}; tasks of {TASK_CPUS} cpus, {TASK_MEM} MB, \
         {OFFER_TASKS} per offer, each result uploaded over HTTP",
        mib(end),
        image_url(0)
    ));
    table.note(format!(
        "where it grew (VmRSS): the Config's URL list {:.1} MiB, ImageBatch::prepare {:.1} \
         MiB, the first progress() + set_progress {:.1} MiB, the {finished} tasks and the \
         next progress pages {:.1} MiB",
        mib(after_config.saturating_sub(before_config)),
        mib(after_prepare.saturating_sub(after_config)),
        mib(after_progress.saturating_sub(after_prepare)),
        mib(peak.saturating_sub(after_progress)),
    ));
    let updates = 2 * finished;
    table.note(format!(
        "time (not a target): ImageBatch::update {:.1} us per update ({updates} updates); \
         progress() + set_progress {:.1} ms per call ({progress_builds} calls), which \
         scheduler::run makes after every event",
        update_time.as_secs_f64() * 1e6 / updates as f64,
        progress_time.as_secs_f64() * 1e3 / f64::from(progress_builds.max(1)),
    ));
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// A realistic image URL: a host, a path, a numbered file.
fn image_url(index: usize) -> String {
    format!("http://images.example.com:8080/photos/2024/holiday-{index:06}.jpg")
}

/// The scheduler's configuration for step 3 with `images` URLs, as
/// `bin/scheduler.rs` fills it from `--images-file`.
fn config(images: usize, output_dir: &std::path::Path) -> Config {
    Config {
        master: "127.0.0.1:5050".into(),
        step: Step::Images,
        content_type: ContentType::Protobuf,
        name: "memory benchmark".into(),
        user: "bench".into(),
        role: "*".into(),
        // Any file serves as the executor here: no agent runs it.
        executor: std::env::current_exe().ok(),
        address: "127.0.0.1".into(),
        port: 0,
        task_cpus: TASK_CPUS,
        task_mem: TASK_MEM,
        tasks: None,
        task_millis: 0,
        max_failures: 5,
        refuse_seconds: 5.0,
        images: (0..images).map(image_url).collect(),
        output_dir: output_dir.to_path_buf(),
        max_attempts: 3,
        keep_serving: false,
        failover_timeout: 0.0,
        checkpoint: false,
        framework_id_file: None,
        ca_file: None,
        principal: None,
        secret: None,
    }
}

/// An offer with room for `tasks` tasks, from an agent that already runs
/// our executor.
fn offer(number: usize, tasks: usize) -> Offer {
    let mut offer = Offer::new();
    offer
        .id
        .mut_or_insert_default()
        .set_value(format!("offer-{number}"));
    offer
        .agent_id
        .mut_or_insert_default()
        .set_value("agent-1".into());
    offer.set_hostname("localhost".into());
    for (name, amount) in [("cpus", TASK_CPUS), ("mem", TASK_MEM)] {
        let mut resource = Resource::new();
        resource.set_name(name.into());
        resource.set_type(value::Type::SCALAR);
        resource
            .scalar
            .mut_or_insert_default()
            .set_value(amount * tasks as f64);
        resource
            .allocation_info
            .mut_or_insert_default()
            .set_role("*".into());
        offer.resources.push(resource);
    }
    let mut executor = ExecutorID::new();
    executor.set_value(EXECUTOR_ID.into());
    offer.executor_ids.push(executor);
    offer
}

/// A status update as the agent forwards it: with a uuid.
fn status(task_id: &str, state: TaskState) -> TaskStatus {
    let mut status = TaskStatus::new();
    status
        .task_id
        .mut_or_insert_default()
        .set_value(task_id.into());
    status.set_state(state);
    status.set_uuid(vec![7; 16]);
    status
}

/// A `kB` field of `/proc/self/status`, such as `VmHWM` (the peak resident
/// set) or `VmRSS`.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}
