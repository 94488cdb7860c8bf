//! The engine: the one writer of a run. It owns the [`RunState`] and the journal and
//! runs one loop:
//!
//! ```text
//! inputs (worker exits, timers, operator commands, shutdown)
//!   → core::step / core::dispatch  (decide + apply, pure)
//!   → journal.append(batch)        (one write + fdatasync for the whole batch)
//!   → effects                      (spawn, stop, set timers)
//!   → broadcast(records)           (reporters, TUI)
//! ```
//!
//! Everything that arrived while the previous batch was being written is handled as
//! one batch (group commit). No effect of a batch leaves the engine before the batch
//! is durable (a crash loses nothing that anybody acted on), with one exception: a
//! local attempt starts once its record is written, while the fdatasync runs
//! ([`early`]). While a batch waits for its fdatasync, later batches may be folded
//! and written when what the first still has to do cannot be hurt by that
//! ([`in_flight`]): the in-memory fold then runs ahead of the disk by those batches.

mod attempt;
mod commit;
mod early;
pub mod fanout;
mod gates;
mod in_flight;
mod replicas;
mod snapshots;
pub mod starved;
pub mod supervise;
mod usage;

mod workspace;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::core::breaker::Circuit;
use crate::core::decide::dispatch;
use crate::core::workflow::Workflow;
use crate::core::{step, AfterFailure, ApplyError, Event, FailureClass, Input, RunState, StepContext, TaskState};
use crate::io::clock::Clock;
use crate::io::journal::JournalError;
use crate::io::runner::{AttemptEnd, CaptureFailed, OutputChunk, Runner, Stop};
use crate::io::store::EventStore;
use fanout::{Fanout, Records};
use supervise::{supervise, Reports};

/// Wall clock in ms since the epoch (for front ends; the engine reads its [`Clock`]).
pub fn now_ms() -> u64 {
    crate::io::clock::wall_ms()
}

/// The input that reports how an attempt ended.
fn end_input(task: &str, attempt: u32, end: AttemptEnd, workflow: &Workflow) -> Input {
    let task = task.to_string();
    match end {
        AttemptEnd::Outcome(outcome) => Input::Finished { task, attempt, outcome },
        // A planner's subtasks are read as a workflow's `[[task]]` entries are; the
        // core checks them against the run.
        AttemptEnd::Planned(outcome, spawn) => {
            let spawn =
                spawn.and_then(|tasks| crate::config::tasks_from_json(&serde_json::Value::Array(tasks), workflow));
            Input::Planned { task, attempt, outcome, spawn }
        }
        // A cancel is recorded already; the attempt's end changes nothing.
        AttemptEnd::Stopped(Stop::Cancel, _) => Input::AttemptStopped { task, attempt, reason: "cancelled".into() },
        // Interrupted, or a time limit that the supervisor did not turn into an outcome
        // (it always does; this is the safe reading): not the task's fault.
        AttemptEnd::Stopped(_, _) => Input::AttemptStopped { task, attempt, reason: "run interrupted".into() },
        // The core decides what a loss costs (nothing, unless it is a poison pill).
        AttemptEnd::Lost { worker, reason, started } => Input::WorkerLost { task, attempt, worker, reason, started },
    }
}

/// Messages handled as one batch at most (one group commit).
const MAX_BATCH: usize = 4096;

/// Engine failures: the run stops, and what is on disk stays consistent.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The event log could not be written.
    #[error("cannot write the event log: {0}")]
    Journal(#[from] JournalError),
    /// A decision produced an event that does not fit the state (a bug).
    #[error("internal error, please report it: {0}")]
    Apply(#[from] ApplyError),
    /// Workers could not start for lack of a resource, too many times in a row (see
    /// [`starved`]); the run was stopped and stays resumable.
    #[error("{0}")]
    Starved(String),
}

/// Where the engine's workers live and what they may refer to.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The run folder (`{state_dir}`).
    pub state_dir: PathBuf,
    /// Folder for captured output.
    pub output_dir: PathBuf,
    /// Path of the pitboss binary (`{pitboss}`), for the bundled sim-agent.
    pub pitboss_exe: PathBuf,
    /// Return once every task is terminal (headless) instead of waiting for commands.
    pub exit_when_done: bool,
}

/// What the engine is given of the world: its clock, and where attempts run.
#[derive(Clone)]
pub struct World {
    /// Time, for timestamps and every timer.
    pub clock: Arc<dyn Clock>,
    /// Where attempts run.
    pub runner: Arc<dyn Runner>,
}

/// Messages into the engine loop.
#[derive(Debug)]
enum Msg {
    /// An input from outside (operator command, timer).
    Input(Input),
    /// A runner (an attempt or a gate) finished; `input` reports how (none for a gate
    /// the engine stopped).
    RunnerDone { task: String, attempt: u32, input: Option<Input> },
    /// Stop the run (an operator quit, a front end ending); the reason is recorded.
    Stop(String),
    /// A note from a running attempt that decides nothing (an output stream that
    /// cannot be saved): recorded and folded as it is.
    Note(Event),
    /// A process of a consensus attempt ended; `input` reports how, if it matters.
    Part { task: String, attempt: u32, part: replicas::Part, input: Option<Input> },
    /// A question about the run's state (see [`EngineHandle::read`]).
    Read(Reader),
}

/// What the loop does next: finish the oldest batch in flight, or take a message.
enum Next {
    Synced(Result<(), JournalError>),
    Msg(Msg),
}

/// A reader of the engine's state, answered between batches: once the batch before
/// is durable and handed to the fan-out, so it sees exactly the records subscribers
/// got so far (their next seq is given with it). The control socket and the headless
/// reporter read the run this way instead of keeping folds of their own: one state
/// in the manager, written by the engine alone (DESIGN §1).
struct Reader(Box<ReadFn>);

/// What a [`Reader`] runs: the state, and the seq of the next record.
type ReadFn = dyn FnOnce(&RunState, Option<u64>) + Send;

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reader")
    }
}

/// A handle for sending commands to a running engine and watching its events.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Msg>,
    fanout: Arc<Fanout>,
    output: broadcast::Sender<OutputChunk>,
}

impl EngineHandle {
    /// Sends an input; false if the engine has stopped.
    pub fn send(&self, input: Input) -> bool {
        self.tx.send(Msg::Input(input)).is_ok()
    }

    /// Asks the engine to stop the run: running attempts are ended and the run stays
    /// resumable. Later requests are ignored.
    pub fn stop(&self, reason: &str) {
        let _ = self.tx.send(Msg::Stop(reason.to_string()));
    }

    /// Every batch committed from now on, in order, none lost (see [`fanout`]). The
    /// queue ends when the engine stops.
    pub fn subscribe(&self) -> Records {
        self.fanout.subscribe()
    }

    /// Subscribes to workers' output as it arrives (not durable; live views only, and
    /// a slow reader may miss chunks).
    pub fn subscribe_output(&self) -> broadcast::Receiver<OutputChunk> {
        self.output.subscribe()
    }

    /// Runs `f` on the engine's state between two batches (see [`Reader`]) and gives
    /// back what it returns; `f` also gets the seq the next record will have (none
    /// before the engine's first batch). `None` once the engine has stopped. `f` runs
    /// on the engine's loop: keep it short (copy out what is needed, do I/O after).
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&RunState, Option<u64>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let reader = Reader(Box::new(move |state, next_seq| {
            let _ = tx.send(f(state, next_seq));
        }));
        self.tx.send(Msg::Read(reader)).ok()?;
        rx.await.ok()
    }
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every task is terminal.
    Finished,
    /// Shutdown was requested; the run can be resumed.
    Interrupted,
}

/// The single writer of one run.
pub struct Engine {
    state: RunState,
    store: Box<dyn EventStore>,
    config: EngineConfig,
    world: World,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    fanout: Arc<Fanout>,
    output: broadcast::Sender<OutputChunk>,
    running: HashMap<String, (u32, watch::Sender<Option<Stop>>)>,
    /// Issue 11 (item 8): set when the run gives up on workers that cannot start.
    starved: Option<String>,
    /// Schema gates compiled so far (once per run and gate, never per result).
    schemas: gates::Schemas,
    /// Consensus attempts' live replicas and judges.
    replicas: replicas::Book,
    /// When and where snapshots of the state are written.
    snapshots: snapshots::Snapshots,
    /// The seq of the next record (known after the first append).
    next_seq: Option<u64>,
    /// Each persistent pool's worker spec, built on its first attempt.
    worker_specs: std::sync::Mutex<HashMap<String, Arc<crate::io::runner::persistent::WorkerSpec>>>,
    /// How long to wait for the attempts of the last commit before the next one.
    gather: commit::Gather,
    /// Batches written, not yet durable.
    in_flight: in_flight::InFlight,
    /// Readers waiting for the batches in flight to be durable.
    readers: Vec<Reader>,
    _close: CloseOnDrop,
}

/// Closes the fan-out when the engine goes, however it ends (finished, interrupted,
/// failed, or dropped mid-run): subscribers see their queues end after the last
/// committed batch instead of waiting for ever.
struct CloseOnDrop(Arc<Fanout>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl Engine {
    /// Wraps a state folded from `store`'s records (fresh or replayed).
    pub fn new(state: RunState, store: Box<dyn EventStore>, config: EngineConfig, world: World) -> Engine {
        let (tx, rx) = mpsc::unbounded_channel();
        let (output, _) = broadcast::channel(1024);
        let fanout = Arc::new(Fanout::new());
        Engine {
            _close: CloseOnDrop(fanout.clone()),
            state,
            store,
            config,
            world,
            tx,
            rx,
            fanout,
            output,
            running: HashMap::new(),
            starved: None,
            schemas: HashMap::new(),
            replicas: replicas::Book::default(),
            snapshots: snapshots::Snapshots::new(crate::io::snapshot::every()),
            next_seq: None,
            worker_specs: Default::default(),
            gather: commit::Gather::default(),
            in_flight: Default::default(),
            readers: Vec::new(),
        }
    }

    /// Says that `state` was opened from the snapshot after record `seq` (none: folded
    /// from the log), so a clean stop knows how far behind the newest snapshot it is.
    pub fn opened_from_snapshot(mut self, seq: Option<u64>) -> Engine {
        self.snapshots.opened_from(seq);
        self
    }

    /// A handle for commands and event subscriptions.
    pub fn handle(&self) -> EngineHandle {
        EngineHandle { tx: self.tx.clone(), fanout: self.fanout.clone(), output: self.output.clone() }
    }

    /// Runs until the run finishes (when `exit_when_done`) or `shutdown` resolves and
    /// every attempt has been stopped. `shutdown` yields the reason recorded.
    pub async fn run(mut self, shutdown: impl Future<Output = String>) -> Result<(RunState, Ending), EngineError> {
        tokio::pin!(shutdown);
        let mut shutting_down = false;
        // Backoff timers do not survive a manager: set them again from the state.
        for (i, task) in self.state.tasks.iter().enumerate() {
            if let TaskState::RetryWait { due_ms } = task.state {
                self.set_timer(self.state.task_id(i).to_string(), due_ms);
            }
        }
        // Gates do not survive a manager either: a validating task runs its current
        // gate again (its result is in the log).
        let validating: Vec<(String, u32, usize)> = (self.state.tasks.iter().enumerate())
            .filter_map(|(i, t)| match t.state {
                TaskState::Validating { attempt, gate } => Some((self.state.task_id(i).to_string(), attempt, gate)),
                _ => None,
            })
            .collect();
        for (task, attempt, gate) in validating {
            self.start_gate(&task, attempt, gate);
        }
        for (p, breaker) in self.state.pools.iter().map(|p| &p.breaker).enumerate() {
            if let Circuit::Open { until_ms: Some(until) } = breaker.circuit {
                self.set_breaker_timer(self.state.workflow.pools[p].name.clone(), until);
            }
        }
        let ending = loop {
            let take = self.take();
            let takes = matches!(take, in_flight::Take::Now);
            let patience = match take {
                in_flight::Take::From(over) => Some(over),
                _ => None,
            };
            let next = tokio::select! {
                biased;
                synced = self.in_flight.oldest_synced(), if !self.in_flight.is_empty() => Next::Synced(synced),
                () = tokio::time::sleep_until(patience.unwrap_or_else(tokio::time::Instant::now)), if patience.is_some() => {
                    continue;
                }
                reason = &mut shutdown, if !shutting_down && takes => {
                    shutting_down = true;
                    Next::Msg(Msg::Input(Input::Interrupt { reason }))
                }
                Some(msg) = self.rx.recv(), if takes => Next::Msg(msg),
            };
            match next {
                Next::Synced(result) => self.synced(result).await?,
                Next::Msg(Msg::Stop(_)) if shutting_down => continue,
                Next::Msg(Msg::Stop(reason)) => {
                    shutting_down = true;
                    self.take_batch(Msg::Input(Input::Interrupt { reason })).await?;
                }
                Next::Msg(msg) => self.take_batch(msg).await?,
            }
            // Readers are answered once what came before them is durable and published.
            if self.in_flight.is_empty() {
                for Reader(read) in self.readers.drain(..) {
                    read(&self.state, self.next_seq);
                }
            }
            // Checked after a batch, not before the first: a resumed log may end
            // interrupted or finished, and the manager's start input changes that.
            if self.in_flight.is_empty() && self.running.is_empty() && self.replicas.is_idle() {
                if self.state.interrupted {
                    // Issue 11 (item 8): a give-up is an error for the caller, not an interruption.
                    if let Some(reason) = self.starved.take() {
                        return Err(EngineError::Starved(reason));
                    }
                    break Ending::Interrupted;
                }
                // A finished run being closed (the TUI's quit) needs no interruption.
                if self.state.finished && (self.config.exit_when_done || shutting_down) {
                    break Ending::Finished;
                }
            }
        };
        // A clean stop leaves a snapshot, so the next open folds nothing.
        let at = self.store.position();
        let state = self.snapshots.at_stop(&self.config.state_dir, self.state, at).await;
        Ok((state, ending))
    }

    async fn process(&mut self, batch: Vec<Msg>) -> Result<(), EngineError> {
        let now = self.world.clock.now_ms();
        // Jitter draws are taken up front: the thread-local rng must not be held
        // across the journal's await (the engine future stays Send).
        let draws: Vec<f64> = {
            let mut rng = rand::rng();
            (0..batch.len()).map(|_| rng.random::<f64>()).collect()
        };
        let mut events = Vec::new();
        for (msg, jitter) in batch.into_iter().zip(draws) {
            let input = match msg {
                Msg::Input(input) => input,
                Msg::Note(event) => {
                    // A note that does not fit (it cannot, coming from a running
                    // attempt) is not worth stopping the run for.
                    match self.state.apply(&event, now) {
                        Ok(()) => events.push(event),
                        Err(e) => tracing::warn!("note not recorded: {e}"),
                    }
                    continue;
                }
                // A stop that arrived within a batch: handled as the batch's interrupt.
                Msg::Stop(reason) => Input::Interrupt { reason },
                // Taken out of the batch by the loop; one that got here is answered
                // before the batch is written, which no caller relies on.
                Msg::Read(Reader(read)) => {
                    read(&self.state, self.next_seq);
                    continue;
                }
                Msg::Part { task, attempt, part, input } => {
                    self.part_ended(&task, attempt, part);
                    match input {
                        Some(input) => input,
                        None => continue,
                    }
                }
                Msg::RunnerDone { task, attempt, input } => {
                    if self.running.get(&task).is_some_and(|(a, _)| *a == attempt) {
                        self.running.remove(&task);
                    }
                    match input {
                        Some(input) => input,
                        None => continue,
                    }
                }
            };
            let ctx = StepContext { now_ms: now, jitter };
            events.extend(step(&mut self.state, input, ctx)?);
        }
        events.extend(dispatch(&mut self.state, StepContext { now_ms: now, jitter: 0.0 })?);
        if events.is_empty() {
            return Ok(());
        }
        // `attempt_spawned` notes are acted on by nobody live (only a later resume reads
        // them), so a batch of nothing else does not wait for the disk.
        let durable = events.iter().any(|e| !matches!(e, Event::AttemptSpawned { .. }));
        let writing = tokio::time::Instant::now();
        let (first_seq, synced) = self.store.append_written(now, &events, durable).await?;
        let done = self.start_early(&events);
        let overlaps = self.may_overlap(&events, &done);
        self.in_flight.push(in_flight::Unsynced { synced, events, done, first_seq, now, durable, writing, overlaps });
        Ok(())
    }

    fn effect(&mut self, event: &Event) {
        if self.replica_effect(event) {
            return;
        }
        match event {
            Event::AttemptStarted { task, attempt, pool } => self.start_attempt(task, *attempt, pool, false),
            // A broker run's attempts outlive a manager on their workers: the ones the
            // core left running after a restart are waited for again, not restarted.
            Event::ManagerStarted { resumed: true, .. } if self.state.workflow.head().broker.is_some() => {
                self.reattach()
            }
            Event::AttemptFailed {
                task,
                then: AfterFailure::Retry { due_ms, .. } | AfterFailure::Defer { due_ms, .. },
                ..
            }
            | Event::GateFailed { task, then: AfterFailure::Retry { due_ms, .. }, .. }
            | Event::GateError { task, then: AfterFailure::Retry { due_ms, .. }, .. } => {
                self.set_timer(task.clone(), *due_ms)
            }
            // The result's first gate, or the next one after a pass (only if the task
            // is still at that gate: a cancel in the same batch wins).
            Event::AttemptSucceeded { task, attempt, .. } => self.next_gate(task, *attempt, 0),
            Event::GatePassed { task, attempt, index, .. } => self.next_gate(task, *attempt, index + 1),
            Event::BreakerOpened { pool, until_ms: Some(until), .. } => self.set_breaker_timer(pool.clone(), *until),
            Event::TaskCancelled { task, .. } => {
                if let Some((_, stop)) = self.running.get(task) {
                    let _ = stop.send(Some(Stop::Cancel));
                }
            }
            Event::RunInterrupted { .. } => {
                for (_, stop) in self.running.values() {
                    let _ = stop.send(Some(Stop::Interrupt));
                }
            }
            _ => {}
        }
    }

    /// Starts gate `gate` of task `task` when the task is validating `attempt` there.
    fn next_gate(&mut self, task: &str, attempt: u32, gate: usize) {
        let at = self.state.task_index(task).map(|i| &self.state.tasks[i].state);
        if at == Some(&TaskState::Validating { attempt, gate }) {
            self.start_gate(task, attempt, gate);
        }
    }

    /// Sets the retry timer of a task: `retry_due` at `due_ms` on the engine's clock.
    fn set_timer(&self, task: String, due_ms: u64) {
        let (tx, sleep) = (self.tx.clone(), self.world.clock.sleep_until(due_ms));
        tokio::spawn(async move {
            sleep.await;
            let _ = tx.send(Msg::Input(Input::RetryTimer { task, due_ms }));
        });
    }

    /// Sets a breaker's cooldown timer: half-open at `until_ms` on the engine's clock.
    fn set_breaker_timer(&self, pool: String, until_ms: u64) {
        let (tx, sleep) = (self.tx.clone(), self.world.clock.sleep_until(until_ms));
        tokio::spawn(async move {
            sleep.await;
            let _ = tx.send(Msg::Input(Input::BreakerTimer { pool, until_ms }));
        });
    }

    /// Starts an attempt under a supervisor that enforces its limits; its end comes
    /// back as a [`Msg::RunnerDone`].
    fn start_attempt(&mut self, task: &str, attempt: u32, pool: &str, reattach: bool) {
        let tx = self.tx.clone();
        let (stop_tx, stop_rx) = watch::channel(None);
        self.running.insert(task.to_string(), (attempt, stop_tx));
        let prepared = self.attempt_spec(task, attempt, pool).map(|(mut spec, limits)| {
            spec.reattach = reattach;
            (spec, limits)
        });
        let (runner, clock) = (self.world.runner.clone(), self.world.clock.clone());
        let plan = self.workspace_plan(task, attempt, pool, None);
        let task = task.to_string();
        let usage = usage::usage_note(&tx, &task, attempt, pool, self.carried_usage(&task, pool));
        let workflow = self.state.workflow.clone();
        // The workspace's steps are boxed: their git reads hold a 16 KiB buffer, which
        // inline made every attempt's task ~19 KiB, copied twice by the spawn even
        // with no workspace (benchmark P1).
        tokio::spawn(async move {
            let prepared = match (prepared, &plan) {
                (Ok((mut spec, limits)), Some(plan)) => {
                    Box::pin(plan.enter(&mut spec, &tx)).await.map(|()| (spec, limits))
                }
                (prepared, _) => prepared,
            };
            let end = match prepared {
                Ok((spec, limits)) => {
                    let (spawned_tx, spawned_task) = (tx.clone(), task.clone());
                    let (stall_tx, stall_task) = (tx.clone(), task.clone());
                    let reports = Reports {
                        on_spawn: Box::new(move |pid, worker| {
                            let _ = spawned_tx.send(Msg::Input(Input::Spawned {
                                task: spawned_task,
                                attempt,
                                pid,
                                worker,
                            }));
                        }),
                        on_stall: Box::new(move |quiet_ms| {
                            let task = stall_task.clone();
                            let _ = stall_tx.send(Msg::Input(Input::Stall { task, attempt, quiet_ms }));
                        }),
                        on_capture_failed: capture_note(&tx, &task, attempt),
                        on_usage: usage,
                    };
                    let end = supervise(runner, clock, spec, limits, stop_rx, reports).await;
                    if let Some(plan) = &plan {
                        Box::pin(plan.record_diff(&end, &tx)).await;
                    }
                    end
                }
                Err(error) => AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO),
            };
            let input = end_input(&task, attempt, end, &workflow);
            let _ = tx.send(Msg::RunnerDone { task, attempt, input: Some(input) });
        });
    }
}

/// Reports an attempt's output that could not be saved as an `output_capture_failed`
/// note, for workers and replicas alike.
fn capture_note(tx: &mpsc::UnboundedSender<Msg>, task: &str, attempt: u32) -> CaptureFailed {
    let (tx, task) = (tx.clone(), task.to_string());
    Arc::new(move |stream, error| {
        let task = task.clone();
        let _ = tx.send(Msg::Note(Event::OutputCaptureFailed { task, attempt, stream, error }));
    })
}
