//! What the scheduler refuses to act on, and how long it waits.
//!
//! *Hardening: a reader may skip this file* (step 4 reads [`Events`]: when a
//! silent master counts as lost; and [`agent_drained`]: a task lost with
//! its machine is no failure).
//!
//! Events come from the network. Protobuf cannot say that a part is
//! required (`subscribed` is optional on the wire), so a broken or hostile
//! peer could send an event without the part its type needs, and the
//! scheduler would act on defaults: an empty framework id, an update of
//! task "". [`missing_part`] names such a part; the event is then logged and
//! skipped. A master can also fall silent without closing the connection:
//! [`Events`] gives it five heartbeat intervals, then the connection counts
//! as lost (step 4 subscribes again). The HTTP client cannot close a stream
//! that went silent, so the old stream's reader thread lingers until the
//! operating system gives up on the connection; each re-subscription opens
//! a new one. The other limits the scheduler keeps live beside what they
//! guard: the size of a RecordIO record (`recordio`), the rows of the
//! results page (`batch::MAX_PAGE_ROWS`).

use super::config::EventError;
use super::master::{Inbox, Input};
use crate::http_api::StreamError;
use crate::proto::mesos::task_status::Reason;
use crate::proto::mesos::TaskStatus;
use crate::proto::scheduler::{event, Event};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Whether a task ended because an operator drained its agent (Mesos 1.9
/// and later, `DRAIN_AGENT`): the agent kills every task it runs, and each
/// ends `TASK_KILLED` (`TASK_GONE_BY_OPERATOR` if the agent leaves for
/// good) with the reason `REASON_AGENT_DRAINING`. The machine went away,
/// not the task: its work is run again elsewhere, and counts as no failed
/// attempt (step 3) and no failure in a row (step 2). Says so in the log.
pub fn agent_drained(status: &TaskStatus) -> bool {
    let drained = status.reason() == Reason::REASON_AGENT_DRAINING;
    if drained {
        log::info!(
            "Task {} ended because its agent is draining: not counted as a failure",
            status.task_id.value()
        );
    }
    drained
}

/// How long to wait for `SUBSCRIBED` before the heartbeat interval is known.
const FIRST_EVENT_LIMIT: Duration = Duration::from_secs(30);

/// The inputs of one subscription, as the event loop may trust them.
pub struct Events {
    /// The event reader thread sends the stream's events here, and
    /// `Interrupts` Ctrl+C.
    inbox: Receiver<Inbox>,
    /// How long without any event means the master is gone: five heartbeat
    /// intervals after `SUBSCRIBED`, [`FIRST_EVENT_LIMIT`] before (Mesos
    /// sends `SUBSCRIBED` at once; a stream that stays silent this long
    /// after answering 200 is as dead as a silent one later).
    silence_limit: Duration,
}

impl Events {
    /// The inputs arriving at `inbox`.
    pub fn new(inbox: Receiver<Inbox>) -> Events {
        Events {
            inbox,
            silence_limit: FIRST_EVENT_LIMIT,
        }
    }

    /// `SUBSCRIBED` said how often the master sends a heartbeat: five
    /// silent intervals mean the connection is dead.
    pub fn heartbeat(&mut self, heartbeat_seconds: f64) {
        if heartbeat_seconds > 0.0 && heartbeat_seconds.is_finite() {
            self.silence_limit = Duration::from_secs_f64(heartbeat_seconds * 5.0);
        }
    }

    /// The next event, or Ctrl+C. Undecodable events and events missing a
    /// part are logged and skipped: the stream's framing is intact, and
    /// Mesos resends what matters.
    pub fn next(&self) -> Result<Input, EventError> {
        loop {
            let limit = self.silence_limit;
            let received = self.inbox.recv_timeout(limit).map_err(|err| match err {
                RecvTimeoutError::Timeout => EventError::Silent(limit),
                RecvTimeoutError::Disconnected => EventError::Stream(StreamError::Closed),
            })?;
            match received {
                Ok(Input::Event(event)) => {
                    crate::http_api::log_message("<-", &event);
                    if let Some(missing) = missing_part(&event) {
                        log::warn!("Ignoring a {:?} event without its {missing}", event.type_());
                        continue;
                    }
                    return Ok(Input::Event(event));
                }
                Ok(Input::Interrupted) => return Ok(Input::Interrupted),
                Err(err) if err.is_fatal() => return Err(EventError::Stream(err)),
                Err(err) => log::warn!("{err}"),
            }
        }
    }
}

/// The part of an event that its type requires and that is missing, if
/// any.
pub fn missing_part(event: &Event) -> Option<&'static str> {
    match event.type_() {
        event::Type::SUBSCRIBED if event.subscribed.framework_id.is_none() => Some("framework id"),
        event::Type::UPDATE
            if event.update.status.task_id.is_none() || event.update.status.state.is_none() =>
        {
            Some("task status")
        }
        event::Type::RESCIND if event.rescind.offer_id.is_none() => Some("offer id"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_heartbeat_interval_sets_the_silence_limit() {
        let (_sender, inbox) = std::sync::mpsc::channel();
        let mut events = Events::new(inbox);
        // Nonsense from the network leaves the limit as it was.
        for nonsense in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            events.heartbeat(nonsense);
            assert_eq!(events.silence_limit, FIRST_EVENT_LIMIT, "{nonsense}");
        }
        events.heartbeat(2.0);
        assert_eq!(events.silence_limit, Duration::from_secs(10));
    }
    use crate::proto::mesos::TaskState;

    #[test]
    fn events_without_their_required_part_are_recognised() {
        let mut event = Event::new();
        event.set_type(event::Type::SUBSCRIBED);
        assert_eq!(missing_part(&event), Some("framework id"));
        event
            .subscribed
            .mut_or_insert_default()
            .framework_id
            .mut_or_insert_default()
            .set_value("F1".into());
        assert_eq!(missing_part(&event), None);

        let mut update = Event::new();
        update.set_type(event::Type::UPDATE);
        assert_eq!(missing_part(&update), Some("task status"));
        let status = update
            .update
            .mut_or_insert_default()
            .status
            .mut_or_insert_default();
        status.task_id.mut_or_insert_default().set_value("t".into());
        assert_eq!(missing_part(&update), Some("task status"), "no state");
        let status = update
            .update
            .mut_or_insert_default()
            .status
            .mut_or_insert_default();
        status.set_state(TaskState::TASK_RUNNING);
        assert_eq!(missing_part(&update), None);

        let mut heartbeat = Event::new();
        heartbeat.set_type(event::Type::HEARTBEAT);
        assert_eq!(missing_part(&heartbeat), None);
    }
}
