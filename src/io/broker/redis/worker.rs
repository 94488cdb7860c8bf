//! `pitboss worker`'s side on Redis: discovery of its pool's live runs, reads from all
//! their queues at once, heartbeats that keep deliveries from being reclaimed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::Mutex;

use super::conn::{BlockingSlot, Conns, BLOCK_MS};
use super::keys::{self, WORKERS_GROUP};
use super::reply;
use super::{encode, now_ms};
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::wire::{self, AttemptMsg, Registration, StopWhy, WorkerMsg};
use crate::io::broker::{BoxFut, BrokerResult, EntryId, Job, Running, StopNotice, WorkerScope, WorkerTransport};

/// How long a run whose queue has no group is left out of reads (its data is gone:
/// finished and cleaned, or a restarted server), before trying it again.
const SKIP_FOR: Duration = Duration::from_secs(30);

/// [`WorkerTransport`] on Redis for one worker of one pool.
pub struct RedisWorkerTransport {
    conns: Conns,
    scope: WorkerScope,
    jobs_conn: BlockingSlot,
    /// Runs left out of reads until the instant given.
    skipped: Mutex<HashMap<String, Instant>>,
}

impl RedisWorkerTransport {
    /// A worker transport on the Redis at `url` (no I/O until `connect`).
    pub fn new(url: &BrokerUrl, password: Option<&Password>, scope: WorkerScope) -> BrokerResult<RedisWorkerTransport> {
        Ok(RedisWorkerTransport {
            conns: Conns::new(url, password)?,
            scope,
            jobs_conn: BlockingSlot::default(),
            skipped: Mutex::new(HashMap::new()),
        })
    }

    /// Runs of the pool whose manager refreshed them recently, minus skipped ones.
    async fn live_runs(&self) -> BrokerResult<Vec<String>> {
        let mut conn = self.conns.cmd().await?;
        let since = now_ms().saturating_sub(keys::RUN_FRESH_MS);
        let runs: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys::pool_runs(&self.scope.pool))
            .arg(since)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.conns.err(e))?;
        let mut skipped = self.skipped.lock().await;
        let now = Instant::now();
        skipped.retain(|_, until| *until > now);
        Ok(runs.into_iter().filter(|r| !skipped.contains_key(r)).collect())
    }

    async fn do_next_jobs(&self, free: usize) -> BrokerResult<Vec<Job>> {
        let runs = self.live_runs().await?;
        if runs.is_empty() || free == 0 {
            // Nothing to read: wait as a blocking read would, so callers can loop.
            tokio::time::sleep(Duration::from_millis(BLOCK_MS as u64)).await;
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(WORKERS_GROUP)
            .arg(&self.scope.worker)
            .arg("COUNT")
            .arg(free)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS");
        for run in &runs {
            cmd.arg(keys::queue(run, &self.scope.pool));
        }
        for _ in &runs {
            cmd.arg(">");
        }
        let value = match self.jobs_conn.query(&self.conns, &cmd).await {
            Ok(v) => v,
            // One of the runs has no group any more (NOGROUP), or its queue was
            // deleted while this read waited on it (UNBLOCKED: the run ended and its
            // manager cleaned up, the normal end of every run): find it by probing
            // each and leave it out for a while. Nothing to report: no job was lost.
            Err(e) if is_groupless(&e) => {
                self.skip_groupless(&runs).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut jobs = Vec::new();
        for (stream, entries) in reply::streams(&value) {
            let Some((run, pool)) = keys::parse_queue(&stream) else {
                continue;
            };
            for e in entries {
                jobs.push(Job {
                    entry: EntryId { run: run.clone(), pool: pool.clone(), id: e.id },
                    deliveries: 1,
                    msg: e.body.and_then(|b| wire::decode::<AttemptMsg>(&b)),
                });
            }
        }
        Ok(jobs)
    }

    async fn skip_groupless(&self, runs: &[String]) -> BrokerResult<()> {
        let mut conn = self.conns.cmd().await?;
        for run in runs {
            let probe = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(keys::queue(run, &self.scope.pool))
                .query_async::<Value>(&mut conn)
                .await;
            let has_group = match &probe {
                Ok(v) => reply::items(v).iter().any(|g| {
                    reply::pairs(g).iter().any(|(k, v)| {
                        reply::text(k).as_deref() == Some("name") && reply::text(v).as_deref() == Some(WORKERS_GROUP)
                    })
                }),
                Err(_) => false,
            };
            if !has_group {
                self.skipped.lock().await.insert(run.clone(), Instant::now() + SKIP_FOR);
            }
        }
        Ok(())
    }

    async fn do_heartbeat(&self, registration: &Registration, running: Vec<Running>) -> BrokerResult<Vec<StopNotice>> {
        let body = encode(self.conns.shown(), registration)?;
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(keys::worker(&self.scope.worker)).arg(body).arg("PX").arg(registration.ttl_ms).ignore();
        pipe.cmd("ZADD").arg(keys::pool_workers(&self.scope.pool)).arg(now_ms()).arg(&self.scope.worker).ignore();
        // The pool's list outlives its last worker by as long as a manager keeps a
        // silent member (a killed worker never says goodbye): then it goes by itself.
        pipe.cmd("PEXPIRE").arg(keys::pool_workers(&self.scope.pool)).arg(keys::WORKER_FORGET_MS).ignore();
        // XCLAIM to ourselves with min idle 0 and JUSTID resets the delivery's idle
        // time without counting a delivery: the manager's lease starts over.
        for r in &running {
            pipe.cmd("XCLAIM")
                .arg(keys::queue(&r.entry.run, &r.entry.pool))
                .arg(WORKERS_GROUP)
                .arg(&self.scope.worker)
                .arg(0)
                .arg(&r.entry.id)
                .arg("JUSTID")
                .ignore();
        }
        if !running.is_empty() {
            pipe.cmd("MGET").arg(running.iter().map(|r| keys::stop(&r.entry.run, &r.key)).collect::<Vec<_>>());
        }
        let mut conn = self.conns.cmd().await?;
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(|e| self.conns.err(e))?;
        let Some(stops) = replies.first() else {
            return Ok(Vec::new());
        };
        Ok(running
            .into_iter()
            .zip(reply::items(stops))
            .filter_map(|(r, v)| {
                let why = StopWhy::parse(&reply::text(v)?)?;
                Some(StopNotice { run: r.entry.run, key: r.key, why })
            })
            .collect())
    }

    async fn do_report(&self, run: &str, msg: WorkerMsg) -> BrokerResult<()> {
        let body = encode(self.conns.shown(), &msg)?;
        let mut cmd = redis::cmd("XADD");
        if msg.is_durable() {
            cmd.arg(keys::results(run));
        } else {
            cmd.arg(keys::live(run)).arg("MAXLEN").arg("~").arg(keys::LIVE_MAXLEN);
        }
        cmd.arg("*").arg(wire::FIELD).arg(body);
        let mut conn = self.conns.cmd().await?;
        cmd.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))
    }
}

/// True for a read that failed because a run's queue or group is gone (the run
/// ended and was cleaned, or the server lost it), rather than the broker failing.
fn is_groupless(e: &crate::io::broker::BrokerError) -> bool {
    match e {
        crate::io::broker::BrokerError::DataLost { .. } => true,
        crate::io::broker::BrokerError::Protocol { detail, .. } => detail.contains("UNBLOCKED"),
        _ => false,
    }
}

impl WorkerTransport for RedisWorkerTransport {
    fn describe(&self) -> &str {
        self.conns.shown()
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            self.conns.connect().await?;
            self.jobs_conn.reset().await;
            self.skipped.lock().await.clear();
            Ok(())
        })
    }

    fn register(&self, registration: &Registration) -> BoxFut<'_, BrokerResult<()>> {
        let registration = registration.clone();
        Box::pin(async move { self.do_heartbeat(&registration, Vec::new()).await.map(|_| ()) })
    }

    fn unregister(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut conn = self.conns.cmd().await?;
            redis::pipe()
                .cmd("DEL")
                .arg(keys::worker(&self.scope.worker))
                .ignore()
                .cmd("ZREM")
                .arg(keys::pool_workers(&self.scope.pool))
                .arg(&self.scope.worker)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))
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
        Box::pin(async move { self.do_heartbeat(&registration, running).await })
    }

    fn report(&self, run: &str, msg: WorkerMsg) -> BoxFut<'_, BrokerResult<()>> {
        let run = run.to_string();
        Box::pin(async move { self.do_report(&run, msg).await })
    }

    fn ack_job(&self, entry: EntryId) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut conn = self.conns.cmd().await?;
            redis::cmd("XACK")
                .arg(keys::queue(&entry.run, &entry.pool))
                .arg(WORKERS_GROUP)
                .arg(&entry.id)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))
        })
    }
}
