//! Queues on a broker (DESIGN §7, issue 16): the two traits every broker kind
//! implements, the errors they share, and the pieces they are made of.
//!
//! [`Transport`] is the manager's side (publish attempts, read results, reclaim what a
//! dead worker held, publish events); [`WorkerTransport`] is `pitboss worker`'s side
//! (register, read jobs, heartbeat, report, ack). Both are low level and hold no policy:
//! retries, reconnects and the outbox live in `link.rs`, the meaning of a result in the
//! engine. Messages are this module's own plain types ([`wire`]); the runner maps them
//! to and from the core's events, so the broker code does not move when the core does.

pub mod amqp;
pub mod link;
pub mod memory;
pub mod redis;
pub mod trust;
pub mod url;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use wire::{AttemptMsg, Registration, StopWhy, WireError, WorkerMsg};

/// A boxed future, so the traits stay object safe (`Arc<dyn Transport>`).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where one attempt message sits on the broker: enough to ack, withdraw or claim it.
/// `id` is the broker's own (a Redis stream entry id, an AMQP delivery tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    /// The run the attempt belongs to (a worker serves several runs).
    pub run: String,
    /// The pool whose queue holds it.
    pub pool: String,
    /// The broker's id of the message in that queue.
    pub id: String,
}

/// The broker's id of one message on the run's results queue, acked once its outcome
/// is committed to the log (so a manager crash before then re-reads it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundId(pub String);

/// One message a worker wrote to the run's results queue. A message that does not
/// decode still has an id, so it can be acked and reported instead of blocking the queue.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Its id, for [`Transport::ack_inbound`].
    pub id: InboundId,
    /// The message, or why it could not be read.
    pub msg: Result<WorkerMsg, WireError>,
}

/// A delivery taken back from a worker that held it past the lease.
#[derive(Debug, Clone)]
pub struct Reclaimed {
    /// Where it sits (now owned by the manager; ack or withdraw it).
    pub entry: EntryId,
    /// The worker (consumer) that held it, when the broker says.
    pub worker: Option<String>,
    /// How many times it was delivered, this claim included.
    pub deliveries: u64,
    /// The attempt it carried, or why it could not be read.
    pub msg: Result<AttemptMsg, WireError>,
}

/// A registered worker as the manager sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    /// What the worker registered.
    pub registration: Registration,
    /// When the broker last heard from it (ms since the epoch, the worker's clock).
    pub seen_ms: u64,
    /// False when its registration expired (TTL) but the pool still lists it: vanished.
    pub alive: bool,
}

/// One job read by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    /// Where it sits, to heartbeat and ack it.
    pub entry: EntryId,
    /// How many times it was delivered (1 the first time).
    pub deliveries: u64,
    /// The attempt, or why it could not be read (the worker acks and reports it).
    pub msg: Result<AttemptMsg, WireError>,
}

/// A job a worker is running, as named in its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Where its delivery sits (the heartbeat keeps the delivery from looking idle).
    pub entry: EntryId,
    /// The attempt key (`TASK.ATTEMPT`…), to look for a stop request.
    pub key: String,
}

/// A stop the manager asked for, found by a worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopNotice {
    /// The run of the attempt.
    pub run: String,
    /// The attempt key.
    pub key: String,
    /// Why the manager wants it stopped.
    pub why: StopWhy,
}

/// A pool a manager serves on the broker, as workers discover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOffer {
    /// The pool's name.
    pub name: String,
    /// Capabilities a worker must declare to take this pool's attempts.
    pub capabilities: Vec<String>,
}

/// What a manager-side transport serves: one run, its pools, and who the manager is.
#[derive(Debug, Clone)]
pub struct RunScope {
    /// The run id (every key of the run is under it).
    pub run: String,
    /// The run's pools.
    pub pools: Vec<PoolOffer>,
    /// `host:pid` of the manager, recorded in the run's meta for operators.
    pub manager: String,
}

/// What a worker-side transport serves.
#[derive(Debug, Clone)]
pub struct WorkerScope {
    /// The worker id (`HOST:PID:4hex`), also its consumer name.
    pub worker: String,
    /// The one pool it takes jobs of.
    pub pool: String,
}

/// What kind of failure a [`BrokerError`] is, for the reconnect policy and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerErrorKind {
    /// No connection (refused, reset, timed out, DNS): retry with backoff.
    Unreachable,
    /// The broker refused the login or a command (wrong password, ACL): retrying won't help.
    Refused,
    /// The broker answered something this code does not expect (or a bad message).
    Protocol,
    /// The broker no longer holds what was written to it (it restarted empty).
    DataLost,
    /// The URL or password setup is wrong (caught before any connection).
    Config,
}

/// A failure talking to a broker. Messages name the broker by its redacted URL and
/// keep the broker's own words, so an operator sees "WRONGPASS …" as Redis said it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No connection.
    #[error("cannot reach the broker at {broker} ({reason})")]
    Unreachable {
        /// The redacted URL.
        broker: String,
        /// What failed, in the OS's or library's words.
        reason: String,
    },
    /// Login or a command refused.
    #[error("the broker at {broker} refused user {user}: {words}")]
    Refused {
        /// The redacted URL.
        broker: String,
        /// The user name (`default` when the URL names none).
        user: String,
        /// The broker's words (WRONGPASS …, NOPERM …).
        words: String,
    },
    /// An unexpected answer.
    #[error("unexpected answer from the broker at {broker}: {detail}")]
    Protocol {
        /// The redacted URL.
        broker: String,
        /// What was unexpected.
        detail: String,
    },
    /// The run's data is gone from the broker.
    #[error("the broker at {broker} lost this run's data (restarted without persistence?)")]
    DataLost {
        /// The redacted URL.
        broker: String,
    },
    /// A bad URL or password setup.
    #[error(transparent)]
    Config(#[from] url::UrlError),
}

impl BrokerError {
    /// The kind of failure.
    pub fn kind(&self) -> BrokerErrorKind {
        match self {
            BrokerError::Unreachable { .. } => BrokerErrorKind::Unreachable,
            BrokerError::Refused { .. } => BrokerErrorKind::Refused,
            BrokerError::Protocol { .. } => BrokerErrorKind::Protocol,
            BrokerError::DataLost { .. } => BrokerErrorKind::DataLost,
            BrokerError::Config(_) => BrokerErrorKind::Config,
        }
    }

    /// True when waiting and reconnecting may cure it (the link keeps trying).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind(), BrokerErrorKind::Unreachable | BrokerErrorKind::DataLost)
    }
}

/// Result of a broker call.
pub type BrokerResult<T> = Result<T, BrokerError>;

/// The manager's side of a broker, for one run ([`RunScope`]). Every call may fail
/// with [`BrokerErrorKind::Unreachable`]; the caller (`link.rs`) reconnects and retries.
pub trait Transport: Send + Sync {
    /// The broker's URL with any secret removed, for messages and the log.
    fn describe(&self) -> &str;

    /// Connects (or reconnects) and makes sure the run's queues, groups and meta exist.
    /// Unreachable or refused login are errors here, so a run never starts blind.
    fn connect(&self) -> BoxFut<'_, BrokerResult<()>>;

    /// True when the broker lost this run's data since it was written: the meta record
    /// is absent now, or was absent when [`Transport::connect`] last ran (the flag is
    /// cleared by this call). The manager then republishes every unfinished attempt.
    fn data_lost(&self) -> BoxFut<'_, BrokerResult<bool>>;

    /// Tells workers the run is alive (discovery), at least every few seconds.
    fn refresh(&self) -> BoxFut<'_, BrokerResult<()>>;

    /// Queues attempts on their pools' queues, in one round trip; ids in the same order.
    fn publish(&self, jobs: Vec<AttemptMsg>) -> BoxFut<'_, BrokerResult<Vec<EntryId>>>;

    /// Removes attempt messages whose outcome is recorded, or that must not run any more.
    fn withdraw(&self, entries: Vec<EntryId>) -> BoxFut<'_, BrokerResult<()>>;

    /// Reads up to `max` messages from the results queue, unacked ones first (after a
    /// manager restart), blocking at most about a second when there are none.
    fn read_inbound(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Inbound>>>;

    /// Acks results whose outcome is committed to the log.
    fn ack_inbound(&self, ids: Vec<InboundId>) -> BoxFut<'_, BrokerResult<()>>;

    /// Reads up to `max` heartbeats and output messages (lossy by design: a slow
    /// reader misses old ones), blocking at most about a second when there are none.
    fn read_live(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Result<WorkerMsg, WireError>>>>;

    /// Asks whichever worker runs attempt `key` to stop it.
    fn stop(&self, key: String, why: StopWhy) -> BoxFut<'_, BrokerResult<()>>;

    /// Takes back deliveries a worker has held past `lease` without a heartbeat.
    fn reclaim(&self, lease: Duration) -> BoxFut<'_, BrokerResult<Vec<Reclaimed>>>;

    /// The workers registered for the run's pools, vanished ones included.
    fn workers(&self) -> BoxFut<'_, BrokerResult<Vec<WorkerInfo>>>;

    /// Publishes one committed log record (its JSON line) for outside subscribers.
    fn publish_event(&self, line: Arc<str>) -> BoxFut<'_, BrokerResult<()>>;

    /// The run is over: stop advertising it; with `clean`, delete its keys too.
    fn finish(&self, clean: bool) -> BoxFut<'_, BrokerResult<()>>;

    /// Every task of the run ended (`run_finished` is durable) while its manager may
    /// stay open for a long time (a TUI) or be killed before a clean exit: the run's
    /// data should not outlive it for ever (Redis sets a time to live on its keys,
    /// lifted again if the run publishes more). No-op by default.
    fn ended(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async { Ok(()) })
    }

    /// True when the broker itself hands a dead worker's unfinished deliveries to
    /// another worker (RabbitMQ requeues a closed connection's unacked messages).
    /// The manager then must not also take them back when the worker's registration
    /// expires: both copies would run. Redis keeps them pending until reclaimed.
    fn hands_on_dead_workers_jobs(&self) -> bool {
        false
    }
}

/// `pitboss worker`'s side of a broker, for one pool ([`WorkerScope`]).
pub trait WorkerTransport: Send + Sync {
    /// The broker's URL with any secret removed.
    fn describe(&self) -> &str;

    /// Connects (or reconnects); a refused login is an error the worker exits on.
    fn connect(&self) -> BoxFut<'_, BrokerResult<()>>;

    /// Registers (or refreshes) the worker with a time to live.
    fn register(&self, registration: &Registration) -> BoxFut<'_, BrokerResult<()>>;

    /// Removes the registration (a clean exit).
    fn unregister(&self) -> BoxFut<'_, BrokerResult<()>>;

    /// Reads up to `free` jobs from every live run of the pool, blocking at most about
    /// a second when there are none.
    fn next_jobs(&self, free: usize) -> BoxFut<'_, BrokerResult<Vec<Job>>>;

    /// Keeps the running jobs' deliveries from looking idle and the registration alive;
    /// returns the stops the manager asked for among them.
    fn heartbeat(
        &self,
        registration: &Registration,
        running: Vec<Running>,
    ) -> BoxFut<'_, BrokerResult<Vec<StopNotice>>>;

    /// Sends a message to run `run`'s manager (results queue or live feed, by kind).
    fn report(&self, run: &str, msg: WorkerMsg) -> BoxFut<'_, BrokerResult<()>>;

    /// Acks a job once its result is written (at-least-once: never before).
    fn ack_job(&self, entry: EntryId) -> BoxFut<'_, BrokerResult<()>>;
}

/// The manager-side transport for the broker `url` names (Redis or RabbitMQ); no I/O.
pub fn open_transport(
    url: &url::BrokerUrl,
    password: Option<&url::Password>,
    scope: RunScope,
) -> BrokerResult<Arc<dyn Transport>> {
    Ok(match url.kind {
        url::BrokerKind::Redis => Arc::new(redis::RedisTransport::new(url, password, scope)?),
        url::BrokerKind::Amqp => Arc::new(amqp::AmqpTransport::new(url, password, scope)?),
    })
}

/// The worker-side transport for the broker `url` names (Redis or RabbitMQ); no I/O.
pub fn open_worker_transport(
    url: &url::BrokerUrl,
    password: Option<&url::Password>,
    scope: WorkerScope,
) -> BrokerResult<Arc<dyn WorkerTransport>> {
    Ok(match url.kind {
        url::BrokerKind::Redis => Arc::new(redis::RedisWorkerTransport::new(url, password, scope)?),
        url::BrokerKind::Amqp => Arc::new(amqp::AmqpWorkerTransport::new(url, password, scope)?),
    })
}
