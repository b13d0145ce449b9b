//! Processes as Linux shows them in `/proc`.
//!
//! An executor runs in its sandbox, so a process whose working directory
//! is inside a test's directory is one the test started, directly or
//! through an agent. Tests look for them to check that none is left
//! behind, and to kill the ones a failed test left. Elsewhere than on
//! Linux none are found.

use std::path::Path;
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

/// The processes whose working directory is `dir` or inside it. Processes
/// of other users, or that exit while we look, cannot be read and are
/// skipped.
pub fn processes_inside(dir: &Path) -> Vec<u32> {
    // `/proc` shows working directories with every link resolved.
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(entry.path().join("cwd")).ok()?;
            cwd.starts_with(&dir).then_some(pid)
        })
        .collect()
}

/// Kills each process with `SIGKILL`; one already gone is no error.
pub fn kill_processes(pids: &[u32]) {
    for &pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            send_kill(pid);
        }
    }
}

/// Kills every process of the process group `group` with `SIGKILL`.
/// Whether there was one to kill.
pub fn kill_process_group(group: u32) -> bool {
    i32::try_from(group).is_ok_and(|group| send_kill(-group))
}

#[cfg(unix)]
/// Sends `SIGINT` to the process `pid`, as Ctrl+C in its terminal does.
/// Whether it was delivered.
pub fn interrupt(pid: u32) -> bool {
    const SIGINT: i32 = 2;
    i32::try_from(pid).is_ok_and(|pid| send_signal(pid, SIGINT))
}

#[cfg(unix)]
fn send_kill(pid: i32) -> bool {
    const SIGKILL: i32 = 9;
    send_signal(pid, SIGKILL)
}

#[cfg(unix)]
/// `kill(2)`, straight from the C library the standard library links
/// anyway: the tests then need no `kill` program, which a minimal machine
/// may lack.
fn send_signal(pid: i32, signal: i32) -> bool {
    extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    // SAFETY: `kill` takes two integers and touches no memory of ours.
    unsafe { kill(pid, signal) == 0 }
}

/// Windows has no signals nor process groups: `taskkill` ends the process
/// and every process it started (a negative `pid` names a group, led by the
/// process of that id). It runs in a `Drop`, where a panic would abort the
/// tests: one that does not end in ten seconds is killed and counts as a
/// failure.
#[cfg(not(unix))]
fn send_kill(pid: i32) -> bool {
    let started = std::process::Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.unsigned_abs().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut taskkill) = started else {
        return false;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match taskkill.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = taskkill.kill();
    let _ = taskkill.wait();
    false
}

/// How many threads and open file descriptors this process has: a server
/// that leaks either per request shows it here.
#[cfg(target_os = "linux")]
pub fn threads_and_descriptors() -> (usize, usize) {
    let count = |dir: &str| {
        std::fs::read_dir(dir)
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    (count("/proc/self/task"), count("/proc/self/fd"))
}

/// How much this process's threads and descriptors grew since `before`, at
/// the least: sampled every 100 ms for up to five seconds, or until both
/// grew by less than `enough`. The other tests of a file run meanwhile,
/// with threads and sockets of their own, so one sample may count theirs;
/// the least growth seen is the fairest.
#[cfg(target_os = "linux")]
pub fn least_growth_since(before: (usize, usize), enough: usize) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut least = (usize::MAX, usize::MAX);
    while Instant::now() < deadline && (least.0 >= enough || least.1 >= enough) {
        std::thread::sleep(Duration::from_millis(100));
        let after = threads_and_descriptors();
        least.0 = least.0.min(after.0.saturating_sub(before.0));
        least.1 = least.1.min(after.1.saturating_sub(before.1));
    }
    least
}
