//! `[budget] max_cost_usd, task_cost_usd` and a pool's `task_cost_usd` (DESIGN §13):
//! dollars, each more than 0 and at most [`MAX_BUDGET_USD`], checked like every
//! number of the file (line and column, plain words).

use toml::Spanned;

use crate::core::usage::{Usd, MAX_BUDGET_USD};
use crate::core::workflow::BudgetSpec;

use super::check::Checker;
use super::parse::RawBudget;

impl Checker<'_> {
    /// `[budget]`, checked.
    pub(super) fn budget(&mut self, raw: Option<&RawBudget>) -> BudgetSpec {
        let Some(raw) = raw else { return BudgetSpec::default() };
        BudgetSpec {
            max_cost_usd: raw.max_cost_usd.as_ref().and_then(|v| self.dollars(v, "budget.max_cost_usd")),
            task_cost_usd: raw.task_cost_usd.as_ref().and_then(|v| self.dollars(v, "budget.task_cost_usd")),
        }
    }

    /// A budget in dollars, or `None` after reporting why it is not one. `key` names
    /// it as the file does.
    pub(super) fn dollars(&mut self, value: &Spanned<f64>, key: &str) -> Option<Usd> {
        let dollars = *value.get_ref();
        let problem = if dollars.is_nan() || dollars <= 0.0 {
            format!("{key} must be more than 0 dollars, got {dollars}")
        } else if dollars > MAX_BUDGET_USD {
            format!("{key} must be at most {MAX_BUDGET_USD} dollars, got {dollars}")
        } else {
            return Usd::from_dollars(dollars, MAX_BUDGET_USD).ok();
        };
        self.report(value.span(), problem);
        None
    }
}
