//! A task's workspace in `inspect` (DESIGN §13): where it is, its branch, and the
//! diff its latest attempt left, read from the `workspace_created` and
//! `diff_recorded` notes of its history (the fold keeps no diffs: a run of many
//! tasks would hold every patch for its whole life).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::core::event::{DiffRecorded, WorkspaceCreated};
use crate::core::{Event, RunState};
use crate::io::journal::Record;
use crate::io::segments;

/// The `"workspace"` member of a task's JSON: `{path, branch, base, kind, diff:
/// {attempt, stat, patch, cut_bytes}}` from its latest notes, or None without any.
pub fn workspace_json<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Value> {
    let (mut made, mut diff): (Option<&WorkspaceCreated>, Option<&DiffRecorded>) = (None, None);
    for event in events {
        match event {
            // The plain task's own (a consensus task's replicas have one each; the
            // first made stands for them).
            Event::WorkspaceCreated(w) if made.is_none() || w.replica.is_none() => made = Some(w),
            Event::DiffRecorded(d) => diff = Some(d),
            _ => {}
        }
    }
    if made.is_none() && diff.is_none() {
        return None;
    }
    let mut doc = json!({});
    if let Some(w) = made {
        doc = json!({"kind": w.kind, "path": w.path, "branch": w.branch, "base": w.base});
    }
    if let Some(d) = diff {
        doc["diff"] = json!({
            "attempt": d.attempt, "replica": d.replica, "stat": d.stat, "patch": d.patch, "cut_bytes": d.cut_bytes
        });
    }
    Some(doc)
}

/// Every task's `"workspace"` member, by task id, from one pass over the log; none
/// read when the workflow asks for no workspace (the common run reads nothing more).
pub fn all_workspaces(dir: &Path, state: &RunState) -> HashMap<String, Value> {
    // Plain specs have no workspace of their own: known without decoding a lazily
    // read snapshot's specs (`core::state::lazy`).
    let wf = &state.workflow;
    let own =
        |wf: &crate::core::state::WorkflowCell| !wf.all_plain() && wf.tasks.iter().any(|t| t.workspace().is_some());
    if wf.head().pools.iter().all(|p| p.workspace.is_none()) && !own(wf) {
        return HashMap::new();
    }
    let mut notes: HashMap<String, Vec<Event>> = HashMap::new();
    let _ = segments::scan(dir, |rec: Record, _| {
        if let Event::WorkspaceCreated(WorkspaceCreated { task, .. }) | Event::DiffRecorded(DiffRecorded { task, .. }) =
            &rec.event
        {
            notes.entry(task.clone()).or_default().push(rec.event);
        }
        Ok(())
    });
    notes.into_iter().filter_map(|(task, events)| Some((task, workspace_json(&events)?))).collect()
}

/// `inspect TASK`'s workspace section: where, and the latest diff (stat, then the
/// patch), each line passed to `say` (which escapes it for the terminal).
pub fn print_workspace(history: &[Record], say: &dyn Fn(String)) {
    let Some(doc) = workspace_json(history.iter().map(|r| &r.event)) else { return };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    if let Some(path) = doc.get("path").and_then(Value::as_str) {
        let branch = doc.get("branch").and_then(Value::as_str).map(|b| format!("  branch {b}")).unwrap_or_default();
        say(format!("workspace: {path}{branch}"));
    }
    let Some(diff) = doc.get("diff") else { return };
    say(format!("diff after attempt {}:", diff["attempt"]));
    for line in text(&diff["stat"]).lines() {
        say(format!("  {line}"));
    }
    for line in text(&diff["patch"]).lines() {
        say(format!("  | {line}"));
    }
    if let Some(cut) = diff["cut_bytes"].as_u64().filter(|n| *n > 0) {
        say(format!("  … {cut} bytes cut"));
    }
}
