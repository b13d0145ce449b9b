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
//! (`private.rs`). Each request is checked, then passed on over a connection
//! of its own, and the answer passed back:
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
//! ended here ([`TlsIdentity`]), so every limit holds there too.
//!
//! Crates do the codecs: `httparse` reads request heads and chunked
//! framing, rustls the TLS. Ours are the policy (limits, what is ambiguous)
//! and the plumbing between sockets.

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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use std::{fmt, io};

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
    /// The private channel to `tiny_http`, `tiny_http` itself or a thread
    /// of the front door could not start; the message says which, and why.
    Start(String),
}

impl fmt::Display for DoorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DoorError::Bind(err) => write!(f, "cannot listen: {err}"),
            DoorError::Start(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for DoorError {}

/// Whether reading this request's body could wait on the client: it has a
/// body that the front door has not read whole beforehand. A server answers
/// such a request on a thread of its own, so that a slow client holds up
/// nobody else; the front door's connection cap bounds how many there are.
pub fn reading_body_may_block(request: &tiny_http::Request) -> bool {
    let has = |name: &'static str| {
        request
            .headers()
            .iter()
            .any(|header| header.field.equiv(name))
    };
    let Some(length) = request.body_length().filter(|_| !has("Transfer-Encoding")) else {
        return has("Transfer-Encoding");
    };
    // `tiny_http` itself reads up to 1 KiB before handing a request over,
    // unless the client waits for `100 Continue`.
    let read_by_tiny_http = length <= 1024 && !has("Expect");
    !(read_by_tiny_http || length as u64 <= WHOLE_BODY_BYTES)
}

/// A listening front door. Stop it with [`FrontDoor::close`]; dropping it
/// also removes its private channel, so drop it only after the
/// [`Requests`] behind it.
pub struct FrontDoor {
    address: SocketAddr,
    door: Arc<Door>,
    accept: Option<JoinHandle<()>>,
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
/// every thread, for closing to wait for.
#[derive(Default)]
struct Connections {
    next_id: u64,
    sockets: HashMap<u64, (TcpStream, Option<Backend>)>,
    threads: Vec<JoinHandle<()>>,
    /// A thread is answering a connection over the cap.
    refusing: bool,
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
        let address = listener.local_addr().map_err(DoorError::Bind)?;
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
        let shared = Arc::clone(&door);
        let accept = spawn("front-door", move || accept(&listener, &shared))
            .map_err(|err| DoorError::Start(format!("cannot start the front door: {err}")))?;
        let accept = Some(accept);
        Ok((
            FrontDoor {
                address,
                door,
                accept,
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
        let ip = match self.address.ip() {
            ip if !ip.is_unspecified() => ip,
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        let wake = SocketAddr::new(ip, self.address.port());
        match (
            TcpStream::connect_timeout(&wake, Duration::from_secs(5)),
            self.accept.take(),
        ) {
            (Ok(_), Some(accept)) => drop(accept.join()),
            _ => log::warn!("front door on {wake}: could not wake its accept loop"),
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

/// The accept loop: each connection under the cap gets a thread. Over the
/// cap, one thread at a time answers `503`, and while it does, further
/// connections are simply closed: a flood costs one thread.
fn accept(listener: &TcpListener, door: &Arc<Door>) {
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
        let mut connections = door.lock();
        connections.threads.retain(|thread| !thread.is_finished());
        let full = connections.sockets.len() >= door.limits.max_connections;
        let (Ok(peer), Ok(registered)) = (client.peer_addr(), client.try_clone()) else {
            continue;
        };
        let id = connections.next_id;
        if full {
            if std::mem::replace(&mut connections.refusing, true) {
                continue;
            }
            let most = door.limits.max_connections;
            log::warn!("front door: {most} connections are open, the most allowed; refusing more");
        } else {
            connections.next_id += 1;
            connections.sockets.insert(id, (registered, None));
        }
        let shared = Arc::clone(door);
        let spawned = spawn("front-door-connection", move || {
            connection(client, peer, &shared, (!full).then_some(id));
            let mut connections = shared.lock();
            connections.sockets.remove(&id);
            connections.refusing &= !full;
        });
        match spawned {
            Ok(thread) => connections.threads.push(thread),
            Err(err) => {
                log::warn!("front door: cannot start a connection thread: {err}");
                connections.sockets.remove(&id);
                connections.refusing &= !full;
            }
        }
    }
}

/// One connection, on its own thread: its TLS ended if the port speaks it,
/// then served as connection `id`, or with no `id` (over the cap) answered
/// `503` at once. That answer gets a second to be written, and so does its
/// handshake; the handshake of one served gets the head's time, which then
/// bounds each TLS record.
fn connection(tcp: TcpStream, peer: SocketAddr, door: &Door, id: Option<u64>) {
    let limits = &door.limits;
    let quick = Duration::from_secs(1);
    let (send, handshake) = match id {
        Some(_) => (limits.send_timeout, limits.header_timeout),
        None => (quick, quick),
    };
    if tcp
        .set_nodelay(true)
        .and(tcp.set_write_timeout(Some(send)))
        .is_err()
    {
        return;
    }
    let client = Client::new(tcp, limits.max_header_bytes.max(relay::BUFFER_BYTES));
    let client = match &door.tls {
        None => client,
        Some(identity) => match tls::handshake(identity, client, handshake) {
            Some(client) => client,
            None => return,
        },
    };
    let Some(id) = id else {
        let most = limits.max_connections;
        let why = format!(
            "too many connections: this server takes at most {most} at once; try again shortly"
        );
        return relay::refuse(
            client,
            &head::Refusal::new(503, why).answer(),
            relay::QUICK_LINGER,
        );
    };
    relay::serve(client, peer, door, id);
}
