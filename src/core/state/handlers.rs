//! The fold's handlers: one per kind of event (called by `apply`), and the one move
//! of a task between states they all use (`set_state`, which keeps the counts, the
//! queue, the pools' load and the readiness counts in step).

use std::sync::Arc;

use serde_json::Value;

use super::{count_slot, ApplyError, RunState};
use crate::core::event::{AfterFailure, FailureClass, OutputStream};
use crate::core::gates::{Verdict, VerdictKind};
use crate::core::json_text::JsonText;
use crate::core::task::{TaskState, TaskStateName};
use crate::core::workflow::{Fallback, GateKind};

/// The fold's handlers. Each one takes the event's `kind` (for its refusal), checks
/// the event fits, and only then changes the state.
impl RunState {
    /// Takes task `i`'s fallback: completed with its result, queued for its pool, or
    /// skipped; in every case marked degraded.
    pub(super) fn take_fallback(&mut self, i: usize, reason: &str, illegal: ApplyError) -> Result<(), ApplyError> {
        let fallback = self.workflow.tasks[i].fallback().cloned().ok_or(illegal.clone())?;
        if self.tasks[i].degraded {
            // A fallback is used once; a second one would loop.
            return Err(illegal);
        }
        self.tasks[i].degraded = true;
        self.tasks[i].last_error = Some(format!("fallback used: {reason}").into());
        match fallback {
            Fallback::Result(value) => {
                self.tasks[i].result = Some(JsonText::of(&value));
                self.set_state(i, TaskState::Completed { degraded: true });
            }
            Fallback::Pool(name) => {
                let p = self.pool_lookup(&name)?;
                self.set_pool_override(i, p);
                let t = &mut self.tasks[i];
                t.budget_start = t.attempts;
                self.set_state(i, TaskState::Queued);
            }
            Fallback::Skip => self.set_state(i, TaskState::Skipped { because: format!("fallback: {reason}") }),
        }
        Ok(())
    }

    pub(super) fn lookup(&self, id: &str) -> Result<usize, ApplyError> {
        self.task_index(id).ok_or_else(|| ApplyError::UnknownTask(id.to_string()))
    }

    pub(super) fn set_state(&mut self, i: usize, state: TaskState) {
        let old = self.tasks[i].state.name();
        let new = state.name();
        self.counts[count_slot(old)] -= 1;
        self.counts[count_slot(new)] += 1;
        if old == TaskStateName::Queued {
            if let Some(ticket) = self.tasks[i].queue_ticket.take() {
                self.queue.remove(&ticket);
            }
            for k in 0..self.pools_for(i).len() {
                let p = self.pools_for(i)[k];
                self.pools[p].queued -= 1;
            }
        }
        if let TaskState::Running { pool, .. } = &self.tasks[i].state {
            if let Some(p) = self.workflow.pool_index(pool) {
                self.pools[p].running -= 1;
            }
            self.running_total -= 1;
            self.release_seats(i);
        }
        if new == TaskStateName::Queued {
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.queue.insert(ticket, i);
            self.tasks[i].queue_ticket = Some(ticket);
            for k in 0..self.pools_for(i).len() {
                let p = self.pools_for(i)[k];
                self.pools[p].queued += 1;
            }
        }
        if let TaskState::Running { pool, .. } = &state {
            if let Some(p) = self.workflow.pool_index(pool) {
                self.pools[p].running += 1;
            }
            self.running_total += 1;
        }
        self.tasks[i].state = state;
        self.restand(i);
    }

    /// The refusal of an event of `kind` for task `i` in its current state.
    pub(super) fn illegal(&self, kind: &'static str, i: usize) -> ApplyError {
        ApplyError::Illegal { event: kind, task: self.task_id(i).to_string(), state: self.tasks[i].state.name() }
    }

    /// Task `id`'s index, when its state `fits` an event of `kind`.
    pub(super) fn task_where(
        &self,
        kind: &'static str,
        id: &str,
        fits: impl FnOnce(&TaskState) -> bool,
    ) -> Result<usize, ApplyError> {
        let i = self.lookup(id)?;
        if fits(&self.tasks[i].state) {
            Ok(i)
        } else {
            Err(self.illegal(kind, i))
        }
    }

    /// Task `id`'s index, when `attempt` is the attempt it is running.
    pub(super) fn running_attempt(&self, kind: &'static str, id: &str, attempt: u32) -> Result<usize, ApplyError> {
        self.task_where(kind, id, |s| matches!(s, TaskState::Running { attempt: a, .. } if *a == attempt))
    }

    /// Moves task `id` to state `to`, when its state `fits` an event of `kind`.
    pub(super) fn shift(
        &mut self,
        kind: &'static str,
        id: &str,
        fits: impl FnOnce(&TaskState) -> bool,
        to: TaskState,
    ) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, fits)?;
        self.set_state(i, to);
        Ok(())
    }

    /// `task_requeued`: a dead-lettered or cancelled task starts over with a fresh
    /// attempt budget, queued, or blocked while a dependency is unfinished.
    pub(super) fn requeue(&mut self, kind: &'static str, id: &str) -> Result<(), ApplyError> {
        let i =
            self.task_where(kind, id, |s| matches!(s.name(), TaskStateName::DeadLettered | TaskStateName::Cancelled))?;
        let t = &mut self.tasks[i];
        t.budget_start = t.attempts;
        t.crashes = 0;
        t.deferrals = 0;
        t.result = None;
        t.degraded = false;
        if t.pool_override().is_some() {
            t.links_mut().pool_override = None;
        }
        let ready = self.unsatisfied_dependencies(i) == 0;
        self.set_state(i, if ready { TaskState::Queued } else { TaskState::Blocked });
        self.finished = false;
        Ok(())
    }

    /// `payload_edited`: refused while an attempt runs, which already has its payload
    /// (edit before a retry).
    pub(super) fn edit_payload(&mut self, kind: &'static str, id: &str, payload: &Value) -> Result<(), ApplyError> {
        let i =
            self.task_where(kind, id, |s| !matches!(s, TaskState::Running { .. } | TaskState::Validating { .. }))?;
        self.tasks[i].payload = Some(JsonText::of(payload));
        Ok(())
    }

    /// `fallback_used`: a queued task takes its fallback.
    pub(super) fn use_fallback(&mut self, kind: &'static str, id: &str, reason: &str) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, |s| *s == TaskState::Queued)?;
        let refused = self.illegal(kind, i);
        self.take_fallback(i, reason, refused)
    }

    /// `attempt_started`: queued → running on `pool`; a half-open breaker counts the probe.
    pub(super) fn start_attempt(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        pool: &str,
        ts_ms: u64,
    ) -> Result<(), ApplyError> {
        // Lookups before the state check, so an unknown pool is reported as such.
        let i = self.lookup(id)?;
        let p = self.pool_lookup(pool)?;
        if self.tasks[i].state != TaskState::Queued {
            return Err(self.illegal(kind, i));
        }
        self.tasks[i].attempts = attempt;
        self.tasks[i].pool = Some(self.graph.pool_name(p).unwrap_or_else(|| Arc::from(pool)));
        if self.pools_for(i).len() > 1 {
            self.rr_cursor = p + 1;
        }
        self.pools[p].count_probe();
        self.set_state(i, TaskState::running(attempt, pool.to_string(), ts_ms));
        self.seat_replicas(i, p);
        Ok(())
    }

    /// `attempt_spawned`: the running attempt has a process; resource deferrals are over.
    pub(super) fn attempt_spawned(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        pid: u32,
    ) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        match &mut self.tasks[i].state {
            TaskState::Running { attempt: a, process, .. } if *a == attempt => *process = Some(pid),
            _ => return Err(self.illegal(kind, i)),
        }
        self.tasks[i].deferrals = 0;
        Ok(())
    }

    /// `output_capture_failed`: a note on an attempt that was started (it changes no
    /// state; the warning is kept with the task).
    pub(super) fn capture_failed(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        stream: OutputStream,
    ) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        if attempt == 0 || attempt > self.tasks[i].attempts {
            return Err(self.illegal(kind, i));
        }
        let failures = &mut self.tasks[i].capture_failures;
        if !failures.contains(&(attempt, stream)) {
            failures.push((attempt, stream));
        }
        Ok(())
    }

    /// `attempt_succeeded`: running → completed with its result (degraded if a
    /// fallback pool ran it), or → validating when the task has gates (the result is
    /// kept, and counts once the last gate passes).
    pub(super) fn succeed(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        result: &Value,
    ) -> Result<(), ApplyError> {
        let i = self.running_attempt(kind, id, attempt)?;
        self.tasks[i].result = Some(JsonText::of(result));
        self.tasks[i].crashes = 0;
        if self.workflow.tasks[i].gates().is_empty() {
            let degraded = self.tasks[i].degraded;
            self.set_state(i, TaskState::Completed { degraded });
        } else {
            self.set_state(i, TaskState::Validating { attempt, gate: 0 });
        }
        Ok(())
    }

    /// Task `id`'s index, when it is validating `attempt` at gate `index`.
    pub(super) fn validating(
        &self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        index: usize,
    ) -> Result<usize, ApplyError> {
        self.task_where(
            kind,
            id,
            |s| matches!(s, TaskState::Validating { attempt: a, gate } if *a == attempt && *gate == index),
        )
    }

    /// Keeps a gate's verdict with the task (its next attempts' `feedback`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_verdict(
        &mut self,
        i: usize,
        attempt: u32,
        index: usize,
        kind: GateKind,
        verdict: VerdictKind,
        reason: &str,
        score: Option<u8>,
        critique: &Option<String>,
        duration_ms: u64,
    ) {
        // A verdict ends the gate that was in flight: a row of crashes is broken (the
        // poison pill's own `gate_error` ends the task, whose requeue starts a new row).
        self.tasks[i].crashes = 0;
        self.tasks[i].verdicts.push(Verdict {
            attempt,
            index,
            kind,
            verdict,
            reason: reason.to_string(),
            score,
            critique: critique.clone(),
            duration_ms,
        });
    }

    /// `gate_passed`: on to the next gate, or completed after the last one.
    pub(super) fn pass_gate(&mut self, i: usize, attempt: u32, index: usize) {
        if index + 1 < self.workflow.tasks[i].gates().len() {
            self.set_state(i, TaskState::Validating { attempt, gate: index + 1 });
        } else {
            let degraded = self.tasks[i].degraded;
            self.set_state(i, TaskState::Completed { degraded });
        }
    }

    /// `gate_failed` / `gate_error`: a failed attempt. The result does not count; the
    /// worker's pool is not blamed (its breaker counts agents that fail to answer, not
    /// answers that fail a check).
    pub(super) fn fail_gate(
        &mut self,
        kind: &'static str,
        i: usize,
        attempt: u32,
        reason: &str,
        then: &AfterFailure,
    ) -> Result<(), ApplyError> {
        if matches!(then, AfterFailure::Defer { .. }) {
            // A gate's verdict is never "not the task's fault".
            return Err(self.illegal(kind, i));
        }
        self.tasks[i].result = None;
        self.tasks[i].last_error = Some(reason.into());
        self.after_failure(kind, i, attempt, then)
    }

    /// For `attempt_failed`: the failing task's index and the pool its attempt ran on.
    pub(super) fn failing_attempt(
        &self,
        kind: &'static str,
        id: &str,
        attempt: u32,
    ) -> Result<(usize, usize), ApplyError> {
        let i = self.lookup(id)?;
        match &self.tasks[i].state {
            TaskState::Running { attempt: a, pool, .. } if *a == attempt => Ok((i, self.pool_lookup(pool)?)),
            _ => Err(self.illegal(kind, i)),
        }
    }

    /// Records task `i`'s failure on pool `p`: the pool's breaker counts it (unless it
    /// says nothing about the pool), and a manager crash counts towards a poison pill.
    pub(super) fn count_failure(&mut self, i: usize, p: usize, class: FailureClass, error: &str, ts_ms: u64) {
        if class.counts_against_pool() {
            let policy = self.workflow.pools[p].breaker;
            self.pools[p].breaker.count_failure(policy.as_ref(), ts_ms);
        }
        self.tasks[i].last_error = Some(error.into());
        // A crash was counted when the next manager started (`count_crash`); any other
        // end of an attempt breaks a row of crashes.
        if !matches!(class, FailureClass::ManagerCrashed | FailureClass::WorkerLost) {
            self.tasks[i].crashes = 0;
        }
    }

    /// `manager_started`: every attempt still running (or result still validating)
    /// was in flight when the last manager died without recording its end; each such
    /// task counts one crash in a row towards the poison pill. Counted here, not from the event that then ends
    /// the attempt, so logs of older versions (which recorded `attempt_failed`,
    /// `manager_crashed`) and newer ones (`attempt_interrupted`) count alike.
    pub(super) fn count_crash(&mut self) {
        // By index, so that only the tasks in flight are written (a write copies the
        // task's chunk if a checkpoint shares it).
        for i in 0..self.tasks.len() {
            if matches!(self.tasks[i].state, TaskState::Running { .. } | TaskState::Validating { .. }) {
                self.tasks[i].crashes += 1;
            }
        }
    }

    /// Where task `i` goes after its failed `attempt`, as `then` decided.
    pub(super) fn after_failure(
        &mut self,
        kind: &'static str,
        i: usize,
        attempt: u32,
        then: &AfterFailure,
    ) -> Result<(), ApplyError> {
        let next = match then {
            AfterFailure::Retry { due_ms, .. } => TaskState::RetryWait { due_ms: *due_ms },
            AfterFailure::Defer { due_ms, .. } => {
                // Not the task's fault: the attempt is handed back.
                self.tasks[i].attempts = attempt.saturating_sub(1);
                self.tasks[i].deferrals += 1;
                TaskState::RetryWait { due_ms: *due_ms }
            }
            AfterFailure::DeadLetter { reason } => TaskState::DeadLettered { reason: reason.clone() },
            AfterFailure::Fallback { reason } => {
                let refused = self.illegal(kind, i);
                return self.take_fallback(i, reason, refused);
            }
        };
        self.set_state(i, next);
        Ok(())
    }

    /// `attempt_interrupted`: running → queued, and the attempt is handed back.
    pub(super) fn interrupt_attempt(&mut self, kind: &'static str, id: &str, attempt: u32) -> Result<(), ApplyError> {
        let i = self.running_attempt(kind, id, attempt)?;
        self.tasks[i].attempts = attempt.saturating_sub(1);
        self.set_state(i, TaskState::Queued);
        Ok(())
    }

    /// `attempt_stalled` (`now_stalled`) or `attempt_active`: the running attempt's flag.
    pub(super) fn set_stalled(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        now_stalled: bool,
    ) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        match &mut self.tasks[i].state {
            TaskState::Running { attempt: a, stalled, .. } if *a == attempt => *stalled = now_stalled,
            _ => return Err(self.illegal(kind, i)),
        }
        Ok(())
    }
}
