//! Events and calls of both APIs, decoded from JSON text.
//!
//! The same bytes are tried as a scheduler `Event` and `Call` and an
//! executor `Event` and `Call` in Mesos's JSON. Decoding must never panic
//! (nor recurse until the stack overflows, which aborts); a message that
//! parses must print as JSON that parses to the same message, and must
//! encode as protobuf (all its required fields are set) that decodes to the
//! same message.

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
    let Ok(first) = ContentType::Json.decode::<M>(bytes, "fuzzed message") else {
        return;
    };
    // A NaN makes a message unequal to itself; only the texts are compared.
    let comparable = first == first;

    let printed = json::print(&first);
    let second: M = match json::parse(&printed) {
        Ok(second) => second,
        Err(reason) => panic!("{} printed as {printed} does not parse: {reason}", M::NAME),
    };
    if comparable {
        assert_eq!(first, second, "{} changed in a JSON round trip", M::NAME);
    }
    assert_eq!(
        json::print(&second),
        printed,
        "{} prints differently",
        M::NAME
    );

    let encoded = ContentType::Protobuf.encode(&first);
    let third: M = match ContentType::Protobuf.decode(&encoded, "protobuf of parsed JSON") {
        Ok(third) => third,
        Err(err) => panic!(
            "{} parsed from JSON does not survive protobuf: {err}",
            M::NAME
        ),
    };
    if comparable {
        assert_eq!(first, third, "{} changed in a protobuf round trip", M::NAME);
    }
}
