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

use super::wire::{AttemptMsg, StopWhy, WireError, WorkerMsg};
use super::{BrokerError, BrokerResult, EntryId, Inbound, InboundId, Reclaimed, Transport, WorkerInfo};
use actor::{pump, Actor, PumpKind};

mod actor;

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
    /// A worker went away.
    WorkerGone {
        /// What was last known of it.
        info: WorkerInfo,
        /// How it went.
        why: Gone,
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

/// How a worker went away, as far as the broker shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// It unregistered (said goodbye): a clean exit.
    Left,
    /// Its registration expired: it stopped refreshing it (dead, hung or cut off).
    Expired,
    /// Its registration vanished with the broker's data (a restart without
    /// persistence): the worker itself may well be alive and register again.
    DataLost,
}

impl Gone {
    /// The reason recorded in `worker_lost`.
    pub fn reason(self) -> &'static str {
        match self {
            Gone::Left => "left",
            Gone::Expired => "registration expired",
            Gone::DataLost => "broker lost its data",
        }
    }
}

enum Op {
    Publish(Vec<AttemptMsg>),
    Withdraw(Vec<EntryId>),
    Ack(Vec<InboundId>),
    Stop(String, StopWhy),
    Event(Arc<str>),
    Ended,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Publish(_) => "publish",
            Op::Withdraw(_) => "withdraw",
            Op::Ack(_) => "ack",
            Op::Stop(..) => "stop",
            Op::Event(_) => "event",
            Op::Ended => "ended",
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
    hands_on: bool,
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
        let hands_on = transport.hands_on_dead_workers_jobs();
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
            workers_lost: false,
        };
        let main = tokio::spawn(actor.run(control_rx, pump_err_rx));
        Ok((Link { control, state, tasks: vec![main, inbound, live], hands_on }, notices_rx))
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

    /// True when the broker hands a dead worker's jobs on by itself
    /// ([`Transport::hands_on_dead_workers_jobs`]).
    pub fn hands_on_dead_workers_jobs(&self) -> bool {
        self.hands_on
    }

    /// Queues the note that every task of the run ended ([`Transport::ended`]).
    pub fn ended(&self) {
        self.send(Op::Ended);
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

#[cfg(test)]
mod tests;
