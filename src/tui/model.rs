//! The TUI's read model: everything the screens show, folded from committed records
//! (the same [`RunState::apply`] that `resume` uses) plus the workers' live output,
//! which is not durable and only feeds the panes. Time travel folds a prefix of the
//! same records into a fresh model, so "the run as of event N" is exactly what a
//! replay of the first N records gives.
//!
//! A model opened on a run folder ([`Fleet::open`]) starts from the state `resume`
//! opens (the newest valid snapshot and the log after it) and holds no record: a
//! task's history is read from the log on disk when a screen first asks for it (see
//! `model/log.rs`), then kept and extended by the records that arrive; time travel
//! first indexes the log in bounded slices ([`Fleet::index_some`]).
//!
//! What the screens read on every frame is kept up to date record by record in
//! [`Fleet::apply`], never recomputed from the whole log: the histories read so far,
//! the running tasks, and the dead letters. A frame costs what is on screen, however
//! long the run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::core::{Event, RunState, TaskState, TaskStateName};
use crate::io::journal::Record;

mod history;
mod live;
mod log;
mod open;
mod timeline;
mod timing;
mod travel;

pub use history::{History, Step};
pub use live::{progress_of, Live, ProgressMark, LIVE_LINES};
pub use log::{Log, MARK_EVERY};
pub use timeline::{Outcome, Span, Timeline, TIMELINE_MARKS, TIMELINE_SPANS};
pub use travel::{CHECKPOINT_BYTES, CHECKPOINT_EVERY, MAX_CHECKPOINTS};

/// Seconds of queue-depth history kept for the sparkline.
pub const QUEUE_HISTORY: usize = 600;

/// Everything a time-travel cursor changes: the run folded as of one record, and
/// the caches derived from it. The live model holds one (as of the newest record);
/// time travel swaps in another (see `model/travel.rs`). Screens read its fields
/// through [`Fleet`] (`fleet.state`, `fleet.live`, …), so they never know which.
#[derive(Debug, Clone)]
pub struct AsOf {
    /// The folded run state.
    pub state: RunState,
    /// Time of the latest record folded.
    pub last_ts: u64,
    /// Queue depth per second: (second, queued tasks), newest last.
    pub queue_depth: VecDeque<(u64, u64)>,
    /// Queue depth per pool per second, aligned with `queue_depth`.
    pub pool_depth: VecDeque<Vec<u64>>,
    /// Completion times, for throughput over the last minute.
    pub completions: VecDeque<u64>,
    /// The newest attempts as spans over time, and breaker openings (the timeline).
    pub timeline: Timeline,
    /// When the manager running the run took it over (its `manager_started`), if
    /// folded: the header counts from it, not across the time the run was stopped.
    pub session_ms: Option<u64>,
    /// True when that manager resumed the run.
    pub resumed: bool,
    /// When the run last finished or was interrupted (its record's time): where the
    /// header's clock stops.
    pub ended_ms: Option<u64>,
    /// Live output of running attempts, by task.
    pub live: HashMap<String, Live>,
    /// Output of attempts whose start is not folded yet, by task: an attempt starts
    /// once its record is written, before it is durable and reaches this model
    /// (`engine::early`), so what it prints first would otherwise be lost. Taken into
    /// `live` by its `attempt_started`; one attempt per task, as bounded as `live`.
    early: HashMap<String, Live>,
    /// Each task's latest attempt: when it started, how long it took (tasks table).
    pub timings: timing::Timings,
    // The caches below are derived from `state` record by record; they are private so
    // that nothing but `fold` can make them disagree with it.
    /// Running tasks, by index (workflow order).
    running: BTreeSet<usize>,
    /// Dead-lettered tasks, by index, with the fingerprint of their reason.
    dead: BTreeMap<usize, String>,
    /// Tasks in `awaiting_approval`, by index.
    held: BTreeSet<usize>,
    /// When each task last entered `awaiting_approval` (kept after it leaves, so a
    /// view can still place a task that was answered meanwhile).
    held_at: HashMap<usize, u64>,
}

/// The read model of one run.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The run as shown: as of the newest record, or of the time-travel cursor.
    shown: AsOf,
    /// The records folded, and where to read them (history, time travel).
    pub records: Log,
    /// Time of the first record.
    pub started_ms: u64,
    /// Per task, its transitions in order (spawn notes are not transitions), over the
    /// whole log, for the tasks read so far; while travelling, [`Fleet::history`] cuts
    /// them at the cursor.
    histories: history::Histories,
    /// Time travel: checkpoints, and the live model while a past one is shown.
    travel: travel::Travel,
    /// What the operator should know about how the run was opened (snapshots skipped).
    notes: Vec<String>,
}

impl std::ops::Deref for Fleet {
    type Target = AsOf;
    fn deref(&self) -> &AsOf {
        &self.shown
    }
}

impl std::ops::DerefMut for Fleet {
    fn deref_mut(&mut self) -> &mut AsOf {
        &mut self.shown
    }
}

/// Why records could not be folded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot fold record {seq}: {message}")]
pub struct FoldError {
    /// The record that did not fit.
    pub seq: u64,
    /// What was wrong.
    pub message: String,
}

impl Fleet {
    /// Folds records (the first must be `run_started`) into a model.
    pub fn from_records(records: &[Record]) -> Result<Fleet, FoldError> {
        let first = records.first().ok_or(FoldError { seq: 0, message: "no records".into() })?;
        let mut fleet = Fleet {
            shown: AsOf::first(first)?,
            records: Log::memory(first),
            started_ms: first.ts,
            histories: history::Histories::every_task(),
            travel: travel::Travel::default(),
            notes: Vec::new(),
        };
        for record in &records[1..] {
            fleet.apply(record)?;
        }
        Ok(fleet)
    }

    /// Folds one committed record. Costs the record, not the log: every cache grows
    /// by at most one entry. While travelling the record goes to the live model
    /// (parked meanwhile): the past shown does not move.
    pub fn apply(&mut self, record: &Record) -> Result<(), FoldError> {
        let index = self.records.len();
        // A model opened on the folder may have read this record there already.
        if self.records.on_disk() && record.seq <= index as u64 {
            return Ok(());
        }
        match self.travel.parked_live() {
            Some(live) => live.fold(record)?,
            None => self.shown.fold(record)?,
        }
        let state = match self.travel.parked_live() {
            Some(live) => &live.state,
            None => &self.shown.state,
        };
        // An event changes at most the task it names (`RunState::apply`), so only that
        // task's history can grow. A spawn note is not a transition.
        if let Some(i) = record.event.task().and_then(|t| state.task_index(t)) {
            if !matches!(record.event, Event::AttemptSpawned { .. }) {
                self.histories.push(i, Step::after(index, record, &state.tasks[i]));
            }
        }
        self.records.push(record);
        self.travel.after_apply(&self.shown, self.records.len());
        Ok(())
    }

    /// What the operator should know about how the run was opened: snapshots that
    /// were skipped, and why.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// For a running consensus task: replicas that have voted, and replicas run.
    pub fn votes_in(&self, i: usize) -> Option<(usize, u32)> {
        let spec = self.state.workflow.tasks.get(i)?.consensus.as_ref()?;
        match &self.state.tasks[i].state {
            TaskState::Running { round, .. } => Some((round.as_ref().map_or(0, |r| r.votes.len()), spec.replicas)),
            _ => None,
        }
    }

    /// Running tasks in workflow order: the dashboard's worker panes.
    pub fn running(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.shown.running.iter().copied()
    }

    /// Dead-lettered tasks in workflow order.
    pub fn dead_letters(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.shown.dead.keys().copied()
    }

    /// Tasks in `awaiting_approval`, in workflow order.
    pub fn held(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.shown.held.iter().copied()
    }

    /// When task `i` last entered `awaiting_approval` (ms since the epoch), held now
    /// or not.
    pub fn held_at(&self, i: usize) -> Option<u64> {
        self.shown.held_at.get(&i).copied()
    }

    /// Adds live output of a running attempt (ignored once the attempt is over, and
    /// kept for the live model while travelling).
    pub fn add_output(&mut self, task: &str, attempt: u32, bytes: &[u8], now_ms: u64) {
        match self.travel.parked_live() {
            Some(live) => live.add_output(task, attempt, bytes, now_ms),
            None => self.shown.add_output(task, attempt, bytes, now_ms),
        }
    }
}

impl AsOf {
    /// The run right after its first record (`run_started`).
    fn first(first: &Record) -> Result<AsOf, FoldError> {
        let state =
            RunState::from_first(&first.event).map_err(|e| FoldError { seq: first.seq, message: e.to_string() })?;
        let mut as_of = AsOf::with_state(state, first.ts);
        for i in 0..as_of.state.tasks.len() {
            as_of.track(i, first.ts);
        }
        Ok(as_of)
    }

    /// `state` with empty caches (its tasks not filed yet).
    fn with_state(state: RunState, last_ts: u64) -> AsOf {
        AsOf {
            state,
            last_ts,
            queue_depth: VecDeque::new(),
            pool_depth: VecDeque::new(),
            completions: VecDeque::new(),
            timeline: Timeline::default(),
            session_ms: None,
            resumed: false,
            ended_ms: None,
            live: HashMap::new(),
            early: HashMap::new(),
            timings: timing::Timings::default(),
            running: BTreeSet::new(),
            dead: BTreeMap::new(),
            held: BTreeSet::new(),
            held_at: HashMap::new(),
        }
    }

    /// Folds one record into the run as of the record before it: the state, the
    /// derived caches and the sparkline. The same code for the live model and for
    /// time travel, so the past shown is exactly what a replay gives.
    fn fold(&mut self, record: &Record) -> Result<(), FoldError> {
        let known = self.state.tasks.len();
        self.state
            .apply(&record.event, record.ts)
            .map_err(|e| FoldError { seq: record.seq, message: e.to_string() })?;
        // Tasks a planner spawned (or an operator submitted) join the run, filed as
        // their state says, from this record's time.
        for i in known..self.state.tasks.len() {
            self.track(i, record.ts);
        }
        self.timeline.fold(&self.state, record);
        match &record.event {
            Event::ManagerStarted { resumed, .. } => {
                self.session_ms = Some(record.ts);
                self.resumed = *resumed;
                self.ended_ms = None;
            }
            Event::RunFinished { .. } | Event::RunInterrupted { .. } => self.ended_ms = Some(record.ts),
            _ => {}
        }
        if let Some(i) = record.event.task().and_then(|t| self.state.task_index(t)) {
            self.track(i, record.ts);
            self.timings.note(i, record);
            match &record.event {
                Event::AttemptStarted { task, attempt, .. } => {
                    let started = match self.early.remove(task).filter(|early| early.attempt == *attempt) {
                        Some(early) => Live { started_ms: record.ts, ..early },
                        None => Live {
                            attempt: *attempt,
                            last_output_ms: record.ts,
                            started_ms: record.ts,
                            ..Live::default()
                        },
                    };
                    self.live.insert(task.clone(), started);
                }
                Event::AttemptSucceeded { task, .. } => {
                    self.live.remove(task);
                    self.completions.push_back(record.ts);
                }
                Event::AttemptFailed { task, .. }
                | Event::AttemptInterrupted { task, .. }
                | Event::TaskCancelled { task, .. } => {
                    self.live.remove(task);
                }
                _ => {}
            }
        }
        self.last_ts = self.last_ts.max(record.ts);
        while self.completions.front().is_some_and(|t| *t + 60_000 < self.last_ts) {
            self.completions.pop_front();
        }
        self.sample_queue(record.ts);
        Ok(())
    }

    /// A copy without the workers' output, which is not in the log: what a replay of
    /// the same records gives. Checkpoints and time travel hold these.
    fn replayed(&self) -> AsOf {
        let live = self
            .live
            .iter()
            .map(|(task, l)| {
                let replayed = Live {
                    attempt: l.attempt,
                    last_output_ms: l.started_ms,
                    started_ms: l.started_ms,
                    ..Live::default()
                };
                (task.clone(), replayed)
            })
            .collect();
        AsOf {
            state: self.state.clone(),
            last_ts: self.last_ts,
            queue_depth: self.queue_depth.clone(),
            pool_depth: self.pool_depth.clone(),
            completions: self.completions.clone(),
            timeline: self.timeline.clone(),
            session_ms: self.session_ms,
            resumed: self.resumed,
            ended_ms: self.ended_ms,
            live,
            early: HashMap::new(),
            timings: self.timings.clone(),
            running: self.running.clone(),
            dead: self.dead.clone(),
            held: self.held.clone(),
            held_at: self.held_at.clone(),
        }
    }

    /// Files task `i` among the running, the dead letters and the held as its state
    /// says; `ts` is when it got there.
    fn track(&mut self, i: usize, ts: u64) {
        if matches!(self.state.tasks[i].state, TaskState::AwaitingApproval { .. }) {
            if self.held.insert(i) {
                self.held_at.insert(i, ts);
            }
        } else {
            self.held.remove(&i);
        }
        match &self.state.tasks[i].state {
            TaskState::Running { .. } => {
                self.running.insert(i);
            }
            _ => {
                self.running.remove(&i);
            }
        }
        match &self.state.tasks[i].state {
            TaskState::DeadLettered { reason } => {
                self.dead.insert(i, fingerprint(reason));
            }
            _ => {
                self.dead.remove(&i);
            }
        }
    }

    fn sample_queue(&mut self, ts: u64) {
        let second = ts / 1000;
        let depth = self.state.count(TaskStateName::Queued) as u64;
        let pools = &self.state.pools;
        match self.queue_depth.back_mut() {
            Some((s, d)) if *s == second => {
                *d = depth;
                // Overwritten in place: most records fall in the second of the record
                // before, and an allocation per record was a share of time travel's fold.
                if let Some(last) = self.pool_depth.back_mut() {
                    last.clear();
                    last.extend(pools.iter().map(|p| p.queued as u64));
                }
            }
            _ => {
                let per_pool: Vec<u64> = pools.iter().map(|p| p.queued as u64).collect();
                // Seconds without records repeat the last depth, so the sparkline is
                // a time axis, not a record axis.
                if let Some(&(last_second, last_depth)) = self.queue_depth.back() {
                    let last_pools = self.pool_depth.back().cloned().unwrap_or_default();
                    for s in (last_second + 1..second).take(QUEUE_HISTORY) {
                        self.queue_depth.push_back((s, last_depth));
                        self.pool_depth.push_back(last_pools.clone());
                    }
                }
                self.queue_depth.push_back((second, depth));
                self.pool_depth.push_back(per_pool);
                while self.queue_depth.len() > QUEUE_HISTORY {
                    self.queue_depth.pop_front();
                    self.pool_depth.pop_front();
                }
            }
        }
    }

    /// Adds live output of a running attempt (ignored once the attempt is over; kept
    /// for it when its start is not folded yet).
    fn add_output(&mut self, task: &str, attempt: u32, bytes: &[u8], now_ms: u64) {
        if let Some(live) = self.live.get_mut(task).filter(|l| l.attempt == attempt) {
            live.push(bytes, now_ms);
            return;
        }
        let started = self.state.task_index(task).map(|i| self.state.tasks[i].attempts);
        if started.is_some_and(|started| attempt > started) {
            let early = self.early.entry(task.to_string()).or_default();
            if early.attempt != attempt {
                *early = Live { attempt, ..Live::default() };
            }
            early.push(bytes, now_ms);
        }
    }
}

impl Fleet {
    /// When the header's clock starts: a resuming manager's start (so a resumed run
    /// does not count the time it was stopped), else the run's first record.
    pub fn clock_start(&self) -> u64 {
        match self.session_ms {
            Some(ms) if self.resumed => ms.max(self.started_ms),
            _ => self.started_ms,
        }
    }

    /// Where the header's clock stands at `now_ms`: stopped at the run's end (its
    /// `run_finished` or `run_interrupted`) once it has ended, so neither the time
    /// nor the rate keeps moving after it.
    pub fn clock_now(&self, now_ms: u64) -> u64 {
        if self.state.finished || self.state.interrupted {
            self.ended_ms.unwrap_or(self.last_ts)
        } else {
            now_ms
        }
    }

    /// Completed tasks per second over the last minute (or since the clock started,
    /// when that is less), as of `now_ms`.
    pub fn throughput(&self, now_ms: u64) -> f64 {
        let window = now_ms.saturating_sub(self.clock_start()).clamp(1_000, 60_000);
        let recent = self.completions.iter().filter(|t| **t + window >= now_ms).count();
        recent as f64 / (window as f64 / 1000.0)
    }

    /// Tasks waiting for pool `p` (queued and allowed to run there).
    pub fn queued_for_pool(&self, p: usize) -> usize {
        self.state.pools[p].queued
    }

    /// Dead letters grouped by the cause of their failure: (fingerprint, tasks, attempts).
    /// Costs the dead letters, not the tasks.
    pub fn dead_letter_groups(&self) -> Vec<DeadLetterGroup> {
        let mut groups: Vec<DeadLetterGroup> = Vec::new();
        // Group by fingerprint through an index: a cause shared by thousands of dead
        // letters costs one lookup each, not a scan of the groups.
        let mut group_of: HashMap<&str, usize> = HashMap::new();
        for (&i, print) in &self.shown.dead {
            let task = &self.state.tasks[i];
            let TaskState::DeadLettered { reason } = &task.state else {
                continue;
            };
            let id = self.state.task_id(i).to_string();
            match group_of.get(print.as_str()) {
                Some(&g) => {
                    groups[g].tasks.push(id);
                    groups[g].attempts += task.attempts;
                }
                None => {
                    group_of.insert(print, groups.len());
                    groups.push(DeadLetterGroup {
                        fingerprint: print.clone(),
                        reason: reason.clone(),
                        tasks: vec![id],
                        attempts: task.attempts,
                    });
                }
            }
        }
        groups.sort_by(|a, b| b.tasks.len().cmp(&a.tasks.len()).then(a.fingerprint.cmp(&b.fingerprint)));
        groups
    }
}

/// Dead letters sharing one cause.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterGroup {
    /// The cause with numbers masked.
    pub fingerprint: String,
    /// One full reason, as an example.
    pub reason: String,
    /// Tasks in the group.
    pub tasks: Vec<String>,
    /// Attempts spent over the group.
    pub attempts: u32,
}

pub use crate::core::text::fingerprint;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_mask_numbers() {
        assert_eq!(
            fingerprint("attempts spent (3/3): exit code 2 after 1.5s"),
            "attempts spent (#/#): exit code 2 after #s"
        );
        // An exit code is the cause, not a detail (issue 15: exit 64 is not exit 1).
        assert_ne!(fingerprint("exit code 2"), fingerprint("exit code 17"));
        assert_ne!(fingerprint("exit code 2"), fingerprint("timed out"));
    }
}
