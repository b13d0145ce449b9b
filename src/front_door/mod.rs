//! The front door: what stands between the network and our two HTTP
//! servers (the file server and the embedded cluster), and keeps clients
//! within limits.
//!
//! *Plumbing: a reader may skip this folder.*
//!
//! Both servers are built on `tiny_http` 0.12, which takes whatever a client
//! sends: a head of any size, at any pace, on as many connections as it
//! likes, each with a thread of its own. Anyone who can reach the port could
//! exhaust memory or threads. So the public port is ours, and `tiny_http`
//! listens on a private Unix socket (in a directory only this user can enter,
//! removed on shutdown) that only the front door connects to:
//!
//! ```text
//!  clients ──TCP──> front door ──Unix socket──> tiny_http ──> handlers
//!                   (checks each request head,  (parses, calls
//!                    passes bytes both ways)     the handlers)
//! ```
//!
//! What the front door enforces, with the defaults of [`Limits`]:
//!
//! | limit                                      | default | over it                    |
//! |--------------------------------------------|---------|----------------------------|
//! | connections open at once                   | 256     | `503 Service Unavailable`  |
//! | bytes of a request head                    | 16 KiB  | `431 Request Header Fields Too Large` |
//! | time for a whole head, from its first byte | 10 s    | `408 Request Timeout`      |
//! | time for a whole body, after the head      | 60 s    | `408 Request Timeout`      |
//! | a connection idle between requests         | 60 s    | closed                     |
//! | a client not reading its response          | 30 s    | closed                     |
//! | bytes of a body (set per path by a server) | -       | `413 Payload Too Large`, from `Content-Length` before reading |
//!
//! An answer of the front door's own always closes the connection. A
//! response is never timed, only each write of it: an event stream lives as
//! long as its client reads it. A request body announced up to
//! [`WHOLE_BODY_BYTES`] is read whole before the request is passed on, so the
//! code answering it never waits for a slow client;
//! [`reading_body_may_block`] tells a server which requests are not so.
//!
//! A port served over TLS (the embedded master with `--tls-cert`) has TLS
//! ended here, by the front door ([`TlsIdentity`]), so `tiny_http` and the
//! limits above see plain HTTP and every limit holds there too. The TLS
//! handshake, and each TLS record once its first byte has come, must be
//! whole within the head's deadline: until a record is whole, none of the
//! request inside it can be read.

mod head;
mod pipe;
mod private_dir;
mod relay;
mod tls;

pub use relay::WHOLE_BODY_BYTES;
pub use tls::{TlsError, TlsIdentity};

use private_dir::{PrivateDir, SOCKET_NAME};

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the front door allows each client; `Limits::default()` suits both
/// servers. The embedded cluster takes these from
/// [`ClusterConfig::limits`](crate::local::ClusterConfig::limits), which
/// `mesos-local` sets from the flag named with each field; the file server
/// from [`FileServer::start_with_limits`](crate::server::FileServer::start_with_limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; the next one is answered `503 Service
    /// Unavailable` and closed. Default 256 (`--max-connections`).
    pub max_connections: usize,
    /// Bytes of a request head, the request line and headers; a longer one
    /// is answered `431 Request Header Fields Too Large`. Default 16 KiB
    /// (`--max-header-bytes`).
    pub max_header_bytes: usize,
    /// Time a request head may take to arrive whole, from its first byte; a
    /// slower one is answered `408 Request Timeout`. Default 10 s
    /// (`--header-timeout`).
    pub header_timeout: Duration,
    /// Time a request body may take to arrive whole, after its head; a
    /// slower one is answered `408 Request Timeout`. Default 60 s
    /// (`--body-timeout`).
    pub body_timeout: Duration,
    /// Time a connection may stay open with no request in progress (a new
    /// one, or a kept-alive one between requests). Default 60 s, longer
    /// than the 15 s that HTTP clients such as `ureq` keep an idle
    /// connection (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// Time any one write of a response may wait for the client to read;
    /// a client that stops reading is cut off. Default 30 s
    /// (`--send-timeout`).
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the front door could not open.
#[derive(Debug)]
pub enum DoorError {
    /// The public address could not be bound.
    Bind(io::Error),
    /// The private socket for `tiny_http` could not be made.
    PrivateSocket {
        /// Where it was to be.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// `tiny_http`, or a thread of the front door, could not start.
    Server(String),
}

impl fmt::Display for DoorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DoorError::Bind(err) => write!(f, "cannot listen: {err}"),
            DoorError::PrivateSocket { path, source } => write!(
                f,
                "cannot make the private socket {}: {source}; check that the temporary \
                 directory (TMPDIR) is writable",
                path.display()
            ),
            DoorError::Server(reason) => write!(f, "the HTTP server did not start: {reason}"),
        }
    }
}

impl std::error::Error for DoorError {}

/// Whether reading this request's body could wait on the client: it has a
/// body that the front door has not read whole beforehand (see the module
/// documentation). A server answers such a request on a thread of its own,
/// so that a slow client holds up nobody else; the front door's connection
/// cap bounds how many there can be.
pub fn reading_body_may_block(request: &tiny_http::Request) -> bool {
    let has = |name: &str| {
        request
            .headers()
            .iter()
            .any(|header| header.field.as_str().as_str().eq_ignore_ascii_case(name))
    };
    if has("Transfer-Encoding") {
        return true;
    }
    let Some(length) = request.body_length() else {
        return false;
    };
    // `tiny_http` itself reads up to 1 KiB before handing a request over,
    // unless the client waits for `100 Continue`.
    let read_by_tiny_http = length <= 1024 && !has("Expect");
    let read_by_front_door = length as u64 <= WHOLE_BODY_BYTES;
    !(read_by_tiny_http || read_by_front_door)
}

/// A listening front door. Stop it with [`FrontDoor::close`]; dropping it
/// also removes the private socket's directory, so drop it only after the
/// `tiny_http::Server` behind it (which removes its socket on drop).
pub struct FrontDoor {
    address: SocketAddr,
    door: Arc<Door>,
    accept: Option<JoinHandle<()>>,
    overflow: Option<JoinHandle<()>>,
    // Removed when dropped, last: see the type's documentation.
    _private_dir: PrivateDir,
}

/// What the threads of one front door share.
struct Door {
    limits: Limits,
    body_limit: Box<dyn Fn(&str) -> u64 + Send + Sync>,
    socket: PathBuf,
    tls: Option<TlsIdentity>,
    stopping: AtomicBool,
    connections: Mutex<Connections>,
}

/// The open connections: their sockets, so that closing can cut them off,
/// and their threads, so that closing can wait for them.
#[derive(Default)]
struct Connections {
    next_id: u64,
    sockets: HashMap<u64, Vec<Socket>>,
    threads: Vec<JoinHandle<()>>,
    /// Whether the cap was hit since the last accepted connection, so that
    /// a flood is logged once and not once per connection.
    full: bool,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(stream) => stream.shutdown(Shutdown::Both),
            Socket::Unix(stream) => stream.shutdown(Shutdown::Both),
        };
    }
}

impl FrontDoor {
    /// Listens on `address` and starts a `tiny_http` server behind it,
    /// returned for the caller's handlers to `recv` from. `body_limit` gives
    /// the largest request body for a path (the request target before any
    /// `?`). With `tls`, clients speak TLS to the front door, which ends it
    /// (see the module documentation).
    pub fn open(
        address: &str,
        limits: Limits,
        body_limit: impl Fn(&str) -> u64 + Send + Sync + 'static,
        tls: Option<TlsIdentity>,
    ) -> Result<(FrontDoor, tiny_http::Server), DoorError> {
        let listener = TcpListener::bind(address).map_err(DoorError::Bind)?;
        let local = listener.local_addr().map_err(DoorError::Bind)?;
        let private_dir = PrivateDir::create()?;
        let socket = private_dir.0.join(SOCKET_NAME);
        let private = UnixListener::bind(&socket).map_err(|source| DoorError::PrivateSocket {
            path: socket.clone(),
            source,
        })?;
        let server = tiny_http::Server::from_listener(private, None)
            .map_err(|err| DoorError::Server(err.to_string()))?;
        let door = Arc::new(Door {
            limits,
            body_limit: Box::new(body_limit),
            socket,
            tls,
            stopping: AtomicBool::new(false),
            connections: Mutex::default(),
        });
        // Refusing over the cap takes a moment (see `refuse_overflow`), so
        // one thread does it, never holding up the accept loop; when it
        // falls behind, the extra connections are simply closed.
        let (overflow_sender, overflow) = sync_channel(64);
        let overflow = {
            let door = Arc::clone(&door);
            spawn("front-door-full", move || refuse_overflow(&overflow, &door))
                .map_err(|err| DoorError::Server(err.to_string()))?
        };
        let accept = {
            let door = Arc::clone(&door);
            spawn("front-door", move || {
                accept(&listener, &door, &overflow_sender)
            })
            .map_err(|err| DoorError::Server(err.to_string()))?
        };
        let front_door = FrontDoor {
            address: local,
            door,
            accept: Some(accept),
            overflow: Some(overflow),
            _private_dir: private_dir,
        };
        Ok((front_door, server))
    }

    /// The public address, with the port chosen if `0` was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, cuts every open connection and waits for their
    /// threads. The server behind it then sees its connections end.
    pub fn close(&mut self) {
        if self.door.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let loopback = match self.address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let woken = TcpStream::connect_timeout(
            &SocketAddr::new(loopback, self.address.port()),
            Duration::from_secs(5),
        );
        if let (Ok(_), Some(accept)) = (woken, self.accept.take()) {
            let _ = accept.join();
        } else {
            log::warn!(
                "front door on {}: could not wake its accept loop",
                self.address
            );
        }
        // The accept loop owned the overflow sender, so that thread ends.
        if let Some(overflow) = self.overflow.take() {
            let _ = overflow.join();
        }
        let threads = {
            let mut connections = self.door.lock();
            for socket in connections.sockets.values().flatten() {
                socket.shutdown();
            }
            std::mem::take(&mut connections.threads)
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.close();
        // `_private_dir` is removed as the field drops.
    }
}

impl Door {
    fn lock(&self) -> MutexGuard<'_, Connections> {
        // Every update is a few plain assignments: a poisoned lock still
        // holds usable data.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.into()).spawn(body)
}

/// The accept loop: each connection under the cap gets a thread, the others
/// go to `overflow`.
fn accept(listener: &TcpListener, door: &Arc<Door>, overflow: &SyncSender<TcpStream>) {
    for client in listener.incoming() {
        if door.stopping.load(Ordering::SeqCst) {
            return;
        }
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                // Typically out of file descriptors: wait for some to close.
                log::warn!("front door: cannot accept a connection: {err}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Ok(peer) = client.peer_addr() else {
            continue;
        };
        let mut connections = door.lock();
        if connections.sockets.len() >= door.limits.max_connections {
            if !std::mem::replace(&mut connections.full, true) {
                log::warn!(
                    "front door: {} connections are open, the most allowed; refusing more",
                    door.limits.max_connections
                );
            }
            drop(connections);
            let _ = overflow.try_send(client);
            continue;
        }
        connections.full = false;
        connections.threads.retain(|thread| !thread.is_finished());
        let Ok(registered) = client.try_clone() else {
            continue;
        };
        let id = connections.next_id;
        connections.next_id += 1;
        connections
            .sockets
            .insert(id, vec![Socket::Tcp(registered)]);
        let spawned = {
            let door = Arc::clone(door);
            spawn("front-door-connection", move || {
                connection(client, peer, &door, id);
                door.lock().sockets.remove(&id);
            })
        };
        match spawned {
            Ok(thread) => connections.threads.push(thread),
            Err(err) => {
                log::warn!("front door: cannot start a connection thread: {err}");
                connections.sockets.remove(&id);
            }
        }
    }
}

/// One connection, from its thread: ends TLS if the port speaks it, joins
/// the connection to `tiny_http`, then relays.
fn connection(client: TcpStream, peer: SocketAddr, door: &Door, id: u64) {
    let limits = &door.limits;
    let timeouts = [
        client.set_nodelay(true),
        client.set_write_timeout(Some(limits.send_timeout)),
    ];
    if !timeouts.iter().all(Result::is_ok) {
        return;
    }
    match &door.tls {
        None => join(client, peer, door, id),
        Some(identity) => {
            if let Some(client) = tls::handshake(identity, client, limits.header_timeout) {
                join(client, peer, door, id);
            }
        }
    }
}

/// Connects a client to `tiny_http` and relays until the connection ends.
fn join(client: impl pipe::Client, peer: SocketAddr, door: &Door, id: u64) {
    let backend = UnixStream::connect(&door.socket).and_then(|backend| {
        backend.set_write_timeout(Some(door.limits.send_timeout))?;
        let registered = backend.try_clone()?;
        let mut connections = door.lock();
        if door.stopping.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        if let Some(sockets) = connections.sockets.get_mut(&id) {
            sockets.push(Socket::Unix(registered));
        }
        Ok(backend)
    });
    if let Ok(backend) = backend {
        relay::serve(client, peer, backend, door);
    }
}

/// Answers connections over the cap with `503 Service Unavailable` until
/// the accept loop ends. On a TLS port that takes a handshake first, given
/// a second at most: this one thread serves every connection over the cap.
fn refuse_overflow(overflow: &Receiver<TcpStream>, door: &Door) {
    let refusal = head::Refusal::new(
        503,
        format!(
            "too many connections: this server takes at most {} at once; try again shortly",
            door.limits.max_connections
        ),
    );
    let answer = relay::answer(&refusal);
    let quick = Duration::from_secs(1);
    for client in overflow {
        // Closing waits for this thread: what is still queued then is
        // simply closed.
        if door.stopping.load(Ordering::SeqCst) || client.set_write_timeout(Some(quick)).is_err() {
            continue;
        }
        match &door.tls {
            None => relay::refuse_at_once(client, &answer),
            Some(identity) => {
                if let Some(client) = tls::handshake(identity, client, quick) {
                    relay::refuse_at_once(client, &answer);
                }
            }
        }
    }
}
