//! The router: the link's notices, each handed to the attempt it answers (results,
//! starts, output, reclaims) or turned into the engine's broker inputs; and the
//! mapping of a worker's messages to the core's outcomes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{lock, new_dispatch, Book, Heard, LinkOps, Waiter};
use crate::core::decide::Outcome;
use crate::core::event::{WorkerRef, WorkerRegistered};
use crate::core::{FailureClass, Input, SmallOutput};
use crate::io::broker::link::{Gone, Notice};
use crate::io::broker::wire::{
    HandbackWhy, OutcomeStatus, OutputStream, RemoteOutcome, SpawnLines, StopWhy, StoppedRemains,
};
use crate::io::broker::{AttemptMsg, InboundId, WorkerMsg};
use crate::io::runner::{millis, AttemptEnd, Remains, RemoteStart, Stop};

pub(super) fn stop_why(stop: Stop) -> StopWhy {
    match stop {
        Stop::Cancel => StopWhy::Cancel,
        Stop::Interrupt => StopWhy::Interrupt,
        Stop::Timeout => StopWhy::Timeout,
        Stop::Stalled => StopWhy::Stalled,
    }
}

fn from_why(why: StopWhy) -> Stop {
    match why {
        StopWhy::Cancel | StopWhy::Superseded => Stop::Cancel,
        StopWhy::Interrupt => Stop::Interrupt,
        StopWhy::Timeout => Stop::Timeout,
        StopWhy::Stalled => Stop::Stalled,
    }
}

/// The worker's outcome as the core's.
fn outcome(o: RemoteOutcome) -> AttemptEnd {
    let output = SmallOutput { stdout: o.stdout, stderr: o.stderr };
    let outcome = match o.status {
        OutcomeStatus::Success => Outcome::Success {
            result: o.result.unwrap_or(Value::Null),
            exit_code: o.exit_code,
            duration_ms: o.duration_ms,
            output,
        },
        OutcomeStatus::Failure => Outcome::Failure {
            class: o.class.and_then(|c| serde_json::from_value(Value::String(c)).ok()).unwrap_or(FailureClass::Worker),
            error: o.error.unwrap_or_else(|| "failed on its worker".into()),
            exit_code: o.exit_code,
            signal: o.signal,
            duration_ms: o.duration_ms,
            output,
        },
    };
    match o.spawn {
        Some(SpawnLines::Tasks(tasks)) => AttemptEnd::Planned(outcome, Ok(tasks)),
        Some(SpawnLines::Refused(why)) => AttemptEnd::Planned(outcome, Err(why)),
        None => AttemptEnd::Outcome(outcome),
    }
}

fn remains(r: StoppedRemains) -> Remains {
    Remains {
        exit_code: r.exit_code,
        signal: r.signal,
        duration_ms: r.duration_ms,
        output: SmallOutput { stdout: r.stdout, stderr: r.stderr },
    }
}

/// `TASK.N` back to (task, N) for a key no attempt of this manager knows (a result
/// of an attempt interrupted before a restart).
fn parse_key(key: &str) -> (String, u32) {
    match key.rsplit_once('.').and_then(|(t, n)| Some((t, n.parse().ok()?))) {
        Some((task, n)) => (task.replace('~', "/"), n),
        None => (key.to_string(), 0),
    }
}

/// Reads the link's notices until it ends (see the module's notes).
pub(super) async fn route(
    mut notices: mpsc::UnboundedReceiver<Notice>,
    book: Arc<Mutex<Book>>,
    inputs: mpsc::UnboundedSender<Input>,
    broker: String,
    ops: LinkOps,
    lease: Duration,
    early_loss: bool,
) {
    while let Some(notice) = notices.recv().await {
        match notice {
            Notice::Published(list) => {
                let mut b = lock(&book);
                for p in list {
                    // A publication whose attempt ended meanwhile is withdrawn with it.
                    match b.waiters.get(&p.key) {
                        Some(w) if w.msg.dispatch == p.dispatch => {
                            b.entries.insert(p.key, p.entry);
                        }
                        _ => {
                            let task = b.known.get(&p.key).map(|(t, _)| t.clone()).unwrap_or_default();
                            let (_, entries) = b.pending.entry(task).or_default();
                            entries.push(p.entry);
                        }
                    }
                }
            }
            Notice::Inbound(list) => {
                for inbound in list {
                    match inbound.msg {
                        Ok(msg) => {
                            if let Some(late) = deliver(&book, &ops, inbound.id, msg) {
                                let _ = inputs.send(late);
                            }
                        }
                        Err(e) => {
                            tracing::warn!("broker: unreadable result skipped: {e}");
                            ops.ack(vec![inbound.id]);
                        }
                    }
                }
            }
            Notice::Live(list) => {
                let mut b = lock(&book);
                let now = Instant::now();
                for msg in list.into_iter().flatten() {
                    match msg {
                        WorkerMsg::Output { key, stream, text, .. } => {
                            if let Some(w) = b.waiters.get(&key) {
                                let _ = w.tx.send(Heard::Output(stream == OutputStream::Stderr, text));
                            }
                        }
                        WorkerMsg::Heartbeat { worker, keys, .. } => {
                            for key in keys {
                                let w = b.waiters.get_mut(&key);
                                if let Some(w) = w.filter(|w| w.started.as_ref().is_some_and(|s| s.id == worker)) {
                                    w.beat = Some(now);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            Notice::Reclaimed(list) => {
                let mut b = lock(&book);
                for r in list {
                    let key = match &r.msg {
                        Ok(m) => m.key.clone(),
                        Err(_) => continue,
                    };
                    // Only the current publication: an older one's delivery (its
                    // attempt was lost already, at its worker's expiry) means nothing.
                    let current = |w: &Waiter| r.msg.as_ref().is_ok_and(|m| m.dispatch == w.msg.dispatch);
                    if !b.waiters.get(&key).is_some_and(current) {
                        continue;
                    }
                    let Some(w) = b.waiters.remove(&key) else { continue };
                    let worker = w.started.clone().unwrap_or_else(|| WorkerRef {
                        id: r.worker.clone().unwrap_or_else(|| "unknown".into()),
                        host: String::new(),
                    });
                    let started = w.started.is_some();
                    let _ = w.tx.send(Heard::End(AttemptEnd::Lost { worker, reason: "lease expired".into(), started }));
                }
            }
            Notice::WorkerSeen(info) => {
                let r = info.registration;
                let _ = inputs.send(Input::WorkerSeen(WorkerRegistered {
                    pool: r.pool,
                    worker: r.worker,
                    host: r.host,
                    pid: r.pid,
                    capabilities: r.capabilities,
                    version: r.version,
                    concurrency: r.concurrency as usize,
                }));
            }
            Notice::WorkerGone { info, why } => {
                let r = info.registration;
                // An expired registration is a dead worker: its attempts move now, not
                // at the lease. Their `worker_lost` records the worker gone as well.
                // "Recent" is half its TTL: a live worker beats every third of it at most,
                // while a dead one's last beat is at least two thirds of it old by the time
                // its registration expires (the lease would keep them a further 15 s).
                let recent = Duration::from_millis(r.ttl_ms / 2).min(lease);
                let lost = if why == Gone::Expired && early_loss { lose_attempts(&book, &r.worker, recent) } else { 0 };
                if lost == 0 {
                    let reason = why.reason().to_string();
                    let _ = inputs.send(Input::WorkerGone { pool: r.pool, worker: r.worker, reason });
                }
            }
            Notice::Down { reason } => {
                let _ = inputs.send(Input::BrokerDown { broker: broker.clone(), reason });
            }
            Notice::Up { down_for, data_lost } => {
                let mut republished = 0;
                if data_lost {
                    // The broker restarted empty: every unfinished attempt goes out again
                    // (a worker still running one answers the old dispatch; the first
                    // result wins either way).
                    let jobs: Vec<AttemptMsg> = {
                        let mut b = lock(&book);
                        b.entries.clear();
                        b.waiters
                            .values_mut()
                            .map(|w| {
                                w.msg.dispatch = new_dispatch();
                                w.msg.clone()
                            })
                            .collect()
                    };
                    republished = jobs.len() as u64;
                    if !jobs.is_empty() {
                        ops.publish(jobs);
                    }
                }
                let _ = inputs.send(Input::BrokerUp { broker: broker.clone(), down_ms: millis(down_for), republished });
            }
            Notice::EventsDropped(n) => tracing::warn!("broker: {n} events not published (the broker was down)"),
            Notice::Failed { what, error } => tracing::warn!("broker: {what} dropped: {error}"),
        }
    }
}

/// Ends, as lost, the attempts worker `worker` started, but for those it named in a
/// live heartbeat within `recent` (alive, only late refreshing its registration:
/// the lease decides for them). Their attempt messages are withdrawn once the loss
/// is durable, so the lease's reclaim does not find them again. Gives how many.
fn lose_attempts(book: &Mutex<Book>, worker: &str, recent: Duration) -> usize {
    let mut b = lock(book);
    let now = Instant::now();
    let silent = |w: &Waiter| {
        w.started.as_ref().is_some_and(|s| s.id == worker) && w.beat.is_none_or(|t| now.duration_since(t) >= recent)
    };
    let keys: Vec<String> = b.waiters.iter().filter(|(_, w)| silent(w)).map(|(k, _)| k.clone()).collect();
    for key in &keys {
        let Some(w) = b.waiters.remove(key) else { continue };
        b.settle_later(&w.task, key, None);
        let Some(started) = w.started else { continue };
        let reason = Gone::Expired.reason().to_string();
        let _ = w.tx.send(Heard::End(AttemptEnd::Lost { worker: started, reason, started: true }));
    }
    keys.len()
}

/// Hands one results-queue message to its attempt; gives the input that reports it
/// when it is a result nobody waits for.
pub(super) fn deliver(book: &Mutex<Book>, ops: &LinkOps, id: InboundId, msg: WorkerMsg) -> Option<Input> {
    let mut b = lock(book);
    let key = match &msg {
        WorkerMsg::Started { key, .. }
        | WorkerMsg::Result { key, .. }
        | WorkerMsg::Stopped { key, .. }
        | WorkerMsg::Handback { key, .. } => key.clone(),
        WorkerMsg::Heartbeat { .. } | WorkerMsg::Output { .. } => {
            drop(b);
            ops.ack(vec![id]);
            return None;
        }
    };
    if !b.waiters.contains_key(&key) {
        if b.expected.contains(&key) {
            b.held.entry(key).or_default().push((id, msg));
            return None;
        }
        let (task, attempt) = b.known.get(&key).cloned().unwrap_or_else(|| parse_key(&key));
        let late = match msg {
            WorkerMsg::Result { worker, .. } | WorkerMsg::Stopped { worker, .. } => {
                // Recorded as `result_duplicate`; acked once that is durable.
                b.pending.entry(task.clone()).or_default().0.push(id);
                return Some(Input::ResultDuplicate { task, attempt, worker, reason: "late".into() });
            }
            _ => id,
        };
        drop(b);
        ops.ack(vec![late]);
        return None;
    }
    let w = b.waiters.get_mut(&key)?;
    match msg {
        WorkerMsg::Started { dispatch, worker, host, pid, .. } => {
            if dispatch == w.msg.dispatch && w.started.is_none() {
                let worker = WorkerRef { id: worker, host };
                w.started = Some(worker.clone());
                let _ = w.tx.send(Heard::Started(RemoteStart { worker, pid }));
            }
            drop(b);
            ops.ack(vec![id]);
        }
        WorkerMsg::Result { outcome: mut o, .. } => {
            // The first outcome of a running attempt wins, whichever publication it answers.
            let controls = std::mem::take(&mut o.controls);
            let tails: Vec<(bool, String)> = [(false, o.tail_stdout.clone()), (true, o.tail_stderr.clone())]
                .into_iter()
                .filter_map(|(e, t)| t.map(|t| (e, t)))
                .collect();
            let w = b.waiters.remove(&key).expect("looked up above");
            // Its control lines are recorded before its end, as a local attempt's are.
            let _ = w.tx.send(Heard::Controls(controls));
            let _ = w.tx.send(Heard::End(outcome(o)));
            for (stderr, text) in tails {
                let _ = w.tx.send(Heard::Output(stderr, text));
            }
            b.settle_later(&w.task, &key, Some(id));
        }
        WorkerMsg::Stopped { dispatch, stop, remains: mut r, .. } if dispatch == w.msg.dispatch => {
            let w = b.waiters.remove(&key).expect("looked up above");
            let _ = w.tx.send(Heard::Controls(std::mem::take(&mut r.controls)));
            let _ = w.tx.send(Heard::End(AttemptEnd::Stopped(from_why(stop), remains(r))));
            b.settle_later(&w.task, &key, Some(id));
        }
        WorkerMsg::Handback { dispatch, worker, reason, .. } if dispatch == w.msg.dispatch => {
            let host = w.started.as_ref().map(|s| s.host.clone()).unwrap_or_default();
            let started = w.started.is_some();
            let w = b.waiters.remove(&key).expect("looked up above");
            let why = match reason {
                HandbackWhy::Drain => "worker stopping",
                HandbackWhy::Expired => "expired before it started",
                HandbackWhy::LacksCapability => "worker lacks a capability",
            };
            // Given back is not lost: nothing is counted against the task.
            let _ = started;
            let _ = w.tx.send(Heard::End(AttemptEnd::Lost {
                worker: WorkerRef { id: worker, host },
                reason: why.into(),
                started: false,
            }));
            b.settle_later(&w.task, &key, Some(id));
        }
        // An answer to an older publication: nothing to act on.
        _ => {
            drop(b);
            ops.ack(vec![id]);
        }
    }
    None
}
