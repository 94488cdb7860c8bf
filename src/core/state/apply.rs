//! [`RunState::apply`]: the one entry point of the fold, live and in replay.

use super::{ApplyError, RunState};
use crate::core::breaker::Circuit;
use crate::core::event::Event;
use crate::core::gates::VerdictKind;
use crate::core::task::{TaskState, TaskStateName};

impl RunState {
    /// Folds one event into the state at time `ts_ms` (the event's timestamp).
    ///
    /// The one entry point of the fold, live and in replay. Each event goes to the
    /// handler of its kind below, which refuses it with an [`ApplyError`] before it
    /// changes anything when it does not fit the current state.
    pub fn apply(&mut self, event: &Event, ts_ms: u64) -> Result<(), ApplyError> {
        let kind = event.kind();
        match event {
            // The run as a whole.
            Event::RunStarted { .. } => return Err(ApplyError::StartedTwice),
            Event::ManagerStarted { .. } => {
                self.interrupted = false;
                self.count_crash();
                self.remote.manager_started(ts_ms);
            }
            Event::RunInterrupted { .. } => self.interrupted = true,
            Event::RunFinished { .. } => self.finished = true,
            Event::LogRepaired { .. } => {}
            // Broker mode (DESIGN §7; see `remote`).
            Event::WorkerRegistered(seen) => self.worker_registered(seen, ts_ms),
            Event::WorkerLost(lost) => self.worker_lost(lost, ts_ms)?,
            Event::BrokerDown(down) => self.broker_down(down, ts_ms),
            Event::BrokerUp(up) => self.broker_up(up, ts_ms),
            Event::ResultDuplicate(_) => {}
            // Spend and budgets (see `spend`).
            Event::UsageRecorded(usage) => self.record_usage(usage)?,
            Event::BudgetExhausted(_) => self.spend.exhausted = true,
            Event::BudgetRaised(raised) => self.raise_budget(raised),

            // Workspace notes (DESIGN §13): kept in the log, read by `inspect` and the TUI.
            Event::WorkspaceCreated(_) | Event::DiffRecorded(_) => {}

            Event::SessionRecorded(recorded) => self.session_recorded(recorded),
            Event::AttemptFlagged(flagged) => self.attempt_flagged(flagged),
            // A fork's own id from here on (see the event); its origin is in the log.
            Event::ForkedFrom { new_run_id, .. } => self.run_id = new_run_id.clone(),
            // A task between its attempts.
            Event::TaskReady { task } => {
                self.shift(kind, task, |s| *s == TaskState::Blocked, TaskState::Queued)?;
            }
            Event::RetryDue { task, continue_session } => {
                self.shift(kind, task, |s| matches!(s, TaskState::RetryWait { .. }), TaskState::Queued)?;
                if *continue_session {
                    self.agent_continue_asked(task);
                }
            }
            Event::TaskCancelled { task, reason } => {
                self.shift(kind, task, |s| !s.is_terminal(), TaskState::Cancelled { reason: reason.clone() })?;
            }
            Event::TaskSkipped { task, because } => {
                self.shift(kind, task, |s| *s == TaskState::Blocked, TaskState::Skipped { because: because.clone() })?;
            }
            Event::TaskRevived { task, .. } => {
                self.shift(kind, task, |s| s.name() == TaskStateName::Skipped, TaskState::Blocked)?;
                self.finished = false;
            }
            Event::TaskRequeued { task, continue_session, .. } => {
                self.requeue(kind, task)?;
                self.agent_requeued(task, *continue_session);
            }
            Event::PayloadEdited { task, payload } => self.edit_payload(kind, task, payload)?,
            Event::FallbackUsed { task, reason } => self.use_fallback(kind, task, reason)?,
            // The input guard's hold and the operator's answer (see `held`).
            Event::TaskHeld { task, finding } => self.hold(kind, task, finding)?,
            Event::TaskApproved { task } => self.approve(kind, task)?,
            Event::TaskRejected { task, reason, .. } => self.reject(kind, task, reason)?,
            // The DAG grows (see `grow`).
            Event::TasksSpawned { task, attempt, tasks, held } => self.spawn(kind, task, *attempt, tasks, held)?,
            Event::SpawnRefused { task, attempt, .. } => {
                self.running_attempt(kind, task, *attempt)?;
            }
            Event::TasksSubmitted { tasks, .. } => self.submit(tasks)?,
            // An attempt's life.
            Event::AttemptStarted { task, attempt, pool } => {
                self.start_attempt(kind, task, *attempt, pool, ts_ms)?;
                // A number handed back (interrupted) is started again: not where it ran.
                self.unplace_remote(task);
            }
            Event::AttemptSpawned { task, attempt, pid, worker, host, resumes } => {
                self.attempt_spawned(kind, task, *attempt, *pid)?;
                self.agent_spawned(task, *attempt, resumes.is_some());
                if let (Some(worker), Some(host)) = (worker, host) {
                    self.place_remote(task, *attempt, worker, host);
                }
            }
            Event::AttemptSucceeded { task, attempt, result, .. } => self.succeed(kind, task, *attempt, result)?,
            Event::AttemptFailed { task, attempt, class, error, then, .. } => {
                let (i, p) = self.failing_attempt(kind, task, *attempt)?;
                self.count_failure(i, p, *class, error, ts_ms);
                self.after_failure(kind, i, *attempt, then)?;
            }
            Event::AttemptInterrupted { task, attempt, .. } => {
                self.interrupt_attempt(kind, task, *attempt)?;
                self.agent_interrupted(task, *attempt);
            }
            Event::VoteCast { task, attempt, replica, worker, result, class, error, .. } => {
                let failure = class.map(|c| (c, error.as_deref().unwrap_or_default()));
                self.cast_vote(kind, task, *attempt, *replica, worker, result, failure, ts_ms)?
            }
            Event::ConsensusReached { task, attempt, winner, .. } => {
                self.note_consensus(kind, task, *attempt)?;
                self.note_winner(task, *winner);
            }
            Event::ConsensusFailed { task, attempt, .. } => self.note_consensus(kind, task, *attempt)?,
            // A result's gates.
            Event::GatePassed {
                task,
                attempt,
                index,
                kind: gate,
                reason,
                score,
                critique,
                duration_ms,
                reviewer_failures,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Passed;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, *score, critique, *duration_ms);
                self.pass_gate(i, *attempt, *index);
            }
            Event::GateFailed {
                task,
                attempt,
                index,
                kind: gate,
                error: reason,
                score,
                critique,
                duration_ms,
                reviewer_failures,
                then,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Failed;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, *score, critique, *duration_ms);
                self.fail_gate(kind, i, *attempt, reason, then)?;
            }
            Event::GateError {
                task,
                attempt,
                index,
                kind: gate,
                error: reason,
                duration_ms,
                reviewer_failures,
                then,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Error;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, None, &None, *duration_ms);
                self.fail_gate(kind, i, *attempt, reason, then)?;
            }
            Event::AttemptStalled { task, attempt, .. } => self.set_stalled(kind, task, *attempt, true)?,
            Event::AttemptActive { task, attempt } => self.set_stalled(kind, task, *attempt, false)?,
            Event::OutputCaptureFailed { task, attempt, stream, .. } => {
                self.capture_failed(kind, task, *attempt, *stream)?
            }
            // Pools and their breakers.
            Event::PoolPaused { pool } => self.pool_mut(pool)?.paused = true,
            Event::PoolResumed { pool } => self.pool_mut(pool)?.paused = false,
            Event::ConcurrencyChanged { pool, concurrency } => self.pool_mut(pool)?.concurrency = (*concurrency).max(1),
            Event::BreakerOpened { pool, until_ms, .. } => {
                self.pool_mut(pool)?.reset_breaker(Circuit::Open { until_ms: *until_ms });
            }
            Event::BreakerHalfOpened { pool } => {
                self.pool_mut(pool)?.breaker.circuit = Circuit::HalfOpen { probes_started: 0 };
            }
            Event::BreakerClosed { pool, .. } => self.pool_mut(pool)?.reset_breaker(Circuit::Closed),
        }
        // Any event may free the pool a waiting judge needs.
        self.seat_judges();
        Ok(())
    }
}
