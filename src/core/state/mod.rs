//! The run's write model: every task's state, the ready queue and pool load, folded
//! from events. [`RunState::apply`] is the only way state changes, live and in
//! replay alike, so replaying a log rebuilds exactly what was live. An event that
//! does not fit the current state is refused with [`ApplyError`], never half-applied.
//!
//! Here: the state and its constructors. The fold is `apply` (the entry point) and
//! `handlers` (one per kind of event, and `set_state`); a task's record is in
//! `task_record`, stored in copy-on-write chunks (`chunked`) so that a clone shares
//! them; `snapshot` reads a state back. Each pool's load and breaker, and the helpers
//! that move a task between pools, are in `pools`; readiness counts in `readiness`;
//! the growing DAG in `grow` (its tables in `graph`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::task::TaskStateName;
use crate::core::usage::SpendBook;
use crate::core::workflow::Workflow;

pub mod agent;
mod apply;
pub mod bytes;
mod chunked;
pub mod columns;
mod edge_table;
mod footprint;
mod graph;
pub mod grow;
mod handlers;
mod held;
mod id_index;
pub mod lazy;
mod parts;
mod parts4;
mod pool_sets;
mod pools;
mod readiness;
pub mod remote;
pub mod replicas;
mod snapshot;
mod spend;
mod task_part;
mod task_record;
mod task_serde;
pub use chunked::{Chunked, CHUNK};
pub use edge_table::EdgeTable;
pub use graph::Graph;
pub use held::finding_text;
pub use lazy::{GraphCell, Later, WorkflowCell};
pub use parts::{BodyIn, BodyOut, Prepared, WorkflowIn, WorkflowOut, WorkflowShellOut, USUAL_TIMEOUT_MS};
pub use parts4::{SmallIn, SmallOut};
pub use pool_sets::PoolSets;
pub use pools::PoolState;
use readiness::Readiness;
pub use readiness::Standing;
pub use task_record::{Links, Task, TaskLinks, Tasks};

/// Why an event could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApplyError {
    /// The log must start with `run_started`.
    #[error("the log does not start with run_started")]
    NotStarted,
    /// A second `run_started`.
    #[error("run_started appears twice")]
    StartedTwice,
    /// The event names a task the workflow does not have.
    #[error("unknown task {0:?}")]
    UnknownTask(String),
    /// The event names a pool the workflow does not have.
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    /// The event does not fit the task's state.
    #[error("{event} is not possible for task {task:?} in state {state}")]
    Illegal {
        /// Event type.
        event: &'static str,
        /// Task id.
        task: String,
        /// The task's state then.
        state: TaskStateName,
    },
}

/// Everything the engine knows about a run.
///
/// It serializes whole (a snapshot, DESIGN §6): everything the fold keeps, with the
/// workflow as grown by spawns and submits, except what is derived from the rest (the
/// index by id, rebuilt by [`RunState::from_snapshot_json`]) and the readiness work
/// counter. Read one back with [`RunState::from_snapshot_json`], never with a bare
/// `Deserialize`, which leaves the index empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// Run id from `run_started`.
    pub run_id: String,
    /// The workflow from `run_started`.
    /// (Decoded on first use when read from a format-4 snapshot: see `lazy`.)
    #[serde(with = "snapshot::shared_workflow")]
    pub workflow: WorkflowCell,
    /// Tasks, in workflow order (shared between clones until written: see `chunked`).
    pub tasks: Tasks,
    /// The index by id and the edge and pool tables, shared between clones (see
    /// `graph`); read as `state.dependents[i]` and so on through `Deref`. Flattened,
    /// so a snapshot has the tables' fields as before.
    #[serde(flatten, with = "graph::shared_graph")]
    graph: GraphCell,
    /// Ready tasks in arrival order (ticket → task).
    queue: BTreeMap<u64, usize>,
    next_ticket: u64,
    /// Each pool's live state, in workflow order.
    pub pools: Vec<PoolState>,
    /// Running attempts over all pools.
    pub running_total: usize,
    /// Where round-robin looks first.
    pub rr_cursor: usize,
    /// True after `run_interrupted` (until the next manager starts).
    pub interrupted: bool,
    /// True after `run_finished` (an operator's requeue clears it).
    pub finished: bool,
    /// Tasks per state.
    counts: [usize; TaskStateName::ALL.len()],
    /// Dependency edges looked at so far to decide readiness: the work the graph
    /// costs, counted so that tests and benches can check it grows linearly with a
    /// wide fan-in (never recorded, never compared between live and folded state).
    #[serde(skip)]
    pub dependency_visits: u64,
    /// Each task's dependencies counted by standing (see `readiness`).
    readiness: Readiness,
    /// Where the replicas of each running consensus attempt run (see `replicas`).
    pub seats: BTreeMap<usize, replicas::Seats>,
    /// Broker mode: the link and the remote workers (see `remote`); empty without a
    /// broker, and absent from older snapshots.
    #[serde(default)]
    pub remote: remote::Remote,
    /// What the workers reported spending, and the budget's state (DESIGN §13); empty
    /// without usage lines, and absent from older snapshots.
    #[serde(default, skip_serializing_if = "SpendBook::is_empty")]
    pub spend: SpendBook,
}

fn count_slot(name: TaskStateName) -> usize {
    TaskStateName::ALL.iter().position(|n| *n == name).unwrap_or(0)
}

impl RunState {
    /// The state right after `run_started`: every task blocked.
    pub fn new(run_id: String, workflow: Arc<Workflow>) -> RunState {
        let graph = Graph::build(&workflow);
        let n = workflow.tasks.len();
        let task = Task::blocked();
        let mut counts = [0; TaskStateName::ALL.len()];
        counts[count_slot(TaskStateName::Blocked)] = n;
        let readiness = Readiness::new(&graph.dependencies);
        RunState {
            readiness,
            run_id,
            pools: workflow.pools.iter().map(|p| PoolState::new(p.concurrency)).collect(),
            workflow: WorkflowCell::Now(workflow),
            tasks: Tasks::from_elem(task, n),
            graph: GraphCell::Now(Arc::new(graph)),
            queue: BTreeMap::new(),
            next_ticket: 0,
            running_total: 0,
            rr_cursor: 0,
            interrupted: false,
            finished: false,
            counts,
            dependency_visits: 0,
            seats: BTreeMap::new(),
            remote: remote::Remote::default(),
            spend: SpendBook::default(),
        }
    }

    /// Builds the state from the first event of a log.
    pub fn from_first(event: &Event) -> Result<RunState, ApplyError> {
        match event {
            Event::RunStarted { run_id, workflow } => Ok(RunState::new(run_id.clone(), Arc::clone(workflow))),
            _ => Err(ApplyError::NotStarted),
        }
    }

    /// [`RunState::from_first`] taking the event: its workflow becomes the state's
    /// without a copy (a big workflow is tens of MB; a new run writes its first record
    /// and then folds it).
    pub fn from_started(event: Event) -> Result<RunState, ApplyError> {
        match event {
            Event::RunStarted { run_id, workflow } => Ok(RunState::new(run_id, workflow)),
            _ => Err(ApplyError::NotStarted),
        }
    }

    /// Task index by id.
    pub fn task_index(&self, id: &str) -> Option<usize> {
        self.graph.index_of(&self.workflow, id)
    }

    /// Task `i`'s dependencies (indexes), without building a lazily read graph.
    pub fn dependencies_of(&self, i: usize) -> Vec<usize> {
        self.graph.dependencies_of(i)
    }

    /// Task id by index.
    pub fn task_id(&self, index: usize) -> &str {
        self.workflow.id(index)
    }

    /// Number of tasks in a state.
    pub fn count(&self, name: TaskStateName) -> usize {
        self.counts[count_slot(name)]
    }

    /// Queued tasks in the order they will be considered.
    pub fn queue(&self) -> impl Iterator<Item = usize> + '_ {
        self.queue.values().copied()
    }

    /// True when every task is terminal.
    pub fn all_terminal(&self) -> bool {
        TaskStateName::ALL.iter().filter(|n| !n.is_terminal()).all(|n| self.count(*n) == 0)
    }

    /// True when a dependent of task `i` may use it: completed, or skipped by its own
    /// fallback (which does not fail dependents).
    pub fn satisfies_dependents(&self, i: usize) -> bool {
        self.standing(i) == Standing::Satisfied
    }
}
