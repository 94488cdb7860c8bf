//! The manager's side on Redis: one run's queues, results and events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::Mutex;

use super::conn::{BlockingSlot, Conns, BLOCK_MS};
use super::keys::{self, MANAGER_GROUP, WORKERS_GROUP};
use super::reply;
use super::{encode, now_ms};
use crate::io::broker::url::{BrokerUrl, Password};
use crate::io::broker::wire::{self, AttemptMsg, Registration, WireError, WorkerMsg};
use crate::io::broker::{
    BoxFut, BrokerResult, EntryId, Inbound, InboundId, Reclaimed, RunScope, StopWhy, Transport, WorkerInfo,
};

/// Most entries claimed per XAUTOCLAIM call.
const CLAIM_BATCH: usize = 100;

/// [`Transport`] on Redis for one run.
pub struct RedisTransport {
    conns: Conns,
    scope: RunScope,
    /// This instance's mark in the meta hash: written at the first connect.
    epoch: String,
    /// True once this instance wrote the meta hash (so its absence means loss).
    wrote_meta: AtomicBool,
    /// Set by a connect that found the meta hash gone; cleared by `data_lost`.
    lost: AtomicBool,
    /// True after `ended` set a time to live on the run's keys, until a publish lifts it.
    ended: AtomicBool,
    results_conn: BlockingSlot,
    live_conn: BlockingSlot,
    /// Reading our own unacked results first (after a connect), from this id on;
    /// `None` once they are read, then new ones.
    results_backlog: std::sync::Mutex<Option<String>>,
    /// The last live entry seen.
    live_cursor: Mutex<String>,
    /// Results handed to the caller and not yet acked.
    handed: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl RedisTransport {
    /// A transport for `scope` on the Redis at `url` (no I/O until `connect`).
    pub fn new(url: &BrokerUrl, password: Option<&Password>, scope: RunScope) -> BrokerResult<RedisTransport> {
        Ok(RedisTransport {
            conns: Conns::new(url, password)?,
            scope,
            epoch: uuid::Uuid::new_v4().simple().to_string(),
            wrote_meta: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            results_conn: BlockingSlot::default(),
            live_conn: BlockingSlot::default(),
            results_backlog: std::sync::Mutex::new(Some("0".to_string())),
            live_cursor: Mutex::new("0-0".to_string()),
            handed: std::sync::Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn run(&self) -> &str {
        &self.scope.run
    }

    /// Every key of the run that lives until deleted (stop keys expire by themselves).
    fn run_keys(&self) -> Vec<String> {
        let pools = self.scope.pools.iter().map(|p| keys::queue(self.run(), &p.name));
        let own = [keys::results(self.run()), keys::live(self.run()), keys::meta(self.run())];
        pools.chain(own).collect()
    }

    /// `run_finished`: the run's keys expire in [`keys::ENDED_TTL_SECS`] unless it
    /// publishes again, so a manager killed after the end leaves nothing for ever.
    async fn do_ended(&self) -> BrokerResult<()> {
        let mut pipe = redis::pipe();
        for key in self.run_keys() {
            pipe.cmd("EXPIRE").arg(key).arg(keys::ENDED_TTL_SECS).ignore();
        }
        let mut conn = self.conns.cmd().await?;
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))?;
        self.ended.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn do_connect(&self) -> BrokerResult<()> {
        let mut conn = self.conns.connect().await?;
        self.results_conn.reset().await;
        self.live_conn.reset().await;
        let meta = keys::meta(self.run());
        let present: bool =
            redis::cmd("EXISTS").arg(&meta).query_async(&mut conn).await.map_err(|e| self.conns.err(e))?;
        if !present && self.wrote_meta.load(Ordering::SeqCst) {
            self.lost.store(true, Ordering::SeqCst);
        }
        let pools: Vec<serde_json::Value> = self
            .scope
            .pools
            .iter()
            .map(|p| serde_json::json!({"name": p.name, "capabilities": p.capabilities}))
            .collect();
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&meta)
            .arg("epoch")
            .arg(&self.epoch)
            .arg("pools")
            .arg(serde_json::Value::Array(pools).to_string())
            .arg("manager")
            .arg(&self.scope.manager)
            .ignore();
        for pool in &self.scope.pools {
            let q = keys::queue(self.run(), &pool.name);
            pipe.cmd("XGROUP").arg("CREATE").arg(q).arg(WORKERS_GROUP).arg("0").arg("MKSTREAM");
        }
        pipe.cmd("XGROUP").arg("CREATE").arg(keys::results(self.run())).arg(MANAGER_GROUP).arg("0").arg("MKSTREAM");
        // The groups may exist already (a reconnect, a resume): BUSYGROUP is fine, so
        // each reply is looked at rather than failing the pipeline.
        let replies: Vec<redis::RedisResult<Value>> = {
            let mut out = Vec::new();
            for cmd in pipe.cmd_iter() {
                out.push(cmd.query_async::<Value>(&mut conn).await);
            }
            out
        };
        for r in replies {
            if let Err(e) = r {
                if e.code() != Some("BUSYGROUP") {
                    return Err(self.conns.err(e));
                }
            }
        }
        // Our unacked results are read again after every connect: a reply lost with
        // the old connection would otherwise stay pending forever. Those already
        // handed out and not yet acked are skipped (`handed`), so none looks duplicated.
        self.wrote_meta.store(true, Ordering::SeqCst);
        *self.results_backlog.lock().unwrap_or_else(|p| p.into_inner()) = Some("0".to_string());
        // Live entries are lossy: start after the newest one, so a reconnect to a
        // restarted (empty) server does not wait for ids past its new ones.
        let newest: Value = redis::cmd("XREVRANGE")
            .arg(keys::live(self.run()))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.conns.err(e))?;
        *self.live_cursor.lock().await =
            reply::entries(&newest).first().map_or_else(|| "0-0".to_string(), |e| e.id.clone());
        self.do_refresh().await
    }

    async fn do_refresh(&self) -> BrokerResult<()> {
        let mut conn = self.conns.cmd().await?;
        let mut pipe = redis::pipe();
        let now = now_ms();
        // Runs whose manager stopped refreshing them a day ago (killed before a clean
        // exit) are dropped from the pool's list, so it does not grow for ever.
        let stale = now.saturating_sub(keys::ENDED_TTL_SECS * 1000);
        for pool in &self.scope.pools {
            pipe.cmd("ZADD").arg(keys::pool_runs(&pool.name)).arg(now).arg(self.run()).ignore();
            pipe.cmd("ZREMRANGEBYSCORE").arg(keys::pool_runs(&pool.name)).arg("-inf").arg(stale).ignore();
        }
        if self.scope.pools.is_empty() {
            return Ok(());
        }
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))
    }

    async fn do_publish(&self, jobs: Vec<AttemptMsg>) -> BrokerResult<Vec<EntryId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        // A finished run that runs again (a requeue from the TUI): its keys live again.
        let revive = self.ended.load(Ordering::SeqCst);
        if revive {
            for key in self.run_keys() {
                pipe.cmd("PERSIST").arg(key).ignore();
            }
        }
        for job in &jobs {
            let body = encode(self.conns.shown(), job)?;
            pipe.cmd("XADD").arg(keys::queue(&job.run, &job.pool)).arg("*").arg(wire::FIELD).arg(body);
        }
        let mut conn = self.conns.cmd().await?;
        let ids: Vec<String> = pipe.query_async(&mut conn).await.map_err(|e| self.conns.err(e))?;
        if revive {
            self.ended.store(false, Ordering::SeqCst);
        }
        Ok(jobs.into_iter().zip(ids).map(|(job, id)| EntryId { run: job.run, pool: job.pool, id }).collect())
    }

    async fn do_withdraw(&self, entries: Vec<EntryId>) -> BrokerResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for e in &entries {
            let q = keys::queue(&e.run, &e.pool);
            pipe.cmd("XACK").arg(&q).arg(WORKERS_GROUP).arg(&e.id).ignore();
            pipe.cmd("XDEL").arg(&q).arg(&e.id).ignore();
        }
        let mut conn = self.conns.cmd().await?;
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))
    }

    async fn do_read_inbound(&self, max: usize) -> BrokerResult<Vec<Inbound>> {
        let backlog = self.results_backlog.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(MANAGER_GROUP).arg(MANAGER_GROUP).arg("COUNT").arg(max.max(1));
        if backlog.is_none() {
            cmd.arg("BLOCK").arg(BLOCK_MS);
        }
        cmd.arg("STREAMS").arg(keys::results(self.run())).arg(backlog.as_deref().unwrap_or(">"));
        let value = self.results_conn.query(&self.conns, &cmd).await?;
        let entries: Vec<reply::Entry> = reply::streams(&value).into_iter().flat_map(|(_, e)| e).collect();
        if backlog.is_some() {
            // Page through the pending list by id; an empty page ends the backlog.
            *self.results_backlog.lock().unwrap_or_else(|p| p.into_inner()) = entries.last().map(|e| e.id.clone());
        }
        let entries: Vec<reply::Entry> = {
            let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
            entries.into_iter().filter(|e| handed.insert(e.id.clone())).collect()
        };
        Ok(entries
            .into_iter()
            .map(|e| Inbound { id: InboundId(e.id), msg: e.body.and_then(|b| wire::decode::<WorkerMsg>(&b)) })
            .collect())
    }

    async fn do_ack_inbound(&self, ids: Vec<InboundId>) -> BrokerResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        {
            let mut handed = self.handed.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter().for_each(|id| {
                handed.remove(&id.0);
            });
        }
        let results = keys::results(self.run());
        let mut ack = redis::cmd("XACK");
        ack.arg(&results).arg(MANAGER_GROUP);
        let mut del = redis::cmd("XDEL");
        del.arg(&results);
        for id in &ids {
            ack.arg(&id.0);
            del.arg(&id.0);
        }
        let mut pipe = redis::pipe();
        pipe.add_command(ack).ignore().add_command(del).ignore();
        let mut conn = self.conns.cmd().await?;
        pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))
    }

    async fn do_read_live(&self, max: usize) -> BrokerResult<Vec<Result<WorkerMsg, WireError>>> {
        let cursor = self.live_cursor.lock().await.clone();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(max.max(1))
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(keys::live(self.run()))
            .arg(&cursor);
        let value = self.live_conn.query(&self.conns, &cmd).await?;
        let entries: Vec<reply::Entry> = reply::streams(&value).into_iter().flat_map(|(_, e)| e).collect();
        if let Some(last) = entries.last() {
            *self.live_cursor.lock().await = last.id.clone();
        }
        Ok(entries.into_iter().map(|e| e.body.and_then(|b| wire::decode::<WorkerMsg>(&b))).collect())
    }

    async fn do_stop(&self, key: String, why: StopWhy) -> BrokerResult<()> {
        let mut conn = self.conns.cmd().await?;
        redis::cmd("SET")
            .arg(keys::stop(self.run(), &key))
            .arg(why.as_str())
            .arg("EX")
            .arg(keys::STOP_TTL_SECS)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| self.conns.err(e))
    }

    async fn do_reclaim(&self, lease: Duration) -> BrokerResult<Vec<Reclaimed>> {
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conns.cmd().await?;
        let mut out = Vec::new();
        for pool in &self.scope.pools {
            let q = keys::queue(self.run(), &pool.name);
            // Who held what, for the `worker_lost` record (XAUTOCLAIM does not say). No IDLE
            // filter: an entry crossing the lease between the two calls must be named too.
            let pending: Value = redis::cmd("XPENDING")
                .arg(&q)
                .arg(WORKERS_GROUP)
                .arg("-")
                .arg("+")
                .arg(CLAIM_BATCH * 10)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))?;
            let holders: HashMap<String, (String, u64)> = reply::items(&pending)
                .iter()
                .filter_map(|p| match reply::items(p) {
                    [id, consumer, _idle, count] => Some((
                        reply::text(id)?,
                        (reply::text(consumer)?, reply::int(count).and_then(|c| u64::try_from(c).ok())?),
                    )),
                    _ => None,
                })
                .collect();
            let mut cursor = "0-0".to_string();
            loop {
                let claimed: Value = redis::cmd("XAUTOCLAIM")
                    .arg(&q)
                    .arg(WORKERS_GROUP)
                    .arg(MANAGER_GROUP)
                    .arg(lease_ms)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(CLAIM_BATCH)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.conns.err(e))?;
                let parts = reply::items(&claimed);
                let next = parts.first().and_then(reply::text).unwrap_or_else(|| "0-0".to_string());
                let entries = parts.get(1).map(reply::entries).unwrap_or_default();
                let deleted: Vec<String> =
                    parts.get(2).map(|d| reply::items(d).iter().filter_map(reply::text).collect()).unwrap_or_default();
                // Taken back entries leave the queue at once (the caller republishes
                // under a new dispatch), so a late heartbeat cannot claim them again.
                let ids: Vec<&str> =
                    entries.iter().map(|e| e.id.as_str()).chain(deleted.iter().map(String::as_str)).collect();
                if !ids.is_empty() {
                    let mut pipe = redis::pipe();
                    pipe.cmd("XACK").arg(&q).arg(WORKERS_GROUP).arg(&ids).ignore();
                    pipe.cmd("XDEL").arg(&q).arg(&ids).ignore();
                    pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))?;
                }
                for e in entries {
                    let (worker, deliveries) = holders.get(&e.id).cloned().map_or((None, 1), |(w, c)| (Some(w), c));
                    out.push(Reclaimed {
                        entry: EntryId { run: self.run().to_string(), pool: pool.name.clone(), id: e.id },
                        worker,
                        deliveries,
                        msg: e.body.and_then(|b| wire::decode::<AttemptMsg>(&b)),
                    });
                }
                if next == "0-0" || next.is_empty() {
                    break;
                }
                cursor = next;
            }
        }
        Ok(out)
    }

    async fn do_workers(&self) -> BrokerResult<Vec<WorkerInfo>> {
        let mut conn = self.conns.cmd().await?;
        let mut seen: Vec<(String, u64, String)> = Vec::new();
        for pool in &self.scope.pools {
            let zkey = keys::pool_workers(&pool.name);
            let forget_before = now_ms().saturating_sub(keys::WORKER_FORGET_MS);
            let (members,): (Value,) = redis::pipe()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&zkey)
                .arg("-inf")
                .arg(forget_before)
                .ignore()
                .cmd("ZRANGE")
                .arg(&zkey)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))?;
            for (member, score) in reply::pairs(&members) {
                // RESP2 gives the score as text, RESP3 as a double.
                let score = match score {
                    Value::Double(d) => Some(*d),
                    other => reply::text(other).and_then(|t| t.parse::<f64>().ok()),
                };
                let (Some(id), Some(score)) = (reply::text(member), score) else {
                    continue;
                };
                let seen_ms = if score.is_finite() && score >= 0.0 { score as u64 } else { 0 };
                seen.push((id, seen_ms, pool.name.clone()));
            }
        }
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        let regs: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(seen.iter().map(|(id, _, _)| keys::worker(id)).collect::<Vec<_>>())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.conns.err(e))?;
        Ok(seen
            .into_iter()
            .zip(regs)
            .map(|((id, seen_ms, pool), reg)| {
                let (registration, alive) = match reg.map(|b| wire::decode::<Registration>(&b)) {
                    Some(Ok(r)) => (r, true),
                    // Expired (vanished), or unreadable: shown by id only.
                    _ => (placeholder(&id, pool), false),
                };
                WorkerInfo { registration, seen_ms, alive }
            })
            .collect())
    }
}

/// What is known of a worker whose registration expired: its id and (by the zset) pool.
fn placeholder(id: &str, pool: String) -> Registration {
    let mut parts = id.split(':');
    Registration {
        worker: id.to_string(),
        pool,
        capabilities: Vec::new(),
        host: parts.next().unwrap_or_default().to_string(),
        pid: parts.next().and_then(|p| p.parse().ok()).unwrap_or(0),
        version: String::new(),
        concurrency: 0,
        state: wire::WorkerState::Idle,
        ttl_ms: 0,
    }
}

impl Transport for RedisTransport {
    fn describe(&self) -> &str {
        self.conns.shown()
    }

    fn connect(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_connect())
    }

    fn data_lost(&self) -> BoxFut<'_, BrokerResult<bool>> {
        Box::pin(async move {
            let mut conn = self.conns.cmd().await?;
            let present: bool = redis::cmd("EXISTS")
                .arg(keys::meta(self.run()))
                .query_async(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))?;
            let latched = self.lost.swap(false, Ordering::SeqCst);
            Ok(latched || (!present && self.wrote_meta.load(Ordering::SeqCst)))
        })
    }

    fn refresh(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_refresh())
    }

    fn publish(&self, jobs: Vec<AttemptMsg>) -> BoxFut<'_, BrokerResult<Vec<EntryId>>> {
        Box::pin(self.do_publish(jobs))
    }

    fn withdraw(&self, entries: Vec<EntryId>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_withdraw(entries))
    }

    fn read_inbound(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Inbound>>> {
        Box::pin(self.do_read_inbound(max))
    }

    fn ack_inbound(&self, ids: Vec<InboundId>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_ack_inbound(ids))
    }

    fn read_live(&self, max: usize) -> BoxFut<'_, BrokerResult<Vec<Result<WorkerMsg, WireError>>>> {
        Box::pin(self.do_read_live(max))
    }

    fn stop(&self, key: String, why: StopWhy) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_stop(key, why))
    }

    fn reclaim(&self, lease: Duration) -> BoxFut<'_, BrokerResult<Vec<Reclaimed>>> {
        Box::pin(self.do_reclaim(lease))
    }

    fn workers(&self) -> BoxFut<'_, BrokerResult<Vec<WorkerInfo>>> {
        Box::pin(self.do_workers())
    }

    fn publish_event(&self, line: Arc<str>) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut conn = self.conns.cmd().await?;
            redis::cmd("PUBLISH")
                .arg(keys::events(self.run()))
                .arg(&*line)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| self.conns.err(e))
        })
    }

    fn ended(&self) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(self.do_ended())
    }

    fn finish(&self, clean: bool) -> BoxFut<'_, BrokerResult<()>> {
        Box::pin(async move {
            let mut conn = self.conns.cmd().await?;
            let mut pipe = redis::pipe();
            for pool in &self.scope.pools {
                pipe.cmd("ZREM").arg(keys::pool_runs(&pool.name)).arg(self.run()).ignore();
                if clean {
                    pipe.cmd("DEL").arg(keys::queue(self.run(), &pool.name)).ignore();
                }
            }
            if clean {
                // Stop keys expire by themselves (no SCAN: it would need more ACL).
                pipe.cmd("DEL")
                    .arg(keys::results(self.run()))
                    .arg(keys::live(self.run()))
                    .arg(keys::meta(self.run()))
                    .ignore();
            } else if self.scope.pools.is_empty() {
                return Ok(());
            }
            pipe.query_async::<()>(&mut conn).await.map_err(|e| self.conns.err(e))
        })
    }
}
