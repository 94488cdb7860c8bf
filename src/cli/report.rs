//! The `--json` document of DESIGN §2 and the human summary, both built from a
//! [`RunState`] (live at the end of a run, or folded from a log by `inspect`).

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::core::{RunState, TaskState, TaskStateName};

/// `{"run_id","state_dir","counts":{state:n},"tasks":[{"id","state","attempts","worker","result","error","degraded"}]}`.
pub fn json_document(state: &RunState, state_dir: &Path) -> Value {
    let tasks: Vec<Value> = (0..state.tasks.len()).map(|i| task_json(state, i)).collect();
    let mut doc = json!({
        "run_id": state.run_id,
        "state_dir": state_dir.display().to_string(),
        "counts": counts_json(state),
        "tasks": tasks,
    });
    // Only for runs with usage or a budget (DESIGN §13), so other documents are unchanged.
    if let (Some(spend), Some(obj)) = (state.spend_json(), doc.as_object_mut()) {
        obj.insert("spend".into(), spend);
    }
    doc
}

/// The document's `counts`: tasks per state.
pub fn counts_json(state: &RunState) -> Value {
    let mut counts = Map::new();
    // `awaiting_approval` only for workflows that use the input guard, so that the
    // documents of every other run (and the golden ones) are as before.
    // Plain specs on pools without a guard are never guarded: known without decoding
    // a lazily read snapshot's specs (`core::state::lazy`).
    let unguarded = state.workflow.all_plain() && state.workflow.head().pools.iter().all(|p| !p.input_guard);
    let guarded = !unguarded && (0..state.tasks.len()).any(|i| crate::core::hold::guarded(state, i));
    for name in TaskStateName::ALL {
        if name == TaskStateName::AwaitingApproval && !guarded && state.count(name) == 0 {
            continue;
        }
        counts.insert(name.as_str().to_string(), json!(state.count(name)));
    }
    Value::Object(counts)
}

/// One entry of the document's `tasks`: task `i`.
pub fn task_json(state: &RunState, i: usize) -> Value {
    let t = &state.tasks[i];
    let error = t.why();
    let mut doc = json!({
        "id": state.task_id(i),
        "state": t.state.name().as_str(),
        "attempts": t.attempts,
        "worker": t.pool,
        "result": t.result,
        "error": error,
        "degraded": t.degraded || matches!(t.state, TaskState::Completed { degraded: true }),
    });
    // Only for tasks the input guard flagged, so other documents are unchanged.
    if let (Some(finding), Some(obj)) = (t.finding(), doc.as_object_mut()) {
        obj.insert("finding".into(), serde_json::to_value(finding).unwrap_or_default());
        obj.insert("approved".into(), json!(t.approved()));
    }
    // Only for tasks that reported usage (DESIGN §13): in all and per attempt.
    if let (Some(spend), Some(obj)) = (state.spend.task(i), doc.as_object_mut()) {
        obj.insert("spend".into(), serde_json::to_value(spend).unwrap_or_default());
    }
    // Only for tasks with gate verdicts, so documents of gate-free runs are unchanged.
    if let (false, Some(obj)) = (t.verdicts().is_empty(), doc.as_object_mut()) {
        obj.insert("verdicts".into(), serde_json::to_value(t.verdicts()).unwrap_or_default());
    }
    // Only for tasks with an agent session or flags (DESIGN §13), likewise.
    if let (Some(agent), Some(obj)) = (t.agent(), doc.as_object_mut()) {
        if let Some(session) = &agent.session {
            obj.insert("session".into(), json!(session));
        }
        if !agent.resumed_by.is_empty() {
            obj.insert("resumed_by".into(), json!(agent.resumed_by));
        }
        // Which of those an operator asked for (`retry ID --continue`), and why the
        // next attempt continues the session when it will.
        if !agent.continued_on_request.is_empty() {
            obj.insert("continued_on_request".into(), json!(agent.continued_on_request));
        }
        if agent.resume {
            let why = if agent.continue_asked { "operator" } else { "interrupted" };
            obj.insert("next_attempt_continues".into(), json!(why));
        }
        if !agent.flags.is_empty() {
            obj.insert("flags".into(), serde_json::to_value(&agent.flags).unwrap_or_default());
        }
    }
    doc
}

/// "18 completed, 1 dead_lettered, 1 skipped": non-zero counts in life-cycle order.
pub fn counts_line(state: &RunState) -> String {
    let parts: Vec<String> = TaskStateName::ALL
        .iter()
        .filter(|n| state.count(**n) > 0)
        .map(|n| format!("{} {}", state.count(*n), n))
        .collect();
    if parts.is_empty() {
        "no tasks".to_string()
    } else {
        parts.join(", ")
    }
}
