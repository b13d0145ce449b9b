//! Offers too small for our tasks, for a long time.
//!
//! *A reader may skip this file.*
//!
//! On a real cluster resources come and go, so an offer too small for a
//! task is no error: a larger one may come. But offers that stay too small
//! for a long time usually mean a task larger than any agent, and a
//! scheduler that only declines them waits for ever without a word. So
//! after a minute of nothing but too small offers, [`TooSmall`] warns,
//! naming the most that any offer held, and again once a minute.
//! (`bin/scheduler.rs` refuses a task larger than the embedded agent before
//! it starts.)

use super::tasks::{scalar, EXECUTOR_CPUS, EXECUTOR_MEM};
use crate::proto::mesos::Offer;
use std::time::{Duration, Instant};

/// How long offers may all be too small before we warn, and how often we
/// warn after that.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// Offers seen too small since the last one we could use.
pub struct TooSmall {
    task_cpus: f64,
    task_mem: f64,
    /// When the first of these offers came, and when we last warned.
    since: Option<Instant>,
    warned: Option<Instant>,
    /// The most CPUs and memory any of them held.
    most_cpus: f64,
    most_mem: f64,
}

impl TooSmall {
    /// Watches offers for tasks of `task_cpus` and `task_mem` MB.
    pub fn new(task_cpus: f64, task_mem: f64) -> TooSmall {
        TooSmall {
            task_cpus,
            task_mem,
            since: None,
            warned: None,
            most_cpus: 0.0,
            most_mem: 0.0,
        }
    }

    /// An offer, for `wanted` waiting tasks of which `fitted` fit in it:
    /// logs the warning once it is due. While no task waits, no offer is
    /// too small.
    pub fn saw(&mut self, offer: &Offer, wanted: usize, fitted: usize) {
        if wanted == 0 {
            return;
        }
        if fitted > 0 {
            self.used();
        } else if let Some(warning) = self.too_small(offer, Instant::now()) {
            log::warn!("{warning}");
        }
    }

    /// An offer we could use: the trouble, if any, is over.
    pub fn used(&mut self) {
        self.since = None;
        self.warned = None;
        (self.most_cpus, self.most_mem) = (0.0, 0.0);
    }

    /// An offer too small for a waiting task, seen at `now`: the warning to
    /// log, if one is due.
    pub fn too_small(&mut self, offer: &Offer, now: Instant) -> Option<String> {
        self.most_cpus = self.most_cpus.max(scalar(&offer.resources, "cpus"));
        self.most_mem = self.most_mem.max(scalar(&offer.resources, "mem"));
        let since = *self.since.get_or_insert(now);
        let last = self.warned.unwrap_or(since);
        if now.duration_since(last) < WARN_EVERY {
            return None;
        }
        self.warned = Some(now);
        Some(format!(
            "For {} s every offer was too small for a task of --task-cpus {} and --task-mem {} \
             (plus {EXECUTOR_CPUS} CPUs and {EXECUTOR_MEM} MB for the executor); the largest \
             offers held {} CPUs and {} MB. Lower --task-cpus or --task-mem, or add larger agents",
            now.duration_since(since).as_secs(),
            self.task_cpus,
            self.task_mem,
            self.most_cpus,
            self.most_mem
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::resources::test_offer as offer;

    #[test]
    fn warns_after_a_minute_then_once_a_minute_naming_the_largest_offer() {
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let mut watch = TooSmall::new(4.0, 2048.0);
        assert_eq!(watch.too_small(&offer(2.0, 512.0), at(0)), None);
        assert_eq!(watch.too_small(&offer(1.0, 1024.0), at(59)), None);
        let warning = watch.too_small(&offer(0.5, 256.0), at(60)).expect("due");
        assert!(warning.starts_with("For 60 s every offer"), "{warning}");
        assert!(warning.contains("--task-mem 2048"), "{warning}");
        assert!(warning.contains("held 2 CPUs and 1024 MB"), "{warning}");
        assert_eq!(watch.too_small(&offer(2.0, 512.0), at(90)), None);
        assert!(watch.too_small(&offer(2.0, 512.0), at(120)).is_some());
    }

    #[test]
    fn offers_count_only_while_tasks_wait() {
        let mut watch = TooSmall::new(4.0, 2048.0);
        watch.saw(&offer(2.0, 512.0), 0, 0);
        assert_eq!(watch.since, None, "nothing waits: not too small");
        watch.saw(&offer(2.0, 512.0), 3, 0);
        assert!(watch.since.is_some(), "three tasks wait, none fits");
        watch.saw(&offer(8.0, 4096.0), 3, 1);
        assert_eq!(watch.since, None, "one fits: the trouble is over");
    }

    #[test]
    fn a_used_offer_starts_the_minute_again() {
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let mut watch = TooSmall::new(4.0, 2048.0);
        assert_eq!(watch.too_small(&offer(2.0, 512.0), at(0)), None);
        watch.used();
        assert_eq!(watch.too_small(&offer(2.0, 512.0), at(50)), None);
        assert_eq!(watch.too_small(&offer(2.0, 512.0), at(100)), None);
        let warning = watch.too_small(&offer(2.0, 512.0), at(110)).expect("due");
        assert!(warning.starts_with("For 60 s"), "{warning}");
    }
}
