//! Step 3's work: a batch of images, one task per image.
//!
//! This is what frameworks are for: a queue of work that the scheduler
//! spreads over whatever resources the cluster offers. Each image becomes a
//! task whose `TaskInfo.data` tells the executor where to download the image
//! and where to upload the inverted result (see `src/task_data.proto`).
//!
//! The scheduler, not the executor, is responsible for the batch finishing:
//! a task can fail (a bad image, a dead executor, a lost agent), so each
//! image is retried up to `--max-attempts` times, and the batch ends when
//! every image is either inverted or has failed for good. Task ids name the
//! attempt (`image-3-attempt-2`), because Mesos requires ids to be unique
//! among a framework's tasks.

mod results;
mod sources;

use super::tasks::{self, describe, TaskPlan};
use super::{log_lines, Config, Outcome, Resume, SchedulerError, Work};
use crate::proto::is_terminal;
use crate::proto::mesos::task_status::Reason;
use crate::proto::mesos::{Offer, TaskInfo, TaskState, TaskStatus};
use crate::server::FileServer;
use crate::task_data;
pub use results::{progress, summary, MAX_PAGE_ROWS};
pub use sources::check_source;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

/// The extensions the executor gives a result (see `invert::extension`),
/// and `.jpeg`, which the file server also accepts.
const RESULT_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One image of the batch.
struct Image {
    /// A short name for logs, the page and the table.
    name: String,
    /// Where the executor downloads it.
    url: String,
    attempts: u32,
    state: ImageState,
    /// Its last task, for the results page (see `batch/results.rs`).
    last_task: Option<results::TaskRun>,
}

impl Image {
    /// The output file's name without its extension; the executor adds
    /// `.png` or `.jpg` once it knows the format.
    fn output_stem(&self) -> String {
        format!("{}-inverted", self.name)
    }
}

enum ImageState {
    Queued,
    Running,
    Done(PathBuf),
    Failed(String),
}

/// The task table of step 3.
pub struct ImageBatch {
    /// Serves the executor and the images, and receives the results.
    server: FileServer,
    plan: TaskPlan,
    images: Vec<Image>,
    queue: VecDeque<usize>,
    /// Which image each launched task works on, and on which agent.
    tasks: HashMap<String, (usize, String)>,
    /// Put before every task id: empty for a new framework, a fresh prefix
    /// for a scheduler that took over a framework from an earlier process,
    /// since Mesos wants task ids unique over the framework's whole life.
    id_prefix: String,
    max_attempts: u32,
    task_millis: u32,
    output_dir: PathBuf,
    upload_token: String,
    upload_base: String,
    /// The file server's own address, which the results page leaves out of
    /// its links so that they also work through a forwarded port.
    server_base: String,
    /// Demo images live in a temporary folder, removed with the batch.
    _demo_dir: Option<sources::DemoDir>,
    /// How many images are done and how many failed for good, kept up to
    /// date rather than counted, since every update reports them.
    done: usize,
    failed: usize,
    /// When the results page last got the batch's progress.
    progress_shown: Option<Instant>,
}

impl ImageBatch {
    /// Serves the executor, reads `--images` (URLs and local files, which
    /// the file server then serves too) or makes the demo images, and opens
    /// the upload endpoint.
    pub fn prepare(config: &Config) -> Result<ImageBatch, SchedulerError> {
        let (plan, server) = tasks::serve_executor(config)?;
        let token = crate::random::token();
        server.accept_uploads(&config.output_dir, &token)?;
        // Only the results of our own tasks may be uploaded; each task's
        // name is allowed when it is launched.
        server.expect_uploads_only();
        let (images, demo_dir) = sources::images(config, &server)?;
        let count = log_lines::counted(images.len(), "image");
        let output_dir = config.output_dir.display();
        log::info!("{count} to invert; results go to {output_dir}");
        log::info!("Watch the results in a browser: {}/", server.base_url());
        Ok(ImageBatch {
            upload_base: server.upload_url(""),
            server_base: server.base_url(),
            server,
            plan,
            queue: (0..images.len()).collect(),
            images,
            tasks: HashMap::new(),
            id_prefix: String::new(),
            max_attempts: config.max_attempts.max(1),
            task_millis: config.task_millis,
            output_dir: config.output_dir.clone(),
            upload_token: token,
            _demo_dir: demo_dir,
            done: 0,
            failed: 0,
            progress_shown: None,
        })
    }
}

impl Work for ImageBatch {
    /// The next queued images, as many as fit. The file server is told
    /// which result each task will upload.
    fn tasks_for(&mut self, offer: &Offer) -> Vec<TaskInfo> {
        let mut tasks = self.plan.tasks(offer, self.queue.len());
        let agent = offer.agent_id.value();
        // The first queued images, one per task that fits.
        let count = tasks.len();
        for (task, index) in tasks.iter_mut().zip(self.queue.drain(..count)) {
            let image = &mut self.images[index];
            image.attempts += 1;
            image.state = ImageState::Running;
            let task_id = format!(
                "{}image-{}-attempt-{}",
                self.id_prefix,
                index + 1,
                image.attempts
            );
            let stem = image.output_stem();
            self.server.expect_upload(&stem);
            let upload_url = format!("{}{stem}", self.upload_base);
            let mut data = task_data::image(&image.url, &upload_url, &self.upload_token);
            // `--task-millis`: the executor waits that long first, to be watched.
            data.noop_millis = self.task_millis;
            log::info!("Prepared task {task_id} for {}", image.url);
            describe(task, &task_id, task_data::encode(&data));
            image.last_task = Some(results::TaskRun::new(task, agent));
            self.tasks.insert(task_id, (index, agent.to_string()));
        }
        tasks
    }

    /// A finished image is done once its result arrived; any other end
    /// queues it again until it runs out of attempts.
    fn update(&mut self, status: &TaskStatus) {
        if !is_terminal(status.state()) {
            return;
        }
        // Each task's terminal update counts once, even if delivered twice.
        let Some((index, _)) = self.tasks.remove(status.task_id.value()) else {
            return;
        };
        // For the results page: how long the task took.
        results::task_ended(&mut self.images[index]);
        // Step 4: the operator took the machine away, not the image.
        if super::limits::agent_drained(status) {
            return self.requeue(index, true);
        }
        // Finished means done only if the result really arrived.
        let result = match status.state() {
            TaskState::TASK_FINISHED => self.stored_result(index),
            _ => None,
        };
        match result {
            Some(path) => {
                self.images[index].state = ImageState::Done(path);
                self.done += 1;
            }
            None => self.retry_or_give_up(index, status),
        }
        log::info!("{}", results::summary(self));
    }

    /// Whether images are waiting for resources.
    fn wants_offers(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether every image is inverted or failed for good.
    fn done(&self) -> bool {
        self.done + self.failed == self.images.len()
    }

    /// Prints the table; may keep the results page up (`results.rs`).
    fn finish(self, config: &Config, interrupted: bool) -> Outcome {
        results::finish(self, config, interrupted)
    }

    fn show_progress(&mut self) {
        results::show_progress(self);
    }
}

/// Step 4 (`failover.rs`).
impl Resume for ImageBatch {
    fn running(&self) -> Vec<(String, String)> {
        self.tasks
            .iter()
            .map(|(task, (_, agent))| (task.clone(), agent.clone()))
            .collect()
    }

    /// The images go back at the front of the queue: their turn came
    /// already.
    fn unlaunch(&mut self, task_ids: &[String]) {
        for task_id in task_ids.iter().rev() {
            if let Some((index, _)) = self.tasks.remove(task_id) {
                self.requeue(index, true);
            }
        }
    }

    /// The attempt does not count, since the image is not what failed, and
    /// an image is never queued beyond its last attempt.
    fn forget_running(&mut self) {
        let lost: Vec<usize> = self.tasks.drain().map(|(_, (index, _))| index).collect();
        for index in lost {
            self.requeue(index, false);
        }
    }

    fn continue_earlier_run(&mut self) {
        results::continue_earlier_run(self);
    }

    fn stale_executor(&self, offer: &Offer) -> bool {
        self.plan.stale_executor(offer)
    }
}

impl ImageBatch {
    /// A failed image goes back in the queue, unless it has used up its
    /// attempts.
    fn retry_or_give_up(&mut self, index: usize, status: &TaskStatus) {
        let state = status.state();
        let image = &mut self.images[index];
        let name = &image.name;
        let reason = if state == TaskState::TASK_FINISHED {
            // `update` found no result for it.
            let task_id = status.task_id.value();
            log::warn!("Task {task_id} finished but no upload of {name} arrived");
            format!("{state:?}, but no upload of its result arrived")
        } else if status.message().is_empty() {
            format!("{state:?}")
        } else {
            format!("{state:?}: {}", status.message())
        };
        if status.reason() == Reason::REASON_INVALID_OFFERS {
            // The master refused the launch because the offer was gone
            // (rescinded, or used twice): the task never ran, so the image
            // has not used up an attempt.
            image.attempts -= 1;
        }
        let attempts = image.attempts;
        let max = self.max_attempts;
        if attempts < max {
            log::info!("Retrying {name} (attempt {attempts} of {max} failed)");
            image.state = ImageState::Queued;
            self.queue.push_back(index);
        } else {
            let attempts = log_lines::counted(attempts as usize, "attempt");
            log::warn!("Giving up on {name} after {attempts}: {reason}");
            image.state = ImageState::Failed(reason);
            self.failed += 1;
        }
    }

    /// Where the file server stored this image's result, if it arrived.
    /// The task names only the result's stem: the executor adds the
    /// extension of the format it wrote, `.png` or `.jpg`.
    fn stored_result(&self, index: usize) -> Option<PathBuf> {
        let stem = self.images[index].output_stem();
        RESULT_EXTENSIONS
            .iter()
            .find_map(|extension| self.server.uploaded_path(&format!("{stem}.{extension}")))
    }

    /// Queues an image again without counting the attempt it was given,
    /// at the front (its turn came already) or at the back.
    fn requeue(&mut self, index: usize, at_front: bool) {
        let image = &mut self.images[index];
        image.attempts = image.attempts.saturating_sub(1);
        image.state = ImageState::Queued;
        if at_front {
            self.queue.push_front(index);
        } else {
            self.queue.push_back(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::config::test_config;
    use crate::scheduler::resources::test_offer;
    use crate::test_dir::TestDir;

    /// An offer of 8 CPUs and 8 GB, enough for every task below.
    fn offer() -> Offer {
        test_offer(8.0, 8192.0)
    }

    fn ended(task: &TaskInfo, state: TaskState, message: &str) -> TaskStatus {
        let mut status = TaskStatus::new();
        status.task_id = task.task_id.clone();
        status.set_state(state);
        status.set_message(message.into());
        status
    }

    /// A batch of two images at URLs nobody serves (no task of these tests
    /// runs), with this many attempts each, writing to the caller's
    /// `TestDir`.
    fn batch(max_attempts: u32, output_dir: &std::path::Path) -> ImageBatch {
        let config = Config {
            executor: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")),
            images: vec![
                "http://127.0.0.1:1/a.png".into(),
                "http://127.0.0.1:1/b.png".into(),
            ],
            output_dir: output_dir.to_path_buf(),
            max_attempts,
            ..test_config()
        };
        ImageBatch::prepare(&config).expect("a batch")
    }

    #[test]
    fn the_final_tables_columns_stay_aligned_with_long_names() {
        let output = TestDir::new("batch");
        let mut batch = batch(1, &output.0);
        let long = "002-002-checkerboard-inverted-and-then-some";
        batch.images[1].name = long.to_string();
        batch.images[0].state = ImageState::Done(PathBuf::from("out/a-inverted.png"));
        batch.images[1].state = ImageState::Failed("not an image".into());
        let table = results::table(&batch);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "0/2 images done, 0 failed");
        assert!(
            lines[2].ends_with("0  done    out/a-inverted.png"),
            "{table}"
        );
        assert!(lines[3].ends_with("0  FAILED  not an image"), "{table}");
        // "attempts" ends where each row's count ends, one column after
        // the longest name.
        let end = lines[1].find("attempts").expect("a header") + "attempts".len();
        assert_eq!(end, long.len() + 1 + 8, "{table}");
        for row in &lines[2..] {
            assert_eq!(row.as_bytes()[end - 1], b'0', "{table}");
            assert_eq!(&row[end..end + 2], "  ", "{table}");
        }
        // Short names keep the usual 28 columns.
        batch.images[1].name = "b".to_string();
        let table = results::table(&batch);
        assert!(
            table.contains("\nimage                        attempts  result"),
            "{table}"
        );
    }

    #[test]
    fn a_task_that_finished_without_its_upload_is_not_done() {
        let output = TestDir::new("batch");
        let mut batch = batch(1, &output.0);
        let tasks = batch.tasks_for(&offer());
        assert_eq!(tasks.len(), 2);
        // The executor says it finished, but no result was uploaded.
        batch.update(&ended(&tasks[0], TaskState::TASK_FINISHED, "uploaded"));
        // Another task failed, in the executor's words.
        batch.update(&ended(&tasks[1], TaskState::TASK_FAILED, "not an image"));
        let reasons: Vec<&str> = batch
            .images
            .iter()
            .map(|image| match &image.state {
                ImageState::Failed(reason) => reason.as_str(),
                _ => "not failed",
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "TASK_FINISHED, but no upload of its result arrived",
                "TASK_FAILED: not an image"
            ]
        );
        assert!(batch.done(), "both images failed for good");
    }

    #[test]
    fn a_launch_the_master_refused_uses_up_no_attempt() {
        let output = TestDir::new("batch");
        let mut batch = batch(1, &output.0);
        let tasks = batch.tasks_for(&offer());
        let mut refused = ended(&tasks[0], TaskState::TASK_LOST, "offer gone");
        refused.set_reason(Reason::REASON_INVALID_OFFERS);
        batch.update(&refused);
        // Queued again although its one attempt is "used": it never ran.
        assert_eq!(batch.images[0].attempts, 0);
        assert!(matches!(batch.images[0].state, ImageState::Queued));
        let again = batch.tasks_for(&offer());
        assert_eq!(again[0].task_id.value(), "image-1-attempt-1");
    }
}
