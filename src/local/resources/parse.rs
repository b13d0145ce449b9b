//! Resources from Mesos's text syntax (the agent's `--resources`) and from
//! protobufs (a framework's tasks), and back to protobufs for offers. Every
//! mistake is an error that names the item.

use super::arith::accumulate;
use super::{excerpt, Amount, Entry, ResourceError, Resources};
use super::{MAX_ELEMENTS, MAX_SCALAR, MAX_TEXT_LEN, SCALAR_SCALE};
use crate::proto::mesos::value::{self, Type};
use crate::proto::mesos::Resource;

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
                let item = excerpt(item);
                let role = excerpt(role);
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
}

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
