//! The manager's side on RabbitMQ: one run's pool queues, results, live feed,
//! registrations and events, on one connection named `pitboss-manager RUN`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Acker, BasicProperties, Channel, Connection, Consumer, ExchangeKind};
use tokio::sync::Mutex;

use super::conn::{is_locked, is_not_found, Target};
use super::names::{self, ALL_WORKERS, CONTROL_EXCHANGE, GONE_HEADER, LIVE_EXCHANGE, LIVE_MAX, WORKERS_EXCHANGE};
use super::{encode, message_key, quorum_args, EARLY_ACK_OVER_MS};
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::wire::{self, AttemptMsg, Registration, WireError, WorkerMsg};
use crate::io::broker::{
    BoxFut, BrokerError, BrokerResult, EntryId, Inbound, InboundId, Reclaimed, RunScope, StopWhy, Transport, WorkerInfo,
};

/// How long a read waits for the first message when there is none.
const READ_WAIT: Duration = Duration::from_secs(1);
/// Workers not heard from for this long are forgotten (as Redis prunes its pool sets).
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Unacked results the broker sends ahead of the manager's acks.
const RESULTS_PREFETCH: u16 = 1000;

/// One live connection and what was declared on it.
struct Session {
    conn: Connection,
    /// Publishes with confirms (attempts, stops, events).
    publish: Channel,
    results: Mutex<Consumer>,
    live: Mutex<Consumer>,
    workers: Mutex<Consumer>,
    /// Counts sessions, for ids of messages that carry no message id.
    generation: u64,
}

/// An attempt this manager published, for stops and the heartbeat lease.
struct Tracked {
    entry: EntryId,
    msg: AttemptMsg,
    /// The worker that said `started`, and when that was heard.
    worker: Option<String>,
    /// True once that worker's connection was found gone: the broker hands its
    /// delivery to another worker (whose `started` comes next), so the lease must
    /// not take it back too (both copies would run).
    redelivered: bool,
}

/// A registered worker as last heard, by this manager's clock.
struct Seen {
    registration: Registration,
    seen_ms: u64,
    heard: Instant,
    gone: bool,
}

/// [`Transport`] on RabbitMQ for one run.
pub struct AmqpTransport {
    target: Target,
    scope: RunScope,
    session: Mutex<Option<Arc<Session>>>,
    generations: AtomicU64,
    /// True once this instance declared the results queue (so its absence means loss).
    declared: AtomicBool,
    /// Set by a connect that found the results queue gone; cleared by `data_lost`.
    lost: AtomicBool,
    /// Results handed to the caller and not yet acked, by message id: a redelivery
    /// (after a reconnect) replaces the acker instead of handing the result twice.
    handed: std::sync::Mutex<HashMap<String, Acker>>,
    /// Results acked while their channel was dead: acked again when redelivered.
    acked_late: std::sync::Mutex<HashSet<String>>,
    tracked: std::sync::Mutex<HashMap<String, Tracked>>,
    seen: std::sync::Mutex<HashMap<String, Seen>>,
}

impl AmqpTransport {
    /// A transport for `scope` on the RabbitMQ at `url` (no I/O until `connect`).
    pub fn new(url: &BrokerUrl, password: Option<&Password>, scope: RunScope) -> BrokerResult<AmqpTransport> {
        Ok(AmqpTransport {
            target: Target::new(url, password)?,
            scope,
            session: Mutex::new(None),
            generations: AtomicU64::new(0),
            declared: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            handed: std::sync::Mutex::new(HashMap::new()),
            acked_late: std::sync::Mutex::new(HashSet::new()),
            tracked: std::sync::Mutex::new(HashMap::new()),
            seen: std::sync::Mutex::new(HashMap::new()),
        })
    }

    fn run(&self) -> &str {
        &self.scope.run
    }

    async fn session(&self) -> BrokerResult<Arc<Session>> {
        if let Some(s) = self.session.lock().await.as_ref() {
            if s.conn.status().connected() {
                return Ok(Arc::clone(s));
            }
        }
        Err(BrokerError::Unreachable { broker: self.target.shown().to_string(), reason: "not connected".into() })
    }

    /// Forgets a dead session, so the link's reconnect makes a new one.
    async fn drop_session(&self) {
        if let Some(s) = self.session.lock().await.take() {
            let _ = s.conn.close(200, "reconnecting".into()).await;
        }
    }

    async fn do_connect(&self) -> BrokerResult<()> {
        self.drop_session().await;
        let t = &self.target;
        let conn = t.open(&names::manager_connection(self.run())).await?;
        let results = names::results(self.run());
        // Is the run's results queue still there? A passive declare of a missing queue
        // closes its channel, hence a scratch one.
        let scratch = t.call("channel", conn.create_channel()).await?;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        match scratch.queue_declare(results.as_str().into(), passive, FieldTable::default()).await {
            Ok(_) => {
                let _ = scratch.close(200, "checked".into()).await;
            }
            Err(e) if is_not_found(&e) => {
                if self.declared.load(Ordering::SeqCst) {
                    self.lost.store(true, Ordering::SeqCst);
                }
            }
            Err(e) => return Err(t.err(&e)),
        }

        let publish = t.call("channel", conn.create_channel()).await?;
        t.call("confirm.select", publish.confirm_select(ConfirmSelectOptions::default())).await?;
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        for pool in &self.scope.pools {
            let q = names::pool_queue(&pool.name);
            t.call("queue.declare", publish.queue_declare(q.as_str().into(), durable, quorum_args())).await?;
        }
        t.call("queue.declare", publish.queue_declare(results.as_str().into(), durable, quorum_args())).await?;
        self.declared.store(true, Ordering::SeqCst);
        let shared = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        for name in [LIVE_EXCHANGE, WORKERS_EXCHANGE, CONTROL_EXCHANGE] {
            let declare = publish.exchange_declare(name.into(), ExchangeKind::Direct, shared, FieldTable::default());
            t.call("exchange.declare", declare).await?;
        }
        let events = names::events(self.run());
        let declare = publish.exchange_declare(
            events.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        );
        t.call("exchange.declare", declare).await?;

        let reads = t.call("channel", conn.create_channel()).await?;
        t.call("basic.qos", reads.basic_qos(RESULTS_PREFETCH, BasicQosOptions::default())).await?;
        let manual = BasicConsumeOptions::default();
        let results_consumer = t
            .call(
                "basic.consume",
                reads.basic_consume(results.as_str().into(), "".into(), manual, FieldTable::default()),
            )
            .await?;

        // The live feed and registrations: this connection's own queues, gone with it.
        let mut live_args = FieldTable::default();
        live_args.insert("x-max-length".into(), AMQPValue::LongLongInt(LIVE_MAX));
        let live = self.private_queue(&reads, live_args, LIVE_EXCHANGE, &[self.run().to_string()]).await?;
        let pools: Vec<String> = self.scope.pools.iter().map(|p| p.name.clone()).collect();
        let workers = self.private_queue(&reads, FieldTable::default(), WORKERS_EXCHANGE, &pools).await?;
        let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
        let live_consumer = t
            .call("basic.consume", reads.basic_consume(live.as_str().into(), "".into(), no_ack, FieldTable::default()));
        let live_consumer = live_consumer.await?;
        let workers_consumer = t
            .call(
                "basic.consume",
                reads.basic_consume(workers.as_str().into(), "".into(), no_ack, FieldTable::default()),
            )
            .await?;

        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        *self.session.lock().await = Some(Arc::new(Session {
            conn,
            publish,
            results: Mutex::new(results_consumer),
            live: Mutex::new(live_consumer),
            workers: Mutex::new(workers_consumer),
            generation,
        }));
        Ok(())
    }

    /// Declares a server-named exclusive queue bound to `exchange` with `keys`.
    async fn private_queue(
        &self,
        channel: &Channel,
        args: FieldTable,
        exchange: &str,
        keys: &[String],
    ) -> BrokerResult<String> {
        let t = &self.target;
        let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        let queue = t.call("queue.declare", channel.queue_declare("".into(), options, args)).await?;
        let name = queue.name().as_str().to_string();
        for key in keys {
            let bind = channel.queue_bind(
                name.as_str().into(),
                exchange.into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            );
            t.call("queue.bind", bind).await?;
        }
        Ok(name)
    }

    /// Publishes one message and waits for the broker's confirm.
    async fn send(
        &self,
        session: &Session,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> BrokerResult<()> {
        let t = &self.target;
        let publish =
            session.publish.basic_publish(exchange.into(), key.into(), BasicPublishOptions::default(), body, props);
        let confirm = t.call("basic.publish", publish).await?;
        let confirmation = t.call("publisher confirm", confirm).await?;
        if confirmation.is_nack() {
            return Err(BrokerError::Protocol {
                broker: t.shown().to_string(),
                detail: format!("the broker refused a message for {exchange:?}/{key:?} (nack)"),
            });
        }
        Ok(())
    }

    /// Reads up to `max` deliveries from `consumer`: waits up to [`READ_WAIT`] for the
    /// first, then takes what is already there.
    async fn drain(
        &self,
        consumer: &Mutex<Consumer>,
        max: usize,
        wait: bool,
    ) -> BrokerResult<Vec<lapin::message::Delivery>> {
        let mut consumer = consumer.lock().await;
        let mut got = Vec::new();
        let first = if wait {
            match tokio::time::timeout(READ_WAIT, consumer.next()).await {
                Ok(item) => Some(item),
                Err(_) => return Ok(got),
            }
        } else {
            consumer.next().now_or_never()
        };
        let mut next = first;
        while let Some(item) = next {
            match item {
                Some(Ok(d)) => got.push(d),
                Some(Err(e)) => return Err(self.target.err(&e)),
                None => return Err(self.target.ended(consumer.queue().as_str())),
            }
            if got.len() >= max {
                break;
            }
            next = consumer.next().now_or_never();
        }
        Ok(got)
    }

    async fn do_read_inbound(&self, max: usize) -> BrokerResult<Vec<Inbound>> {
        let session = self.session().await?;
        let deliveries = match self.drain(&session.results, max.max(1), true).await {
            Ok(d) => d,
            Err(e) => {
                self.drop_session().await;
                return Err(e);
            }
        };
        let mut out = Vec::new();
        for d in deliveries {
            let id = message_key(&d, session.generation);
            if self.acked_late.lock().expect("acked_late").remove(&id) {
                // Committed before: its first ack was lost with its channel.
                let _ = d.acker.ack(lapin::options::BasicAckOptions::default()).await;
                continue;
            }
            let fresh = self.handed.lock().expect("handed").insert(id.clone(), d.acker.clone()).is_none();
            if !fresh {
                continue;
            }
            let msg = wire::decode::<WorkerMsg>(&d.data);
            if let Ok(m) = &msg {
                self.note(m);
            }
            out.push(Inbound { id: InboundId(id), msg });
        }
        Ok(out)
    }

    /// Follows who runs what, for stops and the lease.
    fn note(&self, msg: &WorkerMsg) {
        let mut tracked = self.tracked.lock().expect("tracked");
        match msg {
            WorkerMsg::Started { key, worker, .. } => {
                if let Some(t) = tracked.get_mut(key) {
                    t.worker = Some(worker.clone());
                    t.redelivered = false;
                }
            }
            WorkerMsg::Result { key, .. } | WorkerMsg::Stopped { key, .. } | WorkerMsg::Handback { key, .. } => {
                tracked.remove(key);
            }
            WorkerMsg::Heartbeat { .. } | WorkerMsg::Output { .. } => {}
        }
    }

    /// Reads the registrations waiting on this manager's queue.
    async fn read_registrations(&self) -> BrokerResult<()> {
        let session = self.session().await?;
        loop {
            let batch = self.drain(&session.workers, 1000, false).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut seen = self.seen.lock().expect("seen");
            for d in batch {
                let Ok(registration) = wire::decode::<Registration>(&d.data) else {
                    continue;
                };
                let gone = d
                    .properties
                    .headers()
                    .as_ref()
                    .is_some_and(|h| h.inner().keys().any(|k| k.as_str() == GONE_HEADER));
                seen.insert(
                    registration.worker.clone(),
                    Seen { registration, seen_ms: super::now_ms(), heard: Instant::now(), gone },
                );
            }
        }
    }
}

impl AmqpTransport {
    /// True while worker `worker`'s connection lives: its exclusive control queue
    /// exists (another connection's exclusive queue answers RESOURCE_LOCKED).
    async fn connected(&self, worker: &str) -> BrokerResult<bool> {
        let session = self.session().await?;
        let t = &self.target;
        // A passive declare that fails closes its channel, hence a scratch one.
        let scratch = t.call("channel", session.conn.create_channel()).await?;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let control = names::worker_control(worker);
        let declare = scratch.queue_declare(control.as_str().into(), passive, FieldTable::default());
        match tokio::time::timeout(super::conn::CALL_TIMEOUT, declare).await {
            Ok(Ok(_)) => {
                let _ = scratch.close(200, "checked".into()).await;
                Ok(true)
            }
            Ok(Err(e)) if is_locked(&e) => Ok(true),
            Ok(Err(e)) if is_not_found(&e) => Ok(false),
            Ok(Err(e)) => Err(t.err(&e)),
            Err(_) => Err(BrokerError::Unreachable {
                broker: t.shown().to_string(),
                reason: format!("queue.declare: no answer within {} s", super::conn::CALL_TIMEOUT.as_secs()),
            }),
        }
    }
}

fn persistent(id: &str) -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2).with_message_id(id.into())
}

impl Transport for AmqpTransport {
    fn hands_on_dead_workers_jobs(&self) -> bool {
        true
    }

    fn describe(&self) -> &str {
        self.target.shown()
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_connect())
    }

    fn data_lost(&self) -> BoxFut<'_, BrokerResult<bool>> {
        Box::pin(async move { Ok(self.lost.swap(false, Ordering::SeqCst)) })
    }

    fn refresh(&self) -> BoxFut<'_, BrokerResult<()>> {
        // Workers need no discovery here (the pool queue is shared); this only says
        // whether the connection still lives.
        Box::pin(async move { self.session().await.map(|_| ()) })
    }

    fn publish(&self, jobs: Vec<AttemptMsg>) -> BoxFut<'_, BrokerResult<Vec<EntryId>>> {
        Box::pin(async move {
            let session = self.session().await?;
            let mut ids = Vec::with_capacity(jobs.len());
            let mut pending = Vec::with_capacity(jobs.len());
            for job in &jobs {
                let body = encode(self.target.shown(), job)?;
                let id = uuid::Uuid::new_v4().simple().to_string();
                let queue = names::pool_queue(&job.pool);
                let publish = session.publish.basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    persistent(&id),
                );
                pending.push(self.target.call("basic.publish", publish).await?);
                ids.push(EntryId { run: job.run.clone(), pool: job.pool.clone(), id });
            }
            // All sent, then all confirmed: one round trip's wait, not one per job.
            for confirm in pending {
                let confirmation = self.target.call("publisher confirm", confirm).await?;
                if confirmation.is_nack() {
                    return Err(BrokerError::Protocol {
                        broker: self.target.shown().to_string(),
                        detail: "the broker refused an attempt message (nack)".into(),
                    });
                }
            }
            let mut tracked = self.tracked.lock().expect("tracked");
            for (job, entry) in jobs.into_iter().zip(&ids) {
                tracked.insert(
                    job.key.clone(),
                    Tracked { entry: entry.clone(), msg: job, worker: None, redelivered: false },
                );
            }
            Ok(ids)
        })
    }

    fn withdraw(&self, entries: Vec<EntryId>) -> BoxFut<'_, BrokerResult<()>> {
        // AMQP cannot take a message back out of a queue: the worker that gets it acks
        // it (its result is a duplicate the engine ignores). Only our tracking ends.
        Box::pin(async move {
            let ids: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            self.tracked.lock().expect("tracked").retain(|_, t| !ids.contains(t.entry.id.as_str()));
            Ok(())
        })
    }

    fn read_inbound(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Inbound>>> {
        Box::pin(self.do_read_inbound(max))
    }

    fn ack_inbound(&self, ids: Vec<InboundId>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            for InboundId(id) in ids {
                let Some(acker) = self.handed.lock().expect("handed").remove(&id) else {
                    continue;
                };
                let acked = self.target.call("basic.ack", acker.ack(lapin::options::BasicAckOptions::default())).await;
                if !matches!(acked, Ok(true)) {
                    // Its channel died: the broker will deliver it again; ack it then.
                    self.acked_late.lock().expect("acked_late").insert(id);
                }
            }
            Ok(())
        })
    }

    fn read_live(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Result<WorkerMsg, WireError>>>> {
        Box::pin(async move {
            let session = self.session().await?;
            let deliveries = self.drain(&session.live, max.max(1), true).await?;
            Ok(deliveries.iter().map(|d| wire::decode::<WorkerMsg>(&d.data)).collect())
        })
    }

    fn stop(&self, key: String, why: StopWhy) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let session = self.session().await?;
            let worker = self.tracked.lock().expect("tracked").get(&key).and_then(|t| t.worker.clone());
            let route = worker.unwrap_or_else(|| ALL_WORKERS.to_string());
            let body = serde_json::json!({"run": self.run(), "key": key, "why": why.as_str()}).to_string();
            // Stops matter only while the worker lives: not persistent, kept an hour.
            let props = BasicProperties::default().with_expiration("3600000".into());
            self.send(&session, CONTROL_EXCHANGE, &route, body.as_bytes(), props).await
        })
    }

    fn reclaim(&self, lease: Duration) -> BoxFut<'_, BrokerResult<Vec<Reclaimed>>> {
        // A dead connection's deliveries come back by themselves; what is left is a
        // started attempt whose worker stopped refreshing its registration (hung, or
        // acked early for a long job and then died).
        Box::pin(async move {
            self.read_registrations().await?;
            let silent: Vec<(String, String, bool)> = {
                let seen = self.seen.lock().expect("seen");
                let silent = |w: &str| seen.get(w).is_none_or(|s| s.gone || s.heard.elapsed() > lease);
                let tracked = self.tracked.lock().expect("tracked");
                tracked
                    .iter()
                    .filter(|(_, t)| !t.redelivered)
                    .filter_map(|(k, t)| Some((k.clone(), t.worker.clone().filter(|w| silent(w))?, t.msg.timeout_ms)))
                    .map(|(k, w, timeout)| (k, w, timeout > EARLY_ACK_OVER_MS))
                    .collect()
            };
            let mut lost = Vec::new();
            for (key, worker, acked_early) in silent {
                // A delivery still unacked goes back to the queue when its worker's
                // connection dies; the lease takes back only what nobody else will get.
                if acked_early || self.connected(&worker).await? {
                    lost.push(key);
                } else if let Some(t) = self.tracked.lock().expect("tracked").get_mut(&key) {
                    t.redelivered = true;
                }
            }
            let mut tracked = self.tracked.lock().expect("tracked");
            Ok(lost
                .into_iter()
                .filter_map(|k| tracked.remove(&k))
                .map(|t| Reclaimed { entry: t.entry, worker: t.worker, deliveries: 1, msg: Ok(t.msg) })
                .collect())
        })
    }

    fn workers(&self) -> BoxFut<'_, BrokerResult<Vec<WorkerInfo>>> {
        Box::pin(async move {
            self.read_registrations().await?;
            let mut seen = self.seen.lock().expect("seen");
            seen.retain(|_, s| s.heard.elapsed() < FORGET_AFTER);
            // A worker that said goodbye is left out: the link reads absence as "left".
            let mut out: Vec<WorkerInfo> = seen
                .values()
                .filter(|s| !s.gone)
                .map(|s| WorkerInfo {
                    registration: s.registration.clone(),
                    seen_ms: s.seen_ms,
                    alive: s.heard.elapsed() < Duration::from_millis(s.registration.ttl_ms),
                })
                .collect();
            out.sort_by(|a, b| a.registration.worker.cmp(&b.registration.worker));
            Ok(out)
        })
    }

    fn publish_event(&self, line: Arc<str>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let session = self.session().await?;
            let events = names::events(self.run());
            self.send(&session, &events, "", line.as_bytes(), BasicProperties::default()).await
        })
    }

    fn finish(&self, clean: bool) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            if clean {
                // Deleting needs a connection even after a clean disconnect.
                let session = match self.session().await {
                    Ok(s) => s,
                    Err(_) => {
                        self.do_connect().await?;
                        self.session().await?
                    }
                };
                let t = &self.target;
                let results = names::results(self.run());
                t.call(
                    "queue.delete",
                    session.publish.queue_delete(results.as_str().into(), QueueDeleteOptions::default()),
                )
                .await?;
                let events = names::events(self.run());
                let delete = session.publish.exchange_delete(events.as_str().into(), ExchangeDeleteOptions::default());
                t.call("exchange.delete", delete).await?;
                // Pool queues are shared with other runs: they stay.
            }
            self.drop_session().await;
            Ok(())
        })
    }
}
