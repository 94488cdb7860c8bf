//! The socket's read-only queries: `status`, `tasks [FILTER]`, `task ID`. They answer
//! from the engine's state, read between its batches (and, for one task, its history
//! from the log and the tails of its output files).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::core::breaker::Circuit;
use crate::core::{RunState, Task, TaskStateName};
use crate::io::rundir::OUTPUT_DIR;
use crate::io::segments;

/// `status`: the run id, counts per state, the pools, and whether the run is over.
pub fn status(state: &RunState) -> (String, Value) {
    let mut counts = Map::new();
    for name in TaskStateName::ALL {
        counts.insert(name.as_str().to_string(), json!(state.count(name)));
    }
    let pools: Vec<Value> = state
        .workflow
        .pools
        .iter()
        .zip(&state.pools)
        .enumerate()
        .map(|(p, (spec, live))| {
            json!({
                "name": spec.name,
                "running": live.running,
                // Broker runs: of those running, dispatched but not started by a
                // worker yet (on the broker or read ahead); and the live workers' slots.
                "waiting_remote": state.pool_waiting_remote(p),
                "slots": state.pool_slots(p),
                "queued": live.queued,
                "concurrency": live.concurrency,
                "paused": live.paused,
                "breaker": match live.breaker.circuit {
                    Circuit::Closed => json!({"state": "closed"}),
                    Circuit::Open { until_ms } => json!({"state": "open", "until_ms": until_ms}),
                    Circuit::HalfOpen { .. } => json!({"state": "half_open"}),
                },
            })
        })
        .collect();
    let held = state.count(TaskStateName::AwaitingApproval);
    let summary = TaskStateName::ALL
        .iter()
        .filter(|n| state.count(**n) > 0)
        .map(|n| format!("{} {}", state.count(*n), n.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let phase = if state.finished {
        "finished"
    } else if state.interrupted {
        "interrupted"
    } else {
        "running"
    };
    let (broker, workers) = remote_status(state);
    let mut message = format!("run {} ({phase}): {summary}", state.run_id);
    if let Some(b) = broker.as_object() {
        let up = if b["up"] == true { "up" } else { "DOWN" };
        let live = workers.iter().filter(|w| w["presence"] == "live").count();
        message.push_str(&format!("; broker {} {up}, {live} worker(s)", b["url"].as_str().unwrap_or("")));
    }
    // What the run spent and its budget (DESIGN §13), when any usage or budget.
    let spend = state.spend_json();
    if let (Some(max), true) = (state.max_cost_usd(), state.spend.exhausted) {
        message.push_str(&format!(
            "; BUDGET SPENT {}/{max}: no new attempt starts (ctl budget --max-cost-usd N)",
            state.spend.run.cost_usd
        ));
    } else if state.spend.reported {
        message.push_str(&format!("; spent {}", state.spend.run.cost_usd));
    }
    let data = json!({
        "spend": spend,
        "broker": broker,
        "workers": workers,
        "run_id": state.run_id,
        "workflow": state.workflow.name,
        "counts": counts,
        "pools": pools,
        "finished": state.finished,
        "interrupted": state.interrupted,
        "held": held,
    });
    (message, data)
}

/// A broker run's link (its redacted URL, up or down and since when) and its
/// registered workers; `null` and `[]` for a run without a broker. The URL is the
/// workflow's, which never holds a password (the config refuses one).
fn remote_status(state: &RunState) -> (Value, Vec<Value>) {
    let Some(spec) = &state.workflow.broker else { return (Value::Null, Vec::new()) };
    let link = state.remote.link.as_ref();
    let broker = json!({
        "url": link.map_or(spec.url.as_str(), |l| l.broker.as_str()),
        "up": link.is_none_or(|l| l.up),
        "since_ms": link.map(|l| l.since_ms),
        "reason": link.map(|l| l.reason.as_str()).filter(|r| !r.is_empty()),
    });
    let workers = state
        .remote
        .workers
        .iter()
        .map(|(id, w)| {
            let r = &w.registration;
            let (presence, gone) = match &w.presence {
                crate::core::state::remote::Presence::Live => ("live", Value::Null),
                crate::core::state::remote::Presence::Unknown => ("unknown", Value::Null),
                crate::core::state::remote::Presence::Gone { since_ms, reason } => {
                    ("gone", json!({"since_ms": since_ms, "reason": reason}))
                }
            };
            json!({
                "id": id,
                "pool": r.pool,
                "host": r.host,
                "pid": r.pid,
                "concurrency": r.concurrency,
                "capabilities": r.capabilities,
                "seen_ms": w.seen_ms,
                "presence": presence,
                "gone": gone,
            })
        })
        .collect();
    (broker, workers)
}

/// `tasks [FILTER]`: every task whose id, state or pool contains the filter (`held`
/// names the tasks awaiting approval).
pub fn tasks(state: &RunState, filter: &str) -> (String, Value) {
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for (i, task) in state.tasks.iter().enumerate() {
        let id = state.task_id(i);
        let name = task.state.name().as_str();
        let pool = task.pool.as_deref().unwrap_or_default();
        // "held" is the word the header and `status` use for awaiting_approval.
        let held = filter == "held" && name == "awaiting_approval";
        if !filter.is_empty() && !held && ![id, name, pool].iter().any(|w| w.contains(filter)) {
            continue;
        }
        let why = task.why();
        lines.push(format!("{id}  {name}  attempts {}  {pool}  {}", task.attempts, why.clone().unwrap_or_default()));
        rows.push(json!({"id": id, "state": name, "attempts": task.attempts, "pool": task.pool, "why": why}));
    }
    (lines.join("\n"), Value::Array(rows))
}

/// `task ID`: state, history (its records from the log), result and output tails;
/// while an attempt runs, also `output.live`: the last lines it printed (`recent`,
/// kept in memory: a small output is in no file until the attempt ends).
pub fn task(task: &Task, dir: &Path, id: &str, recent: Option<String>) -> Result<(String, Value), String> {
    let mut history = Vec::new();
    segments::scan(dir, |rec, _| {
        if rec.event.task() == Some(id) {
            history.push(json!({"seq": rec.seq, "ts": rec.ts, "event": rec.event}));
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let mut output = Map::new();
    if task.attempts > 0 {
        for stream in ["stdout", "stderr"] {
            let path = dir.join(OUTPUT_DIR).join(format!("{id}.{}.{stream}", task.attempts));
            output.insert(stream.to_string(), json!(tail_lines(&path, 20)));
        }
    }
    if let Some(text) = recent {
        let lines: Vec<&str> = text.lines().collect();
        output.insert("live".to_string(), json!(lines[lines.len().saturating_sub(20)..]));
    }
    let name = task.state.name().as_str();
    let message = format!(
        "{id}: {name}, {} attempt(s){}",
        task.attempts,
        task.why().map(|w| format!(": {w}")).unwrap_or_default()
    );
    let data = json!({
        "id": id,
        "state": name,
        "attempts": task.attempts,
        "pool": task.pool,
        "why": task.why(),
        "result": task.result,
        "history": history,
        "output": output,
    });
    Ok((message, data))
}

/// The last `n` lines of a file, reading at most its last 64 KiB.
fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}
