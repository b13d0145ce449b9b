//! The live page at `/`, in a real browser: headless Chromium reads the
//! page of a `mesos-local` while workshop step 2 runs against it, and
//! clicks an agent's Drain and Reactivate buttons.
//!
//! Chromium is driven from the command line, with no protocol library:
//! `--dump-dom` prints the page as its script left it after
//! `--virtual-time-budget` milliseconds (so the DOM shows what the page drew
//! from `/master/state`), and `--enable-logging=stderr` prints each console
//! message, script errors included, as a `CONSOLE` line on stderr. The
//! buttons are clicked through Chromium's DevTools protocol
//! (`tests/common/devtools.rs`), and their effect read from
//! `/master/state`.
//!
//! The test needs Debian's `chromium` package (`apt-get install chromium`);
//! without it, it prints a `SKIPPED` line and passes without checking
//! anything, unless `MESOS_TUTORIAL_REQUIRE_CHROMIUM=1` is set (CI sets it,
//! and installs Chromium): then it fails.

mod common;

use common::devtools::Browser;
use common::programs::Program;
use common::temp_dir::TempDir;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long step 2 and the page may take to show every task finished.
const LIMIT: Duration = Duration::from_secs(90);
/// How long one Chromium run may take.
const CHROMIUM_LIMIT: Duration = Duration::from_secs(60);
/// Set to `1` where a missing Chromium must fail the test rather than skip
/// it.
const REQUIRE_CHROMIUM: &str = "MESOS_TUTORIAL_REQUIRE_CHROMIUM";

/// Whether Chromium runs here; if not, says the test is skipped, unless
/// [`REQUIRE_CHROMIUM`] makes that a failure.
fn chromium_runs() -> bool {
    let Ok(mut version) = Program::try_start(Command::new("chromium").arg("--version")) else {
        let missing = "no `chromium` on PATH (Debian: apt-get install chromium)";
        let required = std::env::var(REQUIRE_CHROMIUM).is_ok_and(|value| value == "1");
        assert!(!required, "{missing}, and {REQUIRE_CHROMIUM}=1 requires it");
        // Straight to standard error: `cargo test` captures what
        // `eprintln!` prints, and shows it only for a failed test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {missing}; the live page was not checked \
             (set {REQUIRE_CHROMIUM}=1 to make this a failure)"
        );
        return false;
    };
    version.finish(CHROMIUM_LIMIT).assert_code(0);
    true
}

#[test]
fn the_live_page_shows_step_2_in_chromium() {
    if !chromium_runs() {
        return;
    }
    let dir = TempDir::new("browser");
    let port = free_port();
    let cluster = Guard::spawn(
        Command::new(env!("CARGO_BIN_EXE_mesos-local"))
            .args(["--port", &port.to_string()])
            .args(["--agent-port", &free_port().to_string()])
            .arg("--work-dir")
            .arg(dir.path().join("work")),
        &dir.path().join("mesos-local.log"),
    );
    wait_for_line(&dir.path().join("mesos-local.log"), "Ready.");
    let page = format!("http://127.0.0.1:{port}/");

    // Nothing running yet: the page says so, and draws the agent.
    let (empty, errors) = render(&page, &dir.path().join("profile-empty"));
    assert!(empty.contains("No framework is registered"), "{empty}");
    assert!(empty.contains("Agent "), "{empty}");
    assert_eq!(errors, Vec::<String>::new());

    // Step 2: six tasks of a second and a half each, so that they are seen
    // running before they finish.
    let master = format!("127.0.0.1:{port}");
    let scheduler_log = dir.path().join("scheduler.log");
    let scheduler = Guard::spawn(
        Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(["--master", &master, "--step", "launch", "--tasks", "6"])
            .args(["--task-millis", "1500"])
            .args(["--executor", env!("CARGO_BIN_EXE_executor")])
            .current_dir(dir.path()),
        &scheduler_log,
    );

    let deadline = Instant::now() + LIMIT;
    let mut seen_running = false;
    let mut round = 0;
    loop {
        round += 1;
        let profile = dir.path().join(format!("profile-{round}"));
        let (dom, errors) = render(&page, &profile);
        assert_eq!(errors, Vec::<String>::new(), "script errors in the console");
        seen_running |= dom.contains(r#"data-state="TASK_RUNNING""#);
        let finished = dom.matches(r#"data-state="TASK_FINISHED""#).count();
        if finished == 6 {
            assert!(dom.contains("Rust Tutorial Framework"), "{dom}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed six finished tasks; the last page:\n{dom}"
        );
    }
    assert!(seen_running, "no page showed a task running");
    // The scheduler tears its framework down (and the executor with it)
    // before mesos-local is killed.
    let status = scheduler.wait(Instant::now() + LIMIT);
    assert!(
        status.success(),
        "the scheduler exited with {status}:\n{}",
        read_log(&scheduler_log)
    );
    drop(cluster);
}

#[test]
fn the_drain_button_drains_an_agent_in_chromium() {
    if !chromium_runs() {
        return;
    }
    let dir = TempDir::new("browser-drain");
    let port = free_port();
    let log = dir.path().join("mesos-local.log");
    let _cluster = Guard::spawn(
        Command::new(env!("CARGO_BIN_EXE_mesos-local"))
            .args([
                "--port",
                &port.to_string(),
                "--agent-port",
                "0",
                "--agents",
                "2",
            ])
            .arg("--work-dir")
            .arg(dir.path().join("work")),
        &log,
    );
    wait_for_line(&log, "Ready.");
    let master = format!("127.0.0.1:{port}");
    let mut browser = Browser::open(&format!("http://{master}/"), &dir.path().join("profile"));

    // Nothing runs there, so the drained agent is drained at once.
    let agent = click(&mut browser, "DRAIN_AGENT", None);
    let state = wait_for_state(&master, |state| {
        agent_json(state, &agent).contains(r#""drain_info":{"state":"DRAINED""#)
    });
    assert!(agent_json(&state, &agent).contains(r#""deactivated":true"#));
    assert!(
        read_log(&log).contains("Processing call DRAIN_AGENT"),
        "the page made the operator call"
    );

    // Once the page shows it drained, its button reactivates it.
    let again = click(&mut browser, "REACTIVATE_AGENT", Some(&agent));
    assert_eq!(again, agent);
    let state = wait_for_state(&master, |state| {
        agent_json(state, &agent).contains(r#""deactivated":false"#)
    });
    assert!(
        !agent_json(&state, &agent).contains("drain_info"),
        "{state}"
    );
}

/// Clicks the first button of the page for `call` (of `agent`, if given)
/// once the page drew it, and returns the button's agent id.
fn click(browser: &mut Browser, call: &str, agent: Option<&str>) -> String {
    let selector = match agent {
        Some(agent) => format!(r#"button[data-call="{call}"][data-agent="{agent}"]"#),
        None => format!(r#"button[data-call="{call}"]"#),
    };
    let script = format!(
        r#"new Promise((resolve, reject) => {{
             const deadline = Date.now() + 30000;
             const look = () => {{
               const button = document.querySelector('{selector}');
               if (button) {{ button.click(); resolve(button.dataset.agent); }}
               else if (Date.now() > deadline) reject(new Error("no button {call}"));
               else setTimeout(look, 100);
             }};
             look();
           }})"#
    );
    let answer = browser.evaluate(&script);
    answer
        .split(r#""value":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the click did not happen: {answer}"))
        .to_string()
}

/// The master's `/master/state` once it contains `text`.
fn wait_for_state(master: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let state = ureq::get(&format!("http://{master}/master/state"))
            .call()
            .ok()
            .and_then(|mut answer| answer.body_mut().read_to_string().ok())
            .unwrap_or_default();
        if ready(&state) {
            return state;
        }
        assert!(
            Instant::now() < deadline,
            "the state never got there: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The JSON object of agent `id` in the state, as text.
fn agent_json<'a>(state: &'a str, id: &str) -> &'a str {
    let start = state
        .find(&format!(r#"{{"id":"{id}""#))
        .unwrap_or_else(|| panic!("no agent {id} in {state}"));
    let rest = &state[start..];
    // Up to the next agent, or the end of the list.
    let end = [r#"},{"id":""#, r#""recovered_slaves""#]
        .iter()
        .filter_map(|next| rest[1..].find(next))
        .min()
        .unwrap_or(rest.len() - 1);
    &rest[..=end]
}

/// Loads `url` in a fresh headless Chromium (its profile in `profile`,
/// removed afterwards), lets the page's script run for three seconds of
/// virtual time, and returns the page's DOM and the console lines that
/// report errors. Chromium runs in a process group of its own (Unix), so
/// that one that hangs is killed with every process it started.
fn render(url: &str, profile: &Path) -> (String, Vec<String>) {
    let mut chromium = Command::new("chromium");
    chromium
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url);
    #[cfg(unix)]
    let mut program = Program::start_in_group(&mut chromium);
    #[cfg(not(unix))]
    let mut program = Program::start(&mut chromium);
    let finished = program.finish(CHROMIUM_LIMIT);
    let _ = std::fs::remove_dir_all(profile);
    let errors = finished
        .stderr
        .lines()
        .filter(|line| line.contains("CONSOLE"))
        .map(str::to_string)
        .collect();
    (finished.stdout, errors)
}

/// A child process, killed when the test ends however it ends, with its
/// output in a log file.
struct Guard {
    child: Child,
    log: PathBuf,
}

impl Guard {
    fn spawn(command: &mut Command, log: &Path) -> Guard {
        let file = File::create(log).expect("a log file");
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file handle"))
            .stderr(file)
            .spawn()
            .expect("the program starts");
        Guard {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Waits for the program to exit by itself, until `deadline`.
    fn wait(mut self, deadline: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the program") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not exit in time:\n{}",
                read_log(&self.log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

fn wait_for_line(log: &Path, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(line)
    {
        assert!(
            Instant::now() < deadline,
            "{} never said {line:?}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}
