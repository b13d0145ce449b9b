//! Resource arithmetic: what an offer holds, what a task takes, what it
//! gives back. Scalars in exact thousandths, ranges merged, sets as sets.

use super::{excerpt, Amount, Entry, ResourceError, Resources, SCALAR_SCALE};

/// Where the resource with `wanted`'s name and kind is in `entries`.
fn position(entries: &[Entry], wanted: &Entry) -> Option<usize> {
    let same = |have: &Entry| have.name == wanted.name && have.amount.same_kind(&wanted.amount);
    entries.iter().position(same)
}

/// Adds `entry` to the entry of the same name and kind, or appends it. Ranges are merged
/// later, once, by [`Resources::normalized`].
pub(super) fn accumulate(entries: &mut Vec<Entry>, entry: Entry) {
    let Some(index) = position(entries, &entry) else {
        return entries.push(entry);
    };
    match (&mut entries[index].amount, entry.amount) {
        (Amount::Scalar(have), Amount::Scalar(more)) => *have = have.saturating_add(more),
        (Amount::Ranges(have), Amount::Ranges(more)) => have.extend(more),
        (Amount::Set(have), Amount::Set(more)) => have.extend(more),
        _ => {} // `position` matched the kind.
    }
}

/// Sorts ranges and merges those that overlap or touch (`1-5` and `6-9` are `1-9`).
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match merged.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((begin, end)),
        }
    }
    merged
}

/// `have` minus `take`, both sorted and merged; a range with a hole taken out of its
/// middle splits in two.
fn subtract_ranges(have: &[(u64, u64)], take: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut left = Vec::with_capacity(have.len() + take.len());
    for &(begin, end) in have {
        let mut rest = Some(begin);
        let first = take.partition_point(|&(_, take_end)| take_end < begin);
        for &(take_begin, take_end) in take[first..].iter().take_while(|&&(b, _)| b <= end) {
            let Some(from) = rest else { break };
            if take_begin > from {
                left.push((from, take_begin - 1));
            }
            // `take_end < end` makes `+ 1` safe.
            rest = (take_end < end).then(|| take_end + 1);
        }
        if let Some(from) = rest {
            left.push((from, end));
        }
    }
    left
}

impl Resources {
    /// Whether there are no resources at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total of a scalar resource (0.0 when absent).
    pub fn scalar(&self, name: &str) -> f64 {
        let probe = Entry {
            name: name.to_string(),
            amount: Amount::Scalar(0),
        };
        match self.find(&probe) {
            Some(Amount::Scalar(thousandths)) => *thousandths as f64 / SCALAR_SCALE,
            _ => 0.0,
        }
    }

    /// Whether every resource in `other` is available in `self` (scalars by amount,
    /// ranges/sets by inclusion).
    pub fn contains(&self, other: &Resources) -> bool {
        other.entries.iter().all(|wanted| self.has(wanted))
    }

    /// Adds `other` (scalars sum, ranges union and merge adjacent/overlapping, sets union).
    pub fn add(&mut self, other: &Resources) {
        let mut entries = std::mem::take(&mut self.entries);
        for entry in &other.entries {
            accumulate(&mut entries, entry.clone());
        }
        *self = Resources::normalized(entries);
    }

    /// Removes `other`; Err(ResourceError::Insufficient{..}) and no change when `other` is
    /// not contained.
    pub fn subtract(&mut self, other: &Resources) -> Result<(), ResourceError> {
        // Check everything first so that a shortfall in the last resource does not leave
        // the earlier ones taken.
        if let Some(wanted) = other.entries.iter().find(|wanted| !self.has(wanted)) {
            let available = self.find(wanted).map(|have| excerpt(&have.to_string()));
            return Err(ResourceError::Insufficient {
                name: wanted.name.clone(),
                wanted: excerpt(&wanted.amount.to_string()),
                available: available.unwrap_or_else(|| "none".to_string()),
            });
        }
        for wanted in &other.entries {
            let Some(index) = position(&self.entries, wanted) else {
                continue;
            };
            match (&mut self.entries[index].amount, &wanted.amount) {
                (Amount::Scalar(have), Amount::Scalar(take)) => *have -= take,
                (Amount::Ranges(have), Amount::Ranges(take)) => *have = subtract_ranges(have, take),
                (Amount::Set(have), Amount::Set(take)) => have.retain(|item| !take.contains(item)),
                _ => {} // `position` matched the kind.
            }
        }
        self.entries.retain(|entry| !entry.amount.is_empty());
        Ok(())
    }

    /// Merges the ranges of every entry and drops entries that are empty.
    pub(super) fn normalized(mut entries: Vec<Entry>) -> Resources {
        for entry in &mut entries {
            if let Amount::Ranges(ranges) = &mut entry.amount {
                *ranges = merge_ranges(std::mem::take(ranges));
            }
        }
        entries.retain(|entry| !entry.amount.is_empty());
        Resources { entries }
    }

    /// The amount of the resource with `wanted`'s name and kind.
    fn find(&self, wanted: &Entry) -> Option<&Amount> {
        position(&self.entries, wanted).map(|index| &self.entries[index].amount)
    }

    /// Whether all of `wanted` is here.
    fn has(&self, wanted: &Entry) -> bool {
        match (self.find(wanted), &wanted.amount) {
            (Some(Amount::Scalar(have)), Amount::Scalar(want)) => have >= want,
            (Some(Amount::Ranges(have)), Amount::Ranges(want)) => want.iter().all(|&(b, e)| {
                // `have` is sorted and merged, so only the first range that ends at or
                // after `b` can hold all of `b-e`.
                let index = have.partition_point(|&(_, have_end)| have_end < b);
                have.get(index)
                    .is_some_and(|&(begin, end)| begin <= b && e <= end)
            }),
            (Some(Amount::Set(have)), Amount::Set(want)) => want.is_subset(have),
            // Absent (entries are never empty, so something is wanted).
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Resources {
        Resources::parse(text).expect("test input is valid")
    }

    #[test]
    fn equality_ignores_order() {
        assert_eq!(parse("mem:1;cpus:2"), parse("cpus:2;mem:1"));
        assert_ne!(parse("mem:1;cpus:2"), parse("cpus:2;mem:2"));
        assert_ne!(parse("cpus:2"), parse("cpus:2;mem:1"));
    }

    #[test]
    fn scalars_have_three_exact_decimal_digits() {
        let mut cpus = parse("cpus:0.1");
        cpus.add(&parse("cpus:0.2"));
        assert_eq!(cpus, parse("cpus:0.3"));
        assert_eq!(cpus.scalar("cpus"), 0.3);

        let mut left = parse("cpus:2.0");
        left.subtract(&parse("cpus:0.1")).expect("0.1 of 2");
        left.subtract(&parse("cpus:1.9")).expect("1.9 of 1.9");
        assert!(left.is_empty(), "{left}");

        assert!(parse("cpus:0.0004").is_empty());
        assert_eq!(parse("cpus:0.0006").scalar("cpus"), 0.001);
        assert_eq!(parse("cpus:0.125").to_string(), "cpus:0.125");
        assert_eq!(parse("cpus:2.50").to_string(), "cpus:2.5");
        assert_eq!(parse("cpus:0").to_string(), "");
    }

    #[test]
    fn taking_ports_from_the_middle_splits_the_range() {
        let mut ports = parse("ports:[31000-32000]");
        ports
            .subtract(&parse("ports:[31005-31010]"))
            .expect("inside");
        assert_eq!(ports.to_string(), "ports:[31000-31004, 31011-32000]");
        assert!(ports.contains(&parse("ports:[31000-31004]")));
        assert!(!ports.contains(&parse("ports:[31004-31011]")));
        assert!(!ports.contains(&parse("ports:[31007-31007]")));

        ports.add(&parse("ports:[31005-31010]"));
        assert_eq!(ports, parse("ports:[31000-32000]"));

        ports
            .subtract(&parse("ports:[31000-31000, 32000-32000]"))
            .expect("the ends");
        assert_eq!(ports.to_string(), "ports:[31001-31999]");
        ports.subtract(&parse("ports:[31001-31999]")).expect("all");
        assert!(ports.is_empty());
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        let mut ports = parse("ports:[1-5]");
        ports.add(&parse("ports:[6-9]"));
        assert_eq!(ports.to_string(), "ports:[1-9]");
        ports.add(&parse("ports:[20-30, 8-12, 25-40]"));
        assert_eq!(ports.to_string(), "ports:[1-12, 20-40]");
        assert_eq!(
            parse("ports:[3-4,1-2];ports:[0-0]").to_string(),
            "ports:[0-4]"
        );
        let top = u64::MAX;
        assert_eq!(
            parse(&format!("p:[{top}-{top}, 0-{top}]")).to_string(),
            format!("p:[0-{top}]")
        );
        assert!(parse("ports:[]").is_empty());
    }

    #[test]
    fn sets_union_include_and_remove_items() {
        let mut disks = parse("disks:{a,b}");
        disks.add(&parse("disks:{b, c}"));
        assert_eq!(disks.to_string(), "disks:{a, b, c}");
        assert!(disks.contains(&parse("disks:{c,a}")));
        assert!(!disks.contains(&parse("disks:{a,d}")));
        disks.subtract(&parse("disks:{a}")).expect("a is there");
        assert_eq!(disks, parse("disks:{b,c}"));
        assert!(parse("disks:{}").is_empty());
    }

    #[test]
    fn name_and_kind_together_identify_a_resource() {
        let resources = parse("gpus:1;gpus:{x}");
        assert_eq!(resources.scalar("gpus"), 1.0);
        assert!(resources.contains(&parse("gpus:{x}")));
        assert!(!resources.contains(&parse("gpus:[1-1]")));
        assert!(!parse("gpus:{x}").contains(&parse("gpus:1")));
    }

    #[test]
    fn a_failed_subtract_changes_nothing() {
        let mut free = parse("cpus:1;mem:100;ports:[1-10]");
        let before = free.clone();
        // cpus would fit; mem does not, so cpus must not be taken either.
        let error = free
            .subtract(&parse("cpus:0.5;mem:200"))
            .expect_err("too much mem");
        assert_eq!(
            error,
            ResourceError::Insufficient {
                name: "mem".into(),
                wanted: "200".into(),
                available: "100".into()
            }
        );
        assert_eq!(free, before);

        let error = free.subtract(&parse("disk:1")).expect_err("no disk");
        assert!(error.to_string().contains("available none"), "{error}");
        free.subtract(&parse("ports:[10-11]"))
            .expect_err("11 is not free");
        assert_eq!(free, before);
    }
}
