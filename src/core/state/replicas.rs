//! The fold of a consensus attempt's events (DESIGN §10). The votes live in the
//! running state itself (`TaskState::Running::round`), so they go when the attempt
//! ends, and a new attempt (or the same number run again after an interruption)
//! starts with none. Replay casts the same votes into the same round, so a resumed
//! run or `inspect` decides as the live engine did.
//!
//! Where each replica runs is decided here too, in the fold of `attempt_started`
//! ([`Seats`]), from the pools' state at that moment, so replay places them as the
//! live engine did: a replica meant for another pool runs there only when that pool
//! is not paused, its breaker admits it and it has a free slot, and then holds that
//! slot (counts in its `running`) until it votes or the attempt ends. Otherwise it
//! runs on the attempt's own pool, within the attempt's one slot, like a replica
//! given no pool. Waiting for the other pool instead would hold the round (and the
//! attempt's slot) for as long as an operator keeps a pool paused.
//!
//! The judge has no such way out (the judge pool runs the judge's command): when
//! every replica is in without a quorum, the judge waits for the judge pool like a
//! queued attempt (not paused, breaker admitting, a free slot), and is seated by
//! the fold of whichever event frees it, before any queued task is dispatched. A
//! judge pool that is the attempt's own pool is used within the attempt's slot.

use serde_json::Value;

use super::{ApplyError, RunState};
use crate::core::consensus::{Decision, Round};
use crate::core::event::FailureClass;
use crate::core::task::TaskState;

/// The placement of one running consensus attempt's replicas.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seats {
    /// Pool index of each replica, by replica index.
    pub places: Vec<usize>,
    /// Per replica: true while it holds a slot on its pool (another pool than the
    /// attempt's), released when it votes or the attempt ends.
    pub held: Vec<bool>,
    /// The errors of the replicas that could not start (a permanent spawn error).
    pub cannot_start: Vec<String>,
    /// True once the round needs its judge.
    pub judge_wanted: bool,
    /// Where the judge was seated (pool index, and true when it holds a slot there).
    pub judge: Option<(usize, bool)>,
    /// The attempt's own pool.
    own: usize,
}

/// True when pool `p` can take one more process now (as for a queued attempt).
fn can_take(state: &RunState, p: usize) -> bool {
    let pool = &state.pools[p];
    !pool.paused
        && pool.running < state.pool_capacity(p)
        && pool.breaker.admits(state.workflow.pools[p].breaker.as_ref(), 0)
}

impl RunState {
    /// Where replica `replica` of running task `i` runs, if it is a consensus attempt.
    pub fn replica_pool(&self, i: usize, replica: u32) -> Option<&str> {
        let p = *self.seats.get(&i)?.places.get(replica as usize)?;
        Some(self.workflow.pools[p].name.as_str())
    }

    /// After `attempt_started` of task `i` on pool `own`: each replica's pool (see
    /// the module docs), taking a slot on each other pool used.
    pub(super) fn seat_replicas(&mut self, i: usize, own: usize) {
        let Some(spec) = self.workflow.tasks[i].consensus.clone() else { return };
        let mut seats = Seats { own, ..Seats::default() };
        for r in 0..spec.replicas {
            let wanted = spec.replica_pool(r).and_then(|name| self.workflow.pool_index(name)).filter(|&p| p != own);
            match wanted.filter(|&p| can_take(self, p)) {
                Some(p) => {
                    self.pools[p].running += 1;
                    self.pools[p].count_probe();
                    seats.places.push(p);
                    seats.held.push(true);
                }
                None => {
                    seats.places.push(own);
                    seats.held.push(false);
                }
            }
        }
        self.seats.insert(i, seats);
    }

    /// Replica `replica` of task `i` is over: the slot it held on another pool is free.
    fn release_seat(&mut self, i: usize, replica: u32) {
        let Some(seats) = self.seats.get_mut(&i) else { return };
        let r = replica as usize;
        if seats.held.get(r).copied().unwrap_or(false) {
            seats.held[r] = false;
            let p = seats.places[r];
            self.pools[p].running = self.pools[p].running.saturating_sub(1);
        }
    }

    /// Task `i`'s attempt left running: every slot its replicas or judge still held is free.
    pub(super) fn release_seats(&mut self, i: usize) {
        let Some(seats) = self.seats.remove(&i) else { return };
        let judge = seats.judge.filter(|(_, held)| *held).map(|(p, _)| p);
        let replicas = seats.places.iter().zip(&seats.held).filter(|(_, held)| **held).map(|(p, _)| *p);
        for p in replicas.chain(judge) {
            self.pools[p].running = self.pools[p].running.saturating_sub(1);
        }
    }

    /// Where task `i`'s judge was seated, once it was.
    pub fn judge_pool(&self, i: usize) -> Option<&str> {
        let (p, _) = self.seats.get(&i)?.judge?;
        Some(self.workflow.pools[p].name.as_str())
    }

    /// Seats every waiting judge whose pool can take it now, in task order (the
    /// same order live and in replay).
    pub(super) fn seat_judges(&mut self) {
        if !self.seats.values().any(|s| s.judge_wanted && s.judge.is_none()) {
            return;
        }
        let waiting: Vec<usize> =
            self.seats.iter().filter(|(_, s)| s.judge_wanted && s.judge.is_none()).map(|(i, _)| *i).collect();
        for i in waiting {
            let Some(p) = self.workflow.tasks[i].consensus.as_ref().and_then(|c| c.judge.as_deref()) else { continue };
            let Some(p) = self.workflow.pool_index(p) else { continue };
            let own = self.seats[&i].own;
            let seat = if p == own {
                Some((p, false))
            } else if can_take(self, p) {
                self.pools[p].running += 1;
                self.pools[p].count_probe();
                Some((p, true))
            } else {
                None
            };
            if let Some(seats) = self.seats.get_mut(&i) {
                seats.judge = seat;
            }
        }
    }

    /// `vote_cast`: the replica's vote goes into the running attempt's round and the
    /// slot it held is free; a failure that says something about its pool counts on
    /// that pool's breaker; a replica that could not start is remembered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cast_vote(
        &mut self,
        kind: &'static str,
        id: &str,
        attempt: u32,
        replica: u32,
        worker: &str,
        result: &Option<Value>,
        failure: Option<(FailureClass, &str)>,
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
        let judge_wanted = spec.judge.is_some() && matches!(next.decision(), Decision::NeedJudge { .. });
        *round = Some(Box::new(next));
        self.release_seat(i, replica);
        if judge_wanted {
            self.seats.entry(i).or_default().judge_wanted = true;
        }
        if let Some((FailureClass::SpawnPermanent, error)) = failure {
            self.seats.entry(i).or_default().cannot_start.push(error.to_string());
        }
        if failure.is_some_and(|(class, _)| class.counts_against_pool()) {
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

    /// `consensus_reached`: the winning replica is kept with the task, so that its
    /// gates run in that replica's workspace in this manager and in a resumed one.
    pub(super) fn note_winner(&mut self, id: &str, winner: u32) {
        if let Some(i) = self.task_index(id) {
            self.tasks[i].links_mut().winner = Some(winner);
        }
    }

    /// The replica whose result won task `i`'s latest consensus, if one did.
    pub fn consensus_winner(&self, i: usize) -> Option<u32> {
        self.tasks.get(i)?.winner()
    }
}
