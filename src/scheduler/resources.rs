//! Arithmetic on offered resources.
//!
//! *Plumbing: a reader may skip this file.* `tasks.rs` says why tasks are
//! cut out of an offer's own entries; this file does the cutting.

use crate::proto::mesos::{value, Resource};

/// Scalars in offers are decimals; compare them with a little slack.
const EPSILON: f64 = 1e-6;

/// Cuts `amount` of the scalar resource `name` out of `left`: copies of the
/// offered entries (role, reservation and all), each holding the part taken
/// from it. `None`, and `left` untouched, if there is not enough.
pub fn take(left: &mut [Resource], name: &str, amount: f64) -> Option<Vec<Resource>> {
    let matching = |r: &Resource| r.name() == name && r.type_() == value::Type::SCALAR;
    let available: f64 = left
        .iter()
        .filter(|r| matching(r))
        .map(|r| r.scalar.value())
        .sum();
    if available + EPSILON < amount {
        return None;
    }
    let mut needed = amount;
    let mut taken = Vec::new();
    for resource in left.iter_mut().filter(|r| matching(r)) {
        if needed <= EPSILON {
            break;
        }
        let here = resource.scalar.value();
        let part = here.min(needed);
        if part <= EPSILON {
            continue;
        }
        let mut piece = resource.clone();
        // Mesos counts scalars in thousandths; round to stay exact.
        piece
            .scalar
            .mut_or_insert_default()
            .set_value(thousandths(part));
        resource
            .scalar
            .mut_or_insert_default()
            .set_value(thousandths(here - part));
        needed -= part;
        taken.push(piece);
    }
    Some(taken)
}

fn thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The total of a scalar resource (`cpus`, `mem`, `disk`) in a list.
pub fn scalar(resources: &[Resource], name: &str) -> f64 {
    resources
        .iter()
        .filter(|r| r.name() == name && r.type_() == value::Type::SCALAR)
        .map(|r| r.scalar.value())
        .sum()
}

/// An offer of `cpus` and `mem` (MB), unreserved, for unit tests.
#[cfg(test)]
pub(crate) fn test_offer(cpus: f64, mem: f64) -> crate::proto::mesos::Offer {
    let mut offer = crate::proto::mesos::Offer::new();
    for (name, amount) in [("cpus", cpus), ("mem", mem)] {
        let mut resource = Resource::new();
        resource.set_name(name.into());
        resource.set_type(value::Type::SCALAR);
        resource.scalar.mut_or_insert_default().set_value(amount);
        offer.resources.push(resource);
    }
    offer
}
