//! `pitboss worker --read-ahead` (issue 16, P5) as a real binary against the shared
//! Redis: while every slot is busy a worker holds one more job, started the moment a
//! slot frees. Held, it stays the worker's (heartbeats keep its delivery from the
//! lease) without its timeout running; a drain hands it back at once, a stop from
//! the manager answers it unstarted, a SIGKILL leaves it for the manager to reclaim,
//! and every job read gets exactly one answer, a drain in the middle included.

mod broker_common;
mod worker_common;

use std::path::Path;
use std::time::{Duration, Instant};

use broker_common::wait_until;
use pitboss::io::broker::wire::{HandbackWhy, OutcomeStatus, WorkerMsg};
use pitboss::io::broker::{StopWhy, Transport};
use worker_common::*;

/// The lease of these tests' attempts: heartbeats every 100 ms (a sixth, at least 100 ms).
const LEASE_MS: u64 = 600;

/// Job `a` notes its pid then waits for the file `go` (the test lets it end); `b`
/// takes 300 ms (well inside its timeout, but not if its clock ran while it was
/// held); the others print at once.
fn gated(dir: &Path) -> Vec<String> {
    let script = r#"if [ "$2" = a ]; then echo $$ >> "$1/pids"; while [ ! -e "$1/go" ]; do sleep 0.05; done; fi
        if [ "$2" = b ]; then sleep 0.3; fi; echo ok"#;
    ["sh", "-c", script, "_", &dir.display().to_string(), "{id}"].map(String::from).to_vec()
}

fn start_worker(m: &Manager, flags: &[&str], cmd: &[String]) -> Worker {
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let flags: Vec<&str> = ["--read-ahead", "1"].iter().chain(flags).copied().collect();
    Worker::start(&m.url, &m.pool, &flags, &[], &cmd)
}

/// Publishes `a`, `b` and `c` (b with `b_timeout_ms`) and waits until the worker of
/// one slot runs `a` and holds `b`: two deliveries pending, `c` left on the queue.
async fn a_runs_b_is_held(m: &Manager, dir: &Path, b_timeout_ms: u64, worker: &Worker) -> Leftovers {
    let with_lease = |task: &str, timeout_ms| {
        let mut msg = m.attempt(task, timeout_ms);
        msg.lease_ms = LEASE_MS;
        msg
    };
    m.transport
        .publish(vec![with_lease("a", 60_000), with_lease("b", b_timeout_ms), with_lease("c", 60_000)])
        .await
        .unwrap();
    let leftovers = Leftovers(pids_in(&dir.join("pids"), 1));
    assert!(wait_until(LIMIT, || m.pending() == 2), "b was not read ahead; stderr:\n{}", worker.stderr_text());
    leftovers
}

fn go(dir: &Path) {
    std::fs::write(dir.join("go"), "").unwrap();
}

fn handed_back(key: &'static str) -> impl Fn(&[WorkerMsg]) -> bool {
    move |msgs| {
        msgs.iter().any(|m| matches!(m, WorkerMsg::Handback { key: k, reason: HandbackWhy::Drain, .. } if k == key))
    }
}

#[tokio::test]
async fn a_job_read_ahead_stays_the_workers_and_its_timeout_counts_from_its_start() {
    if !broker_common::redis() {
        return;
    }
    let m = Manager::start(&shared_url(), "ra-hold").await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start_worker(&m, &["--concurrency", "1"], &gated(dir.path()));
    let _leftovers = a_runs_b_is_held(&m, dir.path(), 1_000, &worker).await;
    // Held past its lease and past its own timeout while `a` runs: the heartbeat keeps
    // its delivery (the manager reclaims nothing) and no clock runs for it yet.
    let until = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < until {
        let taken = m.transport.reclaim(Duration::from_millis(LEASE_MS)).await.unwrap();
        assert!(taken.is_empty(), "a held delivery looked idle to the manager: {taken:?}");
        assert_eq!(m.pending(), 2, "more than one job read ahead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    go(dir.path());
    let all = |msgs: &[WorkerMsg]| ["a.1", "b.1", "c.1"].iter().all(|k| outcome(msgs, k).is_some());
    let msgs = m.collect(all).await;
    assert!(all(&msgs), "got {msgs:?}; stderr:\n{}", worker.stderr_text());
    let b = outcome(&msgs, "b.1").unwrap();
    assert_eq!(b.status, OutcomeStatus::Success, "b's timeout ran while it was held: {b:?}");
    for key in ["a.1", "b.1", "c.1"] {
        let results = msgs.iter().filter(|m| matches!(m, WorkerMsg::Result { key: k, .. } if k == key)).count();
        assert_eq!(results, 1, "{key}: {msgs:?}");
    }
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    assert_eq!(m.pending(), 0);
}

#[tokio::test]
async fn sigterm_hands_a_job_read_ahead_back_at_once_and_lets_the_running_one_finish() {
    if !broker_common::redis() {
        return;
    }
    let m = Manager::start(&shared_url(), "ra-drain").await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start_worker(&m, &["--concurrency", "1"], &gated(dir.path()));
    let _leftovers = a_runs_b_is_held(&m, dir.path(), 60_000, &worker).await;
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    // `a` still runs (its file is not there yet): b must come back before it ends.
    let msgs = m.collect(handed_back("b.1")).await;
    assert!(
        handed_back("b.1")(&msgs),
        "b was not handed back at the drain: {msgs:?}; stderr:\n{}",
        worker.stderr_text()
    );
    go(dir.path());
    let msgs = m.collect(has_result("a.1")).await;
    assert_eq!(outcome(&msgs, "a.1").map(|o| o.status), Some(OutcomeStatus::Success), "{msgs:?}");
    assert!(!started_key(&msgs, "b.1") && outcome(&msgs, "b.1").is_none(), "b ran: {msgs:?}");
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    assert!(!msgs.iter().any(|m| format!("{m:?}").contains("\"c.1\"")), "c was read during the drain: {msgs:?}");
    assert_eq!(m.pending(), 0, "the handed-back job was not acked");
}

#[tokio::test]
async fn a_job_read_ahead_by_a_sigkilled_worker_goes_back_to_the_manager_unstarted() {
    if !broker_common::redis() {
        return;
    }
    let m = Manager::start(&shared_url(), "ra-kill").await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start_worker(&m, &["--concurrency", "1"], &gated(dir.path()));
    let _leftovers = a_runs_b_is_held(&m, dir.path(), 60_000, &worker).await;
    // Its `started` is out before the kill (so the log's silence about b means something).
    let msgs = m.collect(|msgs| started_key(msgs, "a.1")).await;
    assert!(started_key(&msgs, "a.1"), "a never started: {msgs:?}");
    worker.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = worker.exit_code();
    // The lease runs out for both deliveries: the manager takes them back.
    let mut keys = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while keys.len() < 2 && Instant::now() < deadline {
        for r in m.transport.reclaim(Duration::from_millis(LEASE_MS)).await.unwrap() {
            keys.push(r.msg.unwrap().key);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    keys.sort();
    assert_eq!(keys, ["a.1", "b.1"], "not every held delivery came back");
    let msgs = m.read_rest().await;
    assert!(started_key(&msgs, "a.1") && !started_key(&msgs, "b.1"), "b was started, or a not: {msgs:?}");
}

#[tokio::test]
async fn a_stop_for_a_job_read_ahead_answers_stopped_without_running_it() {
    if !broker_common::redis() {
        return;
    }
    let m = Manager::start(&shared_url(), "ra-stop").await;
    let dir = tempfile::tempdir().unwrap();
    let mut worker = start_worker(&m, &["--concurrency", "1"], &gated(dir.path()));
    let _leftovers = a_runs_b_is_held(&m, dir.path(), 60_000, &worker).await;
    m.transport.stop("b.1".into(), StopWhy::Cancel).await.unwrap();
    let stopped = |msgs: &[WorkerMsg]| {
        msgs.iter().any(|m| matches!(m, WorkerMsg::Stopped { key, stop: StopWhy::Cancel, .. } if key == "b.1"))
    };
    // `a` still runs: the stop must reach b while it waits.
    let msgs = m.collect(stopped).await;
    assert!(stopped(&msgs), "no stopped for b: {msgs:?}; stderr:\n{}", worker.stderr_text());
    go(dir.path());
    let msgs = m.collect(|msgs| outcome(msgs, "a.1").is_some() && outcome(msgs, "c.1").is_some()).await;
    assert!(outcome(&msgs, "c.1").is_some(), "{msgs:?}");
    assert!(!started_key(&msgs, "b.1") && outcome(&msgs, "b.1").is_none(), "b ran: {msgs:?}");
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
}

#[tokio::test]
async fn every_job_read_gets_exactly_one_answer_across_a_drain() {
    if !broker_common::redis() {
        return;
    }
    let m = Manager::start(&shared_url(), "ra-once").await;
    let mut worker = Worker::start(
        &m.url,
        &m.pool,
        &["--concurrency", "2", "--read-ahead", "1"],
        &[],
        &["sh", "-c", "sleep 0.2; echo ok"],
    );
    m.transport.publish((0..30).map(|n| m.attempt(&format!("t{n}"), 30_000)).collect()).await.unwrap();
    let results = |msgs: &[WorkerMsg]| msgs.iter().filter(|m| matches!(m, WorkerMsg::Result { .. })).count();
    let msgs = m.collect(|msgs| results(msgs) >= 6).await;
    assert!(results(&msgs) >= 6, "got {msgs:?}; stderr:\n{}", worker.stderr_text());
    // A drain mid-stream (jobs of 200 ms: both slots busy, one job held): running
    // jobs finish, the one read ahead goes back.
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.exit_code(), Some(0), "stderr:\n{}", worker.stderr_text());
    let msgs = m.read_rest().await;
    assert_eq!(m.pending(), 0, "a job read was never answered");
    for n in 0..30 {
        let key = format!("t{n}.1");
        let count = |kind: &str| {
            msgs.iter()
                .filter(|m| {
                    let (k, name) = match m {
                        WorkerMsg::Started { key, .. } => (key, "started"),
                        WorkerMsg::Result { key, .. } => (key, "result"),
                        WorkerMsg::Handback { key, .. } => (key, "handback"),
                        WorkerMsg::Stopped { key, .. } => (key, "stopped"),
                        _ => return false,
                    };
                    *k == key && name == kind
                })
                .count()
        };
        let (started, result, handback) = (count("started"), count("result"), count("handback"));
        assert!(result + handback <= 1 && started == result && count("stopped") == 0, "{key}: {msgs:?}");
    }
    // What goes back is what was read and not started: the job held ahead, and a job
    // read for a slot that had just freed if the drain came before it started (seen
    // in a full run: t9 and t10). Never more than the slots plus the read-ahead.
    let handbacks = msgs.iter().filter(|m| matches!(m, WorkerMsg::Handback { .. })).count();
    assert!(handbacks <= 3, "more handed back than read: {msgs:?}; stderr:\n{}", worker.stderr_text());
    assert!(results(&msgs) >= 6 && results(&msgs) < 30, "the drain ended nothing early: {}", results(&msgs));
}
