//! Resources of the embedded agent: how much is there, what is free, what a task uses.
//!
//! *Plumbing: a reader may skip this file.* It is the bookkeeping behind the embedded
//! master's offers; the framework itself only reads the resources it is offered.
//!
//! An agent announces its resources as a list of named values. Mesos knows three kinds:
//!
//! | kind   | example                | arithmetic                                    |
//! |--------|------------------------|-----------------------------------------------|
//! | scalar | `cpus:2.5`, `mem:1024` | amounts add and subtract                      |
//! | ranges | `ports:[31000-32000]`  | inclusive ranges; a task takes sub-ranges    |
//! | set    | `disks:{ssd1,ssd2}`    | named items, taken whole                      |
//!
//! The agent's `--resources` flag writes them in Mesos's text syntax: `name:value` items
//! separated by `;`, for example `cpus:2;mem:1024;disk:4096;ports:[31000-32000]`. A name
//! may carry a role, `cpus(*):2`; `*` means "unreserved", the only kind of resource the
//! embedded agent has, so other roles are refused. Names and set items use Mesos's label
//! characters `[a-zA-Z0-9_/.-]`. An item that names a resource twice adds up.
//!
//! The master offers what is free, checks that the tasks launched from an offer fit in it
//! ([`Resources::contains`]), takes their resources ([`Resources::subtract`]) and gives them
//! back when the tasks end ([`Resources::add`]). A resource is identified by its name and
//! kind; `role` and `allocation_info` are labels that do not change the arithmetic.
//!
//! Scalars are kept as whole thousandths, as Mesos does: floating point would make
//! `0.1 + 0.2` differ from `0.3` and leave `1e-16` CPUs behind after `2 - 0.1 - 1.9`, an
//! amount that would be offered forever. With three fixed decimal digits the arithmetic is
//! exact, and a scalar that reaches zero disappears. Finer amounts are rounded to the
//! nearest thousandth, so `cpus:0.0004` is no resource at all.
//!
//! The text comes from a user and the protobufs from a framework, so both are bounded
//! ([`MAX_TEXT_LEN`], [`MAX_ELEMENTS`]) and every mistake is an error, never a panic.

use std::collections::BTreeSet;
use std::fmt;

use crate::proto::mesos::value::{self, Type};
use crate::proto::mesos::Resource;

/// The longest resource text [`Resources::parse`] accepts, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// The most resource items, ranges and set items one parse or conversion accepts.
pub const MAX_ELEMENTS: usize = 10_000;

/// Scalars are stored in thousandths: Mesos keeps three decimal digits.
const SCALAR_SCALE: f64 = 1000.0;

/// The largest scalar accepted. Its thousandths (1e15) stay exact in an `f64`.
const MAX_SCALAR: f64 = 1e12;

/// A set of resources: at most one entry per (name, kind), none of them empty, ranges
/// sorted and merged. Entries keep the order they first appeared in, so the agent's
/// resources print as they were written; equality ignores that order.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    name: String,
    amount: Amount,
}

#[derive(Clone, Debug, PartialEq)]
enum Amount {
    /// Thousandths of a unit.
    Scalar(u64),
    /// Inclusive `(begin, end)` pairs.
    Ranges(Vec<(u64, u64)>),
    Set(BTreeSet<String>),
}

/// Why resources could not be parsed, converted or taken.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceError {
    /// The resource text is longer than [`MAX_TEXT_LEN`] bytes.
    TooLong {
        /// The text's length in bytes.
        len: usize,
    },
    /// More than [`MAX_ELEMENTS`] items, ranges and set items.
    TooMany,
    /// An item of the resource text does not follow the syntax.
    Syntax {
        /// The offending item (shortened if long).
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An item reserved for a role; the embedded agent only has unreserved resources.
    UnsupportedRole {
        /// The offending item (shortened if long).
        item: String,
        /// The role it names.
        role: String,
    },
    /// A protobuf resource whose type and value disagree or whose value is out of bounds.
    Invalid {
        /// The resource's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`Resources::subtract`] was asked for more than there is.
    Insufficient {
        /// The resource that falls short.
        name: String,
        /// The amount asked for, in the text syntax.
        wanted: String,
        /// The amount there is, in the text syntax, or `none`.
        available: String,
    },
}

impl Resources {
    /// Parses Mesos's text syntax: `name:value` items separated by `;` (whitespace around
    /// items allowed), scalar `cpus:2.5`, ranges `ports:[31000-32000, 40000-40010]`, set
    /// `disks:{a,b}`; an optional role suffix `cpus(*):2` is accepted but only the
    /// unreserved role `*` is supported (other roles: error).
    pub fn parse(text: &str) -> Result<Resources, ResourceError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(ResourceError::TooLong { len: text.len() });
        }
        // Like Mesos, empty items (`cpus:1;;mem:2;`) are skipped.
        let items = text
            .split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty());
        collect(items.map(parse_item))
    }

    /// From protobuf resources (e.g. a task's resources). Drops nothing silently: a
    /// resource with a type/value mismatch (type SCALAR but no scalar, negative or NaN
    /// scalar, range with begin > end) is an error.
    pub fn from_protos(resources: &[Resource]) -> Result<Resources, ResourceError> {
        collect(resources.iter().map(entry_from_proto))
    }

    /// Protobuf form; every Resource has name, type and value set; `allocation_info.role`
    /// set to `role` when `role` is Some (offers to a framework carry it), none otherwise.
    /// The deprecated `role` field is left unset: its default `*` already says "unreserved".
    pub fn to_protos(&self, role: Option<&str>) -> Vec<Resource> {
        let mut protos = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let mut resource = Resource::new();
            resource.set_name(entry.name.clone());
            match &entry.amount {
                Amount::Scalar(thousandths) => {
                    resource.set_type(Type::SCALAR);
                    let scalar = resource.scalar.mut_or_insert_default();
                    scalar.set_value(*thousandths as f64 / SCALAR_SCALE);
                }
                Amount::Ranges(ranges) => {
                    resource.set_type(Type::RANGES);
                    let proto_ranges = &mut resource.ranges.mut_or_insert_default().range;
                    for &(begin, end) in ranges {
                        let mut range = value::Range::new();
                        range.set_begin(begin);
                        range.set_end(end);
                        proto_ranges.push(range);
                    }
                }
                Amount::Set(items) => {
                    resource.set_type(Type::SET);
                    resource.set.mut_or_insert_default().item = items.iter().cloned().collect();
                }
            }
            if let Some(role) = role {
                let allocation = resource.allocation_info.mut_or_insert_default();
                allocation.set_role(role.to_string());
            }
            protos.push(resource);
        }
        protos
    }

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
    fn normalized(mut entries: Vec<Entry>) -> Resources {
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

impl PartialEq for Resources {
    /// Equal when they hold the same resources, in whatever order they were added.
    fn eq(&self, other: &Resources) -> bool {
        // Entries are unique per (name, kind) and normalized, so this is set equality.
        let theirs = &other.entries;
        self.entries.len() == theirs.len() && self.entries.iter().all(|e| theirs.contains(e))
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.entries.iter().enumerate() {
            let separator = if index == 0 { "" } else { "; " };
            write!(f, "{separator}{}:{}", entry.name, entry.amount)?;
        }
        Ok(())
    }
}

impl Amount {
    /// How many ranges or set items, for the [`MAX_ELEMENTS`] bound.
    fn len(&self) -> usize {
        match self {
            Amount::Scalar(_) => 0,
            Amount::Ranges(ranges) => ranges.len(),
            Amount::Set(items) => items.len(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Amount::Scalar(thousandths) => *thousandths == 0,
            Amount::Ranges(ranges) => ranges.is_empty(),
            Amount::Set(items) => items.is_empty(),
        }
    }

    fn same_kind(&self, other: &Amount) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Scalar(thousandths) => {
                let (whole, fraction) = (thousandths / 1000, thousandths % 1000);
                let digits = format!("{fraction:03}");
                match digits.trim_end_matches('0') {
                    "" => write!(f, "{whole}"),
                    decimals => write!(f, "{whole}.{decimals}"),
                }
            }
            Amount::Ranges(ranges) => {
                let ranges: Vec<String> = ranges.iter().map(|(b, e)| format!("{b}-{e}")).collect();
                write!(f, "[{}]", ranges.join(", "))
            }
            Amount::Set(items) => {
                let items: Vec<&str> = items.iter().map(String::as_str).collect();
                write!(f, "{{{}}}", items.join(", "))
            }
        }
    }
}

/// Where the resource with `wanted`'s name and kind is in `entries`.
fn position(entries: &[Entry], wanted: &Entry) -> Option<usize> {
    let same = |have: &Entry| have.name == wanted.name && have.amount.same_kind(&wanted.amount);
    entries.iter().position(same)
}

/// Gathers entries, bounded by [`MAX_ELEMENTS`]; a resource named twice adds up, as in Mesos.
fn collect<I>(entries: I) -> Result<Resources, ResourceError>
where
    I: Iterator<Item = Result<Entry, ResourceError>>,
{
    let mut gathered = Vec::new();
    let mut elements = 0;
    for entry in entries {
        let entry = entry?;
        elements += 1 + entry.amount.len();
        if elements > MAX_ELEMENTS {
            return Err(ResourceError::TooMany);
        }
        accumulate(&mut gathered, entry);
    }
    // The bound on a scalar holds for its sum too: `cpus:1e12;cpus:1e12` would otherwise
    // print as an amount that parses no more, and be offered as one no task may ask for.
    let over = gathered.iter().find(|entry| match entry.amount {
        Amount::Scalar(thousandths) => thousandths as f64 > MAX_SCALAR * SCALAR_SCALE,
        _ => false,
    });
    if let Some(entry) = over {
        return Err(ResourceError::Invalid {
            name: excerpt(&entry.name),
            reason: format!(
                "named more than once, its amounts add up to {}, more than {MAX_SCALAR}",
                entry.amount
            ),
        });
    }
    Ok(Resources::normalized(gathered))
}

/// Adds `entry` to the entry of the same name and kind, or appends it. Ranges are merged
/// later, once, by [`Resources::normalized`].
fn accumulate(entries: &mut Vec<Entry>, entry: Entry) {
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

/// Parses one `name:value` or `name(role):value` item.
fn parse_item(item: &str) -> Result<Entry, ResourceError> {
    let syntax = |reason: String| ResourceError::Syntax {
        item: excerpt(item),
        reason,
    };
    let (key, value) = item
        .split_once(':')
        .ok_or_else(|| syntax("expected `name:value`, for example `cpus:2`".into()))?;
    let name = match key.split_once('(') {
        None => key,
        Some((name, role)) => {
            let role = role
                .trim_end()
                .strip_suffix(')')
                .ok_or_else(|| syntax("expected `name(role)`, for example `cpus(*)`".into()))?;
            if role.trim() != "*" {
                let (item, role) = (excerpt(item), excerpt(role));
                return Err(ResourceError::UnsupportedRole { item, role });
            }
            name
        }
    };
    let value = value.trim();
    let amount = if let Some(inside) = value.strip_prefix('[') {
        let inside = inside.strip_suffix(']').ok_or_else(|| {
            syntax("unclosed `[`; write ranges as `[31000-32000, 40000-40010]`".into())
        })?;
        let ranges: Result<_, _> = elements(inside).map(parse_range).collect();
        Amount::Ranges(ranges.map_err(syntax)?)
    } else if let Some(inside) = value.strip_prefix('{') {
        let inside = inside
            .strip_suffix('}')
            .ok_or_else(|| syntax("unclosed `{`; write sets as `{a,b}`".into()))?;
        Amount::Set(elements(inside).map(str::to_string).collect())
    } else {
        let number = value
            .parse()
            .map_err(|_| syntax(format!("{:?} is not a number", excerpt(value))))?;
        Amount::Scalar(scalar_thousandths(number).map_err(syntax)?)
    };
    checked(name.trim(), amount).map_err(syntax)
}

/// The comma-separated elements between brackets; none in `[]` or `{}`.
fn elements(inside: &str) -> impl Iterator<Item = &str> {
    let empty = inside.trim().is_empty();
    inside.split(',').map(str::trim).filter(move |_| !empty)
}

/// One `begin-end` range of whole numbers that fit in 64 bits.
fn parse_range(range: &str) -> Result<(u64, u64), String> {
    let (begin, end) = range
        .split_once('-')
        .ok_or_else(|| format!("range {:?} is not `begin-end`", excerpt(range)))?;
    let bound = |text: &str| {
        let text = text.trim();
        let max = u64::MAX;
        text.parse()
            .map_err(|_| format!("{:?} is not a whole number from 0 to {max}", excerpt(text)))
    };
    Ok((bound(begin)?, bound(end)?))
}

/// A scalar in thousandths, rounded to the nearest as Mesos does.
fn scalar_thousandths(value: f64) -> Result<u64, String> {
    // NaN fails both comparisons, infinities and negatives one of them.
    if !(0.0..=MAX_SCALAR).contains(&value) {
        return Err(format!("{value} is not an amount from 0 to {MAX_SCALAR}"));
    }
    Ok((value * SCALAR_SCALE).round() as u64)
}

/// What the text and the protobuf form must both satisfy: names and set items are labels,
/// ranges do not run backwards.
fn checked(name: &str, amount: Amount) -> Result<Entry, String> {
    check_label(name).map_err(|reason| format!("name {reason}"))?;
    match &amount {
        Amount::Scalar(_) => {}
        Amount::Ranges(ranges) => {
            if let Some((begin, end)) = ranges.iter().find(|(begin, end)| begin > end) {
                return Err(format!("range {begin}-{end} begins after it ends"));
            }
        }
        Amount::Set(items) => {
            for item in items {
                check_label(item).map_err(|reason| format!("set item {reason}"))?;
            }
        }
    }
    Ok(Entry {
        name: name.to_string(),
        amount,
    })
}

/// Mesos's label syntax for names and set items: `[a-zA-Z0-9_/.-]+`.
fn check_label(label: &str) -> Result<(), String> {
    let allowed = |c: &char| c.is_ascii_alphanumeric() || "_/.-".contains(*c);
    match label.chars().find(|c| !allowed(c)) {
        _ if label.is_empty() => Err("is empty".to_string()),
        Some(bad) => Err(format!(
            "contains {bad:?}; use letters, digits, `_`, `/`, `.`, `-`"
        )),
        None => Ok(()),
    }
}

fn entry_from_proto(resource: &Resource) -> Result<Entry, ResourceError> {
    let name = resource.name();
    let invalid = |reason: String| ResourceError::Invalid {
        name: excerpt(name),
        reason,
    };
    let type_ = match resource.type_.map(|type_| type_.enum_value()) {
        Some(Ok(type_)) => type_,
        _ => return Err(invalid("no known `type`; set SCALAR, RANGES or SET".into())),
    };
    let (scalar, ranges, set) = (
        resource.scalar.as_ref(),
        resource.ranges.as_ref(),
        resource.set.as_ref(),
    );
    let amount = match (type_, scalar, ranges, set) {
        (Type::SCALAR, Some(scalar), None, None) => {
            Amount::Scalar(scalar_thousandths(scalar.value()).map_err(invalid)?)
        }
        (Type::RANGES, None, Some(ranges), None) => {
            // `begin` and `end` are required; a missing one must not read as 0.
            if ranges
                .range
                .iter()
                .any(|range| !range.has_begin() || !range.has_end())
            {
                return Err(invalid("a range lacks `begin` or `end`".into()));
            }
            Amount::Ranges(
                ranges
                    .range
                    .iter()
                    .map(|range| (range.begin(), range.end()))
                    .collect(),
            )
        }
        (Type::SET, None, None, Some(set)) => Amount::Set(set.item.iter().cloned().collect()),
        (type_, ..) => {
            let field = format!("{type_:?}").to_lowercase();
            let reason = format!(
                "type {type_:?} needs its value in `{field}` and no other \
                                  value field; resources are SCALAR, RANGES or SET"
            );
            return Err(invalid(reason));
        }
    };
    checked(name, amount).map_err(invalid)
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

/// At most 80 characters of `text`, so that an error about a huge input stays readable.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl fmt::Display for ResourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fewer = "describe fewer resources or merge ranges";
        match self {
            ResourceError::TooLong { len } => {
                write!(
                    f,
                    "resource text is {len} bytes, over the {MAX_TEXT_LEN} allowed; {fewer}"
                )
            }
            ResourceError::TooMany => {
                write!(
                    f,
                    "more than {MAX_ELEMENTS} resources, ranges and set items; {fewer}"
                )
            }
            ResourceError::Syntax { item, reason } => {
                let example = "cpus:2; ports:[31000-32000]; disks:{a,b}";
                write!(f, "resource {item:?}: {reason} (the syntax is `{example}`)")
            }
            ResourceError::UnsupportedRole { item, role } => write!(
                f,
                "resource {item:?} is reserved for role {role:?}, but the embedded agent only has \
                 unreserved resources; write `name:value` or `name(*):value`"
            ),
            ResourceError::Invalid { name, reason } => {
                write!(f, "resource {name:?}: {reason}; fix the resources sent")
            }
            ResourceError::Insufficient {
                name,
                wanted,
                available,
            } => write!(
                f,
                "not enough {name:?}: wanted {wanted}, available {available}; \
                 ask for less or wait for tasks to finish"
            ),
        }
    }
}

impl std::error::Error for ResourceError {}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT_DEFAULT: &str = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

    fn parse(text: &str) -> Resources {
        Resources::parse(text).expect("test input is valid")
    }

    fn syntax_reason(text: &str) -> (String, String) {
        match Resources::parse(text) {
            Err(ResourceError::Syntax { item, reason }) => (item, reason),
            other => panic!("{text:?} should be a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_agent_default_and_prints_it_back() {
        let agent = parse(AGENT_DEFAULT);
        assert_eq!(agent.scalar("cpus"), 2.0);
        assert_eq!(agent.scalar("mem"), 1024.0);
        assert_eq!(agent.scalar("disk"), 4096.0);
        assert_eq!(agent.scalar("gpus"), 0.0);
        assert!(agent.contains(&parse("ports:[31000-31000, 32000-32000]")));
        assert!(!agent.contains(&parse("ports:[30999-30999]")));

        let printed = agent.to_string();
        assert_eq!(printed, "cpus:2; mem:1024; disk:4096; ports:[31000-32000]");
        assert_eq!(parse(&printed), agent);
    }

    #[test]
    fn whitespace_unreserved_role_and_duplicates_are_accepted() {
        let resources = parse("  cpus(*):1.5 ; cpus : 0.5;;mem( * ):10;  ");
        assert_eq!(resources.scalar("cpus"), 2.0);
        assert_eq!(resources.scalar("mem"), 10.0);
        assert_eq!(resources.to_string(), "cpus:2; mem:10");
        assert!(parse(" ; ").is_empty());
    }

    #[test]
    fn equality_ignores_order() {
        assert_eq!(parse("mem:1;cpus:2"), parse("cpus:2;mem:1"));
        assert_ne!(parse("mem:1;cpus:2"), parse("cpus:2;mem:2"));
        assert_ne!(parse("cpus:2"), parse("cpus:2;mem:1"));
    }

    #[test]
    fn each_syntax_error_names_the_item_and_the_problem() {
        let cases = [
            ("cpus 2", "expected `name:value`"),
            ("cpus:two", "\"two\" is not a number"),
            ("cpus:", "is not a number"),
            ("ports:[1-2", "unclosed `[`"),
            ("disks:{a,b", "unclosed `{`"),
            ("ports:[5-1]", "begins after it ends"),
            ("ports:[5]", "is not `begin-end`"),
            ("ports:[1-2,]", "is not `begin-end`"),
            ("ports:[1-18446744073709551616]", "is not a whole number"),
            ("ports:[-1-5]", "is not a whole number"),
            (":2", "name is empty"),
            ("cpus(*:2", "expected `name(role)`"),
            ("cpus\u{0}\u{7f}:2", "contains '\\0'"),
            ("cpus:\u{1b}[31m", "\"\\u{1b}[31m\" is not a number"),
            ("cpus:2\u{fffd}", "is not a number"),
            ("disks:{a,,b}", "set item is empty"),
            ("disks:{a b}", "set item contains ' '"),
            ("cpus:NaN", "NaN is not an amount from 0 to"),
            ("cpus:inf", "inf is not an amount from 0 to"),
            ("cpus:-1", "-1 is not an amount from 0 to"),
            ("cpus:1e13", "10000000000000 is not an amount"),
        ];
        for (text, expected) in cases {
            let (item, reason) = syntax_reason(&format!("mem:1; {text}; disk:1"));
            assert_eq!(item, text.trim(), "{text:?}");
            assert!(
                reason.contains(expected),
                "{text:?}: {reason:?} lacks {expected:?}"
            );
            let message = Resources::parse(text).expect_err("invalid").to_string();
            assert!(message.contains(&format!("{:?}", text.trim())), "{message}");
        }
    }

    #[test]
    fn other_roles_are_refused() {
        match Resources::parse("cpus(web):2") {
            Err(error @ ResourceError::UnsupportedRole { .. }) => {
                assert!(error.to_string().contains("\"web\""), "{error}");
            }
            other => panic!("expected UnsupportedRole, got {other:?}"),
        }
    }

    #[test]
    fn input_size_is_bounded() {
        let long = "a".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(
            Resources::parse(&long),
            Err(ResourceError::TooLong {
                len: MAX_TEXT_LEN + 1
            })
        );
        assert_eq!(
            Resources::parse(&"a:1;".repeat(MAX_ELEMENTS + 1)),
            Err(ResourceError::TooMany)
        );
        let text = format!("ports:[{}]", vec!["1-1"; MAX_ELEMENTS].join(","));
        assert!(text.len() <= MAX_TEXT_LEN);
        assert_eq!(Resources::parse(&text), Err(ResourceError::TooMany));
        // A long offending item is shortened in the error.
        let (item, _) = syntax_reason(&format!("cpus:{}x", "9".repeat(1000)));
        assert!(item.chars().count() <= 81, "{item}");
    }

    #[test]
    fn scrambled_input_never_panics_and_what_parses_prints_back() {
        // Items, some broken, joined and then mutated by a fixed pseudo-random sequence so
        // that the test is reproducible.
        let items = [
            "cpus:2",
            "mem(*):0.5",
            "ports:[1-5, 7-9]",
            "ports:[3-8]",
            "disks:{a,b}",
            "gpus:1e3",
            "p:[0-18446744073709551615]",
            "x:{}",
            "cpus:",
            "[1-2",
            "{a,",
            "(*)",
            ":",
            "-",
            "é\u{0}",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % bound
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next(5) {
                text.push_str(items[next(items.len())]);
                text.push_str([";", " ; ", ""][next(3)]);
            }
            let mut chars: Vec<char> = text.chars().collect();
            for _ in 0..next(3) {
                let at = next(chars.len() + 1);
                match next(2) {
                    0 if at < chars.len() => drop(chars.remove(at)),
                    _ => chars.insert(at, ['[', ']', ',', '-', ':', '9', ' ', '\u{7f}'][next(8)]),
                }
            }
            let text: String = chars.into_iter().collect();
            if let Ok(resources) = Resources::parse(&text) {
                let printed = resources.to_string();
                assert_eq!(
                    parse(&printed),
                    resources,
                    "{text:?} printed as {printed:?}"
                );
                parsed += usize::from(!resources.is_empty());
            }
        }
        assert!(
            parsed > 1000,
            "only {parsed} scrambled texts parsed; the test exercises too little"
        );
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

    #[test]
    fn protobuf_round_trip_without_a_role() {
        let agent = parse(&format!("{AGENT_DEFAULT};disks:{{a,b}}"));
        let protos = agent.to_protos(None);
        assert_eq!(protos.len(), 5);
        for resource in &protos {
            assert!(resource.has_name() && resource.has_type());
            assert!(resource.allocation_info.is_none());
        }
        assert_eq!(protos[0].scalar.value(), 2.0);
        assert_eq!(protos[3].ranges.range[0].begin(), 31000);
        assert_eq!(protos[4].set.item, ["a", "b"]);
        assert_eq!(Resources::from_protos(&protos), Ok(agent));
    }

    #[test]
    fn protobuf_round_trip_with_an_allocation_role() {
        let offer = parse("cpus:0.5;ports:[31000-31001]");
        let protos = offer.to_protos(Some("web"));
        assert!(protos
            .iter()
            .all(|resource| resource.allocation_info.role() == "web"));
        assert_eq!(Resources::from_protos(&protos), Ok(offer));
    }

    #[test]
    fn invalid_protobuf_resources_are_errors() {
        let valid = parse("cpus:1;ports:[1-2]").to_protos(None);
        // Each case breaks the `cpus` resource in one way.
        type BreakCpus = fn(&mut Resource);
        let cases: [(&str, BreakCpus); 8] = [
            ("needs its value in `scalar`", |r| r.scalar.clear()),
            ("-1 is not an amount", |r| {
                r.scalar.mut_or_insert_default().set_value(-1.0)
            }),
            ("NaN is not an amount", |r| {
                r.scalar.mut_or_insert_default().set_value(f64::NAN)
            }),
            ("no known `type`", |r| r.clear_type_()),
            ("type TEXT needs", |r| r.set_type(Type::TEXT)),
            ("needs its value in `ranges`", |r| r.set_type(Type::RANGES)),
            ("and no other value field", |r| {
                r.set.mut_or_insert_default().item.push("a".into())
            }),
            ("name is empty", |r| r.set_name(String::new())),
        ];
        for (expected, break_cpus) in cases {
            let mut protos = valid.clone();
            break_cpus(&mut protos[0]);
            let error = Resources::from_protos(&protos).expect_err(expected);
            assert!(matches!(error, ResourceError::Invalid { .. }), "{error:?}");
            assert!(
                error.to_string().contains(expected),
                "{error} lacks {expected:?}"
            );
        }

        let mut reversed = valid.clone();
        reversed[1].ranges.mut_or_insert_default().range[0].set_begin(9);
        let error = Resources::from_protos(&reversed).expect_err("9-2");
        assert!(
            error.to_string().contains("9-2 begins after it ends"),
            "{error}"
        );

        let mut open_ended = valid;
        open_ended[1].ranges.mut_or_insert_default().range[0].clear_end();
        let error = Resources::from_protos(&open_ended).expect_err("no end");
        assert!(
            error.to_string().contains("lacks `begin` or `end`"),
            "{error}"
        );
    }

    #[test]
    fn protobuf_duplicates_add_up() {
        let mut protos = parse("cpus:1;ports:[1-2]").to_protos(None);
        protos.extend(parse("cpus:0.5;ports:[3-3]").to_protos(None));
        assert_eq!(
            Resources::from_protos(&protos),
            Ok(parse("cpus:1.5;ports:[1-3]"))
        );
    }
}
