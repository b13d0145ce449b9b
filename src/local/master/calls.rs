//! A scheduler call, from its HTTP request to its effect: who may call
//! (leader, credentials, recovery, stream id), the checks Mesos makes on
//! every call, and one arm per call type.

use super::super::http::{self, HttpError};
use super::super::{Shared, State};
use super::streams::subscribe;
use super::Framework;
use super::LOG_TARGET;
use super::{is_terminal, Report};
use crate::proto::mesos::{task_status, TaskState};
use crate::proto::scheduler::{call, Call};
use std::sync::Arc;
use std::time::Instant;
use tiny_http::Request;

/// Entry point of `/api/v1/scheduler`.
pub(in crate::local) fn handle_scheduler_call(mut request: Request, shared: &Arc<Shared>) {
    if let Err(err) = check_availability(&request, shared) {
        return http::respond_error(request, err);
    }
    let (content_type, body) = match http::read_call_request(&mut request) {
        Ok(parts) => parts,
        Err(err) => return http::respond_error(request, err),
    };
    let call: Call = match content_type.decode(&body, "scheduler Call") {
        Ok(call) => call,
        Err(err) => {
            let message = format!("Failed to parse body into Call protobuf: {}", err.reason);
            return http::respond_error(request, HttpError::bad_request(message));
        }
    };
    if let Err(err) = validate(&call) {
        return http::respond_error(request, err);
    }
    let stream_id = http::header(&request, crate::http_api::STREAM_ID_HEADER);
    if call.type_() == call::Type::SUBSCRIBE {
        if stream_id.is_some() {
            let err = "Expecting 'Mesos-Stream-Id' to not be present with SUBSCRIBE call";
            return http::respond_error(request, HttpError::bad_request(err));
        }
        return match http::negotiate_accept(&request) {
            Ok(accept) => {
                // The stream holds its thread for as long as it lives.
                let shared = Arc::clone(shared);
                let stream = std::thread::Builder::new()
                    .name("local-scheduler-stream".into())
                    .spawn(move || subscribe(request, &shared, &call, accept));
                if let Err(err) = stream {
                    log::error!(target: LOG_TARGET, "could not start a stream thread: {err}");
                }
            }
            Err(err) => http::respond_error(request, err),
        };
    }
    let result = {
        let mut state = shared.lock();
        let framework_id = call.framework_id.value().to_string();
        state
            .check_caller(&framework_id, stream_id.as_deref())
            .and_then(|()| state.handle_call(&framework_id, call))
    };
    crate::local::agent::start_pending_executors(shared);
    match result {
        Ok(()) => http::respond_accepted(request),
        Err(err) => http::respond_error(request, err),
    }
}

/// What a master checks before it even reads a call: is it the leader (if
/// not, `307` to the leader, whose address Mesos sends without a scheme), is
/// the caller authenticated (`401`), has it finished recovering (`503`).
fn check_availability(request: &Request, shared: &Shared) -> Result<(), HttpError> {
    let state = shared.lock();
    if let Some(leader) = &state.config.redirect_to {
        let mut error = HttpError::new(
            307,
            format!("Not the leading master; the leader is {leader}"),
        );
        error.location = Some(format!("//{leader}/api/v1/scheduler"));
        return Err(error);
    }
    if !state.config.credentials.is_empty() {
        let given = http::header(request, "Authorization").unwrap_or_default();
        let accepted = state.config.credentials.iter().any(|(principal, secret)| {
            let mut expected = String::from("Basic ");
            crate::json::base64_encode(format!("{principal}:{secret}").as_bytes(), &mut expected);
            given == expected
        });
        if !accepted {
            let mut error = HttpError::new(
                401,
                "Authentication required: send HTTP basic credentials of a known principal",
            );
            error.authenticate = true;
            return Err(error);
        }
    }
    if state
        .master
        .down_until
        .is_some_and(|until| Instant::now() < until)
    {
        return Err(HttpError::new(
            503,
            "Master has not finished recovery (the embedded master is restarting)",
        ));
    }
    Ok(())
}

/// The checks Mesos makes on every call before looking at who sent it.
fn validate(call: &Call) -> Result<(), HttpError> {
    use call::Type::*;
    let missing = |field: &str| {
        Err(HttpError::bad_request(format!(
            "Expecting '{field}' to be present"
        )))
    };
    match call.type_() {
        UNKNOWN => return missing("type"),
        SUBSCRIBE => {
            if call.subscribe.is_none() {
                return missing("subscribe");
            }
            let info = &call.subscribe.framework_info;
            if call.framework_id.is_some()
                && (info.id.is_none() || info.id.value() != call.framework_id.value())
            {
                return Err(HttpError::bad_request(
                    "'framework_id' differs from 'subscribe.framework_info.id'",
                ));
            }
            return Ok(());
        }
        _ => {}
    }
    if call.framework_id.is_none() {
        return missing("framework_id");
    }
    match call.type_() {
        ACCEPT if call.accept.is_none() => missing("accept"),
        DECLINE if call.decline.is_none() => missing("decline"),
        KILL if call.kill.is_none() => missing("kill"),
        SHUTDOWN if call.shutdown.is_none() => missing("shutdown"),
        ACKNOWLEDGE if call.acknowledge.is_none() => missing("acknowledge"),
        RECONCILE if call.reconcile.is_none() => missing("reconcile"),
        MESSAGE if call.message.is_none() => missing("message"),
        ACCEPT_INVERSE_OFFERS
        | DECLINE_INVERSE_OFFERS
        | REQUEST
        | UPDATE_FRAMEWORK
        | RECONCILE_OPERATIONS
        | ACKNOWLEDGE_OPERATION_STATUS => Err(HttpError::new(
            501,
            format!(
                "{:?} is not supported by the embedded cluster",
                call.type_()
            ),
        )),
        _ => Ok(()),
    }
}

impl State {
    /// Who may make a call: a subscribed framework, on its current stream.
    fn check_caller(&self, framework_id: &str, stream_id: Option<&str>) -> Result<(), HttpError> {
        let framework = self
            .master
            .frameworks
            .get(framework_id)
            .ok_or_else(|| HttpError::new(403, "Framework cannot be found"))?;
        if framework.events.is_none() {
            return Err(HttpError::new(403, "Framework is not subscribed"));
        }
        match stream_id {
            None => Err(HttpError::bad_request(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
            )),
            Some(id) if id != framework.stream_id => Err(HttpError::bad_request(format!(
                "The stream ID '{id}' included in this request didn't match the stream ID \
                 currently associated with framework ID {framework_id}"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn handle_call(&mut self, framework_id: &str, call: Call) -> Result<(), HttpError> {
        use call::Type::*;
        match call.type_() {
            TEARDOWN => {
                log::info!(target: LOG_TARGET, "Framework {framework_id} asked to be torn down");
                self.remove_framework(framework_id);
            }
            ACCEPT => self.accept(framework_id, &call.accept),
            DECLINE => {
                let decline = &call.decline;
                let ids: Vec<&str> = decline.offer_ids.iter().map(|id| id.value()).collect();
                self.recover_offers(framework_id, &ids, decline.filters.refuse_seconds());
            }
            REVIVE => {
                let framework = self.framework_mut(framework_id);
                framework.suppressed = false;
                framework.filters.clear();
                self.allocate();
                self.probe_others(framework_id);
            }
            SUPPRESS => self.framework_mut(framework_id).suppressed = true,
            KILL => self.kill_task(framework_id, call.kill.task_id.value()),
            SHUTDOWN => {
                let shutdown = &call.shutdown;
                if let Some(agent) = self.agent_index(shutdown.agent_id.value()) {
                    self.shutdown_executor(agent, framework_id, shutdown.executor_id.value());
                }
            }
            ACKNOWLEDGE => {
                let ack = &call.acknowledge;
                if ack.uuid().len() != 16 {
                    return Err(HttpError::bad_request(
                        "Failed to parse UUID: expecting 16 bytes",
                    ));
                }
                let Some(agent) = self.agent_index(ack.agent_id.value()) else {
                    return Err(HttpError::bad_request(format!(
                        "Agent {} cannot be found",
                        ack.agent_id.value()
                    )));
                };
                self.acknowledge(agent, framework_id, ack.task_id.value(), ack.uuid());
            }
            RECONCILE => self.reconcile(framework_id, &call.reconcile),
            MESSAGE => {
                let message = &call.message;
                self.send_framework_message(
                    framework_id,
                    message.agent_id.value(),
                    message.executor_id.value(),
                    message.data(),
                );
            }
            other => {
                log::debug!(target: LOG_TARGET, "Ignoring {other:?} from framework {framework_id}")
            }
        }
        Ok(())
    }

    pub(super) fn framework_mut(&mut self, framework_id: &str) -> &mut Framework {
        self.master
            .frameworks
            .get_mut(framework_id)
            .expect("check_caller verified that the framework exists")
    }

    fn kill_task(&mut self, framework_id: &str, task_id: &str) {
        let key = (framework_id.to_string(), task_id.to_string());
        match self.master.tasks.get(&key) {
            Some(task) if !is_terminal(task.state) => {
                self.agent_kill_task(task.agent, framework_id, task_id)
            }
            Some(_) => {
                log::debug!(target: LOG_TARGET, "Task {task_id} already ended; nothing to kill")
            }
            None => {
                let report = Report {
                    state: TaskState::TASK_LOST,
                    reason: task_status::Reason::REASON_RECONCILIATION,
                    message: "Attempted to kill an unknown task",
                };
                self.master_update(framework_id, task_id, "", report);
            }
        }
    }

    /// `RECONCILE`: the latest state of the listed tasks, or of every
    /// unfinished task when none is listed.
    fn reconcile(&mut self, framework_id: &str, reconcile: &call::Reconcile) {
        let reason = task_status::Reason::REASON_RECONCILIATION;
        let task_ids: Vec<(String, String)> = if reconcile.tasks.is_empty() {
            self.master
                .tasks
                .iter()
                .filter(|((fw, _), task)| fw == framework_id && !is_terminal(task.state))
                .map(|((_, id), _)| (id.clone(), String::new()))
                .collect()
        } else {
            reconcile
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.task_id.value().to_string(),
                        t.agent_id.value().to_string(),
                    )
                })
                .collect()
        };
        for (task_id, given_agent) in task_ids {
            let key = (framework_id.to_string(), task_id.clone());
            let (state, message, agent_id) = match self.master.tasks.get(&key) {
                Some(task) => (
                    task.state,
                    "Reconciliation: latest task state",
                    self.agents[task.agent].id.clone(),
                ),
                None => (
                    TaskState::TASK_LOST,
                    "Reconciliation: task is unknown",
                    given_agent,
                ),
            };
            let report = Report {
                state,
                reason,
                message,
            };
            self.master_update(framework_id, &task_id, &agent_id, report);
        }
    }
}
