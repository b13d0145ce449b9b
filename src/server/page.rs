//! The results page at `/`: what a workshop attendee watches while the
//! tasks run.
//!
//! It is plain HTML without scripts. While the job runs, the page asks the
//! browser to reload it every two seconds; each row shows an original image
//! beside its inverted result once the executor has uploaded it. Every piece
//! of text comes from outside (image URLs given by the user, names, status
//! messages written by executors) and is escaped before it is put into the
//! page.

use super::paths::percent_encode;

/// What the results page shows; the scheduler replaces it with
/// [`FileServer::set_progress`](super::FileServer::set_progress) as tasks
/// finish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// How many images the job has.
    pub total: usize,
    /// How many have been inverted and uploaded.
    pub done: usize,
    /// How many failed for good.
    pub failed: usize,
    /// Whether the job is over (the page stops reloading itself).
    pub finished: bool,
    /// One row per image, or for the first images of a large job.
    pub images: Vec<ImageRow>,
    /// How many images have no row (a large job lists only its first).
    pub not_listed: usize,
}

/// One image of the job, as a row of the results page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRow {
    /// A short name for the image, such as `gradient.png`.
    pub name: String,
    /// Where the original can be seen (the URL the task downloads).
    pub original_url: String,
    /// The name of the uploaded result, served at `/output/<name>`, once
    /// there is one.
    pub result_name: Option<String>,
    /// The task's state in words, such as `TASK_RUNNING on agent a1`.
    pub status: String,
    /// The image's last task (`image-3-attempt-2`), once one was launched.
    pub task_id: String,
    /// How many tasks were launched for it.
    pub attempts: u32,
    /// The agent that ran its last task.
    pub agent: String,
    /// How long its last task took, from launch to its end (`1.2 s`).
    pub time: String,
}

/// The line at the top of the page, such as `7/10 images done, 1 failed`.
pub fn progress_line(progress: &Progress) -> String {
    let mut line = format!(
        "{}/{} images done, {} failed",
        progress.done, progress.total, progress.failed
    );
    if progress.finished {
        line.push_str(" (finished)");
    }
    line
}

/// The whole page.
pub(super) fn render(progress: &Progress) -> String {
    let mut page = String::with_capacity(1024 + 256 * progress.images.len());
    page.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n");
    if !progress.finished {
        page.push_str("<meta http-equiv=\"refresh\" content=\"2\">\n");
    }
    page.push_str(
        "<title>Mesos tutorial: inverted images</title>\n\
         <style>body{font-family:sans-serif}td{padding:4px 8px;vertical-align:top}\
         td:nth-child(-n+6){white-space:nowrap}\
         td:nth-child(5){white-space:normal;word-break:break-all;min-width:10em}\
         img{max-width:140px;max-height:105px}</style>\n</head><body>\n\
         <h1>Inverting images with Mesos</h1>\n",
    );
    page.push_str(&format!("<p>{}</p>\n", escape(&progress_line(progress))));
    page.push_str(
        "<table>\n<tr><th>Image</th><th>Status</th><th>Task</th><th>Attempts</th>\
         <th>Agent</th><th>Time</th><th>Original</th><th>Inverted</th></tr>\n",
    );
    for row in &progress.images {
        let result = match &row.result_name {
            Some(name) => format!(
                "<img src=\"/output/{}\" alt=\"inverted {}\">",
                escape(&percent_encode(name)),
                escape(&row.name)
            ),
            None => "&mdash;".to_owned(),
        };
        page.push_str(&format!(
            "<tr><td>{name}</td><td>{status}</td><td>{task}</td><td>{attempts}</td>\
             <td>{agent}</td><td>{time}</td>\
             <td><img src=\"{original}\" alt=\"{name}\"></td><td>{result}</td></tr>\n",
            name = escape(&row.name),
            status = escape(&row.status),
            task = escape(&row.task_id),
            attempts = row.attempts,
            agent = escape(&row.agent),
            time = escape(&row.time),
            original = escape(&row.original_url),
        ));
    }
    page.push_str("</table>\n");
    if progress.not_listed > 0 {
        page.push_str(&format!(
            "<p>and {} more images, not listed</p>\n",
            progress.not_listed
        ));
    }
    page.push_str("</body></html>\n");
    page
}

/// Escapes text for HTML, inside elements and inside quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, result: Option<&str>, status: &str) -> ImageRow {
        ImageRow {
            name: name.into(),
            original_url: format!("http://127.0.0.1:1/files/{name}"),
            result_name: result.map(str::to_owned),
            status: status.into(),
            ..ImageRow::default()
        }
    }

    #[test]
    fn the_progress_line_counts_images() {
        let progress = Progress {
            total: 10,
            done: 7,
            failed: 1,
            ..Progress::default()
        };
        assert_eq!(progress_line(&progress), "7/10 images done, 1 failed");
        let page = render(&progress);
        assert!(page.contains("<p>7/10 images done, 1 failed</p>"), "{page}");
        assert!(page.contains("http-equiv=\"refresh\""));
    }

    #[test]
    fn a_large_job_says_how_many_images_are_not_listed() {
        let progress = Progress {
            total: 10_000,
            images: vec![row("a.png", None, "queued")],
            not_listed: 9_999,
            ..Progress::default()
        };
        let page = render(&progress);
        assert!(page.contains("and 9999 more images, not listed"), "{page}");
        assert!(!render(&Progress::default()).contains("not listed"));
    }

    #[test]
    fn a_finished_page_stops_reloading() {
        let progress = Progress {
            finished: true,
            ..Progress::default()
        };
        let page = render(&progress);
        assert!(!page.contains("refresh"), "{page}");
        assert!(page.contains("(finished)"));
    }

    #[test]
    fn rows_show_the_original_beside_the_result() {
        let progress = Progress {
            total: 2,
            done: 1,
            images: vec![
                row("a.png", Some("inverted-a.png"), "TASK_FINISHED"),
                row("b.jpg", None, "TASK_RUNNING"),
            ],
            ..Progress::default()
        };
        let page = render(&progress);
        assert!(
            page.contains("<img src=\"http://127.0.0.1:1/files/a.png\""),
            "{page}"
        );
        assert!(
            page.contains("<img src=\"/output/inverted-a.png\""),
            "{page}"
        );
        assert!(
            page.contains("<td>b.jpg</td><td>TASK_RUNNING</td>"),
            "{page}"
        );
        assert_eq!(page.matches("<img ").count(), 3);
    }

    #[test]
    fn rows_name_the_task_its_attempts_agent_and_time() {
        let mut done = row("a.png", Some("a-inverted.png"), "done");
        done.task_id = "image-1-attempt-2".into();
        done.attempts = 2;
        done.agent = "<agent-1>".into();
        done.time = "1.2 s".into();
        let page = render(&Progress {
            images: vec![done],
            ..Progress::default()
        });
        assert!(page.contains("<th>Task</th><th>Attempts</th><th>Agent</th><th>Time</th>"));
        assert!(
            page.contains(
                "<td>done</td><td>image-1-attempt-2</td><td>2</td><td>&lt;agent-1&gt;</td><td>1.2 s</td>"
            ),
            "{page}"
        );
    }

    #[test]
    fn text_from_outside_cannot_inject_markup() {
        let hostile = row(
            "<script>alert(1)</script>",
            Some("x\" onerror=\"alert(1)"),
            "failed: <b>&</b>",
        );
        let mut hostile = hostile;
        hostile.original_url = "\"><script>alert(2)</script>".into();
        let page = render(&Progress {
            images: vec![hostile],
            ..Progress::default()
        });
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\" onerror"), "{page}");
        assert!(page.contains("failed: &lt;b&gt;&amp;&lt;/b&gt;"), "{page}");
        assert!(page.contains("&quot;&gt;&lt;script&gt;"), "{page}");
    }
}
