//! The front door keeps each client of our two HTTP servers within
//! [`Limits`]: `tiny_http` takes whatever a client sends, so the public port
//! is ours, and `tiny_http` listens on a private channel (`private.rs`).
//! Each request is checked (`head.rs`), passed on over a connection of its
//! own and its answer passed back (`relay.rs`); TLS ends here (`client.rs`).
//!
//! *Plumbing: a reader may skip this folder.*

mod client;
mod head;
mod private;
mod relay;

pub use private::Requests;
pub use relay::WHOLE_BODY_BYTES;

use private::{Backend, Channel};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use std::{fmt, io};

/// What each client may do; `mesos-local` sets each from the flag named.
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
    /// Idle time between requests, 60 s (`--idle-timeout`), over `ureq`'s 15 s.
    pub idle_timeout: Duration,
    /// Time each write to the client may take, 30 s (`--send-timeout`).
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
    /// The private channel, `tiny_http` or a thread could not start.
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

/// Whether reading this request's body could wait on a slow client (it was
/// not read whole beforehand): if so, answer it on a thread of its own.
pub fn reading_body_may_block(request: &tiny_http::Request) -> bool {
    let headers = request.headers();
    let chunked = headers.iter().any(|h| h.field.equiv("Transfer-Encoding"));
    chunked || request.body_length().unwrap_or(0) as u64 > WHOLE_BODY_BYTES
}

/// A listening front door. Stop it with [`FrontDoor::close`]; dropping it
/// also removes its private channel, so drop it after its [`Requests`].
pub struct FrontDoor {
    door: Arc<Door>,
    accept: Option<JoinHandle<()>>,
}

struct Door {
    address: SocketAddr,
    limits: Limits,
    body_limit: Box<dyn Fn(&str) -> u64 + Send + Sync>,
    channel: Channel,
    tls: Option<Arc<rustls::ServerConfig>>,
    sockets: Mutex<Sockets>,
}

/// Each connection's sockets (the client's, and to `tiny_http` during a
/// request), for closing to cut off.
#[derive(Default)]
struct Sockets {
    open: HashMap<u64, (TcpStream, Option<Backend>)>,
    next_id: u64,
    refusing: usize,
    /// Over the cap since the last connection under it (logged once).
    flooded: bool,
    stopping: bool,
}

impl FrontDoor {
    /// Listens on `address`, with TLS if `tls` is given, and starts the
    /// `tiny_http` server behind it. `body_limit` gives the largest body a
    /// path (the target before any `?`) takes; a larger one gets `413`.
    pub fn open(
        address: &str,
        limits: Limits,
        body_limit: impl Fn(&str) -> u64 + Send + Sync + 'static,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<(FrontDoor, Requests), DoorError> {
        let listener = TcpListener::bind(address).map_err(DoorError::Bind)?;
        let address = listener.local_addr().map_err(DoorError::Bind)?;
        let (channel, requests) = Channel::open()?;
        let body_limit = Box::new(body_limit);
        let sockets = Mutex::default();
        let door = Arc::new(Door {
            address,
            limits,
            body_limit,
            channel,
            tls,
            sockets,
        });
        let shared = Arc::clone(&door);
        let accept = std::thread::Builder::new().name("front-door".into());
        let accept = accept.spawn(move || accept_loop(&listener, &shared));
        let accept = Some(accept.map_err(|err| DoorError::Start(format!("no thread: {err}")))?);
        Ok((FrontDoor { door, accept }, requests))
    }

    /// The public address, with the port chosen if `0` was asked for.
    pub fn local_addr(&self) -> SocketAddr {
        self.door.address
    }

    /// Stops accepting, cuts every connection and waits for their threads.
    pub fn close(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        let mut sockets = self.door.lock();
        sockets.stopping = true;
        for (client, backend) in sockets.open.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = backend.as_ref().map(|to| to.shutdown(Shutdown::Both));
        }
        drop(sockets);
        // Wake the accept loop, which waits for the connections' threads.
        let ip = match self.door.address.ip() {
            ip if !ip.is_unspecified() => ip,
            IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        let wake = SocketAddr::new(ip, self.door.address.port());
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
    /// request, registered; `None` if there is none, or the door closes.
    fn connect(&self, id: u64) -> Option<Backend> {
        let backend = self.channel.connect().ok()?;
        let timeout = Some(self.limits.send_timeout);
        backend.set_write_timeout(timeout).ok()?;
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
        sockets.refusing -= usize::from(refused);
    }
}

/// Gives each connection a thread, waited for at the end. Over the cap, 4
/// at most answer `503`; others are closed meanwhile (a flood costs 4).
fn accept_loop(listener: &TcpListener, door: &Door) {
    std::thread::scope(|scope| {
        for client in listener.incoming() {
            let mut sockets = door.lock();
            if sockets.stopping {
                return;
            }
            let client = match client {
                Ok(client) => client,
                Err(err) => {
                    drop(sockets);
                    // Typically out of file descriptors: wait for some to close.
                    log::warn!("front door: cannot accept a connection: {err}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let (Ok(peer), Ok(registered)) = (client.peer_addr(), client.try_clone()) else {
                continue;
            };
            let id = sockets.next_id;
            let most = door.limits.max_connections;
            sockets.next_id += 1;
            let full = sockets.open.len() >= most;
            if !full {
                sockets.open.insert(id, (registered, None));
                sockets.flooded = false;
            } else if sockets.refusing == 4 {
                continue;
            } else if !std::mem::replace(&mut sockets.flooded, true) {
                log::warn!("front door: {most} connections open, the most allowed");
            }
            sockets.refusing += usize::from(full);
            drop(sockets);
            let thread = std::thread::Builder::new().name("front-door-connection".into());
            let spawned = thread.spawn_scoped(scope, move || {
                relay::serve(client, peer, door, (!full).then_some(id));
                door.leave(id, full);
            });
            if let Err(err) = spawned {
                log::warn!("front door: cannot start a connection thread: {err}");
                door.leave(id, full);
            }
        }
    });
}
