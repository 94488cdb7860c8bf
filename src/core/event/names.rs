//! What every event is about and what it is called: [`Event::task`] and
//! [`Event::kind`] (the `type` of its JSON form), kept beside the enum.

use super::*;

impl Event {
    /// The task the event is about, if any.
    pub fn task(&self) -> Option<&str> {
        match self {
            Event::TaskReady { task }
            | Event::AttemptStarted { task, .. }
            | Event::AttemptSpawned { task, .. }
            | Event::AttemptSucceeded { task, .. }
            | Event::AttemptFailed { task, .. }
            | Event::GatePassed { task, .. }
            | Event::GateFailed { task, .. }
            | Event::GateError { task, .. }
            | Event::AttemptInterrupted { task, .. }
            | Event::VoteCast { task, .. }
            | Event::ConsensusReached { task, .. }
            | Event::ConsensusFailed { task, .. }
            | Event::RetryDue { task, .. }
            | Event::TaskCancelled { task, .. }
            | Event::TaskSkipped { task, .. }
            | Event::TaskRequeued { task, .. }
            | Event::TaskRevived { task, .. }
            | Event::FallbackUsed { task, .. }
            | Event::AttemptStalled { task, .. }
            | Event::AttemptActive { task, .. }
            | Event::OutputCaptureFailed { task, .. }
            | Event::PayloadEdited { task, .. }
            | Event::TaskHeld { task, .. }
            | Event::TaskApproved { task }
            | Event::TaskRejected { task, .. }
            | Event::TasksSpawned { task, .. }
            | Event::SpawnRefused { task, .. }
            | Event::ResultDuplicate(ResultDuplicate { task, .. })
            | Event::UsageRecorded(UsageRecorded { task, .. })
            | Event::SessionRecorded(SessionRecorded { task, .. })
            | Event::AttemptFlagged(AttemptFlagged { task, .. }) => Some(task),
            Event::WorkerLost(lost) => lost.task.as_deref(),
            Event::WorkspaceCreated(WorkspaceCreated { task, .. }) | Event::DiffRecorded(DiffRecorded { task, .. }) => {
                Some(task)
            }
            Event::RunStarted { .. }
            | Event::ManagerStarted { .. }
            | Event::RunInterrupted { .. }
            | Event::LogRepaired { .. }
            | Event::BreakerOpened { .. }
            | Event::BreakerHalfOpened { .. }
            | Event::BreakerClosed { .. }
            | Event::PoolPaused { .. }
            | Event::PoolResumed { .. }
            | Event::ConcurrencyChanged { .. }
            | Event::TasksSubmitted { .. }
            | Event::ForkedFrom { .. }
            | Event::WorkerRegistered(_)
            | Event::BrokerDown(_)
            | Event::BrokerUp(_)
            | Event::BudgetExhausted(_)
            | Event::BudgetRaised(_)
            | Event::RunFinished { .. } => None,
        }
    }

    /// The snake_case type tag, as in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::ManagerStarted { .. } => "manager_started",
            Event::TaskReady { .. } => "task_ready",
            Event::AttemptStarted { .. } => "attempt_started",
            Event::AttemptSpawned { .. } => "attempt_spawned",
            Event::AttemptSucceeded { .. } => "attempt_succeeded",
            Event::AttemptFailed { .. } => "attempt_failed",
            Event::GatePassed { .. } => "gate_passed",
            Event::GateFailed { .. } => "gate_failed",
            Event::GateError { .. } => "gate_error",
            Event::AttemptInterrupted { .. } => "attempt_interrupted",
            Event::VoteCast { .. } => "vote_cast",
            Event::ConsensusReached { .. } => "consensus_reached",
            Event::ConsensusFailed { .. } => "consensus_failed",
            Event::RetryDue { .. } => "retry_due",
            Event::TaskCancelled { .. } => "task_cancelled",
            Event::TaskSkipped { .. } => "task_skipped",
            Event::TaskRequeued { .. } => "task_requeued",
            Event::TaskRevived { .. } => "task_revived",
            Event::FallbackUsed { .. } => "fallback_used",
            Event::AttemptStalled { .. } => "attempt_stalled",
            Event::PayloadEdited { .. } => "payload_edited",
            Event::AttemptActive { .. } => "attempt_active",
            Event::OutputCaptureFailed { .. } => "output_capture_failed",
            Event::BreakerOpened { .. } => "breaker_opened",
            Event::BreakerHalfOpened { .. } => "breaker_half_opened",
            Event::BreakerClosed { .. } => "breaker_closed",
            Event::PoolPaused { .. } => "pool_paused",
            Event::PoolResumed { .. } => "pool_resumed",
            Event::ConcurrencyChanged { .. } => "concurrency_changed",
            Event::RunInterrupted { .. } => "run_interrupted",
            Event::LogRepaired { .. } => "log_repaired",
            Event::TaskHeld { .. } => "task_held",
            Event::TaskApproved { .. } => "task_approved",
            Event::TaskRejected { .. } => "task_rejected",
            Event::TasksSpawned { .. } => "tasks_spawned",
            Event::SpawnRefused { .. } => "spawn_refused",
            Event::TasksSubmitted { .. } => "tasks_submitted",
            Event::ForkedFrom { .. } => "forked_from",
            Event::WorkerRegistered(_) => "worker_registered",
            Event::WorkerLost(_) => "worker_lost",
            Event::BrokerDown(_) => "broker_down",
            Event::BrokerUp(_) => "broker_up",
            Event::ResultDuplicate(_) => "result_duplicate",
            Event::UsageRecorded(_) => "usage_recorded",
            Event::BudgetExhausted(_) => "budget_exhausted",
            Event::BudgetRaised(_) => "budget_raised",

            Event::WorkspaceCreated(_) => "workspace_created",
            Event::DiffRecorded(_) => "diff_recorded",

            Event::SessionRecorded(_) => "session_recorded",
            Event::AttemptFlagged(_) => "attempt_flagged",
            Event::RunFinished { .. } => "run_finished",
        }
    }
}
