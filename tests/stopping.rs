//! How a run ends when it does not simply finish: Ctrl+C in each step,
//! mistakes that would otherwise wait for ever, and images given as a
//! shell gives them. Each test runs the real `scheduler` binary on the
//! embedded cluster, with its `TMPDIR` and output folder inside a
//! directory of the test's own.

mod common;

#[cfg(unix)]
use common::programs::{assert_nothing_left_behind, start_mesos_local, Finished};
use common::programs::{scheduler_in, Program};
use common::temp_dir::TempDir;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");

/// How long any step below may take on a busy machine.
const LIMIT: Duration = Duration::from_secs(90);

/// A test's directory: `tmp/` is the scheduler's `TMPDIR`, `output/` its
/// output folder.
struct Workspace {
    root: TempDir,
}

impl Workspace {
    fn new(test: &str) -> Workspace {
        let root = TempDir::new(test);
        std::fs::create_dir_all(root.path().join("tmp")).expect("create tmp");
        Workspace { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The names in a folder of the workspace, hidden ones included.
    fn entries(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(name))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Small demo JPEGs to invert.
    fn images(&self, count: u32, size: u32) -> Vec<String> {
        (1..=count)
            .map(|seed| {
                let path = self.path(&format!("picture-{seed:03}.jpg"));
                mesos_tutorial::demo_images::write_demo_image(&path, size, size, seed)
                    .expect("write a JPEG");
                path.display().to_string()
            })
            .collect()
    }
}

/// Starts the scheduler on the embedded cluster with `args`, its output
/// and temporary files inside `workspace`.
fn start_scheduler(workspace: &Workspace, args: &[&str]) -> Program {
    Program::start(scheduler_in(workspace.root.path()).args(args))
}

/// Starts the scheduler as [`start_scheduler`] does, presses Ctrl+C once it
/// logged `line`, and waits up to `limit` for it to end.
#[cfg(unix)]
fn ctrl_c_after(workspace: &Workspace, args: &[&str], line: &str, limit: Duration) -> Finished {
    let mut scheduler = start_scheduler(workspace, args);
    scheduler.wait_for_line(line, LIMIT);
    scheduler.interrupt();
    scheduler.finish(limit)
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_1_says_how_many_offers_were_declined() {
    let workspace = Workspace::new("ctrl-c-step1");
    let run = ctrl_c_after(
        &workspace,
        &["--step", "register"],
        "Declining offer",
        LIMIT,
    );
    run.assert_code(130);
    run.assert_stderr("interrupted: tearing down");
    run.assert_stdout(" received and declined (step 1 launches nothing)");
    // Ctrl+C came after the first decline: at least one offer is counted.
    let declined: usize = run
        .stdout
        .split_whitespace()
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("a count first:{}", run.dump()));
    assert!(declined >= 1, "{}", run.dump());
    let noun = if declined == 1 { "offer" } else { "offers" };
    run.assert_stdout(&format!("{declined} {noun} received and declined"));
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_2_tears_down_and_says_how_many_tasks_finished() {
    let workspace = Workspace::new("ctrl-c-step2");
    let run = ctrl_c_after(
        &workspace,
        &[
            "--step",
            "launch",
            "--executor",
            EXECUTOR,
            "--task-millis",
            "200",
        ],
        "is in state TASK_FINISHED",
        LIMIT,
    );
    run.assert_code(130);
    run.assert_stderr("interrupted: tearing down");
    // At least the one whose TASK_FINISHED was awaited.
    assert!(
        run.stderr.contains(" 1 task finished") || run.stderr.contains(" tasks finished"),
        "{}",
        run.dump()
    );
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

#[cfg(unix)]
#[test]
fn ctrl_c_in_step_3_prints_the_table_and_keeps_only_finished_results() {
    let workspace = Workspace::new("ctrl-c-step3");
    let images = workspace.images(40, 400);
    let mut args = vec!["--executor", EXECUTOR, "--images"];
    args.extend(images.iter().map(String::as_str));
    let run = ctrl_c_after(&workspace, &args, "/40 images done", LIMIT);
    run.assert_code(130);
    run.assert_stderr("interrupted: tearing down");
    run.assert_stdout("images done");
    run.assert_stdout("attempts  result");
    run.assert_stderr("The finished results are in");
    let outputs = workspace.entries("output");
    assert!(!outputs.is_empty(), "{}", run.dump());
    assert!(
        outputs.len() < 40,
        "the batch was not interrupted{}",
        run.dump()
    );
    for name in &outputs {
        assert!(
            name.contains("-picture-") && name.contains("-inverted."),
            "{name} is not a finished result{}",
            run.dump()
        );
    }
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

#[cfg(unix)]
#[test]
fn ctrl_c_with_failover_leaves_the_framework_and_keeps_its_id() {
    let workspace = Workspace::new("ctrl-c-failover");
    let id_file = workspace.path("framework-id");
    let id_file_arg = id_file.display().to_string();
    let run = ctrl_c_after(
        &workspace,
        &[
            "--step",
            "launch",
            "--executor",
            EXECUTOR,
            "--failover-timeout",
            "60",
            "--framework-id-file",
            &id_file_arg,
        ],
        "Registered with framework ID",
        LIMIT,
    );
    run.assert_code(130);
    assert!(
        run.stderr.contains("interrupted: leaving framework")
            && run.stderr.contains("for 60 s (--failover-timeout)"),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("tearing down"), "{}", run.dump());
    let id = std::fs::read_to_string(&id_file).expect("the id file is kept");
    run.assert_stderr(id.trim());
}

#[test]
fn a_task_larger_than_the_embedded_agent_is_refused_at_once() {
    let workspace = Workspace::new("too-large");
    let started = Instant::now();
    let mut scheduler = start_scheduler(&workspace, &["--task-mem", "999999"]);
    let run = scheduler.finish(Duration::from_secs(20));
    run.assert_code(2);
    assert!(
        run.stderr.contains("--task-mem 999999 MB")
            && run.stderr.contains("embedded agent's 1024 MB")
            && run.stderr.contains("raise --resources"),
        "{}",
        run.dump()
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !run.stderr.contains("Started an embedded"),
        "{}",
        run.dump()
    );
}

#[cfg(unix)]
#[test]
fn tasks_that_keep_failing_stop_step_2_with_mesos_reason() {
    let workspace = Workspace::new("failing");
    let mut scheduler = start_scheduler(
        &workspace,
        &["--step", "launch", "--executor", "/bin/false"],
    );
    let run = scheduler.finish(LIMIT);
    run.assert_code(2);
    run.assert_stderr("error: 5 tasks failed in a row (--max-failures 5)");
    run.assert_stderr("TASK_FAILED");
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

#[test]
fn images_may_follow_as_arguments() {
    let workspace = Workspace::new("positional");
    let images = workspace.images(3, 32);
    // `--images a b c`, as `--images *.jpg` expands: `b` and `c` are
    // positional arguments.
    let mut args = vec!["--executor", EXECUTOR, "--images"];
    args.extend(images.iter().map(String::as_str));
    let run = start_scheduler(&workspace, &args).finish(LIMIT);
    run.assert_code(0);
    run.assert_stdout("3/3 images done");
    assert_eq!(
        workspace.entries("output"),
        [
            "001-picture-001-inverted.jpg",
            "002-picture-002-inverted.jpg",
            "003-picture-003-inverted.jpg"
        ],
        "{}",
        run.dump()
    );
}

#[test]
fn images_with_another_step_are_refused() {
    let workspace = Workspace::new("positional-step2");
    let run = start_scheduler(&workspace, &["--step", "launch", "a.jpg"]).finish(LIMIT);
    run.assert_code(2);
    run.assert_stderr("'a.jpg' is an image, but --step launch");
}

#[cfg(unix)]
#[test]
fn ctrl_c_ends_keep_serving_after_a_finished_batch() {
    let workspace = Workspace::new("keep-serving");
    let images = workspace.images(2, 32);
    let mut args = vec!["--executor", EXECUTOR, "--keep-serving", "--images"];
    args.extend(images.iter().map(String::as_str));
    let run = ctrl_c_after(
        &workspace,
        &args,
        "serving until Ctrl+C",
        Duration::from_secs(20),
    );
    // The batch succeeded before Ctrl+C, as the table says; Ctrl+C still
    // ends the process with 130, as in every step (README's exit codes).
    run.assert_code(130);
    run.assert_stdout("2/2 images done");
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

/// README's Step 4 demo as a person runs it: Ctrl+C in the middle of the
/// batch leaves the framework to the master, and the same command again
/// finishes it.
#[cfg(unix)]
#[test]
fn ctrl_c_mid_batch_with_failover_then_the_same_command_finishes_it() {
    let workspace = Workspace::new("ctrl-c-restart");
    let (_cluster, port) = start_mesos_local(&workspace.path("tmp"), LIMIT);
    let images = workspace.images(30, 320);
    let master = format!("127.0.0.1:{port}");
    let id_file = workspace.path("framework-id").display().to_string();
    let mut args = vec![
        "--master",
        &master,
        "--executor",
        EXECUTOR,
        "--task-cpus",
        "1.9",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        &id_file,
        "--images",
    ];
    args.extend(images.iter().map(String::as_str));

    let run = ctrl_c_after(&workspace, &args, "5/30 images done", LIMIT);
    run.assert_code(130);
    run.assert_stderr("interrupted: leaving framework");
    run.assert_stdout("attempts  result");
    let done_before = workspace.entries("output");
    assert!(
        (5..30).contains(&done_before.len()),
        "{done_before:?}{}",
        run.dump()
    );
    assert!(done_before.iter().all(|name| !name.starts_with('.')));
    assert!(workspace.path("framework-id").exists(), "the id is kept");

    let again = start_scheduler(&workspace, &args).finish(LIMIT);
    again.assert_code(0);
    assert!(
        again.stderr.contains(&format!(
            "Continuing an earlier run: {} images were done already",
            done_before.len()
        )),
        "{}",
        again.dump()
    );
    again.assert_stdout("30/30 images done, 0 failed");
    assert_eq!(workspace.entries("output").len(), 30);
    assert!(!workspace.path("framework-id").exists());
}

/// A master that is not ready: it answers every call with `503`, as one
/// that is electing a leader or recovering does, except that it answers the
/// first with `first` (a whole HTTP response) if given. It keeps the bodies
/// of the calls it received.
#[cfg(unix)]
struct UnreadyMaster {
    port: u16,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

#[cfg(unix)]
impl UnreadyMaster {
    fn start(first: Option<String>) -> UnreadyMaster {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("an address").port();
        let calls: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let kept = std::sync::Arc::clone(&calls);
        std::thread::spawn(move || {
            let mut first = first;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(body) = read_request(&mut stream) else {
                    continue;
                };
                if body == "stop" {
                    return;
                }
                kept.lock().expect("the calls").push(body);
                let message = "Master is not the leader yet";
                let answer = first.take().unwrap_or_else(|| {
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{message}",
                        message.len()
                    )
                });
                let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
            }
        });
        UnreadyMaster { port, calls }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("the calls").clone()
    }
}

#[cfg(unix)]
impl Drop for UnreadyMaster {
    /// Ends the accept loop with a request of its own.
    fn drop(&mut self) {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let stop = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nstop";
            let _ = std::io::Write::write_all(&mut stream, stop.as_bytes());
        }
    }
}

/// Reads one HTTP request and returns its body (which `Content-Length`
/// sizes).
#[cfg(unix)]
fn read_request(stream: &mut std::net::TcpStream) -> Option<String> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// Waits until the scheduler announces a wait of at least `seconds` before
/// subscribing again, presses Ctrl+C in that wait, and expects it to stop
/// within a few seconds rather than after the retries (a minute).
#[cfg(unix)]
fn ctrl_c_while_subscribing(scheduler: &mut Program, seconds: f64) -> Finished {
    loop {
        let line = scheduler.wait_for_line("; subscribing again in ", LIMIT);
        let wait = line.rsplit(" in ").next().and_then(|rest| {
            let number = rest.trim_end_matches(" s");
            number.parse::<f64>().ok()
        });
        if wait.expect("the wait in seconds") >= seconds {
            break;
        }
    }
    scheduler.interrupt();
    let run = scheduler.finish(Duration::from_secs(10));
    run.assert_code(130);
    assert!(
        run.stderr.contains("interrupted while subscribing: ")
            && run.stderr.contains("Master is not the leader yet"),
        "{}",
        run.dump()
    );
    run
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_the_master_is_not_ready_stops_at_once() {
    let workspace = Workspace::new("ctrl-c-subscribing");
    let master = UnreadyMaster::start(None);
    let address = master.address();
    let args = [
        "--master",
        &address,
        "--content-type",
        "json",
        "--executor",
        EXECUTOR,
    ];
    let mut scheduler = start_scheduler(&workspace, &args);
    let run = ctrl_c_while_subscribing(&mut scheduler, 2.0);
    // Step 3 says what was done (nothing), as after any Ctrl+C; with no
    // subscription there is no framework to tear down.
    run.assert_stdout("attempts  result");
    assert!(!run.stderr.contains("tearing down"), "{}", run.dump());
    let calls = master.calls();
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(
        calls.iter().all(|call| call.contains("SUBSCRIBE")),
        "{calls:?}"
    );
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_subscribing_again_keeps_the_framework_for_failover() {
    let workspace = Workspace::new("ctrl-c-resubscribing");
    // The first subscription gets `SUBSCRIBED`, then its stream ends.
    let event = r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"fw-7"},"heartbeat_interval_seconds":15}}"#;
    let record = format!("{}\n{event}", event.len());
    let stream = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMesos-Stream-Id: s-1\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{record}\r\n0\r\n\r\n",
        record.len()
    );
    let master = UnreadyMaster::start(Some(stream));
    let (address, id_file) = (master.address(), workspace.path("framework-id"));
    let id_file_arg = id_file.display().to_string();
    let args = [
        "--master",
        &address,
        "--step",
        "register",
        "--content-type",
        "json",
        "--failover-timeout",
        "60",
        "--framework-id-file",
        &id_file_arg,
    ];
    let mut scheduler = start_scheduler(&workspace, &args);
    scheduler.wait_for_line("Registered with framework ID fw-7", LIMIT);
    let run = ctrl_c_while_subscribing(&mut scheduler, 1.0);
    run.assert_stdout("0 offers received and declined (step 1 launches nothing)");
    // No subscription, so no `TEARDOWN`: the master (once back) keeps the
    // framework for its failover timeout, and the id file keeps its id.
    let calls = master.calls();
    assert!(
        calls.iter().all(|call| !call.contains("TEARDOWN")),
        "{calls:?}"
    );
    assert!(
        calls[1..].iter().all(|call| call.contains("fw-7")),
        "{calls:?}"
    );
    let id = std::fs::read_to_string(&id_file).expect("the id file is kept");
    assert_eq!(id.trim(), "fw-7");
    assert_nothing_left_behind(workspace.root.path(), &run.dump());
}
