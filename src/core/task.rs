//! The task state machine's states. Each state carries the data that only makes sense
//! in it (a running task has an attempt and a pool; a waiting one has a due time), so
//! a task cannot be "running with no attempt". States change only through
//! [`crate::core::RunState::apply`], which refuses any event that does not fit the
//! current state.

use serde::{Deserialize, Serialize};

use crate::core::checks::Finding;

/// Where a task is in its life, with the data of that state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting on dependencies that have not completed.
    Blocked,
    /// Ready to run; counted in the queue depth.
    Queued,
    /// An attempt is in flight on a pool.
    Running {
        /// 1-based attempt number.
        attempt: u32,
        /// Pool running it.
        pool: String,
        /// When the attempt started (ms since the epoch).
        started_ms: u64,
        /// Process (and group) id of the attempt, once it has one.
        #[serde(default)]
        process: Option<u32>,
        /// True while the attempt is silent past its pool's `stall_after`.
        #[serde(default)]
        stalled: bool,
        /// A consensus attempt's votes so far (none for a task without replicas, and
        /// before the first vote).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        round: Option<Box<crate::core::consensus::Round>>,
    },
    /// The attempt's output is being checked by quality gates.
    Validating {
        /// Attempt whose output is checked.
        attempt: u32,
        /// The gate running now (0-based position in the task's gates).
        #[serde(default)]
        gate: usize,
    },
    /// A failed attempt is backing off before the next one.
    RetryWait {
        /// When the task becomes queued again (ms since the epoch).
        due_ms: u64,
    },
    /// Finished with a result.
    Completed {
        /// True when a fallback, not a worker, produced the result.
        degraded: bool,
    },
    /// Attempts are spent (or the failure was permanent); waits for an operator.
    DeadLettered {
        /// Why, in plain words.
        reason: String,
    },
    /// Stopped by an operator.
    Cancelled {
        /// Who or what cancelled it.
        reason: String,
    },
    /// Not run because a dependency was dead-lettered or cancelled.
    Skipped {
        /// The dependency that caused it.
        because: String,
    },
    /// Held for an operator before dispatch: the input guard found a prompt-injection
    /// shape in its payload or inputs (DESIGN §9). No process starts for it until it
    /// is approved; a rejection cancels it.
    AwaitingApproval {
        /// What the guard found.
        finding: Finding,
    },
}

/// The state's name alone, for counts, filters and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStateName {
    /// See [`TaskState::Blocked`].
    Blocked,
    /// See [`TaskState::Queued`].
    Queued,
    /// See [`TaskState::Running`].
    Running,
    /// See [`TaskState::Validating`].
    Validating,
    /// See [`TaskState::RetryWait`].
    RetryWait,
    /// See [`TaskState::Completed`].
    Completed,
    /// See [`TaskState::DeadLettered`].
    DeadLettered,
    /// See [`TaskState::Cancelled`].
    Cancelled,
    /// See [`TaskState::Skipped`].
    Skipped,
    /// See [`TaskState::AwaitingApproval`].
    AwaitingApproval,
}

impl TaskStateName {
    /// Every state, in life-cycle order (the order of reports).
    pub const ALL: [TaskStateName; 10] = [
        TaskStateName::Blocked,
        TaskStateName::Queued,
        TaskStateName::Running,
        TaskStateName::Validating,
        TaskStateName::RetryWait,
        TaskStateName::Completed,
        TaskStateName::DeadLettered,
        TaskStateName::Cancelled,
        TaskStateName::Skipped,
        // Last, so that reports of runs without held tasks read as before.
        TaskStateName::AwaitingApproval,
    ];

    /// The snake_case name used in JSON and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStateName::Blocked => "blocked",
            TaskStateName::Queued => "queued",
            TaskStateName::Running => "running",
            TaskStateName::Validating => "validating",
            TaskStateName::RetryWait => "retry_wait",
            TaskStateName::Completed => "completed",
            TaskStateName::DeadLettered => "dead_lettered",
            TaskStateName::Cancelled => "cancelled",
            TaskStateName::Skipped => "skipped",
            TaskStateName::AwaitingApproval => "awaiting_approval",
        }
    }

    /// True for states a task leaves only by an operator's action.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStateName::Completed | TaskStateName::DeadLettered | TaskStateName::Cancelled | TaskStateName::Skipped
        )
    }
}

impl std::fmt::Display for TaskStateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TaskState {
    /// A running attempt as it starts: no process yet, not stalled.
    pub fn running(attempt: u32, pool: String, started_ms: u64) -> TaskState {
        TaskState::Running { attempt, pool, started_ms, process: None, stalled: false, round: None }
    }

    /// True while a running attempt is flagged stalled.
    pub fn is_stalled(&self) -> bool {
        matches!(self, TaskState::Running { stalled: true, .. })
    }

    /// The running attempt's process id, once it has one.
    pub fn process(&self) -> Option<u32> {
        match self {
            TaskState::Running { process, .. } => *process,
            _ => None,
        }
    }

    /// The state's name.
    pub fn name(&self) -> TaskStateName {
        match self {
            TaskState::Blocked => TaskStateName::Blocked,
            TaskState::Queued => TaskStateName::Queued,
            TaskState::Running { .. } => TaskStateName::Running,
            TaskState::Validating { .. } => TaskStateName::Validating,
            TaskState::RetryWait { .. } => TaskStateName::RetryWait,
            TaskState::Completed { .. } => TaskStateName::Completed,
            TaskState::DeadLettered { .. } => TaskStateName::DeadLettered,
            TaskState::Cancelled { .. } => TaskStateName::Cancelled,
            TaskState::Skipped { .. } => TaskStateName::Skipped,
            TaskState::AwaitingApproval { .. } => TaskStateName::AwaitingApproval,
        }
    }

    /// True once the task needs an operator to move again.
    pub fn is_terminal(&self) -> bool {
        self.name().is_terminal()
    }
}
