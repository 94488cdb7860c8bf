//! A state read back from a snapshot: its body is the state serialized whole, less
//! what is derived from the rest (the index by id, the pools' shared names), rebuilt
//! here.

use std::sync::Arc;

use super::RunState;

/// The workflow inside its `Arc`, (de)serialized as the plain value (serde's `rc`
/// feature is not enabled, and a state never shares its workflow on disk).
pub(super) mod shared_workflow {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::workflow::Workflow;

    use crate::core::state::WorkflowCell;

    pub fn serialize<S: Serializer>(workflow: &WorkflowCell, s: S) -> Result<S::Ok, S::Error> {
        workflow.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<WorkflowCell, D::Error> {
        Workflow::deserialize(d).map(|w| WorkflowCell::Now(Arc::new(w)))
    }
}

impl RunState {
    /// A state serialized by `serde` (a snapshot's body), with its index by id
    /// rebuilt. Refuses a body whose per-task tables disagree in length with its
    /// workflow, which no fold produces (a hand edit, or a bug).
    pub fn from_snapshot_json(bytes: &[u8]) -> Result<RunState, String> {
        let state: RunState = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        state.restored()
    }

    /// A state just deserialized, with its index by id rebuilt (see
    /// [`RunState::from_snapshot_json`]).
    pub fn restored(self) -> Result<RunState, String> {
        let mut state = self;
        let index = super::id_index::IdIndex::build(&state.workflow.tasks);
        if index.len() != state.workflow.tasks.len() {
            return Err("its workflow names a task twice".into());
        }
        let pool_names = state.workflow.pools.iter().map(|p| Arc::from(p.name.as_str())).collect();
        let graph = Arc::make_mut(&mut state.graph);
        graph.index = index;
        graph.pool_names = pool_names;
        state.check_tables()?;
        Ok(state)
    }

    /// Refuses a state whose per-task tables disagree in length with its workflow,
    /// which no fold produces (a hand edit, or a bug).
    pub(super) fn check_tables(&self) -> Result<(), String> {
        let n = self.workflow.len();
        // A graph still to be built from the specs will have one row per spec.
        let graph = match self.graph.is_derived() {
            true => [n; 3],
            false => [self.graph.dependents.len(), self.graph.dependencies.len(), self.graph.eligible.len()],
        };
        let r = &self.readiness;
        let tables =
            [self.tasks.len(), graph[0], graph[1], graph[2], r.unsatisfied.len(), r.failed.len(), r.standing.len()];
        if tables.iter().any(|&len| len != n) || self.pools.len() != self.workflow.head().pools.len() {
            return Err(format!("its tables do not match its workflow of {n} tasks"));
        }
        Ok(())
    }
}
