//! Test bodies every broker kind must pass, written against the two traits only, so
//! Redis and RabbitMQ run one suite (tests/amqp_transport.rs runs it on both).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pitboss::io::broker::wire::{
    AttemptMsg, OutcomeStatus, OutputStream, Registration, RemoteOutcome, WorkerMsg, WorkerState,
};
use pitboss::io::broker::{Running, StopWhy, Transport, WorkerTransport};

/// A manager and a worker of one fresh run and pool, and a way to make another
/// manager of the same run (a restarted one).
pub struct Pair {
    pub run: String,
    pub pool: String,
    pub manager: Arc<dyn Transport>,
    pub worker: Arc<dyn WorkerTransport>,
    pub registration: Registration,
    pub another_manager: Box<dyn Fn() -> Arc<dyn Transport> + Send + Sync>,
}

/// A registration for `worker` on `pool`.
pub fn registration(worker: &str, pool: &str) -> Registration {
    Registration {
        worker: worker.into(),
        pool: pool.into(),
        capabilities: vec![],
        host: "testhost".into(),
        pid: 42,
        version: "test".into(),
        concurrency: 2,
        state: WorkerState::Idle,
        ttl_ms: 10_000,
    }
}

/// An attempt of `task` for the run and pool.
pub fn attempt(run: &str, pool: &str, task: &str) -> AttemptMsg {
    AttemptMsg {
        run: run.into(),
        pool: pool.into(),
        key: format!("{task}.1"),
        task: task.into(),
        attempt: 1,
        replica: None,
        dispatch: format!("d-{task}"),
        job: serde_json::json!({"id": task, "payload": {"n": 1}}),
        timeout_ms: 60_000,
        stall_after_ms: None,
        stall_kill_after_ms: None,
        kill_grace_ms: 1000,
        lease_ms: 30_000,
        sent_ms: 1,
        deadline_ms: u64::MAX / 2,
        capabilities: vec![],
    }
}

/// A successful result of `key`.
pub fn success(key: &str, dispatch: &str, worker: &str) -> WorkerMsg {
    WorkerMsg::Result {
        key: key.into(),
        dispatch: dispatch.into(),
        worker: worker.into(),
        outcome: RemoteOutcome {
            status: OutcomeStatus::Success,
            result: Some(serde_json::json!({"ok": true})),
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
        },
    }
}

/// A `started` report of `job` by `worker`.
pub fn started(job: &AttemptMsg, worker: &str) -> WorkerMsg {
    WorkerMsg::Started {
        key: job.key.clone(),
        dispatch: job.dispatch.clone(),
        worker: worker.into(),
        host: "testhost".into(),
        pid: 4242,
        started_ms: 7,
    }
}

/// Calls `read` until it yields something or 10 s pass (a broken feature fails, never hangs).
pub async fn until_some<T, F, Fut>(mut read: F) -> Vec<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<T>>,
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
/// manager reads the results and the live feed and acks; a restarted manager reads
/// none of them again; the worker is listed alive.
pub async fn round_trip(s: &Pair) {
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    s.worker.register(&s.registration).await.unwrap();
    let job = attempt(&s.run, &s.pool, "a");
    let ids = s.manager.publish(vec![job.clone()]).await.unwrap();
    assert_eq!(ids.len(), 1);

    let jobs = until_some(|| async { s.worker.next_jobs(4).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1, "the worker reads the published attempt");
    assert_eq!(jobs[0].entry, ids[0]);
    assert_eq!(jobs[0].deliveries, 1);
    assert_eq!(jobs[0].msg.as_ref().unwrap(), &job);

    let wid = s.registration.worker.clone();
    s.worker.report(&s.run, started(&job, &wid)).await.unwrap();
    let output = WorkerMsg::Output {
        key: job.key.clone(),
        worker: wid.clone(),
        stream: OutputStream::Stdout,
        text: "working\n".into(),
    };
    s.worker.report(&s.run, output.clone()).await.unwrap();
    s.worker.report(&s.run, success(&job.key, &job.dispatch, &wid)).await.unwrap();
    s.worker.ack_job(jobs[0].entry.clone()).await.unwrap();

    let mut inbound = Vec::new();
    while inbound.len() < 2 {
        let got = until_some(|| async { s.manager.read_inbound(10).await.unwrap() }).await;
        assert!(!got.is_empty(), "the manager reads the worker's results");
        inbound.extend(got);
    }
    assert_eq!(inbound[0].msg.as_ref().unwrap(), &started(&job, &wid));
    assert_eq!(inbound[1].msg.as_ref().unwrap(), &success(&job.key, &job.dispatch, &wid));
    let live = until_some(|| async { s.manager.read_live(10).await.unwrap() }).await;
    assert_eq!(live.first().map(|m| m.as_ref().unwrap()), Some(&output));

    s.manager.ack_inbound(inbound.iter().map(|i| i.id.clone()).collect()).await.unwrap();
    s.manager.withdraw(ids).await.unwrap();
    let again = (s.another_manager)();
    again.connect().await.unwrap();
    assert!(again.read_inbound(10).await.unwrap().is_empty(), "acked results are gone");

    let workers = s.manager.workers().await.unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert!(workers[0].alive);
    assert_eq!(workers[0].registration, s.registration);
}

/// A result the manager read but did not ack: not handed twice across its own
/// reconnect, handed again to the next manager of the run.
pub async fn unacked_results_are_read_again(s: &Pair) {
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    s.worker.report(&s.run, success("a.1", "d", "w")).await.unwrap();
    let first = until_some(|| async { s.manager.read_inbound(10).await.unwrap() }).await;
    assert_eq!(first.len(), 1);
    s.manager.connect().await.unwrap();
    assert!(s.manager.read_inbound(10).await.unwrap().is_empty(), "no duplicate after a reconnect");
    // The manager ends before committing: the next one reads the same result again.
    s.manager.finish(false).await.unwrap();
    let again = (s.another_manager)();
    again.connect().await.unwrap();
    let second = until_some(|| async { again.read_inbound(10).await.unwrap() }).await;
    assert_eq!(second.len(), 1, "the unacked result is delivered again");
    assert_eq!(second[0].id, first[0].id);
}

/// A stop for a running attempt reaches the worker's next heartbeat.
pub async fn a_stop_reaches_the_workers_heartbeat(s: &Pair) {
    s.manager.connect().await.unwrap();
    s.worker.connect().await.unwrap();
    s.worker.register(&s.registration).await.unwrap();
    let job = attempt(&s.run, &s.pool, "s");
    s.manager.publish(vec![job.clone()]).await.unwrap();
    let jobs = until_some(|| async { s.worker.next_jobs(1).await.unwrap() }).await;
    assert_eq!(jobs.len(), 1);
    let running = vec![Running { entry: jobs[0].entry.clone(), key: job.key.clone() }];
    assert!(s.worker.heartbeat(&s.registration, running.clone()).await.unwrap().is_empty());
    s.manager.stop(job.key.clone(), StopWhy::Cancel).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stops = s.worker.heartbeat(&s.registration, running.clone()).await.unwrap();
        if let Some(stop) = stops.first() {
            assert_eq!((stop.key.as_str(), stop.why), (job.key.as_str(), StopWhy::Cancel));
            break;
        }
        assert!(Instant::now() < deadline, "the stop reached no heartbeat within 10 s");
        tokio::task::yield_now().await;
    }
    s.worker.ack_job(jobs[0].entry.clone()).await.unwrap();
}
