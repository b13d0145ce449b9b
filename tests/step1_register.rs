//! Workshop step 1, end to end: the real `scheduler` binary registers with
//! the embedded master, logs every offer and declines it.
//!
//! Declining with a filter (`--refuse-seconds`) tells the master not to
//! offer the same resources again for that long. These tests watch the
//! scheduler's log and check both halves of that promise: the offer comes
//! back, but not before the filter expires.

mod common;

use common::programs::Program;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The scheduler process, killed when the test ends however it ends.
struct Scheduler {
    child: Child,
    lines: Receiver<(Instant, String)>,
    /// The scheduler's TMPDIR: the embedded cluster's private sockets live
    /// there, and a killed scheduler cannot remove them itself.
    tmp: std::path::PathBuf,
}

impl Scheduler {
    fn start(args: &[&str]) -> Scheduler {
        let tmp = std::env::temp_dir().join(format!(
            "step1-{}-{}",
            std::process::id(),
            mesos_tutorial::random::token()
        ));
        std::fs::create_dir_all(&tmp).expect("create the scheduler's TMPDIR");
        let mut child = Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the scheduler binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Scheduler { child, lines, tmp }
    }

    /// The next log line containing `text`, and when it was read.
    fn wait_for(&self, text: &str, within: Duration) -> (Instant, String) {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return (at, line),
                Ok(_) => {}
                Err(_) => panic!("no log line containing {text:?} within {within:?}"),
            }
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

fn offers_are_logged_declined_and_offered_again(content_type: &str) {
    let started = Instant::now();
    let scheduler = Scheduler::start(&[
        "--step",
        "register",
        "--refuse-seconds",
        "1",
        "--content-type",
        content_type,
    ]);

    let (_, registered) =
        scheduler.wait_for("Registered with framework ID", Duration::from_secs(10));
    let framework_id = registered.rsplit(' ').next().unwrap().to_string();
    assert!(!framework_id.is_empty());

    // The embedded agent's resources, as the scheduler logs them.
    let (first_at, offer) = scheduler.wait_for("Received offer", Duration::from_secs(5));
    assert!(
        offer.contains("cpus 2, mem 1024, disk 4096, ports [31000-32000]"),
        "{offer}"
    );
    let offer_id = offer
        .split("Received offer ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let (declined_at, decline) = scheduler.wait_for("Declining offer", Duration::from_secs(5));
    assert!(
        decline.contains(&offer_id),
        "the offer just received is declined: {decline}"
    );

    // The same resources come back in a new offer once the filter expires,
    // and not before.
    let (again_at, again) = scheduler.wait_for("Received offer", Duration::from_secs(10));
    assert!(!again.contains(&offer_id), "a new offer id: {again}");
    let gap = again_at.duration_since(declined_at);
    eprintln!("re-offered {gap:?} after the decline");
    assert!(
        gap >= Duration::from_millis(900),
        "re-offered after {gap:?}, before the 1 s filter expired"
    );
    // The upper bound catches a DECLINE sent without its filter: the master
    // then applies Mesos's default, `Filters.refuse_seconds` = 5 s, and the
    // offer comes back after 5 s. With the 1 s filter it comes back within
    // an allocation interval (20 ms in the embedded master) of the expiry;
    // 4 s leaves a loaded machine slack on either side.
    assert!(
        gap < Duration::from_secs(4),
        "re-offered after {gap:?}: the decline's 1 s filter was not applied \
         (the master's default is 5 s)"
    );
    scheduler.wait_for("Declining offer", Duration::from_secs(5));

    // For the record: how long the first offer took (the issue asks for
    // "within a second"; a loaded CI machine gets slack, so this only
    // reports it).
    eprintln!(
        "first offer logged {:?} after start",
        first_at.duration_since(started)
    );
}

#[test]
fn offers_are_logged_declined_and_offered_again_in_protobuf() {
    offers_are_logged_declined_and_offered_again("protobuf");
}

#[test]
fn offers_are_logged_declined_and_offered_again_in_json() {
    offers_are_logged_declined_and_offered_again("json");
}

#[test]
fn an_unreachable_master_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Program::start(Command::new(env!("CARGO_BIN_EXE_scheduler")).args([
        "--step",
        "register",
        "--master",
        &format!("127.0.0.1:{port}"),
    ]))
    .finish(Duration::from_secs(30));
    output.assert_code(2);
    output.assert_stderr("could not reach");
    output.assert_stderr(&format!("127.0.0.1:{port}"));
}
