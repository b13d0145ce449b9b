//! Events and calls of both APIs, decoded from protobuf bytes.
//!
//! The same bytes are tried as each message the framework reads or writes:
//! a scheduler `Event` (what the master sends), a scheduler `Call` (what the
//! embedded master reads), and the executor's `Event` and `Call`. Decoding
//! must never panic; a message that decodes must survive being encoded and
//! decoded again, and must print as JSON that parses back to JSON that
//! prints the same (JSON drops unknown fields, so the texts are compared).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_tutorial::content_type::ContentType;
use mesos_tutorial::json;
use mesos_tutorial::proto::{executor, scheduler};
use protobuf::MessageFull;

fuzz_target!(|bytes: &[u8]| {
    check::<scheduler::Event>(bytes);
    check::<scheduler::Call>(bytes);
    check::<executor::Event>(bytes);
    check::<executor::Call>(bytes);
});

fn check<M: MessageFull>(bytes: &[u8]) {
    let Ok(first) = ContentType::Protobuf.decode::<M>(bytes, "fuzzed message") else {
        return;
    };
    let encoded = ContentType::Protobuf.encode(&first);
    let second: M = match ContentType::Protobuf.decode(&encoded, "re-encoded message") {
        Ok(second) => second,
        Err(err) => panic!("a re-encoded {} does not decode: {err}", M::NAME),
    };
    // A NaN makes a message unequal to itself; its bits survived anyway.
    if first == first {
        assert_eq!(
            first,
            second,
            "{} changed in a protobuf round trip",
            M::NAME
        );
    }

    let printed = json::print(&first);
    match json::parse::<M>(&printed) {
        Ok(parsed) => assert_eq!(
            json::print(&parsed),
            printed,
            "{} printed as JSON does not parse back to itself",
            M::NAME
        ),
        // Deeply nested messages are refused as JSON by design (see
        // json::MAX_NESTING); nothing else may be.
        Err(reason) => assert!(
            reason.contains("nest"),
            "{} printed as JSON does not parse: {reason}\n{printed}",
            M::NAME
        ),
    }
}
