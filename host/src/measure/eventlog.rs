//! A TDX CC event log in JSON, as dstack's guest agent and `tdx-lite` export it: an array
//! of events, each `{"imr": 0..3, "event_type": u32, "digest": "<96 hex digits>" | "",
//! "event": "<name>", "event_payload": "<hex>"}`, in the order they were extended.
//!
//! `imr` is the RTMR index (a TCG CCEL's MR index minus one). An event with an empty digest
//! is a runtime event whose digest is derived from its name and payload
//! ([`tdx::dstack_event_digest`]); only RTMR3 carries such events. [`parse_json`] reads the
//! log and [`tdx::replay_rtmrs`] folds it into RTMR0..3.

use serde::Deserialize;
use thiserror::Error;

use super::tdx::{self, RtmrEvent};

/// Why an event log cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EventLogError {
    /// Not a JSON array of event objects with the fields above.
    #[error("event log is not a JSON array of {{imr, event_type, digest, event, event_payload}} objects: {0}")]
    Json(String),
    /// An event for a register other than RTMR0..3.
    #[error("event {index}: imr {imr}; only RTMR0..3 exist")]
    Register { index: usize, imr: u32 },
    /// A digest that is neither empty nor 48 bytes of hex.
    #[error("event {index}: digest {digest:?} is not 96 hex digits")]
    Digest { index: usize, digest: String },
    /// A digest-less event outside RTMR3, whose digest this log format does not define.
    #[error(
        "event {index}: RTMR{imr} event without a digest (only RTMR3 runtime events derive theirs)"
    )]
    MissingDigest { index: usize, imr: u32 },
    /// A payload that is not hex.
    #[error("event {index}: event_payload is not hex")]
    Payload { index: usize },
}

#[derive(Deserialize)]
struct Event {
    imr: u32,
    event_type: u32,
    digest: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    event_payload: String,
}

/// The events of a JSON CC event log, each reduced to its register and digest.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<RtmrEvent>, EventLogError> {
    let events: Vec<Event> =
        serde_json::from_slice(bytes).map_err(|e| EventLogError::Json(e.to_string()))?;
    events
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            if e.imr > 3 {
                return Err(EventLogError::Register { index, imr: e.imr });
            }
            let digest = if e.digest.is_empty() {
                if e.imr != 3 {
                    return Err(EventLogError::MissingDigest { index, imr: e.imr });
                }
                let payload =
                    hex::decode(&e.event_payload).map_err(|_| EventLogError::Payload { index })?;
                tdx::dstack_event_digest(e.event_type, &e.event, &payload)
            } else {
                hex::decode(&e.digest)
                    .ok()
                    .and_then(|d| <[u8; 48]>::try_from(d).ok())
                    .ok_or_else(|| EventLogError::Digest {
                        index,
                        digest: e.digest.clone(),
                    })?
            };
            Ok(RtmrEvent {
                rtmr: e.imr,
                digest,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_refusals() {
        let d = "11".repeat(48);
        let log = format!(
            r#"[{{"imr":0,"event_type":1,"digest":"{d}","event":"","event_payload":""}},
                {{"imr":3,"event_type":134217729,"digest":"","event":"app-id","event_payload":"0a0b"}}]"#
        );
        let events = parse_json(log.as_bytes()).unwrap();
        assert_eq!(events[0].rtmr, 0);
        assert_eq!(events[0].digest, [0x11; 48]);
        assert_eq!(
            events[1].digest,
            tdx::dstack_event_digest(134217729, "app-id", &[0x0a, 0x0b])
        );

        let one = |e: &str| parse_json(format!("[{e}]").as_bytes());
        assert_eq!(
            one(&format!(r#"{{"imr":4,"event_type":1,"digest":"{d}"}}"#)),
            Err(EventLogError::Register { index: 0, imr: 4 })
        );
        assert_eq!(
            one(r#"{"imr":1,"event_type":1,"digest":""}"#),
            Err(EventLogError::MissingDigest { index: 0, imr: 1 })
        );
        assert_eq!(
            one(r#"{"imr":1,"event_type":1,"digest":"abcd"}"#),
            Err(EventLogError::Digest {
                index: 0,
                digest: "abcd".into()
            })
        );
        assert_eq!(
            one(r#"{"imr":3,"event_type":1,"digest":"","event_payload":"zz"}"#),
            Err(EventLogError::Payload { index: 0 })
        );
        assert!(matches!(parse_json(b"{}"), Err(EventLogError::Json(_))));
    }
}
