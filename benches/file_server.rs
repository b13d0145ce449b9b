//! How fast the file server hands out a file, compared with reading it.
//!
//! Every agent that starts our executor first downloads it from the file
//! server (Mesos's fetcher), and in step 3 every task downloads an image
//! from it. When a framework starts on many agents at once, they all fetch
//! together; the server (four `tiny_http` worker threads streaming from the
//! file) must keep up.
//!
//! The benchmark writes a 16 MiB file into a temporary directory (a fixed
//! size, rather than the executor binary's, so that runs compare), serves it
//! with `FileServer`, and lets 8 threads each download it several times with
//! `ureq`, all at once, over loopback. The figure is the aggregate MB/s of
//! all downloads; the limit is reading the same file with `std::fs::read`
//! from the page cache (after a warm-up read). There is no fixed target:
//! HTTP adds two copies through sockets, the client threads share the
//! machine with the server, and `tiny_http` 0.12 sends every response body
//! with `std::io::copy`, 8 KiB per read and per send. Each figure is the
//! best of several rounds.

mod report;

use mesos_tutorial::server::FileServer;
use report::{best_of, figure, megabytes_per_second, time, Table, Target, TempDir};
use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

const CLIENTS: usize = 8;

fn main() {
    let quick = report::quick_run();
    let (size, fetches, rounds) = if quick {
        (1024 * 1024, 1, 1)
    } else {
        (16 * 1024 * 1024, 3, 3)
    };

    let dir = TempDir::create("file-server-bench");
    let path = dir.path.join("payload.bin");
    let contents: Vec<u8> = (0..size).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(&path, &contents).expect("write the file to serve into the temp dir");

    // The limit: the same bytes from the page cache, once warm.
    let warm = std::fs::read(&path).expect("read the file back");
    assert_eq!(warm, contents);
    let read_runs = if quick { 1 } else { 10 };
    let page_cache = best_of(read_runs, || {
        time(|| {
            black_box(std::fs::read(&path).expect("read the file back"));
        })
    });

    let server = FileServer::start("127.0.0.1:0", "127.0.0.1").expect("start the file server");
    let url = server
        .serve_file("payload.bin", &path)
        .expect("a safe file name");
    let downloads = best_of(rounds, || download_round(&url, size, fetches));
    drop(server);

    let mut table = Table::new(&format!(
        "File server: a {} MiB file, {CLIENTS} clients x {fetches} downloads each, at once",
        size / (1024 * 1024)
    ));
    let total = size * CLIENTS * fetches;
    table.row(
        "aggregate download rate over loopback",
        figure(megabytes_per_second(total, downloads), "MB/s"),
        Some(figure(megabytes_per_second(size, page_cache), "MB/s")),
        Target::Report,
    );
    table.note(format!(
        "download: best of {rounds} rounds (wall time of one round, all clients); \
         limit: std::fs::read from the page cache, best of {read_runs}; MB = 10^6 bytes"
    ));
    table.note(format!(
        "the file is a {size}-byte file written to a temporary directory, removed afterwards"
    ));
    if quick {
        table.note("quick run (no --bench): figures are not meaningful");
    }
    table.print();
}

/// One round: every client downloads the file `fetches` times, all clients
/// at once. Returns the wall time of the round.
fn download_round(url: &str, size: usize, fetches: usize) -> Duration {
    time(|| {
        std::thread::scope(|scope| {
            for client in 0..CLIENTS {
                std::thread::Builder::new()
                    .name(format!("download-{client}"))
                    .spawn_scoped(scope, move || {
                        // One agent per client, as each Mesos agent fetches
                        // on its own; its connection is kept alive between
                        // downloads.
                        let agent = ureq::Agent::new_with_defaults();
                        for _ in 0..fetches {
                            assert_eq!(download(&agent, url), size, "a complete download");
                        }
                    })
                    .expect("start a download thread");
            }
        });
    })
}

/// Downloads `url` and returns how many bytes arrived; the bytes are read
/// into a buffer and dropped, as a fetcher writing to the page cache would.
fn download(agent: &ureq::Agent, url: &str) -> usize {
    let mut response = agent.get(url).call().expect("download the file");
    let mut reader = response.body_mut().as_reader();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut received = 0;
    loop {
        match reader.read(&mut buffer).expect("read the body") {
            0 => return received,
            read => received += black_box(read),
        }
    }
}
