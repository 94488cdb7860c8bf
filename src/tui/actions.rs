//! What the operator's task actions ask the engine for: retry, cancel, replay (one,
//! a group, every dead letter), and quit. Shared by the keys of every screen and by
//! the palette. A destructive one (cancel, a replay that brings back more than one
//! task, quitting with work running) is put to a [`Confirm`] question first. Each
//! sets a one-line message saying what it did or why it did nothing.

use super::answers::{self, Scope};
use super::model::Fleet;
use super::screens::tasks::matches_filter;
use super::view::{Confirm, Request, Screen, ViewState};
use crate::core::hold::Answer;
use crate::core::{Input as EngineInput, TaskState, TaskStateName};

/// Who the engine records as the author of a TUI command.
const OPERATOR: &str = "operator (tui)";

/// Quits: at once when the run is over, else after a question (the run stays
/// resumable either way).
pub fn quit(vs: &mut ViewState, fleet: &Fleet) -> Vec<Request> {
    if vs.attached {
        // `q` only detaches from a manager elsewhere: nothing is stopped.
        vs.confirm =
            Some(Confirm { question: "Detach? The run keeps going.".to_string(), on_yes: vec![Request::Quit] });
        return Vec::new();
    }
    let running = fleet.state.count(TaskStateName::Running);
    let unfinished = !fleet.state.finished;
    if running > 0 || unfinished {
        let what = if running > 0 {
            format!("Stop {} and quit?", plural(running, "running attempt"))
        } else {
            "Quit with tasks still to run?".to_string()
        };
        vs.confirm = Some(Confirm {
            question: format!("{what} The run stays resumable (pitboss resume)."),
            on_yes: vec![Request::Quit],
        });
        Vec::new()
    } else {
        vec![Request::Quit]
    }
}

/// Retries `task`: requeues a dead-lettered or cancelled task, or ends a retry's wait.
pub fn retry(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    let Some(i) = known(vs, fleet, task) else { return Vec::new() };
    match &fleet.state.tasks[i].state {
        TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } => {
            vs.message = Some(format!("{task}: requeued"));
            vec![Request::Engine(EngineInput::Requeue { task: task.to_string(), reason: OPERATOR.into() })]
        }
        TaskState::RetryWait { due_ms } => {
            vs.message = Some(format!("{task}: retrying now"));
            vec![Request::Engine(EngineInput::RetryTimer { task: task.to_string(), due_ms: *due_ms })]
        }
        other => {
            vs.message = Some(format!(
                "{task} is {}: only dead-lettered, cancelled or waiting tasks can be retried",
                other.name().as_str()
            ));
            Vec::new()
        }
    }
}

/// Retries `task` asking its next attempt to continue its agent session: as the
/// shared `retry ID --continue` (refused, with the reason as the message, for a task
/// without a session or in a state no retry applies to).
pub fn retry_continue(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    let command = crate::core::command::Command::Continue(task.to_string());
    match crate::core::command::inputs(&fleet.state, &command, OPERATOR) {
        Ok(inputs) => {
            vs.message = Some(crate::core::command::done_message(&command));
            inputs.into_iter().map(Request::Engine).collect()
        }
        Err(why) => {
            vs.message = Some(why);
            Vec::new()
        }
    }
}

/// Cancels `task` (asks first, saying what else it ends).
pub fn cancel(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    let Some(i) = known(vs, fleet, task) else { return Vec::new() };
    let state = &fleet.state.tasks[i].state;
    if state.is_terminal() {
        vs.message = Some(format!("{task} is {}: nothing to cancel", state.name().as_str()));
        return Vec::new();
    }
    let what = match state {
        TaskState::Running { .. } => " and end its process group",
        TaskState::Validating { .. } => " and end its gate's processes",
        _ => "",
    };
    let note = if fleet.state.dependents[i].is_empty() { "" } else { " Its dependents will be skipped." };
    vs.confirm = Some(Confirm {
        question: format!("Cancel {task}{what}?{note}"),
        on_yes: vec![Request::Engine(EngineInput::Cancel { task: task.to_string(), reason: OPERATOR.into() })],
    });
    Vec::new()
}

/// Approves `task`, held for approval (asks first, showing what held it: once
/// approved it runs as it is, not checked again).
pub fn approve(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    answers::ask(vs, fleet, &[task.to_string()], Answer::Approve, Scope::Tasks, 0);
    Vec::new()
}

/// Rejects `task`, held for approval (asks first, showing what held it and what else
/// the rejection skips).
pub fn reject(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    answers::ask(vs, fleet, &[task.to_string()], Answer::Reject, Scope::Tasks, 0);
    Vec::new()
}

/// Replays one dead letter.
pub fn replay(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    let Some(i) = known(vs, fleet, task) else { return Vec::new() };
    if !matches!(fleet.state.tasks[i].state, TaskState::DeadLettered { .. }) {
        let state = fleet.state.tasks[i].state.name().as_str();
        let hint = if vs.screen == Screen::Dashboard { " (3: the dead letters)" } else { "" };
        vs.message = Some(format!("nothing replayed: {task} is {state}, not a dead letter{hint}"));
        return Vec::new();
    }
    replay_many(vs, fleet, vec![task.to_string()], task)
}

/// Replays every dead letter that matches the tasks filter (asks first).
pub fn replay_all(vs: &mut ViewState, fleet: &Fleet) -> Vec<Request> {
    let targets: Vec<String> = fleet
        .dead_letters()
        .filter(|&i| matches_filter(fleet, i, &vs.filter))
        .map(|i| fleet.state.task_id(i).to_string())
        .collect();
    let scope = if vs.filter.is_empty() {
        "every dead letter".to_string()
    } else {
        format!("dead letters matching {:?}", vs.filter)
    };
    if targets.is_empty() && !vs.filter.is_empty() {
        vs.message = Some(format!(
            "nothing replayed: none of the {} matches the filter {:?} (Esc clears it)",
            plural(fleet.dead_letters().len(), "dead letter"),
            vs.filter
        ));
        return Vec::new();
    }
    replay_many(vs, fleet, targets, &scope)
}

/// Replays `targets`; asks first, with how many tasks come back, unless it is one
/// task with no skipped dependents. `scope` names the targets in the question.
pub fn replay_many(vs: &mut ViewState, fleet: &Fleet, targets: Vec<String>, scope: &str) -> Vec<Request> {
    if targets.is_empty() {
        vs.message = Some("nothing replayed: no dead letters".into());
        return Vec::new();
    }
    let indices: Vec<usize> = targets.iter().filter_map(|t| fleet.state.task_index(t)).collect();
    let affected = replay_impact(fleet, &indices);
    let revived = affected - indices.len();
    let requests: Vec<Request> = targets
        .into_iter()
        .map(|task| Request::Engine(EngineInput::Requeue { task, reason: OPERATOR.into() }))
        .collect();
    if requests.len() == 1 && revived == 0 {
        vs.message = Some(format!("{scope}: replayed"));
        return requests;
    }
    vs.confirm = Some(Confirm {
        question: format!(
            "Replay {scope}? {} in all ({} plus {} skipped dependents coming back).",
            plural(affected, "task"),
            plural(indices.len(), "dead letter"),
            revived
        ),
        on_yes: requests,
    });
    Vec::new()
}

/// Tasks a replay of `targets` brings back: the targets plus every dependent skipped
/// because of them, transitively.
pub fn replay_impact(fleet: &Fleet, targets: &[usize]) -> usize {
    let state = &fleet.state;
    let mut seen = vec![false; state.tasks.len()];
    let mut work: Vec<usize> = targets.to_vec();
    let mut count = 0;
    while let Some(i) = work.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        count += 1;
        for &d in &state.dependents[i] {
            if matches!(state.tasks[d].state, TaskState::Skipped { .. }) {
                work.push(d);
            }
        }
    }
    count
}

/// Task `task`'s index; else the message says there is no such task.
fn known(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Option<usize> {
    let i = fleet.state.task_index(task);
    if i.is_none() {
        vs.message = Some(format!("no task {task:?} in this run"));
    }
    i
}

/// "1 task", "3 tasks".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `E`: asks the app loop to open `task`'s payload in `$VISUAL`/`$EDITOR`, when the
/// payload may be edited now; else says why not (the palette's rules, so both agree).
pub fn edit_in_editor(vs: &mut ViewState, fleet: &Fleet, task: &str) -> Vec<Request> {
    let Some(i) = known(vs, fleet, task) else { return Vec::new() };
    if super::editor::command().is_none() {
        vs.message = Some("no editor: set $VISUAL or $EDITOR (or edit the payload in the palette: e)".into());
        return Vec::new();
    }
    // The palette's checks, on a payload that surely differs: what is refused here is
    // the task's state (running, completed), never the text.
    let probe = format!("payload {task} {{\"pitboss-probe\":null}}");
    if let Err(why) = crate::core::command::parse(&fleet.state, &probe) {
        vs.message = Some(why);
        return Vec::new();
    }
    let payload = fleet.state.tasks[i].payload().unwrap_or(&fleet.state.workflow.tasks[i].payload);
    let text = serde_json::to_string_pretty(payload).unwrap_or_else(|_| payload.to_string()) + "\n";
    vec![Request::Edit { task: task.to_string(), text }]
}

/// What the editor left for `task`: checked as JSON, then as the palette's `payload`
/// line is (state, unchanged), then put to a question before it is recorded. Refused
/// text stays in its file, whose path the message gives.
pub fn edited(vs: &mut ViewState, fleet: &Fleet, task: &str, edit: Result<super::editor::Edited, String>) {
    let edit = match edit {
        Ok(edit) => edit,
        Err(why) => {
            vs.message = Some(why);
            return;
        }
    };
    let kept = edit.path.display();
    let payload = match serde_json::from_str::<serde_json::Value>(&edit.text) {
        Ok(payload) => payload,
        Err(e) => {
            // What to do first: the status line is one row, and 80 columns cut the rest.
            vs.message = Some(format!("not recorded (E reopens your text): not valid JSON: {e} ({kept})"));
            return;
        }
    };
    let line = format!("payload {task} {payload}");
    let command = match crate::core::command::parse(&fleet.state, &line) {
        Ok(Some(command)) => command,
        Ok(None) => return,
        Err(why) => {
            if why.contains("unchanged") {
                super::editor::discard(&edit.path);
                vs.message = Some(why);
            } else {
                vs.message = Some(format!("not recorded (E reopens your text): {why} ({kept})"));
            }
            return;
        }
    };
    match crate::core::command::inputs(&fleet.state, &command, OPERATOR) {
        Ok(inputs) => {
            super::editor::discard(&edit.path);
            let preview = crate::tui::widgets::truncate(&payload.to_string(), 180);
            vs.confirm = Some(Confirm {
                question: format!("Record the edited payload of {task}? Its next attempt uses it.\n{preview}"),
                on_yes: inputs.into_iter().map(Request::Engine).collect(),
            });
        }
        Err(why) => vs.message = Some(format!("not recorded (E reopens your text): {why} ({kept})")),
    }
}
