//! Step 3's results: the files uploaded, the results page and the final
//! table.
//!
//! *Plumbing: a reader may skip this file*, except
//! [`continue_earlier_run`], which belongs to step 4.

use super::{Image, ImageBatch, ImageState, RESULT_EXTENSIONS};
use crate::proto::mesos::TaskInfo;
use crate::scheduler::{Config, Outcome, Work};
use crate::server::{ImageRow, Progress};
use std::path::Path;
use std::time::{Duration, Instant};

/// The most images the results page lists; a batch of thousands shows its
/// first rows and counts the rest, so that the page stays light to build
/// and to load.
pub const MAX_PAGE_ROWS: usize = 500;

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

/// The image's last task ended (its terminal update arrived): how long it
/// took.
pub(super) fn task_ended(image: &mut Image) {
    if let Some(run) = &mut image.last_task {
        run.took.get_or_insert(run.launched.elapsed());
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

/// Step 4: continues the batch of an earlier scheduler process whose
/// framework this one took over (`--framework-id-file`): images whose
/// result is already in the output folder are done, and task ids get a
/// fresh prefix. The earlier process's tasks are not adopted: their
/// executor is shut down (see
/// [`TaskPlan::stale_executor`](crate::scheduler::tasks::TaskPlan::stale_executor)),
/// since it uploads to a file server that is gone.
pub(super) fn continue_earlier_run(batch: &mut ImageBatch) {
    batch.id_prefix = format!("{}-", &crate::random::token()[..6]);
    let mut found = 0;
    for image in &mut batch.images {
        let stem = image.output_stem();
        let result = RESULT_EXTENSIONS
            .iter()
            .map(|extension| format!("{stem}.{extension}"))
            .find(|name| batch.output_dir.join(name).is_file());
        if let Some(name) = result {
            let path = batch.output_dir.join(&name);
            batch.server.record_upload(&name, &path);
            image.state = ImageState::Done(path);
            found += 1;
        }
    }
    batch.done += found;
    let images = &batch.images;
    batch
        .queue
        .retain(|&index| matches!(images[index].state, ImageState::Queued));
    let images = crate::scheduler::log_lines::counted(found, "image");
    let were = if found == 1 { "was" } else { "were" };
    log::info!(
        "Continuing an earlier run: {images} {were} done already; new task ids start with {}",
        batch.id_prefix
    );
}

/// What the results page shows: the counts, and the first
/// [`MAX_PAGE_ROWS`] images.
pub fn progress(batch: &ImageBatch) -> Progress {
    Progress {
        total: batch.images.len(),
        done: batch.done,
        failed: batch.failed,
        finished: batch.done(),
        not_listed: batch.images.len().saturating_sub(MAX_PAGE_ROWS),
        images: batch
            .images
            .iter()
            .take(MAX_PAGE_ROWS)
            .map(|image| ImageRow {
                name: image.name.clone(),
                original_url: image
                    .url
                    .strip_prefix(&batch.server_base)
                    .filter(|path| path.starts_with('/'))
                    .unwrap_or(&image.url)
                    .to_string(),
                result_name: match &image.state {
                    ImageState::Done(path) => {
                        path.file_name().map(|n| n.to_string_lossy().into_owned())
                    }
                    _ => None,
                },
                status: status_text(image),
                ..task_columns(image)
            })
            .collect(),
    }
}

fn status_text(image: &Image) -> String {
    match &image.state {
        ImageState::Queued if image.attempts == 0 => "queued".into(),
        ImageState::Queued => format!("queued for attempt {}", image.attempts + 1),
        ImageState::Running => format!("running (attempt {})", image.attempts),
        ImageState::Done(_) => "done".into(),
        ImageState::Failed(reason) => format!("failed: {reason}"),
    }
}

/// `7/10 images done, 1 failed`.
pub fn summary(batch: &ImageBatch) -> String {
    format!(
        "{}/{} images done, {} failed",
        batch.done,
        batch.images.len(),
        batch.failed
    )
}

/// The final table: image, attempts, result, output path or error.
pub(super) fn table(batch: &ImageBatch) -> String {
    // 28 columns, or the longest name's, so that the columns stay aligned.
    let names = batch.images.iter().map(|image| image.name.chars().count());
    let width = names.max().unwrap_or(0).max(28);
    let mut table = format!("{}\n", summary(batch));
    table += &format!(
        "{:<width$} {:>8}  {:<7} output or error\n",
        "image", "attempts", "result"
    );
    for image in &batch.images {
        let (result, detail) = match &image.state {
            ImageState::Done(path) => ("done", path.display().to_string()),
            ImageState::Failed(reason) => ("FAILED", reason.clone()),
            _ => ("pending", String::new()),
        };
        table += &format!(
            "{:<width$} {:>8}  {:<7} {detail}\n",
            image.name, image.attempts, result
        );
    }
    table
}

/// Gives the results page the batch's progress, at most every
/// `PROGRESS_EVERY`, and always once the batch is done.
pub(super) fn show_progress(batch: &mut ImageBatch) {
    let due = batch
        .progress_shown
        .is_none_or(|shown| shown.elapsed() >= PROGRESS_EVERY);
    if due || batch.done() {
        batch.server.set_progress(progress(batch));
        batch.progress_shown = Some(Instant::now());
    }
}

/// The end of step 3, done or `interrupted`: the table, and the results
/// page kept up with `--keep-serving`.
pub(super) fn finish(mut batch: ImageBatch, config: &Config, interrupted: bool) -> Outcome {
    if interrupted {
        // No upload arrives once the server is down: the table and the
        // output folder then agree.
        batch.server.stop();
        count_arrived_results(&mut batch);
    }
    print!("{}", table(&batch));
    let output_dir = config.output_dir.display();
    if interrupted {
        drop(batch);
        remove_partial_uploads(&config.output_dir);
        log::info!("The finished results are in {output_dir}");
        return Outcome::new(false, true);
    }
    // Succeeded: every image was inverted.
    let succeeded = batch.done == batch.images.len();
    batch.server.set_progress(progress(&batch));
    let page = format!("{}/", batch.server.base_url());
    if config.keep_serving {
        return Outcome::serving(succeeded, page, batch);
    }
    log::info!(
        "Outputs are in {output_dir}; the results page was {page} \
         (add --keep-serving to keep it up)"
    );
    Outcome::new(succeeded, false)
}

/// After Ctrl+C: an image whose result arrived is done, although Ctrl+C
/// came before its task's `TASK_FINISHED`. Its result is in the output
/// folder, and a restarted batch counts it done too (`continue_earlier_run`).
fn count_arrived_results(batch: &mut ImageBatch) {
    let running: Vec<usize> = batch.tasks.values().map(|(index, _)| *index).collect();
    for index in running {
        if let Some(path) = batch.stored_result(index) {
            let name = &batch.images[index].name;
            log::info!("The result of {name} arrived before its task finished: done");
            batch.images[index].state = ImageState::Done(path);
            batch.done += 1;
        }
    }
    log::info!("{}", summary(batch));
}

/// Removes the hidden temporary files of uploads that Ctrl+C cut short
/// (`.<name>.part-<token>`, see `server/upload.rs`): only finished results
/// stay in the output folder.
fn remove_partial_uploads(output_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".part-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hidden_partial_uploads_are_removed() {
        let dir = std::env::temp_dir().join(format!("partial-{}", crate::random::token()));
        std::fs::create_dir_all(&dir).expect("create a folder");
        let names = [
            "001-a-inverted.png",
            ".001-b-inverted.png.part-0123abcd",
            ".keep",
        ];
        for name in names {
            std::fs::write(dir.join(name), b"x").expect("write a file");
        }
        remove_partial_uploads(&dir);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .expect("list the folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into()
            })
            .collect();
        left.sort();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(left, [".keep", "001-a-inverted.png"]);
    }
}
