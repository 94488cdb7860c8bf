//! The run's write model: every task's state, the ready queue and pool load, folded
//! from events. [`RunState::apply`] is the only way state changes, live and in
//! replay alike, so replaying a log rebuilds exactly what was live. An event that
//! does not fit the current state is refused with [`ApplyError`], never half-applied.
//! Each pool's load and breaker, and the helpers that move a task between pools, are
//! in `pools`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::breaker::Circuit;
use super::checks::Finding;
use super::event::{AfterFailure, Event, FailureClass, OutputStream};
use super::gates::{Verdict, VerdictKind};
use super::json_text::JsonText;
use super::task::{TaskState, TaskStateName};
use crate::core::workflow::{Fallback, GateKind, Workflow};

mod chunked;
mod footprint;
mod graph;
pub mod grow;
mod held;
mod pools;
mod readiness;
pub mod replicas;
pub use chunked::{Chunked, CHUNK};
pub use graph::Graph;
pub use held::finding_text;
pub use pools::PoolState;
use readiness::Readiness;
pub use readiness::Standing;

/// One task's live record. A snapshot leaves out the fields still at their start
/// value (zero, none, empty, false): most tasks of a big run are plain, and a
/// snapshot of 250k tasks was ~660 bytes a task with them written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Current state with its data.
    pub state: TaskState,
    /// Number of the latest attempt started (0 before the first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Value of `attempts` when the task last (re)started its attempt budget: an
    /// operator's retry gives fresh attempts without reusing attempt numbers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget_start: u32,
    /// Manager crashes in a row that found this task in flight (poison-pill detection):
    /// counted at the next manager's start, reset when an attempt ends by itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crashes: u32,
    /// Consecutive resource deferrals (they set the deferral backoff).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferrals: u32,
    /// The result, once completed, as its JSON text (see [`JsonText`]: one task's
    /// result is held for the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonText>,
    /// The latest failure message (shared: a clone of the task, a time-travel
    /// checkpoint's or a history step's, copies a pointer, not the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Arc<str>>,
    /// Pool of the latest attempt: the run's one copy of the pool's name (see
    /// `Graph::pool_names`), so a clone of the task allocates nothing for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Arc<str>>,
    /// True once a fallback was used for the task (its result is degraded).
    #[serde(default, skip_serializing_if = "is_false")]
    pub degraded: bool,
    /// A payload an operator set, replacing the workflow's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<JsonText>,
    /// The pool a `fallback = { pool }` sent the task to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_override: Option<usize>,
    /// Output that could not be saved: (attempt, stream) of each
    /// `output_capture_failed`, at most one per stream of an attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture_failures: Vec<(u32, OutputStream)>,
    /// Every gate verdict of the task, oldest first (the next attempt's `feedback`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// The input guard's latest finding for the task (kept after an approval or a
    /// rejection, so that every front end can still show what was found).
    /// Boxed: few tasks have one, and inline it made every task 64 bytes bigger
    /// (every time-travel checkpoint copies every task).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<Finding>>,
    /// True once an operator approved the held task: it is not checked again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub approved: bool,
    /// The task that spawned this one (DESIGN §11), if a planner did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The tasks this one spawned, in the order it gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<usize>,
    /// Position in the ready queue while queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue_ticket: Option<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Task {
    /// A task before anything happened to it: blocked, no attempt yet.
    fn blocked() -> Task {
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
            payload: None,
            pool_override: None,
            capture_failures: Vec::new(),
            verdicts: Vec::new(),
            finding: None,
            approved: false,
            parent: None,
            children: Vec::new(),
            queue_ticket: None,
        }
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
    #[serde(with = "shared_workflow")]
    pub workflow: Arc<Workflow>,
    /// Tasks, in workflow order (shared between clones until written: see `chunked`).
    pub tasks: Tasks,
    /// The index by id and the edge and pool tables, shared between clones (see
    /// `graph`); read as `state.dependents[i]` and so on through `Deref`. Flattened,
    /// so a snapshot has the tables' fields as before.
    #[serde(flatten, with = "graph::shared_graph")]
    graph: Arc<Graph>,
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
}

/// The workflow inside its `Arc`, (de)serialized as the plain value (serde's `rc`
/// feature is not enabled, and a state never shares its workflow on disk).
mod shared_workflow {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::core::workflow::Workflow;

    pub fn serialize<S: Serializer>(workflow: &Arc<Workflow>, s: S) -> Result<S::Ok, S::Error> {
        workflow.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Workflow>, D::Error> {
        Workflow::deserialize(d).map(Arc::new)
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
        let n = state.workflow.tasks.len();
        let g = &state.graph;
        let tables = [state.tasks.len(), g.dependents.len(), g.dependencies.len(), g.eligible.len()];
        if tables.iter().any(|&len| len != n) || state.pools.len() != state.workflow.pools.len() {
            return Err(format!("its tables do not match its workflow of {n} tasks"));
        }
        let index: HashMap<String, usize> =
            state.workflow.tasks.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        if index.len() != n {
            return Err("its workflow names a task twice".into());
        }
        let pool_names = state.workflow.pools.iter().map(|p| Arc::from(p.name.as_str())).collect();
        let graph = Arc::make_mut(&mut state.graph);
        graph.index = index;
        graph.pool_names = pool_names;
        Ok(state)
    }
}

fn count_slot(name: TaskStateName) -> usize {
    TaskStateName::ALL.iter().position(|n| *n == name).unwrap_or(0)
}

impl RunState {
    /// The state right after `run_started`: every task blocked.
    pub fn new(run_id: String, workflow: Arc<Workflow>) -> RunState {
        let index: HashMap<String, usize> = workflow.tasks.iter().enumerate().map(|(i, t)| (t.id.clone(), i)).collect();
        let n = workflow.tasks.len();
        let mut dependents = vec![Vec::new(); n];
        let mut dependencies = vec![Vec::new(); n];
        for (i, t) in workflow.tasks.iter().enumerate() {
            for d in &t.depends_on {
                if let Some(&j) = index.get(d) {
                    dependents[j].push(i);
                    dependencies[i].push(j);
                }
            }
        }
        let eligible = workflow.tasks.iter().map(|t| workflow.eligible_pools(t)).collect();
        let pool_names = workflow.pools.iter().map(|p| Arc::from(p.name.as_str())).collect();
        let task = Task::blocked();
        let mut counts = [0; TaskStateName::ALL.len()];
        counts[count_slot(TaskStateName::Blocked)] = n;
        let readiness = Readiness::new(&dependencies);
        RunState {
            readiness,
            run_id,
            pools: workflow.pools.iter().map(|p| PoolState::new(p.concurrency)).collect(),
            workflow,
            tasks: Tasks::from_elem(task, n),
            graph: Arc::new(Graph { index, dependents, dependencies, eligible, pool_names }),
            queue: BTreeMap::new(),
            next_ticket: 0,
            running_total: 0,
            rr_cursor: 0,
            interrupted: false,
            finished: false,
            counts,
            dependency_visits: 0,
            seats: BTreeMap::new(),
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
        self.graph.index.get(id).copied()
    }

    /// Task id by index.
    pub fn task_id(&self, index: usize) -> &str {
        &self.workflow.tasks[index].id
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

    /// Takes task `i`'s fallback: completed with its result, queued for its pool, or
    /// skipped; in every case marked degraded.
    fn take_fallback(&mut self, i: usize, reason: &str, illegal: ApplyError) -> Result<(), ApplyError> {
        let fallback = self.workflow.tasks[i].fallback.clone().ok_or(illegal.clone())?;
        if self.tasks[i].degraded {
            // A fallback is used once; a second one would loop.
            return Err(illegal);
        }
        self.tasks[i].degraded = true;
        self.tasks[i].last_error = Some(format!("fallback used: {reason}").into());
        match fallback {
            Fallback::Result(value) => {
                self.tasks[i].result = Some(JsonText::of(&value));
                self.set_state(i, TaskState::Completed { degraded: true });
            }
            Fallback::Pool(name) => {
                let p = self.pool_lookup(&name)?;
                self.set_pool_override(i, p);
                let t = &mut self.tasks[i];
                t.budget_start = t.attempts;
                self.set_state(i, TaskState::Queued);
            }
            Fallback::Skip => self.set_state(i, TaskState::Skipped { because: format!("fallback: {reason}") }),
        }
        Ok(())
    }

    fn lookup(&self, id: &str) -> Result<usize, ApplyError> {
        self.task_index(id).ok_or_else(|| ApplyError::UnknownTask(id.to_string()))
    }

    fn set_state(&mut self, i: usize, state: TaskState) {
        let old = self.tasks[i].state.name();
        let new = state.name();
        self.counts[count_slot(old)] -= 1;
        self.counts[count_slot(new)] += 1;
        if old == TaskStateName::Queued {
            if let Some(ticket) = self.tasks[i].queue_ticket.take() {
                self.queue.remove(&ticket);
            }
            for k in 0..self.pools_for(i).len() {
                let p = self.pools_for(i)[k];
                self.pools[p].queued -= 1;
            }
        }
        if let TaskState::Running { pool, .. } = &self.tasks[i].state {
            if let Some(p) = self.workflow.pool_index(pool) {
                self.pools[p].running -= 1;
            }
            self.running_total -= 1;
            self.release_seats(i);
        }
        if new == TaskStateName::Queued {
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.queue.insert(ticket, i);
            self.tasks[i].queue_ticket = Some(ticket);
            for k in 0..self.pools_for(i).len() {
                let p = self.pools_for(i)[k];
                self.pools[p].queued += 1;
            }
        }
        if let TaskState::Running { pool, .. } = &state {
            if let Some(p) = self.workflow.pool_index(pool) {
                self.pools[p].running += 1;
            }
            self.running_total += 1;
        }
        self.tasks[i].state = state;
        self.restand(i);
    }

    /// Folds one event into the state at time `ts_ms` (the event's timestamp).
    ///
    /// The one entry point of the fold, live and in replay. Each event goes to the
    /// handler of its kind below, which refuses it with an [`ApplyError`] before it
    /// changes anything when it does not fit the current state.
    pub fn apply(&mut self, event: &Event, ts_ms: u64) -> Result<(), ApplyError> {
        let kind = event.kind();
        match event {
            // The run as a whole.
            Event::RunStarted { .. } => return Err(ApplyError::StartedTwice),
            Event::ManagerStarted { .. } => {
                self.interrupted = false;
                self.count_crash();
            }
            Event::RunInterrupted { .. } => self.interrupted = true,
            Event::RunFinished { .. } => self.finished = true,
            Event::LogRepaired { .. } => {}
            // A task between its attempts.
            Event::TaskReady { task } => {
                self.shift(kind, task, |s| *s == TaskState::Blocked, TaskState::Queued)?;
            }
            Event::RetryDue { task } => {
                self.shift(kind, task, |s| matches!(s, TaskState::RetryWait { .. }), TaskState::Queued)?;
            }
            Event::TaskCancelled { task, reason } => {
                self.shift(kind, task, |s| !s.is_terminal(), TaskState::Cancelled { reason: reason.clone() })?;
            }
            Event::TaskSkipped { task, because } => {
                self.shift(kind, task, |s| *s == TaskState::Blocked, TaskState::Skipped { because: because.clone() })?;
            }
            Event::TaskRevived { task, .. } => {
                self.shift(kind, task, |s| s.name() == TaskStateName::Skipped, TaskState::Blocked)?;
                self.finished = false;
            }
            Event::TaskRequeued { task, .. } => self.requeue(kind, task)?,
            Event::PayloadEdited { task, payload } => self.edit_payload(kind, task, payload)?,
            Event::FallbackUsed { task, reason } => self.use_fallback(kind, task, reason)?,
            // The input guard's hold and the operator's answer (see `held`).
            Event::TaskHeld { task, finding } => self.hold(kind, task, finding)?,
            Event::TaskApproved { task } => self.approve(kind, task)?,
            Event::TaskRejected { task, reason } => self.reject(kind, task, reason)?,
            // The DAG grows (see `grow`).
            Event::TasksSpawned { task, attempt, tasks, held } => self.spawn(kind, task, *attempt, tasks, held)?,
            Event::SpawnRefused { task, attempt, .. } => {
                self.running_attempt(kind, task, *attempt)?;
            }
            Event::TasksSubmitted { tasks, .. } => self.submit(tasks)?,
            // An attempt's life.
            Event::AttemptStarted { task, attempt, pool } => self.start_attempt(kind, task, *attempt, pool, ts_ms)?,
            Event::AttemptSpawned { task, attempt, pid } => self.attempt_spawned(kind, task, *attempt, *pid)?,
            Event::AttemptSucceeded { task, attempt, result, .. } => self.succeed(kind, task, *attempt, result)?,
            Event::AttemptFailed { task, attempt, class, error, then, .. } => {
                let (i, p) = self.failing_attempt(kind, task, *attempt)?;
                self.count_failure(i, p, *class, error, ts_ms);
                self.after_failure(kind, i, *attempt, then)?;
            }
            Event::AttemptInterrupted { task, attempt, .. } => self.interrupt_attempt(kind, task, *attempt)?,
            Event::VoteCast { task, attempt, replica, worker, result, class, error, .. } => {
                let failure = class.map(|c| (c, error.as_deref().unwrap_or_default()));
                self.cast_vote(kind, task, *attempt, *replica, worker, result, failure, ts_ms)?
            }
            Event::ConsensusReached { task, attempt, .. } | Event::ConsensusFailed { task, attempt, .. } => {
                self.note_consensus(kind, task, *attempt)?
            }
            // A result's gates.
            Event::GatePassed {
                task,
                attempt,
                index,
                kind: gate,
                reason,
                score,
                critique,
                duration_ms,
                reviewer_failures,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Passed;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, *score, critique, *duration_ms);
                self.pass_gate(i, *attempt, *index);
            }
            Event::GateFailed {
                task,
                attempt,
                index,
                kind: gate,
                error: reason,
                score,
                critique,
                duration_ms,
                reviewer_failures,
                then,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Failed;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, *score, critique, *duration_ms);
                self.fail_gate(kind, i, *attempt, reason, then)?;
            }
            Event::GateError {
                task,
                attempt,
                index,
                kind: gate,
                error: reason,
                duration_ms,
                reviewer_failures,
                then,
            } => {
                let i = self.validating(kind, task, *attempt, *index)?;
                self.count_reviewer_failures(i, *index, reviewer_failures, ts_ms);
                let verdict = VerdictKind::Error;
                self.record_verdict(i, *attempt, *index, *gate, verdict, reason, None, &None, *duration_ms);
                self.fail_gate(kind, i, *attempt, reason, then)?;
            }
            Event::AttemptStalled { task, attempt, .. } => self.set_stalled(kind, task, *attempt, true)?,
            Event::AttemptActive { task, attempt } => self.set_stalled(kind, task, *attempt, false)?,
            Event::OutputCaptureFailed { task, attempt, stream, .. } => {
                self.capture_failed(kind, task, *attempt, *stream)?
            }
            // Pools and their breakers.
            Event::PoolPaused { pool } => self.pool_mut(pool)?.paused = true,
            Event::PoolResumed { pool } => self.pool_mut(pool)?.paused = false,
            Event::ConcurrencyChanged { pool, concurrency } => self.pool_mut(pool)?.concurrency = (*concurrency).max(1),
            Event::BreakerOpened { pool, until_ms, .. } => {
                self.pool_mut(pool)?.reset_breaker(Circuit::Open { until_ms: *until_ms });
            }
            Event::BreakerHalfOpened { pool } => {
                self.pool_mut(pool)?.breaker.circuit = Circuit::HalfOpen { probes_started: 0 };
            }
            Event::BreakerClosed { pool, .. } => self.pool_mut(pool)?.reset_breaker(Circuit::Closed),
        }
        // Any event may free the pool a waiting judge needs.
        self.seat_judges();
        Ok(())
    }
}

/// The fold's handlers. Each one takes the event's `kind` (for its refusal), checks
/// the event fits, and only then changes the state.
impl RunState {
    /// The refusal of an event of `kind` for task `i` in its current state.
    fn illegal(&self, kind: &'static str, i: usize) -> ApplyError {
        ApplyError::Illegal { event: kind, task: self.task_id(i).to_string(), state: self.tasks[i].state.name() }
    }

    /// Task `id`'s index, when its state `fits` an event of `kind`.
    fn task_where(
        &self,
        kind: &'static str,
        id: &str,
        fits: impl FnOnce(&TaskState) -> bool,
    ) -> Result<usize, ApplyError> {
        let i = self.lookup(id)?;
        if fits(&self.tasks[i].state) {
            Ok(i)
        } else {
            Err(self.illegal(kind, i))
        }
    }

    /// Task `id`'s index, when `attempt` is the attempt it is running.
    fn running_attempt(&self, kind: &'static str, id: &str, attempt: u32) -> Result<usize, ApplyError> {
        self.task_where(kind, id, |s| matches!(s, TaskState::Running { attempt: a, .. } if *a == attempt))
    }

    /// Moves task `id` to state `to`, when its state `fits` an event of `kind`.
    fn shift(
        &mut self,
        kind: &'static str,
        id: &str,
        fits: impl FnOnce(&TaskState) -> bool,
        to: TaskState,
    ) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, fits)?;
        self.set_state(i, to);
        Ok(())
    }

    /// `task_requeued`: a dead-lettered or cancelled task starts over with a fresh
    /// attempt budget, queued, or blocked while a dependency is unfinished.
    fn requeue(&mut self, kind: &'static str, id: &str) -> Result<(), ApplyError> {
        let i =
            self.task_where(kind, id, |s| matches!(s.name(), TaskStateName::DeadLettered | TaskStateName::Cancelled))?;
        let t = &mut self.tasks[i];
        t.budget_start = t.attempts;
        t.crashes = 0;
        t.deferrals = 0;
        t.result = None;
        t.degraded = false;
        t.pool_override = None;
        let ready = self.unsatisfied_dependencies(i) == 0;
        self.set_state(i, if ready { TaskState::Queued } else { TaskState::Blocked });
        self.finished = false;
        Ok(())
    }

    /// `payload_edited`: refused while an attempt runs, which already has its payload
    /// (edit before a retry).
    fn edit_payload(&mut self, kind: &'static str, id: &str, payload: &Value) -> Result<(), ApplyError> {
        let i =
            self.task_where(kind, id, |s| !matches!(s, TaskState::Running { .. } | TaskState::Validating { .. }))?;
        self.tasks[i].payload = Some(JsonText::of(payload));
        Ok(())
    }

    /// `fallback_used`: a queued task takes its fallback.
    fn use_fallback(&mut self, kind: &'static str, id: &str, reason: &str) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, |s| *s == TaskState::Queued)?;
        let refused = self.illegal(kind, i);
        self.take_fallback(i, reason, refused)
    }

    /// `attempt_started`: queued → running on `pool`; a half-open breaker counts the probe.
    fn start_attempt(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        pool: &str,
        ts_ms: u64,
    ) -> Result<(), ApplyError> {
        // Lookups before the state check, so an unknown pool is reported as such.
        let i = self.lookup(id)?;
        let p = self.pool_lookup(pool)?;
        if self.tasks[i].state != TaskState::Queued {
            return Err(self.illegal(kind, i));
        }
        self.tasks[i].attempts = attempt;
        self.tasks[i].pool = Some(self.graph.pool_name(p).unwrap_or_else(|| Arc::from(pool)));
        if self.pools_for(i).len() > 1 {
            self.rr_cursor = p + 1;
        }
        self.pools[p].count_probe();
        self.set_state(i, TaskState::running(attempt, pool.to_string(), ts_ms));
        self.seat_replicas(i, p);
        Ok(())
    }

    /// `attempt_spawned`: the running attempt has a process; resource deferrals are over.
    fn attempt_spawned(&mut self, kind: &'static str, id: &str, attempt: u32, pid: u32) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        match &mut self.tasks[i].state {
            TaskState::Running { attempt: a, process, .. } if *a == attempt => *process = Some(pid),
            _ => return Err(self.illegal(kind, i)),
        }
        self.tasks[i].deferrals = 0;
        Ok(())
    }

    /// `output_capture_failed`: a note on an attempt that was started (it changes no
    /// state; the warning is kept with the task).
    fn capture_failed(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        stream: OutputStream,
    ) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        if attempt == 0 || attempt > self.tasks[i].attempts {
            return Err(self.illegal(kind, i));
        }
        let failures = &mut self.tasks[i].capture_failures;
        if !failures.contains(&(attempt, stream)) {
            failures.push((attempt, stream));
        }
        Ok(())
    }

    /// `attempt_succeeded`: running → completed with its result (degraded if a
    /// fallback pool ran it), or → validating when the task has gates (the result is
    /// kept, and counts once the last gate passes).
    fn succeed(&mut self, kind: &'static str, id: &str, attempt: u32, result: &Value) -> Result<(), ApplyError> {
        let i = self.running_attempt(kind, id, attempt)?;
        self.tasks[i].result = Some(JsonText::of(result));
        self.tasks[i].crashes = 0;
        if self.workflow.tasks[i].gates.is_empty() {
            let degraded = self.tasks[i].degraded;
            self.set_state(i, TaskState::Completed { degraded });
        } else {
            self.set_state(i, TaskState::Validating { attempt, gate: 0 });
        }
        Ok(())
    }

    /// Task `id`'s index, when it is validating `attempt` at gate `index`.
    fn validating(&self, kind: &'static str, id: &str, attempt: u32, index: usize) -> Result<usize, ApplyError> {
        self.task_where(
            kind,
            id,
            |s| matches!(s, TaskState::Validating { attempt: a, gate } if *a == attempt && *gate == index),
        )
    }

    /// Keeps a gate's verdict with the task (its next attempts' `feedback`).
    #[allow(clippy::too_many_arguments)]
    fn record_verdict(
        &mut self,
        i: usize,
        attempt: u32,
        index: usize,
        kind: GateKind,
        verdict: VerdictKind,
        reason: &str,
        score: Option<u8>,
        critique: &Option<String>,
        duration_ms: u64,
    ) {
        // A verdict ends the gate that was in flight: a row of crashes is broken (the
        // poison pill's own `gate_error` ends the task, whose requeue starts a new row).
        self.tasks[i].crashes = 0;
        self.tasks[i].verdicts.push(Verdict {
            attempt,
            index,
            kind,
            verdict,
            reason: reason.to_string(),
            score,
            critique: critique.clone(),
            duration_ms,
        });
    }

    /// `gate_passed`: on to the next gate, or completed after the last one.
    fn pass_gate(&mut self, i: usize, attempt: u32, index: usize) {
        if index + 1 < self.workflow.tasks[i].gates.len() {
            self.set_state(i, TaskState::Validating { attempt, gate: index + 1 });
        } else {
            let degraded = self.tasks[i].degraded;
            self.set_state(i, TaskState::Completed { degraded });
        }
    }

    /// `gate_failed` / `gate_error`: a failed attempt. The result does not count; the
    /// worker's pool is not blamed (its breaker counts agents that fail to answer, not
    /// answers that fail a check).
    fn fail_gate(
        &mut self,
        kind: &'static str,
        i: usize,
        attempt: u32,
        reason: &str,
        then: &AfterFailure,
    ) -> Result<(), ApplyError> {
        if matches!(then, AfterFailure::Defer { .. }) {
            // A gate's verdict is never "not the task's fault".
            return Err(self.illegal(kind, i));
        }
        self.tasks[i].result = None;
        self.tasks[i].last_error = Some(reason.into());
        self.after_failure(kind, i, attempt, then)
    }

    /// For `attempt_failed`: the failing task's index and the pool its attempt ran on.
    fn failing_attempt(&self, kind: &'static str, id: &str, attempt: u32) -> Result<(usize, usize), ApplyError> {
        let i = self.lookup(id)?;
        match &self.tasks[i].state {
            TaskState::Running { attempt: a, pool, .. } if *a == attempt => Ok((i, self.pool_lookup(pool)?)),
            _ => Err(self.illegal(kind, i)),
        }
    }

    /// Records task `i`'s failure on pool `p`: the pool's breaker counts it (unless it
    /// says nothing about the pool), and a manager crash counts towards a poison pill.
    fn count_failure(&mut self, i: usize, p: usize, class: FailureClass, error: &str, ts_ms: u64) {
        if class.counts_against_pool() {
            let policy = self.workflow.pools[p].breaker;
            self.pools[p].breaker.count_failure(policy.as_ref(), ts_ms);
        }
        self.tasks[i].last_error = Some(error.into());
        // A crash was counted when the next manager started (`count_crash`); any other
        // end of an attempt breaks a row of crashes.
        if class != FailureClass::ManagerCrashed {
            self.tasks[i].crashes = 0;
        }
    }

    /// `manager_started`: every attempt still running (or result still validating)
    /// was in flight when the last manager died without recording its end; each such
    /// task counts one crash in a row towards the poison pill. Counted here, not from the event that then ends
    /// the attempt, so logs of older versions (which recorded `attempt_failed`,
    /// `manager_crashed`) and newer ones (`attempt_interrupted`) count alike.
    fn count_crash(&mut self) {
        // By index, so that only the tasks in flight are written (a write copies the
        // task's chunk if a checkpoint shares it).
        for i in 0..self.tasks.len() {
            if matches!(self.tasks[i].state, TaskState::Running { .. } | TaskState::Validating { .. }) {
                self.tasks[i].crashes += 1;
            }
        }
    }

    /// Where task `i` goes after its failed `attempt`, as `then` decided.
    fn after_failure(
        &mut self,
        kind: &'static str,
        i: usize,
        attempt: u32,
        then: &AfterFailure,
    ) -> Result<(), ApplyError> {
        let next = match then {
            AfterFailure::Retry { due_ms, .. } => TaskState::RetryWait { due_ms: *due_ms },
            AfterFailure::Defer { due_ms, .. } => {
                // Not the task's fault: the attempt is handed back.
                self.tasks[i].attempts = attempt.saturating_sub(1);
                self.tasks[i].deferrals += 1;
                TaskState::RetryWait { due_ms: *due_ms }
            }
            AfterFailure::DeadLetter { reason } => TaskState::DeadLettered { reason: reason.clone() },
            AfterFailure::Fallback { reason } => {
                let refused = self.illegal(kind, i);
                return self.take_fallback(i, reason, refused);
            }
        };
        self.set_state(i, next);
        Ok(())
    }

    /// `attempt_interrupted`: running → queued, and the attempt is handed back.
    fn interrupt_attempt(&mut self, kind: &'static str, id: &str, attempt: u32) -> Result<(), ApplyError> {
        let i = self.running_attempt(kind, id, attempt)?;
        self.tasks[i].attempts = attempt.saturating_sub(1);
        self.set_state(i, TaskState::Queued);
        Ok(())
    }

    /// `attempt_stalled` (`now_stalled`) or `attempt_active`: the running attempt's flag.
    fn set_stalled(&mut self, kind: &'static str, id: &str, attempt: u32, now_stalled: bool) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        match &mut self.tasks[i].state {
            TaskState::Running { attempt: a, stalled, .. } if *a == attempt => *stalled = now_stalled,
            _ => return Err(self.illegal(kind, i)),
        }
        Ok(())
    }
}
