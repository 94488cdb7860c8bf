//! Readiness counted, not rescanned. Each task keeps how many of its dependencies do
//! not satisfy it yet and how many ended without a result for it; a task's change of
//! [`Standing`] updates the counts of its dependents only. So a task's readiness is an
//! O(1) question, and a whole run costs O(tasks + edges) however wide the graph: one
//! task waiting for 50,000 others no longer rescans 50,000 dependencies at each of
//! their transitions. The counts are part of the fold (kept by `set_state`), so a
//! replayed log has the same counts as the live run.

use super::{Chunked, EdgeTable, RunState};
use crate::core::task::TaskState;

/// What a task is to the tasks that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Standing {
    /// Not finished yet: its dependents wait.
    Pending,
    /// Completed, or skipped by its own fallback: its dependents may use it.
    Satisfied,
    /// Dead-lettered, cancelled or skipped: its dependents cannot run.
    Failed,
}

/// Per-task counts over its dependencies, and each task's standing as counted. In
/// copy-on-write chunks like the tasks, so that a clone of the state shares them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Readiness {
    /// Dependencies not [`Standing::Satisfied`].
    pub(super) unsatisfied: Chunked<u32>,
    /// Dependencies [`Standing::Failed`].
    pub(super) failed: Chunked<u32>,
    /// Each task's standing, as its dependents' counts have it.
    pub(super) standing: Chunked<Standing>,
}

impl Readiness {
    /// Every task pending: each waits for all its dependencies.
    pub(super) fn new(dependencies: &EdgeTable) -> Readiness {
        Readiness {
            unsatisfied: dependencies.iter().map(|d| u32::try_from(d.len()).unwrap_or(u32::MAX)).collect(),
            failed: Chunked::from_elem(0, dependencies.len()),
            standing: Chunked::from_elem(Standing::Pending, dependencies.len()),
        }
    }
}

impl RunState {
    /// What task `i` is to its dependents, from its state.
    pub fn standing(&self, i: usize) -> Standing {
        match &self.tasks[i].state {
            TaskState::Completed { .. } => Standing::Satisfied,
            TaskState::Skipped { .. } if self.tasks[i].degraded => Standing::Satisfied,
            TaskState::DeadLettered { .. } | TaskState::Cancelled { .. } | TaskState::Skipped { .. } => {
                Standing::Failed
            }
            _ => Standing::Pending,
        }
    }

    /// How many of task `i`'s dependencies do not satisfy it yet (0: it may run).
    pub fn unsatisfied_dependencies(&self, i: usize) -> u32 {
        self.readiness.unsatisfied[i]
    }

    /// How many of task `i`'s dependencies ended without a result for it.
    pub fn failed_dependencies(&self, i: usize) -> u32 {
        self.readiness.failed[i]
    }

    /// After task `i`'s state changed: if its standing changed, its dependents'
    /// counts follow. Returns whether it changed (its dependents need settling).
    pub(super) fn restand(&mut self, i: usize) -> bool {
        let new = self.standing(i);
        let old = self.readiness.standing[i];
        if old == new {
            // Not written: a write would copy the chunk a checkpoint shares.
            return false;
        }
        self.readiness.standing[i] = new;
        let r = &mut self.readiness;
        for &d in &self.graph.dependents[i] {
            match old {
                Standing::Satisfied => r.unsatisfied[d] += 1,
                Standing::Failed => r.failed[d] = r.failed[d].saturating_sub(1),
                Standing::Pending => {}
            }
            match new {
                Standing::Satisfied => r.unsatisfied[d] = r.unsatisfied[d].saturating_sub(1),
                Standing::Failed => r.failed[d] += 1,
                Standing::Pending => {}
            }
        }
        self.dependency_visits += self.dependents[i].len() as u64;
        true
    }
}

impl Readiness {
    /// A new task with no dependencies yet, pending to its dependents.
    pub(super) fn push_task(&mut self) {
        self.unsatisfied.push(0);
        self.failed.push(0);
        self.standing.push(Standing::Pending);
    }

    /// A new edge: `to` now also waits for `from`, as `from` stands (as counted).
    pub(super) fn count_edge(&mut self, from: usize, to: usize) {
        match self.standing[from] {
            Standing::Satisfied => {}
            Standing::Pending => self.unsatisfied[to] += 1,
            Standing::Failed => {
                self.unsatisfied[to] += 1;
                self.failed[to] += 1;
            }
        }
    }
}
