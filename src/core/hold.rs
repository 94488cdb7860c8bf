//! Decisions of the input guard (DESIGN §9): when a guarded task is ready to run,
//! its payload and its dependencies' results are inspected
//! ([`crate::core::checks::guard::inspect_input`]); a hit holds it (`task_held`) and
//! no process starts for it until an operator approves it. An approved task is not
//! checked again; a rejected one ends `cancelled` with the finding.
//!
//! `input_guard` is set on a pool or a task; the task's own setting wins. A task
//! that may run on several pools is guarded when any of them is, because the check
//! happens before a pool is chosen.

use serde_json::Value;

use super::checks::guard::inspect_input;
use super::event::Event;
use super::state::RunState;
use super::task::{TaskState, TaskStateName};

pub use super::state::finding_text;

/// True when task `i` is inspected before it is dispatched.
pub fn guarded(state: &RunState, i: usize) -> bool {
    let wf = &state.workflow;
    wf.tasks[i].input_guard().unwrap_or_else(|| state.pools_for(i).iter().any(|&p| wf.pools[p].input_guard))
}

/// Task `i`'s inputs as its worker would get them: each dependency's result by id.
pub fn inputs(state: &RunState, i: usize) -> Value {
    Value::Object(super::spawn::inputs(state, i))
}

/// `task_held` for task `i` when it is queued, guarded, not yet approved, and its
/// payload or inputs hold a prompt-injection shape; otherwise nothing.
pub fn check(state: &RunState, i: usize) -> Option<Event> {
    let task = &state.tasks[i];
    if task.state != TaskState::Queued || task.approved() || !guarded(state, i) {
        return None;
    }
    let payload = task.payload().unwrap_or(&state.workflow.tasks[i].payload).value();
    let finding = inspect_input(&payload, &inputs(state, i))?;
    Some(Event::TaskHeld { task: state.task_id(i).to_string(), finding })
}

/// Which operator answer to a held task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Let it run.
    Approve,
    /// Cancel it.
    Reject,
}

impl Answer {
    /// "approve" or "reject", as the palette spells it.
    pub fn verb(self) -> &'static str {
        match self {
            Answer::Approve => "approve",
            Answer::Reject => "reject",
        }
    }
}

/// Why an operator's answer for task `id` cannot be taken (unknown task, or not held),
/// in words a front end shows; `None` when it can.
pub fn refusal(state: &RunState, id: &str, answer: Answer) -> Option<String> {
    let Some(i) = state.task_index(id) else {
        return Some(format!("cannot {} {id:?}: no such task", answer.verb()));
    };
    match &state.tasks[i].state {
        TaskState::AwaitingApproval { .. } => None,
        other => Some(format!(
            "cannot {} {id:?}: it is {}, and only a task held for approval can be {}d",
            answer.verb(),
            other.name(),
            answer.verb()
        )),
    }
}

/// The event an operator's answer records for task `id`, or none when it is refused
/// (see [`refusal`]).
pub fn answer(state: &RunState, id: String, answer: Answer) -> Option<Event> {
    match answer {
        Answer::Approve => refusal(state, &id, answer).is_none().then_some(Event::TaskApproved { task: id }),
        Answer::Reject => reject(state, id, None),
    }
}

/// The `task_rejected` an operator's rejection of task `id` records, with their own
/// words when they gave some (kept as given in `operator_reason`, and in the reason
/// every front end shows); none when it is refused (see [`refusal`]).
pub fn reject(state: &RunState, id: String, operator_reason: Option<String>) -> Option<Event> {
    if refusal(state, &id, Answer::Reject).is_some() {
        return None;
    }
    let i = state.task_index(&id)?;
    let operator_reason = operator_reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let by = match &operator_reason {
        Some(words) => format!("rejected by an operator ({words})"),
        None => "rejected by an operator".to_string(),
    };
    let reason = match state.tasks[i].finding() {
        Some(f) => format!("{by}: {}", finding_text(f)),
        None => by,
    };
    Some(Event::TaskRejected { task: id, reason, operator_reason })
}

/// True when the run can only move on by an operator's answer: tasks are held, and
/// nothing is queued, running, validating or waiting for a retry (the blocked tasks
/// left wait on held ones). A headless run ends here instead of waiting unseen.
pub fn only_held_remain(state: &RunState) -> bool {
    let moving = [TaskStateName::Queued, TaskStateName::Running, TaskStateName::Validating, TaskStateName::RetryWait];
    state.count(TaskStateName::AwaitingApproval) > 0 && moving.iter().all(|&n| state.count(n) == 0)
}

/// "2 tasks held for approval" (the reason a headless run stops with).
pub fn held_line(state: &RunState) -> String {
    match state.count(TaskStateName::AwaitingApproval) {
        1 => "1 task held for approval".to_string(),
        n => format!("{n} tasks held for approval"),
    }
}
