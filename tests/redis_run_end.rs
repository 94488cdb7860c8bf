//! A finished run's keys on a real Redis (issue 16, h7's rough edge 5): they get a
//! time to live once `run_finished` is durable, so a manager killed after the end
//! leaves nothing for ever; a run that publishes again lifts it. The shared server on
//! :6379, keys under a random run id, deleted after.

mod broker_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_common::{run_id, suite, SHARED_REDIS};
use pitboss::io::broker::redis::{keys, RedisTransport, RedisWorkerTransport};
use pitboss::io::broker::url::BrokerUrl;
use pitboss::io::broker::wire::{OutputStream, WorkerMsg};
use pitboss::io::broker::{PoolOffer, RunScope, Transport, WorkerScope, WorkerTransport};

/// Deletes every key of the test's run and pool when dropped (the server is shared).
struct Setup {
    url: String,
    run: String,
    pool: String,
}

impl Setup {
    fn new() -> Setup {
        let run = run_id("end");
        Setup { url: format!("redis://{SHARED_REDIS}"), pool: format!("pool-{run}"), run }
    }

    fn manager(&self, name: &str) -> RedisTransport {
        let scope = RunScope {
            run: self.run.clone(),
            pools: vec![PoolOffer { name: self.pool.clone(), capabilities: vec![] }],
            manager: name.into(),
        };
        RedisTransport::new(&BrokerUrl::parse(&self.url).unwrap(), None, scope).unwrap()
    }

    fn worker(&self) -> RedisWorkerTransport {
        let scope = WorkerScope { worker: self.run.clone(), pool: self.pool.clone() };
        RedisWorkerTransport::new(&BrokerUrl::parse(&self.url).unwrap(), None, scope).unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) else {
            return;
        };
        for pattern in [format!("pitboss:{}:*", self.run), format!("pitboss:pool:{}:*", self.pool)] {
            let found: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
            if !found.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(found).query(&mut conn);
            }
        }
    }
}

/// The time to live of each key, in seconds (-1: none, -2: absent).
fn ttls(url: &str, keys: &[String]) -> Vec<i64> {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    keys.iter().map(|k| redis::cmd("TTL").arg(k).query(&mut conn).unwrap()).collect()
}

fn run_keys(s: &Setup) -> Vec<String> {
    vec![keys::queue(&s.run, &s.pool), keys::results(&s.run), keys::live(&s.run), keys::meta(&s.run)]
}

#[tokio::test]
async fn a_finished_run_s_keys_expire_unless_it_publishes_again() {
    if !broker_common::redis() {
        return;
    }
    let s = Setup::new();
    let url = s.url.clone();
    let (manager, worker) = (s.manager("testhost:1"), s.worker());
    manager.connect().await.unwrap();
    worker.connect().await.unwrap();
    manager.publish(vec![suite::attempt(&s.run, &s.pool, "a")]).await.unwrap();
    let output =
        WorkerMsg::Output { key: "a.1".into(), worker: "w".into(), stream: OutputStream::Stdout, text: "x".into() };
    worker.report(&s.run, output).await.unwrap();
    let keys = run_keys(&s);
    assert_eq!(ttls(&url, &keys), vec![-1; 4], "a live run's keys do not expire");
    manager.ended().await.unwrap();
    let after = ttls(&url, &keys);
    assert!(after.iter().all(|t| (1..=86_400).contains(t)), "every key expires after the end: {after:?}");
    // A requeue after the end runs the run again: its keys live again.
    manager.publish(vec![suite::attempt(&s.run, &s.pool, "b")]).await.unwrap();
    assert_eq!(ttls(&url, &keys), vec![-1; 4], "publishing again lifts the expiry");
}

#[tokio::test]
async fn the_runner_sets_the_expiry_when_run_finished_is_durable() {
    use pitboss::core::Event;
    use pitboss::io::broker::link::{Link, LinkConfig};
    use pitboss::io::journal::Record;
    use pitboss::io::runner::{remote::BrokerRunner, LocalRunner};
    if !broker_common::redis() {
        return;
    }
    let s = Setup::new();
    let url = s.url.clone();
    let manager = s.manager("testhost:3");
    let lease = Duration::from_secs(30);
    let (link, notices) = Link::connect(Arc::new(manager), LinkConfig::new(lease)).await.unwrap();
    let (runner, _inputs) = BrokerRunner::start(LocalRunner::new(), link, notices, s.run.clone(), url.clone(), lease);
    let meta = vec![keys::meta(&s.run)];
    assert_eq!(ttls(&url, &meta), vec![-1]);
    runner.committed(&[Record { seq: 9, ts: 1, event: Event::RunFinished { success: true } }]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ttls(&url, &meta)[0] < 0 {
        assert!(Instant::now() < deadline, "no expiry set 10 s after run_finished was committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_pool_s_worker_list_expires_when_no_worker_refreshes_it() {
    if !broker_common::redis() {
        return;
    }
    let s = Setup::new();
    let worker = s.worker();
    worker.connect().await.unwrap();
    worker.register(&suite::registration(&s.run, &s.pool)).await.unwrap();
    // A worker killed now never says goodbye: its pool's list must not stay for ever.
    let list = vec![keys::pool_workers(&s.pool)];
    let ttl = ttls(&s.url, &list)[0];
    let forget = (keys::WORKER_FORGET_MS / 1000) as i64;
    assert!((1..=forget).contains(&ttl), "the pool's worker list expires (ttl {ttl} s)");
}
