//! Budgets (DESIGN §13), decided here and nowhere else: when a task has spent its
//! budget (it is not retried: dead letter `budget spent`), when the run has spent its
//! own (`budget_exhausted`: no new attempt starts, running ones finish), and whether
//! an operator's raise is one (`budget_raised`: dispatch resumes).
//!
//! Spend is what workers reported in usage lines, folded as they are read, so a
//! limit is reached within the attempts in flight when it is: an attempt that had
//! started goes on and its spend counts, it is never killed for the budget.

use crate::core::event::{BudgetExhausted, BudgetRaised, Event};
use crate::core::state::RunState;
use crate::core::usage::{Usd, MAX_BUDGET_USD};

/// Why task `i` may not be retried for its spend: `budget spent ($2.10 of $2.00)`,
/// or none while it is under its budget (or has none).
pub(super) fn task_spent(state: &RunState, i: usize) -> Option<String> {
    let limit = state.task_cost_usd(i)?;
    let spent = state.task_spent(i);
    (spent >= limit).then(|| format!("budget spent ({spent} of the task's {limit})"))
}

/// `budget_exhausted` when the run's spend has reached its budget and dispatch still
/// runs; none otherwise.
pub(super) fn exhausted_now(state: &RunState) -> Option<Event> {
    let max = state.max_cost_usd()?;
    let spent = state.spend.run.cost_usd;
    (!state.spend.exhausted && spent >= max)
        .then_some(Event::BudgetExhausted(BudgetExhausted { spent_usd: spent, max_cost_usd: max }))
}

/// `budget spent: $5.00 of $5.00` when the run's budget stopped dispatch and nothing
/// else can move (no attempt runs or is being checked, and tasks wait): what a
/// headless run waits on, or stops for with `--exit-when-blocked` (exit 3).
pub fn blocked(state: &RunState) -> Option<String> {
    use crate::core::task::TaskStateName::{Running, Validating};
    let max = state.max_cost_usd()?;
    let idle = state.count(Running) == 0 && state.count(Validating) == 0;
    (state.spend.exhausted && idle && !state.all_terminal())
        .then(|| format!("budget spent: {} of {}", state.spend.run.cost_usd, max))
}

/// An operator's new limits, in dollars, checked against the run: each in range,
/// at least one given, and a run budget above what was spent (one at or below it
/// would stop dispatch again at once). The `budget_raised` to record, or why not.
pub fn raise(
    state: &RunState,
    max_cost_usd: Option<f64>,
    task_cost_usd: Option<f64>,
    source: String,
) -> Result<Event, String> {
    if max_cost_usd.is_none() && task_cost_usd.is_none() {
        return Err("give --max-cost-usd or --task-cost-usd (dollars)".into());
    }
    let dollars = |value: Option<f64>, key: &str| -> Result<Option<Usd>, String> {
        let Some(value) = value else { return Ok(None) };
        let usd = Usd::from_dollars(value, MAX_BUDGET_USD).map_err(|e| format!("{key}: {e}"))?;
        if usd == Usd::ZERO {
            return Err(format!("{key} must be more than 0"));
        }
        Ok(Some(usd))
    };
    let max = dollars(max_cost_usd, "max_cost_usd")?;
    let task = dollars(task_cost_usd, "task_cost_usd")?;
    let spent = state.spend.run.cost_usd;
    if let Some(max) = max.filter(|&m| m <= spent) {
        return Err(format!("the run has spent {spent}: a max_cost_usd of {max} would stop it again; give more"));
    }
    let same = max.is_none_or(|m| Some(m) == state.max_cost_usd())
        && task.is_none_or(|t| Some(t) == state.spend.task_cost_usd);
    if same && !state.spend.exhausted {
        return Err("the budget is already that".into());
    }
    Ok(Event::BudgetRaised(BudgetRaised { max_cost_usd: max, task_cost_usd: task, source }))
}
