//! The manager's link to a broker, whatever its kind: one actor that owns a
//! [`Transport`] and keeps it useful across outages (plan §4, §6).
//!
//! - **State**: a `watch` of [`LinkState`] (up with an epoch, or down with a reason).
//! - **Outbox**: publishes, withdrawals, acks, stops and events are queued in order and
//!   sent when the link is up; while down they wait (events are bounded, the rest are
//!   bounded by the run's tasks), so an outage loses and charges nothing.
//! - **Reconnect**: with backoff from `backoff_min` to `backoff_max`; after each
//!   reconnect the notice says whether the broker lost the run's data (republish).
//! - **Pumps**: the results queue and the live feed are read by two tasks (each read
//!   blocks up to a second on its own connection) and forwarded as [`Notice`]s.
//! - **Timers**: the reclaim sweep every lease/3 (the first one full lease after each
//!   connect, so live workers heartbeat first), run refresh, and worker polling with
//!   seen/gone diffs.
//!
//! The link holds no policy about attempts: the runner decides what a notice means.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::wire::{AttemptMsg, StopWhy, WireError, WorkerMsg};
use super::{
    BrokerError, BrokerErrorKind, BrokerResult, EntryId, Inbound, InboundId, Reclaimed, Transport, WorkerInfo,
};

/// Timings and sizes of a [`Link`].
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// A delivery idle this long is taken back from its worker.
    pub lease: Duration,
    /// How often the run is advertised to workers.
    pub refresh_every: Duration,
    /// How often registered workers are listed.
    pub workers_every: Duration,
    /// First wait before a reconnect attempt.
    pub backoff_min: Duration,
    /// Longest wait between reconnect attempts.
    pub backoff_max: Duration,
    /// Most messages read at once.
    pub batch: usize,
    /// Most events kept while down; later ones are dropped and counted.
    pub event_buffer: usize,
}

impl LinkConfig {
    /// Defaults of plan §4 for a lease.
    pub fn new(lease: Duration) -> LinkConfig {
        LinkConfig {
            lease,
            refresh_every: Duration::from_secs(5),
            workers_every: Duration::from_secs(2),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            batch: 256,
            event_buffer: 10_000,
        }
    }
}

/// Whether the link works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connected; `epoch` counts connects (1 for the first).
    Up {
        /// Connect count.
        epoch: u64,
    },
    /// Not connected; dispatch should pause.
    Down {
        /// Why, in the broker's or OS's words.
        reason: String,
    },
}

impl LinkState {
    /// True when up.
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Up { .. })
    }
}

/// One published attempt: where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The attempt key.
    pub key: String,
    /// The publication id.
    pub dispatch: String,
    /// Where it sits on the broker.
    pub entry: EntryId,
}

/// What the link tells its owner.
#[derive(Debug, Clone)]
pub enum Notice {
    /// The link went down (after being up).
    Down {
        /// Why.
        reason: String,
    },
    /// The link is up again.
    Up {
        /// How long it was down.
        down_for: Duration,
        /// The broker lost the run's data: republish every unfinished attempt.
        data_lost: bool,
    },
    /// Attempts reached the broker.
    Published(Vec<Published>),
    /// Messages from the results queue (ack them with [`Link::ack`] once committed).
    Inbound(Vec<Inbound>),
    /// Heartbeats and output.
    Live(Vec<Result<WorkerMsg, WireError>>),
    /// Deliveries taken back from workers silent past the lease (already off the queue).
    Reclaimed(Vec<Reclaimed>),
    /// A worker registered (or came back).
    WorkerSeen(WorkerInfo),
    /// A worker went away: `left` when it unregistered, else its registration expired.
    WorkerGone {
        /// What was last known of it.
        info: WorkerInfo,
        /// True for a clean exit.
        left: bool,
    },
    /// Events dropped while down because the buffer was full.
    EventsDropped(u64),
    /// An operation the broker refused for good (not an outage); it was dropped.
    Failed {
        /// Which operation.
        what: &'static str,
        /// The error.
        error: BrokerError,
    },
}

enum Op {
    Publish(Vec<AttemptMsg>),
    Withdraw(Vec<EntryId>),
    Ack(Vec<InboundId>),
    Stop(String, StopWhy),
    Event(Arc<str>),
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Publish(_) => "publish",
            Op::Withdraw(_) => "withdraw",
            Op::Ack(_) => "ack",
            Op::Stop(..) => "stop",
            Op::Event(_) => "event",
        }
    }
}

enum Control {
    Op(Op),
    Finish(bool, oneshot::Sender<BrokerResult<()>>),
}

/// The manager's handle on its broker link. Dropping it stops the actor and pumps.
pub struct Link {
    control: mpsc::UnboundedSender<Control>,
    state: watch::Receiver<LinkState>,
    tasks: Vec<JoinHandle<()>>,
}

impl Link {
    /// Connects (an unreachable broker or refused login is an error here, so a run
    /// never starts blind) and starts the actor. Notices arrive on the receiver.
    pub async fn connect(
        transport: Arc<dyn Transport>,
        config: LinkConfig,
    ) -> BrokerResult<(Link, mpsc::UnboundedReceiver<Notice>)> {
        // A fresh transport cannot tell lost data on its first connect (it wrote
        // nothing yet): on resume the runner compares the queues with its log instead.
        transport.connect().await?;
        let (state_tx, state) = watch::channel(LinkState::Up { epoch: 1 });
        let (control, control_rx) = mpsc::unbounded_channel();
        let (notices, notices_rx) = mpsc::unbounded_channel();
        let (pump_err, pump_err_rx) = mpsc::unbounded_channel();
        let inbound = tokio::spawn(pump(
            Arc::clone(&transport),
            state.clone(),
            notices.clone(),
            pump_err.clone(),
            config.batch,
            PumpKind::Inbound,
        ));
        let live = tokio::spawn(pump(
            Arc::clone(&transport),
            state.clone(),
            notices.clone(),
            pump_err,
            config.batch,
            PumpKind::Live,
        ));
        let actor = Actor {
            transport,
            config,
            state: state_tx,
            notices,
            outbox: VecDeque::new(),
            events_queued: 0,
            events_dropped: 0,
            workers: HashMap::new(),
        };
        let main = tokio::spawn(actor.run(control_rx, pump_err_rx));
        Ok((Link { control, state, tasks: vec![main, inbound, live] }, notices_rx))
    }

    /// The link's state, to watch.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    /// Queues attempts for publication ([`Notice::Published`] says where they went).
    pub fn publish(&self, jobs: Vec<AttemptMsg>) {
        self.send(Op::Publish(jobs));
    }

    /// Queues removal of attempt messages.
    pub fn withdraw(&self, entries: Vec<EntryId>) {
        self.send(Op::Withdraw(entries));
    }

    /// Queues acks of results whose outcome is committed.
    pub fn ack(&self, ids: Vec<InboundId>) {
        self.send(Op::Ack(ids));
    }

    /// Queues a stop request for attempt `key`.
    pub fn stop(&self, key: String, why: StopWhy) {
        self.send(Op::Stop(key, why));
    }

    /// Queues one committed log record for outside subscribers.
    pub fn publish_event(&self, line: Arc<str>) {
        self.send(Op::Event(line));
    }

    /// Sends what is queued, then ends the run on the broker (`clean` deletes its
    /// keys). Fails when the broker is down: the queued operations are then lost,
    /// which is fine for a finished run (the log holds everything).
    pub async fn finish(self, clean: bool) -> BrokerResult<()> {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Finish(clean, tx)).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    fn send(&self, op: Op) {
        // The actor only ends when the link is dropped or finished: nothing to tell.
        let _ = self.control.send(Control::Op(op));
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

struct Actor {
    transport: Arc<dyn Transport>,
    config: LinkConfig,
    state: watch::Sender<LinkState>,
    notices: mpsc::UnboundedSender<Notice>,
    outbox: VecDeque<Op>,
    events_queued: usize,
    events_dropped: u64,
    workers: HashMap<String, WorkerInfo>,
}

/// What made the actor leave its up loop.
enum Leave {
    Down(String),
    Finish(bool, oneshot::Sender<BrokerResult<()>>),
    Closed,
}

impl Actor {
    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control>,
        mut pump_err: mpsc::UnboundedReceiver<(u64, BrokerError)>,
    ) {
        let mut epoch = 1;
        loop {
            match self.up(epoch, &mut control, &mut pump_err).await {
                Leave::Closed => return,
                Leave::Finish(clean, reply) => {
                    let _ = reply.send(self.transport.finish(clean).await);
                    return;
                }
                Leave::Down(reason) => {
                    let since = Instant::now();
                    let _ = self.notices.send(Notice::Down { reason: reason.clone() });
                    self.state.send_replace(LinkState::Down { reason });
                    match self.reconnect(&mut control).await {
                        Reconnected::Closed => return,
                        Reconnected::Finish(reply) => {
                            let _ = reply.send(Err(BrokerError::Unreachable {
                                broker: self.transport.describe().to_string(),
                                reason: "down when the run ended".to_string(),
                            }));
                            return;
                        }
                        Reconnected::Up(data_lost) => {
                            epoch += 1;
                            self.state.send_replace(LinkState::Up { epoch });
                            let _ = self.notices.send(Notice::Up { down_for: since.elapsed(), data_lost });
                        }
                    }
                }
            }
        }
    }

    /// Works while up: flushes the outbox, runs the timers, takes new operations.
    async fn up(
        &mut self,
        epoch: u64,
        control: &mut mpsc::UnboundedReceiver<Control>,
        pump_err: &mut mpsc::UnboundedReceiver<(u64, BrokerError)>,
    ) -> Leave {
        let now = Instant::now();
        let mut next_reclaim = now + self.config.lease;
        let mut next_refresh = now + self.config.refresh_every;
        let mut next_workers = now;
        loop {
            if let Err(reason) = self.flush().await {
                return Leave::Down(reason);
            }
            // One `select!`: new operations first (so they are never starved by timers),
            // then a pump's failure, then the timers in the order they fall due.
            tokio::select! {
                biased;
                ctl = control.recv() => match ctl {
                    None => return Leave::Closed,
                    Some(Control::Op(op)) => self.queue(op),
                    Some(Control::Finish(clean, reply)) => {
                        if let Err(reason) = self.flush().await {
                            return Leave::Down(reason);
                        }
                        return Leave::Finish(clean, reply);
                    }
                },
                Some((pump_epoch, e)) = pump_err.recv() => {
                    // A failure seen by a pump before the last reconnect is old news.
                    if pump_epoch == epoch {
                        return Leave::Down(e.to_string());
                    }
                }
                () = tokio::time::sleep_until(next_reclaim) => {
                    next_reclaim = Instant::now() + (self.config.lease / 3).max(Duration::from_millis(10));
                    match self.transport.reclaim(self.config.lease).await {
                        Ok(r) if r.is_empty() => {}
                        Ok(r) => { let _ = self.notices.send(Notice::Reclaimed(r)); }
                        Err(e) => if let Some(reason) = self.trouble("reclaim", e) { return Leave::Down(reason) },
                    }
                }
                () = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + self.config.refresh_every;
                    if let Err(e) = self.transport.refresh().await {
                        if let Some(reason) = self.trouble("refresh", e) { return Leave::Down(reason) }
                    }
                }
                () = tokio::time::sleep_until(next_workers) => {
                    next_workers = Instant::now() + self.config.workers_every;
                    match self.transport.workers().await {
                        Ok(list) => self.diff_workers(list),
                        Err(e) => if let Some(reason) = self.trouble("workers", e) { return Leave::Down(reason) },
                    }
                }
            }
        }
    }

    /// Tries to reconnect with backoff, still taking operations into the outbox.
    async fn reconnect(&mut self, control: &mut mpsc::UnboundedReceiver<Control>) -> Reconnected {
        let mut wait = self.config.backoff_min;
        loop {
            let deadline = Instant::now() + wait;
            loop {
                tokio::select! {
                    biased;
                    ctl = control.recv() => match ctl {
                        None => return Reconnected::Closed,
                        Some(Control::Op(op)) => self.queue(op),
                        Some(Control::Finish(_, reply)) => return Reconnected::Finish(reply),
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            let attempt = async {
                self.transport.connect().await?;
                self.transport.data_lost().await
            };
            match attempt.await {
                Ok(lost) => return Reconnected::Up(lost),
                Err(e) => {
                    self.state.send_replace(LinkState::Down { reason: e.to_string() });
                    wait = (wait * 2).min(self.config.backoff_max);
                }
            }
        }
    }

    fn queue(&mut self, op: Op) {
        if let Op::Event(_) = op {
            if self.events_queued >= self.config.event_buffer {
                self.events_dropped += 1;
                return;
            }
            self.events_queued += 1;
        }
        self.outbox.push_back(op);
    }

    /// Sends the outbox in order; an outage stops it with the failed operation kept.
    async fn flush(&mut self) -> Result<(), String> {
        if self.events_dropped > 0 {
            let _ = self.notices.send(Notice::EventsDropped(std::mem::take(&mut self.events_dropped)));
        }
        while let Some(op) = self.outbox.front() {
            let what = op.name();
            let result = match op {
                Op::Publish(jobs) => self.transport.publish(jobs.clone()).await.map(|ids| {
                    let published = jobs
                        .iter()
                        .zip(ids)
                        .map(|(j, entry)| Published { key: j.key.clone(), dispatch: j.dispatch.clone(), entry })
                        .collect();
                    let _ = self.notices.send(Notice::Published(published));
                }),
                Op::Withdraw(entries) => self.transport.withdraw(entries.clone()).await,
                Op::Ack(ids) => self.transport.ack_inbound(ids.clone()).await,
                Op::Stop(key, why) => self.transport.stop(key.clone(), *why).await,
                Op::Event(line) => self.transport.publish_event(Arc::clone(line)).await,
            };
            match result {
                Ok(()) => {}
                Err(e) => {
                    if let Some(reason) = self.trouble(what, e) {
                        return Err(reason);
                    }
                }
            }
            if let Some(Op::Event(_)) = self.outbox.pop_front() {
                self.events_queued -= 1;
            }
        }
        Ok(())
    }

    /// An outage (returns the reason, the operation stays queued), or a refusal
    /// (reported, and the operation is dropped by the caller).
    fn trouble(&self, what: &'static str, error: BrokerError) -> Option<String> {
        match error.kind() {
            BrokerErrorKind::Unreachable | BrokerErrorKind::DataLost => Some(error.to_string()),
            _ => {
                let _ = self.notices.send(Notice::Failed { what, error });
                None
            }
        }
    }

    fn diff_workers(&mut self, list: Vec<WorkerInfo>) {
        let mut listed = HashMap::with_capacity(list.len());
        for info in list {
            let id = info.registration.worker.clone();
            let was_alive = self.workers.get(&id).is_some_and(|w| w.alive);
            if info.alive && !was_alive {
                let _ = self.notices.send(Notice::WorkerSeen(info.clone()));
            } else if !info.alive && was_alive {
                let last = self.workers.get(&id).cloned().unwrap_or_else(|| info.clone());
                let _ = self.notices.send(Notice::WorkerGone { info: last, left: false });
            }
            listed.insert(id, info);
        }
        for (id, info) in &self.workers {
            if info.alive && !listed.contains_key(id) {
                let _ = self.notices.send(Notice::WorkerGone { info: info.clone(), left: true });
            }
        }
        self.workers = listed;
    }
}

enum Reconnected {
    Up(bool),
    Finish(oneshot::Sender<BrokerResult<()>>),
    Closed,
}

#[derive(Clone, Copy)]
enum PumpKind {
    Inbound,
    Live,
}

/// Reads one feed while the link is up; on failure tells the actor (with the epoch it
/// read in) and waits for the next epoch.
async fn pump(
    transport: Arc<dyn Transport>,
    mut state: watch::Receiver<LinkState>,
    notices: mpsc::UnboundedSender<Notice>,
    failed: mpsc::UnboundedSender<(u64, BrokerError)>,
    batch: usize,
    kind: PumpKind,
) {
    let mut after = 0;
    loop {
        let Ok(current) =
            state.wait_for(|s| matches!(s, LinkState::Up { epoch } if *epoch > after)).await.map(|s| s.clone())
        else {
            return;
        };
        let LinkState::Up { epoch } = current else {
            continue;
        };
        loop {
            let read = match kind {
                PumpKind::Inbound => {
                    transport.read_inbound(batch).await.map(|v| (!v.is_empty()).then_some(Notice::Inbound(v)))
                }
                PumpKind::Live => transport.read_live(batch).await.map(|v| (!v.is_empty()).then_some(Notice::Live(v))),
            };
            match read {
                Ok(None) => {}
                Ok(Some(notice)) => {
                    if notices.send(notice).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if failed.send((epoch, e)).is_err() {
                        return;
                    }
                    after = epoch;
                    break;
                }
            }
            // A newer epoch means a reconnect happened under us: start over on it.
            if !matches!(&*state.borrow(), LinkState::Up { epoch: e } if *e == epoch) {
                after = epoch;
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::broker::memory::MemoryBroker;
    use crate::io::broker::wire::{OutcomeStatus, Registration, RemoteOutcome, WorkerState};
    use crate::io::broker::{PoolOffer, RunScope, WorkerScope, WorkerTransport};

    fn scope() -> RunScope {
        RunScope {
            run: "r".into(),
            pools: vec![PoolOffer { name: "p".into(), capabilities: vec![] }],
            manager: "h:1".into(),
        }
    }

    fn job(task: &str) -> AttemptMsg {
        AttemptMsg {
            run: "r".into(),
            pool: "p".into(),
            key: format!("{task}.1"),
            task: task.into(),
            attempt: 1,
            replica: None,
            dispatch: format!("d-{task}"),
            job: serde_json::json!({"id": task}),
            timeout_ms: 1000,
            stall_after_ms: None,
            stall_kill_after_ms: None,
            kill_grace_ms: 100,
            lease_ms: 30_000,
            sent_ms: 0,
            deadline_ms: u64::MAX / 2,
            capabilities: vec![],
        }
    }

    fn registration(ttl_ms: u64) -> Registration {
        Registration {
            worker: "w1".into(),
            pool: "p".into(),
            capabilities: vec![],
            host: "h".into(),
            pid: 7,
            version: "t".into(),
            concurrency: 1,
            state: WorkerState::Idle,
            ttl_ms,
        }
    }

    /// The next notice matching `want`, skipping others; fails (in virtual time) rather than hang.
    async fn next<T>(rx: &mut mpsc::UnboundedReceiver<Notice>, mut want: impl FnMut(Notice) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(600), async {
            loop {
                let notice = rx.recv().await.expect("the link is alive");
                if let Some(t) = want(notice) {
                    return t;
                }
            }
        })
        .await
        .expect("the notice came within 600 s of virtual time")
    }

    async fn start(broker: &Arc<MemoryBroker>, lease: Duration) -> (Link, mpsc::UnboundedReceiver<Notice>) {
        let transport: Arc<dyn Transport> = Arc::new(broker.manager(scope()));
        Link::connect(transport, LinkConfig::new(lease)).await.expect("connects")
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_and_forwards_results() {
        let broker = MemoryBroker::new();
        let (link, mut rx) = start(&broker, Duration::from_secs(30)).await;
        let worker = broker.worker(WorkerScope { worker: "w1".into(), pool: "p".into() });
        link.publish(vec![job("a")]);
        let published = next(&mut rx, |n| match n {
            Notice::Published(p) => Some(p),
            _ => None,
        })
        .await;
        assert_eq!(published[0].key, "a.1");
        let jobs = worker.next_jobs(1).await.unwrap();
        assert_eq!(jobs[0].entry, published[0].entry);
        let result = WorkerMsg::Result {
            key: "a.1".into(),
            dispatch: "d-a".into(),
            worker: "w1".into(),
            outcome: RemoteOutcome {
                status: OutcomeStatus::Success,
                result: None,
                class: None,
                error: None,
                exit_code: Some(0),
                signal: None,
                duration_ms: 1,
                stdout: None,
                stderr: None,
                tail_stdout: None,
                tail_stderr: None,
                spawn: None,
            },
        };
        worker.report("r", result.clone()).await.unwrap();
        let inbound = next(&mut rx, |n| match n {
            Notice::Inbound(v) => Some(v),
            _ => None,
        })
        .await;
        assert_eq!(inbound[0].msg.as_ref().unwrap(), &result);
        link.ack(vec![inbound[0].id.clone()]);
        link.withdraw(vec![published[0].entry.clone()]);
        link.finish(true).await.unwrap();
        assert_eq!(broker.queued("r"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_keeps_the_outbox_and_reports_lost_data() {
        let broker = MemoryBroker::new();
        let (link, mut rx) = start(&broker, Duration::from_secs(30)).await;
        let mut state = link.state();
        broker.go_down();
        // Sent as the outage begins: its failed attempt must keep it queued.
        link.publish(vec![job("b")]);
        next(&mut rx, |n| matches!(n, Notice::Down { .. }).then_some(())).await;
        assert!(!state.borrow_and_update().is_up());
        link.publish(vec![job("b2")]);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(broker.queued("r"), 0, "nothing is sent while down");
        broker.come_back(true);
        let data_lost = next(&mut rx, |n| match n {
            Notice::Up { data_lost, .. } => Some(data_lost),
            _ => None,
        })
        .await;
        assert!(data_lost, "the broker came back empty");
        assert_eq!(*state.borrow_and_update(), LinkState::Up { epoch: 2 });
        next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
        next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
        assert_eq!(broker.queued("r"), 2, "the outbox was sent after the outage");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_workers_delivery_is_reclaimed_and_workers_are_diffed() {
        let broker = MemoryBroker::new();
        let lease = Duration::from_secs(30);
        let (link, mut rx) = start(&broker, lease).await;
        let worker = broker.worker(WorkerScope { worker: "w1".into(), pool: "p".into() });
        // Its registration outlives the lease, so the gone notice comes after the reclaim.
        worker.register(&registration(40_000)).await.unwrap();
        let seen = next(&mut rx, |n| match n {
            Notice::WorkerSeen(w) => Some(w),
            _ => None,
        })
        .await;
        assert_eq!(seen.registration.worker, "w1");
        link.publish(vec![job("c")]);
        next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
        let taken_at = Instant::now();
        assert_eq!(worker.next_jobs(1).await.unwrap().len(), 1);
        let reclaimed = next(&mut rx, |n| match n {
            Notice::Reclaimed(r) => Some(r),
            _ => None,
        })
        .await;
        assert!(taken_at.elapsed() >= lease, "not before the lease");
        assert_eq!(reclaimed[0].worker.as_deref(), Some("w1"));
        let gone = next(&mut rx, |n| match n {
            Notice::WorkerGone { info, left } => Some((info, left)),
            _ => None,
        })
        .await;
        assert_eq!((gone.0.registration.worker.as_str(), gone.1), ("w1", false), "its registration expired");
        drop(link);
    }
}
