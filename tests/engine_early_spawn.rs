//! The engine starts a local attempt once its `attempt_started` is written, before
//! the batch's fdatasync, and still records nothing of it before that fdatasync
//! (issue 14, P1; `src/engine/early.rs`). A store whose fdatasync the test holds,
//! and a runner that reports each start, on paused tokio time. (The held batch here
//! also records the manager's start, which later batches never overtake; batches
//! that may be overtaken are `tests/engine_in_flight.rs`'s.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitboss::config;
use pitboss::core::decide::Outcome;
use pitboss::core::{Event, Input, RunState, SmallOutput};
use pitboss::engine::{Ending, Engine, EngineConfig, World};
use pitboss::io::clock::TokioClock;
use pitboss::io::journal::{JournalError, Record, Synced};
use pitboss::io::runner::{AttemptEnd, AttemptFuture, AttemptJob, Runner};
use pitboss::io::store::{Append, EventStore, Written};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

const T0: u64 = 1_800_000_000_000;

/// Records in memory; the fdatasync (or, with `write`, the write itself) of the
/// first batch that starts an attempt waits until the test releases it.
#[derive(Clone)]
struct HeldStore {
    records: Arc<Mutex<Vec<Record>>>,
    hold: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    write: bool,
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
        records.iter().map(|r| serde_json::to_value(&r.event).unwrap()["type"].as_str().unwrap().to_string()).collect()
    }
}

impl EventStore for HeldStore {
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Append<'a> {
        let first = self.push(ts, events);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn append_written<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Written<'a> {
        let starts = events.iter().any(|e| matches!(e, Event::AttemptStarted { .. }));
        let held = if starts { self.hold.lock().unwrap().take() } else { None };
        let (write_held, held) = if self.write { (held, None) } else { (None, held) };
        if let Some(write) = write_held {
            return Box::pin(async move {
                let _ = write.await;
                let first = self.push(ts, events);
                Ok((first, Box::pin(std::future::ready(Ok(()))) as Synced))
            });
        }
        let first = self.push(ts, events);
        let synced: Synced = Box::pin(async move {
            if let Some(held) = held {
                let _ = held.await;
            }
            Ok::<(), JournalError>(())
        });
        Box::pin(std::future::ready(Ok((first, synced))))
    }
}

/// Reports each attempt (task, and stdin replica number if any) as it starts; each
/// ends at once with success.
struct Reporting(mpsc::UnboundedSender<String>);

impl Runner for Reporting {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let _ = self.0.send(job.spec.task.clone());
        Box::pin(async move {
            (job.on_spawn)(4242);
            let stdin: serde_json::Value =
                job.spec.stdin.as_deref().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            let result = if stdin.get("candidates").is_some() { json!({"winner": 0}) } else { json!(1) };
            AttemptEnd::Outcome(Outcome::Success {
                result,
                exit_code: Some(0),
                duration_ms: 0,
                output: SmallOutput::default(),
            })
        })
    }
}

/// An engine on `workflow` with a held store (its write held, with `write`); gives the store, the release of the
/// hold, the starts the runner sees, and the engine's run.
#[allow(clippy::type_complexity)]
fn engine(
    workflow: &str,
    write: bool,
) -> (
    HeldStore,
    oneshot::Sender<()>,
    mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<Result<(RunState, Ending), pitboss::engine::EngineError>>,
) {
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let (release, held) = oneshot::channel();
    let store = HeldStore { records: Default::default(), hold: Arc::new(Mutex::new(Some(held))), write };
    store.push(T0, &[Event::RunStarted { run_id: "run-1".into(), workflow: Arc::new(wf) }]);
    let (starts_tx, starts) = mpsc::unbounded_channel();
    let world = World { clock: Arc::new(TokioClock::starting_at(T0)), runner: Arc::new(Reporting(starts_tx)) };
    let config = EngineConfig {
        state_dir: PathBuf::from("/nonexistent"),
        output_dir: PathBuf::from("/nonexistent"),
        pitboss_exe: PathBuf::from("pitboss"),
        exit_when_done: true,
    };
    let engine = Engine::new(state, Box::new(store.clone()), config, world);
    engine.handle().send(Input::Start { pid: 1, version: "test".into(), resumed: false });
    let run = tokio::spawn(engine.run(std::future::pending()));
    (store, release, starts, run)
}

/// Far longer than anything the engine does on paused time: if a start were waiting
/// for the held fdatasync, it would not come within this.
const A_WHILE: Duration = Duration::from_secs(600);

#[tokio::test(start_paused = true)]
async fn a_local_attempt_starts_before_its_start_is_durable_and_its_end_is_recorded_after() {
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\nconcurrency = 2\n\
              [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
    let (store, release, mut starts, run) = engine(wf, false);
    // Both attempts start while the batch that started them is still not durable.
    for _ in 0..2 {
        let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
        assert!(matches!(start, Ok(Some(_))), "an attempt waited for its start's fdatasync: {:?}", store.types());
    }
    // Both ended at once, but nothing of them is recorded before that fdatasync.
    tokio::time::sleep(A_WHILE).await;
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_started").count(), 2, "{types:?}");
    assert!(!types.iter().any(|t| t == "attempt_succeeded" || t == "attempt_spawned"), "{types:?}");
    release.send(()).unwrap();
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
    let types = store.types();
    assert_eq!(types.iter().filter(|t| *t == "attempt_succeeded").count(), 2, "{types:?}");
    let last_start = types.iter().rposition(|t| t == "attempt_started").unwrap();
    let first_end = types.iter().position(|t| t == "attempt_succeeded").unwrap();
    assert!(last_start < first_end, "{types:?}");
}

/// Consensus replicas keep the write-ahead: none starts before its attempt's start
/// is durable (see `src/engine/early.rs` for why).
#[tokio::test(start_paused = true)]
async fn consensus_replicas_wait_for_the_start_to_be_durable() {
    let wf = "[defaults]\nretry = { max_attempts = 1 }\n\
              [[pool]]\nname = \"w\"\ncommand = [\"unused\"]\n\
              [[task]]\nid = \"q\"\nconsensus = { replicas = 3, strategy = \"majority\" }\n";
    let (store, release, mut starts, run) = engine(wf, false);
    tokio::time::sleep(A_WHILE).await;
    assert!(starts.try_recv().is_err(), "a replica started before its start was durable: {:?}", store.types());
    assert!(store.types().iter().any(|t| t == "attempt_started"), "{:?}", store.types());
    release.send(()).unwrap();
    let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
    assert!(matches!(start, Ok(Some(_))), "no replica started once durable");
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
}

/// The write-ahead that stays: no attempt starts before its `attempt_started` is
/// written (in a real log: in the page cache, where a crash of the manager alone
/// cannot lose it).
#[tokio::test(start_paused = true)]
async fn no_attempt_starts_before_its_start_is_written() {
    let wf = "[[pool]]\nname = \"p\"\ncommand = [\"unused\"]\n[[task]]\nid = \"a\"\n";
    let (store, release, mut starts, run) = engine(wf, true);
    tokio::time::sleep(A_WHILE).await;
    assert!(starts.try_recv().is_err(), "an attempt started before its start was written: {:?}", store.types());
    release.send(()).unwrap();
    let start = tokio::time::timeout(A_WHILE, starts.recv()).await;
    assert!(matches!(start, Ok(Some(_))), "no start once written");
    let (_, ending) = tokio::time::timeout(A_WHILE, run).await.expect("the run ended").unwrap().unwrap();
    assert_eq!(ending, Ending::Finished);
}
