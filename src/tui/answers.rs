//! An operator's answer (approve / reject) to held tasks, one or many: the preview a
//! [`Confirm`] shows before anything is sent (the tasks, what held them, and for a
//! rejection what else gets skipped), and the check at the moment of the answer that
//! leaves out any task no longer held (answered from elsewhere meanwhile), saying so.
//! Shared by `a` / `X` on every screen, the Held view's marks and `P`, and the palette.

use std::collections::BTreeMap;

use super::actions::plural;
use super::model::Fleet;
use super::view::{Confirm, Request, Screen, ViewState};
use crate::core::hold::{finding_text, refusal, Answer};
use crate::core::{Input as EngineInput, TaskState};

/// Task ids a preview names before "and N more".
pub const PREVIEW_IDS: usize = 8;
/// Kinds of finding a preview names before "and N more kinds".
const PREVIEW_RULES: usize = 4;

/// What the answer is about, for the preview's first line.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// The tasks given (the marked ones, or the selected one).
    Tasks,
    /// Every held child of this spawning parent.
    ChildrenOf(String),
}

/// Puts `answer` for `targets` to a confirm step with its preview. `stale` counts
/// marked tasks that are no longer held (already left out of `targets`; the preview
/// says so). A target that is not held is left out too; with nothing left, nothing
/// is asked and the message says why.
pub fn ask(vs: &mut ViewState, fleet: &Fleet, targets: &[String], answer: Answer, scope: Scope, stale: usize) {
    let (held, gone): (Vec<&String>, Vec<&String>) = targets.iter().partition(|t| is_held(fleet, t));
    let stale = stale + gone.len();
    if held.is_empty() {
        vs.message = Some(match targets {
            [one] => refusal(&fleet.state, one, answer).unwrap_or_default(),
            _ => format!("nothing to {}: none of them is held any more", answer.verb()),
        });
        return;
    }
    let indices: Vec<usize> = held.iter().filter_map(|t| fleet.state.task_index(t)).collect();
    let mut lines = vec![headline(fleet, &held, answer, &scope)];
    if held.len() > 1 {
        lines.push(id_list(held.iter().map(|s| s.as_str()), held.len()));
    }
    if answer == Answer::Reject {
        lines.push(skipped_line(fleet, &indices));
    }
    if stale > 0 {
        let (is, it) = if stale == 1 { ("is", "is") } else { ("are", "are") };
        lines.push(format!("{} {is} no longer held and {it} left out.", plural(stale, "marked task")));
    }
    lines.extend(finding_lines(fleet, &indices));
    let input = |task: &String| match answer {
        Answer::Approve => EngineInput::Approve { task: task.clone() },
        Answer::Reject => EngineInput::Reject { task: task.clone(), reason: None },
    };
    vs.confirm = Some(Confirm {
        question: lines.join("\n"),
        on_yes: held.into_iter().map(|t| Request::Engine(input(t))).collect(),
    });
}

fn is_held(fleet: &Fleet, id: &str) -> bool {
    fleet.state.task_index(id).is_some_and(|i| matches!(fleet.state.tasks[i].state, TaskState::AwaitingApproval { .. }))
}

/// "Approve plan/a? It runs as it is…", "Reject 3 held tasks? …", "Approve all 4 held
/// children of plan? …".
fn headline(fleet: &Fleet, held: &[&String], answer: Answer, scope: &Scope) -> String {
    let n = held.len();
    let what = match (scope, n) {
        (Scope::ChildrenOf(parent), 1) => format!("the only held child of {parent}, {}", held[0]),
        (Scope::ChildrenOf(parent), _) => format!("all {n} held children of {parent}"),
        (Scope::Tasks, 1) => held[0].clone(),
        (Scope::Tasks, _) => plural(n, "held task"),
    };
    match (answer, n) {
        (Answer::Approve, 1) => format!("Approve {what}? It runs as it is, not checked again."),
        (Answer::Approve, _) => format!("Approve {what}? They run as they are, not checked again."),
        (Answer::Reject, 1) => {
            let i = fleet.state.task_index(held[0]);
            let note = if i.is_some_and(|i| !fleet.state.dependents[i].is_empty()) {
                " Its dependents will be skipped."
            } else {
                ""
            };
            format!("Reject {what}? It ends cancelled, never a dead letter.{note}")
        }
        (Answer::Reject, _) => format!("Reject {what}? They end cancelled, never dead letters."),
    }
}

/// The first [`PREVIEW_IDS`] ids of `total`, then how many more.
fn id_list<'a>(ids: impl Iterator<Item = &'a str>, total: usize) -> String {
    let shown: Vec<&str> = ids.take(PREVIEW_IDS).collect();
    let more = total.saturating_sub(shown.len());
    let mut line = shown.join(", ");
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

/// What a rejection of `targets` skips: every dependent, transitively, that has not
/// ended yet (the targets themselves aside).
pub fn skipped_by_rejecting(fleet: &Fleet, targets: &[usize]) -> Vec<usize> {
    let state = &fleet.state;
    let mut seen = vec![false; state.tasks.len()];
    for &t in targets {
        seen[t] = true;
    }
    let mut work: Vec<usize> = targets.to_vec();
    let mut skipped = Vec::new();
    while let Some(i) = work.pop() {
        for &d in &state.dependents[i] {
            if !std::mem::replace(&mut seen[d], true) && !state.tasks[d].state.is_terminal() {
                skipped.push(d);
                work.push(d);
            }
        }
    }
    skipped.sort_unstable();
    skipped
}

/// "Skipped with them: 2 tasks (agg, report)." or "Nothing else is skipped."
fn skipped_line(fleet: &Fleet, targets: &[usize]) -> String {
    let skipped = skipped_by_rejecting(fleet, targets);
    if skipped.is_empty() {
        return "Nothing else is skipped.".to_string();
    }
    let them = if targets.len() == 1 { "it" } else { "them" };
    let ids = id_list(skipped.iter().map(|&i| fleet.state.task_id(i)), skipped.len());
    format!("Skipped with {them}: {} ({ids}).", plural(skipped.len(), "task"))
}

/// What held the tasks: for one task, who held it and the finding; for several, one
/// line per rule with how many it held and its first finding.
fn finding_lines(fleet: &Fleet, targets: &[usize]) -> Vec<String> {
    let mut by_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for &i in targets {
        let Some(f) = fleet.state.tasks[i].finding() else { continue };
        let entry = by_rule.entry(f.rule.as_str()).or_insert_with(|| {
            order.push(f.rule.as_str());
            (0, i)
        });
        entry.0 += 1;
    }
    if let ([only], [rule]) = (targets, order.as_slice()) {
        let finding = fleet.state.tasks[*only].finding().map(finding_text).unwrap_or_default();
        return vec![format!("{}: {finding}", who_held(rule))];
    }
    let mut lines = vec!["What held them:".to_string()];
    for rule in order.iter().take(PREVIEW_RULES) {
        let (n, first) = by_rule[rule];
        let f = fleet.state.tasks[first].finding().expect("counted from a finding");
        lines.push(format!("  {rule} ({n}): {}: {}", f.location, f.excerpt));
    }
    if order.len() > PREVIEW_RULES {
        lines.push(format!("  and {} more kinds", order.len() - PREVIEW_RULES));
    }
    lines
}

/// Who holds a task under `rule`, in words.
fn who_held(rule: &str) -> &'static str {
    if rule.starts_with("guard/") {
        "The input guard found"
    } else if rule.starts_with("planner/") {
        "Held by the planner's limits"
    } else {
        "Held for"
    }
}

impl ViewState {
    /// Answers a pending question against the run as it is now, and says what came of
    /// it: an approve or reject of a task no longer held, a cancel of a task that has
    /// ended, a replay of a task that is no longer a dead letter (all changed since
    /// the question was asked) are left out, and the message says how many were sent
    /// and why the others were not. No says that nothing was done.
    pub fn answer_with(&mut self, fleet: &Fleet, yes: bool) -> Vec<Request> {
        let asked = self.confirm.is_some();
        let requests = self.answer(yes);
        if !yes {
            if asked {
                self.message = Some("answered no: nothing done".into());
            }
            return requests;
        }
        if let Some(verb) = requests.iter().find_map(|r| answered(r).map(|(verb, _)| verb)) {
            let kept = self.keep_held(fleet, verb, requests);
            if let Screen::Held(view) = &mut self.screen {
                view.marked.clear();
            }
            return kept;
        }
        let (kept, refused): (Vec<Request>, Vec<String>) =
            requests.into_iter().fold((Vec::new(), Vec::new()), |(mut kept, mut refused), r| {
                match still_applies(fleet, &r) {
                    Ok(()) => kept.push(r),
                    Err(why) => refused.push(why),
                }
                (kept, refused)
            });
        if let Some(message) = outcome(&kept, &refused) {
            self.message = Some(message);
        }
        kept
    }

    /// Approves or rejects the tasks still held; says how many were sent and left out.
    fn keep_held(&mut self, fleet: &Fleet, verb: &str, requests: Vec<Request>) -> Vec<Request> {
        let asked = requests.len();
        let kept: Vec<Request> =
            requests.into_iter().filter(|r| answered(r).is_none_or(|(_, task)| is_held(fleet, &task))).collect();
        let left_out = asked - kept.len();
        let sent = match kept.as_slice() {
            [only] if asked == 1 => answered(only).map(|(_, t)| t).unwrap_or_default(),
            _ => kept.len().to_string(),
        };
        self.message = Some(match left_out {
            0 => format!("{verb} {sent}"),
            n if kept.is_empty() => format!("nothing {verb}: {} no longer held", was(n)),
            n => format!("{verb} {sent}; {} no longer held", was(n)),
        });
        kept
    }
}

/// An approve or reject request: its verb and task.
fn answered(r: &Request) -> Option<(&'static str, String)> {
    match r {
        Request::Engine(EngineInput::Approve { task }) => Some(("approved", task.clone())),
        Request::Engine(EngineInput::Reject { task, .. }) => Some(("rejected", task.clone())),
        _ => None,
    }
}

/// Does a confirmed request still make sense against the run as it is now? A cancel
/// needs a task that has not ended; a replay (requeue) a dead-lettered or cancelled
/// task. Else why not.
fn still_applies(fleet: &Fleet, request: &Request) -> Result<(), String> {
    let state_of = |task: &str| fleet.state.task_index(task).map(|i| &fleet.state.tasks[i].state);
    match request {
        Request::Engine(EngineInput::Cancel { task, .. }) => match state_of(task) {
            Some(state) if state.is_terminal() => Err(format!("{task} is {} now", state.name().as_str())),
            _ => Ok(()),
        },
        Request::Engine(EngineInput::Requeue { task, .. }) => match state_of(task) {
            Some(TaskState::DeadLettered { .. } | TaskState::Cancelled { .. }) | None => Ok(()),
            Some(state) => Err(format!("{task} is {} now", state.name().as_str())),
        },
        _ => Ok(()),
    }
}

/// The message after a confirmed cancel or replay: what was sent, and what was left
/// out and why. None for other requests (quit says its own).
fn outcome(kept: &[Request], refused: &[String]) -> Option<String> {
    let is = |r: &Request, cancel: bool| match r {
        Request::Engine(EngineInput::Cancel { .. }) => cancel,
        Request::Engine(EngineInput::Requeue { .. }) => !cancel,
        _ => false,
    };
    let cancels = kept.iter().filter(|r| is(r, true)).count();
    let replays = kept.iter().filter(|r| is(r, false)).count();
    let first_task = kept.iter().find_map(|r| match r {
        Request::Engine(EngineInput::Cancel { task, .. } | EngineInput::Requeue { task, .. }) => Some(task.as_str()),
        _ => None,
    });
    let done = match (cancels, replays, first_task) {
        (1, 0, Some(task)) => Some(format!("cancelling {task}")),
        (0, 1, Some(task)) => Some(format!("replayed {task}")),
        (0, n, _) if n > 1 => Some(format!("replayed {}", plural(n, "task"))),
        // A payload edited in $EDITOR, confirmed: as the palette's `payload` says.
        _ => kept.iter().find_map(|r| match r {
            Request::Engine(EngineInput::EditPayload { task, .. }) => Some(format!(
                "{task}: payload edited; its next attempt uses it (retry it if it is dead-lettered or cancelled)"
            )),
            _ => None,
        }),
    };
    let why = refused.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    let more = if refused.len() > 3 { format!(" and {} more", refused.len() - 3) } else { String::new() };
    match (done, refused.is_empty()) {
        (done, true) => done,
        (None, false) => Some(format!("nothing done: {why}{more}")),
        (Some(done), false) => Some(format!("{done}; left out: {why}{more}")),
    }
}

/// "1 was", "3 were".
fn was(n: usize) -> String {
    if n == 1 {
        "1 was".to_string()
    } else {
        format!("{n} were")
    }
}
