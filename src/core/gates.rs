//! Gate verdicts as the core keeps them, the `feedback` a worker reads, and the pure
//! gates: the JSON Schema check and the reading of a reviewer's answer.
//!
//! The engine runs gates off its loop and reports each as a [`GateOutcome`];
//! [`crate::core::step`] turns it into `gate_passed`, `gate_failed` or `gate_error`, and
//! the fold keeps every verdict of a task in [`Verdict`]s, from which the next
//! attempt's `feedback` is built (so a resumed run gives the same feedback).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::core::workflow::{gate_label, GateKind, SCORE_RANGE};

/// How a gate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// The result passed.
    Passed,
    /// The result failed.
    Failed,
    /// The gate could not run.
    Error,
}

impl VerdictKind {
    /// The word shown and sent in `feedback`.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Passed => "passed",
            VerdictKind::Failed => "failed",
            VerdictKind::Error => "error",
        }
    }
}

/// One gate's verdict on one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Attempt whose result was checked.
    pub attempt: u32,
    /// The gate's position (0-based).
    pub index: usize,
    /// The gate's kind.
    pub kind: GateKind,
    /// Passed, failed, or could not run.
    pub verdict: VerdictKind,
    /// What it found.
    pub reason: String,
    /// A reviewer's score.
    pub score: Option<u8>,
    /// A reviewer's or check program's words.
    pub critique: Option<String>,
    /// Time the gate took.
    pub duration_ms: u64,
}

/// What a gate run reports to the core (the engine's side of a gate).
#[derive(Debug, Clone, PartialEq)]
pub enum GateOutcome {
    /// The result passed: what was found, a score, a critique.
    Passed {
        /// What was found.
        reason: String,
        /// A reviewer's score.
        score: Option<u8>,
        /// Words of a reviewer or check program.
        critique: Option<String>,
    },
    /// The result failed.
    Failed {
        /// What is wrong (without the `gate N (kind) failed:` prefix, added by the core).
        reason: String,
        /// A reviewer's score.
        score: Option<u8>,
        /// Words of a reviewer or check program.
        critique: Option<String>,
    },
    /// The gate could not run.
    Error {
        /// Why (without the prefix).
        reason: String,
    },
}

/// The reason recorded for a failed gate: `gate 1 (schema) failed: …`.
pub fn failed_reason(index: usize, kind: GateKind, why: &str) -> String {
    format!("{} failed: {why}", gate_label(index, kind))
}

/// The reason recorded for a gate that could not run.
pub fn error_reason(index: usize, kind: GateKind, why: &str) -> String {
    format!("{} could not run: {why}", gate_label(index, kind))
}

/// The `feedback` array of the worker protocol (DESIGN §4): every earlier verdict of
/// the task, oldest first. `critique` is the gate's own words, byte for byte, or its
/// reason when it gave none (a schema gate's list of failing paths).
pub fn feedback(verdicts: &[Verdict]) -> Value {
    Value::Array(
        verdicts
            .iter()
            .map(|v| {
                json!({
                    "gate": v.kind.as_str(),
                    "index": v.index,
                    "attempt": v.attempt,
                    "verdict": v.verdict.as_str(),
                    "reason": v.reason,
                    "critique": v.critique.as_deref().unwrap_or(&v.reason),
                    "score": v.score,
                })
            })
            .collect(),
    )
}

/// A compiled JSON Schema (draft 2020-12). Compiled once per run and gate, never per
/// result.
pub struct CompiledSchema(jsonschema::Validator);

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledSchema")
    }
}

impl CompiledSchema {
    /// Compiles a schema document; the error says why it is not a schema.
    pub fn new(schema: &Value) -> Result<CompiledSchema, String> {
        jsonschema::draft202012::new(schema).map(CompiledSchema).map_err(|e| e.to_string())
    }

    /// Checks a result: `Ok` when it matches, else every failing instance path with
    /// its message, one per line (`/title: 5 is not of type "string"`; the root is `/`).
    pub fn check(&self, result: &Value) -> Result<(), String> {
        let problems: Vec<String> = self
            .0
            .iter_errors(result)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() { "/".to_string() } else { path };
                format!("{path}: {e}")
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// A reviewer's answer `{"score": 0-10, "critique": "…"}` read from its result:
/// (score, critique), or why it is not one.
pub fn read_review(answer: &Value) -> Result<(u8, String), String> {
    let (low, high) = SCORE_RANGE;
    let score = answer.get("score").and_then(Value::as_f64).ok_or_else(|| {
        format!("the reviewer's answer has no numeric \"score\" (expected {{\"score\": {low}-{high}, \"critique\": \"…\"}})")
    })?;
    if !(f64::from(low)..=f64::from(high)).contains(&score) {
        return Err(format!("the reviewer's score {score} is not {low} to {high}"));
    }
    let critique = match answer.get("critique") {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    // A fractional score is rounded down: 6.9 does not pass a min_score of 7.
    Ok((score.floor() as u8, critique))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_failing_path() {
        let schema = json!({"type":"object","required":["title"],"properties":{"title":{"type":"string"},"n":{"type":"integer"}}});
        let compiled = CompiledSchema::new(&schema).unwrap();
        assert_eq!(compiled.check(&json!({"title":"x","n":1})), Ok(()));
        let err = compiled.check(&json!({"title":5,"n":"x"})).unwrap_err();
        assert!(err.contains("/title: 5 is not of type \"string\""), "{err}");
        assert!(err.contains("/n: \"x\" is not of type \"integer\""), "{err}");
        let err = compiled.check(&json!({})).unwrap_err();
        assert!(err.starts_with("/: "), "{err}");
    }

    #[test]
    fn review_answers_are_read_or_refused() {
        assert_eq!(read_review(&json!({"score":8,"critique":"good"})), Ok((8, "good".into())));
        assert_eq!(read_review(&json!({"score":6.9})), Ok((6, String::new())));
        assert!(read_review(&json!({"score":11})).is_err());
        assert!(read_review(&json!("great")).is_err());
    }
}
