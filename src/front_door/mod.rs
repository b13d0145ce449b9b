//! The front door: what stands between the network and our two HTTP
//! servers (the file server and the embedded cluster), keeping each client
//! within [`Limits`]. `tiny_http` takes whatever a client sends (a head of
//! any size, at any pace, on as many connections as it likes), so the
//! public port is ours, and `tiny_http` listens on a private channel
//! (`private.rs`). Each request is checked (`head.rs`), passed on over a
//! connection of its own and its answer passed back (`relay.rs`); TLS ends
//! here too (`client.rs`), so every limit holds on an `https://` port.
//!
//! ```text
//!  clients ──TCP/TLS──> front door ──private channel──> tiny_http ──> handlers
//! ```
//!
//! *Plumbing: a reader may skip this folder.*

mod client;
mod head;
mod private;
mod relay;

pub use private::Requests;
pub use relay::WHOLE_BODY_BYTES;

use client::Client;
use private::{Backend, Channel};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use std::{fmt, io};

/// What the front door allows each client; `Limits::default()` suits both
/// servers, and `mesos-local` sets each from the flag named with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, 256 (`--max-connections`); then `503`.
    pub max_connections: usize,
    /// Bytes of a request head, 16 KiB (`--max-header-bytes`); then `431`.
    pub max_header_bytes: usize,
    /// Time for a head from its first byte, 10 s (`--header-timeout`); `408`.
    pub header_timeout: Duration,
    /// Time for a body after its head, 60 s (`--body-timeout`); then `408`.
    pub body_timeout: Duration,
    /// Time a connection may stay open with no request in progress, 60 s
    /// (`--idle-timeout`): longer than the 15 s `ureq` keeps one idle.
    pub idle_timeout: Duration,
    /// Time one write of a response may wait for the client, 30 s
    /// (`--send-timeout`); then the connection is closed.
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
    /// The private channel, `tiny_http` or a thread could not start; the
    /// message says which, and why.
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

/// Whether reading this request's body could wait on the client, as the
/// front door did not read it whole beforehand: a server answers it on a
/// thread of its own, so that a slow client holds up nobody else.
pub fn reading_body_may_block(request: &tiny_http::Request) -> bool {
    let headers = request.headers();
    let chunked = headers.iter().any(|h| h.field.equiv("Transfer-Encoding"));
    chunked || request.body_length().unwrap_or(0) as u64 > WHOLE_BODY_BYTES
}

/// A listening front door. Stop it with [`FrontDoor::close`]; dropping it
/// also removes its private channel, so drop it after its [`Requests`].
pub struct FrontDoor {
    address: SocketAddr,
    door: Arc<Door>,
    accept: Option<JoinHandle<()>>,
}

/// What the threads of one front door share; the `secret` goes on with
/// every request (see `private.rs`).
struct Door {
    limits: Limits,
    body_limit: Box<dyn Fn(&str) -> u64 + Send + Sync>,
    channel: Channel,
    secret: String,
    tls: Option<Arc<rustls::ServerConfig>>,
    sockets: Mutex<Sockets>,
}

/// Each open connection's sockets (the client's, and the one to `tiny_http`
/// while a request is in progress), for closing to cut off; whether a
/// thread is `refusing` a connection over the cap.
#[derive(Default)]
struct Sockets {
    open: HashMap<u64, (TcpStream, Option<Backend>)>,
    next_id: u64,
    refusing: bool,
    stopping: bool,
}

impl FrontDoor {
    /// Listens on `address` and starts a `tiny_http` server behind it, whose
    /// [`Requests`] the caller's handlers `recv`. `body_limit` gives the
    /// largest body for a path (the target before any `?`): a larger one
    /// gets `413`, from its `Content-Length` before it is read. With `tls`,
    /// clients speak TLS to the front door.
    pub fn open(
        address: &str,
        limits: Limits,
        body_limit: impl Fn(&str) -> u64 + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<(FrontDoor, Requests), DoorError> {
        let listener = TcpListener::bind(address).map_err(DoorError::Bind)?;
        let address = listener.local_addr().map_err(DoorError::Bind)?;
        let (channel, server) = Channel::open()?;
        let (secret, sockets) = (crate::random::token(), Mutex::default());
        let requests = Requests::new(server, secret.clone());
        let body_limit = Box::new(body_limit);
        let door = Arc::new(Door {
            limits,
            body_limit,
            channel,
            secret,
            tls,
            sockets,
        });
        let shared = Arc::clone(&door);
        let accept = std::thread::Builder::new().name("front-door".into());
        let accept = accept.spawn(move || accept_loop(&listener, &shared));
        let accept = Some(accept.map_err(|err| DoorError::Start(format!("no thread: {err}")))?);
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
    /// threads.
    pub fn close(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        let mut sockets = self.door.lock();
        sockets.stopping = true;
        for (client, backend) in sockets.open.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend
                .as_ref()
                .map(|backend| backend.shutdown(Shutdown::Both));
        }
        drop(sockets);
        // Wake the accept loop with a connection of our own: it ends, and
        // waits for the connections' threads.
        let ip = match self.address.ip() {
            ip if !ip.is_unspecified() => ip,
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        let wake = SocketAddr::new(ip, self.address.port());
        match TcpStream::connect_timeout(&wake, Duration::from_secs(5)) {
            Ok(_) => drop(accept.join()),
            Err(err) => log::warn!("front door on {wake}: cannot wake its accept loop: {err}"),
        }
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.close();
    }
}

impl Door {
    fn lock(&self) -> MutexGuard<'_, Sockets> {
        // Every update is a plain assignment: a poisoned lock is usable.
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh connection to `tiny_http` for connection `id`'s next
    /// request, registered for closing to cut off; `None` when it cannot
    /// be made, or the door is closing.
    fn connect(&self, id: u64) -> Option<Backend> {
        let backend = self.channel.connect().ok()?;
        backend
            .set_write_timeout(Some(self.limits.send_timeout))
            .ok()?;
        let registered = backend.try_clone().ok()?;
        let mut sockets = self.lock();
        let stopping = sockets.stopping;
        sockets.open.get_mut(&id).filter(|_| !stopping)?.1 = Some(registered);
        Some(backend)
    }

    /// Forgets connection `id`, or the refusal over the cap.
    fn leave(&self, id: u64, refused: bool) {
        let mut sockets = self.lock();
        sockets.open.remove(&id);
        sockets.refusing &= !refused;
    }
}

/// The accept loop: each connection under the cap gets a thread, which the
/// loop waits for when it ends. Over the cap, one thread at a time answers
/// `503`, and further connections meanwhile are simply closed: a flood
/// costs one thread.
fn accept_loop(listener: &TcpListener, door: &Door) {
    std::thread::scope(|scope| {
        for client in listener.incoming() {
            let client = match client {
                Ok(client) => client,
                Err(err) => {
                    // Typically out of file descriptors: wait for some to close.
                    log::warn!("front door: cannot accept a connection: {err}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let mut sockets = door.lock();
            if sockets.stopping {
                return;
            }
            let (Ok(peer), Ok(registered)) = (client.peer_addr(), client.try_clone()) else {
                continue;
            };
            let (id, most) = (sockets.next_id, door.limits.max_connections);
            sockets.next_id += 1;
            let full = sockets.open.len() >= most;
            if !full {
                sockets.open.insert(id, (registered, None));
            } else if std::mem::replace(&mut sockets.refusing, true) {
                continue;
            } else {
                log::warn!(
                    "front door: {most} connections are open, the most allowed; refusing more"
                );
            }
            drop(sockets);
            let thread = std::thread::Builder::new().name("front-door-connection".into());
            let spawned = thread.spawn_scoped(scope, move || {
                connection(client, peer, door, (!full).then_some(id));
                door.leave(id, full);
            });
            if let Err(err) = spawned {
                log::warn!("front door: cannot start a connection thread: {err}");
                door.leave(id, full);
            }
        }
    });
}

/// One connection: its TLS ended if the port speaks it, then served as
/// connection `id`. With no `id` (over the cap) it is answered `503` at
/// once, with a second to write and for a handshake; one served has the
/// head's time for its handshake, which then bounds each TLS record.
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
        Some(config) => client::handshake(config, client, handshake),
        None => Some(client),
    };
    match (client, id) {
        (Some(client), Some(id)) => relay::serve(client, peer, door, id),
        (Some(client), None) => {
            let most = limits.max_connections;
            let why = format!("too many connections: at most {most} at once; try again shortly");
            relay::refuse(
                client,
                &head::Refusal::new(503, why).answer(),
                relay::QUICK_LINGER,
            );
        }
        (None, _) => {}
    }
}
