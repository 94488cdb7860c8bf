//! One task's live record, and every task's in copy-on-write chunks.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::held;
use super::Chunked;
use crate::core::checks::Finding;
use crate::core::event::OutputStream;
use crate::core::gates::Verdict;
use crate::core::json_text::JsonText;
use crate::core::task::TaskState;

/// One task's live record. A snapshot leaves out the fields still at their start
/// value (zero, none, empty, false): most tasks of a big run are plain, and a
/// snapshot of 250k tasks was ~660 bytes a task with them written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Current state with its data.
    pub state: TaskState,
    /// Number of the latest attempt started (0 before the first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Value of `attempts` when the task last (re)started its attempt budget: an
    /// operator's retry gives fresh attempts without reusing attempt numbers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget_start: u32,
    /// Manager crashes in a row that found this task in flight (poison-pill detection):
    /// counted at the next manager's start, reset when an attempt ends by itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crashes: u32,
    /// Consecutive resource deferrals (they set the deferral backoff).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
    /// The result, once completed, as its JSON text (see [`JsonText`]: one task's
    /// result is held for the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonText>,
    /// The latest failure message (shared: a clone of the task, a time-travel
    /// checkpoint's or a history step's, copies a pointer, not the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Arc<str>>,
    /// Pool of the latest attempt: the run's one copy of the pool's name (see
    /// `Graph::pool_names`), so a clone of the task allocates nothing for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Arc<str>>,
    /// True once a fallback was used for the task (its result is degraded).
    #[serde(default, skip_serializing_if = "is_false")]
    pub degraded: bool,
    /// A payload an operator set, replacing the workflow's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<JsonText>,
    /// The pool a `fallback = { pool }` sent the task to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_override: Option<usize>,
    /// Output that could not be saved: (attempt, stream) of each
    /// `output_capture_failed`, at most one per stream of an attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture_failures: Vec<(u32, OutputStream)>,
    /// Every gate verdict of the task, oldest first (the next attempt's `feedback`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// The input guard's latest finding for the task (kept after an approval or a
    /// rejection, so that every front end can still show what was found).
    /// Boxed: few tasks have one, and inline it made every task 64 bytes bigger
    /// (every time-travel checkpoint copies every task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<Finding>>,
    /// True once an operator approved the held task: it is not checked again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub approved: bool,
    /// The task that spawned this one (DESIGN §11), if a planner did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The tasks this one spawned, in the order it gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<usize>,
    /// Position in the ready queue while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) queue_ticket: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Task {
    /// A task before anything happened to it: blocked, no attempt yet.
    pub(super) fn blocked() -> Task {
        Task {
            state: TaskState::Blocked,
            attempts: 0,
            budget_start: 0,
            crashes: 0,
            deferrals: 0,
            result: None,
            last_error: None,
            pool: None,
            degraded: false,
            payload: None,
            pool_override: None,
            capture_failures: Vec::new(),
            verdicts: Vec::new(),
            finding: None,
            approved: false,
            parent: None,
            children: Vec::new(),
            queue_ticket: None,
        }
    }

    /// Why the task ended, or its latest failure while it lives; `None` once completed.
    /// The one wording every front end shows (the `--json` document's `error`, the
    /// inspect table, the TUI).
    pub fn why(&self) -> Option<String> {
        match &self.state {
            TaskState::DeadLettered { reason } => Some(reason.clone()),
            TaskState::Cancelled { reason } => Some(format!("cancelled: {reason}")),
            TaskState::Skipped { because } if self.degraded => Some(format!("skipped by its {because}")),
            TaskState::Skipped { because } => Some(format!("skipped: dependency {because:?} did not complete")),
            TaskState::Completed { .. } => None,
            TaskState::AwaitingApproval { finding } => Some(held::held_reason(finding)),
            _ => self.last_error.as_deref().map(str::to_string),
        }
    }
}

/// Every task's record, in workflow order, in copy-on-write chunks: a clone of the
/// state shares them (see `chunked`).
pub type Tasks = Chunked<Task>;
