//! Events: the facts the engine records. Each one is a single transition (or a note
//! that changes no task) with its reason. The journal stores them in order; folding
//! them with [`crate::core::RunState::apply`] rebuilds the run.
//!
//! The JSON form (`{"type":"attempt_failed",…}`) is the log's format: variants may be
//! added, never renamed.
//!
//! What an attempt's events carry (its failure class, small output, what follows a
//! failure) is in `event/attempt.rs`, re-exported here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::checks::Finding;
use crate::core::workflow::{GateKind, TaskSpec, Workflow};

mod agent;
mod attempt;
mod broker;
mod names;
mod usage;
mod workspace;

pub use agent::{AttemptFlagged, SessionRecorded};
pub use attempt::{AfterFailure, FailureClass, OutputStream, SmallOutput, SMALL_OUTPUT};
pub use broker::{BrokerDown, BrokerUp, ResultDuplicate, WorkerLost, WorkerRef, WorkerRegistered};
pub use usage::{BudgetExhausted, BudgetRaised, UsageRecorded};
pub use workspace::{DiffRecorded, WorkspaceCreated, DIFF_PATCH_MAX, DIFF_STAT_MAX};

/// One recorded fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// First record of every log: the whole workflow, so a run folder is self-contained.
    RunStarted {
        /// Unique id of the run.
        run_id: String,
        /// The validated workflow.
        workflow: std::sync::Arc<Workflow>,
    },
    /// A manager process took over the run (at start and at each resume).
    ManagerStarted {
        /// Its pid.
        pid: u32,
        /// pitboss version.
        version: String,
        /// True when it resumed an existing log.
        resumed: bool,
    },
    /// Every dependency completed: blocked → queued.
    TaskReady {
        /// Task id.
        task: String,
    },
    /// An attempt was handed to a pool: queued → running.
    AttemptStarted {
        /// Task id.
        task: String,
        /// 1-based attempt number.
        attempt: u32,
        /// Chosen pool.
        pool: String,
    },
    /// The attempt's process exists (a note; the task stays running).
    AttemptSpawned {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Process id, also the process group id (on the worker's host when remote).
        pid: u32,
        /// The remote worker running it (broker mode); none for a local attempt, and
        /// then not written, so logs without brokers are unchanged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<String>,
        /// The remote worker's host.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// The agent session it continues (DESIGN §13); not written when it starts afresh.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<String>,
    },
    /// The attempt produced a result: running → completed.
    AttemptSucceeded {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// The worker's result.
        result: Value,
        /// Exit code, if the process exited normally.
        exit_code: Option<i32>,
        /// Wall time of the attempt.
        duration_ms: u64,
        /// Its output, if small.
        #[serde(default, skip_serializing_if = "SmallOutput::is_empty")]
        output: SmallOutput,
    },
    /// A gate passed the attempt's result: validating → the next gate, or completed
    /// after the last one.
    GatePassed {
        /// Task id.
        task: String,
        /// Attempt whose result was checked.
        attempt: u32,
        /// The gate's position in the task's list (0-based; shown as `gate index+1`).
        index: usize,
        /// The gate's kind.
        kind: GateKind,
        /// What it found, in plain words.
        reason: String,
        /// A reviewer's score.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
        /// A reviewer's or check program's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        critique: Option<String>,
        /// Time the gate took.
        duration_ms: u64,
        /// How a review gate's failed tries failed (the reviewer erred, timed out or
        /// answered nonsense): each counts on the reviewer pool's breaker.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reviewer_failures: Vec<FailureClass>,
    },
    /// A gate failed the attempt's result: a failed attempt (validating → retry_wait,
    /// dead_lettered or a fallback, as `then` says). Its verdict goes into the next
    /// attempt's `feedback`.
    GateFailed {
        /// Task id.
        task: String,
        /// Attempt whose result was checked.
        attempt: u32,
        /// The gate's position (0-based).
        index: usize,
        /// The gate's kind.
        kind: GateKind,
        /// What is wrong, in plain words (`gate 1 (schema) failed: …`). Named `error`
        /// as in `attempt_failed`: `then` is flattened beside it and has its own `reason`.
        error: String,
        /// A reviewer's score.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<u8>,
        /// A reviewer's or check program's words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        critique: Option<String>,
        /// Time the gate took.
        duration_ms: u64,
        /// How a review gate's failed tries failed (the reviewer erred, timed out or
        /// answered nonsense): each counts on the reviewer pool's breaker.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reviewer_failures: Vec<FailureClass>,
        /// What happens next.
        #[serde(flatten)]
        then: AfterFailure,
    },
    /// A gate could not run (check command missing, reviewer failing or answering
    /// nonsense, gate not built): no verdict, yet the result is not let through
    /// unchecked, so it is a failed attempt too (`then` says what follows).
    GateError {
        /// Task id.
        task: String,
        /// Attempt whose result was to be checked.
        attempt: u32,
        /// The gate's position (0-based).
        index: usize,
        /// The gate's kind.
        kind: GateKind,
        /// Why it could not run (`gate 2 (command) could not run: …`).
        error: String,
        /// Time spent trying.
        duration_ms: u64,
        /// How a review gate's failed tries failed: each counts on the reviewer
        /// pool's breaker.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reviewer_failures: Vec<FailureClass>,
        /// What happens next.
        #[serde(flatten)]
        then: AfterFailure,
    },
    /// The attempt failed: running → retry_wait or dead_lettered, as `then` says.
    AttemptFailed {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Kind of failure.
        class: FailureClass,
        /// What went wrong, in plain words.
        error: String,
        /// Exit code, if the process exited normally.
        exit_code: Option<i32>,
        /// Signal that ended the process, if any.
        signal: Option<i32>,
        /// Wall time of the attempt.
        duration_ms: u64,
        /// Its output, if small.
        #[serde(default, skip_serializing_if = "SmallOutput::is_empty")]
        output: SmallOutput,
        /// What happens next.
        #[serde(flatten)]
        then: AfterFailure,
    },
    /// The attempt was stopped because the manager is shutting down: running →
    /// queued, and the attempt is not spent (resume runs it again).
    AttemptInterrupted {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// A consensus replica ended (DESIGN §10): its vote, or its abstention when it
    /// failed (a failure that counts against its pool counts on that pool's breaker).
    VoteCast {
        /// Task id.
        task: String,
        /// The attempt the replicas share.
        attempt: u32,
        /// Replica index, `0..replicas`.
        replica: u32,
        /// The pool that ran it.
        worker: String,
        /// Its result; none when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        /// The compared answer's digest (display only); none when it abstains.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// Why it failed, when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Kind of failure, when it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<FailureClass>,
    },
    /// The replicas' votes (or the judge) settled the answer; the attempt succeeds with
    /// the winner's result, and the replicas still running are stopped.
    ConsensusReached {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// The replica whose result is the task's.
        winner: u32,
        /// The winning answer's digest.
        digest: String,
        /// Replicas that gave the winning answer.
        votes: Vec<u32>,
        /// Replicas that gave another answer.
        dissenters: Vec<u32>,
        /// Replicas that failed, or had nothing at the `key`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        abstained: Vec<u32>,
        /// The judge's reason, when a judge picked the winner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judge: Option<String>,
    },
    /// No consensus is possible: the attempt fails (an `attempt_failed` follows).
    ConsensusFailed {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Why, with the answers summarised.
        reason: String,
    },
    /// A backoff delay passed: retry_wait → queued.
    RetryDue {
        /// Task id.
        task: String,
        /// An operator ended the wait asking the next attempt to continue the task's
        /// agent session (`retry ID --continue`); not written otherwise.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continue_session: bool,
    },
    /// An operator cancelled the task: any unfinished state → cancelled.
    TaskCancelled {
        /// Task id.
        task: String,
        /// Why.
        reason: String,
    },
    /// A dependency was dead-lettered, cancelled or skipped: blocked → skipped.
    TaskSkipped {
        /// Task id.
        task: String,
        /// The dependency responsible.
        because: String,
    },
    /// An operator retried a dead-lettered, cancelled or skipped task: it starts again
    /// with fresh attempts (queued, or blocked if dependencies are unfinished).
    TaskRequeued {
        /// Task id.
        task: String,
        /// The operator's action (`retry`, `dlq replay`…).
        reason: String,
        /// The operator asked the next attempt to continue the task's agent session
        /// (`retry ID --continue`); not written otherwise, so older logs read the same.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        continue_session: bool,
    },
    /// A skipped task's dependency came back: skipped → blocked.
    TaskRevived {
        /// Task id.
        task: String,
        /// The dependency that came back.
        because: String,
    },
    /// The attempt has printed nothing for the pool's `stall_after` (a warning; it
    /// keeps running).
    AttemptStalled {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// How long it had been quiet.
        quiet_ms: u64,
    },
    /// An attempt's output could not be written to its file in the run folder (a
    /// full disk, a folder made unwritable): the output past the part kept in the log
    /// is lost. A warning on the attempt; it runs on.
    OutputCaptureFailed {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Which stream.
        stream: OutputStream,
        /// The OS error, with the file it was about.
        error: String,
    },
    /// A stalled attempt printed again.
    AttemptActive {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
    },
    /// An operator replaced a task's payload (its next attempts get this one).
    PayloadEdited {
        /// Task id.
        task: String,
        /// The new payload.
        payload: Value,
    },
    /// A queued task whose pools all have open breakers took its `fallback`.
    FallbackUsed {
        /// Task id.
        task: String,
        /// Why.
        reason: String,
    },
    /// A pool's breaker opened: no attempt starts on it until it half-opens.
    BreakerOpened {
        /// Pool name.
        pool: String,
        /// When it half-opens (ms since the epoch); none when an operator tripped it
        /// on a pool without a breaker policy (then only a reset closes it).
        until_ms: Option<u64>,
        /// Why.
        reason: String,
    },
    /// A pool's cooldown passed: it admits `half_open` probe attempts.
    BreakerHalfOpened {
        /// Pool name.
        pool: String,
    },
    /// A pool's breaker closed: attempts start on it again.
    BreakerClosed {
        /// Pool name.
        pool: String,
        /// Why (a probe succeeded, an operator reset it).
        reason: String,
    },
    /// An operator paused a pool: no new attempt starts on it (running ones go on).
    PoolPaused {
        /// Pool name.
        pool: String,
    },
    /// An operator resumed a paused pool.
    PoolResumed {
        /// Pool name.
        pool: String,
    },
    /// An operator changed how many attempts a pool runs at once. Lowering it ends
    /// nothing: the pool just starts no more until it is under the new limit.
    ConcurrencyChanged {
        /// Pool name.
        pool: String,
        /// The new limit.
        concurrency: usize,
    },
    /// The manager was asked to stop; dispatching ends and running attempts are interrupted.
    RunInterrupted {
        /// Why (signal name, operator).
        reason: String,
    },
    /// A damaged tail of the log was cut off when the run was reopened.
    LogRepaired {
        /// Bytes cut (saved to `events.jsonl.broken`).
        cut_bytes: u64,
        /// Line where the damage started.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// The input guard found a prompt-injection shape in a ready task's payload or
    /// inputs: queued → awaiting_approval. No process starts for it until approved.
    TaskHeld {
        /// Task id.
        task: String,
        /// What the guard found (rule, location, escaped excerpt).
        finding: Finding,
    },
    /// An operator approved a held task: awaiting_approval → queued. It is dispatched
    /// without being checked again.
    TaskApproved {
        /// Task id.
        task: String,
    },
    /// An operator rejected a held task: awaiting_approval → cancelled (never a dead
    /// letter, so no bulk replay runs it unseen); its dependents are skipped.
    TaskRejected {
        /// Task id.
        task: String,
        /// Why, with the guard's finding (and the operator's words, when given).
        reason: String,
        /// The operator's own reason (`reject ID --reason TEXT`), as given; not
        /// written when none was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator_reason: Option<String>,
    },
    /// A planner's attempt succeeded with subtasks (DESIGN §11), recorded just before
    /// its `attempt_succeeded`: the tasks (full ids, resolved) join the run blocked,
    /// each dependent of the parent waits for them too, and those over a `[planner]`
    /// limit wait for an operator.
    TasksSpawned {
        /// The parent task.
        task: String,
        /// The parent's attempt that printed them.
        attempt: u32,
        /// The new tasks, ids namespaced under the parent (`plan/collect`).
        tasks: Vec<TaskSpec>,
        /// The new tasks that wait for an operator, with the limit they went past.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        held: Vec<HeldAtSpawn>,
    },
    /// A planner's spawn was refused as a whole (nothing of it is added); the parent's
    /// attempt fails with the reason in the next event.
    SpawnRefused {
        /// The parent task.
        task: String,
        /// The parent's attempt.
        attempt: u32,
        /// Why, in plain words.
        reason: String,
    },
    /// An operator added tasks to the live run (`pitboss submit`, `ctl submit`); they
    /// are never held (DESIGN §5).
    TasksSubmitted {
        /// Who submitted them (`operator (ctl)`, a file name).
        source: String,
        /// The tasks, as their ids were written.
        tasks: Vec<TaskSpec>,
    },
    /// The run is a fork (`pitboss fork`): the records before this one are another
    /// run's records 1..=`seq`, copied as they were; this one is the first of the fork.
    /// The fork has a run id of its own from here on (`new_run_id`): the id marks its
    /// worker processes and may name its control socket, which it must not share.
    ForkedFrom {
        /// The original run's id.
        run_id: String,
        /// The original's last record the fork holds.
        seq: u64,
        /// The fork's run id.
        new_run_id: String,
    },
    /// A remote worker registered with the broker (DESIGN §7).
    WorkerRegistered(WorkerRegistered),
    /// A remote worker is gone; an attempt it held is interrupted (not spent).
    WorkerLost(WorkerLost),
    /// The broker went away: dispatch pauses.
    BrokerDown(BrokerDown),
    /// The broker is back: dispatch resumes.
    BrokerUp(BrokerUp),
    /// A result for an attempt already decided, recorded and ignored.
    ResultDuplicate(ResultDuplicate),
    /// A running attempt reported what it spent (a usage line, DESIGN §4, §13).
    UsageRecorded(UsageRecorded),
    /// The run's spend reached `[budget] max_cost_usd`: no new attempt starts.
    BudgetExhausted(BudgetExhausted),
    /// An operator raised the budget (`ctl budget`, the palette): dispatch resumes.
    BudgetRaised(BudgetRaised),

    /// A task's workspace was made (DESIGN §13).
    WorkspaceCreated(WorkspaceCreated),
    /// What an attempt changed in its workspace (DESIGN §13).
    DiffRecorded(DiffRecorded),

    /// An attempt's agent session is known (DESIGN §13).
    SessionRecorded(SessionRecorded),
    /// An attempt raised a health flag (DESIGN §16).
    AttemptFlagged(AttemptFlagged),
    /// Every task reached a terminal state.
    RunFinished {
        /// True when every task completed.
        success: bool,
    },
}

/// A spawned task that waits for an operator, and the limit it went past (as the
/// finding every front end shows for a held task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldAtSpawn {
    /// The task's full id.
    pub task: String,
    /// `planner/max-children` and the like, `spawned by PARENT`, and the count.
    pub finding: Finding,
}
