//! Load and faults, end to end with the real binaries: whatever happens,
//! every image handed to the framework ends up inverted in the output or
//! reported as failed with a reason, exactly once in the final table.
//!
//! - `an_unwritable_output_dir_is_refused_before_anything_is_launched`;
//! - `a_decompression_bomb_fails_its_task_and_nothing_else`: an image whose
//!   header claims a huge picture is refused by the decoder's limits with a
//!   clear task failure, not an out-of-memory kill;
//! - `executors_killed_at_random_during_a_200_image_batch`, a soak test (a
//!   few seconds; Linux only, as it finds the executors in `/proc`);
//! - `ten_thousand_noop_tasks_keep_memory_flat`, a load test `#[ignore]`d
//!   because it takes about 25 seconds in a debug build on two busy cores;
//!   run it with
//!   `cargo test --test load_and_faults -- --ignored --nocapture ten_thousand`.
//!
//! Every test works in its own temporary directory (the scheduler's `TMPDIR`
//! too, so the embedded agent's sandboxes land there), kills what it starts
//! when it ends, and uses 127.0.0.1 only.

mod common;

use common::processes::{kill_processes, processes_inside};
use common::temp_dir::TempDir;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEDULER: &str = env!("CARGO_BIN_EXE_scheduler");
const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");

/// A directory of its own, removed (with any process working in it) on drop.
struct Workspace(TempDir);

impl Workspace {
    fn new(label: &str) -> Workspace {
        let dir = TempDir::new(label);
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        Workspace(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// `count` small PNG files, as an `--images` argument.
    fn images(&self, count: u32) -> String {
        let paths: Vec<String> = (0..count)
            .map(|i| {
                let path = self.path(&format!("picture-{i}.png"));
                mesos_tutorial::demo_images::write_demo_image(&path, 64, 48, i).unwrap();
                path.display().to_string()
            })
            .collect();
        paths.join(",")
    }

    /// The scheduler with `args`, its output dir in here, on the embedded
    /// cluster.
    fn scheduler(&self, args: &[&str]) -> Running {
        let mut child = Command::new(SCHEDULER)
            .args(["--executor", EXECUTOR, "--output-dir"])
            .arg(self.path("output"))
            .args(args)
            .current_dir(self.0.path())
            .env("TMPDIR", self.path("tmp"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the scheduler");
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let (sender, table) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            let _ = sender.send(text);
        });
        Running {
            child,
            lines,
            log: Vec::new(),
            table,
        }
    }

    fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path("output"))
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A running scheduler; killed on drop.
struct Running {
    child: Child,
    lines: Receiver<String>,
    log: Vec<String>,
    table: Receiver<String>,
}

impl Running {
    fn wait_for(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(text);
            self.log.push(line);
            if found {
                return;
            }
        }
        panic!("no {text:?} in the log:\n{}", self.log.join("\n"));
    }

    /// Waits for the exit; returns the status, the log and the table.
    fn finish(&mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.log.push(line);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                let table = self
                    .table
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                return (status, self.log.join("\n"), table);
            }
            assert!(
                Instant::now() < deadline,
                "the scheduler did not finish:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The scheduler's resident memory now, in KiB (Linux).
    fn rss_kib(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The table's rows: (image, attempts, result, detail).
fn rows(table: &str) -> Vec<(String, u32, String, String)> {
    table
        .lines()
        .skip_while(|line| !line.starts_with("image "))
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let image = words.next()?.to_string();
            let attempts = words.next()?.parse().ok()?;
            let result = words.next()?.to_string();
            Some((image, attempts, result, words.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

#[test]
fn an_unwritable_output_dir_is_refused_before_anything_is_launched() {
    let workspace = Workspace::new("unwritable");
    // A path below a regular file can never be a directory, even for root
    // (who may write where permissions say no).
    fs::write(workspace.path("output"), "not a directory").unwrap();
    let images = workspace.images(2);
    let mut scheduler = workspace.scheduler(&["--images", &images]);
    let (status, log, _) = scheduler.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("cannot write results to"), "{log}");
    assert!(log.contains("--output-dir"), "{log}");
    assert!(
        !log.contains("Prepared task"),
        "nothing was launched:\n{log}"
    );
}

/// A small real PNG whose header is changed to claim `width` x `height`
/// pixels (with the header's checksum fixed), so that only the decoder's
/// limits stand between it and a huge allocation.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(4, 4)
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let mut png = png.into_inner();
    // Signature (8), length (4), "IHDR" (4), width (4), height (4), ...
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn a_decompression_bomb_fails_its_task_and_nothing_else() {
    let workspace = Workspace::new("bomb");
    let good = workspace.images(1);
    let bomb = workspace.path("bomb.png");
    // 16,000 x 16,000 RGBA is about 1 GB decoded: within the dimension
    // limits, over the memory a 128 MB task may use.
    fs::write(&bomb, png_claiming(16_000, 16_000)).unwrap();
    let images = format!("{good},{}", bomb.display());
    let mut scheduler = workspace.scheduler(&["--max-attempts", "1", "--images", &images]);
    let (status, log, table) = scheduler.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{log}\n{table}");
    let rows = rows(&table);
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(rows[0].2, "done", "{table}");
    assert_eq!(rows[1].2, "FAILED", "{table}");
    assert!(rows[1].3.contains("too large to decode safely"), "{table}");
    assert!(rows[1].3.contains("--task-mem"), "{table}");
    assert_eq!(workspace.outputs(), ["001-picture-0-inverted.png"]);
}

#[test]
#[ignore = "load test, 24-27 s in a debug build on two busy cores: \
            cargo test --test load_and_faults -- --ignored ten_thousand"]
fn ten_thousand_noop_tasks_keep_memory_flat() {
    let workspace = Workspace::new("ten-thousand");
    let mut scheduler = workspace.scheduler(&[
        "--step",
        "launch",
        "--tasks",
        "10000",
        "--task-cpus",
        "0.01",
        "--task-mem",
        "1",
    ]);
    // Sampled every 1,000 tasks; the first thousands warm up the
    // allocator and fill the master's bounded record of ended tasks.
    let mut samples = Vec::new();
    for thousand in 1..=9 {
        let line = format!("task {} is in state TASK_FINISHED", thousand * 1000);
        scheduler.wait_for(&line, Duration::from_secs(300));
        samples.push(scheduler.rss_kib().expect("the scheduler's RSS"));
    }
    let (status, log, _) = scheduler.finish(Duration::from_secs(120));
    assert!(
        status.success(),
        "{}",
        &log[log.len().saturating_sub(4000)..]
    );
    assert!(log.contains("10000 tasks finished"));
    println!("scheduler RSS (KiB) every 1,000 tasks: {samples:?}");
    // The task table keeps a few dozen bytes per finished task (a few
    // hundred KiB for all); anything that grows per event (a leak, an
    // unbounded record) shows up as megabytes over 6,000 tasks.
    let (early, late) = (samples[2], samples[8]);
    assert!(
        late < early + 4 * 1024,
        "memory grew from {early} KiB to {late} KiB between 3,000 and 9,000 tasks"
    );
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "finds the executors to kill in /proc: Linux only"
)]
fn executors_killed_at_random_during_a_200_image_batch() {
    let workspace = Workspace::new("killer");
    let images = workspace.images(200);
    let mut scheduler = workspace.scheduler(&["--max-attempts", "10", "--images", &images]);
    scheduler.wait_for("images done", Duration::from_secs(60));
    // Kill whichever executor runs, at random moments, five times.
    let sandboxes = workspace.path("tmp");
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let killer = std::thread::spawn(move || {
        let mut kills = 0;
        while kills < 5 && !stopped.load(Ordering::Relaxed) {
            let pause = 20 + (mesos_tutorial::random::fraction() * 200.0) as u64;
            std::thread::sleep(Duration::from_millis(pause));
            for pid in processes_inside(&sandboxes) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "executor" {
                    kill_processes(&[pid]);
                    kills += 1;
                }
            }
        }
        kills
    });
    let (status, log, table) = scheduler.finish(Duration::from_secs(300));
    stop.store(true, Ordering::Relaxed);
    let kills = killer.join().unwrap();
    println!("killed {kills} executors");
    assert!(kills > 0, "the batch ended before any executor was killed");
    assert!(
        log.contains("TASK_FAILED") || log.contains("TASK_LOST"),
        "{log}"
    );
    assert!(
        status.success(),
        "{}\n{table}",
        &log[log.len().saturating_sub(4000)..]
    );
    let rows = rows(&table);
    assert_eq!(rows.len(), 200, "one row per image:\n{table}");
    let mut names: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 200, "each image once:\n{table}");
    assert!(rows.iter().all(|row| row.2 == "done"), "{table}");
    assert_eq!(workspace.outputs().len(), 200, "each result once");
}
