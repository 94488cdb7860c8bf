//! While a batch waits for its fdatasync the engine goes on taking later batches,
//! unless what the batch still has to do cannot wait behind them (issue 14, P1;
//! `src/engine/in_flight.rs`). A store that holds the fdatasync of one chosen batch,
//! and a runner whose attempts end at once, on paused tokio time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss::config;
use pitboss::core::decide::Outcome;
use pitboss::core::{Event, Input, RunState, SmallOutput};
use pitboss::engine::{Ending, Engine, EngineConfig, EngineError, EngineHandle, World};
use pitboss::io::clock::TokioClock;
use pitboss::io::journal::{JournalError, Record, Synced};
use pitboss::io::runner::{AttemptEnd, AttemptFuture, AttemptJob, Runner};
use pitboss::io::store::{Append, EventStore, Written};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

const T0: u64 = 1_800_000_000_000;

/// Which batch's fdatasync a [`HeldStore`] holds: the first holding an event of this type.
type Pick = fn(&Event) -> bool;

/// Records in memory, written at once; the fdatasync of the first batch `pick`
/// chooses waits until the test releases it.
#[derive(Clone)]
struct HeldStore {
    records: Arc<Mutex<Vec<Record>>>,
    hold: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    pick: Pick,
    /// Records in the store when the held batch was written (its last seq).
    held_at: Arc<Mutex<Option<u64>>>,
}

impl HeldStore {
    fn push(&self, ts: u64, events: &[Event]) -> u64 {
        let mut records = self.records.lock().unwrap();
        let first = records.last().map_or(1, |r| r.seq + 1);
        for (k, event) in events.iter().enumerate() {
            records.push(Record { seq: first + k as u64, ts, event: event.clone() });
        }
        first
    }

    fn types(&self) -> Vec<String> {
        let records = self.records.lock().unwrap();
        records.iter().map(|r| type_of(&r.event)).collect()
    }

    fn held_at(&self) -> Option<u64> {
        *self.held_at.lock().unwrap()
    }
}

fn type_of(event: &Event) -> String {
    serde_json::to_value(event).unwrap()["type"].as_str().unwrap().to_string()
}

impl EventStore for HeldStore {
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Append<'a> {
        let first = self.push(ts, events);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn append_written<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Written<'a> {
        let first = self.push(ts, events);
        let held = if events.iter().any(self.pick) { self.hold.lock().unwrap().take() } else { None };
        if held.is_some() {
            *self.held_at.lock().unwrap() = Some(first + events.len() as u64 - 1);
        }
        let synced: Synced = Box::pin(async move {
            if let Some(held) = held {
                let _ = held.await;
            }
            Ok::<(), JournalError>(())
        });
        Box::pin(std::future::ready(Ok((first, synced))))
    }
}

/// Reports each attempt's task as it starts; each succeeds after the given time.
struct Reporting(mpsc::UnboundedSender<String>, Duration);

impl Runner for Reporting {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let _ = self.0.send(job.spec.task.clone());
        let takes = self.1;
        Box::pin(async move {
            (job.on_spawn)(4242);
            tokio::time::sleep(takes).await;
            AttemptEnd::Outcome(Outcome::Success {
                result: json!(1),
                exit_code: Some(0),
                duration_ms: 0,
                output: SmallOutput::default(),
            })
        })
    }
}

type Run = tokio::task::JoinHandle<Result<(RunState, Ending), EngineError>>;

/// An engine on `workflow` whose store holds the fdatasync of the first batch `pick`
/// chooses; gives the store, the release, the starts the runner sees, a handle, the run.
fn engine(
    workflow: &str,
    pick: Pick,
    takes: Duration,
) -> (HeldStore, oneshot::Sender<()>, mpsc::UnboundedReceiver<String>, EngineHandle, Run) {
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let (release, held) = oneshot::channel();
    let store = HeldStore {
        records: Default::default(),
        hold: Arc::new(Mutex::new(Some(held))),
        pick,
        held_at: Default::default(),
    };
    store.push(T0, &[Event::RunStarted { run_id: "run-1".into(), workflow: Arc::new(wf) }]);
    let (starts_tx, starts) = mpsc::unbounded_channel();
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: Arc::new(Reporting(starts_tx, takes)) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    let handle = engine.handle();
    handle.send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    let run = tokio::spawn(engine.run(std::future::pending()));
    (store, release, starts, handle, run)
}

/// Far longer than anything the engine does on paused time: whatever was going to
/// happen without the held fdatasync has happened within this.
const A_WHILE: Duration = Duration::from_secs(600);

const THREE_IN_A_ROW: &str = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 1\n\
                              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\n";

fn succeeded(event: &Event) -> bool {
    matches!(event, Event::AttemptSucceeded { .. })
}

fn cancelled(event: &Event) -> bool {
    matches!(event, Event::TaskCancelled { .. })
}

#[tokio::test(start_paused = true)]
async fn later_batches_go_on_while_an_earlier_one_waits_for_its_fdatasync() {
    // The batch recording a's success (and starting b) waits for the disk; b's and c's
    // attempts run meanwhile.
    let (store, release, mut starts, handle, mut run) = engine(THREE_IN_A_ROW, succeeded, Duration::ZERO);
    let mut subscriber = handle.subscribe();
    let mut started = Vec::new();
    for k in 0..3 {
        if k == 2 {
            // b started with the held batch (once written); c's batch comes only once
            // the engine's patience with that fdatasync (3 ms) is over: a usual
            // fdatasync is still waited for, so that batches stay big.
            tokio::time::sleep(Duration::from_micros(500)).await;
            assert!(starts.try_recv().is_err(), "a later batch was taken at once: {:?}", store.types());
        }
        match tokio::time::timeout(A_WHILE, starts.recv()).await {
            Ok(Some(task)) => started.push(task),
            _ => panic!("only {started:?} started while a batch waited for its fdatasync: {:?}", store.types()),
        }
    }
    assert_eq!(started, ["a", "b", "c"]);
    tokio::time::sleep(A_WHILE).await;
    let held_at = store.held_at().expect("the batch with a's success was written");
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 3, "{types:?}");
    // What waits for durability did not happen: the fan-out stops before the held
    // batch, a reader is not answered, and the run does not end.
    let mut published = 0;
    while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_millis(1), subscriber.recv()).await {
        published = batch.last().map_or(published, |r: &Record| r.seq);
    }
    assert!(published < held_at, "records up to {published} published, the batch up to {held_at} is not durable");
    let read = handle.read(|state, _| state.finished);
    tokio::pin!(read);
    assert!(tokio::time::timeout(A_WHILE, &mut read).await.is_err(), "a reader saw state that is not durable");
    assert!(tokio::time::timeout(A_WHILE, &mut run).await.is_err(), "the run ended with a batch not durable");
    release.send(()).unwrap();
    assert_eq!(tokio::time::timeout(A_WHILE, read).await.expect("the reader is answered once durable"), Some(true));
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    // Everything reached the fan-out, in order.
    let mut seqs = Vec::new();
    while let Ok(Some(batch)) = tokio::time::timeout(A_WHILE, subscriber.recv()).await {
        seqs.extend(batch.iter().map(|r| r.seq));
    }
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(seqs.last().copied(), store.records.lock().unwrap().last().map(|r| r.seq));
}

#[tokio::test(start_paused = true)]
async fn a_batch_that_stops_something_is_waited_for_before_the_next() {
    // a runs for a minute; c (after b) is cancelled meanwhile, and the cancel's batch
    // waits for the disk. a's end comes, but no batch is taken after the cancel's
    // until it is durable: a's success is not recorded and b does not start.
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 1\n\
              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n";
    let (store, release, mut starts, handle, run) = engine(wf, cancelled, Duration::from_secs(60));
    assert_eq!(tokio::time::timeout(A_WHILE, starts.recv()).await.ok().flatten().as_deref(), Some("a"));
    handle.send(Input::Cancel { task: "c".into(), reason: "operator".into() });
    tokio::time::sleep(A_WHILE).await;
    let held_at = store.held_at().expect("the cancel was written");
    let after = store.types().split_off(held_at as usize);
    assert!(after.is_empty(), "recorded while a cancel waited for its fdatasync: {after:?}");
    assert!(starts.try_recv().is_err(), "an attempt started while a cancel waited for its fdatasync");
    release.send(()).unwrap();
    assert_eq!(tokio::time::timeout(A_WHILE, starts.recv()).await.ok().flatten().as_deref(), Some("b"));
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "task_cancelled").count(), 1, "{types:?}");
}
