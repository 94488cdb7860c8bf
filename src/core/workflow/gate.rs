//! Quality gates (DESIGN §9): checks a task's result must pass before it counts.
//!
//! A task's gates run in order after a successful attempt; the first failure stops
//! the chain and counts as a failed attempt. The gate list is part of the workflow
//! stored in `run_started`, so everything a gate needs is here with every default
//! resolved: a schema gate holds the schema document itself (read at `validate`
//! time), so a resumed run never reads a file that may have changed since.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::RetryPolicy;

/// The range of a review's score and of `min_score`.
pub const SCORE_RANGE: (u8, u8) = (0, 10);
/// The range of a perf gate's `runs`.
pub const PERF_RUNS_RANGE: (u32, u32) = (1, 100);
/// The range of a perf gate's `max_regression` (a factor over the best earlier run).
pub const REGRESSION_RANGE: (f64, f64) = (1.0, 100.0);

/// One gate of a task, with what it needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Gate {
    /// The result must match a JSON Schema (draft 2020-12).
    Schema {
        /// The file it was read from (absolute), for messages.
        path: PathBuf,
        /// The schema document itself.
        schema: Value,
    },
    /// A check program; exit 0 passes, the tail of its output is the critique.
    Command {
        /// argv, never run through a shell.
        command: Vec<String>,
        /// Its time limit.
        timeout_ms: u64,
    },
    /// An AI reviewer on another pool scores the result.
    Review {
        /// The reviewer pool.
        pool: String,
        /// Scores below this fail.
        min_score: u8,
        /// What the reviewer is asked to judge.
        criteria: Vec<String>,
        /// Time limit of one review attempt.
        timeout_ms: u64,
        /// Attempts and backoff of the review itself.
        retry: RetryPolicy,
    },
    /// Built-in scan for secrets and injection-prone code, optionally an external scanner.
    Security {
        /// The external scanner, if any.
        command: Option<Vec<String>>,
    },
    /// Wall time and memory of a command over several runs.
    Perf(PerfGate),
}

/// `perf = { command, max_time, max_rss_mb, runs, max_regression, baseline }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfGate {
    /// The command measured.
    pub command: Vec<String>,
    /// Median wall time above which it fails.
    pub max_time_ms: Option<u64>,
    /// Peak resident memory (MiB) above which it fails.
    pub max_rss_mb: Option<u64>,
    /// Runs measured (the median is taken).
    pub runs: u32,
    /// Factor over the best earlier passing run above which it fails.
    pub max_regression: Option<f64>,
    /// A file holding the baseline instead of earlier runs (absolute).
    pub baseline: Option<PathBuf>,
    /// Time limit of one run.
    pub timeout_ms: u64,
}

/// A gate's kind alone, as events and screens name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// See [`Gate::Schema`].
    Schema,
    /// See [`Gate::Command`].
    Command,
    /// See [`Gate::Review`].
    Review,
    /// See [`Gate::Security`].
    Security,
    /// See [`Gate::Perf`].
    Perf,
}

impl GateKind {
    /// The name used in the workflow file, events and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            GateKind::Schema => "schema",
            GateKind::Command => "command",
            GateKind::Review => "review",
            GateKind::Security => "security",
            GateKind::Perf => "perf",
        }
    }
}

impl std::fmt::Display for GateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Gate {
    /// The gate's kind.
    pub fn kind(&self) -> GateKind {
        match self {
            Gate::Schema { .. } => GateKind::Schema,
            Gate::Command { .. } => GateKind::Command,
            Gate::Review { .. } => GateKind::Review,
            Gate::Security { .. } => GateKind::Security,
            Gate::Perf(_) => GateKind::Perf,
        }
    }
}

/// How a gate is named in reasons: `gate 1 (schema)`, numbered from 1 as an operator counts.
pub fn gate_label(index: usize, kind: GateKind) -> String {
    format!("gate {} ({kind})", index + 1)
}
