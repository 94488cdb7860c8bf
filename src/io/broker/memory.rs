//! An in-process broker: a **test double** implementing [`Transport`] and
//! [`WorkerTransport`] with the same delivery rules as Redis (pending deliveries with
//! idle times, reclaim past a lease, acked results gone, stop requests, expiring
//! registrations), so the engine and runner can be tested with paused tokio time and
//! no server. Not for production: nothing leaves the process. Tests can take the
//! broker down ([`MemoryBroker::go_down`]) and bring it back empty or whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::wire::{AttemptMsg, Registration, StopWhy, WireError, WorkerMsg};
use super::{
    BoxFut, BrokerError, BrokerResult, EntryId, Inbound, InboundId, Job, Reclaimed, RunScope, Running, StopNotice,
    Transport, WorkerInfo, WorkerScope, WorkerTransport,
};

/// How long an empty read waits (like Redis's `BLOCK 1000`).
const BLOCK: Duration = Duration::from_secs(1);
/// The name memory brokers show in messages.
const SHOWN: &str = "memory://";

struct Delivery {
    msg: AttemptMsg,
    /// The consumer holding it and since when (idle time counts from there).
    holder: Option<(String, Instant)>,
    deliveries: u64,
    /// Acked by its worker: kept until the manager withdraws it, never reclaimed.
    acked: bool,
}

#[derive(Default)]
struct State {
    up: bool,
    next_id: u64,
    /// (run, pool) → entry id → delivery.
    queues: HashMap<(String, String), BTreeMap<u64, Delivery>>,
    /// run → results not yet acked: id → (message, delivered to the manager).
    results: HashMap<String, BTreeMap<u64, (WorkerMsg, bool)>>,
    /// run → live messages not yet read by the manager.
    live: HashMap<String, Vec<WorkerMsg>>,
    stops: HashMap<(String, String), StopWhy>,
    /// runs whose meta exists.
    meta: HashMap<String, ()>,
    /// pool → runs served.
    runs: HashMap<String, Vec<String>>,
    /// worker → (registration, last seen, expires at).
    workers: BTreeMap<String, (Registration, Instant, Instant)>,
}

/// The shared in-process broker; make transports on it with [`MemoryBroker::manager`]
/// and [`MemoryBroker::worker`].
pub struct MemoryBroker {
    state: Mutex<State>,
    wake: Notify,
}

impl MemoryBroker {
    /// A broker that is up and empty.
    pub fn new() -> Arc<MemoryBroker> {
        Arc::new(MemoryBroker { state: Mutex::new(State { up: true, ..State::default() }), wake: Notify::new() })
    }

    /// A manager-side transport for `scope`.
    pub fn manager(self: &Arc<Self>, scope: RunScope) -> MemoryTransport {
        MemoryTransport { broker: Arc::clone(self), scope, wrote_meta: Mutex::new(false), lost: Mutex::new(false) }
    }

    /// A worker-side transport for `scope`.
    pub fn worker(self: &Arc<Self>, scope: WorkerScope) -> MemoryWorkerTransport {
        MemoryWorkerTransport { broker: Arc::clone(self), scope }
    }

    /// Every call fails as unreachable until [`MemoryBroker::come_back`].
    pub fn go_down(&self) {
        self.lock().up = false;
        self.wake.notify_waiters();
    }

    /// Up again; with `lose_data`, empty (as a Redis restarted without persistence).
    pub fn come_back(&self, lose_data: bool) {
        let mut s = self.lock();
        if lose_data {
            let next_id = s.next_id;
            *s = State { next_id, ..State::default() };
        }
        s.up = true;
    }

    /// Attempts waiting or held in pool queues of `run` (for assertions).
    pub fn queued(&self, run: &str) -> usize {
        self.lock().queues.iter().filter(|((r, _), _)| r == run).map(|(_, q)| q.len()).sum()
    }

    /// Poisons nothing: a panic in another test thread holding the lock is a test bug.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_up(&self) -> BrokerResult<MutexGuard<'_, State>> {
        let s = self.lock();
        if s.up {
            Ok(s)
        } else {
            Err(BrokerError::Unreachable {
                broker: SHOWN.to_string(),
                reason: "the memory broker is down (test)".to_string(),
            })
        }
    }

    fn new_id(s: &mut State) -> u64 {
        s.next_id += 1;
        s.next_id
    }

    /// Waits for a change or the block time, whichever is first.
    async fn block(&self) {
        let _ = tokio::time::timeout(BLOCK, self.wake.notified()).await;
    }
}

/// The manager side of a [`MemoryBroker`] (a test double).
pub struct MemoryTransport {
    broker: Arc<MemoryBroker>,
    scope: RunScope,
    wrote_meta: Mutex<bool>,
    lost: Mutex<bool>,
}

fn flag(m: &Mutex<bool>) -> MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MemoryTransport {
    fn run(&self) -> &str {
        &self.scope.run
    }
}

impl Transport for MemoryTransport {
    fn describe(&self) -> &str {
        SHOWN
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            if !s.meta.contains_key(self.run()) && *flag(&self.wrote_meta) {
                *flag(&self.lost) = true;
            }
            s.meta.insert(self.run().to_string(), ());
            for pool in &self.scope.pools {
                s.queues.entry((self.run().to_string(), pool.name.clone())).or_default();
                let runs = s.runs.entry(pool.name.clone()).or_default();
                if !runs.iter().any(|r| r == self.run()) {
                    runs.push(self.run().to_string());
                }
            }
            // A reconnect re-reads unacked results, as the Redis pending list does.
            if let Some(results) = s.results.get_mut(self.run()) {
                results.values_mut().for_each(|(_, delivered)| *delivered = false);
            }
            *flag(&self.wrote_meta) = true;
            Ok(())
        })
    }

    fn data_lost(&self) -> BoxFut<'_, BrokerResult<bool>> {
        Box::pin(async move {
            let s = self.broker.check_up()?;
            let latched = std::mem::take(&mut *flag(&self.lost));
            Ok(latched || (!s.meta.contains_key(self.run()) && *flag(&self.wrote_meta)))
        })
    }

    fn refresh(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move { self.broker.check_up().map(|_| ()) })
    }

    fn publish(&self, jobs: Vec<AttemptMsg>) -> BoxFut<'_, BrokerResult<Vec<EntryId>>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            let mut ids = Vec::with_capacity(jobs.len());
            for job in jobs {
                let id = MemoryBroker::new_id(&mut s);
                ids.push(EntryId { run: job.run.clone(), pool: job.pool.clone(), id: id.to_string() });
                s.queues
                    .entry((job.run.clone(), job.pool.clone()))
                    .or_default()
                    .insert(id, Delivery { msg: job, holder: None, deliveries: 0, acked: false });
            }
            drop(s);
            self.broker.wake.notify_waiters();
            Ok(ids)
        })
    }

    fn withdraw(&self, entries: Vec<EntryId>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            for e in entries {
                if let (Some(q), Ok(id)) = (s.queues.get_mut(&(e.run, e.pool)), e.id.parse::<u64>()) {
                    q.remove(&id);
                }
            }
            Ok(())
        })
    }

    fn read_inbound(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Inbound>>> {
        Box::pin(async move {
            for round in 0..2 {
                {
                    let mut s = self.broker.check_up()?;
                    let results = s.results.entry(self.run().to_string()).or_default();
                    let out: Vec<Inbound> = results
                        .iter_mut()
                        .filter(|(_, (_, delivered))| !*delivered)
                        .take(max.max(1))
                        .map(|(id, (msg, delivered))| {
                            *delivered = true;
                            Inbound { id: InboundId(id.to_string()), msg: Ok(msg.clone()) }
                        })
                        .collect();
                    if !out.is_empty() || round == 1 {
                        return Ok(out);
                    }
                }
                self.broker.block().await;
            }
            Ok(Vec::new())
        })
    }

    fn ack_inbound(&self, ids: Vec<InboundId>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            if let Some(results) = s.results.get_mut(self.run()) {
                for id in ids {
                    if let Ok(id) = id.0.parse::<u64>() {
                        results.remove(&id);
                    }
                }
            }
            Ok(())
        })
    }

    fn read_live(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Result<WorkerMsg, WireError>>>> {
        Box::pin(async move {
            for round in 0..2 {
                {
                    let mut s = self.broker.check_up()?;
                    let live = s.live.entry(self.run().to_string()).or_default();
                    let n = live.len().min(max.max(1));
                    if n > 0 || round == 1 {
                        return Ok(live.drain(..n).map(Ok).collect());
                    }
                }
                self.broker.block().await;
            }
            Ok(Vec::new())
        })
    }

    fn stop(&self, key: String, why: StopWhy) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            s.stops.insert((self.run().to_string(), key), why);
            Ok(())
        })
    }

    fn reclaim(&self, lease: Duration) -> BoxFut<'_, BrokerResult<Vec<Reclaimed>>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            let now = Instant::now();
            let mut out = Vec::new();
            for pool in &self.scope.pools {
                let Some(q) = s.queues.get_mut(&(self.run().to_string(), pool.name.clone())) else {
                    continue;
                };
                let idle: Vec<u64> = q
                    .iter()
                    .filter(|(_, d)| {
                        !d.acked && d.holder.as_ref().is_some_and(|(_, since)| now.duration_since(*since) >= lease)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in idle {
                    if let Some(d) = q.remove(&id) {
                        out.push(Reclaimed {
                            entry: EntryId { run: self.run().to_string(), pool: pool.name.clone(), id: id.to_string() },
                            worker: d.holder.map(|(w, _)| w),
                            deliveries: d.deliveries + 1,
                            msg: Ok(d.msg),
                        });
                    }
                }
            }
            Ok(out)
        })
    }

    fn workers(&self) -> BoxFut<'_, BrokerResult<Vec<WorkerInfo>>> {
        Box::pin(async move {
            let s = self.broker.check_up()?;
            let now = Instant::now();
            let epoch = now.checked_sub(now.elapsed()).unwrap_or(now);
            Ok(s.workers
                .values()
                .filter(|(r, _, _)| self.scope.pools.iter().any(|p| p.name == r.pool))
                .map(|(r, seen, expires)| WorkerInfo {
                    registration: r.clone(),
                    seen_ms: u64::try_from(seen.duration_since(epoch).as_millis()).unwrap_or(u64::MAX),
                    alive: *expires > now,
                })
                .collect())
        })
    }

    fn publish_event(&self, _line: Arc<str>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move { self.broker.check_up().map(|_| ()) })
    }

    fn finish(&self, clean: bool) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            for runs in s.runs.values_mut() {
                runs.retain(|r| r != self.run());
            }
            if clean {
                s.queues.retain(|(r, _), _| r != self.run());
                s.results.remove(self.run());
                s.live.remove(self.run());
                s.meta.remove(self.run());
            }
            Ok(())
        })
    }
}

/// The worker side of a [`MemoryBroker`] (a test double).
pub struct MemoryWorkerTransport {
    broker: Arc<MemoryBroker>,
    scope: WorkerScope,
}

impl MemoryWorkerTransport {
    fn take_jobs(&self, s: &mut State, free: usize) -> Vec<Job> {
        let runs = s.runs.get(&self.scope.pool).cloned().unwrap_or_default();
        let now = Instant::now();
        let mut jobs = Vec::new();
        for run in runs {
            let Some(q) = s.queues.get_mut(&(run.clone(), self.scope.pool.clone())) else {
                continue;
            };
            for (id, d) in q.iter_mut().filter(|(_, d)| d.holder.is_none()) {
                if jobs.len() >= free {
                    return jobs;
                }
                d.holder = Some((self.scope.worker.clone(), now));
                d.deliveries += 1;
                jobs.push(Job {
                    entry: EntryId { run: run.clone(), pool: self.scope.pool.clone(), id: id.to_string() },
                    deliveries: d.deliveries,
                    msg: Ok(d.msg.clone()),
                });
            }
        }
        jobs
    }

    fn touch(&self, s: &mut State, registration: &Registration) {
        let now = Instant::now();
        let ttl = Duration::from_millis(registration.ttl_ms);
        s.workers.insert(self.scope.worker.clone(), (registration.clone(), now, now + ttl));
    }
}

impl WorkerTransport for MemoryWorkerTransport {
    fn describe(&self) -> &str {
        SHOWN
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move { self.broker.check_up().map(|_| ()) })
    }

    fn register(&self, registration: &Registration) -> BoxFut<'_, BrokerResult<()>> {
        let registration = registration.clone();
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            self.touch(&mut s, &registration);
            Ok(())
        })
    }

    fn unregister(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            s.workers.remove(&self.scope.worker);
            Ok(())
        })
    }

    fn next_jobs(&self, free: usize) -> BoxFut<'_, BrokerResult<Vec<Job>>> {
        Box::pin(async move {
            for round in 0..2 {
                {
                    let mut s = self.broker.check_up()?;
                    let jobs = self.take_jobs(&mut s, free);
                    if !jobs.is_empty() || round == 1 || free == 0 {
                        return Ok(jobs);
                    }
                }
                self.broker.block().await;
            }
            Ok(Vec::new())
        })
    }

    fn heartbeat(
        &self,
        registration: &Registration,
        running: Vec<Running>,
    ) -> BoxFut<'_, BrokerResult<Vec<StopNotice>>> {
        let registration = registration.clone();
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            self.touch(&mut s, &registration);
            let now = Instant::now();
            let mut stops = Vec::new();
            for r in running {
                if let (Some(q), Ok(id)) =
                    (s.queues.get_mut(&(r.entry.run.clone(), r.entry.pool.clone())), r.entry.id.parse::<u64>())
                {
                    if let Some(d) = q.get_mut(&id) {
                        d.holder = Some((self.scope.worker.clone(), now));
                    }
                }
                if let Some(why) = s.stops.get(&(r.entry.run.clone(), r.key.clone())) {
                    stops.push(StopNotice { run: r.entry.run, key: r.key, why: *why });
                }
            }
            Ok(stops)
        })
    }

    fn report(&self, run: &str, msg: WorkerMsg) -> BoxFut<'_, BrokerResult<()>> {
        let run = run.to_string();
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            if msg.is_durable() {
                let id = MemoryBroker::new_id(&mut s);
                s.results.entry(run).or_default().insert(id, (msg, false));
            } else {
                s.live.entry(run).or_default().push(msg);
            }
            drop(s);
            self.broker.wake.notify_waiters();
            Ok(())
        })
    }

    fn ack_job(&self, entry: EntryId) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut s = self.broker.check_up()?;
            // Acked deliveries stay until the manager withdraws them (as XACK without
            // XDEL on Redis), and are never reclaimed.
            if let (Some(q), Ok(id)) = (s.queues.get_mut(&(entry.run, entry.pool)), entry.id.parse::<u64>()) {
                if let Some(d) = q.get_mut(&id) {
                    d.acked = true;
                }
            }
            Ok(())
        })
    }
}
