//! The two encodings of the Mesos v1 HTTP APIs: protobuf and JSON.
//!
//! *Plumbing: a reader may skip this file.*
//!
//! Every call and event can travel as binary protobuf
//! (`application/x-protobuf`, compact, the default here) or as JSON
//! (`application/json`, readable with `curl`). A client picks one for what
//! it sends with `Content-Type` and for what it receives with `Accept`.
//!
//! A rule that trips many clients: a master that sees no `Accept` header
//! (or `*/*`) answers in JSON, so a client that wants protobuf must ask for
//! it explicitly.

use protobuf::MessageFull;
use std::fmt;
use std::str::FromStr;

/// Which encoding a request or response body uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// `application/x-protobuf`: the protobuf wire format.
    Protobuf,
    /// `application/json`: Mesos's JSON mapping (see [`crate::json`]).
    Json,
}

/// A body that could not be decoded.
#[derive(Debug)]
pub struct DecodeError {
    /// What was being decoded, for example `scheduler Event`.
    pub what: &'static str,
    /// Which encoding it claimed to be in.
    pub content_type: ContentType,
    /// What the decoder said.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not decode a {} from {}: {}",
            self.what,
            self.content_type.mime(),
            self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

impl ContentType {
    /// The media type, as it appears in `Content-Type` and `Accept` headers.
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Protobuf => "application/x-protobuf",
            ContentType::Json => "application/json",
        }
    }

    /// Recognises a `Content-Type` header value. Parameters such as
    /// `; charset=utf-8` are ignored.
    pub fn from_mime(value: &str) -> Option<ContentType> {
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(ContentType::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(ContentType::Json)
        } else {
            None
        }
    }

    /// Encodes a message for the wire.
    pub fn encode<M: MessageFull>(self, message: &M) -> Vec<u8> {
        match self {
            ContentType::Protobuf => message
                .write_to_bytes()
                .expect("every message we build has its required fields set"),
            ContentType::Json => crate::json::print(message).into_bytes(),
        }
    }

    /// Decodes a message from the wire. `what` names it in the error.
    pub fn decode<M: MessageFull>(
        self,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<M, DecodeError> {
        let error = |reason: String| DecodeError {
            what,
            content_type: self,
            reason,
        };
        match self {
            // rust-protobuf checks required fields here, as Mesos does.
            ContentType::Protobuf => {
                M::parse_from_bytes(bytes).map_err(|err| error(err.to_string()))
            }
            ContentType::Json => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|err| error(format!("the body is not UTF-8: {err}")))?;
                crate::json::parse(text).map_err(error)
            }
        }
    }
}

impl fmt::Display for ContentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// Parses the `--content-type` flag: `protobuf` or `json` (or a full media
/// type).
impl FromStr for ContentType {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "protobuf" | "proto" => Ok(ContentType::Protobuf),
            "json" => Ok(ContentType::Json),
            other => ContentType::from_mime(other)
                .ok_or_else(|| format!("unknown content type '{value}': use 'protobuf' or 'json'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mesos::{FrameworkID, TaskState};
    use crate::proto::scheduler::{call, event, Call, Event};

    fn decline_call() -> Call {
        let mut call = Call::new();
        call.set_type(call::Type::DECLINE);
        call.framework_id = Some(FrameworkID {
            value: Some("fw-1".into()),
            ..Default::default()
        })
        .into();
        let decline = call.decline.mut_or_insert_default();
        decline.offer_ids.push(crate::proto::mesos::OfferID {
            value: Some("offer-7".into()),
            ..Default::default()
        });
        decline
            .filters
            .mut_or_insert_default()
            .set_refuse_seconds(30.0);
        call
    }

    fn update_event() -> Event {
        let mut event = Event::new();
        event.set_type(event::Type::UPDATE);
        let status = event
            .update
            .mut_or_insert_default()
            .status
            .mut_or_insert_default();
        status
            .task_id
            .mut_or_insert_default()
            .set_value("task-3".into());
        status.set_state(TaskState::TASK_FINISHED);
        status.set_uuid(vec![7; 16]);
        status
            .agent_id
            .mut_or_insert_default()
            .set_value("agent-1".into());
        event
    }

    #[test]
    fn a_call_round_trips_in_both_content_types() {
        for content_type in [ContentType::Protobuf, ContentType::Json] {
            let bytes = content_type.encode(&decline_call());
            let back: Call = content_type.decode(&bytes, "scheduler Call").unwrap();
            assert_eq!(back, decline_call(), "{content_type}");
        }
    }

    #[test]
    fn an_event_round_trips_in_both_content_types() {
        for content_type in [ContentType::Protobuf, ContentType::Json] {
            let bytes = content_type.encode(&update_event());
            let back: Event = content_type.decode(&bytes, "scheduler Event").unwrap();
            assert_eq!(back, update_event(), "{content_type}");
        }
    }

    #[test]
    fn json_uses_mesos_field_names_and_enum_names() {
        let json = String::from_utf8(ContentType::Json.encode(&decline_call())).unwrap();
        assert_eq!(
            json,
            r#"{"framework_id":{"value":"fw-1"},"type":"DECLINE","decline":{"offer_ids":[{"value":"offer-7"}],"filters":{"refuse_seconds":30}}}"#
        );
    }

    #[test]
    fn json_as_a_real_master_writes_it_is_understood() {
        // Mesos prints defaults and fields we do not declare; both are fine.
        let json = br#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"abc-0001"},
            "heartbeat_interval_seconds":15.0,"master_info":{"id":"m","ip":16777343,"port":5050,
            "hostname":"localhost","domain":{"fault_domain":{}}}}}"#;
        let event: Event = ContentType::Json.decode(json, "scheduler Event").unwrap();
        assert_eq!(event.type_(), event::Type::SUBSCRIBED);
        assert_eq!(event.subscribed.framework_id.value(), "abc-0001");
        assert_eq!(event.subscribed.master_info.port(), 5050);
    }

    #[test]
    fn garbage_is_a_decode_error_in_both_content_types() {
        let err = ContentType::Protobuf
            .decode::<Event>(&[0xff, 0xff, 0xff], "scheduler Event")
            .unwrap_err();
        assert!(err.to_string().contains("application/x-protobuf"));
        let err = ContentType::Json
            .decode::<Event>(b"{\"type\": ", "scheduler Event")
            .unwrap_err();
        assert!(err.to_string().contains("application/json"));
        assert!(ContentType::Json
            .decode::<Event>(&[0xc3, 0x28], "x")
            .is_err());
    }

    #[test]
    fn media_types_and_flags_are_recognised() {
        assert_eq!(
            ContentType::from_mime("application/json; charset=utf-8"),
            Some(ContentType::Json)
        );
        assert_eq!(ContentType::from_mime("text/plain"), None);
        assert_eq!("json".parse::<ContentType>(), Ok(ContentType::Json));
        assert_eq!("protobuf".parse::<ContentType>(), Ok(ContentType::Protobuf));
        assert!("xml".parse::<ContentType>().is_err());
    }
}
