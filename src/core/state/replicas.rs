//! The fold of a consensus attempt's events (DESIGN §10). The votes live in the
//! running state itself (`TaskState::Running::round`), so they go when the attempt
//! ends, and a new attempt (or the same number run again after an interruption)
//! starts with none. Replay casts the same votes into the same round, so a resumed
//! run or `inspect` decides as the live engine did.

use serde_json::Value;

use super::{ApplyError, RunState};
use crate::core::consensus::Round;
use crate::core::event::FailureClass;
use crate::core::task::TaskState;

impl RunState {
    /// `vote_cast`: the replica's vote goes into the running attempt's round; a
    /// failure that says something about its pool counts on that pool's breaker.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cast_vote(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        replica: u32,
        worker: &str,
        result: &Option<Value>,
        class: Option<FailureClass>,
        ts_ms: u64,
    ) -> Result<(), ApplyError> {
        let i = self.lookup(id)?;
        let p = self.pool_lookup(worker)?;
        let illegal = self.illegal(kind, i);
        let Some(spec) = self.workflow.tasks[i].consensus.clone() else { return Err(illegal) };
        let TaskState::Running { attempt: a, round, .. } = &mut self.tasks[i].state else { return Err(illegal) };
        if *a != attempt {
            return Err(illegal);
        }
        let mut next = round.as_deref().cloned().unwrap_or_else(|| Round::new(&spec));
        next.cast(replica, worker, result.clone()).map_err(|_| illegal)?;
        *round = Some(Box::new(next));
        if class.is_some_and(FailureClass::counts_against_pool) {
            let policy = self.workflow.pools[p].breaker;
            self.pools[p].breaker.count_failure(policy.as_ref(), ts_ms);
        }
        Ok(())
    }

    /// `consensus_reached` / `consensus_failed`: notes on the running attempt (the
    /// `attempt_succeeded` or `attempt_failed` that follows moves the task).
    pub(super) fn note_consensus(&self, kind: &'static str, id: &str, attempt: u32) -> Result<(), ApplyError> {
        self.running_attempt(kind, id, attempt).map(|_| ())
    }
}
