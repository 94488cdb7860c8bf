//! The tasks as a format-3 snapshot writes them (issue 14): a mirror of [`Task`]
//! whose state is externally tagged (`"completed"`, `{"running":{…}}`) instead of
//! `TaskState`'s internal tag (`{"state":"completed","degraded":false}`), which serde
//! reads through a buffer of the whole object: a copy and its allocations for each of
//! 250,000 tasks. `Task`'s and `TaskState`'s own serde shapes are untouched (the log
//! and front ends use them). Both mirrors destructure their type without `..`, so a
//! field or state added there does not compile until it is written here.

use std::fmt;
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::task_record::Ticket;
use super::{Links, Task, TaskLinks, Tasks};
use crate::core::checks::Finding;
use crate::core::consensus::Round;
use crate::core::event::OutputStream;
use crate::core::gates::Verdict;
use crate::core::json_text::JsonText;
use crate::core::task::TaskState;

/// Every task, written through the mirror.
pub(super) struct TasksOut<'a>(pub(super) &'a Tasks);

/// Every task, read back through the mirror.
pub(super) struct TasksIn(pub(super) Tasks);

impl Serialize for TasksOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(task_out))
    }
}

impl<'de> Deserialize<'de> for TasksIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TasksIn, D::Error> {
        struct Elements;

        impl<'de> Visitor<'de> for Elements {
            type Value = TasksIn;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of tasks")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TasksIn, A::Error> {
                let mut tasks = Tasks::default();
                // The pools' names read so far: each task's pool becomes one of them
                // (a run has a few pools and 250,000 tasks naming them).
                let mut names: Vec<Arc<str>> = Vec::new();
                while let Some(task) = seq.next_element::<TaskIn>()? {
                    tasks.push(task.into_task(&mut names));
                }
                Ok(TasksIn(tasks))
            }
        }

        d.deserialize_seq(Elements)
    }
}

fn none<T>(value: &&Option<T>) -> bool {
    value.is_none()
}

fn empty<T>(value: &&[T]) -> bool {
    value.is_empty()
}

fn zero(n: &u32) -> bool {
    *n == 0
}

fn no(b: &bool) -> bool {
    !*b
}

/// A task's state: unit states as a string, the others as `{"name": …}`.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StateOut<'a> {
    Blocked,
    Queued,
    Running {
        attempt: u32,
        pool: &'a str,
        started_ms: u64,
        #[serde(skip_serializing_if = "none")]
        process: &'a Option<u32>,
        #[serde(skip_serializing_if = "no")]
        stalled: bool,
        #[serde(skip_serializing_if = "none")]
        round: &'a Option<Box<Round>>,
    },
    Validating {
        attempt: u32,
        gate: usize,
    },
    RetryWait(u64),
    /// Completed, not degraded.
    Completed,
    /// Completed by a fallback.
    Degraded,
    DeadLettered(&'a str),
    Cancelled(&'a str),
    Skipped(&'a str),
    AwaitingApproval(&'a Finding),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StateIn {
    Blocked,
    Queued,
    Running {
        attempt: u32,
        pool: String,
        started_ms: u64,
        #[serde(default)]
        process: Option<u32>,
        #[serde(default)]
        stalled: bool,
        #[serde(default)]
        round: Option<Box<Round>>,
    },
    Validating {
        attempt: u32,
        gate: usize,
    },
    RetryWait(u64),
    Completed,
    Degraded,
    DeadLettered(String),
    Cancelled(String),
    Skipped(String),
    AwaitingApproval(Finding),
}

pub(super) fn state_out(state: &TaskState) -> StateOut<'_> {
    match state {
        TaskState::Blocked => StateOut::Blocked,
        TaskState::Queued => StateOut::Queued,
        TaskState::Running { attempt, pool, started_ms, process, stalled, round } => {
            StateOut::Running { attempt: *attempt, pool, started_ms: *started_ms, process, stalled: *stalled, round }
        }
        TaskState::Validating { attempt, gate } => StateOut::Validating { attempt: *attempt, gate: *gate },
        TaskState::RetryWait { due_ms } => StateOut::RetryWait(*due_ms),
        TaskState::Completed { degraded: false } => StateOut::Completed,
        TaskState::Completed { degraded: true } => StateOut::Degraded,
        TaskState::DeadLettered { reason } => StateOut::DeadLettered(reason),
        TaskState::Cancelled { reason } => StateOut::Cancelled(reason),
        TaskState::Skipped { because } => StateOut::Skipped(because),
        TaskState::AwaitingApproval { finding } => StateOut::AwaitingApproval(finding),
    }
}

/// A state read back through the mirror (format 4 reads its rare states so).
pub(super) fn state_in(state: StateIn) -> TaskState {
    state.into_state()
}

impl StateIn {
    fn into_state(self) -> TaskState {
        match self {
            StateIn::Blocked => TaskState::Blocked,
            StateIn::Queued => TaskState::Queued,
            StateIn::Running { attempt, pool, started_ms, process, stalled, round } => {
                TaskState::Running { attempt, pool, started_ms, process, stalled, round }
            }
            StateIn::Validating { attempt, gate } => TaskState::Validating { attempt, gate },
            StateIn::RetryWait(due_ms) => TaskState::RetryWait { due_ms },
            StateIn::Completed => TaskState::Completed { degraded: false },
            StateIn::Degraded => TaskState::Completed { degraded: true },
            StateIn::DeadLettered(reason) => TaskState::DeadLettered { reason },
            StateIn::Cancelled(reason) => TaskState::Cancelled { reason },
            StateIn::Skipped(because) => TaskState::Skipped { because },
            StateIn::AwaitingApproval(finding) => TaskState::AwaitingApproval { finding },
        }
    }
}

/// A task as written: its fields at their start value left out, as `Task` does.
#[derive(Serialize)]
struct TaskOut<'a> {
    #[serde(rename = "s")]
    state: StateOut<'a>,
    #[serde(skip_serializing_if = "zero")]
    attempts: u32,
    #[serde(skip_serializing_if = "zero")]
    budget_start: u32,
    #[serde(skip_serializing_if = "zero")]
    crashes: u32,
    #[serde(skip_serializing_if = "zero")]
    deferrals: u32,
    #[serde(skip_serializing_if = "none")]
    result: &'a Option<JsonText>,
    #[serde(skip_serializing_if = "none")]
    last_error: &'a Option<Arc<str>>,
    #[serde(skip_serializing_if = "none")]
    pool: &'a Option<Arc<str>>,
    #[serde(skip_serializing_if = "no")]
    degraded: bool,
    #[serde(skip_serializing_if = "none")]
    payload: &'a Option<JsonText>,
    #[serde(skip_serializing_if = "none")]
    pool_override: &'a Option<usize>,
    #[serde(skip_serializing_if = "empty")]
    capture_failures: &'a [(u32, OutputStream)],
    #[serde(skip_serializing_if = "empty")]
    verdicts: &'a [Verdict],
    #[serde(skip_serializing_if = "none")]
    finding: &'a Option<Box<Finding>>,
    #[serde(skip_serializing_if = "no")]
    approved: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: &'a Option<Box<super::agent::AgentState>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: &'a Option<u32>,
    #[serde(skip_serializing_if = "none")]
    parent: &'a Option<usize>,
    #[serde(skip_serializing_if = "empty")]
    children: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_ticket: Option<u64>,
}

#[derive(Deserialize)]
struct TaskIn {
    #[serde(rename = "s")]
    state: StateIn,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    budget_start: u32,
    #[serde(default)]
    crashes: u32,
    #[serde(default)]
    deferrals: u32,
    #[serde(default, deserialize_with = "crate::core::json_text::raw_option::deserialize")]
    result: Option<JsonText>,
    #[serde(default)]
    last_error: Option<Arc<str>>,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    degraded: bool,
    #[serde(default, deserialize_with = "crate::core::json_text::raw_option::deserialize")]
    payload: Option<JsonText>,
    #[serde(default)]
    pool_override: Option<usize>,
    #[serde(default)]
    capture_failures: Vec<(u32, OutputStream)>,
    #[serde(default)]
    verdicts: Vec<Verdict>,
    #[serde(default)]
    finding: Option<Box<Finding>>,
    #[serde(default)]
    approved: bool,
    #[serde(default)]
    agent: Option<Box<super::agent::AgentState>>,
    #[serde(default)]
    winner: Option<u32>,
    #[serde(default)]
    parent: Option<usize>,
    #[serde(default)]
    children: Vec<usize>,
    #[serde(default)]
    queue_ticket: Option<u64>,
}

fn task_out(task: &Task) -> TaskOut<'_> {
    let Task {
        state,
        attempts,
        budget_start,
        crashes,
        deferrals,
        result,
        last_error,
        pool,
        degraded,
        links,
        queue_ticket,
    } = task;
    let TaskLinks {
        pool_override,
        parent,
        children,
        payload,
        capture_failures,
        verdicts,
        finding,
        approved,
        agent,
        winner,
    } = links.get();
    TaskOut {
        state: state_out(state),
        attempts: *attempts,
        budget_start: *budget_start,
        crashes: *crashes,
        deferrals: *deferrals,
        result,
        last_error,
        pool,
        degraded: *degraded,
        payload,
        pool_override,
        capture_failures,
        verdicts,
        finding,
        approved: *approved,
        agent,
        winner,
        parent,
        children,
        queue_ticket: queue_ticket.get(),
    }
}

impl TaskIn {
    fn into_task(self, names: &mut Vec<Arc<str>>) -> Task {
        let TaskIn {
            state,
            attempts,
            budget_start,
            crashes,
            deferrals,
            result,
            last_error,
            pool,
            degraded,
            payload,
            pool_override,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
            parent,
            children,
            queue_ticket,
        } = self;
        let links = Links::new(TaskLinks {
            pool_override,
            parent,
            children,
            payload,
            capture_failures,
            verdicts,
            finding,
            approved,
            agent,
            winner,
        });
        Task {
            state: state.into_state(),
            attempts,
            budget_start,
            crashes,
            deferrals,
            result,
            last_error,
            pool: pool.map(|name| shared(names, name)),
            degraded,
            links,
            queue_ticket: Ticket::new(queue_ticket),
        }
    }
}

/// `name` as the one shared copy in `names`, added the first time.
fn shared(names: &mut Vec<Arc<str>>, name: String) -> Arc<str> {
    if let Some(known) = names.iter().find(|n| n.as_ref() == name) {
        return Arc::clone(known);
    }
    let new: Arc<str> = Arc::from(name);
    // Names are pools' (a few); a document naming more is not worth a longer search.
    if names.len() < 64 {
        names.push(Arc::clone(&new));
    }
    new
}
