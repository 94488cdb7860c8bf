//! The validated workflow: pools, tasks and their policies, as plain data.
//!
//! This is what `config` produces from a workflow file and what the engine runs. It is
//! stored whole in the first event of a run (so `resume` needs nothing but the run
//! folder): its serde shape is part of the event log's format and must not change
//! without a new log version. The checks that need no file text (ids, dependencies,
//! cycles, pools, capabilities, limits, placeholders) live in `check.rs`, so the engine
//! can hold spawned and submitted tasks to the same rules as a workflow file.

mod broker;
mod check;
mod error;
mod gate;
mod graph;
mod notify;
mod planner;
mod shared_retry;
mod shell;
mod task_spec;
mod template;
mod tls_files;
mod workspace;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use broker::{
    BrokerKind, BrokerSpec, BrokerUrl, BrokerUrlError, PasswordSource, DEFAULT_LEASE_MS, DEFAULT_TTL_MS, PASSWORD_ENV,
};
pub use error::{Limit, Site, Template, WorkflowError, EXIT_CODE_RANGE, MAX_DURATION_MS, MULTIPLIER_RANGE};
pub use gate::{gate_label, Gate, GateKind, PerfGate, PERF_RUNS_RANGE, REGRESSION_RANGE, SCORE_RANGE};
pub use notify::{
    event_names, state_named, state_names, NotifySpec, DEFAULT_NOTIFY_CONCURRENCY, DEFAULT_NOTIFY_TIMEOUT_MS,
    MAX_NOTIFY_CONCURRENCY,
};
pub use planner::{Approve, PlannerSpec, DEFAULT_MAX_CHILDREN, DEFAULT_MAX_DEPTH, DEFAULT_MAX_TASKS};
pub use shared_retry::SharedRetry;
pub use task_spec::{TaskExtras, TaskSpec};
pub use template::{lookup_payload, placeholder_spans, placeholders, PLAIN_PLACEHOLDERS};
pub use tls_files::{CaFile, ClientCert};
pub use workspace::{branch_name, decode_id, encode_id, leaf, Workspace, TEMP_WORKSPACES, WORKTREES};

/// A workflow that passed validation, with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Run name shown in the header and reports.
    pub name: String,
    /// Global cap on attempts running at once, over all pools.
    pub max_parallel: usize,
    /// How long a worker gets between SIGTERM and SIGKILL.
    pub kill_grace_ms: u64,
    /// How tasks that may run on several pools pick one.
    pub balancer: Strategy,
    /// Worker pools, in file order.
    pub pools: Vec<PoolSpec>,
    /// Tasks, in file order (ids are unique); tasks spawned or submitted during the
    /// run are appended to the run state's copy.
    pub tasks: Vec<TaskSpec>,
    /// `[[notify]]` hooks (DESIGN §12). Not written when empty, so logs of workflows
    /// without hooks are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifySpec>,
    /// `[planner]` limits for spawned tasks (DESIGN §11). Not written when default, so
    /// logs of workflows without it are unchanged and older logs still read.
    #[serde(default, skip_serializing_if = "PlannerSpec::is_default")]
    pub planner: PlannerSpec,
    /// The file's `[defaults]`, as resolved, for tasks spawned or submitted during the
    /// run (None: the built-in ones). Not written when the file has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<TaskDefaults>,
    /// The workflow file's folder (absolute), which relative paths of tasks spawned
    /// during the run resolve against, as the file's own do. None in logs written
    /// before it was recorded (those resolve against the manager's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<std::path::PathBuf>,
    /// `[run] broker` (DESIGN §7): the pools' queues live on this broker and remote
    /// `pitboss worker`s run the attempts. Not written when none, so logs of runs
    /// without a broker are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerSpec>,
    /// `[budget]` (DESIGN §13): what the run and each task may spend. Not written when
    /// unset, so logs of workflows without it are unchanged.
    #[serde(default, skip_serializing_if = "BudgetSpec::is_default")]
    pub budget: BudgetSpec,
}

/// `[budget]`: spend limits, in dollars, as the workers' usage lines report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSpec {
    /// The whole run: once reached, no new attempt starts (running ones finish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<crate::core::usage::Usd>,
    /// Each task, all its attempts together: once reached, the task is not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cost_usd: Option<crate::core::usage::Usd>,
}

impl BudgetSpec {
    /// True when no limit is set.
    pub fn is_default(&self) -> bool {
        *self == BudgetSpec::default()
    }
}

/// What a task gets for what it leaves out (`[defaults]` over the built-in values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDefaults {
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Exit codes never retried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_on: Vec<i32>,
    /// Gates of a task without its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
}

/// Balancer strategy for tasks that can run on more than one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Rotate over the eligible pools.
    RoundRobin,
    /// The eligible pool with the lowest running/concurrency ratio.
    LeastConnections,
    /// Like least-connections; named for workflows that route by `requires`.
    Capability,
}

/// What a worker reads on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdinMode {
    /// The task JSON of the worker protocol, then EOF.
    Task,
    /// Nothing (stdin is /dev/null).
    None,
    /// A template filled like argv placeholders, then EOF.
    Template(String),
}

/// One pool of workers that share a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Unique pool name.
    pub name: String,
    /// argv with `{…}` placeholders; never run through a shell.
    pub command: Vec<String>,
    /// What tasks routed by `requires` may ask of this pool.
    pub capabilities: Vec<String>,
    /// Attempts of this pool running at once.
    pub concurrency: usize,
    /// What the worker reads on stdin.
    pub stdin: StdinMode,
    /// Extra environment for the worker.
    pub env: BTreeMap<String, String>,
    /// Variables passed through from the manager's environment; their values are
    /// never written to the log or shown.
    pub secret_env: Vec<String>,
    /// Start the worker's environment from PATH, HOME and the locale only, instead of
    /// the manager's environment minus secret-looking variables (DESIGN §14). Not
    /// written when false, so logs of workflows without it are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clean_env: bool,
    /// Working directory (absolute), or the manager's own when unset.
    pub cwd: Option<PathBuf>,
    /// Circuit breaker: stop spawning on a pool that keeps failing.
    #[serde(default)]
    pub breaker: Option<BreakerPolicy>,
    /// A worker silent for this long is flagged stalled (a warning).
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// A worker silent for this long is ended as a failed attempt.
    #[serde(default)]
    pub stall_kill_after_ms: Option<u64>,
    /// One process per attempt, or long-lived processes taking many tasks.
    #[serde(default)]
    pub mode: PoolMode,
    /// Persistent mode: tasks in flight per process at once.
    #[serde(default = "one")]
    pub per_worker: usize,
    /// Persistent mode: when to replace a worker process.
    #[serde(default)]
    pub recycle: Recycle,
    /// `input_guard = true`: tasks for this pool are inspected for prompt-injection
    /// shapes before dispatch (DESIGN §9). Not written when false, so logs of
    /// workflows without it are unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub input_guard: bool,
    /// `task_cost_usd = N`: what a task may spend while on this pool, over
    /// `[budget] task_cost_usd` (DESIGN §13). Not written when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cost_usd: Option<crate::core::usage::Usd>,

    /// `workspace = "temp" | "git-worktree"` (DESIGN §13): where its tasks' attempts
    /// run, unless a task names its own. Not written when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<Workspace>,

    /// `preset = "claude"` and its keys (DESIGN §13): the command, stdin and
    /// environment above were filled from it. Not written when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::core::agents::AgentSpec>,
}

fn one() -> usize {
    1
}

/// How a pool runs its agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMode {
    /// A process per attempt (the worker protocol of §4).
    #[default]
    Spawn,
    /// Long-lived processes: one task JSON per line in, one JSON line per task out.
    Persistent,
}

/// `recycle = { max_tasks, max_rss_mb }`: replace a persistent worker after it has
/// answered this many tasks, or when its resident memory passes this size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recycle {
    /// Tasks answered before the process is replaced.
    pub max_tasks: Option<u64>,
    /// Resident set size (MiB) above which the process is replaced.
    pub max_rss_mb: Option<u64>,
}

/// `breaker = { failures, window, cooldown, half_open }`: open after `failures` failed
/// attempts within `window`; stay open for `cooldown`; then let `half_open` probe
/// attempts through; a probe's success closes it, a failure opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerPolicy {
    /// Failed attempts that open the breaker.
    pub failures: u32,
    /// Window the failures are counted in.
    pub window_ms: u64,
    /// How long it stays open.
    pub cooldown_ms: u64,
    /// Probe attempts admitted when half-open.
    pub half_open: u32,
}

/// What a task does instead of failing (DESIGN §3 `fallback`), used when its attempts
/// are spent or every pool it may run on has an open breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Complete with this result, marked degraded.
    Result(serde_json::Value),
    /// Run on this pool instead (fresh attempts), marked degraded when it completes.
    Pool(String),
    /// End skipped; dependents still run (they get `null` for its result).
    Skip,
}

/// Retry policy of a task: attempts and exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// Delay after the first failure.
    pub initial_ms: u64,
    /// Cap on any delay.
    pub max_ms: u64,
    /// Growth factor per failed attempt.
    pub multiplier: f64,
    /// Draw each delay from [delay/2, delay] so that a failing fleet does not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, initial_ms: 1_000, max_ms: 60_000, multiplier: 2.0, jitter: true }
    }
}

impl Workflow {
    /// Index of a pool by name.
    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }

    /// Pools a task may run on, in file order.
    pub fn eligible_pools(&self, task: &TaskSpec) -> Vec<usize> {
        match &task.pool {
            Some(name) => self.pool_index(name).into_iter().collect(),
            None => self
                .pools
                .iter()
                .enumerate()
                .filter(|(_, p)| task.requires.iter().all(|c| p.capabilities.contains(c)))
                .map(|(i, _)| i)
                .collect(),
        }
    }
}
