//! What can be wrong with a workflow, as data: [`WorkflowError`] names the run, pool or
//! task ([`Site`]) and the field, so `config` can point at the line and column and the
//! engine can answer whoever submitted a task. The messages are the ones
//! `pitboss validate` prints.

use std::fmt;

use super::template::PLAIN_PLACEHOLDERS;

/// Where a problem sits in a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The run-wide settings (`max_parallel`).
    Run,
    /// Task defaults, as a workflow file declares them before they are copied into each
    /// task; [`Workflow::check`](super::Workflow::check) never reports it (it only sees the tasks).
    Defaults,
    /// The pool at this index of [`Workflow::pools`](super::Workflow::pools).
    Pool(usize),
    /// The task at this index of the checked task list.
    Task(usize),
}

/// A whole number of a workflow with a range, named as the workflow file spells it.
/// Every count is at least 1 and has a ceiling: far above any real fleet, and low
/// enough that nothing built from it (a table of processes, a product of two counts)
/// can overflow or exhaust memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `run.max_parallel`: attempts running at once over all pools.
    MaxParallel,
    /// A pool's `concurrency`.
    Concurrency,
    /// A persistent pool's `per_worker`.
    PerWorker,
    /// A persistent pool's `recycle.max_tasks`.
    RecycleMaxTasks,
    /// A persistent pool's `recycle.max_rss_mb`.
    RecycleMaxRssMb,
    /// A breaker's `failures`.
    BreakerFailures,
    /// A breaker's `half_open`.
    BreakerHalfOpen,
    /// A retry policy's `max_attempts`.
    MaxAttempts,
    /// `planner.max_depth`.
    PlannerMaxDepth,
    /// `planner.max_children`.
    PlannerMaxChildren,
    /// `planner.max_tasks`.
    PlannerMaxTasks,
}

impl Limit {
    /// The key as written in a workflow file.
    pub fn key(self) -> &'static str {
        match self {
            Limit::MaxParallel => "run.max_parallel",
            Limit::Concurrency => "concurrency",
            Limit::PerWorker => "per_worker",
            Limit::RecycleMaxTasks => "recycle.max_tasks",
            Limit::RecycleMaxRssMb => "recycle.max_rss_mb",
            Limit::BreakerFailures => "breaker.failures",
            Limit::BreakerHalfOpen => "breaker.half_open",
            Limit::MaxAttempts => "retry.max_attempts",
            Limit::PlannerMaxDepth => "planner.max_depth",
            Limit::PlannerMaxChildren => "planner.max_children",
            Limit::PlannerMaxTasks => "planner.max_tasks",
        }
    }

    /// The largest value allowed (the smallest is always 1).
    pub fn max(self) -> u64 {
        match self {
            Limit::MaxParallel | Limit::Concurrency | Limit::PerWorker => 10_000,
            Limit::BreakerFailures | Limit::BreakerHalfOpen => 10_000,
            Limit::RecycleMaxTasks => 1_000_000_000,
            // 1 TiB of resident memory.
            Limit::RecycleMaxRssMb => 1_048_576,
            Limit::MaxAttempts => 1_000,
            // Deeper plans than this are a runaway planner, not a plan.
            Limit::PlannerMaxDepth => 100,
            Limit::PlannerMaxChildren => 10_000,
            Limit::PlannerMaxTasks => 1_000_000,
        }
    }
}

/// The longest duration a workflow may give (timeouts, grace, backoff, breaker and
/// stall times): 30 days. Anything longer is a typo, and the bound keeps every sum of
/// a timestamp and a duration far from overflowing.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 3_600_000;

/// A retry multiplier's range: delays never shrink, and never grow more than a
/// hundredfold per attempt.
pub const MULTIPLIER_RANGE: (f64, f64) = (1.0, 100.0);

/// Exit codes a process can report (`retry.never_on`).
pub const EXIT_CODE_RANGE: (i64, i64) = (0, 255);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Which template of a pool a placeholder problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The command argument at this index.
    Arg(usize),
    /// The stdin template.
    Stdin,
}

/// One thing wrong with a workflow. Pool and task indices are positions in the checked
/// lists; the messages are the ones `pitboss validate` prints, so they name pools and
/// tasks in the operator's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkflowError {
    /// A number below 1 where at least 1 is needed.
    #[error("{limit} must be at least 1, got {value}")]
    TooSmall {
        /// Where the number is.
        site: Site,
        /// Which number.
        limit: Limit,
        /// The value given (as written: it may be negative in a file).
        value: i128,
    },
    /// A number above its limit's [`max`](Limit::max).
    #[error("{limit} must be at most {}, got {value}", limit.max())]
    TooLarge {
        /// Where the number is.
        site: Site,
        /// Which number.
        limit: Limit,
        /// The value given (as written: it may not fit 64 bits in a file).
        value: i128,
    },
    /// A retry multiplier outside [`MULTIPLIER_RANGE`] (below 1.0 delays would shrink)
    /// or not a number.
    #[error("retry.multiplier must be a number from 1.0 to 100.0, got {value}")]
    Multiplier {
        /// Where the policy is.
        site: Site,
        /// The value given.
        value: f64,
    },
    /// Tasks but no pool to run them on.
    #[error("the workflow has tasks but no [[pool]] to run them")]
    NoPools,
    /// Two pools with one name.
    #[error("duplicate pool name {name:?}")]
    DuplicatePool {
        /// The later pool.
        pool: usize,
        /// Its name.
        name: String,
    },
    /// A pool without a program to run.
    #[error("pool {name:?} has an empty command")]
    EmptyCommand {
        /// The pool.
        pool: usize,
        /// Its name.
        name: String,
    },
    /// A placeholder no task can fill.
    #[error("unknown placeholder {{{placeholder}}}: use {{payload.KEY}}, {}", plain_placeholder_list())]
    UnknownPlaceholder {
        /// The pool.
        pool: usize,
        /// The template it is in.
        at: Template,
        /// The name between the braces.
        placeholder: String,
    },
    /// A persistent pool's command names a task value, which does not exist when the
    /// process starts.
    #[error("{{{placeholder}}} names a task, but a persistent worker serves many tasks; it gets each task on stdin")]
    TaskPlaceholder {
        /// The pool.
        pool: usize,
        /// The command argument.
        arg: usize,
        /// The name between the braces.
        placeholder: String,
    },
    /// A placeholder inside a script a shell runs (`sh -c "echo {payload.x}"`): the
    /// task's value would run as shell commands.
    #[error(
        "{{{placeholder}}} inside shell code would run as commands (a value holding `$(…)` or `;` would inject \
         its own); pass it as an argument instead: [\"sh\", \"-c\", 'echo \"$1\"', \"_\", \"{{{placeholder}}}\"]"
    )]
    ShellPlaceholder {
        /// The pool.
        pool: usize,
        /// The command argument holding the script.
        arg: usize,
        /// The name between the braces.
        placeholder: String,
    },
    /// A persistent pool with a stdin other than the task JSON lines it must read.
    #[error("a persistent pool reads one task JSON per line on stdin; `stdin` must be \"task\"")]
    PersistentStdin {
        /// The pool.
        pool: usize,
    },
    /// A `secret_env` entry that cannot be an environment variable name.
    #[error("secret_env entry {name:?} is not a variable name")]
    SecretEnv {
        /// The pool.
        pool: usize,
        /// Position in `secret_env`.
        entry: usize,
        /// The entry.
        name: String,
    },
    /// A task id that cannot name files in the run folder.
    #[error("task id {id:?} must be letters, digits, '_', '-' or '.' (it names files)")]
    BadTaskId {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
    },
    /// A task whose attempts would time out at once.
    #[error("timeout must be more than 0")]
    ZeroTimeout {
        /// The task.
        task: usize,
    },
    /// A task pinned to a pool that does not exist.
    #[error("task {id:?} names unknown pool {pool_name:?}")]
    UnknownPool {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// The pool it names.
        pool_name: String,
    },
    /// A task pinned to a pool that lacks a capability it requires.
    #[error("task {id:?} requires {capability:?} but its pool {pool_name:?} does not have it")]
    MissingCapability {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// Position in `requires`.
        requirement: usize,
        /// The capability.
        capability: String,
        /// The pool it is pinned to.
        pool_name: String,
    },
    /// A task no pool can run.
    #[error("task {id:?}: no pool has all of the capabilities {requires:?}")]
    NoCapablePool {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// What it requires.
        requires: Vec<String>,
    },
    /// A fallback to a pool that does not exist.
    #[error("task {id:?}: fallback pool {pool_name:?} does not exist")]
    UnknownFallbackPool {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// The pool named.
        pool_name: String,
    },
    /// A task whose payload lacks a key its pool's command or stdin fills in: every
    /// attempt would fail.
    #[error(
        "task {id:?} runs on pool {pool_name:?} whose command uses {{{placeholder}}}, but its payload has no {path:?}"
    )]
    MissingPayloadKey {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// The pool.
        pool_name: String,
        /// The placeholder, `payload.…`.
        placeholder: String,
        /// The path after `payload.`.
        path: String,
    },
    /// Two tasks with one id (or a new task with the id of an existing one).
    #[error("duplicate task id {id:?}")]
    DuplicateTask {
        /// The later task.
        task: usize,
        /// Its id.
        id: String,
    },
    /// A dependency on a task that does not exist.
    #[error("task {id:?} depends on unknown task {name:?}")]
    UnknownDependency {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// Position in `depends_on`.
        dep: usize,
        /// The id it names.
        name: String,
    },
    /// A task that depends on itself.
    #[error("task {id:?} depends on itself")]
    SelfDependency {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// Position in `depends_on`.
        dep: usize,
    },
    /// A dependency listed twice.
    #[error("task {id:?} lists {name:?} twice in depends_on")]
    RepeatedDependency {
        /// The task.
        task: usize,
        /// Its id.
        id: String,
        /// Position of the repeat in `depends_on`.
        dep: usize,
        /// The id repeated.
        name: String,
    },
    /// Tasks that wait for each other, so none can start.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The task whose dependency closes the cycle.
        task: usize,
        /// Position of that dependency in its `depends_on`.
        dep: usize,
        /// The ids around the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
}

impl WorkflowError {
    /// The run, pool or task the problem is in.
    pub fn site(&self) -> Site {
        use WorkflowError as E;
        match self {
            E::TooSmall { site, .. } | E::TooLarge { site, .. } | E::Multiplier { site, .. } => *site,
            E::NoPools => Site::Run,
            E::DuplicatePool { pool, .. }
            | E::EmptyCommand { pool, .. }
            | E::UnknownPlaceholder { pool, .. }
            | E::TaskPlaceholder { pool, .. }
            | E::ShellPlaceholder { pool, .. }
            | E::PersistentStdin { pool }
            | E::SecretEnv { pool, .. } => Site::Pool(*pool),
            E::BadTaskId { task, .. }
            | E::ZeroTimeout { task }
            | E::UnknownPool { task, .. }
            | E::MissingCapability { task, .. }
            | E::NoCapablePool { task, .. }
            | E::UnknownFallbackPool { task, .. }
            | E::MissingPayloadKey { task, .. }
            | E::DuplicateTask { task, .. }
            | E::UnknownDependency { task, .. }
            | E::SelfDependency { task, .. }
            | E::RepeatedDependency { task, .. }
            | E::Cycle { task, .. } => Site::Task(*task),
        }
    }
}

fn plain_placeholder_list() -> String {
    let list: Vec<String> = PLAIN_PLACEHOLDERS.iter().map(|p| format!("{{{p}}}")).collect();
    list.join(", ")
}
