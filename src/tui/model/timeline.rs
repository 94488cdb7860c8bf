//! The timeline's data: the most recent attempts as spans over time (start, end,
//! outcome, pool) and the breaker openings, folded record by record with the rest of
//! the read model (`AsOf::fold`), so time travel gets the timeline as of its cursor
//! for free. Bounded: the newest [`TIMELINE_SPANS`] attempts and
//! [`TIMELINE_MARKS`] breaker openings, so a frame and a checkpoint's copy cost the
//! window, never the run.

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

use crate::core::{AfterFailure, Event, FailureClass, RunState, TaskState};
use crate::io::journal::Record;

/// Attempts kept for the timeline (the newest).
pub const TIMELINE_SPANS: usize = 2000;
/// Breaker openings kept for the timeline (the newest).
pub const TIMELINE_MARKS: usize = 200;

/// How an attempt ended, as the timeline colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (as of the newest record folded).
    Running,
    /// Succeeded (and passed its gates, if any).
    Ok,
    /// Failed: the worker, a gate, a spawn error, no consensus.
    Failed,
    /// Outlived its timeout.
    TimedOut,
    /// Stopped by a shutdown or a crash (not spent) or cancelled by an operator.
    Stopped,
}

/// One attempt on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The task's index.
    pub task: usize,
    /// Its attempt number (a retry when > 1).
    pub attempt: u32,
    /// The pool's index in the workflow.
    pub pool: usize,
    /// When it started (ms since the epoch).
    pub start_ms: u64,
    /// When it ended; `None` while running.
    pub end_ms: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// A retry was scheduled after it failed.
    pub retried: bool,
}

/// The newest attempts and breaker openings.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Spans in the order they started, oldest first.
    spans: VecDeque<Span>,
    /// Spans dropped from the front so far: `open` holds absolute numbers.
    dropped: u64,
    /// Running spans by task: their absolute number.
    open: HashMap<usize, u64>,
    /// Breaker openings: (when, pool index), oldest first.
    marks: VecDeque<(u64, usize)>,
}

impl Timeline {
    /// The spans kept, in the order they started.
    pub fn spans(&self) -> impl DoubleEndedIterator<Item = &Span> + ExactSizeIterator {
        self.spans.iter()
    }

    /// Breaker openings kept: (when, pool index), oldest first.
    pub fn breaker_openings(&self) -> impl DoubleEndedIterator<Item = (u64, usize)> + '_ {
        self.marks.iter().copied()
    }

    /// Bytes held (for the checkpoints' bound).
    pub(super) fn bytes(&self) -> usize {
        self.spans.len() * size_of::<Span>()
            + self.open.len() * 2 * size_of::<u64>()
            + self.marks.len() * size_of::<(u64, usize)>()
    }

    /// Seeds the attempts running in `state` (a model opened from a snapshot did not
    /// see their `attempt_started`).
    pub(super) fn seed_running(&mut self, state: &RunState) {
        for i in 0..state.tasks.len() {
            if let TaskState::Running { attempt, pool, started_ms, .. } = &state.tasks[i].state {
                let pool = state.workflow.pool_index(pool).unwrap_or(0);
                self.start(Span {
                    task: i,
                    attempt: *attempt,
                    pool,
                    start_ms: *started_ms,
                    end_ms: None,
                    outcome: Outcome::Running,
                    retried: false,
                });
            }
        }
    }

    /// Folds one record, after `state` folded it.
    pub(super) fn fold(&mut self, state: &RunState, record: &Record) {
        let ts = record.ts;
        let task = |id: &str| state.task_index(id);
        match &record.event {
            Event::AttemptStarted { task: id, attempt, pool } => {
                let Some(i) = task(id) else { return };
                self.close(i, ts, Outcome::Stopped, false);
                let pool = state.workflow.pool_index(pool).unwrap_or(0);
                let span = Span {
                    task: i,
                    attempt: *attempt,
                    pool,
                    start_ms: ts,
                    end_ms: None,
                    outcome: Outcome::Running,
                    retried: false,
                };
                self.start(span);
            }
            Event::AttemptSucceeded { task: id, .. } => {
                if let Some(i) = task(id) {
                    self.close(i, ts, Outcome::Ok, false);
                }
            }
            Event::AttemptFailed { task: id, class, then, .. } => {
                let outcome = if *class == FailureClass::Timeout { Outcome::TimedOut } else { Outcome::Failed };
                if let Some(i) = task(id) {
                    self.close(i, ts, outcome, retries(then));
                }
            }
            // A gate failed the result of an attempt that had ended well: that attempt
            // failed after all (found from the newest end, where it nearly always is).
            Event::GateFailed { task: id, attempt, then, .. } | Event::GateError { task: id, attempt, then, .. } => {
                let Some(i) = task(id) else { return };
                if let Some(span) = self.spans.iter_mut().rev().find(|s| s.task == i && s.attempt == *attempt) {
                    span.outcome = Outcome::Failed;
                    span.retried = retries(then);
                }
            }
            Event::AttemptInterrupted { task: id, .. } | Event::TaskCancelled { task: id, .. } => {
                if let Some(i) = task(id) {
                    self.close(i, ts, Outcome::Stopped, false);
                }
            }
            Event::BreakerOpened { pool, .. } => {
                self.marks.push_back((ts, state.workflow.pool_index(pool).unwrap_or(0)));
                if self.marks.len() > TIMELINE_MARKS {
                    self.marks.pop_front();
                }
            }
            _ => {}
        }
    }

    fn start(&mut self, span: Span) {
        self.open.insert(span.task, self.dropped + self.spans.len() as u64);
        self.spans.push_back(span);
        while self.spans.len() > TIMELINE_SPANS {
            // A span still running leaves the window too: the worker panes show it.
            if let Some(old) = self.spans.pop_front() {
                if self.open.get(&old.task) == Some(&self.dropped) {
                    self.open.remove(&old.task);
                }
            }
            self.dropped += 1;
        }
    }

    /// Ends task `i`'s running span, if it has one in the window.
    fn close(&mut self, i: usize, ts: u64, outcome: Outcome, retried: bool) {
        let Some(at) = self.open.remove(&i) else { return };
        let Some(span) = at.checked_sub(self.dropped).and_then(|k| self.spans.get_mut(k as usize)) else { return };
        span.end_ms = Some(ts);
        span.outcome = outcome;
        span.retried = retried;
    }
}

/// True when a failure is followed by another try.
fn retries(then: &AfterFailure) -> bool {
    matches!(then, AfterFailure::Retry { .. } | AfterFailure::Defer { .. })
}
