//! What a lost remote worker means for the attempt it held (DESIGN §5, §7): like a
//! manager crash, it is never charged to the task: the attempt is interrupted and
//! queued again under the same number. The one exception is the poison pill: a task
//! whose attempt was started at [`CRASH_LIMIT`] lost managers or workers in a row may
//! be what kills them, and is dead-lettered.

use super::{StepContext, CRASH_LIMIT};
use crate::core::event::{AfterFailure, Event, FailureClass, SmallOutput, WorkerLost, WorkerRef};
use crate::core::state::RunState;
use crate::core::task::TaskState;

/// The poison pill's words, shared with a manager crash's count.
pub(super) fn poison_reason() -> String {
    format!("poison pill: in flight during {CRASH_LIMIT} lost managers or workers in a row")
}

/// `worker_lost` for `task`'s `attempt`, then, when that attempt is still running,
/// its end: `attempt_interrupted` ("worker lost (HOST)"), or the poison pill's
/// `attempt_failed`. A stale loss (the attempt ended, a newer one runs) records only
/// `worker_lost`; an unknown task records nothing.
pub(super) fn worker_lost(
    state: &RunState,
    task: String,
    attempt: u32,
    worker: WorkerRef,
    reason: String,
    started: bool,
    ctx: StepContext,
) -> Vec<Event> {
    let Some(i) = state.task_index(&task) else { return Vec::new() };
    let running = match &state.tasks[i].state {
        TaskState::Running { attempt: a, pool, started_ms, .. } if *a == attempt => Some((pool.clone(), *started_ms)),
        _ => None,
    };
    // The pool: the attempt's, else the worker's registration, else the task's own.
    let pool =
        running.as_ref().map(|(p, _)| p.clone()).or_else(|| state.remote.pool_of(&worker.id).map(str::to_string));
    let pool = pool.or_else(|| state.workflow.tasks[i].pool.clone()).unwrap_or_default();
    let lost = WorkerLost {
        pool,
        worker: worker.id,
        task: Some(task.clone()),
        attempt: Some(attempt),
        started: started && running.is_some(),
        reason,
    };
    let mut events = vec![Event::WorkerLost(lost)];
    let Some((_, started_ms)) = running else { return events };
    let why = format!("worker lost ({})", worker.host);
    // Applying `worker_lost` counts this loss when the attempt had started.
    if started && state.tasks[i].crashes + 1 >= CRASH_LIMIT {
        events.push(Event::AttemptFailed {
            task,
            attempt,
            class: FailureClass::WorkerLost,
            error: why,
            exit_code: None,
            signal: None,
            duration_ms: ctx.now_ms.saturating_sub(started_ms),
            output: SmallOutput::default(),
            then: AfterFailure::DeadLetter { reason: poison_reason() },
        });
    } else {
        events.push(Event::AttemptInterrupted { task, attempt, reason: why });
    }
    events
}
