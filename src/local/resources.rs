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
//! | ranges | `ports:[31000-32000]`  | inclusive ranges; a task takes single ports   |
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
//! exact, and a scalar that reaches zero disappears.
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
        let mut entries = Vec::new();
        let mut elements = 0;
        // Like Mesos, empty items (`cpus:1;;mem:2;`) are skipped.
        for item in text.split(';').map(str::trim).filter(|item| !item.is_empty()) {
            let entry = parse_item(item)?;
            elements += 1 + entry.amount.len();
            if elements > MAX_ELEMENTS {
                return Err(ResourceError::TooMany);
            }
            accumulate(&mut entries, entry);
        }
        Ok(Resources::normalized(entries))
    }

    /// From protobuf resources (e.g. a task's resources). Drops nothing silently: a
    /// resource with a type/value mismatch (type SCALAR but no scalar, negative or NaN
    /// scalar, range with begin > end) is an error.
    pub fn from_protos(resources: &[Resource]) -> Result<Resources, ResourceError> {
        let mut entries = Vec::new();
        let mut elements = 0;
        for resource in resources {
            elements += 1 + resource.ranges.range.len() + resource.set.item.len();
            if elements > MAX_ELEMENTS {
                return Err(ResourceError::TooMany);
            }
            accumulate(&mut entries, entry_from_proto(resource)?);
        }
        Ok(Resources::normalized(entries))
    }

    /// Protobuf form; every Resource has name, type and value set; `allocation_info.role`
    /// set to `role` when `role` is Some (offers to a framework carry it), none otherwise.
    /// The deprecated `role` field is left unset: its default `*` already says "unreserved".
    pub fn to_protos(&self, role: Option<&str>) -> Vec<Resource> {
        self.entries
            .iter()
            .map(|entry| {
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
                resource
            })
            .collect()
    }

    /// Whether there are no resources at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total of a scalar resource (0.0 when absent).
    pub fn scalar(&self, name: &str) -> f64 {
        self.entries
            .iter()
            .find_map(|entry| match entry.amount {
                Amount::Scalar(thousandths) if entry.name == name => Some(thousandths),
                _ => None,
            })
            .map_or(0.0, |thousandths| thousandths as f64 / SCALAR_SCALE)
    }

    /// Whether every resource in `other` is available in `self` (scalars by amount,
    /// ranges/sets by inclusion).
    pub fn contains(&self, other: &Resources) -> bool {
        other.entries.iter().all(|wanted| self.contains_entry(wanted))
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
        if let Some(wanted) = other.entries.iter().find(|wanted| !self.contains_entry(wanted)) {
            return Err(ResourceError::Insufficient {
                name: wanted.name.clone(),
                wanted: excerpt(&wanted.amount.to_string()),
                available: self
                    .find(wanted)
                    .map_or_else(|| "none".to_string(), |have| excerpt(&have.to_string())),
            });
        }
        for wanted in &other.entries {
            let have = self
                .entries
                .iter_mut()
                .find(|have| have.name == wanted.name && have.amount.same_kind(&wanted.amount));
            match (have.map(|have| &mut have.amount), &wanted.amount) {
                (Some(Amount::Scalar(have)), Amount::Scalar(take)) => *have -= take,
                (Some(Amount::Ranges(have)), Amount::Ranges(take)) => {
                    *have = subtract_ranges(have, take)
                }
                (Some(Amount::Set(have)), Amount::Set(take)) => have.retain(|i| !take.contains(i)),
                // Unreachable: every wanted entry was found above with the same kind.
                _ => {}
            }
        }
        self.entries.retain(|entry| !entry.amount.is_empty());
        Ok(())
    }

    /// Merges the ranges of every entry and drops entries that became empty.
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
        self.entries
            .iter()
            .find(|have| have.name == wanted.name && have.amount.same_kind(&wanted.amount))
            .map(|have| &have.amount)
    }

    fn contains_entry(&self, wanted: &Entry) -> bool {
        match (self.find(wanted), &wanted.amount) {
            (Some(Amount::Scalar(have)), Amount::Scalar(want)) => have >= want,
            (Some(Amount::Ranges(have)), Amount::Ranges(want)) => {
                want.iter().all(|&(begin, end)| {
                    // `have` is sorted and merged, so only the first range that ends at
                    // or after `begin` can hold all of `begin-end`.
                    let candidate = have.partition_point(|&(_, have_end)| have_end < begin);
                    have.get(candidate)
                        .is_some_and(|&(have_begin, have_end)| have_begin <= begin && end <= have_end)
                })
            }
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
        self.entries.len() == other.entries.len()
            && self.entries.iter().all(|entry| other.entries.contains(entry))
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
                if fraction == 0 {
                    write!(f, "{whole}")
                } else {
                    let digits = format!("{fraction:03}");
                    write!(f, "{whole}.{}", digits.trim_end_matches('0'))
                }
            }
            Amount::Ranges(ranges) => {
                let ranges: Vec<String> = ranges.iter().map(|(b, e)| format!("{b}-{e}")).collect();
                write!(f, "[{}]", ranges.join(", "))
            }
            Amount::Set(items) => {
                write!(f, "{{{}}}", items.iter().cloned().collect::<Vec<_>>().join(", "))
            }
        }
    }
}

/// Adds `entry` to the entry of the same name and kind, or appends it. Ranges are merged
/// later, once, by [`Resources::normalized`].
fn accumulate(entries: &mut Vec<Entry>, entry: Entry) {
    let existing = entries
        .iter_mut()
        .find(|have| have.name == entry.name && have.amount.same_kind(&entry.amount));
    match (existing.map(|have| &mut have.amount), entry.amount) {
        (Some(Amount::Scalar(have)), Amount::Scalar(more)) => *have = have.saturating_add(more),
        (Some(Amount::Ranges(have)), Amount::Ranges(more)) => have.extend(more),
        (Some(Amount::Set(have)), Amount::Set(more)) => have.extend(more),
        (_, amount) => entries.push(Entry { name: entry.name, amount }),
    }
}

/// Parses one `name:value` or `name(role):value` item.
fn parse_item(item: &str) -> Result<Entry, ResourceError> {
    let syntax = |reason: String| ResourceError::Syntax { item: excerpt(item), reason };
    let (key, value) = item
        .split_once(':')
        .ok_or_else(|| syntax("expected `name:value`, for example `cpus:2`".to_string()))?;
    let key = key.trim();
    let name = match key.split_once('(') {
        None => key,
        Some((name, role)) => {
            let role = role
                .strip_suffix(')')
                .ok_or_else(|| syntax("expected `name(role)`, for example `cpus(*)`".into()))?;
            if role.trim() != "*" {
                let (item, role) = (excerpt(item), excerpt(role));
                return Err(ResourceError::UnsupportedRole { item, role });
            }
            name.trim()
        }
    };
    check_label(name).map_err(|reason| syntax(format!("resource name {reason}")))?;

    let value = value.trim();
    let amount = if let Some(inside) = value.strip_prefix('[') {
        let inside = inside
            .strip_suffix(']')
            .ok_or_else(|| syntax("unclosed `[`; write ranges as `[31000-32000, 40000-40010]`".into()))?;
        let mut ranges = Vec::new();
        for range in inside.split(',').map(str::trim).filter(|_| !inside.trim().is_empty()) {
            let (begin, end) = range
                .split_once('-')
                .ok_or_else(|| syntax(format!("range `{}` is not `begin-end`", excerpt(range))))?;
            let (begin, end) = (parse_bound(begin).map_err(syntax)?, parse_bound(end).map_err(syntax)?);
            if begin > end {
                return Err(syntax(format!("range `{begin}-{end}` begins after it ends")));
            }
            ranges.push((begin, end));
        }
        Amount::Ranges(ranges)
    } else if let Some(inside) = value.strip_prefix('{') {
        let inside = inside
            .strip_suffix('}')
            .ok_or_else(|| syntax("unclosed `{`; write sets as `{a,b}`".into()))?;
        let mut items = BTreeSet::new();
        for set_item in inside.split(',').map(str::trim).filter(|_| !inside.trim().is_empty()) {
            check_label(set_item).map_err(|reason| syntax(format!("set item {reason}")))?;
            items.insert(set_item.to_string());
        }
        Amount::Set(items)
    } else {
        let number: f64 = value
            .parse()
            .map_err(|_| syntax(format!("`{}` is not a number", excerpt(value))))?;
        Amount::Scalar(scalar_thousandths(number).map_err(syntax)?)
    };
    Ok(Entry { name: name.to_string(), amount })
}

/// One end of a range: a whole number that fits in 64 bits.
fn parse_bound(text: &str) -> Result<u64, String> {
    let text = text.trim();
    text.parse()
        .map_err(|_| format!("`{}` is not a whole number from 0 to {}", excerpt(text), u64::MAX))
}

/// A scalar in thousandths, rounded to the nearest as Mesos does.
fn scalar_thousandths(value: f64) -> Result<u64, String> {
    if !value.is_finite() {
        return Err(format!("`{value}` is not a finite number"));
    }
    if value < 0.0 {
        return Err(format!("`{value}` is negative; resources are amounts of 0 or more"));
    }
    if value > MAX_SCALAR {
        return Err(format!("`{value}` is larger than the supported {MAX_SCALAR}"));
    }
    Ok((value * SCALAR_SCALE).round() as u64)
}

/// Mesos's label syntax for names and set items: `[a-zA-Z0-9_/.-]+`.
fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("is empty".to_string());
    }
    match label.chars().find(|c| !(c.is_ascii_alphanumeric() || "_/.-".contains(*c))) {
        Some(bad) => Err(format!("contains {bad:?}; use letters, digits, `_`, `/`, `.`, `-`")),
        None => Ok(()),
    }
}

fn entry_from_proto(resource: &Resource) -> Result<Entry, ResourceError> {
    let name = resource.name();
    let invalid = |reason: String| ResourceError::Invalid { name: excerpt(name), reason };
    check_label(name).map_err(|reason| invalid(format!("the name {reason}")))?;
    let type_ = match resource.type_ {
        None => return Err(invalid("no `type`; set SCALAR, RANGES or SET".into())),
        Some(type_) => type_
            .enum_value()
            .map_err(|number| invalid(format!("unknown type {number}")))?,
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
            let mut pairs = Vec::with_capacity(ranges.range.len());
            for range in &ranges.range {
                if !range.has_begin() || !range.has_end() {
                    return Err(invalid("a range without `begin` or `end`".into()));
                }
                let (begin, end) = (range.begin(), range.end());
                if begin > end {
                    return Err(invalid(format!("range {begin}-{end} begins after it ends")));
                }
                pairs.push((begin, end));
            }
            Amount::Ranges(pairs)
        }
        (Type::SET, None, None, Some(set)) => {
            let mut items = BTreeSet::new();
            for item in &set.item {
                check_label(item).map_err(|reason| invalid(format!("set item {reason}")))?;
                items.insert(item.clone());
            }
            Amount::Set(items)
        }
        (Type::TEXT, ..) => return Err(invalid("type TEXT is for attributes, not resources".into())),
        (type_, ..) => {
            let field = match type_ {
                Type::SCALAR => "scalar",
                Type::RANGES => "ranges",
                _ => "set",
            };
            return Err(invalid(format!("type {type_:?} needs `{field}` and only `{field}` set")));
        }
    };
    Ok(Entry { name: name.to_string(), amount })
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
        match self {
            ResourceError::TooLong { len } => write!(
                f,
                "resource text is {len} bytes, more than the {MAX_TEXT_LEN} allowed; \
                 describe fewer resources or merge ranges"
            ),
            ResourceError::TooMany => write!(
                f,
                "more than {MAX_ELEMENTS} resources, ranges and set items; \
                 describe fewer resources or merge ranges"
            ),
            ResourceError::Syntax { item, reason } => write!(
                f,
                "resource {item:?}: {reason} (the syntax is `cpus:2; ports:[31000-32000]; disks:{{a,b}}`)"
            ),
            ResourceError::UnsupportedRole { item, role } => write!(
                f,
                "resource {item:?} is reserved for role {role:?}, but the embedded agent only has \
                 unreserved resources; write `name:value` or `name(*):value`"
            ),
            ResourceError::Invalid { name, reason } => {
                write!(f, "resource {name:?}: {reason}; fix the resources sent")
            }
            ResourceError::Insufficient { name, wanted, available } => write!(
                f,
                "not enough {name:?}: wanted {wanted}, available {available}; \
                 ask for less or wait for tasks to finish"
            ),
        }
    }
}

impl std::error::Error for ResourceError {}
