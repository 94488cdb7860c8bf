//! The core's inputs: what the engine feeds [`step`](super::step) (worker ends,
//! timers, operators' commands), what an attempt came to, and the clock and random
//! draw a step is given.

use serde_json::Value;

use crate::core::event::{FailureClass, SmallOutput, WorkerRef, WorkerRegistered};
use crate::core::gates::GateOutcome;

/// What the engine feeds the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A manager took the run over (fresh start or resume).
    Start {
        /// Manager pid.
        pid: u32,
        /// pitboss version.
        version: String,
        /// True when resuming an existing log.
        resumed: bool,
    },
    /// An attempt's process was started.
    Spawned {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Process (and group) id.
        pid: u32,
        /// The remote worker that runs it (broker mode); none when local.
        worker: Option<WorkerRef>,
    },
    /// An attempt ended.
    Finished {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// What came of it.
        outcome: Outcome,
    },
    /// An attempt ended having printed `{"pitboss":"spawn","tasks":[…]}` lines (DESIGN
    /// §4, §11): as [`Input::Finished`], with the tasks as `config::tasks_from_json`
    /// read them (ids as the worker wrote them), or why they could not be read. On a
    /// success the core checks them against the run and records `tasks_spawned`
    /// before `attempt_succeeded`, or `spawn_refused` and fails the attempt; a failed
    /// attempt's tasks are ignored.
    Planned {
        /// Task id (the parent).
        task: String,
        /// Attempt number.
        attempt: u32,
        /// What came of it.
        outcome: Outcome,
        /// The spawned tasks, or why they are refused.
        spawn: Result<Vec<crate::core::workflow::TaskSpec>, String>,
    },
    /// A backoff timer fired.
    RetryTimer {
        /// Task id.
        task: String,
        /// The due time the timer was set for (stale timers are ignored).
        due_ms: u64,
    },
    /// An operator cancels a task.
    Cancel {
        /// Task id.
        task: String,
        /// Who asked, and why.
        reason: String,
    },
    /// An operator runs a dead-lettered or cancelled task again.
    Requeue {
        /// Task id.
        task: String,
        /// The operator's action.
        reason: String,
    },
    /// An operator retries a task asking its next attempt to continue the task's
    /// agent session (`retry ID --continue`): a dead-lettered or cancelled task is
    /// requeued, a waiting one ends its wait, either recorded with
    /// `continue_session`. Nothing is recorded for a task without a session.
    ContinueSession {
        /// Task id.
        task: String,
        /// The operator's action.
        reason: String,
    },
    /// The manager is stopping: dispatch no more.
    Interrupt {
        /// Why.
        reason: String,
    },
    /// A pool's breaker cooldown passed (stale timers are ignored).
    BreakerTimer {
        /// Pool name.
        pool: String,
        /// The time the timer was set for.
        until_ms: u64,
    },
    /// An operator closes a pool's breaker.
    BreakerReset {
        /// Pool name.
        pool: String,
    },
    /// An operator opens a pool's breaker (for its cooldown, or until reset when the
    /// pool has no breaker policy).
    BreakerTrip {
        /// Pool name.
        pool: String,
    },
    /// A running attempt went quiet past its pool's `stall_after` (`Some`), or
    /// printed again after that (`None`).
    Stall {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// How long it had been quiet, or None when it is active again.
        quiet_ms: Option<u64>,
    },
    /// An operator replaces a task's payload (not while it runs).
    EditPayload {
        /// Task id.
        task: String,
        /// The new payload.
        payload: Value,
    },
    /// An operator pauses a pool (no new attempts start on it).
    PausePool {
        /// Pool name.
        pool: String,
    },
    /// An operator resumes a paused pool.
    ResumePool {
        /// Pool name.
        pool: String,
    },
    /// An operator raises the budget (DESIGN §13), in dollars as given: checked by
    /// `decide::raise_budget`, which a front end asks first for the reason of a refusal.
    RaiseBudget {
        /// The run's new `max_cost_usd`.
        max_cost_usd: Option<f64>,
        /// Every task's new `task_cost_usd`.
        task_cost_usd: Option<f64>,
        /// Who (`operator (ctl)`, `operator (tui)`).
        source: String,
    },
    /// An operator changes a pool's concurrency.
    SetConcurrency {
        /// Pool name.
        pool: String,
        /// New limit (at least 1).
        concurrency: usize,
    },
    /// A consensus replica of the running attempt ended (DESIGN §10).
    ReplicaFinished {
        /// Task id.
        task: String,
        /// The attempt the replicas share.
        attempt: u32,
        /// Replica index.
        replica: u32,
        /// The pool that ran it.
        pool: String,
        /// What came of it.
        outcome: Outcome,
    },
    /// The judge of a consensus attempt without a quorum ended.
    JudgeFinished {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// What came of it (its result should be `{"pick": i, "reason": …}`).
        outcome: Outcome,
    },
    /// A gate of a validating task ended.
    GateDone {
        /// Task id.
        task: String,
        /// Attempt whose result was checked.
        attempt: u32,
        /// The gate's position (0-based).
        index: usize,
        /// What came of it.
        outcome: GateOutcome,
        /// Time the gate took.
        duration_ms: u64,
    },
    /// A review gate of a validating task ended after some of its reviewer's tries
    /// failed: as [`Input::GateDone`], and each failure counts on the reviewer pool's
    /// breaker (DESIGN §9: a review is a sub-attempt on that pool).
    ReviewDone {
        /// Task id.
        task: String,
        /// Attempt whose result was checked.
        attempt: u32,
        /// The gate's position (0-based).
        index: usize,
        /// What came of it.
        outcome: GateOutcome,
        /// Time the gate took.
        duration_ms: u64,
        /// How the failed tries failed, in order.
        reviewer_failures: Vec<FailureClass>,
    },
    /// An operator approves a task held by the input guard: it is queued and runs
    /// without being checked again. Nothing is recorded unless the task is held
    /// ([`crate::core::hold::refusal`] says why, for the front end).
    Approve {
        /// Task id.
        task: String,
    },
    /// An operator rejects a held task: it ends cancelled with the guard's finding,
    /// and its dependents are skipped. Nothing is recorded unless the task is held.
    Reject {
        /// Task id.
        task: String,
        /// The operator's own words (`reject ID --reason TEXT`), recorded with it.
        reason: Option<String>,
    },
    /// An operator adds tasks to the live run (`pitboss submit`, the palette's
    /// `submit`, `ctl submit`; DESIGN §11): already parsed and resolved against the
    /// run's workflow by `config::tasks_from_toml`; the core checks them against the
    /// run (ids, dependencies, limits) and records `tasks_submitted`, or refuses them
    /// as a whole.
    Submit {
        /// The tasks, as a workflow's `[[task]]` entries resolve.
        tasks: Vec<crate::core::workflow::TaskSpec>,
        /// Who submitted them (`operator (ctl)`, a file name).
        source: String,
    },
    /// The remote worker running an attempt was lost (its delivery was reclaimed
    /// past the lease, or it vanished): the attempt is interrupted, not spent, and
    /// counts toward the poison pill when it had `started`. Stale (the attempt is no
    /// longer running): only `worker_lost` is recorded.
    WorkerLost {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// The worker that held it.
        worker: WorkerRef,
        /// Why it counts as lost (`lease expired`).
        reason: String,
        /// True when the worker had started the attempt's command (a delivery never
        /// started says nothing about the task).
        started: bool,
    },
    /// The broker link failed: dispatch pauses until [`Input::BrokerUp`].
    BrokerDown {
        /// The broker's URL, without a password.
        broker: String,
        /// What failed.
        reason: String,
    },
    /// The broker link is back.
    BrokerUp {
        /// The broker's URL, without a password.
        broker: String,
        /// How long it was down.
        down_ms: u64,
        /// Unfinished attempts published again.
        republished: u64,
    },
    /// A remote worker's registration was read (recorded when it is new, or changed,
    /// or back after it had vanished).
    WorkerSeen(WorkerRegistered),
    /// A remote worker's registration expired, or it left.
    WorkerGone {
        /// The pool it served.
        pool: String,
        /// Its id.
        worker: String,
        /// `registration expired`, `left`.
        reason: String,
    },
    /// A result came for an attempt that is no longer running, or came twice.
    ResultDuplicate {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// The worker that sent it.
        worker: String,
        /// `late` or `duplicate`.
        reason: String,
    },
    /// A running attempt was ended by the shutdown.
    AttemptStopped {
        /// Task id.
        task: String,
        /// Attempt number.
        attempt: u32,
        /// Why.
        reason: String,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It produced a result.
    Success {
        /// The result.
        result: Value,
        /// Exit code.
        exit_code: Option<i32>,
        /// Wall time.
        duration_ms: u64,
        /// Its output, if small.
        output: SmallOutput,
    },
    /// It failed.
    Failure {
        /// Kind of failure.
        class: FailureClass,
        /// What went wrong.
        error: String,
        /// Exit code.
        exit_code: Option<i32>,
        /// Ending signal.
        signal: Option<i32>,
        /// Wall time.
        duration_ms: u64,
        /// Its output, if small.
        output: SmallOutput,
    },
}

/// The world as the core sees it during one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepContext {
    /// Now, in ms since the epoch.
    pub now_ms: u64,
    /// A uniform draw in [0, 1) for backoff jitter.
    pub jitter: f64,
}
