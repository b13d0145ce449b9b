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
//! 1. [`scheduler`]: the event loop of a framework: subscribe, then one
//!    `match` over events. Then its parts: [`scheduler::master`] (the calls),
//!    [`scheduler::tasks`] (offers into tasks), [`scheduler::noop`] (step 2)
//!    and [`scheduler::batch`] (step 3).
//! 2. [`executor`]: the other end: subscribe to the agent, run tasks, report
//!    their status until each report is acknowledged. [`executor::work`] is
//!    what a task does, using [`task_data`] (what the scheduler sent) and
//!    [`invert`] (the image work).
//! 3. [`server`]: the file server: executor downloads, uploads, results page.
//! 4. The plumbing, which a workshop may skip: [`http_api`] (subscriptions
//!    and calls over HTTP), [`recordio`] (how events are framed),
//!    [`content_type`] and [`json`] (protobuf and JSON encodings), [`proto`]
//!    (the generated messages), [`random`] (status update UUIDs, upload
//!    tokens, backoff jitter), [`demo_images`] (the pictures step 3 inverts
//!    by default) and [`front_door`] (the limits every client of our HTTP
//!    servers keeps to, and TLS for the embedded master).
//! 5. [`local`]: the embedded master and agent. Nothing above depends on it.
//!
//! Every module of the crate is named above. The programs are in `bin/`:
//! `scheduler`, `executor` (what the agent runs) and `mesos-local` (the
//! embedded cluster on its own).
//!
//! ## The workshop
//!
//! `cargo run --bin scheduler -- --step register` (step 1) logs offers;
//! `--step launch` (step 2) runs no-op tasks; no flag (step 3) inverts a
//! batch of images. README.md walks through each step.
//!
//! ## Invariants
//!
//! - No async runtime: each stream is read by one named thread, which hands
//!   events to the main thread over a channel; the main thread decides.
//! - Nothing read from the network, a file or a user can panic the process;
//!   every such failure is a typed error with a message that says what to do.
//! - Our `.proto` files match Mesos 1.11 field for field
//!   (`../shared/tools/check-protos` checks them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content_type;
pub mod demo_images;
pub mod executor;
pub mod front_door;
pub mod http_api;
pub mod invert;
pub mod json;
pub mod local;
pub mod proto;
pub mod random;
pub mod recordio;
pub mod scheduler;
pub mod server;
pub mod task_data;
