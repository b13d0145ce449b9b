//! Step 3's results: the files uploaded, the results page and the final
//! table.
//!
//! *Plumbing: a reader may skip this file*, except
//! [`ImageBatch::continue_earlier_run`], which belongs to step 4.

use super::{Image, ImageBatch, ImageState};
use crate::proto::mesos::TaskInfo;
use crate::server::{FileServer, ImageRow, Progress};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most images the results page lists; a batch of thousands shows its
/// first rows and counts the rest, so that the page stays light to build
/// and to load.
pub const MAX_PAGE_ROWS: usize = 500;

/// The extensions the executor gives a result (see `invert::extension`),
/// and `.jpeg`, which the file server also accepts.
const RESULT_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// How often, at most, the results page is brought up to date. The page
/// reloads every 2 s; rebuilding it after every event of a busy batch would
/// only cost time.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// An image's last task, as the results page shows it.
pub(super) struct TaskRun {
    task_id: String,
    agent: String,
    launched: Instant,
    took: Option<Duration>,
}

impl TaskRun {
    pub(super) fn new(task: &TaskInfo, agent: &str) -> TaskRun {
        TaskRun {
            task_id: task.task_id.value().to_string(),
            agent: agent.to_string(),
            launched: Instant::now(),
            took: None,
        }
    }
}

impl Image {
    /// Its last task ended (its terminal update arrived): how long it took.
    pub(super) fn task_ended(&mut self) {
        if let Some(run) = &mut self.last_task {
            run.took.get_or_insert(run.launched.elapsed());
        }
    }

    /// Where the file server stored this image's result, if it arrived.
    pub(super) fn stored_result(&self, server: &FileServer) -> Option<PathBuf> {
        let stem = self.output_stem();
        RESULT_EXTENSIONS
            .iter()
            .find_map(|extension| server.uploaded_path(&format!("{stem}.{extension}")))
    }
}

/// The page's columns for an image's last task: its id, the attempts, the
/// agent and how long it took (`running` while it runs).
fn task_columns(image: &Image) -> ImageRow {
    let Some(run) = &image.last_task else {
        return ImageRow::default();
    };
    ImageRow {
        task_id: run.task_id.clone(),
        attempts: image.attempts,
        agent: run.agent.clone(),
        time: match run.took {
            Some(took) => format!("{:.1} s", took.as_secs_f64()),
            None => "running".into(),
        },
        ..ImageRow::default()
    }
}

impl ImageBatch {
    /// Continues the batch of an earlier scheduler process whose framework
    /// this one took over (`--framework-id-file`): images whose result is
    /// already in `output_dir` are done, and task ids get a fresh prefix.
    /// The earlier process's tasks are not adopted: their executor is shut
    /// down (see [`TaskPlan::stale_executor`](crate::scheduler::tasks::TaskPlan::stale_executor)), since it uploads to a file
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
                    ..task_columns(image)
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

    /// Gives the results page the batch's progress, at most every
    /// `PROGRESS_EVERY`, and always once the batch is done.
    pub fn show_progress(&mut self, server: &FileServer) {
        let due = self
            .progress_shown
            .is_none_or(|shown| shown.elapsed() >= PROGRESS_EVERY);
        if due || self.done() {
            server.set_progress(self.progress());
            self.progress_shown = Some(Instant::now());
        }
    }
}
