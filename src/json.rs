//! Mesos's JSON dialect, for the `application/json` content type.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Mesos maps protobuf to JSON its own way, which is close to, but not the
//! same as, the proto3 JSON mapping that JSON libraries implement:
//!
//! - field names are the `.proto` names (`framework_id`, not `frameworkId`);
//! - enums are their names (`"SUBSCRIBE"`);
//! - `bytes` are Base64 strings;
//! - 64-bit integers are JSON **numbers**. The proto3 mapping writes them as
//!   strings, and Mesos's parser refuses a string for an integer field, so a
//!   port range printed the proto3 way makes a real master reject the call.
//!
//! Printing is therefore done here, by walking the message with protobuf
//! reflection. Parsing uses `protobuf-json-mapping`, which accepts both forms
//! of integers, and skips unknown fields as Mesos's own parser does.

use protobuf::reflect::{ReflectFieldRef, ReflectValueRef};
use protobuf::{MessageDyn, MessageFull};
use std::fmt::Write as _;

/// Prints a message as Mesos's JSON.
pub fn print(message: &dyn MessageDyn) -> String {
    let mut out = String::with_capacity(256);
    print_message(message, &mut out);
    out
}

/// How deeply arrays and objects may nest. Mesos's messages nest about ten
/// levels; the JSON parser recurses once per level (even into fields it
/// skips), so a hostile `[[[[...` would otherwise exhaust the stack and abort
/// the process.
pub const MAX_NESTING: usize = 64;

/// Parses Mesos's JSON (or proto3 JSON) into a message, ignoring fields this
/// project does not declare. Missing required fields are an error.
pub fn parse<M: MessageFull>(json: &str) -> Result<M, String> {
    check_before_parsing(json)?;
    let options = protobuf_json_mapping::ParseOptions {
        ignore_unknown_fields: true,
        ..Default::default()
    };
    protobuf_json_mapping::parse_from_str_with_options::<M>(json, &options).map_err(|err| {
        // The mapping's own message for a missing required field is vague.
        let text = err.to_string();
        if text.contains("initialized") {
            format!("{text}: a required field is missing")
        } else {
            text
        }
    })
}

/// Refuses, before the parser runs, two things it cannot be trusted with:
///
/// - arrays or objects nested deeper than [`MAX_NESTING`];
/// - a string escape JSON does not have. The parser's lexer reads `\` and
///   a digit as a protobuf-text octal escape, takes `8` and `9` for octal
///   digits, and overflows a byte on `"\378"`: a panic wherever overflow
///   checks are on, as in every debug build.
///
/// The parser also accepts single-quoted strings, so a string ends only at
/// the quote that opened it (otherwise `'"'` would hide every bracket after
/// it).
fn check_before_parsing(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let (mut quote, mut escaped): (Option<char>, bool) = (None, false);
    for c in text.chars() {
        if let Some(open) = quote {
            match c {
                // JSON's escapes, plus `\'` for single-quoted strings.
                '"' | '\'' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u' if escaped => {
                    escaped = false
                }
                _ if escaped => {
                    return Err(format!(
                        "a string contains the escape \\{}, which JSON does not have",
                        c.escape_debug()
                    ))
                }
                '\\' => escaped = true,
                _ if c == open => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "arrays or objects nest more than {MAX_NESTING} levels deep"
                    ));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn print_message(message: &dyn MessageDyn, out: &mut String) {
    out.push('{');
    let mut first = true;
    for field in message.descriptor_dyn().fields() {
        let mut separator = |out: &mut String| {
            if !first {
                out.push(',');
            }
            first = false;
            print_string(field.name(), out);
            out.push(':');
        };
        match field.get_reflect(message) {
            ReflectFieldRef::Optional(value) => {
                if let Some(value) = value.value() {
                    separator(out);
                    print_value(value, out);
                }
            }
            ReflectFieldRef::Repeated(values) => {
                if !values.is_empty() {
                    separator(out);
                    out.push('[');
                    for i in 0..values.len() {
                        if i > 0 {
                            out.push(',');
                        }
                        print_value(values.get(i), out);
                    }
                    out.push(']');
                }
            }
            // Mesos's messages used here have no map fields; a map would be
            // an object keyed by its keys, which this project never sends.
            ReflectFieldRef::Map(_) => {}
        }
    }
    out.push('}');
}

fn print_value(value: ReflectValueRef<'_>, out: &mut String) {
    match value {
        ReflectValueRef::U32(v) => write!(out, "{v}").expect("writing to a String"),
        ReflectValueRef::U64(v) => write!(out, "{v}").expect("writing to a String"),
        ReflectValueRef::I32(v) => write!(out, "{v}").expect("writing to a String"),
        ReflectValueRef::I64(v) => write!(out, "{v}").expect("writing to a String"),
        ReflectValueRef::F32(v) => print_float(f64::from(v), out),
        ReflectValueRef::F64(v) => print_float(v, out),
        ReflectValueRef::Bool(v) => out.push_str(if v { "true" } else { "false" }),
        ReflectValueRef::String(v) => print_string(v, out),
        ReflectValueRef::Bytes(v) => {
            out.push('"');
            base64_encode(v, out);
            out.push('"');
        }
        ReflectValueRef::Enum(descriptor, number) => match descriptor.value_by_number(number) {
            Some(value) => print_string(value.name(), out),
            None => write!(out, "{number}").expect("writing to a String"),
        },
        ReflectValueRef::Message(message) => print_message(&*message, out),
    }
}

fn print_float(value: f64, out: &mut String) {
    // JSON has no NaN or infinity; Mesos never sends them either.
    if value.is_finite() {
        write!(out, "{value}").expect("writing to a String");
    } else {
        out.push('0');
    }
}

/// Appends `value` as a JSON string: quoted, with `"`, `\` and control
/// characters escaped.
pub fn print_string(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                write!(out, "\\u{:04x}", c as u32).expect("writing to a String")
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends the standard Base64 encoding (with padding) of `bytes`: how
/// Mesos's JSON writes a `bytes` field, and how HTTP basic authentication
/// writes `principal:secret`. The `base64` crate does the encoding.
pub fn base64_encode(bytes: &[u8], out: &mut String) {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::{value, Resource, TaskStatus};

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        let cases: [(&[u8], &str); 5] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (&[0xfb, 0xff], "+/8="),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            base64_encode(input, &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn sixty_four_bit_integers_are_numbers_not_strings() {
        let mut range = value::Range::new();
        range.set_begin(31000);
        range.set_end(32000);
        let mut resource = Resource::new();
        resource.set_name("ports".into());
        resource.set_type(value::Type::RANGES);
        resource.ranges.mut_or_insert_default().range.push(range);
        let json = print(&resource);
        assert_eq!(
            json,
            r#"{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]}}"#
        );
        let back: Resource = parse(&json).unwrap();
        assert_eq!(back, resource);
    }

    #[test]
    fn bytes_and_strings_survive_a_round_trip() {
        let mut status = TaskStatus::new();
        status
            .task_id
            .mut_or_insert_default()
            .set_value("tab\t\"quoted\" \u{1}".into());
        status.set_state(crate::proto::mesos::TaskState::TASK_RUNNING);
        status.set_uuid(vec![0, 1, 2, 250, 251, 252, 253]);
        let json = print(&status);
        assert!(json.contains(r#""uuid":"AAEC+vv8/Q==""#), "{json}");
        let back: TaskStatus = parse(&json).unwrap();
        assert_eq!(back, status);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            r#"{{"task_id":{{"value":"1"}},"x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = parse::<TaskStatus>(&deep).unwrap_err();
        assert!(err.contains("nest"), "{err}");
        // Brackets inside strings are text, not nesting.
        let text = format!(
            r#"{{"task_id":{{"value":"{}"}},"state":"TASK_RUNNING"}}"#,
            "[".repeat(500)
        );
        assert!(parse::<TaskStatus>(&text).is_ok());
        // A single-quoted string is a string too, and hides nothing.
        let hidden = format!(
            r#"{{"note":'"',"x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse::<TaskStatus>(&hidden).unwrap_err().contains("nest"));
    }

    #[test]
    fn escapes_json_does_not_have_are_refused_before_parsing() {
        // The parser would read `\378` as an octal escape and overflow.
        let err = parse::<TaskStatus>(r#"{"task_id":{"value":"\378"},"state":"TASK_RUNNING"}"#)
            .unwrap_err();
        assert!(err.contains("escape \\3"), "{err}");
        // JSON's own escapes parse.
        let status: TaskStatus =
            parse(r#"{"task_id":{"value":"\"\\\/\b\f\n\r\t\u0041"},"state":"TASK_RUNNING"}"#)
                .unwrap();
        assert_eq!(status.task_id.value(), "\"\\/\u{8}\u{c}\n\r\tA");
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_required_fields_are_errors() {
        let status: TaskStatus =
            parse(r#"{"task_id":{"value":"1"},"state":"TASK_FINISHED","future_field":[1,2]}"#)
                .unwrap();
        assert_eq!(status.task_id.value(), "1");
        let err = parse::<TaskStatus>(r#"{"task_id":{"value":"1"}}"#).unwrap_err();
        assert!(err.contains("required"), "{err}");
    }
}
