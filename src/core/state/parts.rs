//! A state in the two parts of a format-3 snapshot (issue 14): the workflow, with each
//! task spec's fields at their usual value left out, and the body, the rest of the
//! state less what is rebuilt from the workflow at load (the index by id, the pools'
//! names, each task's eligible pools, and the dependency edges when they are exactly
//! the ones its `depends_on` lists give). Two parts so that a reader parses them on
//! two threads; the graph is rebuilt on the workflow's thread.
//!
//! The spec and the workflow are written through mirrors here, not through their own
//! `Serialize`: theirs is the event log's format (the first record, `inspect TASK
//! --json`'s `spec`), which stays as it was. Each mirror destructures its type without
//! `..`, so a field added to the type does not compile until it is written here.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::graph::Graph;
use super::readiness::Readiness;
use super::task_part::{TasksIn, TasksOut};
use super::{remote, replicas, EdgeTable, PoolState, RunState};
use crate::core::task::TaskStateName;
use crate::core::usage::SpendBook;
use crate::core::workflow::{
    BrokerSpec, BudgetSpec, Fallback, Gate, NotifySpec, PlannerSpec, PoolSpec, RetryPolicy, Strategy, TaskDefaults,
    TaskExtras, TaskSpec, Workflow,
};

/// A spec's timeout left out of a snapshot when it is this one (the built-in default,
/// `config`'s; any other value is written).
pub const USUAL_TIMEOUT_MS: u64 = 5 * 60_000;

/// The workflow as a snapshot's first part writes it.
pub struct WorkflowOut<'a>(pub &'a Workflow);

/// The workflow read back from a snapshot's first part.
pub struct WorkflowIn(pub Workflow);

#[derive(Serialize)]
struct WorkflowFields<'a> {
    name: &'a str,
    max_parallel: usize,
    kill_grace_ms: u64,
    balancer: Strategy,
    pools: &'a [PoolSpec],
    tasks: Specs<'a>,
    #[serde(skip_serializing_if = "<[NotifySpec]>::is_empty")]
    notify: &'a [NotifySpec],
    #[serde(skip_serializing_if = "PlannerSpec::is_default")]
    planner: &'a PlannerSpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    defaults: &'a Option<TaskDefaults>,
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: &'a Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    broker: &'a Option<BrokerSpec>,
    #[serde(skip_serializing_if = "BudgetSpec::is_default")]
    budget: &'a BudgetSpec,
}

#[derive(Deserialize)]
struct WorkflowFieldsIn {
    name: String,
    max_parallel: usize,
    kill_grace_ms: u64,
    balancer: Strategy,
    pools: Vec<PoolSpec>,
    tasks: Vec<SpecIn>,
    #[serde(default)]
    notify: Vec<NotifySpec>,
    #[serde(default)]
    planner: PlannerSpec,
    #[serde(default)]
    defaults: Option<TaskDefaults>,
    #[serde(default)]
    folder: Option<std::path::PathBuf>,
    #[serde(default)]
    broker: Option<BrokerSpec>,
    #[serde(default)]
    budget: BudgetSpec,
}

/// The workflow without its specs, as a format-4 snapshot's head writes it (its specs
/// are binary rows after it: `columns`). Reads back as a [`WorkflowIn`] of no specs.
pub struct WorkflowShellOut<'a>(pub &'a Workflow);

impl Serialize for WorkflowOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        workflow_fields(self.0, &self.0.tasks).serialize(s)
    }
}

impl Serialize for WorkflowShellOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        workflow_fields(self.0, &[]).serialize(s)
    }
}

/// The workflow's fields with `specs` as its tasks.
fn workflow_fields<'a>(workflow: &'a Workflow, specs: &'a [TaskSpec]) -> WorkflowFields<'a> {
    {
        let Workflow {
            name,
            max_parallel,
            kill_grace_ms,
            balancer,
            pools,
            tasks: _,
            notify,
            planner,
            defaults,
            folder,
            broker,
            budget,
        } = workflow;
        WorkflowFields {
            name,
            max_parallel: *max_parallel,
            kill_grace_ms: *kill_grace_ms,
            balancer: *balancer,
            pools,
            tasks: Specs(specs),
            notify,
            planner,
            defaults,
            folder,
            broker,
            budget,
        }
    }
}

impl<'de> Deserialize<'de> for WorkflowIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<WorkflowIn, D::Error> {
        let WorkflowFieldsIn {
            name,
            max_parallel,
            kill_grace_ms,
            balancer,
            pools,
            tasks,
            notify,
            planner,
            defaults,
            folder,
            broker,
            budget,
        } = WorkflowFieldsIn::deserialize(d)?;
        // `SpecIn` is `TaskSpec` alone: this reuses the vector in place. Then cut to
        // its length: the reader holds it for its life, and the doubling's slack is
        // up to 2.3 MB at 250k specs (the allocator shrinks a block this large in
        // place: no copy).
        let mut tasks: Vec<TaskSpec> = tasks.into_iter().map(|s| s.0).collect();
        tasks.shrink_to_fit();
        Ok(WorkflowIn(Workflow {
            name,
            max_parallel,
            kill_grace_ms,
            balancer,
            pools,
            tasks,
            notify,
            planner,
            defaults,
            folder,
            broker,
            budget,
        }))
    }
}

struct Specs<'a>(&'a [TaskSpec]);

impl Serialize for Specs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(spec_fields))
    }
}

fn none<T>(value: &&Option<T>) -> bool {
    value.is_none()
}

fn empty<T>(value: &&[T]) -> bool {
    value.is_empty()
}

fn usual_timeout(ms: &u64) -> bool {
    *ms == USUAL_TIMEOUT_MS
}

fn usual_timeout_ms() -> u64 {
    USUAL_TIMEOUT_MS
}

fn usual_retry(retry: &RetryPolicy) -> bool {
    *retry == RetryPolicy::default()
}

/// A spec as written: every field at its usual value (none, empty, the built-in
/// timeout and retry policy) left out; ~45 bytes for a plain task instead of ~230.
#[derive(Serialize)]
struct SpecFields<'a> {
    id: &'a str,
    #[serde(rename = "type", skip_serializing_if = "str::is_empty")]
    kind: &'a str,
    #[serde(skip_serializing_if = "none")]
    pool: &'a Option<String>,
    #[serde(skip_serializing_if = "empty")]
    requires: &'a [String],
    payload: &'a crate::core::json_text::JsonText,
    #[serde(skip_serializing_if = "empty")]
    depends_on: &'a [String],
    #[serde(skip_serializing_if = "usual_timeout")]
    timeout_ms: u64,
    #[serde(skip_serializing_if = "usual_retry")]
    retry: RetryPolicy,
    #[serde(skip_serializing_if = "empty")]
    never_on: &'a [i32],
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback: Option<&'a Fallback>,
    #[serde(skip_serializing_if = "empty")]
    gates: &'a [Gate],
    #[serde(skip_serializing_if = "Option::is_none")]
    input_guard: Option<bool>,
    #[serde(skip_serializing_if = "none")]
    consensus: &'a Option<Box<crate::core::consensus::ConsensusSpec>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace: Option<&'a crate::core::workflow::Workspace>,
}

fn spec_fields(spec: &TaskSpec) -> SpecFields<'_> {
    let TaskSpec { id, kind, pool, requires, payload, depends_on, timeout_ms, retry, extras: _, consensus } = spec;
    SpecFields {
        id,
        kind,
        pool,
        requires,
        payload,
        depends_on,
        timeout_ms: *timeout_ms,
        retry: **retry,
        never_on: spec.never_on(),
        fallback: spec.fallback(),
        gates: spec.gates(),
        input_guard: spec.input_guard(),
        consensus,
        workspace: spec.workspace(),
    }
}

#[derive(Deserialize)]
struct SpecFieldsIn {
    id: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    pool: Option<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(deserialize_with = "crate::core::json_text::raw::deserialize")]
    payload: crate::core::json_text::JsonText,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default = "usual_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    retry: RetryPolicy,
    #[serde(default)]
    never_on: Vec<i32>,
    #[serde(default)]
    fallback: Option<Fallback>,
    #[serde(default)]
    gates: Vec<Gate>,
    #[serde(default)]
    input_guard: Option<bool>,
    #[serde(default)]
    consensus: Option<Box<crate::core::consensus::ConsensusSpec>>,
    #[serde(default)]
    workspace: Option<crate::core::workflow::Workspace>,
}

/// One spec read back (a newtype, so that a vector of them becomes the workflow's
/// vector of specs without a copy).
struct SpecIn(TaskSpec);

impl<'de> Deserialize<'de> for SpecIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpecIn, D::Error> {
        let SpecFieldsIn {
            id,
            kind,
            pool,
            requires,
            payload,
            depends_on,
            timeout_ms,
            retry,
            never_on,
            fallback,
            gates,
            input_guard,
            consensus,
            workspace,
        } = SpecFieldsIn::deserialize(d)?;
        let mut spec = TaskSpec {
            // A list read grows to four places at its first element; a spec holds
            // its lists for the reader's life (25,000 one-element `depends_on` lists
            // were 2.4 MB at 250k specs, 0.6 MB at their length).
            requires: exact(requires),
            depends_on: exact(depends_on),
            id,
            kind,
            pool,
            payload,
            timeout_ms,
            retry: retry.into(),
            extras: TaskExtras::boxed(never_on, fallback, gates, input_guard),
            consensus,
        };
        if workspace.is_some() {
            spec.extras_mut().workspace = workspace;
        }
        Ok(SpecIn(spec))
    }
}

/// `list` at its length (a copy only when it has slack).
fn exact<T>(mut list: Vec<T>) -> Vec<T> {
    list.shrink_to_fit();
    list
}

/// The state less its workflow and graph, as a snapshot's second part writes it.
pub struct BodyOut<'a>(pub &'a RunState);

/// The dependency edges, written only when the workflow's `depends_on` lists do not
/// give them (a planner's spawn adds edges from the spawner's children).
#[derive(Serialize)]
pub(super) struct EdgesOut<'a> {
    pub(super) dependents: &'a EdgeTable,
    pub(super) dependencies: &'a EdgeTable,
}

#[derive(Deserialize)]
pub(super) struct EdgesIn {
    pub(super) dependents: EdgeTable,
    pub(super) dependencies: EdgeTable,
}

#[derive(Serialize)]
struct BodyFields<'a> {
    run_id: &'a str,
    tasks: TasksOut<'a>,
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
    readiness: &'a Readiness,
    seats: &'a BTreeMap<usize, replicas::Seats>,
    #[serde(skip_serializing_if = "remote::Remote::is_empty")]
    remote: &'a remote::Remote,
    #[serde(skip_serializing_if = "SpendBook::is_empty")]
    spend: &'a SpendBook,
}

/// The body read back; joined to its workflow by [`RunState::from_parts`].
#[derive(Deserialize)]
pub struct BodyIn {
    run_id: String,
    tasks: TasksIn,
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
    readiness: Readiness,
    seats: BTreeMap<usize, replicas::Seats>,
    #[serde(default)]
    remote: remote::Remote,
    #[serde(default)]
    spend: SpendBook,
}

impl Serialize for BodyOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RunState {
            run_id,
            workflow: _,
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
            dependency_visits: _,
            readiness,
            seats,
            remote,
            spend,
        } = self.0;
        let edges = (!self.0.edges_are_derived())
            .then(|| EdgesOut { dependents: &graph.dependents, dependencies: &graph.dependencies });
        BodyFields {
            run_id,
            tasks: TasksOut(tasks),
            edges,
            queue,
            next_ticket: *next_ticket,
            pools,
            running_total: *running_total,
            rr_cursor: *rr_cursor,
            interrupted: *interrupted,
            finished: *finished,
            counts,
            readiness,
            seats,
            remote,
            spend,
        }
        .serialize(s)
    }
}

/// A workflow read from a snapshot with the graph it gives: the part of opening
/// that needs only the workflow (a reader builds it beside the body's parse).
pub struct Prepared {
    pub(super) workflow: Arc<Workflow>,
    pub(super) graph: Graph,
}

impl RunState {
    /// The workflow's graph built, for [`RunState::from_parts`]. Refuses a workflow
    /// that names a task twice.
    pub fn prepare(workflow: Workflow) -> Result<Prepared, String> {
        let graph = Graph::build(&workflow);
        if graph.index.len() != workflow.tasks.len() {
            return Err("its workflow names a task twice".into());
        }
        Ok(Prepared { workflow: Arc::new(workflow), graph })
    }

    /// The state of a format-3 snapshot, from its two parts.
    pub fn from_parts(prepared: Prepared, body: BodyIn) -> Result<RunState, String> {
        let Prepared { workflow, mut graph } = prepared;
        let BodyIn {
            run_id,
            tasks,
            edges,
            queue,
            next_ticket,
            pools,
            running_total,
            rr_cursor,
            interrupted,
            finished,
            counts,
            readiness,
            seats,
            remote,
            spend,
        } = body;
        if let Some(EdgesIn { dependents, dependencies }) = edges {
            graph.dependents = dependents;
            graph.dependencies = dependencies;
        }
        let mut tasks = tasks.0;
        // Each task's pool as the run's one copy of its name, as the fold has it
        // (a name read back is an allocation of its own per task).
        for task in tasks.iter_mut() {
            if let Some(shared) =
                task.pool.as_ref().and_then(|p| graph.pool_names.iter().find(|n| n.as_ref() == p.as_ref()))
            {
                task.pool = Some(Arc::clone(shared));
            }
        }
        let state = RunState {
            run_id,
            workflow: super::WorkflowCell::Now(workflow),
            tasks,
            graph: super::GraphCell::Now(Arc::new(graph)),
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

    /// True when the dependency edges are those `Graph::build` gives the workflow:
    /// each task's dependencies are its `depends_on` ids in order, and each task's
    /// dependents ascend (the one order `build` and `grow` push them in; a spawn's
    /// extra edges break one or the other). Checked at every snapshot, without
    /// building anything.
    pub(super) fn edges_are_derived(&self) -> bool {
        if self.graph.is_derived() {
            return true;
        }
        let g = &self.graph;
        let deps_match = self.workflow.tasks.iter().zip(g.dependencies.iter()).all(|(spec, deps)| {
            let mut known = spec.depends_on.iter().filter_map(|d| g.index.get(&self.workflow.tasks, d));
            deps.iter().all(|&j| known.next() == Some(j)) && known.next().is_none()
        });
        deps_match && g.dependents.iter().all(|d| d.windows(2).all(|w| w[0] <= w[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::WorkflowIn;

    #[test]
    fn the_specs_read_back_are_held_at_their_exact_length() {
        // A reader holds the specs for its whole life (250,000 of ~200 bytes): the
        // slack a growing vector leaves (up to its doubling, 2.3 MB at 250k) is peak
        // memory for nothing. Five specs grow a vector to eight places.
        let tasks: Vec<String> =
            (0..5).map(|i| format!(r#"{{"id":"t{i}","payload":{{}},"depends_on":["t0"],"requires":["a"]}}"#)).collect();
        let text = format!(
            r#"{{"name":"w","max_parallel":1,"kill_grace_ms":1,"balancer":"round-robin","pools":[],"tasks":[{}]}}"#,
            tasks.join(",")
        );
        let WorkflowIn(workflow) = serde_json::from_str(&text).unwrap();
        assert_eq!(workflow.tasks.len(), 5);
        assert_eq!(workflow.tasks.capacity(), 5);
        // And their lists: one element read grows a vector to four places.
        assert!(workflow.tasks.iter().all(|t| t.depends_on.capacity() == 1 && t.requires.capacity() == 1));
    }
}
