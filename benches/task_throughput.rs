//! How many tasks per second the whole framework runs, end to end.
//!
//! A no-op task does no work, so its cost is pure coordination: the master
//! offers, the scheduler accepts, the agent hands the task to the executor,
//! the executor reports `TASK_RUNNING` then `TASK_FINISHED`, and each report
//! travels to the scheduler and is acknowledged back. This benchmark runs
//! that loop on the embedded cluster (`src/local`), with the real executor
//! binary fetched from a `FileServer`, and a scheduler written here from the
//! library's parts (`MasterConnection`, `TaskPlan`) that fills every offer
//! with tiny tasks and acknowledges every update.
//!
//! **The limit.** Events arrive on streams that are already open, so they
//! cost no round trip; every *call* is one HTTP round trip. One task needs
//! four calls, plus a share of one `ACCEPT`:
//!
//! - the executor's `UPDATE` for `TASK_RUNNING` and for `TASK_FINISHED` (2);
//! - the scheduler's `ACKNOWLEDGE` of each of them (2);
//! - one `ACCEPT` per offer, shared by the tasks launched from it (1/k).
//!
//! So the limit is the rate of HTTP round trips that `ureq` and `tiny_http`
//! sustain on this machine, measured in the same run (one keep-alive
//! `ureq::Agent` posting to a `tiny_http` server that answers `202`), divided
//! by the calls one task took in the run. Targets: half of that limit, and
//! 1,000 tasks/s.
//!
//! Beside the limit, the benchmark times round trips with each of two costs
//! that the framework's calls carry (see `round_trips/mod.rs`), and notes
//! for each run (see `task_run/mod.rs`) where the time went: offers, calls,
//! CPU. The main interval is run twice, and the faster run reported.
//!
//! The cluster offers every `allocation_interval`. The main run uses
//! [`ALLOCATION_INTERVAL`] (the embedded cluster's default) on one agent;
//! two more runs show 1 ms and 100 ms for comparison, and a last one the
//! default on three agents (`--agents 3`), each with the default
//! resources: three offers at a time instead of one.
//!
//! The executor is the package's own `executor` binary: cargo builds the
//! package's binaries before its benchmarks, with the same profile, and
//! tells each benchmark where they are (`CARGO_BIN_EXE_<name>`).

mod report;
mod round_trips;
mod task_run;
// The calls a test that is its own scheduler makes, shared with the tests.
#[path = "../tests/common/scheduler_api.rs"]
#[allow(dead_code)]
mod scheduler_api;

use report::{figure, per_second, Table, Target};
use round_trips::{RoundTrip, Setup};
use std::path::PathBuf;
use std::time::Duration;
use task_run::{run_tasks, Run, TASK_CPUS, TASK_MEM};

/// The main run's allocation interval: short enough that offers never
/// wait for long (190 tasks fit the default agent, so offers allow up to
/// 9,500 tasks/s), long enough that each offer gathers the resources of
/// several ended tasks, so that one `ACCEPT` launches many.
const ALLOCATION_INTERVAL: Duration = Duration::from_millis(20);

fn main() {
    let quick = report::quick_run();
    let (tasks, task_runs, window, windows) = if quick {
        (50, 1, Duration::from_millis(100), 1)
    } else {
        (2000, 2, Duration::from_millis(600), 3)
    };
    let best_round_trip = |setup| {
        (0..windows)
            .map(|_| round_trips::measure(window, setup))
            .min_by_key(|round_trip| round_trip.time)
            .expect("at least one window")
    };
    let bare = best_round_trip(Setup::BARE);
    let limit = per_second(1.0, bare.time);
    let mut table = Table::new(&format!(
        "No-op tasks on the embedded cluster: {tasks} tasks of {TASK_CPUS} cpus, {TASK_MEM} MB"
    ));
    let round_trip_row = |table: &mut Table, name: &str, round_trip: &RoundTrip| {
        let rate = figure(per_second(1.0, round_trip.time), "calls/s");
        let cpu = round_trip.cpu.as_secs_f64() * 1e6;
        let name = format!("{name} ({cpu:.0} us CPU each)");
        table.row(&name, rate, Some(figure(limit, "calls/s")), Target::Report);
    };
    round_trip_row(&mut table, "round trips, bare: the limit", &bare);
    for (name, setup) in [
        (
            "round trips, client timeout as Endpoint",
            Setup::CLIENT_TIMEOUT,
        ),
        (
            "round trips, thread per request as cluster",
            Setup::THREAD_PER_REQUEST,
        ),
        ("round trips, both", Setup::BOTH),
    ] {
        round_trip_row(&mut table, name, &best_round_trip(setup));
    }

    let executor = PathBuf::from(env!("CARGO_BIN_EXE_executor"));
    for (interval, agents) in [
        (ALLOCATION_INTERVAL, 1),
        (Duration::from_millis(1), 1),
        (Duration::from_millis(100), 1),
        (ALLOCATION_INTERVAL, 3),
    ] {
        let mut best: Option<Run> = None;
        let main_run = interval == ALLOCATION_INTERVAL && agents == 1;
        let runs = if main_run { task_runs } else { 1 };
        for _ in 0..runs {
            let run = match run_tasks(&executor, interval, agents, tasks) {
                Ok(run) => run,
                Err(message) => {
                    eprintln!("the run '{agents} agents, allocation every {interval:?}' failed: {message}");
                    std::process::exit(1);
                }
            };
            if best.as_ref().is_none_or(|best| run.elapsed < best.elapsed) {
                best = Some(run);
            }
        }
        let run = best.expect("at least one run");
        let calls_per_task = run.calls as f64 / run.terminal as f64;
        let task_limit = figure(limit / calls_per_task, "tasks/s");
        let rate = figure(per_second(run.terminal as f64, run.elapsed), "tasks/s");
        let name = match agents {
            1 => format!("tasks, allocation every {interval:?}"),
            _ => format!("tasks, {agents} agents, allocation every {interval:?}"),
        };
        if main_run {
            table.row(&name, rate, Some(task_limit), Target::Ratio(0.5));
            table.row(&name, rate, Some(task_limit), Target::AtLeast(1000.0));
        } else {
            table.row(&name, rate, Some(task_limit), Target::Report);
        }
        describe(&mut table, &name, &run, &bare);
    }
    table.note(format!(
        "round trips: best of {windows} windows of {window:?}, sequential POSTs of an \
         ACKNOWLEDGE on one keep-alive connection, ratio = rate / bare rate; tasks: best of \
         {task_runs} runs at {ALLOCATION_INTERVAL:?}, one run at the others, each from \
         SUBSCRIBE to the last acknowledgement (executor fetch and start included), \
         limit = bare round trips/s / calls per task in that run"
    ));
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// Notes on where a run's time went.
fn describe(table: &mut Table, name: &str, run: &Run, bare: &RoundTrip) {
    let micros = |time: Duration| time.as_secs_f64() * 1e6;
    let per_task = |time: Duration| micros(time) / run.terminal as f64;
    let scheduler_calls = run.accepts + run.declines + run.acknowledgements + 1;
    table.note(format!(
        "{name}: {} finished, {} failed in {:.2} s, the first \
         TASK_RUNNING after {:.3} s; {} offers ({:.0}/s); {} ACCEPT ({:.1} tasks each), \
         {} DECLINE, {} ACKNOWLEDGE: {:.2} calls per task",
        run.finished,
        run.terminal - run.finished,
        run.elapsed.as_secs_f64(),
        run.first_running.as_secs_f64(),
        run.offers,
        per_second(run.offers as f64, run.elapsed),
        run.accepts,
        run.launched as f64 / run.accepts.max(1) as f64,
        run.declines,
        run.acknowledgements,
        run.calls as f64 / run.terminal as f64,
    ));
    table.note(format!(
        "    the scheduler's thread spent {:.0}% of the run in its calls, {:.0} us per call \
         (bare: {:.0} us); {:.0} tasks in flight on average; CPU per task: {:.0} us in this \
         process (scheduler, master, agent, file server), {:.0} us in the executor, {:.0} us \
         per call (bare: {:.0} us); {:.2} cores busy",
        100.0 * run.scheduler_in_calls.as_secs_f64() / run.elapsed.as_secs_f64(),
        micros(run.scheduler_in_calls) / scheduler_calls as f64,
        micros(bare.time),
        run.average_in_flight,
        per_task(run.cpu.own),
        per_task(run.cpu.children),
        micros(run.cpu.own + run.cpu.children) / run.calls as f64,
        micros(bare.cpu),
        (run.cpu.own + run.cpu.children).as_secs_f64() / run.elapsed.as_secs_f64(),
    ));
}
