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
//!
//! [`parse`](Resources::parse) and the protobuf conversions are in `parse.rs`; the
//! arithmetic ([`add`](Resources::add), [`subtract`](Resources::subtract),
//! [`contains`](Resources::contains)) in `arith.rs`.

mod arith;
mod parse;

use std::collections::BTreeSet;
use std::fmt;

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
