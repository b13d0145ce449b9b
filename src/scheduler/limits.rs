//! What the scheduler refuses to act on.
//!
//! *Hardening: a reader may skip this file.*
//!
//! Events come from the network. Protobuf cannot say that a part is
//! required (`subscribed` is optional on the wire), so a broken or hostile
//! peer could send an event without the part its type needs, and the
//! scheduler would act on defaults: an empty framework id, an update of
//! task "". [`missing_part`] names such a part; the event is then logged and
//! skipped. The other limits the scheduler keeps live beside what they
//! guard: the size of a RecordIO record (`recordio`), the time a silent
//! master is given (`master::MasterConnection::next_input`), the rows of
//! the results page (`batch::MAX_PAGE_ROWS`).

use crate::proto::scheduler::{event, Event};

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
