//! The engine with the broker runner on an in-process broker (`io::broker::memory`)
//! and paused tokio time: the real engine, supervisor, core, link and runner; only
//! the broker and the workers are test doubles. Workers are small async loops on the
//! worker side of the memory broker, each scripted per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pitboss::config;
use pitboss::core::{Event, Input, RunState};
use pitboss::engine::{Ending, Engine, EngineConfig, EngineHandle, World};
use pitboss::io::broker::link::{Link, LinkConfig};
use pitboss::io::broker::memory::{MemoryBroker, MemoryWorkerTransport};
use pitboss::io::broker::wire::{OutcomeStatus, RemoteOutcome, WorkerState};
use pitboss::io::broker::{PoolOffer, Registration, RunScope, Running, WorkerMsg, WorkerScope, WorkerTransport};
use pitboss::io::clock::TokioClock;
use pitboss::io::journal::Record;
use pitboss::io::runner::remote::BrokerRunner;
use pitboss::io::runner::LocalRunner;
use pitboss::io::store::MemoryStore;
use serde_json::{json, Value};

const T0: u64 = 1_800_000_000_000;
/// A run not over after this much virtual time is stuck: the test fails.
const STUCK: Duration = Duration::from_secs(3600);
const RUN: &str = "run-1";
const LEASE: Duration = Duration::from_secs(3);

fn workflow(tasks: &str, timeout: &str) -> String {
    format!(
        "[run]\nbroker = \"redis://127.0.0.1:6379\"\nbroker_lease = \"3s\"\n\
         [defaults]\ntimeout = \"{timeout}\"\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 4\n{tasks}"
    )
}

/// What a scripted worker does with each job it takes.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Starts, runs this long (heartbeating), reports success.
    Run(u64),
    /// Starts, then falls silent for ever (no heartbeat, no result): a dead worker.
    Vanish,
    /// Starts, falls silent past the lease, then reports success after this long.
    LateResult(u64),
    /// Starts, runs this long, heartbeating its delivery and saying on the live feed
    /// that it runs the attempt, but with a registration that expires at once (a
    /// worker late refreshing its registration); then reports success.
    BeatOnly(u64),
    /// Starts, heartbeats (delivery and live feed, as a real worker) for this long,
    /// then falls silent for ever: a worker killed mid-task.
    BeatThenVanish(u64),
}

/// A worker on the memory broker that takes one job at a time and does `acts` in
/// turn (the last one for every later job). It first waits `delay` ms.
async fn worker(t: MemoryWorkerTransport, name: &str, delay: u64, acts: Vec<Act>) {
    worker_ttl(t, name, delay, acts, 60_000).await
}

/// [`worker`] with a registration that lives `ttl_ms` unless refreshed.
async fn worker_ttl(t: MemoryWorkerTransport, name: &str, delay: u64, acts: Vec<Act>, ttl_ms: u64) {
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let reg = Registration {
        worker: name.to_string(),
        pool: "p".into(),
        capabilities: vec![],
        host: "h".into(),
        pid: 7,
        version: "test".into(),
        concurrency: 1,
        state: WorkerState::Idle,
        ttl_ms,
    };
    t.register(&reg).await.expect("register");
    let mut n = 0;
    loop {
        let Ok(jobs) = t.next_jobs(1).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for job in jobs {
            let msg = job.msg.expect("a readable job");
            let act = acts[n.min(acts.len() - 1)];
            n += 1;
            let started = WorkerMsg::Started {
                key: msg.key.clone(),
                dispatch: msg.dispatch.clone(),
                worker: name.to_string(),
                host: "h".into(),
                pid: 99,
                started_ms: 0,
            };
            report(&t, started).await;
            let run_for = match act {
                Act::Vanish => return std::future::pending().await,
                Act::Run(ms) => {
                    // Heartbeat through the run, as a worker does.
                    let running = vec![Running { entry: job.entry.clone(), key: msg.key.clone() }];
                    let end = tokio::time::Instant::now() + Duration::from_millis(ms);
                    while tokio::time::Instant::now() < end {
                        let _ = t.heartbeat(&reg, running.clone()).await;
                        tokio::time::sleep_until(end.min(tokio::time::Instant::now() + Duration::from_millis(500)))
                            .await;
                    }
                    0
                }
                Act::LateResult(ms) => ms,
                Act::BeatThenVanish(ms) => {
                    let running = vec![Running { entry: job.entry.clone(), key: msg.key.clone() }];
                    let end = tokio::time::Instant::now() + Duration::from_millis(ms);
                    while tokio::time::Instant::now() < end {
                        let _ = t.heartbeat(&reg, running.clone()).await;
                        let beat =
                            WorkerMsg::Heartbeat { worker: name.into(), keys: vec![msg.key.clone()], sent_ms: 0 };
                        report(&t, beat).await;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    return std::future::pending().await;
                }
                Act::BeatOnly(ms) => {
                    let expiring = Registration { ttl_ms: 1, ..reg.clone() };
                    let running = vec![Running { entry: job.entry.clone(), key: msg.key.clone() }];
                    let end = tokio::time::Instant::now() + Duration::from_millis(ms);
                    while tokio::time::Instant::now() < end {
                        let _ = t.heartbeat(&expiring, running.clone()).await;
                        let beat =
                            WorkerMsg::Heartbeat { worker: name.into(), keys: vec![msg.key.clone()], sent_ms: 0 };
                        report(&t, beat).await;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    0
                }
            };
            tokio::time::sleep(Duration::from_millis(run_for)).await;
            let outcome = RemoteOutcome {
                status: OutcomeStatus::Success,
                result: Some(json!({"by": name})),
                class: None,
                error: None,
                exit_code: Some(0),
                signal: None,
                duration_ms: 1,
                stdout: None,
                stderr: None,
                tail_stdout: None,
                tail_stderr: None,
                spawn: None,
                controls: Vec::new(),
            };
            let result = WorkerMsg::Result {
                key: msg.key.clone(),
                dispatch: msg.dispatch.clone(),
                worker: name.into(),
                outcome,
            };
            report(&t, result).await;
            let _ = t.ack_job(job.entry).await;
        }
    }
}

/// Reports, retrying while the broker is down (a worker holds its result).
async fn report(t: &MemoryWorkerTransport, msg: WorkerMsg) {
    while t.report(RUN, msg.clone()).await.is_err() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct Ran {
    /// (ms after T0, event JSON)
    events: Vec<(u64, Value)>,
    ending: Ending,
}

/// Runs `wf` with the broker runner on `broker`; `extra` runs beside the engine
/// (outages) with its handle.
async fn run(
    wf: &str,
    broker: Arc<MemoryBroker>,
    extra: impl FnOnce(EngineHandle) -> tokio::task::JoinHandle<()>,
) -> Ran {
    run_leased(wf, broker, LEASE, extra).await
}

/// [`run`] with the link's and runner's lease `lease`.
async fn run_leased(
    wf: &str,
    broker: Arc<MemoryBroker>,
    lease: Duration,
    extra: impl FnOnce(EngineHandle) -> tokio::task::JoinHandle<()>,
) -> Ran {
    let wf = config::parse(wf, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new(RUN.into(), Arc::new(wf.clone()));
    let store = MemoryStore::starting_with(T0, Event::RunStarted { run_id: RUN.into(), workflow: Arc::new(wf) });
    let scope = RunScope {
        run: RUN.into(),
        pools: vec![PoolOffer { name: "p".into(), capabilities: vec![] }],
        manager: "test:1".into(),
    };
    let transport = Arc::new(broker.manager(scope));
    let (link, notices) = Link::connect(transport, LinkConfig::new(lease)).await.expect("connect");
    let (runner, mut inputs) =
        BrokerRunner::start(LocalRunner::new(), link, notices, RUN.into(), "memory://".into(), lease);
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: runner.clone() };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    let handle = engine.handle();
    let forward = {
        let handle = handle.clone();
        tokio::spawn(async move {
            while let Some(input) = inputs.recv().await {
                handle.send(input);
            }
        })
    };
    let mut records = handle.subscribe();
    let commits = {
        let runner = runner.clone();
        tokio::spawn(async move {
            while let Some(batch) = records.recv().await {
                runner.committed(&batch);
            }
        })
    };
    let side = extra(handle.clone());
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    let ran = tokio::time::timeout(STUCK, engine.run(std::future::pending())).await;
    let (_, ending) = ran.expect("the run did not end within an hour of virtual time").expect("engine failed");
    forward.abort();
    commits.abort();
    side.abort();
    let records: Vec<Record> = store.records.lock().unwrap().clone();
    let events = records.iter().map(|r| (r.ts - T0, serde_json::to_value(&r.event).unwrap())).collect();
    Ran { events, ending }
}

fn of<'a>(events: &'a [(u64, Value)], kind: &str) -> Vec<&'a (u64, Value)> {
    events.iter().filter(|(_, e)| e["type"] == kind).collect()
}

fn spawn_worker(broker: &Arc<MemoryBroker>, name: &str, delay: u64, acts: Vec<Act>) -> tokio::task::JoinHandle<()> {
    let t = broker.worker(WorkerScope { worker: name.into(), pool: "p".into() });
    let name = name.to_string();
    tokio::spawn(async move { worker(t, &name, delay, acts).await })
}

#[tokio::test(start_paused = true)]
async fn a_lost_worker_s_attempt_is_retried_elsewhere_without_spending_it() {
    let broker = MemoryBroker::new();
    let a = spawn_worker(&broker, "w-a", 0, vec![Act::Vanish]);
    // The second worker comes once the first holds the job.
    let b = spawn_worker(&broker, "w-b", 1_000, vec![Act::Run(100)]);
    let ran = run(&workflow("[[task]]\nid = \"t\"\n", "1h"), broker, |_| tokio::spawn(async {})).await;
    a.abort();
    b.abort();
    let ev = &ran.events;
    assert_eq!(ran.ending, Ending::Finished);
    let lost = of(ev, "worker_lost");
    assert_eq!(lost.len(), 1, "{ev:#?}");
    assert_eq!(lost[0].1["worker"], "w-a");
    assert_eq!(of(ev, "attempt_interrupted").len(), 1, "{ev:#?}");
    // max_attempts = 1: a spent attempt would have dead-lettered the task.
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "{ev:#?}");
    assert_eq!(ok[0].1["result"], json!({"by": "w-b"}));
    assert!(of(ev, "attempt_failed").is_empty(), "{ev:#?}");
    // Lost only after the lease, never before.
    assert!(lost[0].0 >= LEASE.as_millis() as u64, "{ev:#?}");
}

#[tokio::test(start_paused = true)]
async fn an_expired_worker_s_attempt_moves_at_once_not_at_the_lease() {
    let broker = MemoryBroker::new();
    // w-a's registration lives 1 s; it takes the job and dies. w-b comes at 1 s.
    let t = broker.worker(WorkerScope { worker: "w-a".into(), pool: "p".into() });
    let a = tokio::spawn(async move { worker_ttl(t, "w-a", 0, vec![Act::Vanish], 1_000).await });
    let b = spawn_worker(&broker, "w-b", 1_000, vec![Act::Run(100)]);
    let lease = Duration::from_secs(60);
    let ran = run_leased(&workflow("[[task]]\nid = \"t\"\n", "1h"), broker, lease, |_| tokio::spawn(async {})).await;
    a.abort();
    b.abort();
    let ev = &ran.events;
    let lost: Vec<_> = of(ev, "worker_lost").into_iter().filter(|(_, e)| e["task"] == "t").collect();
    assert_eq!(lost.len(), 1, "lost once, not again at the lease: {ev:#?}");
    assert_eq!(lost[0].1["worker"], "w-a");
    assert_eq!(lost[0].1["reason"], "registration expired");
    assert_eq!(lost[0].1["started"], true);
    // Within a few worker polls of the expiry, far before the 60 s lease.
    assert!(lost[0].0 < 10_000, "moved only at {} ms: {ev:#?}", lost[0].0);
    let stopped = of(ev, "attempt_interrupted");
    assert_eq!(stopped.len(), 1, "{ev:#?}");
    assert_eq!(stopped[0].1["reason"], "worker lost (h)");
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "{ev:#?}");
    assert_eq!(ok[0].1["result"], json!({"by": "w-b"}));
    assert!(ok[0].0 < 10_000, "{ev:#?}");
    assert!(of(ev, "attempt_failed").is_empty(), "not spent: {ev:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_killed_worker_s_attempt_moves_at_its_expiry_though_it_heartbeat_until_it_died() {
    let broker = MemoryBroker::new();
    // w-a (registration 3 s) beats its attempt for 1 s, as a live worker does, then
    // dies: the beats must not keep the attempt until the 60 s lease.
    let t = broker.worker(WorkerScope { worker: "w-a".into(), pool: "p".into() });
    let a = tokio::spawn(async move { worker_ttl(t, "w-a", 0, vec![Act::BeatThenVanish(1_000)], 3_000).await });
    let b = spawn_worker(&broker, "w-b", 1_000, vec![Act::Run(100)]);
    let lease = Duration::from_secs(60);
    let ran = run_leased(&workflow("[[task]]\nid = \"t\"\n", "1h"), broker, lease, |_| tokio::spawn(async {})).await;
    a.abort();
    b.abort();
    let ev = &ran.events;
    let lost: Vec<_> = of(ev, "worker_lost").into_iter().filter(|(_, e)| e["task"] == "t").collect();
    assert_eq!(lost.len(), 1, "{ev:#?}");
    assert_eq!(lost[0].1["reason"], "registration expired", "{ev:#?}");
    assert!(lost[0].0 < 15_000, "moved only at {} ms: {ev:#?}", lost[0].0);
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "{ev:#?}");
    assert_eq!((ok[0].1["attempt"].clone(), ok[0].1["result"].clone()), (json!(1), json!({"by": "w-b"})));
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_still_heartbeats_its_attempt_keeps_it_when_its_registration_expires() {
    let broker = MemoryBroker::new();
    let w = spawn_worker(&broker, "w-late", 0, vec![Act::BeatOnly(10_000)]);
    let lease = Duration::from_secs(60);
    let ran = run_leased(&workflow("[[task]]\nid = \"t\"\n", "1h"), broker, lease, |_| tokio::spawn(async {})).await;
    w.abort();
    let ev = &ran.events;
    // Its registration did expire (recorded), but the attempt it heartbeats stayed.
    let lost = of(ev, "worker_lost");
    assert!(lost.iter().all(|(_, e)| e["task"].is_null()), "{ev:#?}");
    assert!(lost.iter().any(|(_, e)| e["reason"] == "registration expired"), "{ev:#?}");
    assert!(of(ev, "attempt_interrupted").is_empty(), "{ev:#?}");
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "{ev:#?}");
    assert_eq!((ok[0].1["attempt"].clone(), ok[0].1["result"].clone()), (json!(1), json!({"by": "w-late"})));
    assert!(ok[0].0 >= 10_000, "{ev:#?}");
}

#[tokio::test(start_paused = true)]
async fn the_timeout_counts_from_the_worker_s_start_not_from_the_queue() {
    let broker = MemoryBroker::new();
    // Registered at once (so the task is dispatched), but takes jobs only after 5 s.
    let t = broker.worker(WorkerScope { worker: "w-slow".into(), pool: "p".into() });
    let reg_t = broker.worker(WorkerScope { worker: "w-slow".into(), pool: "p".into() });
    let reg = Registration {
        worker: "w-slow".into(),
        pool: "p".into(),
        capabilities: vec![],
        host: "h".into(),
        pid: 7,
        version: "test".into(),
        concurrency: 1,
        state: WorkerState::Idle,
        ttl_ms: 60_000,
    };
    reg_t.register(&reg).await.unwrap();
    let w = tokio::spawn(async move { worker(t, "w-slow", 5_000, vec![Act::Run(1_500)]).await });
    let ran = run(&workflow("[[task]]\nid = \"t\"\n", "2s"), broker, |_| tokio::spawn(async {})).await;
    w.abort();
    let ev = &ran.events;
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "queue time was charged to the task: {ev:#?}");
    let started = of(ev, "attempt_started")[0].0;
    assert!(ok[0].0 >= started + 5_000 + 1_500, "{ev:#?}");
    // The spawn note names the remote worker.
    assert_eq!(of(ev, "attempt_spawned")[0].1["worker"], "w-slow", "{ev:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_broker_outage_charges_nothing() {
    let broker = MemoryBroker::new();
    let w = spawn_worker(&broker, "w", 0, vec![Act::Run(30_000)]);
    let outage = {
        let broker = broker.clone();
        move |_| {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                broker.go_down();
                // Longer than the lease: the outage must not look like a lost worker.
                tokio::time::sleep(Duration::from_secs(10)).await;
                broker.come_back(false);
            })
        }
    };
    let ran = run(&workflow("[[task]]\nid = \"t\"\n", "1h"), broker, outage).await;
    w.abort();
    let ev = &ran.events;
    assert_eq!(of(ev, "broker_down").len(), 1, "{ev:#?}");
    assert_eq!(of(ev, "broker_up").len(), 1, "{ev:#?}");
    assert!(of(ev, "worker_lost").is_empty(), "{ev:#?}");
    assert!(of(ev, "attempt_interrupted").is_empty(), "{ev:#?}");
    let ok = of(ev, "attempt_succeeded");
    assert_eq!(ok.len(), 1, "{ev:#?}");
    assert_eq!(ok[0].1["attempt"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_worker_s_late_result_is_a_recorded_duplicate() {
    let broker = MemoryBroker::new();
    // w-a starts `t`, is lost at the lease, and reports after 20 s; w-b runs `keep`
    // for 60 s (so the run is live for the late result); w-c, coming at 4 s, runs
    // the re-dispatch of `t` at once.
    let a = spawn_worker(&broker, "w-a", 0, vec![Act::LateResult(20_000)]);
    let b = spawn_worker(&broker, "w-b", 500, vec![Act::Run(60_000)]);
    let c = spawn_worker(&broker, "w-c", 4_000, vec![Act::Run(100)]);
    let tasks = "[[task]]\nid = \"t\"\n[[task]]\nid = \"keep\"\n";
    let ran = run(&workflow(tasks, "1h"), broker, |_| tokio::spawn(async {})).await;
    a.abort();
    b.abort();
    c.abort();
    let ev = &ran.events;
    let dup = of(ev, "result_duplicate");
    assert_eq!(dup.len(), 1, "{ev:#?}");
    assert_eq!(dup[0].1["worker"], "w-a");
    assert_eq!(dup[0].1["reason"], "late");
    let ok: Vec<_> = of(ev, "attempt_succeeded").into_iter().filter(|(_, e)| e["task"] == "t").collect();
    assert_eq!(ok.len(), 1, "one outcome per attempt: {ev:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_re_attached_attempt_takes_the_result_written_while_the_manager_was_away() {
    use pitboss::io::runner::{AttemptEnd, AttemptJob, AttemptSpec, Runner};
    let broker = MemoryBroker::new();
    let scope = RunScope {
        run: RUN.into(),
        pools: vec![PoolOffer { name: "p".into(), capabilities: vec![] }],
        manager: "test:2".into(),
    };
    // The worker finished `t` attempt 1 while no manager ran.
    let w = broker.worker(WorkerScope { worker: "w".into(), pool: "p".into() });
    let outcome = RemoteOutcome {
        status: OutcomeStatus::Success,
        result: Some(json!({"done": true})),
        class: None,
        error: None,
        exit_code: Some(0),
        signal: None,
        duration_ms: 5,
        stdout: None,
        stderr: None,
        tail_stdout: None,
        tail_stderr: None,
        spawn: None,
        controls: Vec::new(),
    };
    let result = WorkerMsg::Result { key: "t.1".into(), dispatch: "old".into(), worker: "w".into(), outcome };
    w.report(RUN, result).await.unwrap();
    let (link, notices) = Link::connect(Arc::new(broker.manager(scope)), LinkConfig::new(LEASE)).await.unwrap();
    let (runner, _inputs) =
        BrokerRunner::start(LocalRunner::new(), link, notices, RUN.into(), "memory://".into(), LEASE);
    runner.expect([("t".to_string(), 1)]);
    // Let the link's pump deliver the result before the engine re-attaches.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let spec = AttemptSpec {
        pool: "p".into(),
        task: "t".into(),
        attempt: 1,
        argv: vec![],
        stdin: Some(b"{}\n".to_vec()),
        env: vec![],
        cwd: None,
        timeout: Duration::from_secs(60),
        kill_grace: Duration::from_secs(1),
        output_dir: PathBuf::from("/nonexistent"),
        live: None,
        persistent: None,
        file_base: None,
        reattach: true,
        agent: None,
        on_control: None,
    };
    let (_stop_tx, stop) = tokio::sync::watch::channel(None);
    let job = AttemptJob {
        spec,
        stop,
        on_spawn: Box::new(|_| {}),
        on_output: Arc::new(|| {}),
        on_capture_failed: Arc::new(|_, _| {}),
        on_remote_start: Box::new(|_| {}),
        on_usage: Arc::new(|_| {}),
    };
    let end =
        tokio::time::timeout(Duration::from_secs(30), runner.run(job)).await.expect("the result was not delivered");
    match end {
        AttemptEnd::Outcome(pitboss::core::decide::Outcome::Success { result, .. }) => {
            assert_eq!(result, json!({"done": true}))
        }
        other => panic!("not the worker's result: {other:?}"),
    }
    assert_eq!(broker.queued(RUN), 0, "a re-attached attempt must not be published again");
}
