//! A state in the parts of a format-4 snapshot (issue 14): the head's JSON holds the
//! workflow without its specs (`WorkflowShellOut`) and the state's small fields
//! ([`SmallOut`]: queue, pools, counts, seats, the broker's part, the edges when they
//! are not the specs'); the specs and the tasks with their readiness counts are the
//! binary rows of `columns`. [`RunState::from_columns`] joins them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use super::columns::TaskRows;
use super::lazy::{GraphCell, WorkflowCell};
use super::parts::{EdgesIn, EdgesOut, Prepared};
use super::{remote, replicas, PoolState, RunState};
use crate::core::task::TaskStateName;
use crate::core::usage::SpendBook;

/// The state's fields that are not per task, as a format-4 head writes them.
pub struct SmallOut<'a>(pub &'a RunState);

#[derive(Serialize)]
struct SmallFields<'a> {
    run_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    edges: Option<EdgesOut<'a>>,
    queue: &'a BTreeMap<u64, usize>,
    next_ticket: u64,
    pools: &'a [PoolState],
    running_total: usize,
    rr_cursor: usize,
    interrupted: bool,
    finished: bool,
    counts: &'a [usize; TaskStateName::ALL.len()],
    seats: &'a BTreeMap<usize, replicas::Seats>,
    #[serde(skip_serializing_if = "remote::Remote::is_empty")]
    remote: &'a remote::Remote,
    #[serde(skip_serializing_if = "SpendBook::is_empty")]
    spend: &'a SpendBook,
}

/// [`SmallOut`] read back.
#[derive(Deserialize)]
pub struct SmallIn {
    run_id: String,
    #[serde(default)]
    edges: Option<EdgesIn>,
    queue: BTreeMap<u64, usize>,
    next_ticket: u64,
    pools: Vec<PoolState>,
    running_total: usize,
    rr_cursor: usize,
    interrupted: bool,
    finished: bool,
    counts: [usize; TaskStateName::ALL.len()],
    seats: BTreeMap<usize, replicas::Seats>,
    #[serde(default)]
    remote: remote::Remote,
    #[serde(default)]
    spend: SpendBook,
}

impl Serialize for SmallOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RunState {
            run_id,
            workflow: _,
            tasks: _,
            graph,
            queue,
            next_ticket,
            pools,
            running_total,
            rr_cursor,
            interrupted,
            finished,
            counts,
            dependency_visits: _,
            readiness: _,
            seats,
            remote,
            spend,
        } = self.0;
        let edges = (!self.0.edges_are_derived())
            .then(|| EdgesOut { dependents: &graph.dependents, dependencies: &graph.dependencies });
        SmallFields {
            run_id,
            edges,
            queue,
            next_ticket: *next_ticket,
            pools,
            running_total: *running_total,
            rr_cursor: *rr_cursor,
            interrupted: *interrupted,
            finished: *finished,
            counts,
            seats,
            remote,
            spend,
        }
        .serialize(s)
    }
}

impl SmallIn {
    /// True when the head holds edges of its own (a spawn made ones the specs do not
    /// give): such a state is read whole, not lazily.
    pub fn has_edges(&self) -> bool {
        self.edges.is_some()
    }

    /// True when its counts put every task in a terminal state (a finished run).
    pub fn all_terminal(&self) -> bool {
        TaskStateName::ALL.iter().zip(&self.counts).all(|(name, &count)| name.is_terminal() || count == 0)
    }
}

impl RunState {
    /// The state of a format-4 snapshot: the workflow with its specs and graph
    /// (`prepare`), the head's small fields, the tasks' rows. Refuses tables that
    /// disagree in length and a queue naming a task that is not there (numbers read
    /// from a file are not trusted).
    pub fn from_columns(prepared: Prepared, mut small: SmallIn, rows: TaskRows) -> Result<RunState, String> {
        let Prepared { workflow, mut graph } = prepared;
        if let Some(EdgesIn { dependents, dependencies }) = small.edges.take() {
            graph.dependents = dependents;
            graph.dependencies = dependencies;
        }
        let pool_names = graph.pool_names.clone();
        RunState::assemble(WorkflowCell::Now(workflow), GraphCell::Now(Arc::new(graph)), pool_names, small, rows)
    }

    /// [`RunState::from_columns`] with the workflow and graph in their cells
    /// (decoded, or to be decoded on first use: `lazy`), `pool_names` the workflow's.
    pub(super) fn assemble(
        workflow: WorkflowCell,
        graph: GraphCell,
        pool_names: Vec<Arc<str>>,
        small: SmallIn,
        rows: TaskRows,
    ) -> Result<RunState, String> {
        let TaskRows { tasks, readiness } = rows;
        let SmallIn {
            run_id,
            edges,
            queue,
            next_ticket,
            pools,
            running_total,
            rr_cursor,
            interrupted,
            finished,
            counts,
            seats,
            remote,
            spend,
        } = small;
        if edges.is_some() {
            return Err("edges of its own with its specs read later".into());
        }
        let n = workflow.len();
        if queue.values().any(|&i| i >= n) {
            return Err("its queue names a task it does not have".into());
        }
        let mut tasks = tasks;
        // Each task's pool as the run's one copy of its name, as the fold has it.
        // The rows share one copy per name already: only a chunk holding a task
        // whose name differs from the graph's is written.
        for i in 0..tasks.len() {
            let Some(pool) = tasks[i].pool.as_ref() else { continue };
            if let Some(shared) = pool_names.iter().find(|n| n.as_ref() == pool.as_ref()) {
                if !Arc::ptr_eq(shared, pool) {
                    tasks[i].pool = Some(Arc::clone(shared));
                }
            }
        }
        let state = RunState {
            run_id,
            workflow,
            tasks,
            graph,
            queue,
            next_ticket,
            pools,
            running_total,
            rr_cursor,
            interrupted,
            finished,
            counts,
            dependency_visits: 0,
            readiness,
            seats,
            remote,
            spend,
        };
        state.check_tables()?;
        Ok(state)
    }
}
