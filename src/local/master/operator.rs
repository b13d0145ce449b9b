//! The master's operator API, `POST /api/v1`: what an operator (a person
//! with `curl`, the live page's buttons, a tool) asks of the cluster.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! A call is a `mesos.v1.master.Call` (`src/proto/master.proto`), in JSON
//! or protobuf like the scheduler API's. The embedded master answers
//! `GET_AGENTS`, `DRAIN_AGENT`, `DEACTIVATE_AGENT` and `REACTIVATE_AGENT`
//! (`drain.rs` does the work). The checks and their answers are those of
//! Mesos 1.11's `Master::Http::api` (`src/master/http.cpp`) and
//! `validation::master::call::validate` (`src/master/validation.cpp`):
//! `405` for anything but POST, `415` for another `Content-Type`, `400` for
//! a body that does not parse or a call without its part, `406` for an
//! `Accept` that allows neither encoding, `501` for a call type it does not
//! answer, `400 Unknown agent` for an agent it does not know.

use super::super::http::{self, HttpError};
use super::super::{Shared, State};
use super::LOG_TARGET;
use crate::content_type::ContentType;
use crate::proto::master::{call, response, Call, Response};
use crate::proto::mesos::TimeInfo;
use protobuf::well_known_types::struct_::{value::Kind, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tiny_http::Request;

/// Entry point of `/api/v1`.
pub(in crate::local) fn handle_operator_call(mut request: Request, shared: &Arc<Shared>) {
    if let Err(err) = check_availability(shared) {
        return http::respond_error(request, err);
    }
    let call = http::read_call_request(&mut request).and_then(|(content_type, body)| {
        let call = decode(content_type, &body)?;
        validate(&call)?;
        Ok(call)
    });
    let call = match call {
        Ok(call) => call,
        Err(err) => return http::respond_error(request, err),
    };
    let accept = match http::negotiate_accept(&request) {
        Ok(accept) => accept,
        Err(err) => return http::respond_error(request, err),
    };
    log::info!(target: LOG_TARGET, "Processing call {:?}", call.type_());
    let answer = shared.lock().operator_call(&call);
    crate::local::agent::start_pending_executors(shared);
    match answer {
        Ok(None) => http::respond_text(request, 200, ""),
        Ok(Some(response)) => {
            let body = accept.encode(&response);
            let mut answer = tiny_http::Response::from_data(body);
            if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", accept.mime()) {
                answer.add_header(header);
            }
            let _ = request.respond(answer);
        }
        Err(err) => http::respond_error(request, err),
    }
}

/// A master that is not the leader redirects; one that is recovering
/// answers `503`.
fn check_availability(shared: &Shared) -> Result<(), HttpError> {
    let state = shared.lock();
    if let Some(leader) = &state.config.redirect_to {
        let message = format!("Not the leading master; the leader is {leader}");
        let mut error = HttpError::new(307, message);
        error.location = Some(format!("//{leader}/api/v1"));
        return Err(error);
    }
    if state
        .master
        .down_until
        .is_some_and(|until| Instant::now() < until)
    {
        return Err(HttpError::new(503, "Master has not finished recovery"));
    }
    Ok(())
}

/// The call in the body, with Mesos's words for what is wrong with it.
fn decode(content_type: ContentType, body: &[u8]) -> Result<Call, HttpError> {
    match content_type {
        ContentType::Protobuf => content_type
            .decode(body, "master Call")
            .map_err(|_| HttpError::bad_request("Failed to parse body into Call protobuf")),
        ContentType::Json => {
            let text = std::str::from_utf8(body).map_err(|err| {
                HttpError::bad_request(format!("Failed to parse body into JSON: {err}"))
            })?;
            let text = durations_as_proto3(text)?;
            crate::json::parse(&text).map_err(|err| {
                HttpError::bad_request(format!("Failed to convert JSON into Call protobuf: {err}"))
            })
        }
    }
}

/// Mesos reads a `google.protobuf.Duration` in JSON as the message it is,
/// `{"seconds": 600}` (the body `docs/operator-http-api.md` shows for
/// `DRAIN_AGENT`); the proto3 mapping that the JSON parser follows writes
/// it `"600s"`. Both are accepted: an object is rewritten as the string.
fn durations_as_proto3(text: &str) -> Result<String, HttpError> {
    let mut value: Value = crate::json::parse(text)
        .map_err(|err| HttpError::bad_request(format!("Failed to parse body into JSON: {err}")))?;
    let Some(Kind::StructValue(call)) = &mut value.kind else {
        return Ok(text.to_string());
    };
    let Some(Kind::StructValue(drain)) = call
        .fields
        .get_mut("drain_agent")
        .and_then(|v| v.kind.as_mut())
    else {
        return Ok(text.to_string());
    };
    let Some(Kind::StructValue(period)) = drain
        .fields
        .get("max_grace_period")
        .and_then(|v| v.kind.as_ref())
    else {
        return Ok(text.to_string());
    };
    let number = |name: &str| match period.fields.get(name).and_then(|v| v.kind.as_ref()) {
        Some(Kind::NumberValue(n)) => Ok(*n),
        None => Ok(0.0),
        Some(_) => Err(HttpError::bad_request(format!(
            "Failed to convert JSON into Call protobuf: \
             'max_grace_period.{name}' is not a number"
        ))),
    };
    let seconds = number("seconds")? + number("nanos")? / 1e9;
    let mut proto3 = Value::new();
    proto3.kind = Some(Kind::StringValue(format!("{seconds:.9}s")));
    drain.fields.insert("max_grace_period".into(), proto3);
    Ok(protobuf_json_mapping::print_to_string(&value).unwrap_or_else(|_| text.to_string()))
}

/// The part of the call its type needs (`validation.cpp`).
fn validate(call: &Call) -> Result<(), HttpError> {
    let missing = |part: &str| {
        Err(HttpError::bad_request(format!(
            "Failed to validate master::Call: Expecting '{part}' to be present"
        )))
    };
    match call.type_() {
        _ if call.type_.is_none() => missing("type"),
        call::Type::DRAIN_AGENT if call.drain_agent.is_none() => missing("drain_agent"),
        call::Type::DEACTIVATE_AGENT if call.deactivate_agent.is_none() => {
            missing("deactivate_agent")
        }
        call::Type::REACTIVATE_AGENT if call.reactivate_agent.is_none() => {
            missing("reactivate_agent")
        }
        _ => Ok(()),
    }
}

impl State {
    /// One operator call: its answer, if its type has one.
    fn operator_call(&mut self, call: &Call) -> Result<Option<Response>, HttpError> {
        use call::Type::*;
        match call.type_() {
            // Mesos answers an unknown type `501` with no body.
            UNKNOWN => Err(HttpError::new(501, "")),
            GET_AGENTS => Ok(Some(self.get_agents())),
            DRAIN_AGENT => {
                let drain = &call.drain_agent;
                let agent = self.known_agent(drain.agent_id.value())?;
                let grace = drain.max_grace_period.as_ref().map(|period| {
                    let seconds = u64::try_from(period.seconds).unwrap_or(0);
                    let nanos = u32::try_from(period.nanos).unwrap_or(0).min(999_999_999);
                    Duration::new(seconds, nanos)
                });
                self.drain_agent(agent, grace, drain.mark_gone());
                Ok(None)
            }
            DEACTIVATE_AGENT => {
                let agent = self.known_agent(call.deactivate_agent.agent_id.value())?;
                self.deactivate_agent(agent);
                Ok(None)
            }
            REACTIVATE_AGENT => {
                // Mesos checks that the agent is deactivated, which an
                // unknown one is not.
                let id = call.reactivate_agent.agent_id.value();
                let agent = self
                    .known_agent(id)
                    .map_err(|_| HttpError::bad_request("Agent is not deactivated"))?;
                self.reactivate_agent(agent).map(|()| None)
            }
            other => Err(HttpError::new(
                501,
                format!("{other:?} is not supported by the embedded cluster"),
            )),
        }
    }

    /// The agent with this id, unless there is none (or it is gone).
    fn known_agent(&self, agent_id: &str) -> Result<usize, HttpError> {
        self.agent_index(agent_id)
            .filter(|agent| !self.master.agents[*agent].gone)
            .ok_or_else(|| HttpError::bad_request("Unknown agent"))
    }

    /// `GET_AGENTS`: every agent, as `Response.GetAgents.Agent`.
    fn get_agents(&self) -> Response {
        let mut response = Response::new();
        response.set_type(response::Type::GET_AGENTS);
        let list = response.get_agents.mut_or_insert_default();
        for agent in 0..self.agents.len() {
            if self.master.agents[agent].gone {
                continue;
            }
            let view = self.agent_view(agent);
            let mut entry = response::get_agents::Agent::new();
            entry.agent_info = Some(self.agent_info(agent)).into();
            entry.set_active(!view.deactivated);
            entry.set_deactivated(view.deactivated);
            entry.set_version(super::super::state::MESOS_VERSION.to_string());
            entry.set_pid(format!("slave(1)@{}", view.address));
            entry.registered_time = Some(time_info(view.registered_time)).into();
            entry.total_resources = view.total.to_protos(None);
            entry.allocated_resources = view.used.to_protos(None);
            entry.offered_resources = view.offered.to_protos(None);
            entry.drain_info = view.drain.clone().into();
            entry.estimated_drain_start_time = view.drain_start_time.map(time_info).into();
            list.agents.push(entry);
        }
        response
    }
}

fn time_info(seconds: f64) -> TimeInfo {
    let mut time = TimeInfo::new();
    time.set_nanoseconds((seconds * 1e9) as i64);
    time
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> Result<Call, HttpError> {
        decode(ContentType::Json, body.as_bytes()).and_then(|call| validate(&call).map(|()| call))
    }

    fn refused(body: &str) -> (u16, String) {
        let err = json(body).expect_err(body);
        (err.status, err.message)
    }

    #[test]
    fn malformed_bodies_get_mesos_words() {
        let (status, message) = refused("{not json");
        assert_eq!(status, 400);
        assert!(
            message.starts_with("Failed to parse body into JSON: "),
            "{message}"
        );

        let (status, message) = refused(r#"{"type": "NO_SUCH_CALL"}"#);
        assert_eq!(status, 400);
        assert!(
            message.starts_with("Failed to convert JSON into Call protobuf: "),
            "{message}"
        );

        // `agent_id` is required in `DrainAgent`.
        let (status, message) = refused(r#"{"type": "DRAIN_AGENT", "drain_agent": {}}"#);
        assert_eq!(status, 400);
        assert!(
            message.starts_with("Failed to convert JSON into Call protobuf: "),
            "{message}"
        );

        let garbage = decode(ContentType::Protobuf, &[0xff, 0xff, 0xff]).expect_err("garbage");
        assert_eq!(
            (garbage.status, garbage.message.as_str()),
            (400, "Failed to parse body into Call protobuf")
        );
    }

    #[test]
    fn a_call_without_its_part_is_refused() {
        let cases = [
            ("{}", "type"),
            (r#"{"type": "DRAIN_AGENT"}"#, "drain_agent"),
            (r#"{"type": "DEACTIVATE_AGENT"}"#, "deactivate_agent"),
            (r#"{"type": "REACTIVATE_AGENT"}"#, "reactivate_agent"),
        ];
        for (body, part) in cases {
            let (status, message) = refused(body);
            assert_eq!(status, 400, "{body}");
            assert_eq!(
                message,
                format!("Failed to validate master::Call: Expecting '{part}' to be present")
            );
        }
        assert!(json(r#"{"type": "GET_AGENTS"}"#).is_ok());
    }

    #[test]
    fn a_grace_period_is_read_in_mesos_json_and_in_proto3_json() {
        let call = |period: &str| {
            let body = format!(
                r#"{{"type": "DRAIN_AGENT", "drain_agent": {{"agent_id": {{"value": "S1"}},
                    "max_grace_period": {period}, "mark_gone": true}}}}"#
            );
            json(&body).unwrap_or_else(|err| panic!("{period}: {}", err.message))
        };
        for period in [
            r#"{"seconds": 600}"#,
            r#""600s""#,
            r#"{"seconds": 599, "nanos": 1000000000}"#,
        ] {
            let drain = call(period).drain_agent.unwrap_or_default();
            let grace = drain.max_grace_period.clone().unwrap_or_default();
            assert_eq!((grace.seconds, grace.nanos), (600, 0), "{period}");
            assert!(drain.mark_gone());
            assert_eq!(drain.agent_id.value(), "S1");
        }
        let (status, message) = refused(
            r#"{"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "S1"},
                "max_grace_period": {"seconds": "soon"}}}"#,
        );
        assert_eq!(status, 400);
        assert!(message.contains("max_grace_period.seconds"), "{message}");
        // Nonsense from the network is refused or bounded, never a panic.
        for period in [
            r#"{"seconds": 1e300}"#,
            r#"{"seconds": -5}"#,
            r#"{"nanos": 1e20}"#,
        ] {
            let body = format!(
                r#"{{"type": "DRAIN_AGENT", "drain_agent": {{"agent_id": {{"value": "S1"}},
                    "max_grace_period": {period}}}}}"#
            );
            let _ = json(&body);
        }
        // Protobuf carries the message as it is.
        let mut drain = Call::new();
        drain.set_type(call::Type::DRAIN_AGENT);
        let part = drain.drain_agent.mut_or_insert_default();
        part.agent_id.mut_or_insert_default().set_value("S1".into());
        part.max_grace_period.mut_or_insert_default().seconds = 5;
        let bytes = ContentType::Protobuf.encode(&drain);
        let decoded = decode(ContentType::Protobuf, &bytes).expect("a call");
        assert_eq!(decoded.drain_agent.max_grace_period.seconds, 5);
    }
}
