//! `pitboss worker`'s side on RabbitMQ: consumes its pool's shared queue with manual
//! acks and prefetch = the most jobs the worker ever asked for at once (its
//! concurrency plus its read-ahead), on a connection named `pitboss-worker WID`, so
//! a dead worker's deliveries, read-ahead ones included, go back to the queue by
//! themselves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, BasicProperties, Channel, Connection, Consumer, ExchangeKind};
use tokio::sync::Mutex;

use super::conn::Target;
use super::names::{self, ALL_WORKERS, CONTROL_EXCHANGE, GONE_HEADER, LIVE_EXCHANGE, WORKERS_EXCHANGE};
use super::{deliveries, encode, message_key, quorum_args, EARLY_ACK_OVER_MS};
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::wire::{self, AttemptMsg, Registration, StopWhy, WorkerMsg};
use crate::io::broker::{
    BoxFut, BrokerError, BrokerResult, EntryId, Job, Running, StopNotice, WorkerScope, WorkerTransport,
};

/// How long `next_jobs` waits for the first job when there is none.
const READ_WAIT: Duration = Duration::from_secs(1);
/// How long a stop for an attempt this worker does not run (yet) is remembered.
const STOP_KEPT: Duration = Duration::from_secs(3600);

struct Session {
    conn: Connection,
    /// Publishes with confirms (reports, registrations).
    publish: Channel,
    /// Consumes the pool queue (made at the first `next_jobs`, with the prefetch).
    jobs_channel: Channel,
    jobs: Mutex<Option<Consumer>>,
    control: Mutex<Consumer>,
    generation: u64,
}

/// A delivery this worker holds.
struct Held {
    /// `None` once acked early (a long job) or when its channel died.
    acker: Option<Acker>,
    run: String,
    key: Option<String>,
    timeout_ms: u64,
}

/// [`WorkerTransport`] on RabbitMQ for one worker of one pool.
pub struct AmqpWorkerTransport {
    target: Target,
    scope: WorkerScope,
    session: Mutex<Option<Arc<Session>>>,
    generations: std::sync::atomic::AtomicU64,
    /// The registration's concurrency once registered.
    concurrency: std::sync::atomic::AtomicU16,
    /// The most jobs asked for in one `next_jobs` (the worker's first read asks for
    /// its whole window: slots plus read-ahead).
    window: std::sync::atomic::AtomicU16,
    held: std::sync::Mutex<HashMap<String, Held>>,
    stops: std::sync::Mutex<HashMap<(String, String), (StopWhy, Instant)>>,
    /// The registration last sent (for the goodbye).
    last_registration: std::sync::Mutex<Option<Registration>>,
}

impl AmqpWorkerTransport {
    /// A worker transport on the RabbitMQ at `url` (no I/O until `connect`).
    pub fn new(url: &BrokerUrl, password: Option<&Password>, scope: WorkerScope) -> BrokerResult<AmqpWorkerTransport> {
        Ok(AmqpWorkerTransport {
            target: Target::new(url, password)?,
            scope,
            session: Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
            concurrency: std::sync::atomic::AtomicU16::new(0),
            window: std::sync::atomic::AtomicU16::new(0),
            held: std::sync::Mutex::new(HashMap::new()),
            stops: std::sync::Mutex::new(HashMap::new()),
            last_registration: std::sync::Mutex::new(None),
        })
    }

    async fn session(&self) -> BrokerResult<Arc<Session>> {
        if let Some(s) = self.session.lock().await.as_ref() {
            if s.conn.status().connected() {
                return Ok(Arc::clone(s));
            }
        }
        Err(BrokerError::Unreachable { broker: self.target.shown().to_string(), reason: "not connected".into() })
    }

    async fn drop_session(&self) {
        if let Some(s) = self.session.lock().await.take() {
            let _ = s.conn.close(200, "reconnecting".into()).await;
        }
    }

    async fn do_connect(&self) -> BrokerResult<()> {
        self.drop_session().await;
        let t = &self.target;
        let conn = t.open(&names::worker_connection(&self.scope.worker)).await?;
        let publish = t.call("channel", conn.create_channel()).await?;
        t.call("confirm.select", publish.confirm_select(ConfirmSelectOptions::default())).await?;
        // The worker may start before any manager: the pool queue is made by either.
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        let queue = names::pool_queue(&self.scope.pool);
        t.call("queue.declare", publish.queue_declare(queue.as_str().into(), durable, quorum_args())).await?;
        let shared = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        for name in [LIVE_EXCHANGE, WORKERS_EXCHANGE, CONTROL_EXCHANGE] {
            let declare = publish.exchange_declare(name.into(), ExchangeKind::Direct, shared, FieldTable::default());
            t.call("exchange.declare", declare).await?;
        }
        // Stops addressed to this worker, or to whichever worker runs an attempt.
        let control_channel = t.call("channel", conn.create_channel()).await?;
        let private = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        let control = names::worker_control(&self.scope.worker);
        let declare = control_channel.queue_declare(control.as_str().into(), private, FieldTable::default());
        t.call("queue.declare", declare).await?;
        for key in [self.scope.worker.as_str(), ALL_WORKERS] {
            let bind = control_channel.queue_bind(
                control.as_str().into(),
                CONTROL_EXCHANGE.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            );
            t.call("queue.bind", bind).await?;
        }
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let control_consumer =
            control_channel.basic_consume(control.as_str().into(), "".into(), no_ack, FieldTable::default());
        let control_consumer = t.call("basic.consume", control_consumer).await?;
        let jobs_channel = t.call("channel", conn.create_channel()).await?;
        // Deliveries of the old session are back on the queue: their ackers are dead.
        for held in self.held.lock().expect("held").values_mut() {
            held.acker = None;
        }
        let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        *self.session.lock().await = Some(Arc::new(Session {
            conn,
            publish,
            jobs_channel,
            jobs: Mutex::new(None),
            control: Mutex::new(control_consumer),
            generation,
        }));
        Ok(())
    }

    async fn send(&self, exchange: &str, key: &str, body: &[u8], props: BasicProperties) -> BrokerResult<()> {
        let session = self.session().await?;
        let t = &self.target;
        let publish =
            session.publish.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props);
        let confirm = t.call("basic.publish", publish).await?;
        if t.call("publisher confirm", confirm).await?.is_nack() {
            return Err(BrokerError::Protocol {
                broker: t.shown().to_string(),
                detail: format!("the broker refused a message for {exchange:?}/{key:?} (nack)"),
            });
        }
        Ok(())
    }

    async fn do_next_jobs(&self, free: usize) -> BrokerResult<Vec<Job>> {
        let session = self.session().await?;
        let mut slot = session.jobs.lock().await;
        let asked = u16::try_from(free).unwrap_or(u16::MAX);
        let window = self.window.fetch_max(asked, std::sync::atomic::Ordering::SeqCst).max(asked);
        if slot.is_none() {
            let t = &self.target;
            // Prefetch is what this worker may hold unacked: its slots and the jobs it
            // reads ahead (basic.qos counts both; the broker sends no more).
            let registered = self.concurrency.load(std::sync::atomic::Ordering::SeqCst);
            let prefetch = registered.max(window).max(1);
            t.call("basic.qos", session.jobs_channel.basic_qos(prefetch, BasicQosOptions::default())).await?;
            let queue = names::pool_queue(&self.scope.pool);
            let consume = session.jobs_channel.basic_consume(
                queue.as_str().into(),
                self.scope.worker.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            );
            *slot = Some(t.call("basic.consume", consume).await?);
        }
        let consumer = slot.as_mut().expect("made above");
        if free == 0 {
            drop(slot);
            tokio::time::sleep(READ_WAIT).await;
            return Ok(Vec::new());
        }
        let mut next = match tokio::time::timeout(READ_WAIT, consumer.next()).await {
            Ok(item) => Some(item),
            Err(_) => return Ok(Vec::new()),
        };
        let mut jobs = Vec::new();
        while let Some(item) = next {
            let delivery = match item {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(self.target.err(&e)),
                None => return Err(self.target.ended("the pool queue")),
            };
            if let Some(job) = self.take(delivery, session.generation) {
                jobs.push(job);
            }
            if jobs.len() >= free {
                break;
            }
            next = consumer.next().now_or_never();
        }
        Ok(jobs)
    }

    /// Records a delivery; `None` for a redelivery of a job this worker still runs
    /// (after its own reconnect): the new acker replaces the dead one.
    fn take(&self, d: lapin::message::Delivery, generation: u64) -> Option<Job> {
        let id = message_key(&d, generation);
        let mut held = self.held.lock().expect("held");
        if let Some(h) = held.get_mut(&id) {
            h.acker = Some(d.acker);
            return None;
        }
        let msg = wire::decode::<AttemptMsg>(&d.data);
        let (run, key, timeout_ms) = match &msg {
            Ok(m) => (m.run.clone(), Some(m.key.clone()), m.timeout_ms),
            Err(_) => (String::new(), None, 0),
        };
        held.insert(id.clone(), Held { acker: Some(d.acker.clone()), run: run.clone(), key, timeout_ms });
        Some(Job { entry: EntryId { run, pool: self.scope.pool.clone(), id }, deliveries: deliveries(&d), msg })
    }

    async fn ack(&self, acker: Acker) -> BrokerResult<()> {
        // A dead channel's acker does nothing: the delivery is back on the queue and
        // its next holder's result is a duplicate the engine ignores.
        self.target.call("basic.ack", acker.ack(BasicAckOptions::default())).await.map(|_| ())
    }

    /// Collects the stops waiting on the control queue.
    async fn read_stops(&self) -> BrokerResult<()> {
        let session = self.session().await?;
        let mut control = session.control.lock().await;
        let mut stops = self.stops.lock().expect("stops");
        stops.retain(|_, (_, at)| at.elapsed() < STOP_KEPT);
        while let Some(item) = control.next().now_or_never() {
            let d = match item {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(self.target.err(&e)),
                None => return Err(self.target.ended("the control queue")),
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&d.data) else {
                continue;
            };
            let (Some(run), Some(key), Some(why)) =
                (v["run"].as_str(), v["key"].as_str(), v["why"].as_str().and_then(StopWhy::parse))
            else {
                continue;
            };
            stops.insert((run.to_string(), key.to_string()), (why, Instant::now()));
        }
        Ok(())
    }

    async fn publish_registration(&self, registration: &Registration, gone: bool) -> BrokerResult<()> {
        let body = encode(self.target.shown(), registration)?;
        if !gone {
            *self.last_registration.lock().expect("last_registration") = Some(registration.clone());
        }
        let mut props = BasicProperties::default().with_expiration(registration.ttl_ms.to_string().into());
        if gone {
            let mut headers = FieldTable::default();
            headers.insert(GONE_HEADER.into(), AMQPValue::Boolean(true));
            props = props.with_headers(headers);
        }
        self.send(WORKERS_EXCHANGE, &self.scope.pool, body.as_bytes(), props).await
    }
}

impl WorkerTransport for AmqpWorkerTransport {
    fn describe(&self) -> &str {
        self.target.shown()
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_connect())
    }

    fn register(&self, registration: &Registration) -> BoxFut<'_, BrokerResult<()>> {
        let registration = registration.clone();
        Box::pin(async move {
            self.concurrency.store(
                u16::try_from(registration.concurrency).unwrap_or(u16::MAX),
                std::sync::atomic::Ordering::SeqCst,
            );
            self.publish_registration(&registration, false).await
        })
    }

    fn unregister(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            // The manager shows who left by the last registration it was sent.
            let last = self.last_registration.lock().expect("last_registration").clone();
            let Some(mut registration) = last else {
                return Ok(());
            };
            registration.state = wire::WorkerState::Draining;
            self.publish_registration(&registration, true).await
        })
    }

    fn next_jobs(&self, free: usize) -> BoxFut<'_, BrokerResult<Vec<Job>>> {
        Box::pin(self.do_next_jobs(free))
    }

    fn heartbeat(
        &self,
        registration: &Registration,
        running: Vec<Running>,
    ) -> BoxFut<'_, BrokerResult<Vec<StopNotice>>> {
        let registration = registration.clone();
        Box::pin(async move {
            self.publish_registration(&registration, false).await?;
            self.read_stops().await?;
            let stops = self.stops.lock().expect("stops");
            Ok(running
                .into_iter()
                .filter_map(|r| {
                    let (why, _) = stops.get(&(r.entry.run.clone(), r.key.clone()))?;
                    Some(StopNotice { run: r.entry.run, key: r.key, why: *why })
                })
                .collect())
        })
    }

    fn report(&self, run: &str, msg: WorkerMsg) -> BoxFut<'_, BrokerResult<()>> {
        let run = run.to_string();
        Box::pin(async move {
            let body = encode(self.target.shown(), &msg)?;
            if !msg.is_durable() {
                return self.send(LIVE_EXCHANGE, &run, body.as_bytes(), BasicProperties::default()).await;
            }
            let id = uuid::Uuid::new_v4().simple().to_string();
            let props = BasicProperties::default().with_delivery_mode(2).with_message_id(id.into());
            self.send("", &names::results(&run), body.as_bytes(), props).await?;
            if let WorkerMsg::Started { key, .. } = &msg {
                self.ack_long_job(&run, key).await?;
            }
            Ok(())
        })
    }

    fn ack_job(&self, entry: EntryId) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let acker = self.held.lock().expect("held").remove(&entry.id).and_then(|h| h.acker);
            match acker {
                Some(acker) => self.ack(acker).await,
                None => Ok(()),
            }
        })
    }
}

impl AmqpWorkerTransport {
    /// A job that may outlive the server's consumer timeout is acked once its
    /// `started` is confirmed: the broker would otherwise close the channel at 30 min
    /// and hand the job to another worker while this one still runs it. From then on
    /// only the manager's heartbeat lease covers a worker that dies.
    async fn ack_long_job(&self, run: &str, key: &str) -> BrokerResult<()> {
        let acker = {
            let mut held = self.held.lock().expect("held");
            held.values_mut()
                .find(|h| h.run == run && h.key.as_deref() == Some(key) && h.timeout_ms > EARLY_ACK_OVER_MS)
                .and_then(|h| h.acker.take())
        };
        match acker {
            Some(acker) => self.ack(acker).await,
            None => Ok(()),
        }
    }
}
