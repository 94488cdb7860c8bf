//! What one input means: the events it calls for, before their consequences are
//! followed through the graph ([`super::step`] applies them and cascades). Stale
//! inputs (a late word from an attempt no longer running, a replaced timer) and
//! requests for what already holds call for none.

use super::{Input, Outcome, StepContext, CRASH_LIMIT};
use crate::core::backoff;
use crate::core::breaker::Circuit;
use crate::core::event::{
    AfterFailure, BrokerDown, BrokerUp, Event, FailureClass, ResultDuplicate, SmallOutput, WorkerLost,
};
use crate::core::gates::{error_reason, failed_reason, GateOutcome};
use crate::core::hold;
use crate::core::spawn;
use crate::core::state::{PoolState, RunState};
use crate::core::task::{TaskState, TaskStateName};
use crate::core::workflow::Limit;

/// The events one input calls for, before their consequences: none when the input
/// is stale (a late word from an attempt that is no longer running, a timer that was
/// replaced) or asks for what already holds.
pub(super) fn decide(state: &RunState, input: Input, ctx: StepContext) -> Vec<Event> {
    let event = match input {
        Input::Start { pid, version, resumed } => return take_over(state, pid, version, resumed, ctx),
        // The run as a whole. A finished run has nothing to interrupt: closing it
        // records nothing.
        Input::Interrupt { reason } => {
            (!state.interrupted && !state.finished).then_some(Event::RunInterrupted { reason })
        }
        // An operator's raise, checked as `ctl` checks it first (`raise_budget`).
        Input::RaiseBudget { max_cost_usd, task_cost_usd, source } => {
            super::budget::raise(state, max_cost_usd, task_cost_usd, source).ok()
        }
        // What the running attempt reports.
        Input::Spawned { task, attempt, pid, worker } => running(state, &task, attempt).map(|_| {
            let (worker, host) = worker.map(|w| (w.id, w.host)).unzip();
            let resumes = state.task_index(&task).and_then(|i| state.session_to_resume(i)).map(str::to_string);
            Event::AttemptSpawned { task, attempt, pid, worker, host, resumes }
        }),
        // Broker mode (DESIGN §7; see `decide/remote.rs`).
        Input::WorkerLost { task, attempt, worker, reason, started } => {
            return super::remote::worker_lost(state, task, attempt, worker, reason, started, ctx);
        }
        Input::BrokerDown { broker, reason } => {
            (!state.remote.is_down()).then_some(Event::BrokerDown(BrokerDown { broker, reason }))
        }
        Input::BrokerUp { broker, down_ms, republished } => {
            state.remote.is_down().then_some(Event::BrokerUp(BrokerUp { broker, down_ms, republished }))
        }
        Input::WorkerSeen(seen) => state.remote.is_news(&seen).then_some(Event::WorkerRegistered(seen)),
        Input::WorkerGone { pool, worker, reason } => {
            state.remote.is_present(&worker).then_some(Event::WorkerLost(WorkerLost {
                pool,
                worker,
                task: None,
                attempt: None,
                started: false,
                reason,
            }))
        }
        // Always recorded (the exactly-once check is the caller's `running` test);
        // the run state ignores it.
        Input::ResultDuplicate { task, attempt, worker, reason } => (state.task_index(&task).is_some())
            .then_some(Event::ResultDuplicate(ResultDuplicate { task, attempt, worker, reason })),
        Input::Finished { task, attempt, outcome } => {
            running(state, &task, attempt).map(|i| ended(state, i, task, attempt, outcome, ctx))
        }
        Input::Planned { task, attempt, outcome, spawn } => {
            let Some(i) = running(state, &task, attempt) else { return Vec::new() };
            return planned(state, i, task, attempt, outcome, spawn, ctx);
        }
        Input::Stall { task, attempt, quiet_ms } => {
            running(state, &task, attempt).and_then(|i| stall(state, i, task, attempt, quiet_ms))
        }
        Input::GateDone { task, attempt, index, outcome, duration_ms } => {
            let done = GateDone { attempt, index, outcome, duration_ms, reviewer_failures: Vec::new() };
            at_gate(state, &task, attempt, index).and_then(|i| gate_done(state, i, done, ctx))
        }
        Input::ReviewDone { task, attempt, index, outcome, duration_ms, reviewer_failures } => {
            let done = GateDone { attempt, index, outcome, duration_ms, reviewer_failures };
            at_gate(state, &task, attempt, index).and_then(|i| gate_done(state, i, done, ctx))
        }
        Input::AttemptStopped { task, attempt, reason } => {
            running(state, &task, attempt).map(|_| Event::AttemptInterrupted { task, attempt, reason })
        }
        // Taken by `consensus::step` before this.
        Input::ReplicaFinished { .. } | Input::JudgeFinished { .. } => None,
        // A task's timer and the operator's commands on a task.
        Input::RetryTimer { task, due_ms } => {
            let due = |s: &TaskState| matches!(s, TaskState::RetryWait { due_ms: d } if *d == due_ms);
            task_where(state, &task, due).map(|_| Event::RetryDue { task, continue_session: false })
        }
        Input::Cancel { task, reason } => {
            task_where(state, &task, |s| !s.is_terminal()).map(|_| Event::TaskCancelled { task, reason })
        }
        Input::Requeue { task, reason } => {
            let ended = |s: &TaskState| matches!(s.name(), TaskStateName::DeadLettered | TaskStateName::Cancelled);
            task_where(state, &task, ended).map(|_| Event::TaskRequeued { task, reason, continue_session: false })
        }
        Input::ContinueSession { task, reason } => {
            let i = state.task_index(&task).filter(|&i| state.agent_session(i).is_some());
            match i.map(|i| &state.tasks[i].state) {
                Some(TaskState::DeadLettered { .. } | TaskState::Cancelled { .. }) => {
                    Some(Event::TaskRequeued { task, reason, continue_session: true })
                }
                Some(TaskState::RetryWait { .. }) => Some(Event::RetryDue { task, continue_session: true }),
                _ => None,
            }
        }
        Input::Approve { task } => hold::answer(state, task, hold::Answer::Approve),
        Input::Reject { task, reason } => hold::reject(state, task, reason),
        // Checked against the run; a refused submit records nothing (the front end
        // asks `spawn::submit_refusal` for the reason first).
        Input::Submit { tasks, source } => {
            spawn::submit_refusal(state, &tasks).is_none().then_some(Event::TasksSubmitted { source, tasks })
        }
        // Only a payload some attempt will still use, and only a change: a completed
        // task never runs again, and the same payload again is no edit.
        Input::EditPayload { task, payload } => {
            let editable = |s: &TaskState| {
                !matches!(s, TaskState::Running { .. } | TaskState::Validating { .. } | TaskState::Completed { .. })
            };
            task_where(state, &task, editable)
                .filter(|&i| !payload_unchanged(state, i, &payload))
                .map(|_| Event::PayloadEdited { task, payload })
        }
        // A pool's breaker timer and the operator's commands on a pool.
        Input::BreakerTimer { pool, until_ms } => {
            let due = |p: &PoolState| p.breaker.circuit == (Circuit::Open { until_ms: Some(until_ms) });
            pool_where(state, &pool, due).map(|_| Event::BreakerHalfOpened { pool })
        }
        Input::BreakerReset { pool } => pool_where(state, &pool, |p| p.breaker.circuit != Circuit::Closed)
            .map(|_| Event::BreakerClosed { pool, reason: "reset by an operator".into() }),
        Input::BreakerTrip { pool } => pool_where(state, &pool, |p| !p.breaker.is_open()).map(|p| {
            let until_ms = state.workflow.pools[p].breaker.map(|b| ctx.now_ms.saturating_add(b.cooldown_ms));
            Event::BreakerOpened { pool, until_ms, reason: "tripped by an operator".into() }
        }),
        Input::PausePool { pool } => pool_where(state, &pool, |p| !p.paused).map(|_| Event::PoolPaused { pool }),
        Input::ResumePool { pool } => pool_where(state, &pool, |p| p.paused).map(|_| Event::PoolResumed { pool }),
        Input::SetConcurrency { pool, concurrency } => {
            // The same range a workflow's `concurrency` has (an operator's number is
            // checked like a file's).
            let in_range = (1..=Limit::Concurrency.max()).contains(&(concurrency as u64));
            let changes = |p: &PoolState| in_range && p.concurrency != concurrency;
            pool_where(state, &pool, changes).map(|_| Event::ConcurrencyChanged { pool, concurrency })
        }
    };
    event.into_iter().collect()
}

/// True when `payload` is what task `i` would run with already (its edited payload,
/// else the workflow's): recording it again would change nothing.
pub fn payload_unchanged(state: &RunState, i: usize, payload: &serde_json::Value) -> bool {
    let spec = &state.workflow.tasks[i].payload;
    state.tasks[i].payload().unwrap_or(spec).value() == *payload
}

/// The index of task `id` while it runs `attempt`.
pub(super) fn running(state: &RunState, id: &str, attempt: u32) -> Option<usize> {
    task_where(state, id, |s| matches!(s, TaskState::Running { attempt: a, .. } if *a == attempt))
}

/// The index of task `id` when its state `fits`.
fn task_where(state: &RunState, id: &str, fits: impl FnOnce(&TaskState) -> bool) -> Option<usize> {
    state.task_index(id).filter(|&i| fits(&state.tasks[i].state))
}

/// The index of pool `name` when its live state `fits`.
fn pool_where(state: &RunState, name: &str, fits: impl FnOnce(&PoolState) -> bool) -> Option<usize> {
    state.workflow.pool_index(name).filter(|&p| fits(&state.pools[p]))
}

/// A manager takes the run over. Attempts still running in the log were in flight
/// when the last manager died without recording their end (killed, out of disk, the
/// machine lost): that is the manager's trouble, not the task's, so each attempt is
/// handed back (`attempt_interrupted`, "manager crashed") without spending the task's
/// budget. The one exception is the poison pill: a task in flight at [`CRASH_LIMIT`]
/// such deaths in a row may be what kills the manager, and is dead-lettered. A
/// validating task is in flight too (its gate runs again on resume, so a gate that
/// kills the manager would otherwise run forever): it counts alike, and its poison
/// pill is a `gate_error` naming the gate. A broker run's remote attempts are the
/// other exception: they outlive the manager on their workers, so they stay running
/// (the crash still counts toward the poison pill) and are re-attached.
fn take_over(state: &RunState, pid: u32, version: String, resumed: bool, ctx: StepContext) -> Vec<Event> {
    let mut events = vec![Event::ManagerStarted { pid, version, resumed }];
    for (i, task) in state.tasks.iter().enumerate() {
        if let TaskState::Validating { attempt, gate } = task.state {
            // Applying `manager_started` counts this crash (RunState::apply).
            if task.crashes + 1 >= CRASH_LIMIT {
                events.extend(poisoned_gate(state, i, attempt, gate));
            }
            continue;
        }
        let TaskState::Running { attempt, started_ms, round, .. } = &task.state else { continue };
        // Applying `manager_started` counts this crash (RunState::apply).
        let poisoned = task.crashes + 1 >= CRASH_LIMIT;
        // A broker run's attempt lives on its remote worker, not in the dead manager:
        // it stays running and the engine waits for its result again (a result the
        // worker wrote meanwhile sits in the results stream). Replica rounds are the
        // manager's own bookkeeping and are handed back as before.
        if !poisoned && round.is_none() && state.workflow.broker.is_some() {
            continue;
        }
        if poisoned {
            events.push(Event::AttemptFailed {
                task: state.task_id(i).to_string(),
                attempt: *attempt,
                class: FailureClass::ManagerCrashed,
                error: "manager crashed".to_string(),
                exit_code: None,
                signal: None,
                duration_ms: ctx.now_ms.saturating_sub(*started_ms),
                output: SmallOutput::default(),
                then: AfterFailure::DeadLetter {
                    reason: format!("poison pill: in flight during {CRASH_LIMIT} manager crashes in a row"),
                },
            });
        } else {
            events.push(Event::AttemptInterrupted {
                task: state.task_id(i).to_string(),
                attempt: *attempt,
                reason: "manager crashed".to_string(),
            });
        }
    }
    events
}

/// The `gate_error` that dead-letters task `i`, validating `attempt` at gate `index`
/// during [`CRASH_LIMIT`] manager crashes in a row (None when the workflow has no
/// such gate). The gate never reported, so it spent no time the log knows of.
fn poisoned_gate(state: &RunState, i: usize, attempt: u32, index: usize) -> Option<Event> {
    let kind = state.workflow.tasks[i].gates().get(index)?.kind();
    let why = format!("poison pill: in flight during {CRASH_LIMIT} manager crashes in a row");
    let reason = error_reason(index, kind, &why);
    Some(Event::GateError {
        task: state.task_id(i).to_string(),
        attempt,
        index,
        kind,
        error: reason.clone(),
        duration_ms: 0,
        reviewer_failures: Vec::new(),
        then: AfterFailure::DeadLetter { reason },
    })
}

/// The end of task `i`'s running attempt: its result, or its failure with what
/// follows decided.
pub(super) fn ended(
    state: &RunState,
    i: usize,
    task: String,
    attempt: u32,
    outcome: Outcome,
    ctx: StepContext,
) -> Event {
    match outcome {
        Outcome::Success { result, exit_code, duration_ms, output } => {
            Event::AttemptSucceeded { task, attempt, result, exit_code, duration_ms, output }
        }
        failure => failed(state, i, attempt, failure, ctx),
    }
}

/// The end of planner task `i`'s running attempt: a success with subtasks records
/// them (`tasks_spawned`) just before its result, so that its dependents wait for
/// them before it completes; a spawn that cannot be taken is recorded
/// (`spawn_refused`) and fails the attempt (class `worker`: the planner's next attempt
/// may plan better, and its pool's breaker is not told, since the agent did answer).
fn planned(
    state: &RunState,
    i: usize,
    task: String,
    attempt: u32,
    outcome: Outcome,
    spawn: Result<Vec<crate::core::workflow::TaskSpec>, String>,
    ctx: StepContext,
) -> Vec<Event> {
    let Outcome::Success { exit_code, duration_ms, output, .. } = &outcome else {
        return vec![ended(state, i, task, attempt, outcome, ctx)];
    };
    let refused = match spawn.and_then(|tasks| match tasks.is_empty() {
        true => Ok(None),
        false => spawn::spawned(state, i, attempt, &tasks),
    }) {
        Ok(None) => return vec![ended(state, i, task, attempt, outcome, ctx)],
        Ok(Some(event)) => return vec![event, ended(state, i, task, attempt, outcome, ctx)],
        Err(reason) => reason,
    };
    let failure = Outcome::Failure {
        class: FailureClass::Worker,
        error: format!("spawn refused: {refused}"),
        exit_code: *exit_code,
        signal: None,
        duration_ms: *duration_ms,
        output: output.clone(),
    };
    let note = Event::SpawnRefused { task: task.clone(), attempt, reason: refused };
    vec![note, failed(state, i, attempt, failure, ctx)]
}

/// Task `i`'s running attempt went quiet (`quiet_ms`) or printed again (`None`): an
/// event only when that changes its stalled flag.
fn stall(state: &RunState, i: usize, task: String, attempt: u32, quiet_ms: Option<u64>) -> Option<Event> {
    match (quiet_ms, state.tasks[i].state.is_stalled()) {
        (Some(quiet_ms), false) => Some(Event::AttemptStalled { task, attempt, quiet_ms }),
        (None, true) => Some(Event::AttemptActive { task, attempt }),
        _ => None,
    }
}

/// The index of task `id` while it validates `attempt` at gate `index`.
pub(super) fn at_gate(state: &RunState, id: &str, attempt: u32, index: usize) -> Option<usize> {
    task_where(
        state,
        id,
        |s| matches!(s, TaskState::Validating { attempt: a, gate } if *a == attempt && *gate == index),
    )
}

/// A gate's end, as [`Input::GateDone`] or [`Input::ReviewDone`] report it.
struct GateDone {
    attempt: u32,
    index: usize,
    outcome: GateOutcome,
    duration_ms: u64,
    reviewer_failures: Vec<FailureClass>,
}

/// The verdict event of task `i`'s gate (None when the workflow has no such gate).
fn gate_done(state: &RunState, i: usize, done: GateDone, ctx: StepContext) -> Option<Event> {
    let GateDone { attempt, index, outcome, duration_ms, reviewer_failures } = done;
    let kind = state.workflow.tasks[i].gates().get(index)?.kind();
    let task = state.task_id(i).to_string();
    Some(match outcome {
        GateOutcome::Passed { reason, score, critique } => {
            Event::GatePassed { task, attempt, index, kind, reason, score, critique, duration_ms, reviewer_failures }
        }
        GateOutcome::Failed { reason, score, critique } => {
            let reason = failed_reason(index, kind, &reason);
            let then = after(state, i, attempt, FailureClass::Worker, &reason, None, ctx);
            let error = reason;
            Event::GateFailed {
                task,
                attempt,
                index,
                kind,
                error,
                score,
                critique,
                duration_ms,
                reviewer_failures,
                then,
            }
        }
        GateOutcome::Error { reason } => {
            let reason = error_reason(index, kind, &reason);
            let then = after(state, i, attempt, FailureClass::Worker, &reason, None, ctx);
            Event::GateError { task, attempt, index, kind, error: reason, duration_ms, reviewer_failures, then }
        }
    })
}

/// The `attempt_failed` event for a failure, with what follows decided.
pub(super) fn failed(state: &RunState, i: usize, attempt: u32, outcome: Outcome, ctx: StepContext) -> Event {
    let Outcome::Failure { class, error, exit_code, signal, duration_ms, output } = outcome else {
        unreachable!("failed() is only called with failures")
    };
    let then = after(state, i, attempt, class, &error, exit_code, ctx);
    Event::AttemptFailed {
        task: state.task_id(i).to_string(),
        attempt,
        class,
        error,
        exit_code,
        signal,
        duration_ms,
        output,
        then,
    }
}

/// What follows task `i`'s failed `attempt` (a worker's failure or a gate's): a retry
/// after backoff, a deferral, the fallback, or the dead-letter queue.
fn after(
    state: &RunState,
    i: usize,
    attempt: u32,
    class: FailureClass,
    error: &str,
    exit_code: Option<i32>,
    ctx: StepContext,
) -> AfterFailure {
    let task = &state.tasks[i];
    let policy = &state.workflow.tasks[i].retry;
    let used = attempt.saturating_sub(task.budget_start);
    let spec = &state.workflow.tasks[i];
    // Attempts are over: the fallback if the task has one (and has not used it), else
    // the dead-letter queue.
    let give_up = |reason: String| {
        if spec.fallback().is_some() && !task.degraded {
            AfterFailure::Fallback { reason }
        } else {
            AfterFailure::DeadLetter { reason }
        }
    };
    let never = exit_code.filter(|c| class == FailureClass::Worker && spec.never_on().contains(c));
    match class {
        FailureClass::SpawnPermanent => give_up(format!("cannot start: {error}")),
        // A task that spent its budget is not retried, nor handed to its fallback
        // (which would spend from the same budget): DESIGN §13.
        _ if super::budget::task_spent(state, i).is_some() => AfterFailure::DeadLetter {
            reason: format!("{}: {error}", super::budget::task_spent(state, i).unwrap_or_default()),
        },
        _ if never.is_some() => give_up(format!("{error} (exit code {} is never retried)", never.unwrap_or_default())),
        FailureClass::SpawnResource => {
            let delay_ms = backoff::delay_ms(policy, task.deferrals + 1, ctx.jitter);
            AfterFailure::Defer { delay_ms, due_ms: ctx.now_ms.saturating_add(delay_ms) }
        }
        _ if used >= policy.max_attempts => {
            give_up(format!("attempts spent ({used}/{}): {error}", policy.max_attempts))
        }
        _ => {
            let delay_ms = backoff::delay_ms(policy, used, ctx.jitter);
            AfterFailure::Retry { delay_ms, due_ms: ctx.now_ms.saturating_add(delay_ms) }
        }
    }
}
