//! The private directory of `tiny_http`'s socket.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Only the front door may connect to `tiny_http`, or a client could skip
//! every limit. Its Unix socket therefore lives in a directory that only
//! this user can enter (mode 0700), made fresh for each server and removed
//! when the server stops.

use super::DoorError;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// A directory only this user can enter, for the private socket; removed
/// when dropped.
pub(super) struct PrivateDir(pub(super) PathBuf);

/// How the private directories are named: the prefix, then the process id.
const PRIVATE_DIR_PREFIX: &str = "front-door-";
/// The socket's name in its directory.
pub(super) const SOCKET_NAME: &str = "http";

impl PrivateDir {
    pub(super) fn create() -> Result<PrivateDir, DoorError> {
        use std::os::unix::fs::DirBuilderExt;
        let mut parent = std::env::temp_dir();
        // A Unix socket's path must be under 108 bytes; a deep TMPDIR
        // (as some test harnesses set) leaves too little room.
        if parent.as_os_str().len() > 64 {
            parent = PathBuf::from("/tmp");
        }
        remove_abandoned_dirs(&parent);
        let token = crate::random::token();
        let path = parent.join(format!(
            "{PRIVATE_DIR_PREFIX}{}-{}",
            std::process::id(),
            &token[..12]
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| DoorError::PrivateSocket {
                path: path.clone(),
                source,
            })?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process killed before it could clean up (Ctrl+C on `mesos-local`)
/// leaves its directory behind; this removes those that are abandoned: no
/// server answers on their socket, and (where /proc tells) the process
/// named in the directory's name is gone. Another user's directories cannot
/// be removed, and are left alone.
fn remove_abandoned_dirs(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let proc_tells = std::path::Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PRIVATE_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let socket = entry.path().join(SOCKET_NAME);
        let refused = matches!(
            UnixStream::connect(&socket),
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused
        );
        let gone = !proc_tells || !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if refused && gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
