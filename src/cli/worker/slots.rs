//! The worker's loop: up to `--concurrency` jobs at once plus `--read-ahead` jobs
//! held (read while every slot is busy, started the moment one frees, so a slot does
//! not idle for the trip to the broker and back), a heartbeat that keeps the
//! registration and the deliveries alive (held ones too) and brings the manager's
//! stop requests, and the drain at the end (held jobs are handed back at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use super::drain::{self, Phase};
use super::report::{self, run_job};
use super::Setup;
use crate::io::broker::wire::{Registration, WorkerState};
use crate::io::broker::{
    AttemptMsg, BrokerError, BrokerErrorKind, BrokerResult, EntryId, Running, StopWhy, WorkerMsg, WorkerTransport,
};
use crate::io::clock::wall_ms;
use crate::io::runner::{Runner, Stop};

/// Longest time between heartbeats.
const HEARTBEAT_MAX: Duration = Duration::from_secs(5);
/// Shortest time between heartbeats (a tiny lease or TTL is not a busy loop).
const HEARTBEAT_MIN: Duration = Duration::from_millis(100);
/// How long held results are retried after the drain, before the worker gives up.
const HOLD_AFTER_DRAIN: Duration = Duration::from_secs(10);

/// How the worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Everything it took was answered.
    Clean,
    /// This many ends could not be delivered (the broker stayed away).
    Undelivered(usize),
}

/// One job this worker holds, running or waiting for a slot (read ahead), as the
/// heartbeat and the drain see it.
pub(crate) struct Slot {
    /// Where its delivery sits.
    pub entry: EntryId,
    /// The attempt key.
    pub key: String,
    /// The attempt's lease, which bounds the heartbeat interval.
    pub lease_ms: u64,
    /// The stop the attempt's supervision watches.
    stop_tx: watch::Sender<Option<Stop>>,
    /// Its receiving end, handed to supervision.
    pub stop_rx: watch::Receiver<Option<Stop>>,
    /// The stop the manager asked for, if it did.
    pub asked: Mutex<Option<StopWhy>>,
    /// True once the drain stopped it (it is handed back).
    pub drained: AtomicBool,
}

/// What every job task shares.
pub(crate) struct Shared {
    /// Who the worker is and what it runs.
    pub setup: Setup,
    /// The broker.
    pub transport: Arc<dyn WorkerTransport>,
    /// The local runner (process groups, capture, redaction).
    pub runner: Arc<dyn Runner>,
    /// Held jobs (running or read ahead) by (run, key).
    running: Mutex<HashMap<(String, String), Arc<Slot>>>,
    /// One permit per `--concurrency` slot: a job runs only while it holds one, so
    /// a job read ahead waits here (its timeout not yet counting).
    pub free_slots: Arc<Semaphore>,
    /// Told when a job is taken (its lease may call for sooner heartbeats).
    taken: Notify,
    /// The worker's phase.
    phase: watch::Receiver<Phase>,
    /// Set when held messages are to be dropped (the worker is exiting).
    pub give_up: watch::Receiver<bool>,
    /// True while the broker is known to be away (said once per outage).
    down: AtomicBool,
}

impl Shared {
    /// True once the worker stops taking jobs.
    pub fn draining(&self) -> bool {
        *self.phase.borrow() != Phase::Serving
    }

    /// The worker's phase, to watch for the drain.
    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.clone()
    }

    /// Notes a job taken (running or read ahead).
    pub fn add(&self, entry: &EntryId, msg: &AttemptMsg) -> Arc<Slot> {
        let (stop_tx, stop_rx) = watch::channel(None);
        let slot = Arc::new(Slot {
            entry: entry.clone(),
            key: msg.key.clone(),
            lease_ms: msg.lease_ms,
            stop_tx,
            stop_rx,
            asked: Mutex::new(None),
            drained: AtomicBool::new(false),
        });
        self.lock().insert((entry.run.clone(), msg.key.clone()), slot.clone());
        self.taken.notify_one();
        slot
    }

    /// Forgets a job whose end is delivered.
    pub fn remove(&self, slot: &Slot) {
        self.lock().remove(&(slot.entry.run.clone(), slot.key.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Slot>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.lock().values().cloned().collect()
    }

    /// Says once per outage that the broker is away.
    pub fn note_down(&self, e: &BrokerError) {
        if !self.down.swap(true, Ordering::Relaxed) {
            eprintln!("pitboss worker: {e}; holding results and retrying");
        }
    }

    fn note_up(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            eprintln!("pitboss worker: the broker at {} is back", self.transport.describe());
        }
    }

    fn registration(&self) -> Registration {
        let args = &self.setup.args;
        let busy = !self.lock().is_empty();
        Registration {
            worker: self.setup.worker.clone(),
            pool: args.pool.clone(),
            capabilities: args.capabilities.clone(),
            host: self.setup.host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            concurrency: args.concurrency,
            state: match (self.draining(), busy) {
                (true, _) => WorkerState::Draining,
                (false, true) => WorkerState::Busy,
                (false, false) => WorkerState::Idle,
            },
            ttl_ms: crate::io::runner::millis(args.ttl),
        }
    }

    /// Between heartbeats: a third of the TTL, a sixth of the shortest running lease.
    fn heartbeat_every(&self) -> Duration {
        let lease = self.slots().iter().map(|s| Duration::from_millis(s.lease_ms / 6)).min();
        let every = [Some(self.setup.args.ttl / 3), lease, Some(HEARTBEAT_MAX)].into_iter().flatten().min();
        every.unwrap_or(HEARTBEAT_MAX).max(HEARTBEAT_MIN)
    }
}

/// Serves jobs until a drain ends; an error when the broker refuses the worker.
pub(crate) async fn serve(
    setup: Setup,
    transport: Arc<dyn WorkerTransport>,
    runner: Arc<dyn Runner>,
) -> BrokerResult<Ending> {
    let mut phase = drain::listen().map_err(|e| BrokerError::Protocol {
        broker: transport.describe().to_string(),
        detail: format!("cannot listen for stop signals: {e}"),
    })?;
    let (give_up_tx, give_up) = watch::channel(false);
    let free_slots = Arc::new(Semaphore::new(setup.args.concurrency as usize));
    let shared = Arc::new(Shared {
        setup,
        transport: transport.clone(),
        runner,
        running: Mutex::default(),
        free_slots,
        taken: Notify::new(),
        phase: phase.clone(),
        give_up,
        down: AtomicBool::new(false),
    });
    // A refused login or ACL is fatal here, before any job is taken.
    transport.connect().await?;
    transport.register(&shared.registration()).await?;
    eprintln!(
        "pitboss worker {} serving pool {} on {} ({} at once)",
        shared.setup.worker,
        shared.setup.args.pool,
        transport.describe(),
        shared.setup.args.concurrency
    );
    let heartbeat = tokio::spawn(heartbeats(shared.clone()));
    let mut jobs: JoinSet<bool> = JoinSet::new();
    let mut undelivered = 0;
    // Jobs held at once: the slots, plus those read ahead while every slot is busy.
    let window = shared.setup.args.concurrency as usize + shared.setup.args.read_ahead as usize;
    let window = Arc::new(Semaphore::new(window));
    let mut wait = Duration::from_millis(100);
    while *phase.borrow() == Phase::Serving {
        while let Some(done) = jobs.try_join_next() {
            undelivered += usize::from(!done.unwrap_or(false));
        }
        // Room counts jobs whose process has not ended: one delivering its result
        // does not hold back the next read.
        let free = window.available_permits();
        if free == 0 {
            tokio::select! {
                done = jobs.join_next(), if !jobs.is_empty() => {
                    undelivered += usize::from(!matches!(done, Some(Ok(true))));
                }
                _ = window.acquire() => {}
                _ = phase.changed() => {}
            }
            continue;
        }
        // Never dropped half-way: a read that returned jobs must see them answered
        // (handed back when the drain began meanwhile).
        match transport.next_jobs(free).await {
            Ok(batch) => {
                shared.note_up();
                wait = Duration::from_millis(100);
                for job in batch {
                    let room = window.clone().try_acquire_owned().ok();
                    jobs.spawn(run_job(shared.clone(), job, room));
                }
            }
            // A run that ended while its queue was read ("UNBLOCKED … no longer
            // exists") or a reply this build does not expect concerns one read only:
            // say it and read again. Only a refusal (password, ACL) ends the worker.
            Err(e) if !matches!(e.kind(), BrokerErrorKind::Refused | BrokerErrorKind::Config) => {
                if e.kind() == BrokerErrorKind::Unreachable {
                    shared.note_down(&e);
                } else {
                    eprintln!("pitboss worker: reading jobs: {e}; reading again");
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = phase.changed() => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
                let _ = transport.connect().await;
            }
            Err(e) => {
                heartbeat.abort();
                stop_all(&shared, false);
                give_up_tx.send_replace(true);
                while jobs.join_next().await.is_some() {}
                return Err(e);
            }
        }
    }
    // Draining: say so, let the running jobs finish (jobs read ahead are handed back
    // at once by their own tasks), then stop and hand back the rest.
    let _ = transport.register(&shared.registration()).await;
    let all_done = async {
        let mut missed = 0;
        while let Some(done) = jobs.join_next().await {
            missed += usize::from(!matches!(done, Ok(true)));
        }
        missed
    };
    tokio::pin!(all_done);
    let deadline = tokio::time::sleep(shared.setup.args.drain_timeout);
    tokio::pin!(deadline);
    let missed = tokio::select! {
        missed = &mut all_done => missed,
        _ = &mut deadline => { stop_all(&shared, true); hold_then_give_up(&mut all_done, &give_up_tx).await }
        _ = drain::reached(&mut phase, Phase::Hurry) => { stop_all(&shared, true); hold_then_give_up(&mut all_done, &give_up_tx).await }
    };
    undelivered += missed;
    heartbeat.abort();
    let _ = transport.unregister().await;
    Ok(if undelivered == 0 { Ending::Clean } else { Ending::Undelivered(undelivered) })
}

/// Waits for the stopped jobs' ends to be delivered, giving up on held ones after
/// [`HOLD_AFTER_DRAIN`].
async fn hold_then_give_up(
    all_done: &mut std::pin::Pin<&mut impl std::future::Future<Output = usize>>,
    give_up: &watch::Sender<bool>,
) -> usize {
    tokio::select! {
        missed = all_done.as_mut() => return missed,
        _ = tokio::time::sleep(HOLD_AFTER_DRAIN) => {}
    }
    give_up.send_replace(true);
    all_done.as_mut().await
}

/// Stops every running job (`drained`: to hand it back).
fn stop_all(shared: &Shared, drained: bool) {
    for slot in shared.slots() {
        slot.drained.store(drained, Ordering::Relaxed);
        let _ = slot.stop_tx.send(Some(Stop::Interrupt));
    }
}

/// Refreshes the registration and the running deliveries, applies the manager's stop
/// requests, and tells each run's manager which of its attempts are alive.
async fn heartbeats(shared: Arc<Shared>) {
    let mut last = tokio::time::Instant::now();
    loop {
        // A job taken may shorten the interval (its lease): the next beat is due
        // from the last one by the interval as it is now, not as it was then.
        tokio::select! {
            _ = tokio::time::sleep_until(last + shared.heartbeat_every()) => {}
            _ = shared.taken.notified() => continue,
        }
        last = tokio::time::Instant::now();
        let slots = shared.slots();
        let running: Vec<Running> =
            slots.iter().map(|s| Running { entry: s.entry.clone(), key: s.key.clone() }).collect();
        match shared.transport.heartbeat(&shared.registration(), running).await {
            Ok(stops) => {
                shared.note_up();
                for stop in stops {
                    let slot = slots.iter().find(|s| s.entry.run == stop.run && s.key == stop.key);
                    if let Some(slot) = slot {
                        let mut asked = slot.asked.lock().unwrap_or_else(|p| p.into_inner());
                        if asked.is_none() {
                            *asked = Some(stop.why);
                            let _ = slot.stop_tx.send(Some(report::stop_for(stop.why)));
                        }
                    }
                }
            }
            Err(e) if e.is_transient() => shared.note_down(&e),
            Err(e) => eprintln!("pitboss worker: heartbeat refused: {e}"),
        }
        let mut by_run: HashMap<&str, Vec<String>> = HashMap::new();
        for slot in &slots {
            by_run.entry(slot.entry.run.as_str()).or_default().push(slot.key.clone());
        }
        for (run, keys) in by_run {
            let beat = WorkerMsg::Heartbeat { worker: shared.setup.worker.clone(), keys, sent_ms: wall_ms() };
            let _ = shared.transport.report(run, beat).await;
        }
    }
}
