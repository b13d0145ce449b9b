//! Step 3's images: where they come from.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! `--images` names URLs and local files; local files are served by our
//! file server, so that the executor always downloads over HTTP. Without
//! `--images`, demo pictures are written to a private temporary folder,
//! removed with the batch (and, on Linux, when a later run finds the
//! process that made it gone).

use super::{Image, ImageState};
use crate::scheduler::{Config, SchedulerError};
use crate::server::FileServer;
use std::path::{Path, PathBuf};

/// The batch's images, and the demo folder if the demo images are used
/// (it is removed when dropped).
pub(super) fn images(
    config: &Config,
    server: &FileServer,
) -> Result<(Vec<Image>, Option<DemoDir>), SchedulerError> {
    let (demo, demo_dir) = if config.images.is_empty() {
        let (paths, dir) = demo_images()?;
        (paths, Some(DemoDir(dir)))
    } else {
        (Vec::new(), None)
    };
    let sources = if demo.is_empty() {
        &config.images
    } else {
        &demo
    };
    let mut images = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        let name = format!("{:03}-{}", index + 1, file_stem(source));
        let url = match crate::http_api::http_url(source) {
            Some(url) => url,
            None => serve_local_file(server, source, &name)?,
        };
        images.push(Image {
            name,
            url,
            attempts: 0,
            state: ImageState::Queued,
            last_task: None,
        });
    }
    Ok((images, demo_dir))
}

/// The folder of the demo images, removed when dropped.
pub(super) struct DemoDir(PathBuf);

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the demo images to a fresh private folder.
fn demo_images() -> Result<(Vec<String>, PathBuf), SchedulerError> {
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
    let paths = paths.iter().map(|p| p.display().to_string()).collect();
    Ok((paths, dir))
}

/// Whether `source` can be an image of the batch: an http(s) URL, or a
/// file. Checked before anything starts, and again when the file is served.
pub fn check_source(source: &str) -> Result<(), String> {
    if crate::http_api::http_url(source).is_some() || Path::new(source).is_file() {
        Ok(())
    } else {
        Err(format!(
            "{source} is neither an http(s) URL nor a readable file"
        ))
    }
}

/// Serves a local image file under the image's name (and its extension),
/// and returns its URL.
fn serve_local_file(
    server: &FileServer,
    source: &str,
    name: &str,
) -> Result<String, SchedulerError> {
    check_source(source).map_err(SchedulerError::Images)?;
    let path = Path::new(source);
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(safe_name)
        .unwrap_or_default();
    let served = if extension.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{extension}")
    };
    Ok(server.serve_file(&served, path)?)
}

/// A fresh, unguessable folder for the demo images. Folders left by
/// earlier runs that were killed (whose process is gone) are removed first.
fn demo_dir_path() -> PathBuf {
    const PREFIX: &str = "mesos-tutorial-demo-";
    let temp = std::env::temp_dir();
    let gone = |_: &Path, pid| crate::leftovers::process_gone(pid) == Some(true);
    crate::leftovers::remove_abandoned(&temp, PREFIX, gone);
    temp.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        crate::random::token()
    ))
}

/// Creates a folder that must not exist yet, readable only by us, so that
/// no other user can swap the images we serve.
#[cfg(unix)]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Elsewhere (Windows) the temporary folder is already the user's own,
/// and a new folder inherits its access rules.
#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().create(path)
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
