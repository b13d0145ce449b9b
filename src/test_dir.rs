//! A folder for one unit test, removed when the test ends, whether it
//! passed or failed: an assertion that fails unwinds through `Drop`, so a
//! failing test leaves nothing behind either.
//!
//! *Tests only: a reader may skip this file.*

use std::path::PathBuf;

/// A new, empty folder under the system's temporary folder, named
/// `<label>-<process id>-<random token>`; removed with its contents on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    /// Creates the folder.
    pub fn new(label: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!(
            "{label}-{}-{}",
            std::process::id(),
            crate::random::token()
        ));
        std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
        TestDir(dir)
    }

    /// The names of the folder's entries, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("the test's folder is readable")
            .map(|entry| {
                let entry = entry.expect("an entry of the test's folder");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
