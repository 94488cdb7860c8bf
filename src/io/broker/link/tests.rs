//! The link against the in-memory broker, in paused time.

use tokio::time::Instant;

use super::*;
use crate::io::broker::memory::MemoryBroker;
use crate::io::broker::wire::{OutcomeStatus, Registration, RemoteOutcome, WorkerState};
use crate::io::broker::{PoolOffer, RunScope, WorkerScope, WorkerTransport};

fn scope() -> RunScope {
    RunScope {
        run: "r".into(),
        pools: vec![PoolOffer { name: "p".into(), capabilities: vec![] }],
        manager: "h:1".into(),
    }
}

fn job(task: &str) -> AttemptMsg {
    AttemptMsg {
        run: "r".into(),
        pool: "p".into(),
        key: format!("{task}.1"),
        task: task.into(),
        attempt: 1,
        replica: None,
        dispatch: format!("d-{task}"),
        job: serde_json::json!({"id": task}),
        timeout_ms: 1000,
        stall_after_ms: None,
        stall_kill_after_ms: None,
        kill_grace_ms: 100,
        lease_ms: 30_000,
        sent_ms: 0,
        deadline_ms: u64::MAX / 2,
        capabilities: vec![],
    }
}

fn registration(ttl_ms: u64) -> Registration {
    Registration {
        worker: "w1".into(),
        pool: "p".into(),
        capabilities: vec![],
        host: "h".into(),
        pid: 7,
        version: "t".into(),
        concurrency: 1,
        state: WorkerState::Idle,
        ttl_ms,
    }
}

/// The next notice matching `want`, skipping others; fails (in virtual time) rather than hang.
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<Notice>, mut want: impl FnMut(Notice) -> Option<T>) -> T {
    tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            let notice = rx.recv().await.expect("the link is alive");
            if let Some(t) = want(notice) {
                return t;
            }
        }
    })
    .await
    .expect("the notice came within 600 s of virtual time")
}

async fn start(broker: &Arc<MemoryBroker>, lease: Duration) -> (Link, mpsc::UnboundedReceiver<Notice>) {
    let transport: Arc<dyn Transport> = Arc::new(broker.manager(scope()));
    Link::connect(transport, LinkConfig::new(lease)).await.expect("connects")
}

#[tokio::test(start_paused = true)]
async fn publishes_and_forwards_results() {
    let broker = MemoryBroker::new();
    let (link, mut rx) = start(&broker, Duration::from_secs(30)).await;
    let worker = broker.worker(WorkerScope { worker: "w1".into(), pool: "p".into() });
    link.publish(vec![job("a")]);
    let published = next(&mut rx, |n| match n {
        Notice::Published(p) => Some(p),
        _ => None,
    })
    .await;
    assert_eq!(published[0].key, "a.1");
    let jobs = worker.next_jobs(1).await.unwrap();
    assert_eq!(jobs[0].entry, published[0].entry);
    let result = WorkerMsg::Result {
        key: "a.1".into(),
        dispatch: "d-a".into(),
        worker: "w1".into(),
        outcome: RemoteOutcome {
            status: OutcomeStatus::Success,
            result: None,
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
        },
    };
    worker.report("r", result.clone()).await.unwrap();
    let inbound = next(&mut rx, |n| match n {
        Notice::Inbound(v) => Some(v),
        _ => None,
    })
    .await;
    assert_eq!(inbound[0].msg.as_ref().unwrap(), &result);
    link.ack(vec![inbound[0].id.clone()]);
    link.withdraw(vec![published[0].entry.clone()]);
    link.finish(true).await.unwrap();
    assert_eq!(broker.queued("r"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_outage_keeps_the_outbox_and_reports_lost_data() {
    let broker = MemoryBroker::new();
    let (link, mut rx) = start(&broker, Duration::from_secs(30)).await;
    let mut state = link.state();
    broker.go_down();
    // Sent as the outage begins: its failed attempt must keep it queued.
    link.publish(vec![job("b")]);
    next(&mut rx, |n| matches!(n, Notice::Down { .. }).then_some(())).await;
    assert!(!state.borrow_and_update().is_up());
    link.publish(vec![job("b2")]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(broker.queued("r"), 0, "nothing is sent while down");
    broker.come_back(true);
    let data_lost = next(&mut rx, |n| match n {
        Notice::Up { data_lost, .. } => Some(data_lost),
        _ => None,
    })
    .await;
    assert!(data_lost, "the broker came back empty");
    assert_eq!(*state.borrow_and_update(), LinkState::Up { epoch: 2 });
    next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
    next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
    assert_eq!(broker.queued("r"), 2, "the outbox was sent after the outage");
}

#[tokio::test(start_paused = true)]
async fn a_silent_workers_delivery_is_reclaimed_and_workers_are_diffed() {
    let broker = MemoryBroker::new();
    let lease = Duration::from_secs(30);
    let (link, mut rx) = start(&broker, lease).await;
    let worker = broker.worker(WorkerScope { worker: "w1".into(), pool: "p".into() });
    // Its registration outlives the lease, so the gone notice comes after the reclaim.
    worker.register(&registration(40_000)).await.unwrap();
    let seen = next(&mut rx, |n| match n {
        Notice::WorkerSeen(w) => Some(w),
        _ => None,
    })
    .await;
    assert_eq!(seen.registration.worker, "w1");
    link.publish(vec![job("c")]);
    next(&mut rx, |n| matches!(n, Notice::Published(_)).then_some(())).await;
    let taken_at = Instant::now();
    assert_eq!(worker.next_jobs(1).await.unwrap().len(), 1);
    let reclaimed = next(&mut rx, |n| match n {
        Notice::Reclaimed(r) => Some(r),
        _ => None,
    })
    .await;
    assert!(taken_at.elapsed() >= lease, "not before the lease");
    assert_eq!(reclaimed[0].worker.as_deref(), Some("w1"));
    let gone = next(&mut rx, |n| match n {
        Notice::WorkerGone { info, why } => Some((info, why)),
        _ => None,
    })
    .await;
    assert_eq!((gone.0.registration.worker.as_str(), gone.1), ("w1", Gone::Expired), "its registration expired");
    drop(link);
}

#[tokio::test(start_paused = true)]
async fn a_worker_whose_registration_went_with_the_broker_s_data_did_not_leave() {
    let broker = MemoryBroker::new();
    let (_link, mut rx) = start(&broker, Duration::from_secs(30)).await;
    let worker = broker.worker(WorkerScope { worker: "w1".into(), pool: "p".into() });
    worker.register(&registration(60_000)).await.unwrap();
    next(&mut rx, |n| matches!(n, Notice::WorkerSeen(_)).then_some(())).await;
    // A restart without persistence: the registration is gone with everything else.
    broker.go_down();
    next(&mut rx, |n| matches!(n, Notice::Down { .. }).then_some(())).await;
    broker.come_back(true);
    let gone = next(&mut rx, |n| match n {
        Notice::WorkerGone { info, why } => Some((info.registration.worker, why)),
        _ => None,
    })
    .await;
    assert_eq!(gone, ("w1".to_string(), Gone::DataLost));
    // It registers again and is seen; a later goodbye is a goodbye.
    worker.register(&registration(60_000)).await.unwrap();
    next(&mut rx, |n| matches!(n, Notice::WorkerSeen(_)).then_some(())).await;
    worker.unregister().await.unwrap();
    let gone = next(&mut rx, |n| match n {
        Notice::WorkerGone { why, .. } => Some(why),
        _ => None,
    })
    .await;
    assert_eq!(gone, Gone::Left);
}
