//! The fold of spend and budgets (DESIGN §13): `usage_recorded` adds to the attempt,
//! task, pool and run sums of [`SpendBook`]; `budget_exhausted` stops dispatch and
//! `budget_raised` lifts it. What the limits are and when they are reached is
//! decided in `decide/budget.rs`; here only what the events say is kept.

use super::{ApplyError, RunState};
use crate::core::event::{BudgetRaised, UsageRecorded};
use crate::core::usage::{Usage, Usd};

impl RunState {
    /// Folds a `usage_recorded`: the task and pool must be the run's (the attempt need
    /// not still run: its usage outlives it).
    pub(super) fn record_usage(&mut self, usage: &UsageRecorded) -> Result<(), ApplyError> {
        let i = self.task_index(&usage.task).ok_or_else(|| ApplyError::UnknownTask(usage.task.clone()))?;
        if self.workflow.head().pool_index(&usage.pool).is_none() {
            return Err(ApplyError::UnknownPool(usage.pool.clone()));
        }
        self.spend.record(i, usage.attempt, &usage.pool, &usage.usage());
        Ok(())
    }

    /// Folds a `budget_raised`: the new limits stand over the workflow's.
    pub(super) fn raise_budget(&mut self, raised: &BudgetRaised) {
        if let Some(max) = raised.max_cost_usd {
            self.spend.max_cost_usd = Some(max);
        }
        if let Some(task) = raised.task_cost_usd {
            self.spend.task_cost_usd = Some(task);
        }
        self.spend.exhausted = false;
    }

    /// The run's budget now: an operator's raise, else the workflow's `[budget]`.
    pub fn max_cost_usd(&self) -> Option<Usd> {
        self.spend.max_cost_usd.or(self.workflow.head().budget.max_cost_usd)
    }

    /// Task `i`'s budget now: an operator's raise, else its pool's `task_cost_usd`
    /// (the pool it last ran on), else `[budget] task_cost_usd`.
    pub fn task_cost_usd(&self, i: usize) -> Option<Usd> {
        let pool = (self.tasks[i].pool.as_deref())
            .and_then(|name| self.workflow.head().pool_index(name))
            .and_then(|p| self.workflow.head().pools[p].task_cost_usd);
        self.spend.task_cost_usd.or(pool).or(self.workflow.head().budget.task_cost_usd)
    }

    /// The `spend` of `--json` documents and `ctl status` (DESIGN §13): the run's and
    /// each pool's, the budget and whether it is spent. None when no worker reported
    /// usage and no budget is set, so documents of other runs are unchanged.
    pub fn spend_json(&self) -> Option<serde_json::Value> {
        let book = &self.spend;
        if !book.reported && self.max_cost_usd().is_none() {
            return None;
        }
        Some(serde_json::json!({
            "run": book.run,
            "pools": book.pools,
            "max_cost_usd": self.max_cost_usd(),
            "exhausted": book.exhausted,
        }))
    }

    /// What the attempts of task `i`'s agent session recorded, all together: what a
    /// session total reported by an attempt that continues it counts again.
    pub fn session_usage(&self, i: usize) -> Usage {
        let (Some(agent), Some(spend)) = (self.tasks.get(i).and_then(|t| t.agent()), self.spend.task(i)) else {
            return Usage::default();
        };
        let mut sum = Usage::default();
        for spent in agent.session_attempts.iter().filter_map(|a| spend.attempts.get(a)) {
            sum.cost = sum.cost.plus(spent.cost_usd);
            sum.input_tokens = sum.input_tokens.saturating_add(spent.input_tokens);
            sum.output_tokens = sum.output_tokens.saturating_add(spent.output_tokens);
            sum.cache_read_tokens = sum.cache_read_tokens.saturating_add(spent.cache_read_tokens);
            sum.cache_creation_tokens = sum.cache_creation_tokens.saturating_add(spent.cache_creation_tokens);
        }
        sum
    }

    /// What task `i` has spent, all attempts together.
    pub fn task_spent(&self, i: usize) -> Usd {
        self.spend.task(i).map_or(Usd::ZERO, |t| t.total.cost_usd)
    }
}
