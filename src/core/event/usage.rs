//! The events of spend and budgets (DESIGN §13, §16): `usage_recorded`,
//! `budget_exhausted`, `budget_raised`.
//!
//! `usage_recorded` is written as the usage line is read, while the attempt runs
//! (not at its end): the run's budget is then checked against what was spent so far,
//! and an attempt killed or timed out later keeps what it reported.

use serde::{Deserialize, Serialize};

use crate::core::usage::{Usage, Usd};

/// What one usage line of a running attempt reported (`usage_recorded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecorded {
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// The pool that ran it (a replica's own pool).
    pub pool: String,
    /// Dollars.
    pub cost_usd: Usd,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cached prompt tokens read (not written when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    /// Cached prompt tokens written (not written when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_tokens: u64,
    /// The gate (1-based, in the task's list) whose check or reviewer spent it; none
    /// for the task's own attempt, a replica or a judge (not written then, and logs
    /// from before issue 17 have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<u32>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UsageRecorded {
    /// The event of one checked usage line.
    pub fn new(task: String, attempt: u32, pool: String, usage: &Usage) -> UsageRecorded {
        UsageRecorded {
            task,
            attempt,
            pool,
            cost_usd: usage.cost,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_creation_tokens: usage.cache_creation_tokens,
            gate: None,
        }
    }

    /// Its numbers as a usage.
    pub fn usage(&self) -> Usage {
        Usage {
            cost: self.cost_usd,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_creation_tokens: self.cache_creation_tokens,
        }
    }
}

/// The run's spend reached its budget (`budget_exhausted`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetExhausted {
    /// What the run has spent.
    pub spent_usd: Usd,
    /// The budget it reached.
    pub max_cost_usd: Usd,
}

/// An operator raised the budget (`budget_raised`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRaised {
    /// The run's new `max_cost_usd`, when raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<Usd>,
    /// The new `task_cost_usd` of every task, when raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_cost_usd: Option<Usd>,
    /// Who raised it (`operator (ctl)`, `operator (tui)`).
    pub source: String,
}
