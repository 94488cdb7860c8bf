//! The fold of the input guard's hold (DESIGN §5, §9): `task_held` (queued →
//! awaiting_approval), `task_approved` (→ queued, not checked again) and
//! `task_rejected` (→ cancelled, so its dependents are skipped as for a cancel).

use super::{ApplyError, RunState};
use crate::core::checks::Finding;
use crate::core::task::TaskState;

/// The one wording of a held task's finding, for `why()` and every front end.
pub(crate) fn held_reason(finding: &Finding) -> String {
    format!("held for approval: {}", finding_text(finding))
}

/// "guard/ignore-instructions at payload/prompt:1:1: «Ignore all previous…»".
pub fn finding_text(finding: &Finding) -> String {
    format!("{} at {}: {}", finding.rule, finding.location, finding.excerpt)
}

impl RunState {
    /// `task_held`: a queued task the guard flagged leaves the queue for the operator.
    pub(super) fn hold(&mut self, kind: &'static str, id: &str, finding: &Finding) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, |s| *s == TaskState::Queued)?;
        self.tasks[i].links_mut().finding = Some(Box::new(finding.clone()));
        self.set_state(i, TaskState::AwaitingApproval { finding: finding.clone() });
        Ok(())
    }

    /// `task_approved`: the held task is queued, and marked so that it is not held
    /// again. A task held at its spawn (over a `[planner]` limit) goes back to blocked
    /// instead: its dependencies decide when it runs (the same step settles it).
    pub(super) fn approve(&mut self, kind: &'static str, id: &str) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, |s| matches!(s, TaskState::AwaitingApproval { .. }))?;
        self.tasks[i].links_mut().approved = true;
        let spawned = self.tasks[i].finding().is_some_and(super::grow::held_at_spawn);
        self.set_state(i, if spawned { TaskState::Blocked } else { TaskState::Queued });
        Ok(())
    }

    /// `task_rejected`: the held task ends cancelled with the reason (never a dead
    /// letter: `dlq replay --all` only takes dead letters).
    pub(super) fn reject(&mut self, kind: &'static str, id: &str, reason: &str) -> Result<(), ApplyError> {
        let i = self.task_where(kind, id, |s| matches!(s, TaskState::AwaitingApproval { .. }))?;
        self.tasks[i].last_error = Some(reason.into());
        self.set_state(i, TaskState::Cancelled { reason: reason.to_string() });
        Ok(())
    }
}
