//! `inspect TASK` without folding the whole log (issue 14): the run's state comes from
//! its newest snapshot (as `inspect` opens it), and the task's own records and the
//! states it went through from a pass over the log's lines that decodes only the lines
//! that can matter to it, told from each line's first bytes.
//!
//! The states a task goes through are those of a fold, so a small fold runs: from the
//! state right after `run_started` of a workflow cut down to the task and its
//! dependencies (built from the workflow the snapshot holds, so the first record, the
//! whole workflow, is never parsed), applying the records of the task
//! and of every task it depends on (transitively) and the records of no task (the
//! run's own: managers, pools, breakers, interruptions), which are what move it. The
//! other tasks' records are skipped unread. Where that is not certain, the caller folds
//! the whole log as before: a record that changes the workflow (`tasks_spawned`,
//! `tasks_submitted`, `payload_edited`), a line that does not decode, a record the small
//! fold refuses, or a roll during the read. Debug builds check every answer against
//! the whole fold (so every test of `inspect TASK` checks the prefilter too).

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use crate::core::workflow::{TaskSpec, Workflow};
use crate::core::{RunState, TaskStateName};
use crate::io::journal::{self, JournalError, Record};
use crate::io::log_lines::{self, Ended, HeadSays, Sift};
use crate::io::segments::Cursor;
use crate::io::task_index;

/// Records that change the workflow or the graph: the small fold, which starts from
/// the snapshot's (final) workflow, cannot replay them.
/// The ids the prefilter reads, as bytes; looked up once per record of the log, so
/// hashed with foldhash rather than SipHash (8 % of `inspect TASK`, issue 14; the
/// set is ours, built from the state's ids, not from the log).
type Plain = hashbrown::HashSet<Vec<u8>>;

/// The task's records and the states it went through, or `None` when the whole log
/// must be folded instead (see the module's notes).
pub struct Found {
    /// The records naming the task, in order.
    pub history: Vec<Record>,
    /// Each change of its state once, from `blocked`.
    pub path: Vec<TaskStateName>,
    /// Whether the run's task index gave the records up to where it ends (the lines
    /// after it sifted), rather than a sift of the whole log.
    pub indexed: bool,
}

/// The small fold and what it gathers for task `id` (its index `k` in the fold).
struct Small {
    fold: RunState,
    k: usize,
    id: String,
    history: Vec<Record>,
    path: Vec<TaskStateName>,
}

impl Small {
    /// Applies a record that can matter to the task; `Break` when the fold refuses it.
    fn take(&mut self, rec: Record) -> ControlFlow<()> {
        let named = rec.event.task();
        if named.is_some_and(|t| self.fold.task_index(t).is_none()) {
            return ControlFlow::Continue(());
        }
        let ours = named == Some(self.id.as_str());
        if self.fold.apply(&rec.event, rec.ts).is_err() {
            return ControlFlow::Break(());
        }
        let now = self.fold.tasks[self.k].state.name();
        if self.path.last() != Some(&now) {
            self.path.push(now);
        }
        if ours {
            self.history.push(rec);
        }
        ControlFlow::Continue(())
    }
}

/// The records of task `i` of `state` (the run's state at the end) and its states,
/// from the log in `dir`; `Ok(None)` when only the whole fold can tell.
pub fn find(dir: &Path, state: &mut RunState, i: usize) -> Result<Option<Found>, JournalError> {
    let id = state.task_id(i).to_string();
    let wanted = closure(state, i);
    // A task id as it appears between quotes in a record, when it needs no escaping
    // (one that does is matched by decoding, never by its bytes).
    let plain: Plain = wanted
        .iter()
        .map(|&j| state.task_id(j).as_bytes())
        .filter(|b| !b.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20))
        .map(<[u8]>::to_vec)
        .collect();
    // The small fold holds only the tasks it follows (a quarter of a million tasks'
    // start states were most of its cost).
    let mut keep: Vec<usize> = wanted.iter().copied().collect();
    keep.sort_unstable();
    let fold = RunState::new(state.run_id.clone(), Arc::new(sub_workflow(state, &keep)));
    let Some(k) = fold.task_index(&id) else { return Ok(None) };
    let mut small = Small { fold, k, id, history: Vec::new(), path: vec![TaskStateName::Blocked] };
    // The records up to where the task index ends, when it answers; the lines after
    // it (or all of them) sifted.
    let from = match indexed(dir, state, &wanted) {
        Some((records, cursor)) => {
            for rec in records {
                if small.take(rec).is_break() {
                    return Ok(None);
                }
            }
            Some(cursor)
        }
        None => None,
    };
    let mut gave_up = false;
    let ended = log_lines::sift_from(
        dir,
        from,
        |head, _| sift(head, &plain),
        |line, _| {
            let taken = journal::decode(line).map_or(ControlFlow::Break(()), |rec| small.take(rec));
            gave_up |= taken.is_break();
            taken
        },
    )?;
    if gave_up || ended != Ended::Done {
        return Ok(None);
    }
    Ok(Some(Found { history: small.history, path: small.path, indexed: from.is_some() }))
}

/// The records of the tasks `wanted` and the run's own up to where the run's task
/// index ends ([`task_index::read`]); with where the lines after it start. `None`
/// when there is no index, or it is stale or damaged: the caller sifts.
fn indexed(dir: &Path, state: &RunState, wanted: &HashSet<usize>) -> Option<(Vec<Record>, Cursor)> {
    let wanted: Vec<usize> = wanted.iter().copied().collect();
    let read = task_index::read(dir, state, &wanted, true).ok()?;
    Some((read.records, read.after))
}

/// The workflow of `state` with only the tasks `keep` (in workflow order), the rest as
/// it is: cloned without its other tasks when the state holds it alone.
fn sub_workflow(state: &mut RunState, keep: &[usize]) -> Workflow {
    if state.workflow.rows().is_some() {
        // Read lazily: its head is the workflow without its specs, cheap to clone, and
        // only the specs kept are decoded.
        let tasks: Vec<TaskSpec> = keep.iter().map(|&j| state.workflow.spec(j).into_owned()).collect();
        return Workflow { tasks, ..state.workflow.head().clone() };
    }
    let tasks: Vec<TaskSpec> = keep.iter().map(|&j| state.workflow.tasks[j].clone()).collect();
    let Some(whole) = Arc::get_mut(&mut state.workflow) else {
        return Workflow { tasks, ..(**state.workflow).clone() };
    };
    let all = std::mem::take(&mut whole.tasks);
    let mut sub = whole.clone();
    whole.tasks = all;
    sub.tasks = tasks;
    sub
}

/// Task `i` and every task it depends on, transitively.
fn closure(state: &RunState, i: usize) -> HashSet<usize> {
    let mut seen = HashSet::from([i]);
    let mut todo = vec![i];
    while let Some(j) = todo.pop() {
        for d in state.dependencies_of(j) {
            if seen.insert(d) {
                todo.push(d);
            }
        }
    }
    seen
}

/// What to do with a record line, from its head: skip a record that names, as its
/// event's first field, a task the small fold does not follow; read any other (the
/// visitor decodes it and decides exactly); stop at a record that reshapes the run.
/// The first record (`run_started`) is skipped: its workflow is the snapshot's.
fn sift(head: &[u8], plain: &Plain) -> Sift {
    match log_lines::head_says(head) {
        HeadSays::RunStarted => Sift::Skip,
        HeadSays::Reshaping => Sift::Stop,
        // One of ours.
        HeadSays::Task(id) if plain.contains(id) => Sift::Read,
        HeadSays::Task(_) => Sift::Skip,
        HeadSays::Other => Sift::Read,
    }
}

#[cfg(test)]
mod tests {
    use super::{sift, Plain, Sift};

    fn line(event: &str) -> String {
        format!("{{\"seq\":7,\"ts\":1,\"v\":1,\"event\":{event},\"crc\":1}}")
    }

    #[test]
    fn the_sifter_skips_only_records_naming_another_task_plainly() {
        let ours: Plain = [b"t1".to_vec()].into_iter().collect();
        let cases = [
            (r#"{"type":"task_ready","task":"t1"}"#, Sift::Read),
            // A prefix of another id, and an id with ours as its prefix.
            (r#"{"type":"task_ready","task":"t"}"#, Sift::Skip),
            (r#"{"type":"task_ready","task":"t10"}"#, Sift::Skip),
            // Escaped: decoded, whatever it is.
            (r#"{"type":"task_ready","task":"t\"1"}"#, Sift::Read),
            (r#"{"type":"task_ready","task":"a\\b"}"#, Sift::Read),
            // No task first: the run's own, or some other shape; decoded.
            (r#"{"type":"manager_started","pid":1}"#, Sift::Read),
            (r#"{"type":"run_finished","success":true}"#, Sift::Read),
            (r#"{"type":"run_started","run_id":"r","workflow":{}}"#, Sift::Skip),
            (r#"{"type":"tasks_spawned","task":"t9"}"#, Sift::Stop),
            (r#"{"type":"payload_edited","task":"t9"}"#, Sift::Stop),
        ];
        for (event, want) in cases {
            assert_eq!(sift(line(event).as_bytes(), &ours), want, "{event}");
        }
        // A head cut short before the id ends is read, not guessed.
        assert_eq!(sift(br#"{"seq":7,"ts":1,"v":1,"event":{"type":"task_ready","task":"t9"#, &ours), Sift::Read);
        assert_eq!(sift(b"not a record", &ours), Sift::Read);
    }
}
