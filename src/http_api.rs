//! Talking to a Mesos v1 HTTP API: one subscription, many calls.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Both the scheduler API (`/api/v1/scheduler` on the master) and the
//! executor API (`/api/v1/executor` on the agent) work the same way:
//!
//! 1. The client POSTs a `SUBSCRIBE` call. The answer is `200 OK` with a
//!    response body that never ends: a RecordIO stream of events. One named
//!    thread reads it and hands each decoded event to the main thread over a
//!    channel, so the main thread can react to events one at a time.
//! 2. Every other call is a separate POST on a separate connection, answered
//!    with `202 Accepted` and no body. The call's effect, if any, arrives
//!    later as an event on the stream.
//!
//! The scheduler API adds one rule: the subscribe response carries a
//! `Mesos-Stream-Id` header, and every later call must echo it, so that the
//! master can tell a live scheduler from a stale one.
//!
//! ```no_run
//! use mesos_tutorial::content_type::ContentType;
//! use mesos_tutorial::http_api::Endpoint;
//! use mesos_tutorial::proto::scheduler::{Call, Event};
//!
//! let master = Endpoint::new("http://127.0.0.1:5050/api/v1/scheduler", ContentType::Protobuf);
//! # let subscribe_call = Call::new();
//! let subscription = master.subscribe::<Call, Event>(&subscribe_call, "scheduler-events")?;
//! for event in subscription.events.iter() {
//!     println!("{:?}", event?.type_());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::content_type::{ContentType, DecodeError};
use crate::recordio::{RecordIoError, RecordIoReader};
use protobuf::reflect::ReflectValueRef;
use protobuf::{MessageDyn, MessageFull};
use std::fmt;
use std::io::Read;
use std::sync::{mpsc, RwLock};
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig};

/// The header that ties a scheduler's calls to its subscription.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

/// `text` with its scheme in lower case if it is an `http://` or
/// `https://` URL, whatever the case it was typed in (schemes are
/// case-insensitive, `HTTP://host` is a valid URL); `None` otherwise.
pub fn http_url(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https").then(|| format!("{scheme}://{rest}"))
}

/// How long a call may take before we give up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting, and waiting for the subscribe response's headers,
/// may take. The body of the subscription has no time limit: it is meant to
/// stay open for as long as the framework runs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Error bodies are short texts; never read more than this of one.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Something that went wrong while calling a Mesos HTTP API.
#[derive(Debug)]
pub enum ApiError {
    /// No HTTP answer at all: connection refused, timed out, reset.
    Unreachable {
        /// The URL called.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The server answered with a status we did not expect. Mesos puts a
    /// human-readable reason in the body.
    Rejected {
        /// The URL called.
        url: String,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer's body: Mesos's reason, as text.
        message: String,
    },
    /// The master we called is not the leader and points to the one that is.
    Redirected {
        /// The URL called.
        url: String,
        /// Where the `Location` header points: the leading master.
        location: String,
    },
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unreachable { url, reason } => write!(
                f,
                "could not reach {url}: {reason} (is Mesos running there? check the address)"
            ),
            ApiError::Rejected {
                url,
                status,
                message,
            } => {
                write!(f, "{url} answered {status}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                match status {
                    401 => write!(f, " (authentication failed: the master needs the credentials of --principal and --secret-file, and refused the ones sent, if any)"),
                    403 => write!(f, " (not allowed: check --principal, --role, or whether the framework was removed)"),
                    _ => Ok(()),
                }
            }
            ApiError::Redirected { url, location } => write!(
                f,
                "{url} is not the leading master; the leader is at {location}"
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// Why an event stream stopped or skipped an event.
#[derive(Debug)]
pub enum StreamError {
    /// The server ended the response between two events.
    Closed,
    /// The stream's framing broke; nothing after this point can be trusted.
    Framing(RecordIoError),
    /// One event could not be decoded. The framing is intact, so the stream
    /// goes on with the next event.
    Decode(DecodeError),
}

impl StreamError {
    /// Whether the stream is over after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, StreamError::Decode(_))
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Closed => write!(f, "the event stream was closed by the other side"),
            StreamError::Framing(err) => write!(f, "the event stream is broken: {err}"),
            StreamError::Decode(err) => write!(f, "skipped an undecodable event: {err}"),
        }
    }
}

impl std::error::Error for StreamError {}

/// An open subscription: the stream id (scheduler API only) and the events.
pub struct Subscription<E> {
    /// The `Mesos-Stream-Id` the server assigned, if it sent one.
    pub stream_id: Option<String>,
    /// Events in the order the server sent them. After a fatal
    /// [`StreamError`] the channel closes.
    pub events: mpsc::Receiver<Result<E, StreamError>>,
}

/// One Mesos HTTP API endpoint, such as a master's `/api/v1/scheduler`.
pub struct Endpoint {
    /// Changes when a master redirects us to the leader.
    url: RwLock<String>,
    content_type: ContentType,
    /// `Basic ...`, sent with every request when the cluster requires it.
    authorization: Option<String>,
    calls: ureq::Agent,
    streams: ureq::Agent,
}

/// How many redirects one request follows: a master points to the leader,
/// which answers; more hops mean the masters disagree about who leads.
const MAX_REDIRECTS: usize = 3;

impl Endpoint {
    /// An endpoint at `url` that sends and receives `content_type`. An
    /// `https://` URL is verified against the system's root certificates.
    pub fn new(url: &str, content_type: ContentType) -> Endpoint {
        let (calls, streams) = http_agents(RootCerts::PlatformVerifier);
        Endpoint {
            url: RwLock::new(url.to_string()),
            content_type,
            authorization: None,
            calls,
            streams,
        }
    }

    /// Trusts the certificate authorities in a PEM file (for a cluster with a
    /// private CA) instead of the system's.
    pub fn with_ca_file(mut self, path: &std::path::Path) -> Result<Endpoint, String> {
        let pem = std::fs::read(path)
            .map_err(|err| format!("cannot read --ca-file {}: {err}", path.display()))?;
        let mut certificates = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(certificate)) => certificates.push(certificate),
                Ok(_) => {}
                Err(err) => {
                    return Err(format!(
                        "--ca-file {} is not valid PEM: {err}",
                        path.display()
                    ))
                }
            }
        }
        if certificates.is_empty() {
            return Err(format!("--ca-file {} holds no certificate", path.display()));
        }
        (self.calls, self.streams) = http_agents(RootCerts::new_with_certs(&certificates));
        Ok(self)
    }

    /// Sends HTTP basic authentication with every request, as a Mesos
    /// master started with `--authenticate_http_frameworks` requires.
    pub fn with_basic_auth(mut self, principal: &str, secret: &str) -> Endpoint {
        let mut encoded = String::new();
        crate::json::base64_encode(format!("{principal}:{secret}").as_bytes(), &mut encoded);
        self.authorization = Some(format!("Basic {encoded}"));
        self
    }

    /// The endpoint's URL (the leader's, after a redirect).
    pub fn url(&self) -> String {
        self.url.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The content type used for calls and asked for events.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// Sends a `SUBSCRIBE` call and starts a thread named `thread_name` that
    /// reads the event stream.
    pub fn subscribe<C, E>(&self, call: &C, thread_name: &str) -> Result<Subscription<E>, ApiError>
    where
        C: MessageFull,
        E: MessageFull,
    {
        let (sender, events) = mpsc::channel();
        let stream_id = self.subscribe_into(call, thread_name, sender, |event| event)?;
        Ok(Subscription { stream_id, events })
    }

    /// Like [`Endpoint::subscribe`], but the thread sends each event, as
    /// `wrap(event)`, into the caller's channel, which may carry other
    /// inputs too (the scheduler's Ctrl+C). After a fatal [`StreamError`] it
    /// sends nothing more. Returns the `Mesos-Stream-Id`, if any.
    pub fn subscribe_into<C, E, T>(
        &self,
        call: &C,
        thread_name: &str,
        sender: mpsc::Sender<Result<T, StreamError>>,
        wrap: fn(E) -> T,
    ) -> Result<Option<String>, ApiError>
    where
        C: MessageFull,
        E: MessageFull,
        T: Send + 'static,
    {
        let body = self.content_type.encode(call);
        log_message("->", call);
        let response = self.post(&self.streams, &body, None)?;
        if response.status().as_u16() != 200 {
            return Err(self.rejected(response));
        }
        let stream_id = header(&response, STREAM_ID_HEADER);
        // The server says which encoding the events use; it is the one we
        // asked for, unless the server ignored our Accept header.
        let content_type = header(&response, "Content-Type")
            .and_then(|value| ContentType::from_mime(&value))
            .unwrap_or(self.content_type);
        let reader = response.into_body().into_reader();
        std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || read_events(reader, content_type, sender, wrap))
            .map_err(|err| ApiError::Unreachable {
                url: self.url(),
                reason: format!("could not start the event reader thread: {err}"),
            })?;
        Ok(stream_id)
    }

    /// Sends any call but `SUBSCRIBE` and expects `202 Accepted`.
    pub fn call<C: MessageFull>(&self, call: &C, stream_id: Option<&str>) -> Result<(), ApiError> {
        let body = self.content_type.encode(call);
        log_message("->", call);
        let mut response = self.post(&self.calls, &body, stream_id)?;
        match response.status().as_u16() {
            // Drain the (empty) body so the connection can be reused.
            200 | 202 => {
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(ERROR_BODY_LIMIT)
                    .read_to_vec();
                Ok(())
            }
            _ => Err(self.rejected(response)),
        }
    }

    /// POSTs `body`, following the master's redirects to the leader.
    fn post(
        &self,
        agent: &ureq::Agent,
        body: &[u8],
        stream_id: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ApiError> {
        for _ in 0..=MAX_REDIRECTS {
            let url = self.url();
            let mut request = agent
                .post(&url)
                .header("Content-Type", self.content_type.mime())
                // Without an explicit Accept, Mesos answers in JSON.
                .header("Accept", self.content_type.mime());
            if let Some(stream_id) = stream_id {
                request = request.header(STREAM_ID_HEADER, stream_id);
            }
            if let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            let response = request.send(body).map_err(|err| ApiError::Unreachable {
                url: url.clone(),
                reason: err.to_string(),
            })?;
            let location = header(&response, "Location");
            match (response.status().as_u16(), location) {
                (307, Some(location)) => {
                    let leader = resolve_location(&url, &location);
                    log::info!(
                        "{url} is not the leading master; following the redirect to {leader}"
                    );
                    *self.url.write().unwrap_or_else(|e| e.into_inner()) = leader;
                }
                _ => return Ok(response),
            }
        }
        Err(ApiError::Redirected {
            url: self.url(),
            location: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn rejected(&self, mut response: ureq::http::Response<ureq::Body>) -> ApiError {
        let status = response.status().as_u16();
        let message = response
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_LIMIT)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        ApiError::Rejected {
            url: self.url(),
            status,
            message: message.trim().to_string(),
        }
    }
}

/// The HTTP clients of an endpoint: one for calls, with a time limit, and
/// one for subscriptions, whose bodies are meant to never end.
fn http_agents(roots: RootCerts) -> (ureq::Agent, ureq::Agent) {
    // Redirects are not followed by the HTTP library: a Mesos redirect means
    // "send the same POST to the leader", body and all, which we do
    // ourselves. Statuses are not errors either: we read Mesos's message
    // from the body.
    let base = || {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .tls_config(TlsConfig::builder().root_certs(roots.clone()).build())
            .user_agent(concat!("mesos-tutorial/", env!("CARGO_PKG_VERSION")))
    };
    // Each phase of a call is bounded on its own: ureq's whole-request
    // timeout would resolve the host on a new thread for every call.
    let calls = base()
        .timeout_send_request(Some(CALL_TIMEOUT))
        .timeout_send_body(Some(CALL_TIMEOUT))
        .timeout_recv_response(Some(CALL_TIMEOUT))
        .timeout_recv_body(Some(CALL_TIMEOUT))
        .build()
        .into();
    let streams = base()
        .timeout_recv_response(Some(CONNECT_TIMEOUT))
        .build()
        .into();
    (calls, streams)
}

/// Mesos sends `Location: //host:port/api/v1/scheduler` (no scheme); keep
/// the scheme we used. A path-only location keeps our host.
fn resolve_location(current: &str, location: &str) -> String {
    let scheme = current.split("://").next().unwrap_or("http");
    if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        let host = current
            .split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or("");
        format!("{scheme}://{host}{location}")
    } else {
        location.to_string()
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// The body of the event-reader thread: frames, decodes and sends events,
/// each as `wrap(event)`, until the stream ends or the receiver hangs up.
fn read_events<E: MessageFull, T>(
    body: impl Read,
    content_type: ContentType,
    sender: mpsc::Sender<Result<T, StreamError>>,
    wrap: fn(E) -> T,
) {
    let mut records = RecordIoReader::new(body);
    loop {
        let item = match records.next_record() {
            Ok(Some(record)) => content_type
                .decode::<E>(record, "Mesos event")
                .map(wrap)
                .map_err(StreamError::Decode),
            Ok(None) => Err(StreamError::Closed),
            Err(err) => Err(StreamError::Framing(err)),
        };
        let fatal = matches!(&item, Err(err) if err.is_fatal());
        if sender.send(item).is_err() || fatal {
            return;
        }
    }
}

/// The wire, for `RUST_LOG`: at `debug` one line per call sent (`->`, done
/// here) and per event received (`<-`, by whoever handles it, so that the
/// line comes where the event is acted on), by type; at `trace` also its
/// JSON.
pub fn log_message(direction: &str, message: &dyn MessageDyn) {
    log::debug!("{direction} {}", type_name(message));
    log::trace!("{direction} {}", crate::json::print(message));
}

/// The value of a message's `type` field (`ACCEPT`, `OFFERS`): every Mesos
/// call and event has one. The message's own name if it has none.
pub fn type_name(message: &dyn MessageDyn) -> String {
    let descriptor = message.descriptor_dyn();
    let kind = descriptor
        .field_by_name("type")
        .and_then(|field| field.get_singular(message));
    match kind {
        Some(ReflectValueRef::Enum(values, number)) => match values.value_by_number(number) {
            Some(value) => value.name().to_string(),
            None => number.to_string(),
        },
        _ => descriptor.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_events_are_named_by_their_type() {
        use crate::proto::mesos::TaskID;
        use crate::proto::scheduler::{call, event, Call, Event};
        let mut decline = Call::new();
        decline.set_type(call::Type::DECLINE);
        assert_eq!(type_name(&decline), "DECLINE");
        let mut offers = Event::new();
        offers.set_type(event::Type::OFFERS);
        assert_eq!(type_name(&offers), "OFFERS");
        // No type set: the message's name.
        assert_eq!(type_name(&Call::new()), "Call");
        assert_eq!(type_name(&TaskID::new()), "TaskID");
    }

    #[test]
    fn http_urls_are_recognised_in_any_case() {
        assert_eq!(
            http_url("HTTP://h/a.png").as_deref(),
            Some("http://h/a.png")
        );
        assert_eq!(http_url("Https://h:1/x").as_deref(), Some("https://h:1/x"));
        assert_eq!(http_url("ftp://h/a.png"), None);
        assert_eq!(http_url("/tmp/a.png"), None);
        assert_eq!(http_url("C:\\a.png"), None);
    }

    #[test]
    fn redirect_locations_keep_our_scheme() {
        let current = "https://m1:5050/api/v1/scheduler";
        assert_eq!(
            resolve_location(current, "//m2:5050/api/v1/scheduler"),
            "https://m2:5050/api/v1/scheduler"
        );
        assert_eq!(
            resolve_location(current, "/api/v1/scheduler"),
            "https://m1:5050/api/v1/scheduler"
        );
        assert_eq!(
            resolve_location(current, "http://m3:5050/x"),
            "http://m3:5050/x"
        );
    }
}
