//! Taking an agent out of the cluster and bringing it back: what the
//! operator API's `DRAIN_AGENT`, `DEACTIVATE_AGENT` and `REACTIVATE_AGENT`
//! do to the master's state (`operator.rs` reads the calls).
//!
//! Mesos 1.9 brought automatic draining (`docs/maintenance.md`, "Automatic
//! Node Draining"); the master's part, as in `src/master/http.cpp` and
//! `master.cpp` of 1.11:
//! - a drained or deactivated agent is *deactivated*: its outstanding
//!   offers are rescinded and no new offer is made of it;
//! - a draining agent is told to drain: it kills each of its tasks (see
//!   `agent/drain.rs`), whose last updates carry `REASON_AGENT_DRAINING`;
//! - once no task runs there and every task's last update is acknowledged,
//!   the agent is `DRAINED`; with `mark_gone` it is marked gone instead,
//!   and leaves the cluster for good;
//! - `REACTIVATE_AGENT` ends a deactivation or a finished drain (never one
//!   still `DRAINING`), and the agent's resources are offered again.

use super::super::agent::Draining;
use super::super::http::HttpError;
use super::super::State;
use super::LOG_TARGET;
use crate::proto::mesos::{DrainConfig, DrainInfo, DrainState};
use crate::proto::scheduler::{event, Event};
use std::time::Duration;

impl State {
    /// `DRAIN_AGENT`: no more offers of the agent, and each of its tasks is
    /// killed, each given at most `max_grace_period` to end.
    pub(in crate::local) fn drain_agent(
        &mut self,
        agent: usize,
        max_grace_period: Option<Duration>,
        mark_gone: bool,
    ) {
        let mut config = DrainConfig::new();
        config.set_mark_gone(mark_gone);
        if let Some(grace) = max_grace_period {
            let nanoseconds = i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX);
            config
                .max_grace_period
                .mut_or_insert_default()
                .set_nanoseconds(nanoseconds);
        }
        let mut info = DrainInfo::new();
        info.set_state(DrainState::DRAINING);
        info.config = Some(config).into();
        log::info!(
            target: LOG_TARGET,
            "Transitioning agent {} to the DRAINING state",
            self.agents[agent].id
        );
        let record = &mut self.master.agents[agent];
        record.drain = Some(info);
        record.drain_start_time = Some(super::now_seconds());
        self.deactivate_agent(agent);
        let draining = Draining {
            max_grace_period,
            mark_gone,
        };
        self.agent_drain(agent, draining);
        self.check_drained(agent);
    }

    /// `DEACTIVATE_AGENT` (and the first step of a drain): the agent's
    /// offers are rescinded, and it is offered to nobody until reactivated.
    pub(in crate::local) fn deactivate_agent(&mut self, agent: usize) {
        self.master.agents[agent].deactivated = true;
        let mut rescinded: Vec<(String, String)> = self
            .master
            .offers
            .iter()
            .filter(|(_, offer)| offer.agent == agent)
            .map(|(id, offer)| (id.clone(), offer.framework_id.clone()))
            .collect();
        rescinded.sort();
        for (offer_id, framework_id) in rescinded {
            let Some(offer) = self.master.offers.remove(&offer_id) else {
                continue;
            };
            self.master.agents[agent].free.add(&offer.resources);
            log::info!(target: LOG_TARGET, "Rescinding offer {offer_id} of framework {framework_id}");
            let mut event = Event::new();
            event.set_type(event::Type::RESCIND);
            event
                .rescind
                .mut_or_insert_default()
                .offer_id
                .mut_or_insert_default()
                .set_value(offer_id);
            self.send_to_framework(&framework_id, event);
        }
    }

    /// `REACTIVATE_AGENT`: offers of the agent again. Mesos refuses an
    /// agent that is not deactivated, or still draining.
    pub(in crate::local) fn reactivate_agent(&mut self, agent: usize) -> Result<(), HttpError> {
        let record = &mut self.master.agents[agent];
        if !record.deactivated {
            return Err(HttpError::bad_request("Agent is not deactivated"));
        }
        if record
            .drain
            .as_ref()
            .is_some_and(|d| d.state() == DrainState::DRAINING)
        {
            return Err(HttpError::bad_request(
                "Agent is still in the DRAINING state",
            ));
        }
        record.drain = None;
        record.drain_start_time = None;
        record.deactivated = false;
        log::info!(target: LOG_TARGET, "Reactivating agent {}", self.agents[agent].id);
        self.agent_stop_draining(agent);
        self.allocate();
        Ok(())
    }

    /// A draining agent is drained once nothing runs there and every
    /// task's last update is acknowledged; with `mark_gone` it is then
    /// gone: its executors are shut down and it leaves the cluster.
    pub(in crate::local) fn check_drained(&mut self, agent: usize) {
        let draining = self.master.agents[agent]
            .drain
            .as_ref()
            .filter(|d| d.state() == DrainState::DRAINING)
            .map(|d| d.config.mark_gone());
        let Some(mark_gone) = draining else {
            return;
        };
        if self.agent_busy(agent) {
            return;
        }
        let id = self.agents[agent].id.clone();
        if let Some(drain) = self.master.agents[agent].drain.as_mut() {
            drain.set_state(DrainState::DRAINED);
        }
        if !mark_gone {
            log::info!(target: LOG_TARGET, "Transitioning agent {id} to the DRAINED state");
            return;
        }
        log::info!(target: LOG_TARGET, "Marking agent {id} in the DRAINED state as gone");
        self.master.agents[agent].gone = true;
        self.agent_shutdown_executors(agent);
    }
}
