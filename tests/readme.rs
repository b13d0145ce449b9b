//! README.md is the workshop, so it must stay true. These tests run the
//! commands of its "Quick start", its three "Step" sections and "Running the
//! cluster in a second terminal", exactly as written (with the real
//! `scheduler` and `mesos-local` binaries instead of `cargo run`), each in a
//! fresh directory, and check that every line the section quotes in a
//! ```` ```text ```` block is printed, and that quoted lines with no `...`
//! between them are printed one right after the other. "Troubleshooting" is
//! checked the same way: each quoted error is reproduced.
//!
//! How a quoted line matches a printed one:
//!
//! - `…` stands for one or more characters of any kind: README.md uses it
//!   for what changes from run to run (timestamps, ids, ports, paths,
//!   durations) and says so. Everything else must match exactly, digits,
//!   slashes, log targets and spacing included.
//! - A quoted line that is just `...` means "one or more lines left out".
//!   It splits a block into *runs*: the lines of a run must match
//!   consecutive printed lines, in order. Whether `...` really leaves a line
//!   out is not checked, nor where a run sits against the next one.
//! - "Consecutive" means within one stream of one command: stdout and stderr
//!   are read apart, since the order in which two pipes' lines arrive is not
//!   the order a terminal would show. No run in README.md spans the two.
//!
//! What the tests change, and why:
//!
//! - `cargo test` in the quick start is not run: it is this very command.
//! - The second-terminal section uses Mesos's ports 5050 and 5051, which may
//!   be taken on a test machine. The test picks two free ports instead (binding
//!   port 0 and releasing it), gives `mesos-local` the agent port explicitly,
//!   and writes 5050 and 5051 back into the printed lines before comparing.
//! - Commands that run until Ctrl+C (`--step register`, `mesos-local`) are
//!   stopped once every quoted line has appeared, or after a time limit.
//!   Each command runs in its own process group, and stopping kills the
//!   group, so that no executor outlives the test.

// The README's commands are Unix shell commands, and each runs in a process
// group of its own: this test runs where they do.
#![cfg(unix)]

mod common;

use common::processes::kill_process_group;
use common::temp_dir::TempDir;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The placeholder README.md uses for text that changes between runs.
const WILDCARD: char = '…';
/// How long a command that ends by itself may take.
const FINITE_LIMIT: Duration = Duration::from_secs(300);
/// How long a command that runs until stopped is given to print the lines.
const ENDLESS_LIMIT: Duration = Duration::from_secs(60);

// ----------------------------------------------------------------------------
// Reading README.md

/// One `## ` section of README.md: its shell commands and quoted lines.
struct Section {
    title: String,
    commands: Vec<String>,
    /// The quoted lines, in runs: a run ends at a `...` line or at the end of
    /// its ```` ```text ```` block, and its lines follow each other in the
    /// output.
    runs: Vec<Vec<String>>,
}

impl Section {
    /// Every quoted line, in README order.
    fn quoted(&self) -> Vec<&String> {
        self.runs.iter().flatten().collect()
    }
}

/// The section whose title starts with `prefix`; there must be exactly one.
fn section(prefix: &str) -> Section {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let mut found: Vec<Section> = parse(&readme)
        .into_iter()
        .filter(|s| s.title.starts_with(prefix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "README.md must have exactly one section titled {prefix:?}…"
    );
    found.pop().expect("one section")
}

fn parse(readme: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut fence: Option<String> = None;
    for line in readme.lines() {
        // Code blocks are fenced with ``` or, where a reading list follows
        // in the same section, ~~~ (see `tests/reading_path.rs`).
        let fenced = line
            .strip_prefix("```")
            .or_else(|| line.strip_prefix("~~~"));
        if let Some(kind) = fenced {
            fence = match fence {
                Some(_) => None,
                None => Some(kind.trim().to_string()),
            };
            // A new block starts a new run.
            if let Some(section) = sections.last_mut() {
                section.runs.push(Vec::new());
            }
            continue;
        }
        if fence.is_none() {
            if let Some(title) = line.strip_prefix("## ") {
                sections.push(Section {
                    title: title.to_string(),
                    commands: Vec::new(),
                    runs: Vec::new(),
                });
            }
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        match fence.as_deref() {
            Some("sh") => {
                // A shell comment ends the command.
                let command = line.split(" #").next().unwrap_or("").trim();
                if !command.is_empty() && !command.starts_with('#') {
                    section.commands.push(command.to_string());
                }
            }
            Some("text") if line.trim() == "..." => section.runs.push(Vec::new()),
            Some("text") if !line.trim().is_empty() => match section.runs.last_mut() {
                Some(run) => run.push(line.to_string()),
                None => section.runs.push(vec![line.to_string()]),
            },
            _ => {}
        }
    }
    for section in &mut sections {
        section.runs.retain(|run| !run.is_empty());
    }
    sections
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Program {
    Scheduler,
    MesosLocal,
}

impl Program {
    fn path(self) -> &'static str {
        match self {
            Program::Scheduler => env!("CARGO_BIN_EXE_scheduler"),
            Program::MesosLocal => env!("CARGO_BIN_EXE_mesos-local"),
        }
    }
}

/// `cargo run --bin NAME [-- ARGS…]` as the program and its arguments;
/// `None` for `cargo test`, which is not run (see the file's comment).
fn parse_command(command: &str) -> Option<(Program, Vec<String>)> {
    if command == "cargo test" {
        return None;
    }
    let words: Vec<&str> = command.split_whitespace().collect();
    let program = match words.get(..4) {
        Some(["cargo", "run", "--bin", "scheduler"]) => Program::Scheduler,
        Some(["cargo", "run", "--bin", "mesos-local"]) => Program::MesosLocal,
        _ => panic!(
            "tests/readme.rs does not know how to run `{command}`: keep README commands to \
             `cargo run --bin scheduler|mesos-local -- ARGS` and `cargo test`, or teach this test"
        ),
    };
    let args = match words.get(4) {
        Some(&"--") => &words[5..],
        None => &[][..],
        Some(other) => panic!("`{command}`: expected `--` before the arguments, found {other}"),
    };
    Some((program, args.iter().map(|a| a.to_string()).collect()))
}

/// Whether the command runs until it is stopped (README says "Ctrl+C").
fn endless(program: Program, args: &[String]) -> bool {
    program == Program::MesosLocal || args.windows(2).any(|w| w == ["--step", "register"])
}

// ----------------------------------------------------------------------------
// Matching

/// Whether `actual` is `quoted` with each `…` replaced by one or more
/// characters.
fn matches(quoted: &str, actual: &str) -> bool {
    let pieces: Vec<&str> = quoted.split(WILDCARD).collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if pieces.len() == 1 {
        return quoted == actual;
    }
    if !actual.starts_with(first)
        || !actual.ends_with(last)
        || actual.len() < first.len() + last.len()
    {
        return false;
    }
    let end = actual.len() - last.len();
    let mut at = first.len();
    // The earliest place for each literal piece leaves the most room for
    // the rest, so searching left to right finds a match if there is one.
    for piece in &pieces[1..pieces.len() - 1] {
        let Some(one_char) = actual[at..end].chars().next() else {
            return false;
        };
        let from = at + one_char.len_utf8();
        match actual[from..end].find(piece) {
            Some(found) => at = from + found + piece.len(),
            None => return false,
        }
    }
    // The last `…` also stands for at least one character.
    at < end
}

/// What one command printed on one stream (stdout or stderr), in order.
struct Stream {
    name: String,
    lines: Vec<String>,
}

/// The quoted lines that no printed line matches.
fn missing<'a>(quoted: &[&'a String], printed: &[Stream]) -> Vec<&'a String> {
    quoted
        .iter()
        .copied()
        .filter(|q| {
            !printed
                .iter()
                .any(|stream| stream.lines.iter().any(|line| matches(q, line)))
        })
        .collect()
}

/// Where a run of quoted lines comes closest to being printed in a row:
/// the stream, the index of the line matching the run's first line, and how
/// many of the run's lines match from there. `None` if its first line is
/// never printed.
fn closest(run: &[String], printed: &[Stream]) -> Option<(usize, usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None;
    for (s, stream) in printed.iter().enumerate() {
        for start in 0..stream.lines.len() {
            let length = run
                .iter()
                .zip(&stream.lines[start..])
                .take_while(|(quoted, line)| matches(quoted, line))
                .count();
            if length > 0 && best.is_none_or(|(_, _, most)| length > most) {
                best = Some((s, start, length));
            }
        }
    }
    best
}

/// Checks README's rules against what was printed: every quoted line is
/// printed, and the lines of each run are printed one after the other. The
/// error says what is wrong and shows the output.
fn check_quotes(title: &str, runs: &[Vec<String>], printed: &[Stream]) -> Result<(), String> {
    let quoted: Vec<&String> = runs.iter().flatten().collect();
    let missing = missing(&quoted, printed);
    if !missing.is_empty() {
        return Err(format!(
            "README.md, section {title:?}: these quoted lines were not printed:\n{}\n\n\
             what was printed:\n{}",
            indent(&missing),
            show(printed)
        ));
    }
    for run in runs {
        let Some((s, start, length)) = closest(run, printed) else {
            continue; // Not printed at all: reported above.
        };
        if length == run.len() {
            continue;
        }
        let stream = &printed[s];
        let instead = match stream.lines.get(start + length) {
            Some(line) => format!("  {line}"),
            None => format!("  (nothing: the {} ends there)", stream.name),
        };
        return Err(format!(
            "README.md, section {title:?}: these quoted lines have no `...` between them, so \
             they must be printed one right after the other:\n{}\n\n\
             the {} prints the first {length} in a row (from its line {}), but after\n  {}\n\
             the next quoted line\n  {}\n\
             was expected, and this came instead:\n{instead}\n\n\
             Quote the line that came, or put a line `...` where lines are left out.\n\n\
             what was printed:\n{}",
            indent(run),
            stream.name,
            start + 1,
            stream.lines[start + length - 1],
            run[length],
            show(printed)
        ));
    }
    Ok(())
}

fn indent(lines: &[impl AsRef<str>]) -> String {
    lines
        .iter()
        .map(|l| format!("  {}", l.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn show(printed: &[Stream]) -> String {
    printed
        .iter()
        .filter(|stream| !stream.lines.is_empty())
        .map(|stream| format!("--- {} ---\n{}", stream.name, stream.lines.join("\n")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_quotes_printed(title: &str, runs: &[Vec<String>], printed: &[Stream]) {
    if let Err(message) = check_quotes(title, runs, printed) {
        panic!("{message}");
    }
}

// ----------------------------------------------------------------------------
// Running the programs

/// A program started by a test. Dropping it kills its process group (the
/// program and any executor it started) unless it has already ended.
struct Running {
    child: Child,
    ended: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn start(program: &str, args: &[String], dir: &Path, env_remove: &[&str]) -> Running {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            // The README shows the binaries' default output.
            .env_remove("RUST_LOG")
            // Sandboxes, demo images and the servers' private sockets go
            // in the test's directory, removed with it even when a program
            // is killed before it can clean up.
            .env("TMPDIR", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: stopping it stops its executors too.
            .process_group(0);
        for name in env_remove {
            command.env_remove(name);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            read_lines(
                child.stdout.take().expect("stdout is piped"),
                Arc::clone(&stdout),
            ),
            read_lines(
                child.stderr.take().expect("stderr is piped"),
                Arc::clone(&stderr),
            ),
        ];
        Running {
            child,
            ended: None,
            stdout,
            stderr,
            readers,
        }
    }

    /// Everything printed so far: stdout's lines, then stderr's.
    fn lines(&self) -> Vec<String> {
        let [stdout, stderr] = self.streams("");
        [stdout.lines, stderr.lines].concat()
    }

    /// What was printed so far on stdout and on stderr, named after `shown`
    /// (the command).
    fn streams(&self, shown: &str) -> [Stream; 2] {
        let read = |lines: &Arc<Mutex<Vec<String>>>| {
            lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
        };
        [
            Stream {
                name: format!("stdout of `{shown}`"),
                lines: read(&self.stdout),
            },
            Stream {
                name: format!("stderr of `{shown}`"),
                lines: read(&self.stderr),
            },
        ]
    }

    /// Waits for the program to end by itself, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while self.ended.is_none() && Instant::now() < deadline {
            self.ended = self.child.try_wait().expect("try_wait works");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.ended
    }

    /// Waits until some printed line satisfies `ready`, at most `limit`.
    fn wait_for(&mut self, limit: Duration, ready: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.lines().iter().any(|l| ready(l)) {
                return true;
            }
            if self.wait(Duration::ZERO).is_some() {
                return self.lines().iter().any(|l| ready(l));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Kills the process group (if the program still runs), reaps the
    /// program and waits until its output is read to the end.
    fn stop(&mut self) {
        if self.ended.is_none() {
            // Not yet reaped, so the group id is still ours.
            if !kill_process_group(self.child.id()) {
                let _ = self.child.kill();
            }
            self.ended = self.child.wait().ok();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_lines(
    stream: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    })
}

/// Free ports on 127.0.0.1: bound to port 0, read, and released.
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("port 0 can be bound"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound address").port())
}

/// Runs a section's commands in order in a fresh directory, and returns
/// everything they printed, stream by stream. `adapt` may change a command's
/// arguments.
fn run_section(
    section: &Section,
    adapt: impl Fn(Program, Vec<String>) -> Vec<String>,
) -> Vec<Stream> {
    let dir = TempDir::new("section");
    let commands: Vec<(Program, Vec<String>)> = section
        .commands
        .iter()
        .filter_map(|c| parse_command(c))
        .collect();
    assert!(
        !commands.is_empty(),
        "section {:?} has no command to run",
        section.title
    );
    assert!(
        !section.runs.is_empty(),
        "section {:?} quotes no output",
        section.title
    );
    let mut running: Vec<(Running, String)> = Vec::new();
    let mut printed: Vec<Stream> = Vec::new();
    for (program, args) in commands {
        let args = adapt(program, args);
        let shown = format!("{program:?} {}", args.join(" "))
            .trim_end()
            .to_string();
        let mut process = Running::start(program.path(), &args, dir.path(), &[]);
        if program == Program::MesosLocal {
            // Terminal 2 starts once terminal 1 says it is ready.
            let ready = process.wait_for(ENDLESS_LIMIT, |l| l.contains("] Ready. "));
            assert!(
                ready,
                "`{shown}` never said Ready:\n{}",
                process.lines().join("\n")
            );
            running.push((process, shown));
        } else if endless(program, &args) {
            running.push((process, shown));
        } else {
            let status = process.wait(FINITE_LIMIT);
            process.stop();
            let lines = process.lines();
            match status {
                Some(status) => assert!(
                    status.success(),
                    "`{shown}` failed ({status}):\n{}",
                    lines.join("\n")
                ),
                None => panic!(
                    "`{shown}` did not end within {FINITE_LIMIT:?}:\n{}",
                    lines.join("\n")
                ),
            }
            printed.extend(process.streams(&shown));
        }
    }
    // What still runs runs until Ctrl+C: stop it once the quotes are all
    // printed as README shows them (or the time is up, and the check after
    // this says what is wrong).
    let deadline = Instant::now() + ENDLESS_LIMIT;
    while !running.is_empty() {
        let mut all: Vec<Stream> = printed.iter().map(normalize).collect();
        for (process, shown) in &running {
            all.extend(process.streams(shown).iter().map(normalize));
        }
        if check_quotes(&section.title, &section.runs, &all).is_ok() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (mut process, shown) in running {
        process.stop();
        printed.extend(process.streams(&shown));
    }
    printed.iter().map(normalize).collect()
}

/// Printed lines as README.md shows them: the free ports a test chose in
/// place of Mesos's 5050 and 5051 are written back (see the file's comment).
fn normalize(stream: &Stream) -> Stream {
    PORTS.with(|ports| Stream {
        name: stream.name.clone(),
        lines: stream
            .lines
            .iter()
            .map(|line| {
                let mut line = line.to_string();
                for (chosen, shown) in ports.borrow().iter() {
                    line = line.replace(
                        &format!("127.0.0.1:{chosen}"),
                        &format!("127.0.0.1:{shown}"),
                    );
                }
                line
            })
            .collect(),
    })
}

thread_local! {
    /// (chosen port, port README.md shows) for the current test thread.
    static PORTS: std::cell::RefCell<Vec<(u16, u16)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn check(prefix: &str) {
    let section = section(prefix);
    let printed = run_section(&section, |_, args| args);
    assert_quotes_printed(&section.title, &section.runs, &printed);
}

// ----------------------------------------------------------------------------
// The sections

#[test]
fn quick_start() {
    check("Quick start");
}

#[test]
fn step_1_register() {
    check("Step 1");
}

#[test]
fn step_2_launch() {
    check("Step 2");
}

#[test]
fn step_3_images() {
    check("Step 3");
}

#[test]
fn second_terminal_mesos_local_and_a_scheduler() {
    let section = section("Running the cluster in a second terminal");
    let programs: Vec<Program> = section
        .commands
        .iter()
        .filter_map(|c| parse_command(c))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        programs,
        [Program::MesosLocal, Program::Scheduler],
        "terminal 1 runs mesos-local, terminal 2 the scheduler"
    );
    let [master, agent] = free_ports::<2>();
    PORTS.with(|p| *p.borrow_mut() = vec![(master, 5050), (agent, 5051)]);
    let printed = run_section(&section, |program, args| {
        let mut args: Vec<String> = args
            .into_iter()
            .map(|a| match a.as_str() {
                "5050" => master.to_string(),
                "127.0.0.1:5050" => format!("127.0.0.1:{master}"),
                _ => a,
            })
            .collect();
        if program == Program::MesosLocal {
            args.extend(["--agent-port".to_string(), agent.to_string()]);
        }
        args
    });
    assert_quotes_printed(&section.title, &section.runs, &printed);
}

/// README's count of benchmarks is Cargo.toml's: it once said six of
/// seven.
#[test]
fn the_benchmark_count_is_cargo_tomls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let declared = manifest
        .lines()
        .filter(|line| line.trim() == "[[bench]]")
        .count();
    let words = [
        "none", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    let said = readme
        .split("`cargo bench` runs ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("README says how many benchmarks `cargo bench` runs");
    assert_eq!(said, words[declared], "Cargo.toml declares {declared}");
    let all = format!("# all {}", words[declared]);
    assert!(
        readme.contains(&all),
        "README's reproduce block says {all:?}"
    );
}

/// "N tests are left out of `cargo test`": N is the number of `#[ignore]`d
/// tests, and README gives a command for each file that holds one. (It
/// once said one while three were.)
#[test]
fn the_tests_left_out_are_the_ignored_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README.md");
    let mut ignored: Vec<(String, usize)> = Vec::new();
    for dir in ["tests", "src"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read a source folder") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read a source file");
                    let count = text
                        .lines()
                        .filter(|line| line.trim_start().starts_with("#[ignore"))
                        .count();
                    if count > 0 {
                        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                        ignored.push((stem, count));
                    }
                }
            }
        }
    }
    let total: usize = ignored.iter().map(|(_, count)| count).sum();
    let words = [
        "No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    ];
    let verb = if total == 1 { "test is" } else { "tests are" };
    let said = format!("{} {verb} left out of `cargo test`", words[total]);
    assert!(
        readme.contains(&said),
        "{total} tests are #[ignore]d ({ignored:?}); README should say {said:?}"
    );
    for (file, _) in &ignored {
        let command = format!("cargo test --test {file} -- --ignored");
        assert!(
            readme.contains(&command),
            "README gives no command for the ignored test(s) of {file}: {command:?}"
        );
    }
}

/// What differs from one run, or one system, to the next is written `…`.
/// An operating system's error number is such a thing: a reset connection
/// is `os error 104` on Linux and 54 on macOS, and the same moment of a run
/// may meet a refused connection instead. Step 4's quotes, which no test
/// here runs, once named one.
#[test]
fn no_quote_names_an_operating_systems_error_number() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let numbered: Vec<String> = parse(&readme)
        .iter()
        .flat_map(|section| section.quoted())
        .filter(|line| {
            line.split("(os error ")
                .skip(1)
                .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .cloned()
        .collect();
    assert!(
        numbered.is_empty(),
        "write `…` for the error instead:\n{}",
        numbered.join("\n")
    );
}

#[test]
fn troubleshooting_quotes_the_real_errors() {
    let section = section("Troubleshooting");
    assert!(section.quoted().len() >= 5, "{:?}", section.runs);
    let scheduler = Program::Scheduler.path();
    let mesos_local = Program::MesosLocal.path();
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let run = |program: &str, list: &[String], dir: &Path, env_remove: &[&str]| {
        let mut process = Running::start(program, list, dir, env_remove);
        let status = process.wait(FINITE_LIMIT);
        process.stop();
        let lines = process.lines();
        assert!(
            matches!(status, Some(s) if !s.success()),
            "{program} {list:?} should fail ({status:?}):\n{}",
            lines.join("\n")
        );
        lines
    };
    let dir = TempDir::new("troubleshooting");
    let mut printed = Vec::new();

    // No master at --master.
    let [closed] = free_ports::<1>();
    let master = format!("127.0.0.1:{closed}");
    for line in run(
        scheduler,
        &args(&["--master", &master, "--step", "register"]),
        dir.path(),
        &[],
    ) {
        printed.push(line.replace(&master, "127.0.0.1:5050"));
    }

    // A scheduler started directly, with no executor beside it (and not
    // under `cargo run`, which would build one).
    let alone = TempDir::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")), "alone");
    let copy = alone.path().join("scheduler");
    if std::fs::hard_link(scheduler, &copy).is_err() {
        std::fs::copy(scheduler, &copy).expect("the scheduler can be copied");
    }
    let copy = copy.to_str().expect("a UTF-8 path").to_string();
    printed.extend(run(
        &copy,
        &args(&["--step", "launch"]),
        dir.path(),
        &["CARGO", "CARGO_MANIFEST_DIR"],
    ));

    // Ports already taken: the file server's, and mesos-local's.
    let taken = TcpListener::bind("127.0.0.1:0").expect("port 0 can be bound");
    let port = taken
        .local_addr()
        .expect("a bound address")
        .port()
        .to_string();
    printed.extend(run(
        scheduler,
        &args(&["--step", "launch", "--port", &port]),
        dir.path(),
        &[],
    ));
    for line in run(
        mesos_local,
        &args(&["--port", &port, "--agent-port", "0"]),
        dir.path(),
        &[],
    ) {
        printed.push(line.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:5050"));
    }
    drop(taken);

    // An output directory we may not write. Root may write anywhere, so as
    // root the scheduler runs as `nobody`.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).expect("a directory can be made");
    set_mode(&locked, 0o555);
    let output_dir = ["--output-dir", "locked/results"];
    let (program, list) = if running_as_root() {
        // `nobody` needs a temporary directory it may write to.
        let shared_tmp = dir.path().join("shared-tmp");
        std::fs::create_dir(&shared_tmp).expect("a directory can be made");
        set_mode(&shared_tmp, 0o1777);
        let tmpdir = format!("TMPDIR={}", shared_tmp.display());
        let mut list = args(&[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "env",
            &tmpdir,
            scheduler,
        ]);
        list.extend(args(&output_dir));
        ("setpriv", list)
    } else {
        (scheduler, args(&output_dir))
    };
    printed.extend(run(program, &list, dir.path(), &[]));
    set_mode(&locked, 0o755);

    // A task larger than the embedded agent, and an executor that fails
    // every task.
    printed.extend(run(
        scheduler,
        &args(&["--task-mem", "999999"]),
        dir.path(),
        &[],
    ));
    printed.extend(run(
        scheduler,
        &args(&["--step", "launch", "--executor", "/bin/false"]),
        dir.path(),
        &[],
    ));

    // Each error is quoted alone, so the order of the lines is not at stake.
    let printed = [Stream {
        name: "the commands above".to_string(),
        lines: printed,
    }];
    assert_quotes_printed(&section.title, &section.runs, &printed);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("permissions can be set");
}

/// Whether this process runs as root (real user id 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next().map(|id| id == "0"))
        })
        .unwrap_or(false)
}

// ----------------------------------------------------------------------------
// The rules themselves

#[test]
fn the_placeholder_stands_for_one_or_more_characters_and_nothing_else_varies() {
    let quoted =
        "[… INFO  mesos_tutorial::scheduler] task 1 is in state TASK_FINISHED: done after … ms";
    assert!(matches(
        quoted,
        "[2026-01-01T00:00:00Z INFO  mesos_tutorial::scheduler] task 1 is in state TASK_FINISHED: done after 12 ms"
    ));
    // Digits are not wildcards.
    assert!(!matches(
        quoted,
        "[2026-01-01T00:00:00Z INFO  mesos_tutorial::scheduler] task 17 is in state TASK_FINISHED: done after 12 ms"
    ));
    // Nor is the log target, or the spacing.
    assert!(!matches(
        quoted,
        "[t INFO  mesos_tutorial::scheduler::noop] task 1 is in state TASK_FINISHED: done after 1 ms"
    ));
    assert!(!matches(
        quoted,
        "[t INFO mesos_tutorial::scheduler] task 1 is in state TASK_FINISHED: done after 1 ms"
    ));
    // A placeholder is never empty, and the line must match to its end.
    assert!(!matches(
        quoted,
        "[t INFO  mesos_tutorial::scheduler] task 1 is in state TASK_FINISHED: done after  ms"
    ));
    assert!(!matches(
        quoted,
        "[t INFO  mesos_tutorial::scheduler] task 1 is in state TASK_FINISHED: done after 1 ms!"
    ));
    // Without a placeholder, only the same line matches.
    assert!(matches(
        "6/6 images done, 0 failed",
        "6/6 images done, 0 failed"
    ));
    assert!(!matches(
        "6/6 images done, 0 failed",
        "5/6 images done, 0 failed"
    ));
    // A placeholder inside a word, and several in a row.
    assert!(matches(
        "at http://127.0.0.1:…/files/…",
        "at http://127.0.0.1:4242/files/executor"
    ));
    assert!(!matches(
        "at http://127.0.0.1:…/files/…",
        "at http://127.0.0.1:4242/files/"
    ));
}

#[test]
fn quoted_lines_without_dots_between_them_are_printed_one_after_the_other() {
    let sections = parse("## S\n```text\nA …\nB\n...\nD\n```\n~~~text\nE\n~~~\n");
    let runs = &sections[0].runs;
    // A block fenced with ~~~ is read like one fenced with ```.
    assert_eq!(*runs, vec![vec!["A …", "B"], vec!["D"], vec!["E"]]);
    let stream = |lines: &[&str]| Stream {
        name: "stderr of `x`".to_string(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
    };
    // A run in a row, with other lines around it.
    assert!(check_quotes("S", runs, &[stream(&["0", "A 1", "B", "C", "D", "E"])]).is_ok());
    // A later occurrence of the run counts too.
    assert!(check_quotes("S", runs, &[stream(&["A 1", "C", "A 2", "B", "D", "E"])]).is_ok());
    // Runs apart (after `...`, or in another block) are not ordered.
    assert!(check_quotes("S", runs, &[stream(&["E", "D", "A 1", "B"])]).is_ok());
    // A line between A and B: the error names the run, the line expected
    // next and what came instead.
    let err = check_quotes("S", runs, &[stream(&["A 1", "C", "B", "D", "E"])]).unwrap_err();
    assert!(
        err.contains(
            "after\n  A 1\nthe next quoted line\n  B\nwas expected, and this came instead:\n  C\n"
        ),
        "{err}"
    );
    // A run does not continue from one stream into another.
    let err = check_quotes("S", runs, &[stream(&["A 1", "D", "E"]), stream(&["B"])]).unwrap_err();
    assert!(err.contains("  D\n"), "{err}");
    let err = check_quotes("S", runs, &[stream(&["D", "E", "A 1"]), stream(&["B"])]).unwrap_err();
    assert!(
        err.contains("(nothing: the stderr of `x` ends there)"),
        "{err}"
    );
    // A line printed nowhere is reported as such.
    let err = check_quotes("S", runs, &[stream(&["A 1", "B", "E"])]).unwrap_err();
    assert!(err.contains("not printed:\n  D\n"), "{err}");
}

#[test]
fn commands_are_read_as_programs_and_arguments() {
    assert_eq!(
        parse_command("cargo run --bin scheduler -- --step launch --tasks 20"),
        Some((
            Program::Scheduler,
            vec![
                "--step".into(),
                "launch".into(),
                "--tasks".into(),
                "20".into()
            ]
        ))
    );
    assert_eq!(
        parse_command("cargo run --bin scheduler"),
        Some((Program::Scheduler, vec![]))
    );
    assert_eq!(parse_command("cargo test"), None);
    let sections = parse(
        "## A\n```sh\ncargo run --bin mesos-local -- --port 5050   # terminal 1\n```\n\
         ```text\nline one\n...\n\n```\n## B\n",
    );
    assert_eq!(sections.len(), 2);
    assert_eq!(
        sections[0].commands,
        ["cargo run --bin mesos-local -- --port 5050"]
    );
    assert_eq!(sections[0].runs, [["line one"]]);
    assert!(sections[1].commands.is_empty());
}

#[test]
#[should_panic(expected = "does not know how to run")]
fn an_unknown_command_in_the_readme_fails_the_test() {
    parse_command("make workshop");
}
