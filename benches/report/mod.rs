//! What every benchmark here shares: repeated timing and the results table.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! The benchmarks run on shared machines, where an absolute figure says
//! little: the same code is twice as fast on an idle laptop as on a busy CI
//! runner. So each figure is printed beside a **limit** measured in the same
//! run (memcpy, a read from the page cache, an empty HTTP round trip), and
//! the target is a ratio to that limit. Both numbers suffer the same
//! neighbours, so their ratio is what can be compared from run to run.
//!
//! `cargo bench` passes `--bench` to a benchmark that has no test harness;
//! `cargo test --benches` does not. Without it a benchmark runs a quick
//! version of itself ([`quick_run`]): a test that the code still works, with
//! figures too small to mean anything.

// Each benchmark is its own crate and uses only a part of this file.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Whether this is a quick run (not under `cargo bench`); see the file's
/// documentation.
pub fn quick_run() -> bool {
    !std::env::args().any(|arg| arg == "--bench")
}

/// Runs `measure` `runs` times and keeps the shortest time. On a shared
/// machine noise only ever adds time, so the best run is the closest to what
/// the code costs.
pub fn best_of(runs: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    (0..runs.max(1))
        .map(|_| measure())
        .min()
        .expect("at least one run")
}

/// Times one call of `work`.
pub fn time(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

/// `amount` units per second, over `elapsed`.
pub fn per_second(amount: f64, elapsed: Duration) -> f64 {
    amount / elapsed.as_secs_f64().max(1e-9)
}

/// Bytes per second in MB/s (10^6 bytes).
pub fn megabytes_per_second(bytes: usize, elapsed: Duration) -> f64 {
    per_second(bytes as f64, elapsed) / 1e6
}

/// CPU time used so far by this process (all its threads) and by its
/// descendants: those still running, and those that exited and were waited
/// for. Read from `/proc`; zero where it cannot be read.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub own: Duration,
    pub children: Duration,
}

impl Cpu {
    /// The CPU time used until now.
    pub fn now() -> Cpu {
        let [user, system, waited_user, waited_system] = stat_ticks("self");
        let mut children = waited_user + waited_system;
        for pid in descendants("self") {
            // A running child's own time, and that of its waited-for children.
            children += stat_ticks(&pid).iter().sum::<u64>();
        }
        // Linux reports these in USER_HZ, which is 100 per second.
        Cpu {
            own: Duration::from_millis(10 * (user + system)),
            children: Duration::from_millis(10 * children),
        }
    }

    /// The CPU time used between `earlier` and `self`.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            own: self.own.saturating_sub(earlier.own),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

/// utime, stime, cutime and cstime of a process: fields 14 to 17 of
/// `/proc/<pid>/stat`, counted after the command name in parentheses.
fn stat_ticks(pid: &str) -> [u64; 4] {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    std::array::from_fn(|index| fields.get(11 + index).copied().unwrap_or(0))
}

/// The running descendants of a process, from the `children` lists of its
/// threads.
fn descendants(pid: &str) -> Vec<String> {
    let mut found = Vec::new();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for thread in threads.flatten() {
        let children = std::fs::read_to_string(thread.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace() {
            found.extend(descendants(child));
            found.push(child.to_string());
        }
    }
    found
}

/// A number and its unit, e.g. `812.4 MB/s`.
#[derive(Clone, Copy)]
pub struct Figure {
    pub amount: f64,
    pub unit: &'static str,
}

/// Shorthand for a [`Figure`].
pub fn figure(amount: f64, unit: &'static str) -> Figure {
    Figure { amount, unit }
}

/// What a figure must reach.
pub enum Target {
    /// value / limit at least this.
    Ratio(f64),
    /// The value itself at least this, in the value's unit.
    AtLeast(f64),
    /// value / limit at most this: for costs such as times, where less is
    /// better.
    RatioAtMost(f64),
    /// The value itself at most this, in the value's unit.
    AtMost(f64),
    /// No fixed target: the figure is reported.
    Report,
}

struct Row {
    name: String,
    value: Figure,
    limit: Option<Figure>,
    target: Target,
}

/// The table a benchmark prints:
/// `figure | value | limit | ratio | target | met?`.
pub struct Table {
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    /// An empty table under `title`.
    pub fn new(title: &str) -> Table {
        Table {
            title: title.to_string(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row. `limit` is in the same unit as `value`.
    pub fn row(&mut self, name: &str, value: Figure, limit: Option<Figure>, target: Target) {
        self.rows.push(Row {
            name: name.to_string(),
            value,
            limit,
            target,
        });
    }

    /// Adds a line printed under the table: how something was measured.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Whether every row with a target meets it.
    pub fn all_met(&self) -> bool {
        self.rows.iter().all(|row| row_met(row) != Some(false))
    }

    /// Prints the table, then the notes.
    pub fn print(&self) {
        let header = ["figure", "value", "limit", "ratio", "target", "met?"].map(String::from);
        let mut lines = vec![header];
        for row in &self.rows {
            let ratio = row.limit.map(|limit| row.value.amount / limit.amount);
            let target = match row.target {
                Target::Ratio(min) => format!("ratio >= {min}"),
                Target::AtLeast(min) => format!(">= {} {}", number(min), row.value.unit),
                Target::RatioAtMost(max) => format!("ratio <= {max}"),
                Target::AtMost(max) => format!("<= {} {}", number(max), row.value.unit),
                Target::Report => "(report)".to_string(),
            };
            let met = match row_met(row) {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            lines.push([
                row.name.clone(),
                show(row.value),
                row.limit.map_or("-".into(), show),
                // Rounded towards missing the target, so that a ratio
                // printed as the target meets it.
                ratio.map_or("-".into(), |r| match row.target {
                    Target::RatioAtMost(_) => format!("{:.3}", (r * 1000.0).ceil() / 1000.0),
                    _ => format!("{:.3}", (r * 1000.0).floor() / 1000.0),
                }),
                target,
                met.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|column| {
                lines
                    .iter()
                    .map(|line| line[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        println!("\n{}", self.title);
        for (index, line) in lines.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            println!("| {} |", cells.join(" | "));
            if index == 0 {
                let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
                println!("|-{}-|", rule.join("-|-"));
            }
        }
        for note in &self.notes {
            println!("  {note}");
        }
    }
}

fn row_met(row: &Row) -> Option<bool> {
    match row.target {
        Target::Ratio(min) => row
            .limit
            .map(|limit| row.value.amount / limit.amount >= min),
        Target::AtLeast(min) => Some(row.value.amount >= min),
        Target::RatioAtMost(max) => row
            .limit
            .map(|limit| row.value.amount / limit.amount <= max),
        Target::AtMost(max) => Some(row.value.amount <= max),
        Target::Report => None,
    }
}

fn show(figure: Figure) -> String {
    format!("{} {}", number(figure.amount), figure.unit)
}

/// Four significant digits or so, without exponents.
fn number(amount: f64) -> String {
    match amount.abs() {
        a if a >= 1000.0 => format!("{amount:.0}"),
        a if a >= 100.0 => format!("{amount:.1}"),
        a if a >= 10.0 => format!("{amount:.2}"),
        _ => format!("{amount:.3}"),
    }
}

/// A uniquely named directory under the system's temporary directory,
/// removed with everything in it when dropped.
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    /// Creates `<temp>/<prefix>-<pid>-<nanoseconds>`.
    pub fn create(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            eprintln!("could not remove {}: {err}", self.path.display());
        }
    }
}
