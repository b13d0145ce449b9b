//! README.md is the workshop, so it must stay true: this test runs every
//! scheduler command of its "Quick start" and "Step" sections, in a fresh
//! directory, and checks that every log line the README quotes for that
//! section really appears.
//!
//! Quoted lines contain ids, ports, paths and timings that differ from run
//! to run, so a word with a digit or a `/` in it matches any word; all other
//! words must match exactly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The sections whose commands are run, and what each quotes.
struct Section {
    title: String,
    commands: Vec<String>,
    quoted: Vec<String>,
}

fn sections(readme: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut fence: Option<String> = None;
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            sections.push(Section {
                title: title.to_string(),
                commands: Vec::new(),
                quoted: Vec::new(),
            });
            continue;
        }
        if let Some(kind) = line.strip_prefix("```") {
            fence = if fence.is_some() {
                None
            } else {
                Some(kind.to_string())
            };
            continue;
        }
        let (Some(kind), Some(section)) = (&fence, sections.last_mut()) else {
            continue;
        };
        let text = line.split(" #").next().unwrap_or("").trim();
        if kind == "sh" && text.starts_with("cargo run --bin scheduler") {
            section.commands.push(text.to_string());
        } else if kind == "text" && !text.is_empty() && !text.contains("...") {
            section.quoted.push(text.to_string());
        }
    }
    sections.retain(|s| s.title == "Quick start" || s.title.starts_with("Step "));
    sections
}

/// The words of a log line after its `[time LEVEL target]` prefix.
fn words(line: &str) -> Vec<&str> {
    let message = match line.find("] ") {
        Some(at)
            if line.starts_with('[') || line.starts_with("INFO") || line.starts_with("WARN") =>
        {
            &line[at + 2..]
        }
        _ => line,
    };
    message.split_whitespace().collect()
}

fn matches(quoted: &str, actual: &str) -> bool {
    let (quoted, actual) = (words(quoted), words(actual));
    quoted.len() == actual.len()
        && quoted.iter().zip(&actual).all(|(q, a)| {
            q == a || q.contains(|c: char| c.is_ascii_digit() || c == '/' || c == '…')
        })
}

/// Runs one README command in `dir`; commands that never end (step 1) are
/// stopped after a few seconds. Returns everything it printed.
fn run(command: &str, dir: &Path) -> String {
    let rest = command.trim_start_matches("cargo run --bin scheduler");
    let args: Vec<&str> = rest
        .strip_prefix(" --")
        .unwrap_or(rest)
        .split_whitespace()
        .collect();
    let endless = args.contains(&"register");
    let mut child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
        .args(&args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the scheduler starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let limit = if endless {
        Duration::from_secs(8)
    } else {
        Duration::from_secs(120)
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let printed = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => assert!(
            status.success(),
            "`{command}` failed ({status}):\n{printed}"
        ),
        None => assert!(
            endless,
            "`{command}` did not finish within {limit:?}:\n{printed}"
        ),
    }
    printed
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_quoted_line_appears_when_the_readme_commands_run() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let sections = sections(&readme);
    let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles.len(),
        4,
        "Quick start and three steps, found {titles:?}"
    );

    let dir = TempDir(std::env::temp_dir().join(format!("readme-test-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    for section in &sections {
        assert!(
            !section.commands.is_empty(),
            "section {} has no command",
            section.title
        );
        let printed: String = section.commands.iter().map(|c| run(c, &dir.0)).collect();
        for quoted in &section.quoted {
            assert!(
                printed.lines().any(|line| matches(quoted, line)),
                "section {}: the README quotes\n  {quoted}\nbut no such line was printed:\n{printed}",
                section.title
            );
        }
    }
}

#[test]
fn quoted_lines_match_by_their_fixed_words() {
    let quoted = "INFO  mesos_tutorial::scheduler] task 1 is in state TASK_RUNNING";
    assert!(matches(
        quoted,
        "[2026-01-01T00:00:00Z INFO  mesos_tutorial::scheduler] task 17 is in state TASK_RUNNING"
    ));
    assert!(!matches(
        quoted,
        "[2026-01-01T00:00:00Z INFO  mesos_tutorial::scheduler] task 17 is in state TASK_FAILED"
    ));
    assert!(!matches(quoted, "[t INFO  x] task 17 is in state"));
}
