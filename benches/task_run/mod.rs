//! One run of the task throughput benchmark: a cluster, a file server, and
//! a scheduler that runs no-op tasks until enough have ended.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The scheduler is workshop step 2 stripped to what is measured: it fills
//! every offer with tiny tasks, acknowledges every update that carries a
//! uuid, suppresses offers once every task is launched, and counts what it
//! did so that the benchmark can say where the time went.

use crate::report::Cpu;
use mesos_tutorial::local::{Cluster, ClusterConfig};
use mesos_tutorial::proto::is_terminal;
use mesos_tutorial::proto::mesos::{framework_info, FrameworkInfo, TaskState};
use mesos_tutorial::proto::scheduler::{event, Event};
use mesos_tutorial::scheduler::master::MasterConnection;
use mesos_tutorial::scheduler::tasks::{describe, TaskPlan};
use mesos_tutorial::server::FileServer;
use mesos_tutorial::task_data;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Resources per task: small enough that one offer holds many tasks.
pub const TASK_CPUS: f64 = 0.01;
/// Memory per task, in MB.
pub const TASK_MEM: f64 = 1.0;
/// How long leftovers of an offer stay away from us. They come back sooner
/// whenever a task ends: the master then offers them together with the
/// freed resources, which the filter does not cover.
const REFUSE_SECONDS: f64 = 1.0;

/// What one run did, as the scheduler saw it.
#[derive(Default)]
pub struct Run {
    /// From `SUBSCRIBE` to the acknowledgement of the last task's end.
    pub elapsed: Duration,
    /// From `SUBSCRIBE` to the first `TASK_RUNNING`: the executor's fetch
    /// and start.
    pub first_running: Duration,
    /// Tasks launched.
    pub launched: usize,
    /// Tasks that ended, and of those, how many finished.
    pub terminal: usize,
    pub finished: usize,
    /// Offers received, and the scheduler's calls by kind.
    pub offers: usize,
    pub accepts: usize,
    pub declines: usize,
    pub acknowledgements: usize,
    /// Every call made for the tasks: the scheduler's, and two `UPDATE`s per
    /// task by the executor.
    pub calls: usize,
    /// Where the time went: the scheduler's thread inside its calls, the
    /// average number of tasks launched but not ended, and the CPU time of
    /// this process and of the executor.
    pub scheduler_in_calls: Duration,
    pub average_in_flight: f64,
    pub cpu: Cpu,
}

/// Starts a cluster of `agents` agents and a file server, runs `tasks` no-op
/// tasks, stops both.
pub fn run_tasks(
    executor: &Path,
    allocation_interval: Duration,
    agents: usize,
    tasks: usize,
) -> Result<Run, String> {
    let cluster = Cluster::start(ClusterConfig {
        allocation_interval,
        agents,
        // Five silent heartbeats end the run with an error instead of a hang.
        heartbeat_interval: Duration::from_secs(1),
        ..ClusterConfig::default()
    })
    .map_err(|err| err.to_string())?;
    let server = FileServer::start("127.0.0.1:0", "127.0.0.1").map_err(|err| err.to_string())?;
    let executor_url = server
        .serve_file("executor", executor)
        .map_err(|err| err.to_string())?;
    let mut scheduler = NoopScheduler {
        plan: TaskPlan::new(&executor_url, TASK_CPUS, TASK_MEM),
        payload: task_data::encode(&task_data::noop(0)),
        wanted: tasks,
        ended: HashSet::new(),
        run: Run::default(),
        first_running: None,
    };

    let cpu_before = Cpu::now();
    let start = Instant::now();
    let mut master = crate::scheduler_api::subscribe(cluster.master_address(), framework_info())
        .map_err(|err| err.to_string())?;
    let mut in_flight = (0, 0);
    while scheduler.ended.len() < tasks {
        if start.elapsed() > Duration::from_secs(120) {
            let ended = scheduler.ended.len();
            return Err(format!("only {ended} of {tasks} tasks ended in 120 s"));
        }
        let event = crate::scheduler_api::next_event(&master).map_err(|err| err.to_string())?;
        in_flight.0 += scheduler.run.launched - scheduler.ended.len();
        in_flight.1 += 1;
        let handling = Instant::now();
        scheduler.handle(&event, &mut master)?;
        scheduler.run.scheduler_in_calls += handling.elapsed();
    }
    let mut run = scheduler.run;
    run.elapsed = start.elapsed();
    // Taken while the executor still runs: when the cluster stops it is
    // killed, and its time may never reach this process's accounts.
    run.cpu = Cpu::now().since(&cpu_before);
    run.first_running = scheduler.first_running.map_or(run.elapsed, |at| at - start);
    run.terminal = scheduler.ended.len();
    run.average_in_flight = in_flight.0 as f64 / f64::from(in_flight.1.max(1));
    // The SUPPRESS, and the executor's two UPDATEs per task.
    run.calls = run.accepts + run.declines + run.acknowledgements + 1 + 2 * run.terminal;

    let _ = master.teardown();
    drop(master);
    drop(cluster);
    drop(server);
    Ok(run)
}

/// The benchmark's scheduler: workshop step 2, stripped to what is measured.
struct NoopScheduler {
    plan: TaskPlan,
    payload: Vec<u8>,
    wanted: usize,
    ended: HashSet<String>,
    run: Run,
    first_running: Option<Instant>,
}

impl NoopScheduler {
    /// Reacts to one event; everything it does is a call to the master.
    fn handle(&mut self, event: &Event, master: &mut MasterConnection) -> Result<(), String> {
        let run = &mut self.run;
        let called = match event.type_() {
            event::Type::SUBSCRIBED => {
                let subscribed = &event.subscribed;
                master.subscribed(
                    subscribed.framework_id.clone().unwrap_or_default(),
                    subscribed.heartbeat_interval_seconds(),
                );
                Ok(())
            }
            event::Type::OFFERS => event.offers.offers.iter().try_for_each(|offer| {
                run.offers += 1;
                let mut infos = self.plan.tasks(offer, self.wanted - run.launched);
                for (number, info) in (run.launched + 1..).zip(&mut infos) {
                    describe(info, &number.to_string(), self.payload.clone());
                }
                if infos.is_empty() {
                    run.declines += 1;
                    let offer_ids = vec![offer.id.clone().unwrap_or_default()];
                    return master.decline(offer_ids, REFUSE_SECONDS);
                }
                run.launched += infos.len();
                run.accepts += 1;
                master.launch(offer, infos, REFUSE_SECONDS)?;
                // Everything is launched: no more offers, so no DECLINEs.
                if run.launched == self.wanted {
                    master.want_offers(false)?;
                }
                Ok(())
            }),
            event::Type::UPDATE => {
                let status = &event.update.status;
                if status.state() == TaskState::TASK_RUNNING && self.first_running.is_none() {
                    self.first_running = Some(Instant::now());
                }
                let task_id = status.task_id.value();
                if is_terminal(status.state()) && self.ended.insert(task_id.to_string()) {
                    run.finished += usize::from(status.state() == TaskState::TASK_FINISHED);
                }
                // Updates from the agent carry a uuid and are resent until
                // acknowledged; the master's own have none.
                if status.has_uuid() {
                    run.acknowledgements += 1;
                    master.acknowledge(status)
                } else {
                    Ok(())
                }
            }
            event::Type::ERROR => return Err(event.error.message().to_string()),
            _ => Ok(()),
        };
        called.map_err(|err| err.to_string())
    }
}

fn framework_info() -> FrameworkInfo {
    let mut framework = FrameworkInfo::new();
    framework.set_user("bench".into());
    framework.set_name("task throughput benchmark".into());
    framework.roles.push("*".into());
    let mut multi_role = framework_info::Capability::new();
    multi_role.set_type(framework_info::capability::Type::MULTI_ROLE);
    framework.capabilities.push(multi_role);
    framework
}
