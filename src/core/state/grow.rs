//! The fold of a growing DAG (DESIGN §11): `tasks_spawned` appends a planner's tasks
//! under their parent, `tasks_submitted` an operator's. New tasks join blocked; the
//! index, graph, pools and readiness counts grow with them, so everything else
//! (readiness, skips, revivals, dispatch) treats them as workflow tasks.
//!
//! A dependency on a task is a dependency on all of its descendants: when a task
//! spawns, each of its dependents gains an edge from every new child, counted in its
//! readiness. So "the parent's dependents wait for all its descendants" (and are
//! skipped when one fails, revived when it is replayed) falls out of the existing
//! readiness logic, transitively for grandchildren.

use std::sync::Arc;

use super::{count_slot, ApplyError, RunState, Task};
use crate::core::checks::Finding;
use crate::core::event::HeldAtSpawn;
use crate::core::task::{TaskState, TaskStateName};
use crate::core::workflow::TaskSpec;

/// The rule family of a spawned task held over a `[planner]` limit.
pub const PLANNER_RULE_PREFIX: &str = "planner/";

/// True when `finding` held a task at its spawn (not the input guard): approving it
/// sends it back to blocked, where its dependencies decide when it runs.
pub fn held_at_spawn(finding: &Finding) -> bool {
    finding.rule.starts_with(PLANNER_RULE_PREFIX)
}

impl RunState {
    /// `tasks_spawned`: the parent, running `attempt`, gains `tasks` as children
    /// (once: a parent spawns at most one set); `held` wait for an operator.
    pub(super) fn spawn(
        &mut self,
        kind: &'static str,
        parent: &str,
        attempt: u32,
        tasks: &[TaskSpec],
        held: &[HeldAtSpawn],
    ) -> Result<(), ApplyError> {
        let p = self.running_attempt(kind, parent, attempt)?;
        if !self.tasks[p].children().is_empty() {
            return Err(self.illegal(kind, p));
        }
        if let Some(h) = held.iter().find(|h| !tasks.iter().any(|t| t.id == h.task)) {
            return Err(ApplyError::UnknownTask(h.task.clone()));
        }
        let first = self.tasks.len();
        self.append(tasks, Some(p))?;
        let children: Vec<usize> = (first..self.tasks.len()).collect();
        let waiting = self.dependents[p].to_vec();
        for &c in &children {
            for &d in &waiting {
                self.add_edge(c, d);
            }
        }
        self.tasks[p].links_mut().children = children;
        for h in held {
            let i = self.lookup(&h.task)?;
            self.tasks[i].links_mut().finding = Some(Box::new(h.finding.clone()));
            self.set_state(i, TaskState::AwaitingApproval { finding: h.finding.clone() });
        }
        Ok(())
    }

    /// `tasks_submitted`: an operator's tasks join the run, which is unfinished again.
    pub(super) fn submit(&mut self, tasks: &[TaskSpec]) -> Result<(), ApplyError> {
        self.append(tasks, None)?;
        if !tasks.is_empty() {
            self.finished = false;
        }
        Ok(())
    }

    /// Appends `tasks` (blocked) to the workflow and every per-task table, with their
    /// dependency edges. Refused before anything changes when an id is taken or a
    /// dependency unknown (a log that does not belong to this run).
    fn append(&mut self, tasks: &[TaskSpec], parent: Option<usize>) -> Result<(), ApplyError> {
        let mut new = std::collections::HashSet::new();
        for t in tasks {
            if self.task_index(&t.id).is_some() || !new.insert(t.id.as_str()) {
                return Err(ApplyError::Illegal {
                    event: "tasks_spawned",
                    task: t.id.clone(),
                    state: self.taken(&t.id),
                });
            }
        }
        for t in tasks {
            if let Some(d) = t.depends_on.iter().find(|d| self.task_index(d).is_none() && !new.contains(d.as_str())) {
                return Err(ApplyError::UnknownTask(d.clone()));
            }
        }
        let first = self.tasks.len();
        let workflow = Arc::make_mut(&mut self.workflow);
        workflow.tasks.extend(tasks.iter().cloned());
        // The one place the shared graph is written: copied here if a clone (a
        // snapshot, a checkpoint) still holds it, never on a clone.
        let graph = Arc::make_mut(&mut self.graph);
        for (k, t) in tasks.iter().enumerate() {
            let i = first + k;
            graph.index.insert(&self.workflow.tasks, i);
            let mut task = Task::blocked();
            task.links_mut().parent = parent;
            self.tasks.push(task);
            self.counts[count_slot(TaskStateName::Blocked)] += 1;
            graph.dependents.push_row();
            graph.dependencies.push_row();
            graph.push_eligible(self.workflow.eligible_pools(t));
            self.readiness.push_task();
        }
        for (k, t) in tasks.iter().enumerate() {
            for d in &t.depends_on {
                let j = self.task_index(d).expect("checked above");
                for from in self.with_descendants(j) {
                    self.add_edge(from, first + k);
                }
            }
        }
        Ok(())
    }

    /// The state named in the refusal of a task id that is already taken.
    fn taken(&self, id: &str) -> TaskStateName {
        self.task_index(id).map_or(TaskStateName::Blocked, |i| self.tasks[i].state.name())
    }

    /// Task `j` and everything it spawned, transitively, in spawn order.
    pub fn with_descendants(&self, j: usize) -> Vec<usize> {
        let mut all = vec![j];
        let mut k = 0;
        while k < all.len() {
            all.extend(self.tasks[all[k]].children().iter().copied());
            k += 1;
        }
        all
    }

    /// Task `to` depends on `from` (once), counted by `from`'s standing now.
    fn add_edge(&mut self, from: usize, to: usize) {
        if self.graph.dependencies[to].contains(&from) {
            return;
        }
        let graph = Arc::make_mut(&mut self.graph);
        graph.dependencies.push(to, from);
        graph.dependents.push(from, to);
        self.readiness.count_edge(from, to);
    }
}
