//! How much the framework costs on top of the work it distributes.
//!
//! Workshop step 3 end to end: the real `scheduler` binary, run as
//! `scheduler --images-file LIST` against its embedded cluster (the default
//! `--master local`), inverts 64 images of one megapixel each. It starts the
//! master and agent, serves the executor and the images from its file
//! server, launches one task per image, and each task downloads its image,
//! inverts it and uploads the result. The figure is the wall time from
//! starting the process to its exit.
//!
//! **The limit** is the same decode + invert + encode
//! (`mesos_tutorial::invert::invert_image`) of the same files, read from
//! and written to disk, by two threads in this process: both cores, no
//! framework. The target is a framework overhead of at most 25 %: the
//! scheduler's wall time at most 1.25 times the limit's.
//!
//! The images are drawn here (`demo_images::write_demo_image`, the same
//! drawing for the same seed on every run), half PNG and half JPEG, into a
//! temporary directory removed afterwards.
//!
//! **Two tasks at once.** The embedded agent has 2 cpus, and the executor
//! takes 0.1 cpus of them for itself, so tasks of the scheduler's default
//! 1 cpu run one at a time: half the machine stays idle. The measured run
//! asks for tasks of [`TASK_CPUS`], so that two run at once on the two
//! cores, as the limit's two threads do.
//!
//! **Where the time goes.** The master offers the resources of an ended
//! task at its next allocation, not at once: Mesos's allocator works in
//! batches every `--allocation_interval`, and the embedded master does the
//! same (`ClusterConfig::allocation_interval`, 20 ms in the scheduler's
//! embedded cluster). Until then the task's core is idle. One agent makes
//! at most one offer per allocation, so a run that needed N offers lasted
//! at least (N - 1) x the interval; the notes under the table print it. Two more figures separate waiting from
//! working: the run's CPU time (scheduler, cluster and executor, against
//! the limit's), and a second run with tasks of [`SMALL_TASK_CPUS`], six at
//! once on the two cores, so that while some tasks wait others compute.
//!
//! The scheduler's log (its `info` level, as `cargo run` shows it) goes to a
//! file, which the notes are counted from.

mod report;

use mesos_tutorial::demo_images::write_demo_image;
use mesos_tutorial::invert::{extension, invert_image, Limits};
use mesos_tutorial::local::ClusterConfig;
use report::{figure, per_second, time, Cpu, Table, Target, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One megapixel: 1000 x 1000 pixels.
const SIDE: u32 = 1000;
/// Both cores of the machine the target was set for.
const THREADS: usize = 2;
/// CPUs per task: two tasks and the executor's 0.1 fit the agent's 2 cpus.
const TASK_CPUS: f64 = 0.95;
/// CPUs per task of the second configuration: six tasks at once on two
/// cores, so that while some wait (for their offer, download or upload)
/// others compute.
const SMALL_TASK_CPUS: f64 = 0.3;
/// A run that takes longer has hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn main() {
    let quick = report::quick_run();
    let (count, side, rounds) = if quick { (4, 200, 1) } else { (64, SIDE, 3) };
    let dir = TempDir::create("batch-images-bench");
    let inputs = write_images(&dir.path.join("images"), count, side);
    let list = dir.path.join("images.txt");
    let lines: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    std::fs::write(&list, lines.join("\n")).expect("write the image list");
    let input_bytes: u64 = inputs
        .iter()
        .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let limit_out = dir.path.join("limit-output");
    std::fs::create_dir_all(&limit_out).expect("create the limit's output directory");
    let measure_limit = || {
        let before = Cpu::now();
        let elapsed = time(|| invert_in_process(&inputs, &limit_out));
        (elapsed, Cpu::now().since(&before).own)
    };

    // The limit and the scheduler take turns, the limit first and last, so
    // that a burst of load from the neighbours does not fall on one side
    // only; each keeps its best run.
    let mut limit = measure_limit();
    let mut best: [Option<SchedulerRun>; 2] = [None, None];
    let batch = Batch {
        scheduler: Path::new(env!("CARGO_BIN_EXE_scheduler")),
        list: &list,
        dir: &dir.path,
        count,
    };
    let mut attempt = 0;
    for _ in 0..rounds {
        for (slot, task_cpus) in [TASK_CPUS, SMALL_TASK_CPUS].into_iter().enumerate() {
            attempt += 1;
            let run = run_scheduler(&batch, attempt, task_cpus).unwrap_or_else(|message| {
                eprintln!("the scheduler's run failed: {message}");
                std::process::exit(1);
            });
            if best[slot]
                .as_ref()
                .is_none_or(|best| run.elapsed < best.elapsed)
            {
                best[slot] = Some(run);
            }
        }
        let next = measure_limit();
        if next.0 < limit.0 {
            limit = next;
        }
    }
    let [Some(run), Some(small)] = best else {
        unreachable!("every round runs both")
    };
    let (limit_time, limit_cpu) = limit;

    let mut table = Table::new(&format!(
        "Batch images: {count} images of {side}x{side} ({} MB of PNG and JPEG), \
         decode + invert + encode",
        input_bytes / 1_000_000
    ));
    let seconds = |time: Duration| figure(time.as_secs_f64(), "s");
    table.row(
        &format!("scheduler --task-cpus {TASK_CPUS}: wall time"),
        seconds(run.elapsed),
        Some(seconds(limit_time)),
        Target::RatioAtMost(1.25),
    );
    table.row(
        "  the same, as images/s",
        figure(per_second(count as f64, run.elapsed), "images/s"),
        Some(figure(per_second(count as f64, limit_time), "images/s")),
        Target::Report,
    );
    table.row(
        "  its CPU time (scheduler, cluster, executor)",
        seconds(run.cpu),
        Some(seconds(limit_cpu)),
        Target::Report,
    );
    table.row(
        &format!("scheduler --task-cpus {SMALL_TASK_CPUS}: wall time"),
        seconds(small.elapsed),
        Some(seconds(limit_time)),
        Target::Report,
    );
    table.note(format!(
        "value: `scheduler --images-file LIST --task-cpus N` (embedded cluster, release \
         build), from spawn to exit, best of {rounds}; limit: invert_image on {THREADS} \
         threads in one process, files read and written, best of {} runs taking turns with \
         the scheduler's",
        rounds + 1
    ));
    let interval = ClusterConfig::default().allocation_interval;
    for (task_cpus, run) in [(TASK_CPUS, &run), (SMALL_TASK_CPUS, &small)] {
        table.note(format!(
            "--task-cpus {task_cpus}: {} offers, so at least {:.2} s of {interval:?} \
             allocation intervals; {} ACCEPT ({:.1} tasks each), {} DECLINE, {} executor \
             subscription(s); CPU {:.2} s",
            run.log.offers,
            (interval * run.log.offers.saturating_sub(1) as u32).as_secs_f64(),
            run.log.accepts,
            run.log.launched as f64 / run.log.accepts.max(1) as f64,
            run.log.declines,
            run.log.executors,
            run.cpu.as_secs_f64(),
        ));
    }
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// Draws `count` pictures of `side`x`side` into `dir`, PNG and JPEG in
/// turn, each from its own seed.
fn write_images(dir: &Path, count: usize, side: u32) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("create the image directory");
    (0..count)
        .map(|index| {
            let format = if index % 2 == 0 { "png" } else { "jpg" };
            let path = dir.join(format!("picture-{index:02}.{format}"));
            write_demo_image(&path, side, side, index as u32 + 1).expect("write a picture");
            path
        })
        .collect()
}

/// The limit: every input inverted by [`THREADS`] threads that take the
/// next image as soon as they are free, as the tasks do.
fn invert_in_process(inputs: &[PathBuf], output_dir: &Path) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let next = &next;
            std::thread::Builder::new()
                .name(format!("invert-{thread}"))
                .spawn_scoped(scope, move || loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(index) else {
                        return;
                    };
                    let original = std::fs::read(input).expect("read a picture");
                    let inverted =
                        invert_image(&original, &Limits::default()).expect("invert a picture");
                    let name = format!("picture-{index:02}.{}", extension(inverted.format));
                    std::fs::write(output_dir.join(name), &inverted.bytes)
                        .expect("write an inverted picture");
                })
                .expect("start an inverting thread");
        }
    });
}

/// One run of the scheduler, and what its log says it did.
struct SchedulerRun {
    elapsed: Duration,
    /// CPU time of the scheduler process and everything it started.
    cpu: Duration,
    log: LogCounts,
}

/// What every run of the scheduler shares: the binary, the image list, the
/// directory its output and log go to, and how many images the list names.
struct Batch<'a> {
    scheduler: &'a Path,
    list: &'a Path,
    dir: &'a Path,
    count: usize,
}

/// Runs the scheduler binary on the image list; checks that it succeeded
/// and uploaded every image.
fn run_scheduler(
    batch: &Batch<'_>,
    attempt: usize,
    task_cpus: f64,
) -> Result<SchedulerRun, String> {
    let output_dir = batch.dir.join(format!("scheduler-output-{attempt}"));
    let log_path = batch.dir.join(format!("scheduler-{attempt}.log"));
    let log = std::fs::File::create(&log_path).map_err(|err| err.to_string())?;
    let log_copy = log.try_clone().map_err(|err| err.to_string())?;
    let cpu_before = Cpu::now();
    let start = Instant::now();
    let mut child = Command::new(batch.scheduler)
        .arg("--images-file")
        .arg(batch.list)
        .arg("--output-dir")
        .arg(&output_dir)
        .args(["--task-cpus", &task_cpus.to_string()])
        // The default level, whatever the caller's environment says.
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_copy)
        .spawn()
        .map_err(|err| format!("could not start {}: {err}", batch.scheduler.display()))?;
    let status = wait_with_timeout(&mut child, start, &log_path)?;
    let elapsed = start.elapsed();
    // The scheduler has been waited for, so its time (and that of the
    // executor it waited for) is in this process's children's account.
    let cpu = Cpu::now().since(&cpu_before).children;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        return Err(format!("the scheduler exited with {status}:\n{log_text}"));
    }
    let results = std::fs::read_dir(&output_dir)
        .map_err(|err| format!("no output directory: {err}"))?
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .count();
    if results != batch.count {
        let count = batch.count;
        return Err(format!("{results} results for {count} images:\n{log_text}"));
    }
    Ok(SchedulerRun {
        elapsed,
        cpu,
        log: LogCounts::read(&log_text),
    })
}

/// Waits for the scheduler started at `start` to exit; kills it if it has
/// not after [`RUN_TIMEOUT`].
fn wait_with_timeout(
    child: &mut Child,
    start: Instant,
    log_path: &Path,
) -> Result<ExitStatus, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no exit after {RUN_TIMEOUT:?}; see {}",
                    log_path.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(err) => return Err(format!("could not wait for the scheduler: {err}")),
        }
    }
}

/// What the scheduler's `info` log says it did.
#[derive(Default)]
struct LogCounts {
    offers: usize,
    accepts: usize,
    launched: usize,
    declines: usize,
    executors: usize,
}

impl LogCounts {
    fn read(log: &str) -> LogCounts {
        let mut counts = LogCounts::default();
        for line in log.lines() {
            if line.contains("Received offer") {
                counts.offers += 1;
            } else if let Some((before, _)) = line.split_once(" tasks for offer ") {
                counts.accepts += 1;
                counts.launched += before
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
            } else if line.contains("Declining offer") {
                counts.declines += 1;
            } else if line.contains("Executor ") && line.ends_with(" subscribed") {
                counts.executors += 1;
            }
        }
        counts
    }
}
