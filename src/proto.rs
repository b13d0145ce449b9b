//! The Mesos messages, generated from the `.proto` files in `src/proto/`.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! `build.rs` turns each `.proto` file into a Rust module at build time:
//!
//! | module        | from                      | what it holds                            |
//! |---------------|---------------------------|------------------------------------------|
//! | [`mesos`]     | `src/proto/mesos.proto`   | ids, resources, offers, tasks, statuses  |
//! | [`scheduler`] | `src/proto/scheduler.proto` | the scheduler API's `Call` and `Event` |
//! | [`executor`]  | `src/proto/executor.proto`  | the executor API's `Call` and `Event`  |
//! | [`master`]    | `src/proto/master.proto`    | the operator API's `Call` and `Response` |
//! | [`task_data`] | `src/task_data.proto`    | our own `TaskInfo.data` payload          |
//!
//! rust-protobuf names things this way: a message `Call.Subscribe` becomes
//! `scheduler::call::Subscribe`, an enum `Call.Type` becomes
//! `scheduler::call::Type`, and a field called `type` is read with
//! `type_()` and written with `set_type()`.

#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/protos/mod.rs"));

/// Whether a task in this state will never run again. Mesos sends exactly
/// one terminal state per task (possibly more than once: delivery is at
/// least once); `TASK_LOST` is terminal for frameworks that are not
/// partition-aware.
pub fn is_terminal(state: mesos::TaskState) -> bool {
    use mesos::TaskState::*;
    matches!(
        state,
        TASK_FINISHED
            | TASK_FAILED
            | TASK_KILLED
            | TASK_ERROR
            | TASK_LOST
            | TASK_DROPPED
            | TASK_GONE
            | TASK_GONE_BY_OPERATOR
    )
}

/// Ranges as Mesos writes them, `[31000-31099, 31200-32000]`: each range
/// `begin-end` (both ends included), between `separator`s, in brackets.
/// The master's `/state` separates with `", "`; the scheduler's log lines
/// with `","`.
pub fn format_ranges(ranges: &mesos::value::Ranges, separator: &str) -> String {
    let each: Vec<String> = ranges
        .range
        .iter()
        .map(|range| format!("{}-{}", range.begin(), range.end()))
        .collect();
    format!("[{}]", each.join(separator))
}

#[cfg(test)]
mod tests {
    use super::format_ranges;
    use super::mesos::value::{Range, Ranges};

    fn ranges(bounds: &[(u64, u64)]) -> Ranges {
        let mut ranges = Ranges::new();
        for &(begin, end) in bounds {
            let mut range = Range::new();
            range.set_begin(begin);
            range.set_end(end);
            ranges.range.push(range);
        }
        ranges
    }

    #[test]
    fn one_range_has_no_separator() {
        let one = ranges(&[(31000, 32000)]);
        assert_eq!(format_ranges(&one, ", "), "[31000-32000]");
        assert_eq!(format_ranges(&one, ","), "[31000-32000]");
    }

    #[test]
    fn two_ranges_are_separated_as_asked() {
        let two = ranges(&[(31000, 31099), (31200, 32000)]);
        assert_eq!(format_ranges(&two, ", "), "[31000-31099, 31200-32000]");
        assert_eq!(format_ranges(&two, ","), "[31000-31099,31200-32000]");
    }
}
