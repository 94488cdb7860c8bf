//! What a workflow gets for what its file leaves out: the built-in values, and the
//! `[defaults]` table that a file uses to set its tasks' timeout and retry policy.

use crate::core::workflow::{Limit, RetryPolicy, Site, Strategy, WorkflowError};

use super::check::Checker;
use super::gates::GateDefaults;
use super::parse::{RawDefaults, RawRetry};

/// Run name when `[run] name` is not set.
pub(super) const NAME: &str = "workflow";
/// Attempts running at once over all pools.
pub(super) const MAX_PARALLEL: usize = 8;
/// Time between SIGTERM and SIGKILL.
pub(super) const KILL_GRACE_MS: u64 = 5_000;
/// Per-attempt timeout.
pub(super) const TIMEOUT_MS: u64 = 5 * 60_000;
/// Balancer strategy.
pub(super) const BALANCER: Strategy = Strategy::LeastConnections;
/// A pool's attempts at once.
pub(super) const CONCURRENCY: usize = 1;
/// A persistent worker's tasks in flight at once.
pub(super) const PER_WORKER: usize = 1;
/// Probe attempts of a half-open breaker.
pub(super) const HALF_OPEN: u32 = 1;

/// What every task gets unless it says otherwise.
pub(super) use crate::core::workflow::TaskDefaults;

/// The task defaults of a workflow without `[defaults]`.
pub(super) fn builtin() -> TaskDefaults {
    TaskDefaults { timeout_ms: TIMEOUT_MS, retry: RetryPolicy::default(), never_on: Vec::new(), gates: Vec::new() }
}

impl Checker<'_> {
    /// The task defaults: the built-in ones, overridden by `[defaults]`. A bad value is
    /// reported here, once, and replaced by the built-in one, so that the tasks that
    /// inherit it do not each report it again.
    pub(super) fn task_defaults(&mut self, raw: Option<&RawDefaults>) -> TaskDefaults {
        let mut defaults = builtin();
        let Some(raw) = raw else { return defaults };
        if let Some(codes) = raw.retry.as_ref().and_then(|r| r.never_on.as_ref()) {
            defaults.never_on = self.exit_codes(codes);
        }
        if let Some(d) = &raw.timeout {
            defaults.timeout_ms = self.duration(d, "defaults.timeout").unwrap_or(defaults.timeout_ms);
        }
        if let Some(r) = &raw.retry {
            defaults.retry = self.default_retry(r, defaults.retry);
        }
        if let Some(g) = &raw.gates {
            let inherit = GateDefaults { timeout_ms: defaults.timeout_ms, retry: defaults.retry };
            defaults.gates = self.gates(g.get_ref(), Site::Defaults, &inherit);
        }
        defaults
    }

    fn default_retry(&mut self, raw: &RawRetry, base: RetryPolicy) -> RetryPolicy {
        let mut policy = self.retry(raw, base, Site::Defaults);
        for error in policy.check(Site::Defaults) {
            let span = match error {
                WorkflowError::TooSmall { limit: Limit::MaxAttempts, .. } => {
                    policy.max_attempts = base.max_attempts;
                    raw.max_attempts.as_ref().map(|n| n.span())
                }
                WorkflowError::Multiplier { .. } => {
                    policy.multiplier = base.multiplier;
                    raw.multiplier.as_ref().map(|m| m.span())
                }
                _ => None,
            };
            self.report(span.unwrap_or(0..0), error.to_string());
        }
        policy
    }
}
