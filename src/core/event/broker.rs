//! What the broker events carry (DESIGN §7, §16): a remote worker's registration, a
//! lost worker, the broker link going down and coming back, and a result that came
//! for an attempt already decided. Each is the payload of one [`super::Event`]
//! variant of the same name, its fields written beside the `type` tag.

use serde::{Deserialize, Serialize};

/// `worker_registered`: a `pitboss worker` announced itself (first seen, or seen
/// again after it had vanished).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRegistered {
    /// The pool it serves.
    pub pool: String,
    /// Its id (`HOST:PID:4hex`).
    pub worker: String,
    /// The host it runs on.
    pub host: String,
    /// Its pid on that host.
    pub pid: u32,
    /// What it offers tasks routed by `requires`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Its pitboss version.
    pub version: String,
    /// Attempts it runs at once.
    pub concurrency: usize,
}

/// `worker_lost`: a remote worker is gone (its registration expired, it left, or a
/// delivery it held was reclaimed past the lease). When it held an attempt, the
/// task and attempt say which; that attempt is interrupted, not spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerLost {
    /// The pool it served.
    pub pool: String,
    /// Its id.
    pub worker: String,
    /// The task whose attempt it held, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// That attempt's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// True when the worker had started that attempt's command: only then does the
    /// loss count toward the task's poison pill (a delivery never started says nothing
    /// about the task). Not written when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub started: bool,
    /// Why it counts as lost (`lease expired`, `registration expired`, `left`).
    pub reason: String,
}

/// `broker_down`: the manager lost its broker; no attempt starts until it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerDown {
    /// The broker's URL, without a password (as recorded in the workflow).
    pub broker: String,
    /// What failed, in the client's words.
    pub reason: String,
}

/// `broker_up`: the broker is reachable again; dispatch resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerUp {
    /// The broker's URL, without a password.
    pub broker: String,
    /// How long it was down.
    pub down_ms: u64,
    /// Unfinished attempts published again (a broker that restarted empty lost them).
    pub republished: u64,
}

/// `result_duplicate`: a result for an attempt that is no longer running (a lost
/// worker's late result after another copy's, a redelivered copy's): recorded and
/// ignored, so each attempt has exactly one recorded outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDuplicate {
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// The worker that sent it.
    pub worker: String,
    /// `late` (the attempt had ended) or `duplicate` (the same result twice).
    pub reason: String,
}

/// Where a remote attempt runs: the worker's id and its host. Carried by
/// [`crate::core::Input::Spawned`] and the `attempt_spawned` it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRef {
    /// The worker's id.
    pub id: String,
    /// Its host.
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::super::Event;
    use super::*;

    fn samples() -> Vec<Event> {
        vec![
            Event::WorkerRegistered(WorkerRegistered {
                pool: "p".into(),
                worker: "h:1:ab12".into(),
                host: "h".into(),
                pid: 1,
                capabilities: vec!["gpu".into()],
                version: "0.1.0".into(),
                concurrency: 2,
            }),
            Event::WorkerLost(WorkerLost {
                pool: "p".into(),
                worker: "h:1:ab12".into(),
                task: Some("a".into()),
                attempt: Some(1),
                started: true,
                reason: "lease expired".into(),
            }),
            Event::BrokerDown(BrokerDown { broker: "redis://h:6379".into(), reason: "connection refused".into() }),
            Event::BrokerUp(BrokerUp { broker: "redis://h:6379".into(), down_ms: 12_000, republished: 3 }),
            Event::ResultDuplicate(ResultDuplicate {
                task: "a".into(),
                attempt: 1,
                worker: "h:1:ab12".into(),
                reason: "late".into(),
            }),
        ]
    }

    #[test]
    fn each_broker_event_round_trips_under_its_tag() {
        for event in samples() {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.kind(), "{json}");
            assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
        }
    }

    #[test]
    fn a_local_attempt_spawned_is_written_as_before() {
        let local =
            Event::AttemptSpawned { task: "a".into(), attempt: 1, pid: 9, worker: None, host: None, resumes: None };
        let json = serde_json::to_string(&local).unwrap();
        assert_eq!(json, r#"{"type":"attempt_spawned","task":"a","attempt":1,"pid":9}"#);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), local);
    }
}
