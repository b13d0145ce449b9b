//! Stopping on Ctrl+C.
//!
//! *Plumbing: a reader may skip this file;* what a stop does is
//! `Scheduler::stop`.
//!
//! Ctrl+C (SIGINT) and SIGTERM reach the scheduler as one more input of its
//! event loop: the signal handler puts [`Input::Interrupted`] in the channel
//! that the event reader fills, so the main thread learns of it between two
//! events, in `Scheduler::run_until_done`, and stops cleanly
//! (`Scheduler::stop`). Between two attempts to subscribe (step 4) it ends
//! the wait instead ([`Interrupts::sleep`]), and the run stops as cleanly,
//! with nothing to tear down (`Failover::leave_framework`).
//! A second Ctrl+C exits at once.
//!
//! What a clean stop means in Mesos terms: a framework that is done says so
//! with `TEARDOWN`, and the master kills its tasks and executors. A
//! framework that wants to come back (`--failover-timeout` with
//! `--framework-id-file`, step 4) must not: it leaves, and the master keeps
//! its tasks for the failover timeout.

use super::master::{Inbox, Input};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where Ctrl+C is delivered: the inbox of the current subscription.
#[derive(Clone, Default)]
pub struct Interrupts(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    inbox: Option<Sender<Inbox>>,
    interrupted: bool,
}

impl Interrupts {
    /// Catches Ctrl+C and SIGTERM for the rest of the process (once per
    /// process: a signal has one handler).
    pub fn catch_signals() -> Result<Interrupts, String> {
        let interrupts = Interrupts::default();
        let handler = interrupts.clone();
        ctrlc::set_handler(move || handler.interrupt())
            .map_err(|err| format!("cannot catch Ctrl+C: {err}"))?;
        Ok(interrupts)
    }

    /// The first interruption goes to the event loop; a second one means
    /// the user does not want to wait for the clean-up.
    pub fn interrupt(&self) {
        let mut slot = self.slot();
        if slot.interrupted {
            eprintln!("interrupted again: exiting at once");
            std::process::exit(130);
        }
        slot.interrupted = true;
        if let Some(inbox) = &slot.inbox {
            let _ = inbox.send(Ok(Input::Interrupted));
        }
    }

    /// From now on, interruptions go to this inbox (a new subscription's);
    /// one that came while there was none is delivered at once.
    pub fn deliver_to(&self, inbox: Sender<Inbox>) {
        let mut slot = self.slot();
        if slot.interrupted {
            let _ = inbox.send(Ok(Input::Interrupted));
        }
        slot.inbox = Some(inbox);
    }

    /// Waits for Ctrl+C (with `--keep-serving`, after the batch).
    pub fn wait(&self) {
        self.sleep(Duration::MAX);
    }

    /// Sleeps for `wait`, or until Ctrl+C. Returns whether Ctrl+C came,
    /// during the sleep or earlier; either way it counts as the first one.
    pub fn sleep(&self, wait: Duration) -> bool {
        let (sender, receiver) = mpsc::channel();
        self.deliver_to(sender);
        matches!(receiver.recv_timeout(wait), Ok(Ok(Input::Interrupted)))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content_type::ContentType;
    use crate::http_api::{Endpoint, StreamError};
    use crate::proto::scheduler::{event, Call, Event};
    use crate::recordio::encode_record;
    use std::io::Write;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn ctrl_c_before_any_subscription_reaches_the_first_one() {
        let interrupts = Interrupts::default();
        interrupts.interrupt();
        let (sender, receiver) = mpsc::channel();
        interrupts.deliver_to(sender);
        assert!(matches!(
            receiver.recv_timeout(WAIT),
            Ok(Ok(Input::Interrupted))
        ));
    }

    #[test]
    fn ctrl_c_ends_a_sleep_and_still_counts_as_the_first() {
        let interrupts = Interrupts::default();
        assert!(!interrupts.sleep(Duration::from_millis(10)), "no Ctrl+C");
        let pressing = interrupts.clone();
        let presser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            pressing.interrupt();
        });
        assert!(interrupts.sleep(Duration::from_secs(600)));
        presser.join().expect("Ctrl+C pressed");
        // A second Ctrl+C would exit at once; a later sleep ends at once.
        assert!(interrupts.slot().interrupted);
        assert!(interrupts.sleep(Duration::from_secs(600)));
    }

    /// A master that answers `SUBSCRIBE` with one `HEARTBEAT` and keeps the
    /// stream open; the returned writer ends it.
    fn fake_master() -> (String, std::thread::JoinHandle<Box<dyn Write + Send>>) {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let master = std::thread::spawn(move || {
            let mut request = server.recv().expect("the SUBSCRIBE call");
            let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
            let mut heartbeat = Event::new();
            heartbeat.set_type(event::Type::HEARTBEAT);
            let record = encode_record(&ContentType::Protobuf.encode(&heartbeat));
            let mut writer = request.into_writer();
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                        Transfer-Encoding: chunked\r\n\r\n";
            write!(writer, "{head}{:x}\r\n", record.len()).expect("write the head");
            writer.write_all(&record).expect("write the event");
            writer.write_all(b"\r\n").expect("end the chunk");
            writer.flush().expect("send");
            writer
        });
        (format!("http://127.0.0.1:{port}/api/v1/scheduler"), master)
    }

    #[test]
    fn events_and_ctrl_c_arrive_on_the_subscriptions_own_channel() {
        let (url, master) = fake_master();
        let endpoint = Endpoint::new(&url, ContentType::Protobuf);
        // One channel: the event reader thread gets one sender, Ctrl+C
        // the other; no thread stands between them and `inbox`.
        let (sender, inbox) = mpsc::channel();
        let stream_id = endpoint
            .subscribe_into(&Call::new(), "test-events", sender.clone(), Input::Event)
            .expect("subscribed");
        assert_eq!(stream_id, None);
        let interrupts = Interrupts::default();
        interrupts.deliver_to(sender.clone());
        assert!(matches!(
            inbox.recv_timeout(WAIT),
            Ok(Ok(Input::Event(event))) if event.type_() == event::Type::HEARTBEAT
        ));
        // Ctrl+C while the stream is open.
        interrupts.interrupt();
        assert!(matches!(
            inbox.recv_timeout(WAIT),
            Ok(Ok(Input::Interrupted))
        ));
        // The end of the chunked body is the end of the stream, said once.
        let mut writer = master.join().expect("the fake master answered");
        writer.write_all(b"0\r\n\r\n").expect("end the body");
        writer.flush().expect("send");
        assert!(matches!(
            inbox.recv_timeout(WAIT),
            Ok(Err(StreamError::Closed))
        ));
        // Ctrl+C still reaches the loop after the reader thread ended.
        let later = Interrupts::default();
        later.deliver_to(sender);
        later.interrupt();
        assert!(matches!(
            inbox.recv_timeout(WAIT),
            Ok(Ok(Input::Interrupted))
        ));
        assert!(inbox.try_recv().is_err(), "nothing more was sent");
    }
}
