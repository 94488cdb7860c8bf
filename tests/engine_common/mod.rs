//! An engine over a store whose write or fdatasync of one chosen batch the test holds,
//! with a runner that reports each start, for tests on paused tokio time of what the
//! engine does before a batch is durable (`engine_early_spawn.rs`, `engine_in_flight.rs`).
#![allow(dead_code)] // each test file uses a different subset

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

pub const T0: u64 = 1_800_000_000_000;

/// Far longer than anything the engine does on paused time: whatever was going to
/// happen without the held batch has happened within this.
pub const A_WHILE: Duration = Duration::from_secs(600);

/// Which batch a [`HeldStore`] holds: the first holding an event this says yes to.
pub type Pick = fn(&Event) -> bool;

/// Records in memory; the fdatasync (or, with `write`, the write itself) of the
/// first batch `pick` chooses waits until the test releases it.
#[derive(Clone)]
pub struct HeldStore {
    pub records: Arc<Mutex<Vec<Record>>>,
    hold: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    pick: Pick,
    write: bool,
    /// The last seq of the held batch, once written.
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

    /// The type of every record so far.
    pub fn types(&self) -> Vec<String> {
        let records = self.records.lock().unwrap();
        records.iter().map(|r| serde_json::to_value(&r.event).unwrap()["type"].as_str().unwrap().to_string()).collect()
    }

    /// The last seq of the held batch, once it is written.
    pub fn held_at(&self) -> Option<u64> {
        *self.held_at.lock().unwrap()
    }

    /// Writes `events` now, noting where the held batch ends if it is.
    fn write_now(&self, ts: u64, events: &[Event], held: bool) -> u64 {
        let first = self.push(ts, events);
        if held {
            *self.held_at.lock().unwrap() = Some(first + events.len() as u64 - 1);
        }
        first
    }
}

impl EventStore for HeldStore {
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Append<'a> {
        let first = self.push(ts, events);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn append_written<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Written<'a> {
        let held = if events.iter().any(self.pick) { self.hold.lock().unwrap().take() } else { None };
        let is_held = held.is_some();
        let (write_held, sync_held) = if self.write { (held, None) } else { (None, held) };
        if let Some(write) = write_held {
            return Box::pin(async move {
                let _ = write.await;
                let first = self.write_now(ts, events, true);
                Ok((first, Box::pin(std::future::ready(Ok(()))) as Synced))
            });
        }
        let first = self.write_now(ts, events, is_held);
        let synced: Synced = Box::pin(async move {
            if let Some(held) = sync_held {
                let _ = held.await;
            }
            Ok::<(), JournalError>(())
        });
        Box::pin(std::future::ready(Ok((first, synced))))
    }
}

/// Reports each attempt (its task) as it starts; each succeeds after the given time
/// (a consensus judge, given candidates, picks the first).
struct Reporting(mpsc::UnboundedSender<String>, Duration);

impl Runner for Reporting {
    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let _ = self.0.send(job.spec.task.clone());
        let takes = self.1;
        Box::pin(async move {
            (job.on_spawn)(4242);
            tokio::time::sleep(takes).await;
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

/// What [`engine`] gives: the store, the release of its hold, the starts the runner
/// sees, a handle on the engine, and its run.
pub struct Held {
    pub store: HeldStore,
    pub release: oneshot::Sender<()>,
    pub starts: mpsc::UnboundedReceiver<String>,
    pub handle: EngineHandle,
    pub run: tokio::task::JoinHandle<Result<(RunState, Ending), EngineError>>,
}

/// An engine on `workflow` over a [`HeldStore`] holding the first batch `pick`
/// chooses (its write with `write`, else its fdatasync); attempts take `takes`.
pub fn engine(workflow: &str, pick: Pick, write: bool, takes: Duration) -> Held {
    let wf = config::parse(workflow, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("workflow: {e}"));
    let state = RunState::new("run-1".into(), Arc::new(wf.clone()));
    let (release, held) = oneshot::channel();
    let store = HeldStore {
        records: Default::default(),
        hold: Arc::new(Mutex::new(Some(held))),
        pick,
        write,
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
    Held { store, release, starts, handle, run }
}
