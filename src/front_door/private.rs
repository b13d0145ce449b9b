//! The private channel to `tiny_http`, which only the front door may use:
//! on Unix a socket in a directory only this user may enter (mode 0700);
//! on Windows, which has no Unix socket for `std` or `tiny_http`, a port of
//! 127.0.0.1. There any local program may connect, but every request must
//! carry the front door's secret ([`Requests::recv`] answers `403`), so it
//! can at most hold `tiny_http`'s threads (a denial of service).
//!
//! *Plumbing: a reader may skip this file.*

use super::DoorError;
use std::io;

pub(super) const SECRET_HEADER: &str = "X-Front-Door";

/// A connection from the front door to `tiny_http`.
#[cfg(unix)]
pub(super) type Backend = std::os::unix::net::UnixStream;
#[cfg(not(unix))]
pub(super) type Backend = std::net::TcpStream;

/// Where `tiny_http` listens (on Unix, dropping it removes the directory),
/// and the secret every request carries there.
pub(super) struct Channel {
    #[cfg(unix)]
    socket: std::path::PathBuf,
    #[cfg(not(unix))]
    socket: std::net::SocketAddr,
    pub(super) secret: String,
}

/// The directories' names: this, the process id, a random part.
#[cfg(unix)]
const DIR_PREFIX: &str = "front-door-";

impl Channel {
    /// Makes the channel and starts `tiny_http` listening on it.
    pub(super) fn open() -> Result<(Channel, Requests), DoorError> {
        let (channel, listener) = Channel::listen().map_err(|err| {
            DoorError::Start(format!(
                "cannot make the private channel to the HTTP server: {err}; \
                 check that the temporary directory (TMPDIR) is writable"
            ))
        })?;
        let server = tiny_http::Server::from_listener(listener, None);
        let why = |err| DoorError::Start(format!("the HTTP server did not start: {err}"));
        let server = server.map_err(why)?;
        let secret = channel.secret.clone();
        Ok((channel, Requests { server, secret }))
    }

    #[cfg(unix)]
    fn listen() -> io::Result<(Channel, std::os::unix::net::UnixListener)> {
        use std::os::unix::fs::DirBuilderExt;
        // A Unix socket's path must be under 108 bytes; a deep TMPDIR
        // (as some test harnesses set) leaves too little room.
        let mut parent = std::env::temp_dir();
        if parent.as_os_str().len() > 64 {
            parent = "/tmp".into();
        }
        // A killed process leaves its directory behind: removed once no
        // server answers there and (where /proc tells) its process is gone.
        crate::leftovers::remove_abandoned(&parent, DIR_PREFIX, |dir, pid| {
            let connected = Backend::connect(dir.join("http"));
            let refused = connected.is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused);
            refused && crate::leftovers::process_gone(pid) != Some(false)
        });
        let pid = std::process::id();
        let token = crate::random::token();
        let dir = parent.join(format!("{DIR_PREFIX}{pid}-{}", &token[..12]));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        // From here on, dropping the channel removes the directory.
        let socket = dir.join("http");
        let secret = crate::random::token();
        let channel = Channel { socket, secret };
        let listener = std::os::unix::net::UnixListener::bind(&channel.socket)?;
        Ok((channel, listener))
    }

    #[cfg(not(unix))]
    fn listen() -> io::Result<(Channel, std::net::TcpListener)> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let socket = listener.local_addr()?;
        let secret = crate::random::token();
        Ok((Channel { socket, secret }, listener))
    }

    pub(super) fn connect(&self) -> io::Result<Backend> {
        #[cfg(unix)]
        return Backend::connect(&self.socket);
        #[cfg(not(unix))]
        return Backend::connect(self.socket).and_then(|to| to.set_nodelay(true).map(|()| to));
    }
}

#[cfg(unix)]
impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.socket.parent().map(std::fs::remove_dir_all);
    }
}

/// The requests that came through a [`FrontDoor`](super::FrontDoor).
pub struct Requests {
    server: tiny_http::Server,
    secret: String,
}

impl Requests {
    /// Waits for the next request that came through the front door; any
    /// other is answered `403 Forbidden` here. An error means `tiny_http`
    /// stopped listening, or [`Requests::unblock`] was called.
    pub fn recv(&self) -> io::Result<tiny_http::Request> {
        loop {
            let request = self.server.recv()?;
            let mut headers = request.headers().iter();
            let secret = headers.find(|header| header.field.equiv(SECRET_HEADER));
            let secret = secret.map(|header| header.value.as_str().as_bytes());
            if secret.is_some_and(|secret| same(secret, self.secret.as_bytes())) {
                return Ok(request);
            }
            log::warn!("a request reached the HTTP server without passing its front door");
            let refusal = tiny_http::Response::from_string("only the front door may call here\n");
            let _ = request.respond(refusal.with_status_code(403));
        }
    }

    /// Wakes a thread waiting in [`Requests::recv`] with an error.
    pub fn unblock(&self) {
        self.server.unblock();
    }
}

/// Whether two byte strings are equal, in a time that tells nothing of how.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_request_without_the_secret_is_refused_before_any_handler() {
        let (channel, requests) = Channel::open().expect("open the channel");
        let ask = |secret: &str| {
            let mut backend = channel.connect().expect("connect");
            let head = format!("GET /x HTTP/1.1\r\n{SECRET_HEADER}: {secret}\r\n\r\n");
            backend.write_all(head.as_bytes()).expect("send");
            backend
        };
        // One request at a time: tiny_http may hand over requests of two
        // connections in either order, and a refusal is only sent while
        // `recv` is looking for the next request it may return.
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| requests.recv().map(|request| request.url().to_owned()));
            let mut refused = ask("guess!");
            refused
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .expect("a read timeout");
            let mut answer = [0u8; 12];
            refused.read_exact(&mut answer).expect("the refusal");
            assert_eq!(&answer, b"HTTP/1.1 403");
            let _passed = ask(&channel.secret);
            let url = waiting
                .join()
                .expect("recv")
                .expect("the request with the secret");
            assert_eq!(url, "/x");
        });
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
    }
}
