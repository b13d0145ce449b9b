//! The embedded cluster's resource syntax (`--resources`), and the
//! arithmetic on what it parses.
//!
//! The input is one or two resource texts, separated by the first 0xff byte
//! (bytes that are not UTF-8 become U+FFFD). Parsing must never panic; what
//! parses must print as text that parses to the same resources, and survive
//! the protobuf form the master offers. Two texts that parse are added and
//! subtracted: a sum contains both parts, and taking a part back out of it
//! is always possible.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mesos_tutorial::local::resources::Resources;

fuzz_target!(|input: &[u8]| {
    let (a, b) = match input.iter().position(|&byte| byte == 0xff) {
        Some(at) => (&input[..at], Some(&input[at + 1..])),
        None => (input, None),
    };
    let Some(a) = parse_and_check(a) else { return };
    let Some(b) = b.and_then(parse_and_check) else {
        return;
    };
    let mut sum = a.clone();
    sum.add(&b);
    assert!(sum.contains(&a), "{sum} lacks {a}");
    assert!(sum.contains(&b), "{sum} lacks {b}");
    let mut rest = sum.clone();
    rest.subtract(&b)
        .unwrap_or_else(|err| panic!("{b} cannot be taken from {sum}: {err}"));
    // Subtracting succeeds exactly when the part is contained; a refusal
    // changes nothing.
    let before = rest.clone();
    let contained = rest.contains(&a);
    assert_eq!(rest.subtract(&a).is_ok(), contained, "{before} minus {a}");
    if !contained {
        assert_eq!(rest, before);
    }
});

fn parse_and_check(bytes: &[u8]) -> Option<Resources> {
    let text = String::from_utf8_lossy(bytes);
    let resources = Resources::parse(&text).ok()?;

    let printed = resources.to_string();
    let reparsed = Resources::parse(&printed).unwrap_or_else(|err| {
        panic!("{text:?} prints as {printed:?}, which does not parse: {err}")
    });
    assert_eq!(reparsed, resources, "{text:?} printed as {printed:?}");
    assert_eq!(reparsed.to_string(), printed);

    for role in [None, Some("*")] {
        let protos = resources.to_protos(role);
        let back = Resources::from_protos(&protos)
            .unwrap_or_else(|err| panic!("{printed} as protobuf is refused: {err}"));
        assert_eq!(back, resources);
    }

    assert!(resources.contains(&resources));
    let mut none = resources.clone();
    none.subtract(&resources)
        .expect("resources contain themselves");
    assert!(none.is_empty(), "{printed} minus itself leaves {none}");
    Some(resources)
}
