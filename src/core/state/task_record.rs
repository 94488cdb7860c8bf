//! One task's live record, and every task's in copy-on-write chunks.

use std::sync::Arc;

use super::held;
use super::Chunked;
use crate::core::checks::Finding;
use crate::core::event::OutputStream;
use crate::core::gates::Verdict;
use crate::core::json_text::JsonText;
use crate::core::task::TaskState;

/// One task's live record. A snapshot leaves out the fields still at their start
/// value (zero, none, empty, false): most tasks of a big run are plain, and a
/// snapshot of 250k tasks was ~660 bytes a task with them written out. Its serde
/// shape (format 1 and 2 snapshots) is written and read through a mirror
/// (`task_serde`): the fields in [`TaskLinks`] are in their old places.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Current state with its data.
    pub state: TaskState,
    /// Number of the latest attempt started (0 before the first).
    pub attempts: u32,
    /// Value of `attempts` when the task last (re)started its attempt budget: an
    /// operator's retry gives fresh attempts without reusing attempt numbers.
    pub budget_start: u32,
    /// Manager crashes in a row that found this task in flight (poison-pill detection):
    /// counted at the next manager's start, reset when an attempt ends by itself.
    pub crashes: u32,
    /// Consecutive resource deferrals (they set the deferral backoff).
    pub deferrals: u32,
    /// The result, once completed, as its JSON text (see [`JsonText`]: one task's
    /// result is held for the whole run).
    pub result: Option<JsonText>,
    /// The latest failure message (shared: a clone of the task, a time-travel
    /// checkpoint's or a history step's, copies a pointer, not the text).
    pub last_error: Option<Arc<str>>,
    /// Pool of the latest attempt: the run's one copy of the pool's name (see
    /// `Graph::pool_names`), so a clone of the task allocates nothing for it.
    pub pool: Option<Arc<str>>,
    /// True once a fallback was used for the task (its result is degraded).
    pub degraded: bool,
    /// What few tasks have (a fallback's pool, a planner's parent and children, an
    /// operator's payload, gate verdicts, the input guard's finding and approval,
    /// capture failures), behind one box: read through [`Task::pool_override`],
    /// [`Task::parent`], [`Task::children`], [`Task::payload`], [`Task::verdicts`],
    /// [`Task::finding`], [`Task::approved`], [`Task::capture_failures`]; set through
    /// [`Task::links_mut`].
    pub links: Links,
    /// Position in the ready queue while queued.
    pub(super) queue_ticket: Ticket,
}

/// A queued task's place in the ready queue in 8 bytes (an `Option<u64>` takes 16,
/// in each of a run's tasks): the ticket plus one, none as zero. Ticket `u64::MAX`
/// has no place (tickets count queueings from 0; a hand-made snapshot naming it
/// reads as not queued).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Ticket(Option<std::num::NonZeroU64>);

impl Ticket {
    /// The ticket `n`, or none.
    pub(super) fn new(n: Option<u64>) -> Ticket {
        Ticket(n.and_then(|n| std::num::NonZeroU64::new(n.wrapping_add(1))))
    }

    /// The ticket, if any.
    pub(super) fn get(self) -> Option<u64> {
        self.0.map(|n| n.get() - 1)
    }

    /// The ticket, if any, leaving none.
    pub(super) fn take(&mut self) -> Option<u64> {
        std::mem::take(self).get()
    }
}

/// A task's rarely set fields (see [`Task::links`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskLinks {
    /// The pool a `fallback = { pool }` sent the task to.
    pub pool_override: Option<usize>,
    /// The task that spawned this one (DESIGN §11), if a planner did.
    pub parent: Option<usize>,
    /// The tasks this one spawned, in the order it gave them.
    pub children: Vec<usize>,
    /// A payload an operator set, replacing the workflow's.
    pub payload: Option<JsonText>,
    /// Output that could not be saved: (attempt, stream) of each
    /// `output_capture_failed`, at most one per stream of an attempt.
    pub capture_failures: Vec<(u32, OutputStream)>,
    /// Every gate verdict of the task, oldest first (the next attempt's `feedback`).
    pub verdicts: Vec<Verdict>,
    /// The input guard's latest finding for the task (kept after an approval or a
    /// rejection, so that every front end can still show what was found).
    pub finding: Option<Box<Finding>>,
    /// True once an operator approved the held task: it is not checked again.
    pub approved: bool,
    /// The task's agent session and health flags (DESIGN §13).
    pub agent: Option<Box<super::agent::AgentState>>,
    /// The replica whose result won the task's latest consensus (`consensus_reached`):
    /// its gates run in that replica's workspace, after a resume too.
    pub winner: Option<u32>,
}

/// [`TaskLinks`] boxed, none while every field is at its default: 8 bytes in every
/// task instead of 136 (every task of a quarter million, and every checkpoint's copy
/// of a chunk; issue 14 measured the fields inline at ~20 MB of a 1M-record run's
/// readers). Equal when the fields are, boxed or not.
#[derive(Debug, Clone, Default)]
pub struct Links(Option<Box<TaskLinks>>);

const NO_LINKS: &TaskLinks = &TaskLinks {
    pool_override: None,
    parent: None,
    children: Vec::new(),
    payload: None,
    capture_failures: Vec::new(),
    verdicts: Vec::new(),
    finding: None,
    approved: false,
    agent: None,
    winner: None,
};

impl Links {
    /// The fields (their defaults when none is set).
    pub fn get(&self) -> &TaskLinks {
        self.0.as_deref().unwrap_or(NO_LINKS)
    }

    /// `links`, boxed only when a field is set.
    pub fn new(links: TaskLinks) -> Links {
        Links((links != TaskLinks::default()).then(|| Box::new(links)))
    }
}

impl PartialEq for Links {
    fn eq(&self, other: &Links) -> bool {
        self.get() == other.get()
    }
}

impl Task {
    /// A task before anything happened to it: blocked, no attempt yet.
    pub(super) fn blocked() -> Task {
        Task {
            state: TaskState::Blocked,
            attempts: 0,
            budget_start: 0,
            crashes: 0,
            deferrals: 0,
            result: None,
            last_error: None,
            pool: None,
            degraded: false,
            links: Links::default(),
            queue_ticket: Ticket::default(),
        }
    }

    /// The pool a `fallback = { pool }` sent the task to.
    pub fn pool_override(&self) -> Option<usize> {
        self.links.get().pool_override
    }

    /// The task that spawned this one, if a planner did.
    pub fn parent(&self) -> Option<usize> {
        self.links.get().parent
    }

    /// The tasks this one spawned, in the order it gave them.
    pub fn children(&self) -> &[usize] {
        &self.links.get().children
    }

    /// A payload an operator set, replacing the workflow's.
    pub fn payload(&self) -> Option<&JsonText> {
        self.links.get().payload.as_ref()
    }

    /// Output that could not be saved: (attempt, stream), at most one per stream of
    /// an attempt.
    pub fn capture_failures(&self) -> &[(u32, OutputStream)] {
        &self.links.get().capture_failures
    }

    /// Every gate verdict of the task, oldest first.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.links.get().verdicts
    }

    /// The input guard's latest finding for the task.
    pub fn finding(&self) -> Option<&Finding> {
        self.links.get().finding.as_deref()
    }

    /// The task's agent session and flags, if it has any.
    pub fn agent(&self) -> Option<&super::agent::AgentState> {
        self.links.get().agent.as_deref()
    }

    /// True once an operator approved the held task.
    pub fn approved(&self) -> bool {
        self.links.get().approved
    }

    /// The replica whose result won the task's latest consensus, if one did.
    pub fn winner(&self) -> Option<u32> {
        self.links.get().winner
    }

    /// The rare fields, to set one (boxed on first use).
    pub fn links_mut(&mut self) -> &mut TaskLinks {
        self.links.0.get_or_insert_with(Default::default)
    }

    /// Why the task ended, or its latest failure while it lives; `None` once completed.
    /// The one wording every front end shows (the `--json` document's `error`, the
    /// inspect table, the TUI).
    pub fn why(&self) -> Option<String> {
        match &self.state {
            TaskState::DeadLettered { reason } => Some(reason.clone()),
            TaskState::Cancelled { reason } => Some(format!("cancelled: {reason}")),
            TaskState::Skipped { because } if self.degraded => Some(format!("skipped by its {because}")),
            TaskState::Skipped { because } => Some(format!("skipped: dependency {because:?} did not complete")),
            TaskState::Completed { .. } => None,
            TaskState::AwaitingApproval { finding } => Some(held::held_reason(finding)),
            _ => self.last_error.as_deref().map(str::to_string),
        }
    }
}

/// Every task's record, in workflow order, in copy-on-write chunks: a clone of the
/// state shares them (see `chunked`).
pub type Tasks = Chunked<Task>;
