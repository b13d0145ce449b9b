//! A JSON object written a field at a time, as `/master/state` is
//! written (`state.rs`): faster than building a tree first, for a state of
//! thousands of tasks.
//!
//! *Plumbing: a reader may skip this file.*

use crate::json::print_string;
use std::fmt::Write as _;

/// Writes one JSON object, a field at a time, with the commas between.
pub(super) struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    pub(super) fn open(out: &'a mut String) -> Object<'a> {
        out.push('{');
        Object { out, empty: true }
    }

    /// Writes the field's name; its value goes to the returned string.
    pub(super) fn key(&mut self, name: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        print_string(name, self.out);
        self.out.push(':');
        self.out
    }

    pub(super) fn string(&mut self, name: &str, value: &str) {
        print_string(value, self.key(name));
    }

    /// A number as Mesos prints it: `2.0`, `1000.0`; JSON has no NaN or
    /// infinity, so those are `0`.
    pub(super) fn number(&mut self, name: &str, value: f64) {
        let out = self.key(name);
        if value.is_finite() {
            write!(out, "{value:?}").expect("writing to a String");
        } else {
            out.push('0');
        }
    }

    pub(super) fn integer(&mut self, name: &str, value: u64) {
        write!(self.key(name), "{value}").expect("writing to a String");
    }

    pub(super) fn boolean(&mut self, name: &str, value: bool) {
        self.key(name)
            .push_str(if value { "true" } else { "false" });
    }

    /// An array, each element written by `element`.
    pub(super) fn array<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut element: impl FnMut(&mut String, T),
    ) {
        let out = self.key(name);
        out.push('[');
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            element(out, item);
        }
        out.push(']');
    }

    pub(super) fn close(self) {
        self.out.push('}');
    }
}
