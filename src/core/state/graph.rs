//! The run's graph tables: the index by id, each task's dependencies and dependents,
//! and the pools each task may run on. They change only when the DAG grows (a
//! planner's spawn, an operator's submit: `grow`), while everything else in a
//! [`RunState`] changes with nearly every event. So they live behind one `Arc`: a
//! clone of the state (a snapshot, a time-travel checkpoint) shares them instead of
//! copying a quarter million edge lists, and a spawn copies them once
//! (`Arc::make_mut`) only when a clone still holds the old ones.

use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::edge_table::EdgeTable;
use super::id_index::IdIndex;
use super::pool_sets::PoolSets;
use super::RunState;
use crate::core::workflow::Workflow;

/// The per-run tables that only a growing DAG changes. Read them through the state
/// (`state.dependents[i]`, `state.dependencies[i]`, `state.eligible[i]`); only
/// `grow` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Task index by id over the workflow's specs (derived: rebuilt by
    /// `RunState::restored`, never saved).
    #[serde(skip)]
    pub(super) index: IdIndex,
    /// For each task, the tasks that depend on it (`dependents[i]` is a slice).
    pub dependents: EdgeTable,
    /// For each task, its dependencies.
    pub dependencies: EdgeTable,
    /// For each task, the pools it may run on (`eligible[i]` is a slice): each
    /// distinct set once, 4 bytes a task (see `pool_sets`). Written and read as a
    /// list of lists, as before.
    pub eligible: PoolSets,
    /// Each pool's name, once for the run (derived from the workflow, never saved):
    /// every task's `pool` shares it, so cloning a task allocates nothing for it.
    #[serde(skip)]
    pub(super) pool_names: Vec<Arc<str>>,
}

impl Graph {
    /// The tables of `workflow` as it stands: what `RunState::new` starts from, and
    /// what a format-3 snapshot rebuilds instead of storing them (a grown DAG's tables
    /// are the same: `grow` appends tasks and their edges in this same order).
    /// A dependency on an id the workflow does not have gives no edge.
    pub(super) fn build(workflow: &Workflow) -> Graph {
        let index = IdIndex::build(&workflow.tasks);
        let n = workflow.tasks.len();
        let mut dependents = EdgeTable::with_rows(n);
        let mut dependencies = EdgeTable::with_rows(n);
        for (i, t) in workflow.tasks.iter().enumerate() {
            for d in &t.depends_on {
                if let Some(j) = index.get(&workflow.tasks, d) {
                    dependents.push(j, i);
                    dependencies.push(i, j);
                }
            }
        }
        // A spec naming the same pool and capabilities as the one before has its set
        // (most do: a set per task was a vector and a hash each, issue 14).
        let mut eligible = PoolSets::default();
        let mut previous: Option<&crate::core::workflow::TaskSpec> = None;
        for t in &workflow.tasks {
            match previous {
                Some(p) if p.pool == t.pool && p.requires == t.requires => eligible.repeat_last(),
                _ => eligible.push(workflow.eligible_pools(t)),
            }
            previous = Some(t);
        }
        let pool_names = workflow.pools.iter().map(|p| Arc::from(p.name.as_str())).collect();
        Graph { index, dependents, dependencies, eligible, pool_names }
    }

    /// A task appended with `set` as its eligible pools.
    pub(super) fn push_eligible(&mut self, set: Vec<usize>) {
        self.eligible.push(set);
    }

    /// Pool `p`'s shared name.
    pub(super) fn pool_name(&self, p: usize) -> Option<Arc<str>> {
        self.pool_names.get(p).cloned()
    }
}

/// Read access to the graph as if its tables were the state's own fields, so that
/// front ends keep writing `state.dependents[i]`. There is no `DerefMut`: a write
/// must go through `Arc::make_mut` (in `grow`), which keeps clones apart.
impl Deref for RunState {
    type Target = Graph;

    fn deref(&self) -> &Graph {
        &self.graph
    }
}

/// The graph inside its `Arc`, (de)serialized as the plain value and flattened into
/// the state, so a snapshot keeps its `dependents`, `dependencies` and `eligible`
/// fields where they always were (serde's `rc` feature is not enabled).
pub(super) mod shared_graph {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Graph;

    use super::super::GraphCell;

    pub fn serialize<S: Serializer>(graph: &GraphCell, s: S) -> Result<S::Ok, S::Error> {
        graph.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<GraphCell, D::Error> {
        Graph::deserialize(d).map(|g| GraphCell::Now(Arc::new(g)))
    }
}
