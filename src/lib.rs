//! # How an Apache Mesos framework works, in Rust
//!
//! Mesos shares one cluster between many programs. A **master** knows every
//! machine (**agent**) and its free resources; it does not decide what runs.
//! Programs that want to run work are **frameworks**, and the master offers
//! them resources. Each framework has two parts: a **scheduler**, which
//! accepts offers and launches tasks, and an **executor**, which runs on the
//! agents and carries the tasks out. This crate is one such framework,
//! written to be read, plus an HTTP **file server** it needs.
//!
//! ```text
//!                 offers, status updates (events)
//!   +-----------+ <-------------------------------- +--------+
//!   | scheduler |                                   | master |
//!   |  (ours)   | --------------------------------> | (Mesos)|
//!   +-----------+  SUBSCRIBE, ACCEPT, DECLINE,      +--------+
//!        |         ACKNOWLEDGE, ... (calls)              |  launch task,
//!        | serves                                        |  forward acks
//!   +-------------+   1. fetch the executor binary   +--------+
//!   | file server | <------------------------------- | agent  |
//!   |   (ours)    |                                  | (Mesos)|
//!   +-------------+   3. upload inverted image       +--------+
//!          ^ <--------------------------+                | starts, then
//!          |                            |                v LAUNCH, KILL, ...
//!          +--- 2. download image --- +----------+ <-----+
//!                                     | executor |  UPDATE (TASK_RUNNING, ...)
//!                                     |  (ours)  | ------>  agent
//!                                     +----------+
//! ```
//!
//! Everything speaks Mesos's v1 HTTP APIs (`/api/v1/scheduler` on the
//! master, `/api/v1/executor` on the agent), so the same binaries run against
//! a real Mesos 1.x cluster or against the embedded one in [`local`].
//!
//! ## Reading order
//!
//! Each step of the workshop adds a few functions to read; the names below
//! are real (`tests/reading_path.rs` checks them).
//!
//! 1. **Register** (step 1).
//!    `src/scheduler/mod.rs`: `run`, `run_step`, `Scheduler`,
//!    `Scheduler::run_until_done`, `Scheduler::handle` (one `match`, one arm
//!    per event), `Scheduler::subscribed`, `Scheduler::offers`,
//!    `Scheduler::decline`, and how Ctrl+C stops every step,
//!    `Scheduler::stop`.
//!    What the loop asks of a step, and step 1's answers:
//!    `src/scheduler/work.rs`: `Work`, `LogOffers`.
//!    `src/scheduler/master.rs`: `connect`, `framework_info`, `Input`,
//!    `MasterConnection`, `MasterConnection::subscribe`,
//!    `MasterConnection::subscribed`, `MasterConnection::decline`,
//!    `MasterConnection::send`.
//! 2. **Launch** (step 2).
//!    `src/scheduler/noop.rs`: `NoopTasks`, `NoopTasks::prepare`,
//!    `NoopTasks::tasks_for`, `NoopTasks::update`,
//!    `NoopTasks::wants_offers`, `NoopTasks::done`.
//!    `src/scheduler/tasks.rs`: its three Mesos rules, `serve_executor`,
//!    `TaskPlan`, `TaskPlan::new`, `TaskPlan::tasks`, `TaskPlan::executor_for`,
//!    `TaskPlan::cut_task`, `describe`.
//!    `src/scheduler/mod.rs`: `Scheduler::launch`, `Scheduler::update`,
//!    `Scheduler::after_event`.
//!    `src/scheduler/master.rs`: `MasterConnection::launch`,
//!    `MasterConnection::acknowledge`, `MasterConnection::want_offers`.
//!    The other end, `src/executor/mod.rs`: `run`, `Executor`,
//!    `Executor::handle`, `Executor::launch`, `run_task`, `sleep`.
//! 3. **Images** (step 3).
//!    `src/scheduler/batch.rs`: `Image`, `ImageBatch`, `ImageBatch::prepare`,
//!    `ImageBatch::tasks_for`, `ImageBatch::update`,
//!    `ImageBatch::stored_result`, `ImageBatch::retry_or_give_up`,
//!    `ImageBatch::wants_offers`, `ImageBatch::done`.
//!    `src/task_data.rs`: `image`, `noop` (step 2's), `encode`, `decode`.
//!    `src/executor/work.rs`: `invert_and_upload`, `upload`.
//!    `src/invert.rs`: `invert_image`, `invert_in_place`, `invert_pixels`.
//!    `src/server/upload.rs`: `receive`, `store`, `write_body`.
//! 4. **Survive failures** (step 4), one failure at a time.
//!    The scheduler restarts:
//!    `src/scheduler/failover.rs`: `Failover`, `Failover::earlier_framework`,
//!    `Failover::remember`, `Failover::update`,
//!    `Failover::clear_stale_executor`, `Failover::finished`,
//!    `Failover::leave_framework`, `Failover::interrupted`,
//!    `load_framework_id`, `save_framework_id`, `framework_settings`.
//!    `src/scheduler/work.rs`: `Resume`.
//!    `src/scheduler/batch/results.rs`: `continue_earlier_run`.
//!    The master goes away:
//!    `src/scheduler/failover.rs`: `Failover::retry_until_subscribed`,
//!    `Failover::recover`, `Failover::reconcile`, `Failover::after_event`.
//!    `src/scheduler/config.rs`: `SchedulerError::connection_lost`.
//!    `src/scheduler/reconnect.rs`: `retry_connect`, `Backoff`.
//!    `src/scheduler/limits.rs`: `Events`, `Events::heartbeat`, `Events::next`.
//!    `src/scheduler/reconciliation.rs`: `Reconciliation`,
//!    `Reconciliation::start`, `Reconciliation::due`.
//!    `src/scheduler/master.rs`: `MasterConnection::reconcile`.
//!    `src/scheduler/batch.rs`: `ImageBatch::requeue`.
//!    The agent restarts:
//!    `src/executor/reconnect.rs`: `subscribe_again`.
//!    `src/executor/client.rs`: `Book`, `AgentClient`,
//!    `AgentClient::subscribe`, `AgentClient::launched`, `AgentClient::update`,
//!    `AgentClient::record`, `AgentClient::acknowledged`.
//!    `src/executor/mod.rs`: `Executor::wait_for_acknowledgements`.
//!    A machine is lost:
//!    `src/scheduler/limits.rs`: `agent_drained`.
//!
//! ## What a reader may skip
//!
//! The plumbing: [`http_api`] (subscriptions and calls over HTTP),
//! [`recordio`] (how events are framed on a stream; README's step 1 shows the
//! bytes), [`content_type`] and [`json`] (protobuf and JSON encodings),
//! [`proto`] (the generated messages), [`random`] (status update UUIDs,
//! upload tokens, backoff jitter), [`demo_images`] (the pictures step 3
//! inverts by default), [`front_door`] (the limits every client of our HTTP
//! servers keeps to, and TLS for the embedded master),
//! [`scheduler::executor_binary`] (finding the executor binary, and the
//! command that starts it on Linux, macOS or Windows) and [`leftovers`]
//! (removing the temporary folders of killed runs). Inside the
//! reading path, files whose first lines say a reader may skip them:
//! `src/scheduler/config.rs` (the flags, and the errors a run can end with),
//! `src/scheduler/log_lines.rs` (the log lines of offers and updates),
//! `src/scheduler/interrupt.rs` (how Ctrl+C reaches the event loop),
//! `src/scheduler/limits.rs` (a silent master, events missing a part; step
//! 4 reads `Events`),
//! `src/scheduler/too_small.rs` (a warning when offers stay too small),
//! `src/scheduler/resources.rs` (cutting a task's share out of an offer),
//! `src/scheduler/outcome.rs` (the end of a run),
//! `src/scheduler/batch/sources.rs` (the image list, the demo folder and its
//! clean-up), `src/scheduler/batch/results.rs` (the results page and the
//! final table), `src/server/paths.rs` (what a request path names),
//! `src/server/error.rs` and `src/server/limits.rs` (the file
//! server's errors and the limits its clients keep to),
//! `src/server/upload_checks.rs` (what an upload must pass before it is
//! stored),
//! `src/executor/client.rs` (until step 4: the executor's calls and its book
//! of updates), `src/executor/agent_address.rs` (reading the agent's address
//! from the environment), `src/executor/task_thread.rs` (starting a task's
//! thread, and its panic guard), `src/executor/task_group.rs` (refusing task
//! groups), `src/executor/error.rs` and `src/invert/format.rs` (decoding
//! rules and limits). [`local`], the embedded master and agents, stands in for
//! a real cluster: nothing above depends on it.
//!
//! Every module of the crate is named above. The programs are in `bin/`:
//! `scheduler`, `executor` (what the agent runs) and `mesos-local` (the
//! embedded cluster on its own).
//!
//! ## The workshop
//!
//! `cargo run --bin scheduler -- --step register` (step 1) logs offers;
//! `--step launch` (step 2) runs no-op tasks; no flag (step 3) inverts a
//! batch of images; step 4 stops and restarts it mid-batch. README.md walks
//! through each step. `RUST_LOG=debug` adds one line per call (`-> DECLINE`)
//! and per event (`<- OFFERS`); `RUST_LOG=trace` their JSON.
//!
//! ## Scope
//!
//! This is a tutorial: do not run it in production. What a production
//! framework has that this one leaves out: more than one scheduler
//! instance, with leader election, so that the framework outlives a
//! machine (here a restarted process takes over through one file);
//! its task state in a replicated store rather than in memory; health
//! checks of its tasks; reservations and persistent volumes for stateful
//! work; metrics. Mesos's documentation covers each:
//! `docs/high-availability-framework-guide.md`, `docs/reconciliation.md`,
//! `docs/health-checks.md`, `docs/reservation.md` and
//! `docs/persistent-volume.md` in the Apache Mesos repository.
//!
//! ## Invariants
//!
//! - No async runtime: each stream is read by one named thread, which hands
//!   events to the main thread over a channel; the main thread decides.
//! - Nothing read from the network, a file or a user can panic the process;
//!   every such failure is a typed error with a message that says what to do.
//! - Our `.proto` files match Mesos 1.11 field for field (`tests/protos.rs`
//!   checks them against `tests/data/mesos-v1.11-fields.tsv`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content_type;
pub mod demo_images;
pub mod executor;
pub mod front_door;
pub mod http_api;
pub mod invert;
pub mod json;
pub mod leftovers;
pub mod local;
pub mod proto;
pub mod random;
pub mod recordio;
pub mod scheduler;
pub mod server;
pub mod task_data;
#[cfg(test)]
mod test_dir;
