//! The map is true: every file, type and function that README.md and
//! `src/lib.rs` tell a reader to read exists in the source.
//!
//! The reading lists are README.md's numbered lists after a line with
//! "Read, in this order", its table of files, and the `## Reading order`
//! section of `src/lib.rs`. In them, each backticked item is one of:
//!
//! - a path (`src/scheduler/mod.rs`, `src/server/`): it must exist, and a
//!   file becomes the one the names after it (in the same list item) are
//!   looked up in;
//! - a name: `run` (a `fn`, `mod` or `const` in that file), `TaskPlan` (a
//!   `struct`, `enum` or `trait`), `TaskPlan::tasks` (the type is defined or
//!   implemented in that file, and the file has the `fn`);
//! - anything else (`OFFERS`, `TaskInfo.data`, `--tasks`) is prose.
//!
//! Any path named anywhere in README.md or `src/lib.rs` must exist too, and
//! neither may point outside the project. And README's listings (each
//! ```` ```rust ```` block whose first line names a file, `// src/…`) are
//! that file's own lines, so that a quoted step cannot go stale. A listing
//! may be fenced with `~~~` instead: step 4's are, since more reading lists
//! follow them in the same section, and the shared `reading-path` tool
//! pairs backticks across a ```` ``` ```` fence.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text between backticks, in order.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Whether an item is a path in the project.
fn is_path(item: &str) -> bool {
    (item.starts_with("src/") || item.starts_with("tests/") || item.starts_with("bin/"))
        && !item.contains([' ', '*'])
}

/// What kind of name an item is, if it is one.
enum Name<'a> {
    /// `run`, `MAX_PAGE_ROWS`: a function, module or constant.
    Item(&'a str),
    /// `TaskPlan`: a type.
    Type(&'a str),
    /// `TaskPlan::tasks`: a method of a type.
    Method(&'a str, &'a str),
}

fn identifier(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit())
}

/// `TaskPlan` but not `OFFERS` or `TASK_RUNNING`.
fn camel_case(text: &str) -> bool {
    identifier(text)
        && text.starts_with(|c: char| c.is_ascii_uppercase())
        && text.chars().any(|c| c.is_ascii_lowercase())
        && !text.contains('_')
}

fn snake_case(text: &str) -> bool {
    identifier(text) && text.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Rust keywords in prose ("one `match`") are not names.
const KEYWORDS: [&str; 8] = [
    "match", "fn", "impl", "mod", "struct", "enum", "loop", "self",
];

fn name(item: &str) -> Option<Name<'_>> {
    if KEYWORDS.contains(&item) {
        return None;
    }
    match item.split_once("::") {
        Some((ty, method)) if camel_case(ty) && snake_case(method) => {
            Some(Name::Method(ty, method))
        }
        Some(_) => None,
        None if camel_case(item) => Some(Name::Type(item)),
        None if snake_case(item) => Some(Name::Item(item)),
        None => None,
    }
}

/// The source before its tests, so that a name found only in a test does
/// not count.
fn source_of(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    // Only an inline test module ends the source: `#[cfg(test)] mod tests;`
    // names a file of tests and may come before the code.
    let inline_tests = text.match_indices("#[cfg(test)]").find(|(at, marker)| {
        text[at + marker.len()..]
            .trim_start()
            .starts_with("mod tests {")
    });
    Ok(match inline_tests {
        Some((at, _)) => text[..at].to_string(),
        None => text,
    })
}

/// Whether `text` has `keyword name` followed by something that ends the
/// name (`(`, `<`, `:`, ` `, `;`, `{`).
fn declares(text: &str, keyword: &str, name: &str) -> bool {
    let needle = format!("{keyword} {name}");
    text.match_indices(&needle).any(|(at, _)| {
        let before_ok = text[..at]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let after = text[at + needle.len()..].chars().next();
        before_ok && matches!(after, Some('(' | '<' | ':' | ' ' | ';' | '{' | '\n'))
    })
}

fn defines_type(text: &str, ty: &str) -> bool {
    ["struct", "enum", "trait"]
        .iter()
        .any(|keyword| declares(text, keyword, ty))
        || text.lines().any(|line| {
            let line = line.trim_start();
            line.starts_with("impl")
                && line
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == ty)
        })
}

/// Why `item` is not in `file`, if it is not.
fn check_name(file: &Path, text: &str, name: &Name) -> Option<String> {
    let shown = file.display();
    match name {
        Name::Item(item) => {
            let found = ["fn", "mod", "const"]
                .iter()
                .any(|keyword| declares(text, keyword, item));
            (!found).then(|| format!("{shown} has no fn, mod or const `{item}`"))
        }
        Name::Type(ty) => {
            (!defines_type(text, ty)).then(|| format!("{shown} defines no type `{ty}`"))
        }
        Name::Method(ty, method) => {
            if !defines_type(text, ty) {
                Some(format!("{shown} neither defines nor implements `{ty}`"))
            } else if !declares(text, "fn", method) {
                Some(format!(
                    "{shown} has no fn `{method}` (for `{ty}::{method}`)"
                ))
            } else {
                None
            }
        }
    }
}

/// The problems in one reading list: each entry is one list item (or one
/// table row), all its lines joined.
fn check_entries(root: &Path, entries: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for entry in entries {
        let mut file: Option<(PathBuf, String)> = None;
        for item in backticked(entry) {
            if is_path(item) {
                let path = root.join(item);
                if !path.exists() {
                    problems.push(format!("`{item}` does not exist"));
                    file = None;
                } else if path.is_file() {
                    match source_of(&path) {
                        Ok(text) => file = Some((path, text)),
                        Err(err) => problems.push(err),
                    }
                }
                continue;
            }
            let Some(name) = name(item) else {
                continue;
            };
            match &file {
                Some((path, text)) => problems.extend(check_name(path, text, &name)),
                None => problems.push(format!("`{item}` comes before any file in: {entry}")),
            }
        }
    }
    problems
}

/// README.md's reading lists: each numbered item after "Read, in this
/// order" (with its indented lines), and each row of the file table.
fn readme_entries(readme: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    // Whether a list follows, and whether its first item came.
    let (mut in_list, mut started) = (false, false);
    for line in readme.lines() {
        let trimmed = line.trim_start();
        let numbered = trimmed
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if line.contains("Read, in this order") {
            (in_list, started) = (true, false);
        } else if in_list && numbered && !line.starts_with(' ') {
            entries.push(line.to_string());
            started = true;
        } else if in_list && started && line.starts_with("   ") {
            let last = entries.len() - 1;
            entries[last].push(' ');
            entries[last].push_str(trimmed);
        } else if in_list && started && !line.trim().is_empty() {
            in_list = false;
        }
        if line.starts_with("| `src/") || line.starts_with("| `bin/") {
            entries.push(line.to_string());
        }
    }
    entries
}

/// `src/lib.rs`'s `## Reading order` section, one entry per numbered item.
fn lib_entries(lib: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    let mut in_section = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.strip_prefix(' ').unwrap_or(doc);
        if let Some(title) = doc.strip_prefix("## ") {
            in_section = title == "Reading order";
            continue;
        }
        if !in_section {
            continue;
        }
        let numbered = doc
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            entries.push(doc.to_string());
        } else if doc.starts_with("   ") && !entries.is_empty() {
            let last = entries.len() - 1;
            entries[last].push(' ');
            entries[last].push_str(doc.trim_start());
        }
    }
    entries
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).expect("a file of the project")
}

#[test]
fn the_readme_reading_lists_name_what_exists() {
    let entries = readme_entries(&read("README.md"));
    // Steps 1 to 4 each have a list, and the table has a dozen rows.
    let lists = entries.iter().filter(|e| !e.starts_with('|')).count();
    assert!(lists >= 12, "only {lists} list items found: {entries:#?}");
    let problems = check_entries(&root(), &entries);
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

#[test]
fn the_lib_rs_reading_order_names_what_exists() {
    let entries = lib_entries(&read("src/lib.rs"));
    assert_eq!(entries.len(), 4, "one item per step: {entries:#?}");
    let names: usize = entries.iter().map(|e| backticked(e).len()).sum();
    assert!(names > 40, "only {names} names in the reading order");
    let problems = check_entries(&root(), &entries);
    assert!(problems.is_empty(), "src/lib.rs:\n{}", problems.join("\n"));
}

#[test]
fn every_path_named_exists_inside_the_project() {
    let mut problems = Vec::new();
    for (file, text) in [
        ("README.md", read("README.md")),
        ("src/lib.rs", read("src/lib.rs")),
    ] {
        if text.contains("../") {
            problems.push(format!("{file} points outside the project (../)"));
        }
        for line in text.lines() {
            for item in backticked(line) {
                let item = item.trim_end_matches(['.', ',']);
                if is_path(item) && !root().join(item).exists() {
                    problems.push(format!("{file}: `{item}` does not exist"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_name_that_does_not_exist_is_found() {
    let dir = std::env::temp_dir().join(format!("reading-path-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).expect("a temporary folder");
    std::fs::write(
        dir.join("src/a.rs"),
        "pub struct Plan;\nimpl Plan {\n    pub fn fit(&self) {}\n}\npub fn run() {}\n\
         #[cfg(test)]\nmod tests { fn only_in_tests() {} }\n",
    )
    .expect("a file");
    let check = |entry: &str| check_entries(&dir, &[entry.to_string()]);
    let good = check("1. `src/a.rs`: `run`, `Plan`, `Plan::fit`, prose like `OFFERS`");
    let missing_fn = check("1. `src/a.rs`: `runs`");
    let missing_method = check("1. `src/a.rs`: `Plan::fits`");
    let missing_type = check("1. `src/a.rs`: `Plans::fit`");
    let test_only = check("1. `src/a.rs`: `only_in_tests`");
    let missing_file = check("1. `src/b.rs`: `run`");
    let no_file = check("1. `run` in no file");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(good, Vec::<String>::new());
    for (case, problems) in [
        ("a missing fn", missing_fn),
        ("a missing method", missing_method),
        ("a missing type", missing_type),
        ("a fn only in tests", test_only),
        ("a missing file", missing_file),
        ("a name before any file", no_file),
    ] {
        assert!(!problems.is_empty(), "{case} was not found");
    }
}

#[test]
fn reading_lists_are_found_in_both_formats() {
    let readme = "Read, in this order (the\nend of the sentence):\n\n1. `src/a.rs`: `run`;\n2. `b`, then\n   `c`\n\nProse `d`.\n\
                  | `src/x.rs` | table |\n";
    let entries = readme_entries(readme);
    assert_eq!(
        entries,
        [
            "1. `src/a.rs`: `run`;",
            "2. `b`, then `c`",
            "| `src/x.rs` | table |"
        ]
    );
    let lib = "//! ## Reading order\n//!\n//! 1. **One** `a`\n//!    `b`\n//! 2. `c`\n//!\n//! ## Next\n//! 3. `d`\n";
    assert_eq!(lib_entries(lib), ["1. **One** `a` `b`", "2. `c`"]);
}

/// README's listings: each ```` ```rust ```` (or `~~~rust`) block whose
/// first line names a file (`// src/scheduler/mod.rs`), with the lines that
/// follow it.
fn readme_listings(readme: &str) -> Vec<(String, Vec<String>)> {
    let mut listings = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let fence = match line.trim() {
            "```rust" => "```",
            "~~~rust" => "~~~",
            _ => continue,
        };
        let block: Vec<String> = lines
            .by_ref()
            .take_while(|line| !line.starts_with(fence))
            .map(str::to_string)
            .collect();
        if let Some(path) = block.first().and_then(|l| l.strip_prefix("// src/")) {
            listings.push((format!("src/{path}"), block[1..].to_vec()));
        }
    }
    listings
}

/// Whether `listing` is a run of `source`'s lines, one after the other,
/// all shifted left by the same indentation (the first line's).
fn listing_is_in(source: &str, listing: &[String]) -> bool {
    let source: Vec<&str> = source.lines().collect();
    let Some(first) = listing.first() else {
        return false;
    };
    (0..source.len()).any(|start| {
        let indent = source[start].len() - source[start].trim_start().len();
        source[start].trim_start() == first
            && start + listing.len() <= source.len()
            && listing.iter().zip(&source[start..]).all(|(quoted, line)| {
                let shifted = line.get(indent..).unwrap_or("");
                quoted == shifted || (quoted.is_empty() && line.trim().is_empty())
            })
    })
}

#[test]
fn the_readme_listings_are_the_sources_own_lines() {
    let listings = readme_listings(&read("README.md"));
    assert!(
        listings.len() >= 4,
        "a listing per step at least: {listings:#?}"
    );
    let mut problems = Vec::new();
    for (path, listing) in &listings {
        if listing.len() < 5 || !listing_is_in(&read(path), listing) {
            let first = listing.first().map(String::as_str).unwrap_or("");
            problems.push(format!(
                "{path}: the listing starting {first:?} is not in it"
            ));
        }
    }
    assert!(problems.is_empty(), "README.md:\n{}", problems.join("\n"));
}

#[test]
fn a_listing_that_differs_from_the_source_is_found() {
    let source = "fn a() {\n    if x {\n        y();\n    }\n\n    z();\n}\n";
    let lines = |text: &str| -> Vec<String> { text.lines().map(str::to_string).collect() };
    assert!(listing_is_in(source, &lines("if x {\n    y();\n}\n\nz();")));
    assert!(listing_is_in(source, &lines("fn a() {\n    if x {")));
    // A changed line, a dropped line, and lines out of order.
    assert!(!listing_is_in(source, &lines("if x {\n    w();\n}")));
    assert!(!listing_is_in(source, &lines("if x {\n}")));
    assert!(!listing_is_in(source, &lines("z();\nif x {")));
    // The indentation inside a listing is the source's.
    assert!(!listing_is_in(source, &lines("if x {\n  y();")));
    let readme = "text\n```rust\n// src/a.rs\nfn a() {\n```\n```rust\nno path\n```\n\
                  ~~~rust\n// src/b.rs\nfn b() {\n~~~\n";
    assert_eq!(
        readme_listings(readme),
        vec![
            ("src/a.rs".to_string(), lines("fn a() {")),
            ("src/b.rs".to_string(), lines("fn b() {"))
        ]
    );
}
