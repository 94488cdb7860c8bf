//! Broker mode's part of the run state (DESIGN §7): whether the broker link is up,
//! the remote workers that registered (and those that vanished), and where each
//! remote attempt runs. Folded from the broker events like everything else, so the
//! TUI, `ctl status` and a resumed manager see the same fleet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ApplyError, RunState};
use crate::core::event::{BrokerDown, BrokerUp, WorkerLost, WorkerRegistered};
use crate::core::task::TaskState;

/// Attempts published beyond a live worker's `concurrency` slots, so that a slot that
/// frees finds its next job read ahead by its worker (`--read-ahead`, 1 by default)
/// or waiting on the broker, instead of waiting for the manager's round trip (the
/// result back, its record, the next publish). Half the slots, at least one: slots
/// free one after another, and one job in hand per worker covers only the first of
/// those that free during a round trip (P5, docs/BENCHMARKS.md).
pub fn read_ahead(concurrency: usize) -> usize {
    concurrency.div_ceil(2).max(1)
}

/// Vanished workers kept for the TUI and `ctl status`; the oldest are forgotten
/// beyond this, so a fleet that churns for days costs bounded memory.
pub const VANISHED_KEPT: usize = 256;

/// Broker mode's state. Empty (and not written in a snapshot) for a run without one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    /// The broker link, once an event said anything about it (none: up, as the
    /// manager connected before it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// Workers by id: live, not seen since this manager started, or vanished.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workers: BTreeMap<String, RemoteWorker>,
    /// Where the running remote attempts run, by task id. An entry outlives its
    /// attempt until the next placement prunes it: readers check the attempt.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placed: BTreeMap<String, Placement>,
    /// Tasks (by index) whose running attempt was lost with its worker, in the order
    /// they were lost: dispatched before the rest of the queue, so a task whose worker
    /// died is next rather than behind every task queued meanwhile. An entry leaves at
    /// the task's next `attempt_started` (or when it is found not queued).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first: Vec<usize>,
}

/// The broker link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The broker's URL, without a password.
    pub broker: String,
    /// False between `broker_down` and `broker_up`.
    pub up: bool,
    /// When it went down or came back (ms since the epoch).
    pub since_ms: u64,
    /// Why it went down (empty while up).
    pub reason: String,
}

/// A registered remote worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWorker {
    /// Its registration, as last recorded.
    pub registration: WorkerRegistered,
    /// When it was last recorded registering.
    pub seen_ms: u64,
    /// Whether it counts now.
    pub presence: Presence,
}

/// Whether a registered worker counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Registered and not lost since.
    Live,
    /// Registered with a manager that has since stopped; this one has not seen it
    /// yet, so it offers no slots until it registers again.
    Unknown,
    /// Lost: its registration expired, it left, or it held a reclaimed delivery.
    Gone {
        /// When.
        since_ms: u64,
        /// Why (`registration expired`, `left`, `lease expired`).
        reason: String,
    },
}

/// Where a remote attempt runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The attempt.
    pub attempt: u32,
    /// The worker's id.
    pub worker: String,
    /// Its host.
    pub host: String,
}

impl Remote {
    /// True for a run that never heard from a broker (not written in a snapshot).
    pub fn is_empty(&self) -> bool {
        self.link.is_none() && self.workers.is_empty() && self.placed.is_empty() && self.first.is_empty()
    }

    /// True while the broker is down: nothing is dispatched.
    pub fn is_down(&self) -> bool {
        self.link.as_ref().is_some_and(|l| !l.up)
    }

    /// Slots the live workers of pool `pool` offer, counting only those with every
    /// capability in `needs` (the pool's declared ones).
    pub fn slots(&self, pool: &str, needs: &[String]) -> usize {
        self.capable(pool, needs).map(|w| w.registration.concurrency).fold(0usize, usize::saturating_add)
    }

    /// Attempts published beyond the slots of pool `pool`'s live capable workers
    /// ([`read_ahead`] of each one's slots).
    pub fn read_ahead(&self, pool: &str, needs: &[String]) -> usize {
        self.capable(pool, needs).map(|w| read_ahead(w.registration.concurrency)).fold(0usize, usize::saturating_add)
    }

    fn capable<'a>(&'a self, pool: &'a str, needs: &'a [String]) -> impl Iterator<Item = &'a RemoteWorker> + 'a {
        self.workers
            .values()
            .filter(move |w| w.presence == Presence::Live && w.registration.pool == pool)
            .filter(move |w| needs.iter().all(|c| w.registration.capabilities.contains(c)))
    }

    /// Where `task`'s `attempt` runs, if remotely.
    pub fn placement(&self, task: &str, attempt: u32) -> Option<&Placement> {
        self.placed.get(task).filter(|p| p.attempt == attempt)
    }

    /// True when recording `seen` would change what is known: a new worker, one
    /// whose registration changed, or one that is not live.
    pub fn is_news(&self, seen: &WorkerRegistered) -> bool {
        match self.workers.get(&seen.worker) {
            Some(w) => w.presence != Presence::Live || w.registration != *seen,
            None => true,
        }
    }

    /// True when worker `id` is known and not already gone.
    pub fn is_present(&self, id: &str) -> bool {
        self.workers.get(id).is_some_and(|w| !matches!(w.presence, Presence::Gone { .. }))
    }

    /// The pool worker `id` registered for, if known.
    pub fn pool_of(&self, id: &str) -> Option<&str> {
        self.workers.get(id).map(|w| w.registration.pool.as_str())
    }

    fn register(&mut self, seen: &WorkerRegistered, ts_ms: u64) {
        let worker = RemoteWorker { registration: seen.clone(), seen_ms: ts_ms, presence: Presence::Live };
        self.workers.insert(seen.worker.clone(), worker);
    }

    fn lose(&mut self, id: &str, reason: &str, ts_ms: u64) {
        if let Some(w) = self.workers.get_mut(id) {
            w.presence = Presence::Gone { since_ms: ts_ms, reason: reason.to_string() };
        }
        self.forget_oldest_vanished();
    }

    /// Keeps at most [`VANISHED_KEPT`] vanished workers, dropping the longest gone.
    fn forget_oldest_vanished(&mut self) {
        let gone = |w: &RemoteWorker| match w.presence {
            Presence::Gone { since_ms, .. } => Some(since_ms),
            _ => None,
        };
        let mut vanished: Vec<(u64, String)> =
            self.workers.iter().filter_map(|(id, w)| gone(w).map(|t| (t, id.clone()))).collect();
        if vanished.len() <= VANISHED_KEPT {
            return;
        }
        vanished.sort();
        for (_, id) in vanished.iter().take(vanished.len() - VANISHED_KEPT) {
            self.workers.remove(id);
        }
    }

    /// A new manager took over: the workers it has not heard from yet offer nothing,
    /// and the broker answered it at start (launch refuses to start otherwise).
    pub(super) fn manager_started(&mut self, ts_ms: u64) {
        for w in self.workers.values_mut() {
            if w.presence == Presence::Live {
                w.presence = Presence::Unknown;
            }
        }
        if let Some(link) = self.link.as_mut().filter(|l| !l.up) {
            *link = Link { broker: link.broker.clone(), up: true, since_ms: ts_ms, reason: String::new() };
        }
    }
}

impl RunState {
    /// `worker_registered`.
    pub(super) fn worker_registered(&mut self, seen: &WorkerRegistered, ts_ms: u64) {
        self.remote.register(seen, ts_ms);
    }

    /// `worker_lost`: the worker is gone; when it had started the task's running
    /// attempt, that task counts one loss in a row toward the poison pill (the
    /// `attempt_interrupted` or poison-pill `attempt_failed` that follows ends it).
    pub(super) fn worker_lost(&mut self, lost: &WorkerLost, ts_ms: u64) -> Result<(), ApplyError> {
        if let (Some(task), Some(attempt)) = (&lost.task, lost.attempt) {
            let i = self.lookup(task)?;
            if self.runs_attempt(task, attempt) {
                if lost.started {
                    self.tasks[i].crashes += 1;
                }
                // Handed back next (`attempt_interrupted`): it goes first.
                let tasks = &self.tasks;
                self.remote.first.retain(|&t| t != i && matches!(tasks[t].state, TaskState::Queued));
                self.remote.first.push(i);
            }
        }
        self.remote.lose(&lost.worker, &lost.reason, ts_ms);
        Ok(())
    }

    /// `broker_down`.
    pub(super) fn broker_down(&mut self, down: &BrokerDown, ts_ms: u64) {
        self.remote.link =
            Some(Link { broker: down.broker.clone(), up: false, since_ms: ts_ms, reason: down.reason.clone() });
    }

    /// `broker_up`.
    pub(super) fn broker_up(&mut self, up: &BrokerUp, ts_ms: u64) {
        self.remote.link = Some(Link { broker: up.broker.clone(), up: true, since_ms: ts_ms, reason: String::new() });
    }

    /// `attempt_spawned` of a remote attempt: where it runs.
    pub(super) fn place_remote(&mut self, task: &str, attempt: u32, worker: &str, host: &str) {
        // Entries of attempts that ended go here, so the table stays the size of the
        // attempts running remotely.
        let ended: Vec<String> = (self.remote.placed.iter())
            .filter(|(t, p)| !self.runs_attempt(t, p.attempt))
            .map(|(t, _)| t.clone())
            .collect();
        for t in ended {
            self.remote.placed.remove(&t);
        }
        let placement = Placement { attempt, worker: worker.to_string(), host: host.to_string() };
        self.remote.placed.insert(task.to_string(), placement);
    }

    /// `attempt_started`: the task's attempt has no remote worker until one starts it.
    pub(super) fn unplace_remote(&mut self, task: &str) {
        if !self.remote.placed.is_empty() {
            self.remote.placed.remove(task);
        }
        if !self.remote.first.is_empty() {
            if let Some(i) = self.task_index(task) {
                self.remote.first.retain(|&t| t != i);
            }
        }
    }

    /// Queued tasks in the order dispatch takes them: those whose attempt was lost
    /// with a remote worker first ([`Remote::first`]), then the queue's order.
    pub fn dispatch_order(&self) -> impl Iterator<Item = usize> + '_ {
        let first = &self.remote.first;
        let queued = |i: &usize| matches!(self.tasks[*i].state, TaskState::Queued);
        first.iter().copied().filter(queued).chain(self.queue().filter(move |i| first.is_empty() || !first.contains(i)))
    }

    /// True when task `id` is running `attempt`.
    fn runs_attempt(&self, id: &str, attempt: u32) -> bool {
        let running = |i: usize| matches!(self.tasks[i].state, TaskState::Running { attempt: a, .. } if a == attempt);
        self.task_index(id).is_some_and(running)
    }

    /// A broker pool's capacity, the attempts it may have dispatched: its
    /// concurrency, but no more than the slots its live workers offer plus their
    /// read-ahead (0 workers: its tasks stay queued in the manager, not parked
    /// on the broker). A run without a broker: the concurrency.
    pub fn pool_capacity(&self, p: usize) -> usize {
        let concurrency = self.pools[p].concurrency;
        if self.workflow.head().broker.is_none() {
            return concurrency;
        }
        let pool = &self.workflow.head().pools[p];
        let offered = self.remote.slots(&pool.name, &pool.capabilities);
        concurrency.min(offered.saturating_add(self.remote.read_ahead(&pool.name, &pool.capabilities)))
    }

    /// What pool `p` can run at once, for people: its concurrency, or in broker mode
    /// no more than the slots its live workers offer (the read-ahead of
    /// [`RunState::pool_capacity`] left out: those attempts wait, they do not run).
    pub fn pool_slots(&self, p: usize) -> usize {
        let concurrency = self.pools[p].concurrency;
        if self.workflow.head().broker.is_none() {
            return concurrency;
        }
        let pool = &self.workflow.head().pools[p];
        concurrency.min(self.remote.slots(&pool.name, &pool.capabilities))
    }

    /// Pool `p`'s dispatched attempts that no worker has started yet (on the broker
    /// or read ahead by a worker); 0 for a run without a broker.
    pub fn pool_waiting_remote(&self, p: usize) -> usize {
        if self.workflow.head().broker.is_none() {
            return 0;
        }
        let name = &self.workflow.head().pools[p].name;
        (self.tasks.iter().enumerate())
            .filter(|(i, t)| match &t.state {
                TaskState::Running { attempt, pool, .. } => {
                    pool == name && self.remote.placement(self.task_id(*i), *attempt).is_none()
                }
                _ => false,
            })
            .count()
    }
}
