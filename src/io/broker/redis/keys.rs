//! The key layout on Redis (plan §2): everything under `pitboss:`, so an ACL of
//! `~pitboss:* &pitboss:*` is enough for a worker. Names from workflows and workers are
//! escaped (`%` and `:`), so a pool called `a:runs` cannot collide with another key.

/// Consumer group of workers on each pool queue.
pub const WORKERS_GROUP: &str = "workers";
/// Consumer group (and consumer) of the manager on the results stream.
pub const MANAGER_GROUP: &str = "manager";
/// Approximate length kept of the live stream (heartbeats and output are lossy).
pub const LIVE_MAXLEN: usize = 10_000;
/// Seconds a stop request stays.
pub const STOP_TTL_SECS: u64 = 3600;
/// A run whose manager refreshed it longer ago than this is not served by workers.
pub const RUN_FRESH_MS: u64 = 60_000;
/// How long a finished run's keys stay when its manager does not exit cleanly (a
/// TUI left open, or killed after the end); also how long a pool keeps listing a
/// run whose manager stopped refreshing it.
pub const ENDED_TTL_SECS: u64 = 86_400;
/// Worker entries of a pool older than this are pruned by the manager.
pub const WORKER_FORGET_MS: u64 = 3_600_000;

/// Escapes a name for use inside a key.
pub fn esc(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

/// The pool's attempt queue of a run.
pub fn queue(run: &str, pool: &str) -> String {
    format!("pitboss:{}:q:{}", esc(run), esc(pool))
}

/// The run's results stream.
pub fn results(run: &str) -> String {
    format!("pitboss:{}:results", esc(run))
}

/// The run's live stream (heartbeats, output).
pub fn live(run: &str) -> String {
    format!("pitboss:{}:live", esc(run))
}

/// The run's pub/sub channel of committed records.
pub fn events(run: &str) -> String {
    format!("pitboss:{}:events", esc(run))
}

/// The stop request of one attempt.
pub fn stop(run: &str, key: &str) -> String {
    format!("pitboss:{}:stop:{}", esc(run), esc(key))
}

/// The run's meta hash (its absence after a reconnect means the data was lost).
pub fn meta(run: &str) -> String {
    format!("pitboss:{}:meta", esc(run))
}

/// The live runs of a pool (zset run → manager's refresh time), for discovery.
pub fn pool_runs(pool: &str) -> String {
    format!("pitboss:pool:{}:runs", esc(pool))
}

/// The workers of a pool (zset worker → last seen).
pub fn pool_workers(pool: &str) -> String {
    format!("pitboss:pool:{}:workers", esc(pool))
}

/// One worker's registration.
pub fn worker(id: &str) -> String {
    format!("pitboss:worker:{}", esc(id))
}

/// The run and pool of a queue key (the inverse of [`queue`]).
pub fn parse_queue(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix("pitboss:")?;
    let (run, pool) = rest.split_once(":q:")?;
    Some((unesc(run)?, unesc(pool)?))
}

fn unesc(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3)? {
            "25" => out.push('%'),
            "3A" => out.push(':'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_round_trip_through_escapes() {
        for (run, pool) in [("r1", "p"), ("a:q:b", "x%3A:runs"), ("r", "")] {
            assert_eq!(parse_queue(&queue(run, pool)), Some((run.to_string(), pool.to_string())));
        }
        assert_ne!(pool_runs("a:runs"), pool_runs("a"));
    }
}
