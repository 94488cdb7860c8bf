//! The RabbitMQ transport against the shared RabbitMQ on :5672 (io/broker/amqp,
//! issue 16), and the broker suite (tests/broker_common/suite.rs) on both brokers.
//! Every test uses names under a random run id and deletes what it declared.

mod broker_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_common::suite::{self, attempt, registration, started, success, until_some, Pair};
use broker_common::{run_id, SHARED_AMQP, SHARED_REDIS};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use pitboss::io::broker::amqp::names;
use pitboss::io::broker::url::{BrokerUrl, Password};
use pitboss::io::broker::{
    open_transport, open_worker_transport, BrokerErrorKind, PoolOffer, RunScope, Transport, WorkerScope,
    WorkerTransport,
};

const GUEST: &str = "guest";

fn amqp_url() -> String {
    format!("amqp://{SHARED_AMQP}")
}

fn guest() -> Option<Password> {
    Some(Password::new(GUEST.into()))
}

/// Deletes the run's and pool's queues and exchanges (or Redis keys) when dropped.
struct Cleanup {
    amqp: bool,
    run: String,
    pool: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (run, pool) = (self.run.clone(), self.pool.clone());
        if !self.amqp {
            let Ok(client) = redis::Client::open(format!("redis://{SHARED_REDIS}")) else {
                return;
            };
            let Ok(mut conn) = client.get_connection() else {
                return;
            };
            for pattern in [format!("pitboss:{run}:*"), format!("pitboss:pool:{pool}:*")] {
                let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
                if !keys.is_empty() {
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
                }
            }
            return;
        }
        // A thread of its own: Drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            rt.block_on(async {
                let Ok(conn) = raw_connection().await else {
                    return;
                };
                for queue in [names::pool_queue(&pool), names::results(&run)] {
                    if let Ok(ch) = conn.create_channel().await {
                        let _ = ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
                    }
                }
                if let Ok(ch) = conn.create_channel().await {
                    let events = names::events(&run);
                    let _ = ch.exchange_delete(events.as_str().into(), ExchangeDeleteOptions::default()).await;
                }
                let _ = conn.close(200, "cleaned".into()).await;
            });
        })
        .join();
    }
}

async fn raw_connection() -> lapin::Result<Connection> {
    Connection::connect(&format!("amqp://guest:guest@{SHARED_AMQP}"), ConnectionProperties::default()).await
}

fn manager_for(amqp: bool, run: &str, pool: &str) -> Arc<dyn Transport> {
    let (url, password) = if amqp { (amqp_url(), guest()) } else { (format!("redis://{SHARED_REDIS}"), None) };
    let scope = RunScope {
        run: run.into(),
        pools: vec![PoolOffer { name: pool.into(), capabilities: vec![] }],
        manager: "testhost:1".into(),
    };
    open_transport(&BrokerUrl::parse(&url).unwrap(), password.as_ref(), scope).unwrap()
}

fn worker_for(amqp: bool, worker: &str, pool: &str) -> Arc<dyn WorkerTransport> {
    let (url, password) = if amqp { (amqp_url(), guest()) } else { (format!("redis://{SHARED_REDIS}"), None) };
    let scope = WorkerScope { worker: worker.into(), pool: pool.into() };
    open_worker_transport(&BrokerUrl::parse(&url).unwrap(), password.as_ref(), scope).unwrap()
}

/// A manager and a worker for a fresh run and pool on one broker kind.
fn pair(amqp: bool) -> (Pair, Cleanup) {
    let run = run_id("at");
    let pool = format!("pool-{run}");
    let wid = format!("{run}-w1");
    let (r, p) = (run.clone(), pool.clone());
    let pair = Pair {
        manager: manager_for(amqp, &run, &pool),
        worker: worker_for(amqp, &wid, &pool),
        registration: registration(&wid, &pool),
        another_manager: Box::new(move || manager_for(amqp, &r, &p)),
        run: run.clone(),
        pool: pool.clone(),
    };
    (pair, Cleanup { amqp, run, pool })
}

fn up(amqp: bool) -> bool {
    if amqp {
        broker_common::amqp()
    } else {
        broker_common::redis()
    }
}

macro_rules! on_both_brokers {
    ($($name:ident => $body:path;)*) => {
        mod suite_amqp {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                if !up(true) {
                    return;
                }
                let (p, _cleanup) = pair(true);
                $body(&p).await;
                p.manager.finish(true).await.unwrap();
            })*
        }
        mod suite_redis {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                if !up(false) {
                    return;
                }
                let (p, _cleanup) = pair(false);
                $body(&p).await;
            })*
        }
    };
}

on_both_brokers! {
    publish_read_result_ack => suite::round_trip;
    unacked_results_are_read_again_by_a_restarted_manager => suite::unacked_results_are_read_again;
    a_stop_reaches_the_workers_heartbeat => suite::a_stop_reaches_the_workers_heartbeat;
}

#[tokio::test]
async fn a_closed_worker_connection_hands_its_job_to_another_consumer() {
    if !broker_common::amqp() || !broker_common::rabbitmqctl() {
        return;
    }
    let (p, _cleanup) = pair(true);
    p.manager.connect().await.unwrap();
    p.worker.connect().await.unwrap();
    let other_id = format!("{}-w2", p.run);
    let job = attempt(&p.run, &p.pool, "r");
    p.manager.publish(vec![job.clone()]).await.unwrap();
    let jobs = until_some(|| async { p.worker.next_jobs(1).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    p.worker.report(&p.run, started(&job, &p.registration.worker)).await.unwrap();

    // A second worker waits on the same pool; the first one's connection is cut mid-job.
    let other = worker_for(true, &other_id, &p.pool);
    other.connect().await.unwrap();
    assert!(other.next_jobs(1).await.unwrap().is_empty(), "the job is held by the first worker");
    broker_common::close_amqp_connection(&names::worker_connection(&p.registration.worker)).unwrap();
    let again = until_some(|| async { other.next_jobs(1).await.unwrap() }).await;
    assert_eq!(again.len(), 1, "the job is redelivered to the other consumer within 10 s");
    assert_eq!(again[0].msg.as_ref().unwrap(), &job);
    assert_eq!(again[0].entry, jobs[0].entry, "the same message, known by the same id");
    assert_eq!(again[0].deliveries, 2);
    other.ack_job(again[0].entry.clone()).await.unwrap();
    // The cut worker says so, and its late ack is harmless.
    let err = p.worker.next_jobs(1).await.unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Unreachable, "{err}");
    p.worker.connect().await.unwrap();
    p.worker.ack_job(jobs[0].entry.clone()).await.unwrap();
    p.manager.finish(true).await.unwrap();
}

#[tokio::test]
async fn a_long_job_is_acked_once_started_and_then_lives_on_the_lease() {
    if !broker_common::amqp() || !broker_common::rabbitmqctl() {
        return;
    }
    let (p, _cleanup) = pair(true);
    p.manager.connect().await.unwrap();
    p.worker.connect().await.unwrap();
    p.worker.register(&p.registration).await.unwrap();
    let mut job = attempt(&p.run, &p.pool, "long");
    job.timeout_ms = pitboss::io::broker::amqp::CONSUMER_TIMEOUT_MS;
    p.manager.publish(vec![job.clone()]).await.unwrap();
    let jobs = until_some(|| async { p.worker.next_jobs(1).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    p.worker.report(&p.run, started(&job, &p.registration.worker)).await.unwrap();
    let inbound = until_some(|| async { p.manager.read_inbound(10).await.unwrap() }).await;
    assert_eq!(inbound.len(), 1);
    p.manager.ack_inbound(vec![inbound[0].id.clone()]).await.unwrap();
    let lease = Duration::from_millis(300);
    assert!(p.manager.reclaim(Duration::from_secs(60)).await.unwrap().is_empty(), "heard from recently");

    // Acked already: a cut connection does not hand it to another worker...
    broker_common::close_amqp_connection(&names::worker_connection(&p.registration.worker)).unwrap();
    let other = worker_for(true, &format!("{}-w2", p.run), &p.pool);
    other.connect().await.unwrap();
    assert!(other.next_jobs(1).await.unwrap().is_empty(), "a long job is not redelivered");
    // ...the manager's lease takes it back once the worker is silent.
    let start = Instant::now();
    let reclaimed = until_some(|| async { p.manager.reclaim(lease).await.unwrap() }).await;
    assert_eq!(reclaimed.len(), 1, "reclaimed within 10 s");
    assert!(start.elapsed() >= Duration::from_millis(200) || reclaimed[0].worker.is_some());
    assert_eq!(reclaimed[0].worker.as_deref(), Some(p.registration.worker.as_str()));
    assert_eq!(reclaimed[0].msg.as_ref().unwrap(), &job);
    assert!(p.manager.reclaim(Duration::ZERO).await.unwrap().is_empty(), "taken back once");
    p.manager.finish(true).await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_refused_in_the_brokers_words() {
    if !broker_common::amqp() {
        return;
    }
    let url = BrokerUrl::parse(&amqp_url()).unwrap();
    let scope = RunScope { run: run_id("pw"), pools: vec![], manager: "h:1".into() };
    let wrong = open_transport(&url, Some(&Password::new("not-the-password".into())), scope.clone()).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(15), wrong.connect()).await.expect("never hangs").unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Refused, "{err}");
    let text = err.to_string();
    assert!(text.contains("refused user guest") && text.contains("ACCESS_REFUSED"), "{text}");
    assert!(!text.contains("not-the-password"), "the password is never shown: {text}");
    let worker = open_worker_transport(
        &url,
        Some(&Password::new("not-the-password".into())),
        WorkerScope { worker: "w".into(), pool: "p".into() },
    )
    .unwrap();
    assert_eq!(worker.connect().await.unwrap_err().kind(), BrokerErrorKind::Refused);
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = BrokerUrl::parse(&format!("amqp://127.0.0.1:{port}")).unwrap();
    let t =
        open_transport(&url, guest().as_ref(), RunScope { run: run_id("down"), pools: vec![], manager: "h:1".into() })
            .unwrap();
    let err =
        tokio::time::timeout(Duration::from_secs(15), t.connect()).await.expect("fails, never hangs").unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Unreachable, "{err}");
    assert!(err.to_string().starts_with(&format!("cannot reach the broker at amqp://127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn events_reach_the_runs_fanout_exchange() {
    if !broker_common::amqp() {
        return;
    }
    let (p, _cleanup) = pair(true);
    p.manager.connect().await.unwrap();
    let conn = raw_connection().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let private = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = ch.queue_declare("".into(), private, FieldTable::default()).await.unwrap();
    let events = names::events(&p.run);
    ch.queue_bind(
        queue.name().clone(),
        events.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let no_ack = BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() };
    let mut consumer = ch.basic_consume(queue.name().clone(), "".into(), no_ack, FieldTable::default()).await.unwrap();
    let line: Arc<str> = Arc::from(r#"{"seq":1,"type":"run_started"}"#);
    p.manager.publish_event(Arc::clone(&line)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("the event within 10 s")
        .expect("a delivery")
        .unwrap();
    assert_eq!(got.data, line.as_bytes());
    conn.close(200, "done".into()).await.unwrap();
    p.manager.finish(true).await.unwrap();
}

#[tokio::test]
async fn garbage_messages_give_clear_errors_not_panics() {
    if !broker_common::amqp() {
        return;
    }
    let (p, _cleanup) = pair(true);
    p.manager.connect().await.unwrap();
    p.worker.connect().await.unwrap();
    let conn = raw_connection().await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let results = names::results(&p.run);
    let queue = names::pool_queue(&p.pool);
    for (to, body) in
        [(&results, "not json at all"), (&results, r#"{"v":9,"t":"heartbeat"}"#), (&queue, r#"{"v":1,"run":"r"}"#)]
    {
        ch.basic_publish(
            "".into(),
            to.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let mut inbound = Vec::new();
    while inbound.len() < 2 {
        let got = until_some(|| async { p.manager.read_inbound(10).await.unwrap() }).await;
        assert!(!got.is_empty(), "both bad results are read");
        inbound.extend(got);
    }
    let errors: Vec<String> = inbound.iter().map(|i| i.msg.as_ref().unwrap_err().to_string()).collect();
    assert!(errors[0].starts_with("not a pitboss message"), "{}", errors[0]);
    assert!(errors[1].contains("version 9"), "{}", errors[1]);
    // Unreadable results are acked like any other, so they never block the queue.
    p.manager.ack_inbound(inbound.into_iter().map(|i| i.id).collect()).await.unwrap();

    let jobs = until_some(|| async { p.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    let err = jobs[0].msg.as_ref().unwrap_err().to_string();
    assert!(err.starts_with("not a pitboss message") && err.contains("missing field"), "{err}");
    p.worker.ack_job(jobs[0].entry.clone()).await.unwrap();
    let _ = success("x", "y", "z");
    conn.close(200, "done".into()).await.unwrap();
    p.manager.finish(true).await.unwrap();
}

#[tokio::test]
async fn the_link_goes_down_and_up_when_the_managers_connection_is_closed() {
    use pitboss::io::broker::link::{Link, LinkConfig, LinkState, Notice};
    if !broker_common::amqp() || !broker_common::rabbitmqctl() {
        return;
    }
    let (p, _cleanup) = pair(true);
    let mut config = LinkConfig::new(Duration::from_secs(30));
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    let (link, mut notices) = Link::connect(Arc::clone(&p.manager), config).await.unwrap();
    let mut state = link.state();
    assert!(state.borrow().is_up());

    broker_common::close_amqp_connection(&names::manager_connection(&p.run)).unwrap();
    let within = Duration::from_secs(20);
    let down =
        tokio::time::timeout(within, state.wait_for(|s| !s.is_up())).await.expect("down within 20 s").unwrap().clone();
    assert!(matches!(down, LinkState::Down { .. }), "{down:?}");
    tokio::time::timeout(within, state.wait_for(|s| matches!(s, LinkState::Up { epoch } if *epoch >= 2)))
        .await
        .expect("up again within 20 s")
        .unwrap();
    let data_lost = tokio::time::timeout(within, async {
        loop {
            match notices.recv().await {
                Some(Notice::Up { data_lost, .. }) => return data_lost,
                Some(_) => {}
                None => panic!("the link ended"),
            }
        }
    })
    .await
    .expect("an Up notice");
    assert!(!data_lost, "a cut connection loses nothing on a durable queue");

    p.worker.connect().await.unwrap();
    link.publish(vec![attempt(&p.run, &p.pool, "z")]);
    let jobs = until_some(|| async { p.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1, "a publish after the reconnect reaches the worker");
    p.worker.ack_job(jobs[0].entry.clone()).await.unwrap();
    link.finish(true).await.unwrap();
}

#[tokio::test]
async fn a_worker_that_unregisters_is_no_longer_listed() {
    if !broker_common::amqp() {
        return;
    }
    let (p, _cleanup) = pair(true);
    p.manager.connect().await.unwrap();
    p.worker.connect().await.unwrap();
    p.worker.register(&p.registration).await.unwrap();
    let listed = until_some(|| async { p.manager.workers().await.unwrap() }).await;
    assert_eq!(listed.len(), 1);
    p.worker.unregister().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.manager.workers().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "still listed 10 s after unregistering");
        tokio::task::yield_now().await;
    }
    p.manager.finish(true).await.unwrap();
}
