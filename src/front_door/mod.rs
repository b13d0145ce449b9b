//! The front door: what stands between the network and our two HTTP
//! servers (the file server and the embedded cluster), and keeps clients
//! within limits.
//!
//! *Plumbing: a reader may skip this folder.*
//!
//! Both servers are built on `tiny_http` 0.12, which takes whatever a client
//! sends: a head of any size, at any pace, on as many connections as it
//! likes, each with a thread of its own. So the public port is ours, and
//! `tiny_http` listens on a private channel that only the front door uses
//! (`private.rs` says how, on each platform). Each request is checked, then
//! passed on over a connection of its own, and the answer passed back:
//!
//! ```text
//!  clients ──TCP/TLS──> front door ──private channel──> tiny_http ──> handlers
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
//! long as its client reads it. A body announced up to [`WHOLE_BODY_BYTES`]
//! is read whole before the request goes on, so the code answering it never
//! waits for a slow client ([`reading_body_may_block`] tells which do).
//!
//! A port served over TLS (the embedded master with `--tls-cert`) has TLS
//! ended here ([`TlsIdentity`]), so every limit holds there too; the
//! handshake, and each TLS record once begun, must be whole within the
//! head's deadline.
//!
//! Crates do the codecs: `httparse` reads request heads and chunked
//! framing, rustls's `ServerConnection` and `StreamOwned` the TLS. Ours are
//! the policy (limits, what is ambiguous) and the plumbing between sockets.

mod client;
mod head;
mod private;
mod relay;
mod tls;

pub use private::Requests;
pub use relay::WHOLE_BODY_BYTES;
pub use tls::{TlsError, TlsIdentity};

use client::Client;
use private::{Backend, Channel};

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the front door allows each client; `Limits::default()` suits both
/// servers. `mesos-local` sets each from the flag named with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (`--max-connections`).
    pub max_connections: usize,
    /// Bytes of a request line and headers (`--max-header-bytes`).
    pub max_header_bytes: usize,
    /// Time for a whole request head, from its first byte (`--header-timeout`).
    pub header_timeout: Duration,
    /// Time for a whole request body, after its head (`--body-timeout`).
    pub body_timeout: Duration,
    /// Time a connection may stay open with no request in progress; longer
    /// than the 15 s that `ureq` keeps an idle connection (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// Time one write of a response may wait for the client (`--send-timeout`).
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
    /// The private channel to `tiny_http` could not be made.
    Private {
        /// Where it was to be.
        place: String,
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
            DoorError::Private { place, source } => write!(
                f,
                "cannot make the private channel to the HTTP server at {place}: {source}; \
                 check that the temporary directory (TMPDIR) is writable"
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
/// also removes its private channel, so drop it only after the
/// [`Requests`] behind it.
pub struct FrontDoor {
    address: SocketAddr,
    door: Arc<Door>,
    accept: Option<JoinHandle<()>>,
    overflow: Option<JoinHandle<()>>,
}

/// What the threads of one front door share.
struct Door {
    limits: Limits,
    body_limit: Box<dyn Fn(&str) -> u64 + Send + Sync>,
    channel: Channel,
    /// Goes on with every request (see `private.rs`).
    secret: String,
    tls: Option<TlsIdentity>,
    stopping: AtomicBool,
    connections: Mutex<Connections>,
}

/// The open connections: their sockets (the client's, and the one to
/// `tiny_http` of its request in progress), for closing to cut off, and
/// their threads, for closing to wait for.
#[derive(Default)]
struct Connections {
    next_id: u64,
    sockets: HashMap<u64, (TcpStream, Option<Backend>)>,
    threads: Vec<JoinHandle<()>>,
    /// Whether the cap was hit since the last accepted connection, so that
    /// a flood is logged once and not once per connection.
    full: bool,
}

impl FrontDoor {
    /// Listens on `address` and starts a `tiny_http` server behind it, whose
    /// [`Requests`] the caller's handlers `recv`. `body_limit` gives the
    /// largest request body for a path (the target before any `?`). With
    /// `tls`, clients speak TLS to the front door, which ends it.
    pub fn open(
        address: &str,
        limits: Limits,
        body_limit: impl Fn(&str) -> u64 + Send + Sync + 'static,
        tls: Option<TlsIdentity>,
    ) -> Result<(FrontDoor, Requests), DoorError> {
        let listener = TcpListener::bind(address).map_err(DoorError::Bind)?;
        let local = listener.local_addr().map_err(DoorError::Bind)?;
        let (channel, server) = Channel::open()?;
        let secret = crate::random::token();
        let requests = Requests::new(server, secret.clone());
        let door = Arc::new(Door {
            limits,
            body_limit: Box::new(body_limit),
            channel,
            secret,
            tls,
            stopping: AtomicBool::new(false),
            connections: Mutex::default(),
        });
        // Refusing over the cap takes a moment (see `refuse_overflow`), so
        // one thread does it, never holding up the accept loop; when it
        // falls behind, the extra connections are simply closed.
        let (overflow_sender, overflow) = sync_channel(64);
        let shared = Arc::clone(&door);
        let overflow = spawn("front-door-full", move || {
            refuse_overflow(&overflow, &shared)
        });
        let shared = Arc::clone(&door);
        let accept = spawn("front-door", move || {
            accept(&listener, &shared, &overflow_sender)
        });
        let failed = |err: io::Error| DoorError::Server(err.to_string());
        let (accept, overflow) = (
            Some(accept.map_err(failed)?),
            Some(overflow.map_err(failed)?),
        );
        let address = local;
        Ok((
            FrontDoor {
                address,
                door,
                accept,
                overflow,
            },
            requests,
        ))
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
            for (client, backend) in connections.sockets.values() {
                let _ = client.shutdown(Shutdown::Both);
                if let Some(backend) = backend {
                    let _ = backend.shutdown(Shutdown::Both);
                }
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

    /// A fresh connection to `tiny_http` for connection `id`'s next
    /// request, registered so that closing can cut it off; `None` when it
    /// cannot be made, or the door is closing.
    fn connect(&self, id: u64) -> Option<Backend> {
        let backend = self.channel.connect().ok()?;
        backend
            .set_write_timeout(Some(self.limits.send_timeout))
            .ok()?;
        let registered = backend.try_clone().ok()?;
        let mut connections = self.lock();
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        if let Some((_, slot)) = connections.sockets.get_mut(&id) {
            *slot = Some(registered);
        }
        Some(backend)
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
        connections.sockets.insert(id, (registered, None));
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

/// One connection, from its thread: ends TLS if the port speaks it, then
/// serves its requests.
fn connection(client: TcpStream, peer: SocketAddr, door: &Door, id: u64) {
    let limits = &door.limits;
    let timeouts = [
        client.set_nodelay(true),
        client.set_write_timeout(Some(limits.send_timeout)),
    ];
    if !timeouts.iter().all(Result::is_ok) {
        return;
    }
    let client = match &door.tls {
        None => Client::plain(client),
        Some(identity) => match tls::handshake(identity, client, limits.header_timeout) {
            Some(client) => client,
            None => return,
        },
    };
    relay::serve(client, peer, door, id);
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
    let answer = refusal.answer();
    let quick = Duration::from_secs(1);
    for client in overflow {
        // Closing waits for this thread: what is still queued then is
        // simply closed.
        if door.stopping.load(Ordering::SeqCst) || client.set_write_timeout(Some(quick)).is_err() {
            continue;
        }
        let client = match &door.tls {
            None => Some(Client::plain(client)),
            Some(identity) => tls::handshake(identity, client, quick),
        };
        if let Some(client) = client {
            relay::refuse_at_once(client, &answer);
        }
    }
}
