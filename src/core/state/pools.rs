//! Pools in the run's state: each pool's live load, pause, concurrency and circuit
//! breaker ([`PoolState`]), and the [`RunState`] helpers that find a pool by name or
//! move a task to another pool. The fold itself ([`RunState::apply`]) stays in the
//! parent module; what it does to a pool goes through these.

use super::{ApplyError, RunState};
use crate::core::breaker::{Breaker, Circuit};
use crate::core::event::FailureClass;
use crate::core::task::TaskState;
use crate::core::workflow::Gate;

/// One pool's live state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolState {
    /// Running attempts on the pool.
    pub running: usize,
    /// Queued tasks the pool could take (a task that may run on several pools counts
    /// in each of them).
    pub queued: usize,
    /// The pool's concurrency now (the workflow's, unless an operator changed it).
    pub concurrency: usize,
    /// True while an operator has paused the pool.
    pub paused: bool,
    /// The pool's circuit breaker.
    pub breaker: Breaker,
}

impl PoolState {
    /// A pool at the start of a run: idle, not paused, its breaker closed.
    pub(super) fn new(concurrency: usize) -> PoolState {
        PoolState { running: 0, queued: 0, concurrency, paused: false, breaker: Breaker::default() }
    }

    /// Puts the breaker in `circuit` and forgets the failures it had counted.
    pub(super) fn reset_breaker(&mut self, circuit: Circuit) {
        self.breaker.circuit = circuit;
        self.breaker.recent_failures.clear();
    }

    /// An attempt starts on the pool: a half-open breaker counts it as a probe.
    pub(super) fn count_probe(&mut self) {
        if let Circuit::HalfOpen { probes_started } = &mut self.breaker.circuit {
            *probes_started += 1;
        }
    }
}

impl RunState {
    /// Pools task `i` may run on now (a fallback pool replaces its own).
    pub fn pools_for(&self, i: usize) -> &[usize] {
        match &self.tasks[i].links.get().pool_override {
            Some(p) => std::slice::from_ref(p),
            None => &self.eligible[i][..],
        }
    }

    /// Sends task `i` to pool `p` from now on; a queued task's per-pool queue counts
    /// move with it.
    pub(super) fn set_pool_override(&mut self, i: usize, p: usize) {
        let queued = self.tasks[i].state == TaskState::Queued;
        let adjust = |s: &mut RunState, delta: isize| {
            for k in 0..s.pools_for(i).len() {
                let q = s.pools_for(i)[k];
                s.pools[q].queued = s.pools[q].queued.saturating_add_signed(delta);
            }
        };
        if queued {
            adjust(self, -1);
        }
        self.tasks[i].links_mut().pool_override = Some(p);
        if queued {
            adjust(self, 1);
        }
    }

    /// The reviewer pool of task `i`'s gate `index`, when it is a review gate.
    pub fn reviewer_pool(&self, i: usize, index: usize) -> Option<usize> {
        match self.workflow.tasks[i].gates().get(index)? {
            Gate::Review { pool, .. } => self.workflow.pool_index(pool),
            _ => None,
        }
    }

    /// A review gate's failed tries (from its verdict event, at `ts_ms`): those that
    /// say something about the reviewer count on its pool's breaker, exactly like an
    /// attempt's failures on its own pool. A low score is a verdict, not one of them.
    pub(super) fn count_reviewer_failures(&mut self, i: usize, index: usize, failures: &[FailureClass], ts_ms: u64) {
        let Some(p) = self.reviewer_pool(i, index) else { return };
        let policy = self.workflow.pools[p].breaker;
        let counted = failures.iter().filter(|c| c.counts_against_pool()).count();
        for _ in 0..counted {
            self.pools[p].breaker.count_failure(policy.as_ref(), ts_ms);
        }
    }

    /// Pool index by name.
    pub(super) fn pool_lookup(&self, name: &str) -> Result<usize, ApplyError> {
        self.workflow.pool_index(name).ok_or_else(|| ApplyError::UnknownPool(name.to_string()))
    }

    /// Pool `name`'s live state.
    pub(super) fn pool_mut(&mut self, name: &str) -> Result<&mut PoolState, ApplyError> {
        let p = self.pool_lookup(name)?;
        Ok(&mut self.pools[p])
    }
}
