//! Our `.proto` files match Mesos 1.11, field for field.
//!
//! `src/proto/*.proto` are written by hand, with only the messages and
//! fields this tutorial uses. Each field they declare must exist in Mesos
//! 1.11 with the same name, number, label and type, and each enum value
//! with the same number: otherwise our bytes would mean something else to
//! a real master. Fields we leave out are fine (protobuf skips unknown
//! fields on the wire).
//!
//! The reference, `tests/data/mesos-v1.11-fields.tsv`, lists every field
//! and enum value of Mesos 1.11's `mesos/v1/*.proto` files, one per line:
//! `kind scope name number label type oneof`, separated by tabs. The
//! operator API's `mesos/v1/master/master.proto` is not among them; its
//! fields and values are in `tests/data/mesos-v1.11-master-fields.tsv`,
//! in the same columns, read from that file at tag 1.11.0 (message and
//! enum types by their full names, as protobuf resolves them).

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a `.proto` file declares: a field, or an enum value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Declaration {
    /// `label type name = number` inside message `scope`.
    Field {
        scope: String,
        name: String,
        number: i64,
        label: String,
        kind: String,
    },
    /// `name = number` inside enum `scope`.
    Value {
        scope: String,
        name: String,
        number: i64,
    },
}

const SCALARS: [&str; 15] = [
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
];

/// The reference table: fields (scope, name) -> (number, label, type), enum
/// values (scope, name) -> number, and every scope it names.
struct Reference {
    fields: HashMap<(String, String), (i64, String, String)>,
    values: HashMap<(String, String), i64>,
    scopes: HashSet<String>,
}

fn load_reference(text: &str) -> Reference {
    let mut reference = Reference {
        fields: HashMap::new(),
        values: HashMap::new(),
        scopes: HashSet::new(),
    };
    for (index, line) in text.lines().enumerate().skip(1) {
        let columns: Vec<&str> = line.split('\t').collect();
        assert!(
            columns.len() >= 4,
            "line {} of the table: {line:?}",
            index + 1
        );
        let (scope, name) = (columns[1].to_string(), columns[2].to_string());
        let number: i64 = columns[3].parse().expect("a number in the table");
        reference.scopes.insert(scope.clone());
        match columns[0] {
            "field" => {
                let (label, kind) = (columns[4].to_string(), columns[5].to_string());
                reference
                    .fields
                    .insert((scope, name), (number, label, kind));
            }
            _ => {
                reference.values.insert((scope, name), number);
            }
        }
    }
    reference
}

/// The text without `//` and `/* */` comments.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Words, numbers, quoted strings and single punctuation characters.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
        let end = if c == '"' {
            let close = text[start + 1..]
                .find('"')
                .map_or(text.len(), |i| start + i + 2);
            while chars.peek().is_some_and(|&(i, _)| i < close) {
                chars.next();
            }
            close
        } else if word(c) {
            while chars.peek().is_some_and(|&(_, c)| word(c)) {
                chars.next();
            }
            chars.peek().map_or(text.len(), |&(i, _)| i)
        } else {
            start + c.len_utf8()
        };
        tokens.push(text[start..end].to_string());
    }
    tokens
}

/// Every field and enum value a `.proto` text declares, with its scope
/// (`mesos.v1.TaskStatus.Reason`).
fn parse(text: &str) -> Vec<Declaration> {
    let tokens = tokens(&strip_comments(text));
    let at = |i: usize| tokens.get(i).map(String::as_str).unwrap_or("");
    let skip_statement = |mut i: usize| {
        while i < tokens.len() && tokens[i] != ";" {
            i += 1;
        }
        i + 1
    };
    let (mut package, mut stack, mut out, mut i) = (String::new(), Vec::new(), Vec::new(), 0);
    while i < tokens.len() {
        let token = at(i);
        match token {
            "package" => {
                package = at(i + 1).to_string();
                i = skip_statement(i);
            }
            "syntax" | "import" | "option" | "reserved" | "extensions" => i = skip_statement(i),
            "message" | "enum" if at(i + 2) == "{" => {
                stack.push((token == "enum", Some(at(i + 1).to_string())));
                i += 3;
            }
            "oneof" if at(i + 2) == "{" => {
                stack.push((false, None));
                i += 3;
            }
            "}" => {
                stack.pop();
                i += 1;
            }
            _ => {
                let names = stack.iter().filter_map(|(_, name)| name.clone());
                let scope = std::iter::once(package.clone())
                    .chain(names)
                    .collect::<Vec<_>>();
                let scope = scope.join(".");
                let number = |j: usize| at(j).parse::<i64>().unwrap_or(i64::MIN);
                if stack.last().is_some_and(|(is_enum, _)| *is_enum) {
                    out.push(Declaration::Value {
                        scope,
                        name: token.to_string(),
                        number: number(i + 2),
                    });
                } else {
                    let labelled = matches!(token, "optional" | "required" | "repeated");
                    let (label, j) = if labelled {
                        (token, i + 1)
                    } else {
                        ("optional", i)
                    };
                    out.push(Declaration::Field {
                        scope,
                        name: at(j + 1).to_string(),
                        number: number(j + 3),
                        label: label.to_string(),
                        kind: at(j).to_string(),
                    });
                }
                i = skip_statement(i);
            }
        }
    }
    out
}

/// A field's type as the table writes it: scalars as they are, message and
/// enum types by their full name, found from the innermost scope outwards
/// as protobuf resolves them.
fn resolve(kind: &str, scope: &str, reference: &Reference) -> String {
    if SCALARS.contains(&kind) {
        return kind.to_string();
    }
    if let Some(full) = kind.strip_prefix('.') {
        return full.to_string();
    }
    let mut parts: Vec<&str> = scope.split('.').collect();
    while !parts.is_empty() {
        let candidate = format!("{}.{kind}", parts.join("."));
        if reference.scopes.contains(&candidate) {
            return candidate;
        }
        parts.pop();
    }
    kind.to_string()
}

/// One line per declaration that Mesos 1.11 does not have as written.
fn mismatches(declarations: &[Declaration], reference: &Reference) -> Vec<String> {
    let mut found = Vec::new();
    for declaration in declarations {
        match declaration {
            Declaration::Value {
                scope,
                name,
                number,
            } => {
                let want = reference.values.get(&(scope.clone(), name.clone()));
                if want != Some(number) {
                    found.push(format!(
                        "enum value {scope}.{name} = {number}; Mesos 1.11 has {want:?}"
                    ));
                }
            }
            Declaration::Field {
                scope,
                name,
                number,
                label,
                kind,
            } => {
                let got = (*number, label.clone(), resolve(kind, scope, reference));
                match reference.fields.get(&(scope.clone(), name.clone())) {
                    None => found.push(format!("field {scope}.{name} is not in Mesos 1.11")),
                    Some(want) if *want != got => found.push(format!(
                        "field {scope}.{name} is {got:?}; Mesos 1.11 has {want:?}"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    found
}

/// Both tables, as one: `mesos.proto` and the scheduler and executor APIs,
/// and the operator API (`master.proto`).
fn reference() -> Reference {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut text = String::new();
    for table in REFERENCE_TABLES {
        let table = std::fs::read_to_string(data.join(table)).expect("a Mesos 1.11 field table");
        // Each table's first line names its columns.
        text.extend(
            table
                .lines()
                .skip(usize::from(!text.is_empty()))
                .map(|l| format!("{l}\n")),
        );
    }
    load_reference(&text)
}

/// The reference tables under `tests/data/`.
const REFERENCE_TABLES: [&str; 2] = ["mesos-v1.11-fields.tsv", "mesos-v1.11-master-fields.tsv"];

#[test]
fn every_declared_field_and_enum_value_matches_mesos_1_11() {
    let reference = reference();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto");
    let mut checked = 0;
    let mut operator = 0;
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/proto") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "proto") {
            let declarations = parse(&std::fs::read_to_string(&path).expect("a readable file"));
            checked += declarations.len();
            operator += declarations.iter().filter(|d| in_master_api(d)).count();
            for problem in mismatches(&declarations, &reference) {
                problems.push(format!("{}: {problem}", path.display()));
            }
        }
    }
    // The four files declare about 380 fields and values, master.proto
    // about 60 of them; far fewer means the parser lost its way.
    assert!(checked > 300, "only {checked} declarations found");
    assert!(
        operator > 50,
        "only {operator} declarations of master.proto"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether a declaration is of the operator API's `master.proto`.
fn in_master_api(declaration: &Declaration) -> bool {
    let (Declaration::Field { scope, .. } | Declaration::Value { scope, .. }) = declaration;
    scope.starts_with("mesos.v1.master.")
}

/// A small reference and proto text, to prove that the check finds what it
/// must find.
const TABLE: &str = "kind\tscope\tname\tnumber\tlabel\ttype\toneof
field\tmesos.v1.TaskID\tvalue\t1\trequired\tstring\t
field\tmesos.v1.TaskStatus\ttask_id\t1\trequired\tmesos.v1.TaskID\t
field\tmesos.v1.TaskStatus\tstate\t2\trequired\tmesos.v1.TaskState\t
field\tmesos.v1.TaskStatus\tmessage\t4\toptional\tstring\t
field\tmesos.v1.TaskStatus\treason\t10\toptional\tmesos.v1.TaskStatus.Reason\t
enum\tmesos.v1.TaskStatus.Reason\tREASON_RECONCILIATION\t9\t\t\t
enum\tmesos.v1.TaskState\tTASK_RUNNING\t1\t\t\t
";

const PROTO: &str = r#"
syntax = "proto2";
package mesos.v1;
/* A comment { with braces } */
message TaskID { required string value = 1; }
enum TaskState {
  TASK_RUNNING = 1; // a comment = 7;
}
message TaskStatus {
  enum Reason { REASON_RECONCILIATION = 9; }
  required TaskID task_id = 1;
  required TaskState state = 2;
  optional string message = 4 [default = "x; y"];
  optional Reason reason = 10;
}
"#;

#[test]
fn a_faithful_file_passes() {
    let reference = load_reference(TABLE);
    let declarations = parse(PROTO);
    assert_eq!(declarations.len(), 7, "{declarations:#?}");
    assert_eq!(mismatches(&declarations, &reference), Vec::<String>::new());
}

#[test]
fn a_wrong_number_name_label_or_type_is_found() {
    let reference = load_reference(TABLE);
    let cases = [
        (
            "optional string message = 4",
            "optional string message = 5",
            "message",
        ),
        (
            "REASON_RECONCILIATION = 9",
            "REASON_RECONCILIATION = 8",
            "REASON_RECONCILIATION",
        ),
        (
            "required TaskState state = 2",
            "optional TaskState state = 2",
            "state",
        ),
        (
            "required TaskID task_id = 1",
            "required string task_id = 1",
            "task_id",
        ),
        (
            "optional string message = 4",
            "optional string note = 4",
            "note",
        ),
        ("TASK_RUNNING = 1", "TASK_STARTED = 1", "TASK_STARTED"),
    ];
    for (right, wrong, named) in cases {
        assert!(PROTO.contains(right), "{right}");
        let broken = PROTO.replace(right, wrong);
        let found = mismatches(&parse(&broken), &reference);
        assert_eq!(found.len(), 1, "{wrong}: {found:?}");
        assert!(found[0].contains(named), "{wrong}: {found:?}");
    }
}
