//! Step 3's task: download `image_url`, invert the image, POST the result
//! to `upload_url` with the `X-Upload-Token` header.
//!
//! Mesos does not know what our tasks do: it hands the executor a
//! `TaskInfo` whose `data` bytes the scheduler filled (see
//! [`crate::task_data`]), and waits for a terminal status. The story of a
//! task, from `LAUNCH` to that status, is [`super::run_task`]; this file is
//! the work itself, the part a framework author actually cares about.
//!
//! The task may be killed at any moment: the main thread sets the task's
//! kill flag, and the work checks it between stages. Whatever goes wrong,
//! the task ends with a terminal update whose message says exactly what
//! failed; bad data never panics.

use super::{check_kill, Stop};
use crate::invert;
use crate::proto::mesos::TaskInfo;
use crate::proto::task_data::TaskData;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The largest image we download.
const DOWNLOAD_LIMIT: u64 = 64 * 1024 * 1024;
/// How long connecting to the image or upload server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one whole download or upload may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
/// Error messages from the upload server are short; read no more.
const SERVER_MESSAGE_LIMIT: u64 = 4096;

/// Step 3: download, invert, upload.
pub(super) fn invert_and_upload(
    data: &TaskData,
    limits: &invert::Limits,
    kill: &AtomicBool,
) -> Result<String, Stop> {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TRANSFER_TIMEOUT))
        // Statuses are results to report, not errors of the HTTP library.
        .http_status_as_error(false)
        .build()
        .into();
    check_kill(kill)?;
    let original = download(&http, &data.image_url, DOWNLOAD_LIMIT)?;
    check_kill(kill)?;
    let inverted = invert::invert_image(&original, limits).map_err(|err| {
        let hint = match err {
            invert::InvertError::TooLarge(_) => {
                " (the decoder may use half of the task's memory: raise --task-mem)"
            }
            _ => "",
        };
        format!(
            "could not invert the image from {}: {err}{hint}",
            data.image_url
        )
    })?;
    check_kill(kill)?;
    upload(&http, data, &inverted)?;
    Ok(format!(
        "inverted {}x{} {}, uploaded {} bytes",
        inverted.width,
        inverted.height,
        invert::extension(inverted.format),
        inverted.bytes.len()
    ))
}

/// Decoder limits that fit the task's memory. On a real agent the
/// container is killed when it exceeds the memory its tasks asked for, so
/// the decoder may use at most half of the task's `mem` (the encoded copy
/// and the download need the rest), and never more than the default limit.
pub(super) fn decoder_limits(task: &TaskInfo) -> invert::Limits {
    let defaults = invert::Limits::default();
    let mem_mb: f64 = task
        .resources
        .iter()
        .filter(|r| r.name() == "mem")
        .map(|r| r.scalar.value())
        .sum();
    if mem_mb <= 0.0 {
        return defaults;
    }
    let half = (mem_mb * 1024.0 * 1024.0 / 2.0) as u64;
    invert::Limits {
        max_alloc: half.min(defaults.max_alloc),
        ..defaults
    }
}

/// GETs `url`, refusing bodies larger than `limit` bytes.
fn download(http: &ureq::Agent, url: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url)
        .call()
        .map_err(|err| format!("could not download {url}: {err}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "could not download {url}: the server answered {status}"
        ));
    }
    // The limit also cuts off a body whose Content-Length lied or was absent.
    response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|err| match err {
            ureq::Error::BodyExceedsLimit(_) => {
                format!("the image at {url} is larger than the {limit} byte limit")
            }
            other => format!("could not download {url}: {other}"),
        })
}

/// POSTs the inverted image with the token that proves it comes from us.
fn upload(http: &ureq::Agent, data: &TaskData, image: &invert::Inverted) -> Result<(), String> {
    // The scheduler cannot know the format before the image is decoded, so
    // the upload URL names the file without its extension and we add it.
    let url = &format!("{}.{}", data.upload_url, invert::extension(image.format));
    let content_type = match image.format {
        image::ImageFormat::Png => "image/png",
        image::ImageFormat::Jpeg => "image/jpeg",
        _ => "application/octet-stream",
    };
    let mut response = http
        .post(url)
        .header("X-Upload-Token", &data.upload_token)
        .header("Content-Type", content_type)
        .send(&image.bytes[..])
        .map_err(|err| format!("could not upload to {url}: {err}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // The file server explains a refusal in a short text body.
    let message = response
        .body_mut()
        .with_config()
        .limit(SERVER_MESSAGE_LIMIT)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let mut text = format!("the upload to {url} was refused: the server answered {status}");
    if !message.trim().is_empty() {
        text.push_str(": ");
        text.push_str(message.trim());
    }
    Err(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::sleep;
    use crate::task_data;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Instant;

    /// What a task's thread does with an image task: decode its data, then
    /// download, invert and upload.
    fn image_work(task: &TaskInfo, kill: bool) -> Result<String, Stop> {
        let data = task_data::decode(task.data()).expect("valid task data");
        assert!(task_data::is_image(&data));
        invert_and_upload(&data, &decoder_limits(task), &AtomicBool::new(kill))
    }

    /// What a task's thread does with a no-op task.
    fn noop_work(json: &[u8], kill: &AtomicBool) -> Result<String, Stop> {
        let data = task_data::decode(json).expect("valid task data");
        assert!(!task_data::is_image(&data));
        sleep(&data, kill)
    }

    fn task_with(data: &[u8]) -> TaskInfo {
        let mut task = TaskInfo::new();
        task.set_name("test".into());
        task.task_id
            .mut_or_insert_default()
            .set_value("task-1".into());
        task.agent_id
            .mut_or_insert_default()
            .set_value("agent-1".into());
        task.set_data(data.to_vec());
        task
    }

    fn image_task(image_url: &str, upload_url: &str) -> TaskInfo {
        let json = format!(
            r#"{{"version": 1, "image_url": "{image_url}", "upload_url": "{upload_url}", "upload_token": "secret"}}"#
        );
        task_with(json.as_bytes())
    }

    /// A 3x2 PNG whose first pixel is (10, 20, 30).
    fn small_png() -> Vec<u8> {
        let mut picture = image::RgbImage::new(3, 2);
        picture.put_pixel(0, 0, image::Rgb([10, 20, 30]));
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture
            .write_to(&mut bytes, image::ImageFormat::Png)
            .expect("encode a PNG in memory");
        bytes.into_inner()
    }

    /// What the test server saw of one request.
    struct Seen {
        method: String,
        url: String,
        token: Option<String>,
        content_type: Option<String>,
        body: Vec<u8>,
    }

    /// An HTTP server on 127.0.0.1 that answers every request with
    /// `answer(url)` and reports what it received.
    struct TestServer {
        server: Arc<tiny_http::Server>,
        thread: Option<JoinHandle<()>>,
        seen: mpsc::Receiver<Seen>,
    }

    impl TestServer {
        fn start(answer: impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static) -> TestServer {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
            let (sender, seen) = mpsc::channel();
            let serving = Arc::clone(&server);
            let thread = std::thread::Builder::new()
                .name("test-http-server".into())
                .spawn(move || {
                    while let Ok(mut request) = serving.recv() {
                        let header = |name: &'static str| {
                            request
                                .headers()
                                .iter()
                                .find(|h| h.field.equiv(name))
                                .map(|h| h.value.to_string())
                        };
                        let mut seen = Seen {
                            method: request.method().to_string(),
                            url: request.url().to_string(),
                            token: header("X-Upload-Token"),
                            content_type: header("Content-Type"),
                            body: Vec::new(),
                        };
                        let _ = request.as_reader().read_to_end(&mut seen.body);
                        let (status, body) = answer(&seen.url);
                        let _ = sender.send(seen);
                        let _ = request
                            .respond(tiny_http::Response::from_data(body).with_status_code(status));
                    }
                })
                .expect("spawn the test server");
            TestServer {
                server,
                thread: Some(thread),
                seen,
            }
        }

        fn url(&self, path: &str) -> String {
            let port = self
                .server
                .server_addr()
                .to_ip()
                .expect("an IP address")
                .port();
            format!("http://127.0.0.1:{port}{path}")
        }
    }

    impl Drop for TestServer {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// The task asks for `mb` of memory.
    fn with_mem(task: &mut TaskInfo, mb: f64) {
        let mut mem = crate::proto::mesos::Resource::new();
        mem.set_name("mem".into());
        mem.set_type(crate::proto::mesos::value::Type::SCALAR);
        mem.scalar.mut_or_insert_default().set_value(mb);
        task.resources.push(mem);
    }

    #[test]
    fn the_decoder_may_use_half_of_the_tasks_memory() {
        let mut task = task_with(b"{}");
        assert_eq!(decoder_limits(&task), invert::Limits::default());
        with_mem(&mut task, 128.0);
        assert_eq!(decoder_limits(&task).max_alloc, 64 * 1024 * 1024);
        task.resources[0]
            .scalar
            .mut_or_insert_default()
            .set_value(1e9);
        assert_eq!(decoder_limits(&task), invert::Limits::default());
    }

    #[test]
    fn empty_data_is_a_no_op_task_that_finishes_at_once() {
        let outcome = noop_work(b"", &AtomicBool::new(false));
        assert_eq!(outcome, Ok("no-op task done after 0 ms".into()));
    }

    #[test]
    fn a_no_op_task_sleeps_as_long_as_asked() {
        let started = Instant::now();
        let outcome = noop_work(
            br#"{"version": 1, "noop_millis": 120}"#,
            &AtomicBool::new(false),
        );
        assert_eq!(outcome, Ok("no-op task done after 120 ms".into()));
        assert!(started.elapsed() >= Duration::from_millis(120));
    }

    #[test]
    fn a_sleeping_task_notices_the_kill_flag() {
        let kill = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&kill);
        let worker = std::thread::spawn(move || {
            noop_work(br#"{"version": 1, "noop_millis": 600000}"#, &flag)
        });
        std::thread::sleep(Duration::from_millis(20));
        kill.store(true, Ordering::Relaxed);
        // A guard against hanging, not a timing assertion: the task naps
        // far less than this between two looks at the flag.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !worker.is_finished() {
            assert!(Instant::now() < deadline, "the task did not see the flag");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(worker.join().expect("no panic"), Err(Stop::Killed));
    }

    #[test]
    fn an_image_task_downloads_inverts_and_uploads() {
        let original = small_png();
        let served = original.clone();
        let server = TestServer::start(move |url| match url {
            "/cat.png" => (200, served.clone()),
            _ => (201, Vec::new()),
        });
        let task = image_task(&server.url("/cat.png"), &server.url("/upload/cat-inverted"));
        let outcome = image_work(&task, false);

        // The server records each request before it answers it, so the
        // requests of the finished work are all in the channel by now.
        let download = server.seen.try_recv().expect("a download");
        assert_eq!(
            (download.method.as_str(), download.url.as_str()),
            ("GET", "/cat.png")
        );
        let upload = server.seen.try_recv().expect("an upload");
        assert_eq!(upload.method, "POST");
        assert_eq!(
            upload.url, "/upload/cat-inverted.png",
            "the executor adds the extension"
        );
        assert_eq!(upload.token.as_deref(), Some("secret"));
        assert_eq!(upload.content_type.as_deref(), Some("image/png"));
        let inverted = image::load_from_memory(&upload.body)
            .expect("a PNG")
            .to_rgb8();
        assert_eq!(inverted.get_pixel(0, 0), &image::Rgb([245, 235, 225]));
        assert_eq!(
            outcome,
            Ok(format!(
                "inverted 3x2 png, uploaded {} bytes",
                upload.body.len()
            ))
        );
    }

    #[test]
    fn a_missing_image_names_the_status_and_url() {
        let server = TestServer::start(|_| (404, b"no such file".to_vec()));
        let image_url = server.url("/gone.png");
        let task = image_task(&image_url, &server.url("/upload"));
        match image_work(&task, false) {
            Err(Stop::Failed(message)) => {
                assert!(message.contains("could not download"), "{message}");
                assert!(message.contains(&image_url), "{message}");
                assert!(message.contains("404"), "{message}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        assert_eq!(
            server.seen.try_iter().count(),
            1,
            "no upload after a failed download"
        );
    }

    #[test]
    fn a_refused_upload_includes_the_servers_message() {
        let png = small_png();
        let server = TestServer::start(move |url| match url {
            "/cat.png" => (200, png.clone()),
            _ => (403, b"wrong upload token\n".to_vec()),
        });
        let task = image_task(&server.url("/cat.png"), &server.url("/upload"));
        match image_work(&task, false) {
            Err(Stop::Failed(message)) => {
                assert!(message.contains("upload"), "{message}");
                assert!(message.contains("403"), "{message}");
                assert!(message.ends_with(": wrong upload token"), "{message}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn something_that_is_not_an_image_fails_at_inversion() {
        let server = TestServer::start(|_| (200, b"<html>surprise</html>".to_vec()));
        let task = image_task(&server.url("/page.png"), &server.url("/upload"));
        match image_work(&task, false) {
            Err(Stop::Failed(message)) => {
                assert!(message.contains("could not invert"), "{message}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// An image encoded in memory, `width` pixels square, of noise (which
    /// compresses badly, so the file is large) or black.
    fn encoded(width: u32, noise: bool, format: image::ImageFormat) -> Vec<u8> {
        let mut state = 12345u32;
        let picture = image::RgbImage::from_fn(width, width, |_, _| {
            if !noise {
                return image::Rgb([0, 0, 0]);
            }
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let [a, b, c, _] = state.to_le_bytes();
            image::Rgb([a, b, c])
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        picture
            .write_to(&mut bytes, format)
            .expect("encode in memory");
        bytes.into_inner()
    }

    #[test]
    fn a_jpeg_goes_back_as_a_jpeg() {
        let jpeg = encoded(8, false, image::ImageFormat::Jpeg);
        let server = TestServer::start(move |url| match url {
            "/photo.jpg" => (200, jpeg.clone()),
            _ => (201, Vec::new()),
        });
        let task = image_task(
            &server.url("/photo.jpg"),
            &server.url("/upload/photo-inverted"),
        );
        let outcome = image_work(&task, false);
        assert!(outcome.is_ok(), "{outcome:?}");
        let _download = server.seen.try_recv().expect("a download");
        let upload = server.seen.try_recv().expect("an upload");
        assert_eq!(upload.url, "/upload/photo-inverted.jpg");
        assert_eq!(upload.content_type.as_deref(), Some("image/jpeg"));
    }

    /// Photos are megabytes: the download limit is far above that.
    #[test]
    fn an_image_of_megabytes_is_downloaded_whole() {
        let png = encoded(700, true, image::ImageFormat::Png);
        assert!(png.len() > 1024 * 1024, "{} bytes", png.len());
        let served = png.clone();
        let server = TestServer::start(move |_| (200, served.clone()));
        let task = image_task(&server.url("/big.png"), &server.url("/upload/big-inverted"));
        let outcome = image_work(&task, false);
        assert!(outcome.is_ok(), "{outcome:?}");
    }

    /// The decoder's limit comes from the task's memory, and its error says
    /// which flag gives it more.
    #[test]
    fn an_image_too_large_for_the_tasks_memory_says_to_raise_it() {
        let png = encoded(600, false, image::ImageFormat::Png);
        let server = TestServer::start(move |_| (200, png.clone()));
        let mut task = image_task(&server.url("/wide.png"), &server.url("/upload/wide"));
        // 1 MB: the decoder may use half, less than 600x600 RGB pixels.
        with_mem(&mut task, 1.0);
        match image_work(&task, false) {
            Err(Stop::Failed(message)) => {
                assert!(message.contains("raise --task-mem"), "{message}")
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_download_larger_than_the_limit_is_cut_off() {
        let server = TestServer::start(|_| (200, vec![7u8; 10_000]));
        let http = ureq::Agent::new_with_defaults();
        let url = server.url("/big");
        let err = download(&http, &url, 1000).expect_err("over the limit");
        assert!(err.contains("larger than the 1000 byte limit"), "{err}");
        assert_eq!(download(&http, &url, 10_000).map(|b| b.len()), Ok(10_000));
    }

    #[test]
    fn an_unreachable_server_is_a_failure_not_a_panic() {
        // Port 9 (discard) on loopback is closed on any test machine we know.
        let task = image_task("http://127.0.0.1:9/x.png", "http://127.0.0.1:9/up");
        match image_work(&task, false) {
            Err(Stop::Failed(message)) => {
                assert!(
                    message.starts_with("could not download http://127.0.0.1:9/x.png"),
                    "{message}"
                )
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_killed_image_task_does_not_download() {
        let server = TestServer::start(|_| (200, Vec::new()));
        let task = image_task(&server.url("/cat.png"), &server.url("/upload"));
        assert_eq!(image_work(&task, true), Err(Stop::Killed));
        assert_eq!(server.seen.try_iter().count(), 0);
    }
}
