//! `[planner]`: how far a planner worker may grow the run (DESIGN §11). Spawned tasks
//! past a limit wait for an operator (`approve = "over-limits"`, the default), are
//! refused with the parent's attempt (`"never"`), or every spawned task waits
//! (`"always"`).

use serde::{Deserialize, Serialize};

/// The planner's limits and approval rule, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannerSpec {
    /// Deepest spawned task: children of a workflow task are depth 1.
    pub max_depth: u32,
    /// Children one task may spawn before the rest are over the limit.
    pub max_children: u32,
    /// Tasks in the whole run, the workflow's own included.
    pub max_tasks: u32,
    /// Which spawned tasks wait for an operator.
    pub approve: Approve,
}

/// Default `max_depth`: a planner's children may plan once more.
pub const DEFAULT_MAX_DEPTH: u32 = 2;
/// Default `max_children` per spawning task.
pub const DEFAULT_MAX_CHILDREN: u32 = 20;
/// Default `max_tasks` for the whole run.
pub const DEFAULT_MAX_TASKS: u32 = 500;

impl Default for PlannerSpec {
    fn default() -> Self {
        PlannerSpec {
            max_depth: DEFAULT_MAX_DEPTH,
            max_children: DEFAULT_MAX_CHILDREN,
            max_tasks: DEFAULT_MAX_TASKS,
            approve: Approve::OverLimits,
        }
    }
}

impl PlannerSpec {
    /// True when nothing is set: not written to the log, so logs of workflows without
    /// `[planner]` are unchanged.
    pub fn is_default(&self) -> bool {
        *self == PlannerSpec::default()
    }
}

/// `approve = "never" | "over-limits" | "always"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approve {
    /// A spawn over a limit is refused as a whole; nothing waits.
    Never,
    /// Tasks over a limit wait for an operator; the rest run.
    #[default]
    OverLimits,
    /// Every spawned task waits for an operator.
    Always,
}

impl Approve {
    /// As the workflow file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Approve::Never => "never",
            Approve::OverLimits => "over-limits",
            Approve::Always => "always",
        }
    }
}
