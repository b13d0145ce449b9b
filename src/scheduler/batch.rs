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

use super::tasks::TaskPlan;
use super::{Config, SchedulerError};
use crate::proto::is_terminal;
use crate::proto::mesos::task_status::Reason;
use crate::proto::mesos::{Offer, TaskInfo, TaskState, TaskStatus};
use crate::server::{FileServer, ImageRow, Progress};
use crate::task_data;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// One image of the batch.
struct Image {
    /// A short name for logs, the page and the table.
    name: String,
    /// Where the executor downloads it.
    url: String,
    attempts: u32,
    state: ImageState,
}

impl Image {
    /// The output file's name without its extension; the executor adds
    /// `.png` or `.jpg` once it knows the format.
    fn output_stem(&self) -> String {
        format!("{}-inverted", self.name)
    }
}

/// The most images the results page lists; a batch of thousands shows its
/// first rows and counts the rest, so that the page stays light to build
/// and to load.
pub const MAX_PAGE_ROWS: usize = 500;

/// The extensions the executor gives a result (see `invert::extension`),
/// and `.jpeg`, which the file server also accepts.
const RESULT_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

enum ImageState {
    Queued,
    Running,
    Done(PathBuf),
    Failed(String),
}

/// The task table of step 3.
pub struct ImageBatch {
    images: Vec<Image>,
    queue: VecDeque<usize>,
    /// Which image each launched task works on, and on which agent.
    tasks: HashMap<String, (usize, String)>,
    /// Put before every task id: empty for a new framework, a fresh prefix
    /// for a scheduler that took over a framework from an earlier process,
    /// since Mesos wants task ids unique over the framework's whole life.
    id_prefix: String,
    max_attempts: u32,
    upload_token: String,
    upload_base: String,
    /// The file server's own address, which the results page leaves out of
    /// its links so that they also work through a forwarded port.
    server_base: String,
    /// Demo images live in a temporary folder removed with the batch.
    demo_dir: Option<PathBuf>,
    /// How many images are done and how many failed for good, kept up to
    /// date rather than counted, since every update reports them.
    done: usize,
    failed: usize,
}

impl ImageBatch {
    /// Reads `--images` (URLs and local files, which the file server then
    /// serves), or makes the demo images, and opens the upload endpoint.
    pub fn prepare(config: &Config, server: &FileServer) -> Result<ImageBatch, SchedulerError> {
        let token = crate::random::token();
        server.accept_uploads(&config.output_dir, &token)?;
        // Only the results of our own tasks may be uploaded; each task's
        // name is allowed when it is launched.
        server.expect_uploads_only();
        let mut demo = Vec::new();
        let mut demo_dir = None;
        if config.images.is_empty() {
            let dir = demo_dir_path();
            let paths = create_private_dir(&dir)
                .and_then(|()| crate::demo_images::write_demo_images(&dir))
                .map_err(|err| {
                    let _ = std::fs::remove_dir_all(&dir);
                    SchedulerError::Images(format!(
                        "could not write the demo images to {}: {err}",
                        dir.display()
                    ))
                })?;
            log::info!("No --images given: using {} demo images", paths.len());
            demo = paths.iter().map(|p| p.display().to_string()).collect();
            demo_dir = Some(dir);
        }
        let sources = if demo.is_empty() {
            &config.images
        } else {
            &demo
        };
        let mut images = Vec::with_capacity(sources.len());
        for (index, source) in sources.iter().enumerate() {
            let base = file_stem(source);
            let name = format!("{:03}-{base}", index + 1);
            let url = if let Some(url) = crate::http_api::http_url(source) {
                url
            } else {
                let path = Path::new(source);
                if !path.is_file() {
                    return Err(SchedulerError::Images(format!(
                        "{source} is neither an http(s) URL nor a readable file"
                    )));
                }
                let extension = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(safe_name)
                    .unwrap_or_default();
                let served = if extension.is_empty() {
                    name.clone()
                } else {
                    format!("{name}.{extension}")
                };
                server.serve_file(&served, path)?
            };
            images.push(Image {
                name,
                url,
                attempts: 0,
                state: ImageState::Queued,
            });
        }
        log::info!(
            "{} {} to invert; results go to {}",
            images.len(),
            if images.len() == 1 { "image" } else { "images" },
            config.output_dir.display()
        );
        Ok(ImageBatch {
            queue: (0..images.len()).collect(),
            images,
            tasks: HashMap::new(),
            id_prefix: String::new(),
            max_attempts: config.max_attempts.max(1),
            upload_token: token,
            upload_base: server.upload_url(""),
            server_base: server.base_url(),
            demo_dir,
            done: 0,
            failed: 0,
        })
    }

    /// Continues the batch of an earlier scheduler process whose framework
    /// this one took over (`--framework-id-file`): images whose result is
    /// already in `output_dir` are done, and task ids get a fresh prefix.
    /// The earlier process's tasks are not adopted: their executor is shut
    /// down (see [`TaskPlan::stale_executor`]), since it uploads to a file
    /// server that is gone.
    pub fn continue_earlier_run(&mut self, output_dir: &Path, server: &FileServer) {
        self.id_prefix = format!("{}-", &crate::random::token()[..6]);
        let mut found = 0;
        for image in &mut self.images {
            let stem = image.output_stem();
            let result = RESULT_EXTENSIONS
                .iter()
                .map(|extension| format!("{stem}.{extension}"))
                .find(|name| output_dir.join(name).is_file());
            if let Some(name) = result {
                let path = output_dir.join(&name);
                server.record_upload(&name, &path);
                image.state = ImageState::Done(path);
                found += 1;
            }
        }
        self.done += found;
        self.queue
            .retain(|&index| matches!(self.images[index].state, ImageState::Queued));
        log::info!(
            "Continuing an earlier run: {found} images were done already; new task ids start with {}",
            self.id_prefix
        );
    }

    /// Tasks for this offer: the next queued images, as many as fit. The
    /// file server is told which result each task will upload.
    pub fn tasks_for(
        &mut self,
        offer: &Offer,
        plan: &TaskPlan,
        server: &FileServer,
    ) -> Vec<TaskInfo> {
        let count = plan.fit(offer, self.queue.len());
        let mut work = Vec::with_capacity(count);
        let mut indexes = HashMap::with_capacity(count);
        for index in self.queue.drain(..count) {
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
            server.expect_upload(&stem);
            let upload_url = format!("{}{stem}", self.upload_base);
            let data = task_data::image(&image.url, &upload_url, &self.upload_token);
            log::info!("Prepared task {task_id} for {}", image.url);
            indexes.insert(task_id.clone(), index);
            work.push((task_id, task_data::encode(&data)));
        }
        let tasks = plan.tasks(offer, work);
        let agent = offer.agent_id.value().to_string();
        for task in &tasks {
            if let Some(index) = indexes.remove(task.task_id.value()) {
                self.tasks
                    .insert(task.task_id.value().to_string(), (index, agent.clone()));
            }
        }
        // Whatever did not fit after all goes back, its attempt unused.
        for (_, index) in indexes {
            self.give_back(index, true);
        }
        tasks
    }

    /// Records a status update: a finished image is done, a failed one is
    /// queued again until it runs out of attempts.
    pub fn update(&mut self, status: &TaskStatus, server: Option<&FileServer>) {
        let state = status.state();
        if !is_terminal(state) {
            return;
        }
        // Each task's terminal update counts once, even if delivered twice.
        let Some((index, _)) = self.tasks.remove(status.task_id.value()) else {
            return;
        };
        let image = &mut self.images[index];
        if state == TaskState::TASK_FINISHED {
            let stem = image.output_stem();
            let stored = server.and_then(|server| {
                RESULT_EXTENSIONS
                    .iter()
                    .find_map(|extension| server.uploaded_path(&format!("{stem}.{extension}")))
            });
            match stored {
                Some(path) => {
                    image.state = ImageState::Done(path);
                    self.done += 1;
                    log::info!("{}", self.summary());
                    return;
                }
                None => log::warn!(
                    "Task {} finished but no upload of {} arrived",
                    status.task_id.value(),
                    image.name
                ),
            }
        }
        let reason = match status.message() {
            "" => format!("{state:?}"),
            message => format!("{state:?}: {message}"),
        };
        if status.reason() == Reason::REASON_INVALID_OFFERS {
            // The master refused the launch because the offer was gone
            // (rescinded, or used twice): the task never ran, so the image
            // has not used up an attempt.
            image.attempts -= 1;
        }
        if image.attempts < self.max_attempts {
            log::info!(
                "Retrying {} (attempt {} of {} failed)",
                image.name,
                image.attempts,
                self.max_attempts
            );
            image.state = ImageState::Queued;
            self.queue.push_back(index);
        } else {
            log::warn!(
                "Giving up on {} after {} attempts: {reason}",
                image.name,
                image.attempts
            );
            image.state = ImageState::Failed(reason);
            self.failed += 1;
        }
        log::info!("{}", self.summary());
    }

    /// Puts the images of tasks whose launch the master never accepted back
    /// at the front of the queue; the attempt does not count.
    pub fn unlaunch(&mut self, task_ids: &[String]) {
        for task_id in task_ids.iter().rev() {
            if let Some((index, _)) = self.tasks.remove(task_id) {
                self.give_back(index, true);
            }
        }
    }

    /// Queues an image again without counting the attempt it was given,
    /// at the front (its turn came already) or at the back.
    fn give_back(&mut self, index: usize, at_front: bool) {
        let image = &mut self.images[index];
        image.attempts = image.attempts.saturating_sub(1);
        image.state = ImageState::Queued;
        if at_front {
            self.queue.push_front(index);
        } else {
            self.queue.push_back(index);
        }
    }

    /// The tasks launched and not yet ended, with their agents.
    pub fn running(&self) -> Vec<(String, String)> {
        self.tasks
            .iter()
            .map(|(task, (_, agent))| (task.clone(), agent.clone()))
            .collect()
    }

    /// The running tasks died with the framework: their images go back in
    /// the queue. The attempt does not count, since the image is not what
    /// failed, and an image is never queued beyond its last attempt.
    pub fn forget_running(&mut self) {
        let lost: Vec<usize> = self.tasks.drain().map(|(_, (index, _))| index).collect();
        for index in lost {
            self.give_back(index, false);
        }
    }

    /// Whether images are waiting for resources.
    pub fn wants_offers(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether every image is inverted or failed for good.
    pub fn done(&self) -> bool {
        self.done + self.failed == self.images.len()
    }

    /// Whether every image was inverted.
    pub fn all_succeeded(&self) -> bool {
        self.done == self.images.len()
    }

    /// `7/10 images done, 1 failed`.
    pub fn summary(&self) -> String {
        format!(
            "{}/{} images done, {} failed",
            self.done,
            self.images.len(),
            self.failed
        )
    }

    /// What the results page shows: the counts, and the first
    /// [`MAX_PAGE_ROWS`] images.
    pub fn progress(&self) -> Progress {
        Progress {
            total: self.images.len(),
            done: self.done,
            failed: self.failed,
            finished: self.done(),
            not_listed: self.images.len().saturating_sub(MAX_PAGE_ROWS),
            images: self
                .images
                .iter()
                .take(MAX_PAGE_ROWS)
                .map(|image| ImageRow {
                    name: image.name.clone(),
                    original_url: image
                        .url
                        .strip_prefix(&self.server_base)
                        .filter(|path| path.starts_with('/'))
                        .unwrap_or(&image.url)
                        .to_string(),
                    result_name: match &image.state {
                        ImageState::Done(path) => {
                            path.file_name().map(|n| n.to_string_lossy().into_owned())
                        }
                        _ => None,
                    },
                    status: self.status_text(image),
                })
                .collect(),
        }
    }

    fn status_text(&self, image: &Image) -> String {
        match &image.state {
            ImageState::Queued if image.attempts == 0 => "queued".into(),
            ImageState::Queued => format!("queued for attempt {}", image.attempts + 1),
            ImageState::Running => format!("running (attempt {})", image.attempts),
            ImageState::Done(_) => "done".into(),
            ImageState::Failed(reason) => format!("failed: {reason}"),
        }
    }

    /// The final table: image, attempts, result, output path or error.
    pub fn print_table(&self) {
        println!("{}", self.summary());
        println!(
            "{:<28} {:>8}  {:<7} output or error",
            "image", "attempts", "result"
        );
        for image in &self.images {
            let (result, detail) = match &image.state {
                ImageState::Done(path) => ("done", path.display().to_string()),
                ImageState::Failed(reason) => ("FAILED", reason.clone()),
                _ => ("pending", String::new()),
            };
            println!(
                "{:<28} {:>8}  {:<7} {detail}",
                image.name, image.attempts, result
            );
        }
    }
}

impl Drop for ImageBatch {
    fn drop(&mut self) {
        if let Some(dir) = &self.demo_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh, unguessable folder for the demo images. Folders left by
/// earlier runs that were killed (whose process is gone) are removed first.
fn demo_dir_path() -> PathBuf {
    const PREFIX: &str = "mesos-tutorial-demo-";
    let temp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&temp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            // Only Linux tells us cheaply whether a process is alive.
            let gone = owner.is_some_and(|pid| {
                cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists()
            });
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    temp.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        crate::random::token()
    ))
}

/// Creates a folder that must not exist yet, readable only by us, so that
/// no other user can swap the images we serve.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// A readable, file-system-safe name from a URL or path: its last segment
/// without extension, only letters, digits, `-` and `_`, at most 40 chars.
fn file_stem(source: &str) -> String {
    let last = source
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("");
    let stem = match last.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => last,
    };
    let name = safe_name(stem);
    if name.is_empty() {
        "image".into()
    } else {
        name
    }
}

fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_last_segment_and_are_safe() {
        assert_eq!(file_stem("http://host/a/b/cat.png?size=2"), "cat");
        assert_eq!(file_stem("/tmp/my photo.jpeg"), "my_photo");
        assert_eq!(file_stem("http://host/"), "host");
        assert_eq!(file_stem("http://host/../../etc/passwd"), "passwd");
        assert_eq!(file_stem(".hidden"), "_hidden");
        assert_eq!(file_stem(""), "image");
    }
}
