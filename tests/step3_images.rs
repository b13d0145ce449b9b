//! Workshop step 3, end to end: the real `scheduler` binary inverts images
//! on the embedded master and agent, and we check what comes out.
//!
//! Each test is one thing a workshop attendee would try, in this order:
//!
//! 1. `the_demo_batch_inverts_every_image_exactly`: our own pictures in
//!    every colour type the executor must handle (RGBA with varied
//!    transparency, RGB, grey, grey with alpha, 16-bit RGB, and two JPEGs)
//!    go through the whole path (served by the scheduler's file server,
//!    downloaded by the executor, inverted, uploaded back) and every pixel
//!    is checked: PNGs exactly, JPEGs within what lossy re-encoding allows.
//!    Then `with_no_images_the_demo_set_is_inverted`, the plain
//!    `cargo run --bin scheduler`: the six built-in demo pictures.
//! 2. `bad_images_fail_after_their_attempts_while_the_others_succeed`: a
//!    text file called `.png`, a URL nobody answers and a PNG cut in half
//!    each fail on every attempt, with a message that says what was wrong,
//!    while the good images in the same batch are inverted; exit code 1.
//! 3. `the_results_page_links_originals_and_results`: with
//!    `--keep-serving` the results page stays up, and every image it shows
//!    can be fetched and decoded.
//! 4. `the_json_content_type_works_as_well`: the same batch with the
//!    scheduler speaking JSON to the master instead of protobuf.
//!
//! **Keeping things tidy.** Every test works in its own directory under the
//! system's temporary directory, removed when the test ends however it
//! ends. The scheduler always gets `--output-dir` inside it (so `./output`
//! is never touched) and `TMPDIR` pointing inside it, so the embedded
//! agent's sandboxes and the demo pictures land there too; after a normal
//! exit we check that the scheduler removed them itself and that no
//! executor process is left running. A scheduler is killed when the value
//! that owns it is dropped, and every wait has a deadline, so a hung run
//! fails its test instead of hanging `cargo test`. Everything listens on
//! and connects to 127.0.0.1 only.

mod common;

use common::programs::{assert_nothing_left_behind, scheduler_in, Program};
use common::temp_dir::TempDir;
use image::{
    DynamicImage, GenericImageView, GrayAlphaImage, GrayImage, ImageBuffer, Rgb, RgbImage,
    RgbaImage,
};
use std::collections::BTreeSet;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Passed as `--executor`, so the scheduler never tries to build one.
const EXECUTOR: &str = env!("CARGO_BIN_EXE_executor");

/// How long one batch may take before its test gives up. A batch of a few
/// small images takes about a second; this only catches a hang.
const RUN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The walkthrough
// ---------------------------------------------------------------------------

#[test]
fn the_demo_batch_inverts_every_image_exactly() {
    let workspace = Workspace::new("exact");
    let originals = [
        workspace.write_png("rgba.png", &DynamicImage::ImageRgba8(rgba_picture(61, 47))),
        workspace.write_png("rgb.png", &DynamicImage::ImageRgb8(rgb_picture(40, 30))),
        workspace.write_png("grey.png", &DynamicImage::ImageLuma8(grey_picture(33, 17))),
        workspace.write_png(
            "grey-alpha.png",
            &DynamicImage::ImageLumaA8(grey_alpha_picture(20, 20)),
        ),
        workspace.write_png("deep.png", &DynamicImage::ImageRgb16(deep_picture(16, 16))),
        workspace.write_demo_jpeg("photo.jpg", 160, 120, 7),
        workspace.write_grey_jpeg("grey.jpg", 48, 40),
    ];

    let mut scheduler = start_scheduler(&workspace, &["--images", &joined(&originals)]);
    let finished = scheduler.finish(RUN_LIMIT);

    // Every image succeeds.
    finished.assert_code(0);
    finished.assert_stderr("7/7 images done, 0 failed");
    let rows = table(&finished.stdout);
    assert_eq!(
        rows.len(),
        originals.len(),
        "one row per image{}",
        finished.dump()
    );
    for row in &rows {
        assert_eq!((row.attempts, row.result.as_str()), (1, "done"), "{row:?}");
    }
    // Outputs are named after their position and name in --images.
    let expected = expected_outputs(&originals);
    assert_eq!(
        workspace.outputs(),
        expected.iter().cloned().collect::<BTreeSet<_>>()
    );
    for (original, output) in originals.iter().zip(&expected) {
        assert_inverted(original, &workspace.output_dir().join(output));
    }
    assert_nothing_left_behind(workspace.root.path(), &finished.dump());
}

#[test]
fn with_no_images_the_demo_set_is_inverted() {
    let workspace = Workspace::new("demo");
    let mut scheduler = start_scheduler(&workspace, &[]);
    let finished = scheduler.finish(RUN_LIMIT);

    finished.assert_code(0);
    finished.assert_stderr("6/6 images done, 0 failed");
    // The demo pictures are drawn the same way every time, so drawing them
    // again here gives us the originals the scheduler used.
    let originals = mesos_tutorial::demo_images::write_demo_images(&workspace.path("demo"))
        .expect("draw the demo pictures");
    let expected = expected_outputs(&originals);
    assert_eq!(expected.len(), 6);
    assert_eq!(
        workspace.outputs(),
        expected.iter().cloned().collect::<BTreeSet<_>>()
    );
    for (original, output) in originals.iter().zip(&expected) {
        assert_inverted(original, &workspace.output_dir().join(output));
    }
    assert_nothing_left_behind(workspace.root.path(), &finished.dump());
}

#[test]
fn bad_images_fail_after_their_attempts_while_the_others_succeed() {
    let workspace = Workspace::new("bad");
    let good_png = workspace.write_png("good.png", &DynamicImage::ImageRgb8(rgb_picture(50, 40)));
    let good_jpeg = workspace.write_demo_jpeg("good.jpg", 80, 60, 3);
    // Served by the scheduler's file server like any local image: the
    // executor downloads it fine and only then finds it is not an image.
    let notes = workspace.path("notes.png");
    fs::write(&notes, "Remember to buy milk.\n").expect("write the text file");
    let unreachable = format!("http://{}/x.png", closed_port());
    let truncated = workspace.path("truncated.png");
    let whole =
        fs::read(workspace.write_png("whole.png", &DynamicImage::ImageRgb8(noise_picture(64, 64))))
            .expect("read the whole PNG");
    fs::write(&truncated, &whole[..whole.len() / 2]).expect("write the truncated PNG");
    assert!(
        image::load_from_memory(&whole[..whole.len() / 2]).is_err(),
        "half a PNG does not decode"
    );
    // A JPEG decoder fills a cut-off scan with grey and calls it a success:
    // the executor must notice the missing end itself.
    let cut_jpeg = workspace.path("cut.jpg");
    let whole_jpeg =
        fs::read(workspace.write_demo_jpeg("whole.jpg", 96, 64, 9)).expect("read the whole JPEG");
    fs::write(&cut_jpeg, &whole_jpeg[..whole_jpeg.len() * 3 / 4]).expect("write the cut JPEG");

    let images = [
        good_png.display().to_string(),
        notes.display().to_string(),
        unreachable,
        truncated.display().to_string(),
        cut_jpeg.display().to_string(),
        good_jpeg.display().to_string(),
    ];
    let mut scheduler = start_scheduler(
        &workspace,
        &["--max-attempts", "2", "--images", &images.join(",")],
    );
    let finished = scheduler.finish(RUN_LIMIT);

    // Some images failed for good.
    finished.assert_code(1);
    finished.assert_stderr("2/6 images done, 4 failed");
    let rows = table(&finished.stdout);
    let names: Vec<&str> = rows.iter().map(|row| row.image.as_str()).collect();
    assert_eq!(
        names,
        [
            "001-good",
            "002-notes",
            "003-x",
            "004-truncated",
            "005-cut",
            "006-good"
        ],
        "{}",
        finished.dump()
    );

    for row in [&rows[0], &rows[5]] {
        assert_eq!((row.attempts, row.result.as_str()), (1, "done"), "{row:?}");
    }
    // Each failure says what went wrong, in the executor's words.
    let says = |row: &Row, what: &[&str]| {
        assert_eq!(
            (row.attempts, row.result.as_str()),
            (2, "FAILED"),
            "{row:?}"
        );
        assert!(row.detail.starts_with("TASK_FAILED: "), "{row:?}");
        for words in what {
            assert!(
                row.detail.to_lowercase().contains(words),
                "{words:?} missing in {row:?}"
            );
        }
    };
    says(&rows[1], &["not a png or jpeg image"]);
    says(&rows[2], &["could not download", "connection refused"]);
    says(&rows[3], &["truncated or corrupt"]);
    says(&rows[4], &["truncated or corrupt", "end-of-image"]);

    // The log shows each bad image tried twice and then given up.
    for (number, row) in [(2, &rows[1]), (3, &rows[2]), (4, &rows[3]), (5, &rows[4])] {
        let retried = format!("Retrying {} (attempt 1 of 2 failed)", row.image);
        assert!(
            finished.stderr.contains(&retried),
            "no {retried:?}{}",
            finished.dump()
        );
        for attempt in 1..=2 {
            let failed = format!("task image-{number}-attempt-{attempt} is in state TASK_FAILED");
            assert!(
                finished.stderr.contains(&failed),
                "no {failed:?}{}",
                finished.dump()
            );
        }
        let third = format!("image-{number}-attempt-3");
        assert!(
            !finished.stderr.contains(&third),
            "{third} ran{}",
            finished.dump()
        );
    }

    // Only the two results: no partial upload or temporary file.
    let expected = expected_outputs(&images);
    assert_eq!(
        workspace.outputs(),
        BTreeSet::from([expected[0].clone(), expected[5].clone()])
    );
    assert_inverted(&good_png, &workspace.output_dir().join(&expected[0]));
    assert_inverted(&good_jpeg, &workspace.output_dir().join(&expected[5]));
    assert_nothing_left_behind(workspace.root.path(), &finished.dump());
}

#[test]
fn flags_that_cannot_work_are_refused_before_anything_runs() {
    let workspace = Workspace::new("flags");
    let empty_list = workspace.path("empty.txt");
    fs::write(&empty_list, "# nothing yet\n\n").expect("write the empty list");
    let empty_list = empty_list.display().to_string();
    let cases: [(&[&str], &str); 8] = [
        (&["--task-cpus", "0"], "--task-cpus must be more than 0"),
        (&["--task-mem", "-5"], "--task-mem must be more than 0"),
        (
            &["--max-attempts", "0"],
            "--max-attempts must be at least 1",
        ),
        (&["--images-file", &empty_list], "lists no image"),
        (&["--address", "0.0.0.0"], "agents need an address"),
        (
            &["--secret-file", &empty_list],
            "--secret-file needs --principal",
        ),
        // A typo in a flag is a usage error like the others, not exit 1
        // ("some images failed").
        (&["--stpe", "launch"], "Unrecognized argument: --stpe"),
        // A missing image is found before the cluster starts.
        (
            &["nosuch.png"],
            "nosuch.png is neither an http(s) URL nor a readable file",
        ),
    ];
    for (flags, message) in cases {
        let output =
            Program::start(scheduler_in(workspace.root.path()).args(flags)).finish(RUN_LIMIT);
        let stderr = &output.stderr;
        assert_eq!(output.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
        assert!(
            !stderr.contains("Started an embedded Mesos master"),
            "{flags:?} started a cluster: {stderr}"
        );
    }
}

#[test]
fn the_results_page_links_originals_and_results() {
    let workspace = Workspace::new("page");
    let originals = [
        workspace.write_png(
            "circles.png",
            &DynamicImage::ImageRgba8(rgba_picture(30, 20)),
        ),
        workspace.write_demo_jpeg("sunset.jpg", 64, 48, 5),
        workspace.write_png("grey.png", &DynamicImage::ImageLuma8(grey_picture(25, 25))),
    ];
    let mut scheduler = start_scheduler(
        &workspace,
        &["--keep-serving", "--images", &joined(&originals)],
    );

    let cluster_line = scheduler.wait_for_line("Watch the cluster in a browser: ", RUN_LIMIT);
    let cluster_page = cluster_line
        .split("browser: ")
        .nth(1)
        .expect("the line has a URL")
        .trim()
        .to_string();
    let line = scheduler.wait_for_line("Results: http://", RUN_LIMIT);
    let page_url = line
        .split("Results: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the line has a URL")
        .to_string();
    let base = page_url.trim_end_matches('/').to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{page_url}");

    let page = String::from_utf8(get(&page_url)).expect("the page is UTF-8");
    assert!(page.contains("3/3 images done"), "{page}");
    let sources = image_sources(&page);
    // One original and one result per image.
    assert_eq!(sources.len(), 2 * originals.len(), "{page}");
    let original_bytes: Vec<Vec<u8>> = originals
        .iter()
        .map(|path| fs::read(path).expect("read an original"))
        .collect();
    let mut results = 0;
    for source in &sources {
        // Links are relative, so the page also works through a forwarded
        // port (a Vagrant VM, an SSH tunnel).
        assert!(source.starts_with('/'), "{source} is not a relative link");
        let url = format!("{base}{source}");
        let bytes = get(&url);
        image::load_from_memory(&bytes)
            .unwrap_or_else(|err| panic!("{url} is not an image: {err}"));
        if let Some(name) = source.strip_prefix("/output/") {
            results += 1;
            let stored =
                fs::read(workspace.output_dir().join(name)).expect("the result is in --output-dir");
            assert_eq!(bytes, stored, "{url} serves the stored result");
        } else {
            assert!(
                original_bytes.contains(&bytes),
                "{url} serves one of our originals unchanged"
            );
        }
    }
    assert_eq!(results, originals.len());

    // The cluster's page, printed at start, still answers while the
    // results are served: it shows the finished framework and its tasks.
    let state =
        String::from_utf8(get(&format!("{cluster_page}master/state"))).expect("the state is UTF-8");
    assert!(state.contains("completed_frameworks"), "{state}");
    assert!(state.contains("TASK_FINISHED"), "{state}");

    // --keep-serving runs until Ctrl+C, which exits 130 as in every
    // step, and closes the server.
    let address: SocketAddr = base["http://".len()..].parse().expect("host:port");
    #[cfg(unix)]
    {
        scheduler.interrupt();
        scheduler.finish(RUN_LIMIT).assert_code(130);
    }
    #[cfg(not(unix))]
    scheduler.kill();
    assert!(
        TcpStream::connect(address).is_err(),
        "nothing answers at {address} any more"
    );
}

#[test]
fn the_json_content_type_works_as_well() {
    let workspace = Workspace::new("json");
    let originals = [
        workspace.write_png("rgba.png", &DynamicImage::ImageRgba8(rgba_picture(21, 13))),
        workspace.write_demo_jpeg("photo.jpg", 40, 30, 11),
    ];
    let mut scheduler = start_scheduler(
        &workspace,
        &["--content-type", "json", "--images", &joined(&originals)],
    );
    let finished = scheduler.finish(RUN_LIMIT);

    finished.assert_code(0);
    // The embedded master logs the media type each framework subscribed
    // with: proof that the scheduler really spoke JSON.
    let subscribed = finished
        .stderr
        .lines()
        .find(|line| line.contains("subscribed (stream"));
    assert!(
        subscribed.is_some_and(|line| line.contains("application/json")),
        "{}",
        finished.dump()
    );
    let expected = expected_outputs(&originals);
    assert_eq!(
        workspace.outputs(),
        expected.iter().cloned().collect::<BTreeSet<_>>()
    );
    for (original, output) in originals.iter().zip(&expected) {
        assert_inverted(original, &workspace.output_dir().join(output));
    }
    assert_nothing_left_behind(workspace.root.path(), &finished.dump());
}

// ---------------------------------------------------------------------------
// Checking an inverted image
// ---------------------------------------------------------------------------

/// JPEG results are compared with the decoded original, inverted. The
/// executor decodes the original, inverts it exactly and encodes it again at
/// quality 95, so the only difference is that one lossy re-encoding.
/// Measured on the pictures of these tests: a mean error of 0.05 to 0.5 per
/// sample and a largest error of 2 to 9 (the demo stripes, whose sharp
/// colour edges JPEG smears most). The bounds leave about four times that
/// for other encoder versions, and still catch a wrong result: a JPEG that
/// was not inverted is off by about 100 on average and 255 at worst, one
/// with a channel left alone by 40 on average and over 200 at worst.
const JPEG_MAX_MEAN_ERROR: f64 = 2.0;
const JPEG_MAX_ERROR: u32 = 32;

/// Checks that `output` is `original` inverted: for a PNG, every colour
/// sample `v` became `max - v`, alpha untouched, in the same colour type and
/// size; for a JPEG, the same within [`JPEG_MAX_MEAN_ERROR`] and
/// [`JPEG_MAX_ERROR`].
fn assert_inverted(original: &Path, output: &Path) {
    let what = output.display();
    let read =
        |path: &Path| fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let (original_bytes, output_bytes) = (read(original), read(output));
    let format = image::guess_format(&output_bytes).unwrap_or_else(|err| panic!("{what}: {err}"));
    assert_eq!(
        Some(format),
        image::guess_format(&original_bytes).ok(),
        "{what} keeps the format"
    );
    let decode =
        |bytes: &[u8]| image::load_from_memory(bytes).unwrap_or_else(|err| panic!("{what}: {err}"));
    let (before, after) = (decode(&original_bytes), decode(&output_bytes));
    assert_eq!(
        after.color(),
        before.color(),
        "{what} keeps the colour type"
    );
    assert_eq!(
        after.dimensions(),
        before.dimensions(),
        "{what} keeps the size"
    );
    let channels = usize::from(before.color().channel_count());
    let alpha = before.color().has_alpha();

    let errors: Vec<u32> = match (&before, &after) {
        (DynamicImage::ImageRgb16(b), DynamicImage::ImageRgb16(a)) => {
            sample_errors(b.as_raw(), a.as_raw(), channels, alpha, u32::from(u16::MAX))
        }
        _ => sample_errors(before.as_bytes(), after.as_bytes(), channels, alpha, 255),
    };
    if format == image::ImageFormat::Jpeg {
        let mean = errors.iter().map(|&e| f64::from(e)).sum::<f64>() / errors.len() as f64;
        let max = errors.iter().copied().max().unwrap_or(0);
        assert!(mean < JPEG_MAX_MEAN_ERROR, "{what}: mean error {mean:.2}");
        assert!(max < JPEG_MAX_ERROR, "{what}: largest error {max}");
    } else if let Some(index) = errors.iter().position(|&e| e != 0) {
        let (pixel, channel) = (index / channels, index % channels);
        let (x, y) = (pixel as u32 % before.width(), pixel as u32 / before.width());
        panic!(
            "{what}: pixel ({x}, {y}) channel {channel} is off by {}",
            errors[index]
        );
    }
}

/// For each sample, how far `after` is from the exact inverse of `before`:
/// `max - v` for a colour sample, `v` itself for alpha (the last channel).
fn sample_errors<T: Copy + Into<u32>>(
    before: &[T],
    after: &[T],
    channels: usize,
    alpha: bool,
    max: u32,
) -> Vec<u32> {
    assert_eq!(before.len(), after.len());
    before
        .iter()
        .zip(after)
        .enumerate()
        .map(|(index, (&b, &a))| {
            let is_alpha = alpha && index % channels == channels - 1;
            let expected = if is_alpha { b.into() } else { max - b.into() };
            expected.abs_diff(a.into())
        })
        .collect()
}

fn is_jpeg_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jpg" || e == "jpeg")
}

/// The result file names for these `--images`, in their order: the
/// position, the name without extension, `-inverted`, and `.jpg` for a JPEG,
/// `.png` otherwise (a failed image has no result, but keeps its position).
fn expected_outputs<P: AsRef<Path>>(images: &[P]) -> Vec<String> {
    images
        .iter()
        .enumerate()
        .map(|(index, image)| {
            let path = image.as_ref();
            let stem = path.file_stem().expect("a file name").to_string_lossy();
            let extension = if is_jpeg_file(path) { "jpg" } else { "png" };
            format!("{:03}-{stem}-inverted.{extension}", index + 1)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Test pictures
// ---------------------------------------------------------------------------

/// Colours and alpha that differ from pixel to pixel; alpha runs through
/// every value, fully transparent and fully opaque included, and the colour
/// under a transparent pixel must survive too.
fn rgba_picture(width: u32, height: u32) -> RgbaImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        image::Rgba([
            (x * 4) as u8,
            (y * 5) as u8,
            ((x * y) % 256) as u8,
            ((x + y * width) * 11 % 256) as u8,
        ])
    })
}

fn rgb_picture(width: u32, height: u32) -> RgbImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([
            (x * 6) as u8,
            255 - (y * 8) as u8,
            ((x ^ y) * 9 % 256) as u8,
        ])
    })
}

fn grey_picture(width: u32, height: u32) -> GrayImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        image::Luma([((x * 7 + y * 3) % 256) as u8])
    })
}

fn grey_alpha_picture(width: u32, height: u32) -> GrayAlphaImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        image::LumaA([(x * 12) as u8, (y * 13) as u8])
    })
}

/// 16-bit samples: the executor must invert them as `65535 - v`.
fn deep_picture(width: u32, height: u32) -> ImageBuffer<Rgb<u16>, Vec<u16>> {
    ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x * 4099) as u16, (y * 3001) as u16, (x * y * 257) as u16])
    })
}

/// Pseudo-random pixels, which compress badly: the file's data is spread
/// over its whole length, so cutting it in half cuts the pixels.
fn noise_picture(width: u32, height: u32) -> RgbImage {
    let mut state = 0x9e37_79b9_u32;
    ImageBuffer::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        Rgb([r, g, b])
    })
}

fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// An address where nothing listens: a port the system gave us and that we
/// closed again, so connecting is refused at once.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("its address")
}

// ---------------------------------------------------------------------------
// The workspace: one temporary directory per test
// ---------------------------------------------------------------------------

/// A directory of its own for one test; dropping it kills any process left
/// working in it and removes it.
struct Workspace {
    root: TempDir,
}

impl Workspace {
    fn new(test: &str) -> Workspace {
        let root = TempDir::new(test);
        fs::create_dir_all(root.path().join("tmp")).expect("create the test's directory");
        Workspace { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn output_dir(&self) -> PathBuf {
        self.root.path().join("output")
    }

    /// Every file name in the output directory, hidden ones included.
    fn outputs(&self) -> BTreeSet<String> {
        fs::read_dir(self.output_dir())
            .expect("the output directory exists")
            .map(|entry| {
                entry
                    .expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    fn write_png(&self, name: &str, picture: &DynamicImage) -> PathBuf {
        let path = self.path(name);
        picture
            .save_with_format(&path, image::ImageFormat::Png)
            .expect("write a PNG");
        path
    }

    /// A colour photo-like JPEG drawn by the library's demo code.
    fn write_demo_jpeg(&self, name: &str, width: u32, height: u32, seed: u32) -> PathBuf {
        let path = self.path(name);
        mesos_tutorial::demo_images::write_demo_image(&path, width, height, seed)
            .expect("write a JPEG");
        path
    }

    /// A grey JPEG, which must come back grey.
    fn write_grey_jpeg(&self, name: &str, width: u32, height: u32) -> PathBuf {
        let path = self.path(name);
        DynamicImage::ImageLuma8(grey_picture(width, height))
            .save_with_format(&path, image::ImageFormat::Jpeg)
            .expect("write a JPEG");
        path
    }
}

// ---------------------------------------------------------------------------
// Running the scheduler
// ---------------------------------------------------------------------------

/// Starts the scheduler on the embedded cluster with `args`, its output
/// and temporary files inside `workspace` (see `common::programs`).
fn start_scheduler(workspace: &Workspace, args: &[&str]) -> Program {
    Program::start(
        scheduler_in(workspace.root.path())
            .arg("--executor")
            .arg(EXECUTOR)
            .args(args),
    )
}

// ---------------------------------------------------------------------------
// Reading the final table and the results page
// ---------------------------------------------------------------------------

/// One row of the final table: `image attempts result output-or-error`.
#[derive(Debug)]
struct Row {
    image: String,
    attempts: u32,
    result: String,
    detail: String,
}

/// The rows of the table the scheduler prints on standard output.
fn table(stdout: &str) -> Vec<Row> {
    let mut lines = stdout
        .lines()
        .skip_while(|line| !(line.starts_with("image") && line.contains("attempts")));
    assert!(lines.next().is_some(), "no table header in:\n{stdout}");
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (image, rest) = first_word(line);
            let (attempts, rest) = first_word(rest);
            let (result, rest) = first_word(rest);
            Row {
                image: image.into(),
                attempts: attempts
                    .parse()
                    .unwrap_or_else(|_| panic!("attempts in {line:?}")),
                result: result.into(),
                detail: rest.trim().into(),
            }
        })
        .collect()
}

fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    text.split_at(text.find(char::is_whitespace).unwrap_or(text.len()))
}

/// The `src` of every `<img>` on a page, HTML entities undone.
fn image_sources(page: &str) -> Vec<String> {
    page.split("<img src=\"")
        .skip(1)
        .map(|rest| {
            rest.split('"')
                .next()
                .unwrap_or_default()
                .replace("&amp;", "&")
        })
        .collect()
}

/// GETs `url`, expecting 200, within a few seconds.
fn get(url: &str) -> Vec<u8> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|err| panic!("GET {url}: {err}"));
    assert_eq!(response.status(), 200, "GET {url}");
    response
        .body_mut()
        .read_to_vec()
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
}
