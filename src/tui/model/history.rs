//! Per-task history: a task's transitions in order, each with its record. A model
//! that folded every record (held in memory) keeps every task's history as it folds,
//! each step with the task as the fold left it. A model opened on a run folder keeps
//! only the histories a screen asked for: the first ask reads the task's records from
//! the log on disk, and from then on the records that arrive extend it. That read
//! goes through the run's task index (`tasks.idx`, [`task_index::read`], the reader
//! `inspect TASK` uses) up to where the index ends, each entry checked as it is read,
//! and the lines after it by their bytes (those that do not hold the task's id are
//! skipped undecoded); with no index, or one stale or damaged, the whole log is read
//! that way. A step read from disk carries no
//! task: [`Fleet::task_after`] folds it from the nearest time-travel checkpoint when
//! the operator steps onto it, once, and keeps it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Fleet;
use crate::core::consensus::Ballot;
use crate::core::{Event, Task};
use crate::io::journal::Record;
use crate::io::task_index;

/// One step of a task's history: a record about the task and the task right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The record's index in the log (its seq − 1).
    pub record: usize,
    /// The record's time.
    pub ts: u64,
    /// The record's event.
    pub event: Event,
    /// The task as the fold left it after that record (what replaying the log up to
    /// there gives); `None` for a step read from disk whose task was not needed yet
    /// (see [`Fleet::task_after`]).
    pub task: Option<Task>,
}

impl Step {
    /// The step `record` (at index `index`) made, leaving `task`.
    pub(super) fn after(index: usize, record: &Record, task: &Task) -> Step {
        Step { record: index, ts: record.ts, event: record.event.clone(), task: Some(task.clone()) }
    }
}

/// A task's history as a screen reads it: its steps (up to the time-travel cursor
/// while travelling). Shares the steps with the model: holding it copies nothing.
#[derive(Debug, Clone)]
pub struct History {
    steps: Arc<Vec<Step>>,
    len: usize,
}

impl std::ops::Deref for History {
    type Target = [Step];
    fn deref(&self) -> &[Step] {
        &self.steps[..self.len]
    }
}

impl PartialEq for History {
    fn eq(&self, other: &History) -> bool {
        **self == **other
    }
}

/// The histories the model keeps. Behind locks: a screen reading a shared model
/// reads a history from disk and keeps it (the model is used by one thread; the
/// locks are never contended).
#[derive(Debug, Default)]
pub(super) struct Histories {
    /// True when every task's history is kept as records are folded (so a task
    /// without one has none); else only the ones read from disk so far are.
    every_task: bool,
    /// Task index → its steps, over the whole log.
    kept: Mutex<HashMap<usize, Arc<Vec<Step>>>>,
    /// Why a history could not be read from disk, for the operator.
    trouble: Mutex<Option<String>>,
    /// How many histories were read through the run's task index.
    indexed: AtomicUsize,
}

impl Clone for Histories {
    fn clone(&self) -> Histories {
        Histories {
            every_task: self.every_task,
            kept: Mutex::new(self.kept().clone()),
            trouble: Mutex::new(self.trouble().clone()),
            indexed: AtomicUsize::new(self.indexed.load(Ordering::Relaxed)),
        }
    }
}

impl Histories {
    /// Every task's history, kept as records are folded.
    pub(super) fn every_task() -> Histories {
        Histories { every_task: true, ..Histories::default() }
    }

    /// Histories read from disk when asked for.
    pub(super) fn read_when_asked() -> Histories {
        Histories::default()
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<usize, Arc<Vec<Step>>>> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn trouble(&self) -> MutexGuard<'_, Option<String>> {
        self.trouble.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A record about task `i` was folded: its history grows when it is kept.
    pub(super) fn push(&mut self, i: usize, step: Step) {
        let every_task = self.every_task;
        let kept = self.kept.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if every_task {
            Arc::make_mut(kept.entry(i).or_default()).push(step);
        } else if let Some(steps) = kept.get_mut(&i) {
            Arc::make_mut(steps).push(step);
        }
    }

    fn get(&self, i: usize) -> Option<Arc<Vec<Step>>> {
        self.kept().get(&i).cloned()
    }
}

impl Fleet {
    /// Task `i`'s history: its transitions in order, each with its record (up to the
    /// time-travel cursor while travelling). A model opened on a run folder reads it
    /// from the log on disk the first time it is asked for.
    pub fn history(&self, i: usize) -> History {
        let steps = self.histories.get(i).unwrap_or_else(|| self.read_history(i));
        self.cut(steps)
    }

    /// Task `i`'s history if it is kept already (never reads the disk): for screens
    /// that show a line per task, where reading one history per row would cost the
    /// log per row.
    pub fn kept_history(&self, i: usize) -> Option<History> {
        if self.histories.every_task {
            return Some(self.history(i));
        }
        self.histories.get(i).map(|steps| self.cut(steps))
    }

    /// Why a history could not be read from disk, if one could not (once).
    pub fn history_trouble(&self) -> Option<String> {
        self.histories.trouble().take()
    }

    /// How many histories this model read through the run's task index (the rest, if
    /// any, by reading the whole log): tests and benchmarks tell the two paths apart.
    pub fn histories_indexed(&self) -> usize {
        self.histories.indexed.load(Ordering::Relaxed)
    }

    fn cut(&self, steps: Arc<Vec<Step>>) -> History {
        let len = match self.travelling() {
            Some(n) => steps.partition_point(|s| s.record < n),
            None => steps.len(),
        };
        History { steps, len }
    }

    /// Reads task `i`'s steps from the log on disk and keeps them.
    fn read_history(&self, i: usize) -> Arc<Vec<Step>> {
        let live = self.travel.live(&self.shown);
        if self.histories.every_task || i >= live.state.tasks.len() {
            return Arc::default();
        }
        let id = live.state.task_id(i);
        let len = self.records.len();
        let mut steps = Vec::new();
        let mut take = |index: usize, record: Record| {
            if record.event.task() == Some(id) && !matches!(record.event, Event::AttemptSpawned { .. }) {
                steps.push(Step { record: index, ts: record.ts, event: record.event, task: None });
            }
        };
        // Through the index up to where it ends (records past what the model folded
        // are left to arrive, as they extend the history then), the lines after it
        // read as below. From the second record: the first (`run_started`) names every
        // task of the workflow, and it is no step of any.
        let mut from = 1;
        if let Some(read) = self.records.dir().and_then(|dir| task_index::read(dir, &live.state, &[i], false).ok()) {
            for record in read.records.into_iter().take_while(|r| r.seq as usize <= len) {
                take(record.seq as usize - 1, record);
            }
            let through = usize::try_from(read.through).unwrap_or(usize::MAX);
            self.records.mark(through, read.after);
            from = through.max(1);
            self.histories.indexed.fetch_add(1, Ordering::Relaxed);
        }
        // The id as the log writes it (a JSON string): a line about the task holds it.
        let needle = serde_json::to_string(id).unwrap_or_default();
        let read = self.records.matching(needle.as_bytes(), from, len, &mut take);
        if let Err(e) = read {
            *self.histories.trouble() = Some(format!("history of {id}: {e}"));
            steps.clear();
        }
        let steps = Arc::new(steps);
        self.histories.kept().insert(i, steps.clone());
        steps
    }

    /// Task `i` as the fold left it after step `c` of its history. A step read from
    /// disk gets it by a fold from the nearest time-travel checkpoint (at most a
    /// checkpoint's spacing of records), once; before the log is indexed for time
    /// travel this asks for the index and gives `None` meanwhile.
    pub fn task_after(&self, i: usize, c: usize) -> Option<Task> {
        let history = self.history(i);
        let step = history.get(c)?;
        if let Some(task) = &step.task {
            return Some(task.clone());
        }
        let task = self.travel.task_after(&self.records, step.record + 1, i)?;
        if let Some(steps) = self.histories.kept().get_mut(&i) {
            if let Some(kept) = Arc::make_mut(steps).get_mut(c) {
                kept.task = Some(task.clone());
            }
        }
        Some(task)
    }

    /// Task `i`'s consensus attempts read from its first `steps` history steps (all
    /// of them when `steps` is larger), oldest first. Costs the task's history, not
    /// the log.
    pub fn ballots(&self, i: usize, steps: usize) -> Vec<Ballot> {
        let history = self.history(i);
        Ballot::read(history.iter().take(steps).map(|s| &s.event))
    }
}
