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
    use protobuf::well_known_types::struct_::{value::Kind, Value};
    use std::collections::BTreeSet;

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

    // Two bodies from Mesos's own documentation of the scheduler API,
    // docs/scheduler-http-api.md in apache/mesos, with spaces for its tabs:
    // the field names and enum names below are Mesos's, not our encoder's.

    /// The body of the "ACKNOWLEDGE Request (JSON)" example.
    const DOCUMENTED_ACKNOWLEDGE: &str = r#"{
      "framework_id" : {"value" : "12220-3440-12532-2345"},
      "type"         : "ACKNOWLEDGE",
      "acknowledge"  : {
        "agent_id" :  {"value" : "12220-3440-12532-S1233"},
        "task_id"  :  {"value" : "12220-3440-12532-my-task"},
        "uuid"     :  "jhadf73jhakdlfha723adf"
      }
    }"#;

    /// The body of the "UPDATE Event (JSON)" example.
    const DOCUMENTED_UPDATE: &str = r#"{
      "type"   : "UPDATE",
      "update" : {
        "status" : {
            "task_id" : { "value" : "12344-my-task"},
            "state"   : "TASK_RUNNING",
            "source"  : "SOURCE_EXECUTOR",
            "uuid"    : "adfadfadbhgvjayd23r2uahj",
            "bytes"   : "uhdjfhuagdj63d7hadkf"
          }
      }
    }"#;

    /// Any JSON text as a JSON value (protobuf's `google.protobuf.Value`,
    /// read by our own parser), so that two texts compare whatever their key
    /// order, spacing or number format.
    fn json_value(text: &str) -> Value {
        crate::json::parse(text).unwrap_or_else(|err| panic!("{err}: {text}"))
    }

    /// Removes the member at `path` (`a.b.c`) from a JSON object, which
    /// must have it.
    fn remove(value: &mut Value, path: &str) {
        let keys: Vec<&str> = path.split('.').collect();
        let mut object = value;
        for (i, key) in keys.iter().enumerate() {
            let Some(Kind::StructValue(members)) = &mut object.kind else {
                panic!("{path}: {} is not an object", keys[..i].join("."));
            };
            if i + 1 == keys.len() {
                assert!(members.fields.remove(*key).is_some(), "no {path}");
                return;
            }
            object = members
                .fields
                .get_mut(*key)
                .unwrap_or_else(|| panic!("no {path}"));
        }
    }

    /// Where `ours` differs from `documented`, one line per difference.
    fn differences(documented: &Value, ours: &Value, path: &str) -> Vec<String> {
        match (&documented.kind, &ours.kind) {
            (Some(Kind::StructValue(d)), Some(Kind::StructValue(o))) => {
                let keys: BTreeSet<&String> = d.fields.keys().chain(o.fields.keys()).collect();
                let mut found = Vec::new();
                for key in keys {
                    let at = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match (d.fields.get(key), o.fields.get(key)) {
                        (Some(d), Some(o)) => found.extend(differences(d, o, &at)),
                        (Some(_), None) => found.push(format!("{at}: documented, not in ours")),
                        (None, _) => found.push(format!("{at}: in ours, not documented")),
                    }
                }
                found
            }
            (Some(Kind::ListValue(d)), Some(Kind::ListValue(o)))
                if d.values.len() == o.values.len() =>
            {
                let mut found = Vec::new();
                for (i, (d, o)) in d.values.iter().zip(&o.values).enumerate() {
                    found.extend(differences(d, o, &format!("{path}[{i}]")));
                }
                found
            }
            _ if documented == ours => Vec::new(),
            _ => vec![format!(
                "{path}: documented {}, ours {}",
                brief(documented),
                brief(ours)
            )],
        }
    }

    fn brief(value: &Value) -> String {
        match &value.kind {
            Some(Kind::StringValue(s)) => format!("{s:?}"),
            Some(Kind::NumberValue(n)) => n.to_string(),
            Some(Kind::BoolValue(b)) => b.to_string(),
            Some(Kind::StructValue(_)) => "an object".to_string(),
            Some(Kind::ListValue(l)) => format!("a list of {}", l.values.len()),
            _ => "null".to_string(),
        }
    }

    fn assert_as_documented(what: &str, documented: &Value, ours: &Value) {
        let found = differences(documented, ours, "");
        assert!(
            found.is_empty(),
            "our JSON for {what} differs from Mesos's documented example:\n  {}",
            found.join("\n  ")
        );
    }

    #[test]
    fn json_calls_use_the_names_mesos_documents() {
        // Our decoder finds every documented field of ACKNOWLEDGE...
        let documented: Call = ContentType::Json
            .decode(DOCUMENTED_ACKNOWLEDGE.as_bytes(), "scheduler Call")
            .unwrap();
        assert_eq!(documented.type_(), call::Type::ACKNOWLEDGE);
        assert_eq!(documented.framework_id.value(), "12220-3440-12532-2345");
        let acknowledge = &documented.acknowledge;
        assert_eq!(acknowledge.agent_id.value(), "12220-3440-12532-S1233");
        assert_eq!(acknowledge.task_id.value(), "12220-3440-12532-my-task");
        // 22 Base64 characters without padding: a UUID's 16 bytes.
        assert_eq!(acknowledge.uuid().len(), 16);

        // ...and our encoder writes the same call under the same names.
        let mut call = Call::new();
        call.set_type(call::Type::ACKNOWLEDGE);
        call.framework_id
            .mut_or_insert_default()
            .set_value("12220-3440-12532-2345".into());
        let ours = call.acknowledge.mut_or_insert_default();
        ours.agent_id
            .mut_or_insert_default()
            .set_value("12220-3440-12532-S1233".into());
        ours.task_id
            .mut_or_insert_default()
            .set_value("12220-3440-12532-my-task".into());
        ours.set_uuid(acknowledge.uuid().to_vec());
        let ours = String::from_utf8(ContentType::Json.encode(&call)).unwrap();
        // The same 16 bytes, in other Base64 text: we write
        // "jhadf73jhakdlfha723adQ==", padded and with the last character's
        // unused bits clear, as Base64 encoders do. The rest must be the same.
        assert!(
            ours.contains(r#""uuid":"jhadf73jhakdlfha723adQ==""#),
            "{ours}"
        );
        let mut documented = json_value(DOCUMENTED_ACKNOWLEDGE);
        remove(&mut documented, "acknowledge.uuid");
        let mut ours = json_value(&ours);
        remove(&mut ours, "acknowledge.uuid");
        assert_as_documented("ACKNOWLEDGE", &documented, &ours);
    }

    #[test]
    fn json_events_use_the_names_mesos_documents() {
        use crate::proto::mesos::task_status::Source;
        use base64::Engine as _;
        let uuid = base64::engine::general_purpose::STANDARD
            .decode("adfadfadbhgvjayd23r2uahj")
            .unwrap();

        // Our decoder finds every documented field of UPDATE...
        let documented: Event = ContentType::Json
            .decode(DOCUMENTED_UPDATE.as_bytes(), "scheduler Event")
            .unwrap();
        assert_eq!(documented.type_(), event::Type::UPDATE);
        let status = &documented.update.status;
        assert_eq!(status.task_id.value(), "12344-my-task");
        assert_eq!(status.state(), TaskState::TASK_RUNNING);
        assert_eq!(status.source(), Source::SOURCE_EXECUTOR);
        assert_eq!(status.uuid(), uuid);

        // ...and our encoder writes the same event under the same names.
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
            .set_value("12344-my-task".into());
        status.set_state(TaskState::TASK_RUNNING);
        status.set_source(Source::SOURCE_EXECUTOR);
        status.set_uuid(uuid);
        let ours = String::from_utf8(ContentType::Json.encode(&event)).unwrap();
        // `bytes` is no field of TaskStatus in Mesos's mesos.proto (the text
        // beside the example names `data`); decoders skip it, as ours did.
        let mut documented = json_value(DOCUMENTED_UPDATE);
        remove(&mut documented, "update.status.bytes");
        assert_as_documented("UPDATE", &documented, &json_value(&ours));
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
