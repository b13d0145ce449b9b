//! Reading JSON answers (`/master/state`, the operator API's) as
//! protobuf's `google.protobuf.Value`, with a panic that says what was
//! missing: a test's way to walk an answer.

use protobuf::well_known_types::struct_::{value::Kind, Value};
use std::collections::HashMap;

/// Any JSON text.
pub fn parse(json: &str) -> Value {
    protobuf_json_mapping::parse_from_str::<Value>(json)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {json}"))
}

pub fn fields(value: &Value) -> &HashMap<String, Value> {
    match &value.kind {
        Some(Kind::StructValue(object)) => &object.fields,
        other => panic!("not an object: {other:?}"),
    }
}

pub fn at<'a>(value: &'a Value, field: &str) -> &'a Value {
    fields(value)
        .get(field)
        .unwrap_or_else(|| panic!("no field {field} in {value:?}"))
}

pub fn list(value: &Value) -> &[Value] {
    match &value.kind {
        Some(Kind::ListValue(list)) => &list.values,
        other => panic!("not an array: {other:?}"),
    }
}

pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    match &at(value, field).kind {
        Some(Kind::StringValue(text)) => text,
        other => panic!("{field} is not a string: {other:?}"),
    }
}

pub fn number(value: &Value) -> f64 {
    match value.kind {
        Some(Kind::NumberValue(n)) => n,
        ref other => panic!("not a number: {other:?}"),
    }
}

pub fn boolean(value: &Value) -> bool {
    match value.kind {
        Some(Kind::BoolValue(b)) => b,
        ref other => panic!("not a boolean: {other:?}"),
    }
}
