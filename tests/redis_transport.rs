//! The Redis transport against a real Redis (io/broker/redis.rs, issue 16): the
//! shared server on :6379 for the message flow (keys under a random run id, deleted
//! after), a private `redis-server` for passwords, ACLs and restarts.

mod broker_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_common::{run_id, suite, OwnRedis, SHARED_REDIS};
use pitboss::io::broker::redis::{RedisTransport, RedisWorkerTransport};
use pitboss::io::broker::url::{BrokerUrl, Password};
use pitboss::io::broker::wire::{OutputStream, Registration, WorkerMsg, WorkerState};
use pitboss::io::broker::{
    BrokerErrorKind, PoolOffer, RunScope, Running, StopWhy, Transport, WorkerScope, WorkerTransport,
};

/// Deletes every key of a test's run and pool when dropped (the shared server is shared).
struct Cleanup {
    url: String,
    run: String,
    pool: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        for pattern in [format!("pitboss:{}:*", self.run), format!("pitboss:pool:{}:*", self.pool)] {
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(format!("pitboss:worker:{}", self.run)).query(&mut conn);
    }
}

struct Setup {
    run: String,
    pool: String,
    manager: RedisTransport,
    worker: RedisWorkerTransport,
    registration: Registration,
    _cleanup: Cleanup,
}

/// A manager and a worker transport on `url` for a fresh run and pool.
fn setup(url: &str, worker_user: Option<(&str, &str)>) -> Setup {
    let run = run_id("rt");
    let pool = format!("pool-{run}");
    let manager = RedisTransport::new(
        &BrokerUrl::parse(url).unwrap(),
        None,
        RunScope {
            run: run.clone(),
            pools: vec![PoolOffer { name: pool.clone(), capabilities: vec![] }],
            manager: "testhost:1".into(),
        },
    )
    .unwrap();
    let (worker_url, password) = match worker_user {
        Some((user, pw)) => (url.replace("redis://", &format!("redis://{user}@")), Some(Password::new(pw.into()))),
        None => (url.to_string(), None),
    };
    let worker_id = run.clone();
    let worker = RedisWorkerTransport::new(
        &BrokerUrl::parse(&worker_url).unwrap(),
        password.as_ref(),
        WorkerScope { worker: worker_id.clone(), pool: pool.clone() },
    )
    .unwrap();
    let registration = Registration {
        worker: worker_id,
        pool: pool.clone(),
        capabilities: vec![],
        host: "testhost".into(),
        pid: 42,
        version: "test".into(),
        concurrency: 2,
        state: WorkerState::Idle,
        ttl_ms: 10_000,
    };
    Setup {
        _cleanup: Cleanup { url: url.to_string(), run: run.clone(), pool: pool.clone() },
        run,
        pool,
        manager,
        worker,
        registration,
    }
}

fn shared_url() -> String {
    format!("redis://{SHARED_REDIS}")
}

/// Calls `read` until it yields something or 10 s pass (a broken feature fails, never hangs).
async fn until_some<T, F, Fut>(mut read: F) -> Vec<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read().await;
        if !got.is_empty() || Instant::now() > deadline {
            return got;
        }
    }
}

/// The whole loop of one attempt: publish → worker reads → started, output, result →
/// manager reads the results and the live feed and acks.
async fn one_attempt_round_trip(s: &Setup) {
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    s.worker.register(&s.registration).await.unwrap();
    let job = suite::attempt(&s.run, &s.pool, "a");
    let ids = s.manager.publish(vec![job.clone()]).await.unwrap();
    assert_eq!(ids.len(), 1);

    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1, "the worker reads the published attempt");
    assert_eq!(jobs[0].entry, ids[0]);
    assert_eq!(jobs[0].msg.as_ref().unwrap(), &job);

    let wid = s.registration.worker.clone();
    let started = WorkerMsg::Started {
        key: job.key.clone(),
        dispatch: job.dispatch.clone(),
        worker: wid.clone(),
        host: "testhost".into(),
        pid: 4242,
        started_ms: 7,
    };
    s.worker.report(&s.run, started.clone()).await.unwrap();
    let output = WorkerMsg::Output {
        key: job.key.clone(),
        worker: wid.clone(),
        stream: OutputStream::Stdout,
        text: "working\n".into(),
    };
    s.worker.report(&s.run, output.clone()).await.unwrap();
    s.worker.report(&s.run, suite::success(&job.key, &job.dispatch, &wid)).await.unwrap();
    s.worker.ack_job(jobs[0].entry.clone()).await.unwrap();

    let mut inbound = Vec::new();
    while inbound.len() < 2 {
        let got = until_some(|| async { s.manager.read_inbound(10).await.unwrap() }).await;
        assert!(!got.is_empty(), "the manager reads the worker's results");
        inbound.extend(got);
    }
    assert_eq!(inbound[0].msg.as_ref().unwrap(), &started);
    assert_eq!(inbound[1].msg.as_ref().unwrap(), &suite::success(&job.key, &job.dispatch, &wid));
    let live = until_some(|| async { s.manager.read_live(10).await.unwrap() }).await;
    assert_eq!(live.first().map(|m| m.as_ref().unwrap()), Some(&output));

    s.manager.ack_inbound(inbound.iter().map(|i| i.id.clone()).collect()).await.unwrap();
    s.manager.withdraw(ids).await.unwrap();
    // Acked results are not read again, even from the start of the pending list.
    let again = RedisTransport::new(
        &BrokerUrl::parse(s.manager.describe()).unwrap(),
        None,
        RunScope {
            run: s.run.clone(),
            pools: vec![PoolOffer { name: s.pool.clone(), capabilities: vec![] }],
            manager: "testhost:2".into(),
        },
    )
    .unwrap();
    again.connect().await.unwrap();
    assert!(again.read_inbound(10).await.unwrap().is_empty(), "acked results are gone");

    let workers = s.manager.workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert!(workers[0].alive);
    assert_eq!(workers[0].registration, s.registration);
}

#[tokio::test]
async fn publish_read_result_ack() {
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    one_attempt_round_trip(&s).await;
}

#[tokio::test]
async fn unacked_results_are_read_again_by_a_restarted_manager() {
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    s.manager.connect().await.unwrap();
    s.worker.report(&s.run, suite::success("a.1", "d", "w")).await.unwrap();
    let first = until_some(|| async { s.manager.read_inbound(10).await.unwrap() }).await;
    assert_eq!(first.len(), 1);
    // A reconnect of the same manager does not hand it out twice (it is not acked yet).
    s.manager.connect().await.unwrap();
    assert!(s.manager.read_inbound(10).await.unwrap().is_empty(), "no duplicate after a reconnect");
    // The manager dies before committing: a new one reads the same result again.
    let again = RedisTransport::new(
        &BrokerUrl::parse(&shared_url()).unwrap(),
        None,
        RunScope { run: s.run.clone(), pools: vec![], manager: "testhost:2".into() },
    )
    .unwrap();
    again.connect().await.unwrap();
    let second = until_some(|| async { again.read_inbound(10).await.unwrap() }).await;
    assert_eq!(second.len(), 1, "the unacked result is delivered again");
    assert_eq!(second[0].id, first[0].id);
}

#[tokio::test]
async fn a_dead_workers_delivery_is_reclaimed_after_the_lease() {
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    let job = suite::attempt(&s.run, &s.pool, "b");
    s.manager.publish(vec![job.clone()]).await.unwrap();
    let jobs = until_some(|| async { s.worker.next_jobs(1).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    let read_at = Instant::now();

    let lease = Duration::from_millis(300);
    // Not idle long enough yet.
    assert!(s.manager.reclaim(Duration::from_secs(60)).await.unwrap().is_empty());
    // A heartbeat resets the idle time: a delivery idle past the lease is kept.
    while read_at.elapsed() < lease * 2 {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(20));
    }
    let running = vec![Running { entry: jobs[0].entry.clone(), key: job.key.clone() }];
    let stops = s.worker.heartbeat(&s.registration, running.clone()).await.unwrap();
    assert!(stops.is_empty());
    assert!(s.manager.reclaim(lease).await.unwrap().is_empty(), "a heartbeat keeps the delivery");

    // The worker dies (no more heartbeats): the delivery comes back to the manager.
    let reclaimed = until_some(|| async { s.manager.reclaim(lease).await.unwrap() }).await;
    assert_eq!(reclaimed.len(), 1, "reclaimed within 10 s");
    assert_eq!(reclaimed[0].entry, jobs[0].entry);
    assert_eq!(reclaimed[0].worker.as_deref(), Some(s.registration.worker.as_str()));
    assert_eq!(reclaimed[0].msg.as_ref().unwrap(), &job);
    // Taken back entries leave the queue: claimed once, not twice.
    assert!(s.manager.reclaim(Duration::ZERO).await.unwrap().is_empty());

    // A stop request reaches a worker's heartbeat.
    s.manager.stop(job.key.clone(), StopWhy::Cancel).await.unwrap();
    let stops = s.worker.heartbeat(&s.registration, running).await.unwrap();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].why, StopWhy::Cancel);
}

#[tokio::test]
async fn garbage_entries_give_clear_errors_not_panics() {
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    let client = redis::Client::open(shared_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let results = format!("pitboss:{}:results", s.run);
    let queue = format!("pitboss:{}:q:{}", s.run, s.pool);
    for (key, field, value) in [
        (&results, "m", "not json at all"),
        (&results, "other", "x"),
        (&results, "m", r#"{"v":9,"t":"heartbeat"}"#),
        (&queue, "m", r#"{"v":1,"run":"r"}"#),
    ] {
        let _: String = redis::cmd("XADD").arg(key).arg("*").arg(field).arg(value).query_async(&mut raw).await.unwrap();
    }
    let inbound = until_some(|| async { s.manager.read_inbound(10).await.unwrap() }).await;
    let errors: Vec<String> = inbound.iter().map(|i| i.msg.as_ref().unwrap_err().to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("not a pitboss message"), "{}", errors[0]);
    assert!(errors[1].contains("no `m` field") && errors[1].contains("other"), "{}", errors[1]);
    assert!(errors[2].contains("version 9"), "{}", errors[2]);
    // Unreadable results are acked like any other, so they never block the queue.
    s.manager.ack_inbound(inbound.into_iter().map(|i| i.id).collect()).await.unwrap();

    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    let err = jobs[0].msg.as_ref().unwrap_err().to_string();
    assert!(err.starts_with("not a pitboss message") && err.contains("missing field"), "{err}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_in_the_brokers_words() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start_with(&["--requirepass", "right-one"]);
    let url = BrokerUrl::parse(&own.url(None)).unwrap();
    let scope = RunScope { run: run_id("pw"), pools: vec![], manager: "h:1".into() };
    let wrong = RedisTransport::new(&url, Some(&Password::new("wrong-one".into())), scope.clone()).unwrap();
    let err = wrong.connect().await.unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Refused, "{err}");
    let text = err.to_string();
    assert!(text.contains("refused user default") && text.contains("WRONGPASS"), "{text}");
    assert!(!text.contains("wrong-one"), "the password is never shown: {text}");
    let none = RedisTransport::new(&url, None, scope.clone()).unwrap();
    let err = none.connect().await.unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Refused, "{err}");
    let right = RedisTransport::new(&url, Some(&Password::new("right-one".into())), scope).unwrap();
    right.connect().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error() {
    if !broker_common::redis_server() {
        return;
    }
    let mut own = OwnRedis::start();
    own.kill();
    let t = RedisTransport::new(
        &BrokerUrl::parse(&own.url(None)).unwrap(),
        None,
        RunScope { run: run_id("down"), pools: vec![], manager: "h:1".into() },
    )
    .unwrap();
    let err =
        tokio::time::timeout(Duration::from_secs(15), t.connect()).await.expect("fails, never hangs").unwrap_err();
    assert_eq!(err.kind(), BrokerErrorKind::Unreachable, "{err}");
    assert!(
        err.to_string().starts_with(&format!("cannot reach the broker at redis://127.0.0.1:{}", own.port)),
        "{err}"
    );
}

/// The ACL line documented for workers (README "Running across machines").
const WORKER_ACL: &str = "on >worker-secret resetkeys ~pitboss:* resetchannels &pitboss:* -@all +@connection \
    +xreadgroup +xadd +xack +xclaim +xinfo|groups +set +del +zadd +zrem +zrangebyscore +pexpire +mget +ping";

#[tokio::test]
async fn an_acl_limited_user_can_do_everything_a_worker_needs() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start();
    let client = redis::Client::open(own.url(None)).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let mut acl = redis::cmd("ACL");
    acl.arg("SETUSER").arg("pw");
    for word in WORKER_ACL.split_whitespace() {
        acl.arg(word);
    }
    let _: () = acl.query_async(&mut admin).await.unwrap();

    let s = setup(&own.url(None), Some(("pw", "worker-secret")));
    one_attempt_round_trip(&s).await;
    // Heartbeats with stop checks, and a clean exit.
    s.worker
        .heartbeat(
            &s.registration,
            vec![Running {
                entry: pitboss::io::broker::EntryId { run: s.run.clone(), pool: s.pool.clone(), id: "0-1".into() },
                key: "a.1".into(),
            }],
        )
        .await
        .unwrap();
    s.worker.unregister().await.unwrap();

    // And nothing beyond `pitboss:*`: the limit is real.
    let limited = redis::Client::open(format!("redis://pw:worker-secret@127.0.0.1:{}", own.port)).unwrap();
    let mut conn = limited.get_multiplexed_async_connection().await.unwrap();
    let err = redis::cmd("SET").arg("other:key").arg(1).query_async::<()>(&mut conn).await.unwrap_err();
    assert_eq!(err.code(), Some("NOPERM"), "{err}");
}

#[tokio::test]
async fn a_restarted_empty_redis_is_noticed_as_data_lost() {
    if !broker_common::redis_server() {
        return;
    }
    let mut own = OwnRedis::start();
    let s = setup(&own.url(None), None);
    s.manager.connect().await.unwrap();
    assert!(!s.manager.data_lost().await.unwrap(), "nothing lost yet");
    s.manager.publish(vec![suite::attempt(&s.run, &s.pool, "c")]).await.unwrap();

    own.restart();
    let err = until_err(|| s.manager.publish(vec![suite::attempt(&s.run, &s.pool, "d")])).await;
    assert_eq!(err.kind(), BrokerErrorKind::Unreachable, "{err}");
    // Reconnecting works, and says the data is gone (then re-creates the groups).
    tokio::time::timeout(Duration::from_secs(15), async {
        while s.manager.connect().await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("reconnects within 15 s");
    assert!(s.manager.data_lost().await.unwrap(), "the restart emptied the run's data");
    assert!(!s.manager.data_lost().await.unwrap(), "the flag is cleared once read");
    s.worker.connect().await.unwrap();
    s.manager.refresh().await.unwrap();
    s.manager.publish(vec![suite::attempt(&s.run, &s.pool, "e")]).await.unwrap();
    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1, "the queue works again after the restart");
}

/// Calls `op` until it fails (the first call after a server restart may still succeed
/// on a reconnected connection), for at most 10 s.
async fn until_err<F, Fut, T>(mut op: F) -> pitboss::io::broker::BrokerError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, pitboss::io::broker::BrokerError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match op().await {
            Err(e) => return e,
            Ok(_) if Instant::now() > deadline => panic!("never failed after the restart"),
            Ok(_) => {}
        }
    }
}

#[allow(dead_code)]
fn _object_safe(t: Arc<dyn Transport>, w: Arc<dyn WorkerTransport>) -> (Arc<dyn Transport>, Arc<dyn WorkerTransport>) {
    (t, w)
}

#[tokio::test]
async fn the_link_goes_down_and_up_across_a_redis_restart() {
    use pitboss::io::broker::link::{Link, LinkConfig, LinkState, Notice};
    if !broker_common::redis_server() {
        return;
    }
    let mut own = OwnRedis::start();
    let s = setup(&own.url(None), None);
    let transport: Arc<dyn Transport> = Arc::new(s.manager);
    let mut config = LinkConfig::new(Duration::from_secs(30));
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    let (link, mut notices) = Link::connect(Arc::clone(&transport), config).await.unwrap();
    let mut state = link.state();
    assert!(state.borrow().is_up());

    own.restart();
    let within = Duration::from_secs(20);
    let down =
        tokio::time::timeout(within, state.wait_for(|s| !s.is_up())).await.expect("down within 20 s").unwrap().clone();
    assert!(matches!(down, LinkState::Down { .. }), "{down:?}");
    tokio::time::timeout(within, state.wait_for(|s| matches!(s, LinkState::Up { epoch } if *epoch >= 2)))
        .await
        .expect("up again within 20 s")
        .unwrap();
    let up = tokio::time::timeout(within, async {
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
    assert!(up, "the restarted server lost the run's data");

    // And it works: a publish after the restart reaches the worker.
    s.worker.connect().await.unwrap();
    link.publish(vec![suite::attempt(&s.run, &s.pool, "z")]);
    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    link.finish(true).await.unwrap();
}

#[tokio::test]
async fn events_reach_subscribers_of_the_runs_channel() {
    use futures_util::StreamExt;
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    s.manager.connect().await.unwrap();
    let client = redis::Client::open(shared_url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe(format!("pitboss:{}:events", s.run)).await.unwrap();
    let line: Arc<str> = Arc::from(r#"{"seq":1,"type":"run_started"}"#);
    s.manager.publish_event(Arc::clone(&line)).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), sub.on_message().next())
        .await
        .expect("the event within 10 s")
        .expect("a message");
    assert_eq!(msg.get_payload::<String>().unwrap(), &*line);
}

#[tokio::test]
async fn a_worker_serves_every_live_run_of_its_pool_and_skips_cleaned_ones() {
    if !broker_common::redis() {
        return;
    }
    let s = setup(&shared_url(), None);
    let other_run = run_id("rt2");
    let _cleanup = Cleanup { url: shared_url(), run: other_run.clone(), pool: s.pool.clone() };
    let other = RedisTransport::new(
        &BrokerUrl::parse(&shared_url()).unwrap(),
        None,
        RunScope {
            run: other_run.clone(),
            pools: vec![PoolOffer { name: s.pool.clone(), capabilities: vec![] }],
            manager: "testhost:3".into(),
        },
    )
    .unwrap();
    s.manager.connect().await.unwrap();
    other.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    s.manager.publish(vec![suite::attempt(&s.run, &s.pool, "x")]).await.unwrap();
    other.publish(vec![suite::attempt(&other_run, &s.pool, "y")]).await.unwrap();
    let mut runs = Vec::new();
    while runs.len() < 2 {
        let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
        assert!(!jobs.is_empty(), "both runs' attempts are read");
        runs.extend(jobs.into_iter().map(|j| j.entry.run));
    }
    runs.sort();
    let mut want = vec![s.run.clone(), other_run.clone()];
    want.sort();
    assert_eq!(runs, want);

    // The other run's keys vanish while it is still advertised (a manager that
    // crashed after cleaning): the worker leaves it out instead of failing.
    let client = redis::Client::open(shared_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(format!("pitboss:{other_run}:q:{}", s.pool)).query_async(&mut raw).await.unwrap();
    other.refresh().await.unwrap();
    s.manager.publish(vec![suite::attempt(&s.run, &s.pool, "w")]).await.unwrap();
    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1, "the live run is still served");
    assert_eq!(jobs[0].entry.run, s.run);
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_to_a_plain_server_is_a_clear_error_not_a_panic() {
    if !broker_common::redis_server() {
        return;
    }
    let own = OwnRedis::start();
    let url = BrokerUrl::parse(&format!("rediss://127.0.0.1:{}", own.port)).unwrap();
    let t =
        RedisTransport::new(&url, None, RunScope { run: run_id("tls"), pools: vec![], manager: "h:1".into() }).unwrap();
    let err =
        tokio::time::timeout(Duration::from_secs(15), t.connect()).await.expect("fails, never hangs").unwrap_err();
    assert!(err.to_string().contains(&format!("rediss://127.0.0.1:{}", own.port)), "{err}");
}
