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
//! one batch (group commit). The in-memory fold runs ahead of the disk by at most one
//! batch, and no effect of a batch leaves the engine before the batch is durable: a
//! crash loses nothing that anybody acted on.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, watch};

use crate::core::breaker::Circuit;
use crate::core::decide::dispatch;
use crate::core::protocol::{fill, task_json, TaskView};
use crate::core::workflow::{PoolMode, StdinMode};
use crate::core::{step, AfterFailure, ApplyError, Event, FailureClass, Input, RunState, StepContext, TaskState};
use crate::io::guardian::MANAGER_PID_ENV;
use crate::io::journal::{Journal, JournalError, JournalWriter, Record};
use crate::io::persistent::{Job, PersistentPool, WorkerSpec};
use crate::io::process::{run_attempt, AttemptEnd, AttemptSpec, OutputChunk, Stop};

/// Wall clock in ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The input that reports how an attempt ended.
fn end_input(task: &str, attempt: u32, end: AttemptEnd) -> Input {
    let task = task.to_string();
    match end {
        AttemptEnd::Outcome(outcome) => Input::Finished { task, attempt, outcome },
        AttemptEnd::Stopped(Stop::Interrupt) => {
            Input::AttemptStopped { task, attempt, reason: "run interrupted".into() }
        }
        // A cancel is recorded already; the attempt's end changes nothing.
        AttemptEnd::Stopped(Stop::Cancel) => Input::AttemptStopped { task, attempt, reason: "cancelled".into() },
    }
}

/// Engine failures: the run stops, and what is on disk stays consistent.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The event log could not be written.
    #[error("cannot write the event log: {0}")]
    Journal(#[from] JournalError),
    /// A decision produced an event that does not fit the state (a bug).
    #[error("internal error, please report it: {0}")]
    Apply(#[from] ApplyError),
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

/// Messages into the engine loop.
#[derive(Debug)]
enum Msg {
    /// An input from outside (operator command, timer).
    Input(Input),
    /// A runner finished; `input` reports how.
    RunnerDone { task: String, attempt: u32, input: Input },
}

/// A handle for sending commands to a running engine and watching its events.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<Arc<[Record]>>,
    output: broadcast::Sender<OutputChunk>,
}

impl EngineHandle {
    /// Sends an input; false if the engine has stopped.
    pub fn send(&self, input: Input) -> bool {
        self.tx.send(Msg::Input(input)).is_ok()
    }

    /// Subscribes to committed records, batch by batch.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[Record]>> {
        self.events.subscribe()
    }

    /// Subscribes to workers' output as it arrives (not durable; live views only).
    pub fn subscribe_output(&self) -> broadcast::Receiver<OutputChunk> {
        self.output.subscribe()
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
    journal: JournalWriter,
    config: EngineConfig,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    events: broadcast::Sender<Arc<[Record]>>,
    output: broadcast::Sender<OutputChunk>,
    running: HashMap<String, (u32, watch::Sender<Option<Stop>>)>,
    /// Actors of persistent pools, started on first use.
    persistent: HashMap<String, PersistentPool>,
}

impl Engine {
    /// Wraps a state folded from `journal` (fresh or replayed).
    pub fn new(state: RunState, journal: Journal, config: EngineConfig) -> Engine {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(4096);
        let (output, _) = broadcast::channel(1024);
        let journal = journal.into_writer();
        Engine { state, journal, config, tx, rx, events, output, running: HashMap::new(), persistent: HashMap::new() }
    }

    /// A handle for commands and event subscriptions.
    pub fn handle(&self) -> EngineHandle {
        EngineHandle { tx: self.tx.clone(), events: self.events.clone(), output: self.output.clone() }
    }

    /// Runs until the run finishes (when `exit_when_done`) or `shutdown` resolves and
    /// every attempt has been stopped. `shutdown` yields the reason recorded.
    pub async fn run(mut self, shutdown: impl Future<Output = String>) -> Result<(RunState, Ending), EngineError> {
        tokio::pin!(shutdown);
        let mut shutting_down = false;
        // Backoff timers do not survive a manager: set them again from the state.
        let now = now_ms();
        for (i, task) in self.state.tasks.iter().enumerate() {
            if let TaskState::RetryWait { due_ms } = task.state {
                self.set_timer(self.state.task_id(i).to_string(), due_ms, due_ms.saturating_sub(now));
            }
        }
        for (p, breaker) in self.state.breakers.iter().enumerate() {
            if let Circuit::Open { until_ms: Some(until) } = breaker.circuit {
                self.set_breaker_timer(self.state.workflow.pools[p].name.clone(), until, until.saturating_sub(now));
            }
        }
        loop {
            let first = tokio::select! {
                biased;
                reason = &mut shutdown, if !shutting_down => {
                    shutting_down = true;
                    Msg::Input(Input::Interrupt { reason })
                }
                Some(msg) = self.rx.recv() => msg,
            };
            let mut batch = vec![first];
            while batch.len() < 4096 {
                match self.rx.try_recv() {
                    Ok(msg) => batch.push(msg),
                    Err(_) => break,
                }
            }
            self.process(batch).await?;
            // Checked after a batch, not before the first: a resumed log may end
            // interrupted or finished, and the manager's start input changes that.
            if self.running.is_empty() {
                if self.state.interrupted {
                    return Ok((self.state, Ending::Interrupted));
                }
                // A finished run being closed (the TUI's quit) needs no interruption.
                if self.state.finished && (self.config.exit_when_done || shutting_down) {
                    return Ok((self.state, Ending::Finished));
                }
            }
        }
    }

    async fn process(&mut self, batch: Vec<Msg>) -> Result<(), EngineError> {
        let now = now_ms();
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
                Msg::RunnerDone { task, attempt, input } => {
                    if self.running.get(&task).is_some_and(|(a, _)| *a == attempt) {
                        self.running.remove(&task);
                    }
                    input
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
        let first_seq = self.journal.append(now, &events, durable).await?;
        for event in &events {
            self.effect(event);
        }
        let records: Arc<[Record]> = events
            .into_iter()
            .enumerate()
            .map(|(k, event)| Record { seq: first_seq + k as u64, ts: now, event })
            .collect();
        // Nobody listening is fine: the log is the source of truth.
        let _ = self.events.send(records);
        Ok(())
    }

    fn effect(&mut self, event: &Event) {
        match event {
            Event::AttemptStarted { task, attempt, pool } => self.start_attempt(task, *attempt, pool),
            Event::AttemptFailed {
                task,
                then: AfterFailure::Retry { delay_ms, due_ms } | AfterFailure::Defer { delay_ms, due_ms },
                ..
            } => self.set_timer(task.clone(), *due_ms, *delay_ms),
            Event::BreakerOpened { pool, until_ms: Some(until), .. } => {
                self.set_breaker_timer(pool.clone(), *until, until.saturating_sub(now_ms()))
            }
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

    fn set_timer(&self, task: String, due_ms: u64, delay_ms: u64) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let _ = tx.send(Msg::Input(Input::RetryTimer { task, due_ms }));
        });
    }

    fn set_breaker_timer(&self, pool: String, until_ms: u64, delay_ms: u64) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let _ = tx.send(Msg::Input(Input::BreakerTimer { pool, until_ms }));
        });
    }

    fn start_attempt(&mut self, task: &str, attempt: u32, pool: &str) {
        let tx = self.tx.clone();
        let (stop_tx, stop_rx) = watch::channel(None);
        self.running.insert(task.to_string(), (attempt, stop_tx));
        let persistent = self
            .state
            .workflow
            .pool_index(pool)
            .is_some_and(|p| self.state.workflow.pools[p].mode == PoolMode::Persistent);
        if persistent {
            self.start_persistent(task, attempt, pool, stop_rx);
            return;
        }
        let spec = self.attempt_spec(task, attempt, pool);
        let task = task.to_string();
        tokio::spawn(async move {
            let end = match spec {
                Ok(spec) => {
                    let spawned_tx = tx.clone();
                    let spawned_task = task.clone();
                    let stall_tx = tx.clone();
                    let stall_task = task.clone();
                    run_attempt(
                        spec,
                        stop_rx,
                        move |pid| {
                            let _ = spawned_tx.send(Msg::Input(Input::Spawned { task: spawned_task, attempt, pid }));
                        },
                        move |quiet_ms| {
                            let task = stall_task.clone();
                            let _ = stall_tx.send(Msg::Input(Input::Stall { task, attempt, quiet_ms }));
                        },
                    )
                    .await
                }
                Err(error) => AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO),
            };
            let input = end_input(&task, attempt, end);
            let _ = tx.send(Msg::RunnerDone { task, attempt, input });
        });
    }

    /// Hands an attempt to its persistent pool's actor (started on first use).
    fn start_persistent(&mut self, task: &str, attempt: u32, pool: &str, stop: watch::Receiver<Option<Stop>>) {
        let tx = self.tx.clone();
        let task = task.to_string();
        let line = self.attempt_spec(&task, attempt, pool).map(|spec| {
            let mut line = spec.stdin.unwrap_or_default();
            while line.last() == Some(&b'\n') {
                line.pop();
            }
            (line, spec.timeout)
        });
        let (line, timeout) = match line {
            Ok(x) => x,
            Err(error) => {
                let input =
                    end_input(&task, attempt, AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO));
                let _ = tx.send(Msg::RunnerDone { task, attempt, input });
                return;
            }
        };
        let actor = match self.persistent.get(pool) {
            Some(actor) => actor.clone(),
            None => {
                let actor = PersistentPool::start(self.worker_spec(pool));
                self.persistent.insert(pool.to_string(), actor.clone());
                actor
            }
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let spawned_tx = tx.clone();
        let spawned_task = task.clone();
        actor.submit(Job {
            task: task.clone(),
            line,
            timeout,
            stop,
            on_start: Box::new(move |pid| {
                let _ = spawned_tx.send(Msg::Input(Input::Spawned { task: spawned_task, attempt, pid }));
            }),
            done: done_tx,
        });
        tokio::spawn(async move {
            let end = done_rx.await.unwrap_or(AttemptEnd::Stopped(Stop::Interrupt));
            let input = end_input(&task, attempt, end);
            let _ = tx.send(Msg::RunnerDone { task, attempt, input });
        });
    }

    /// How a persistent pool starts its processes.
    fn worker_spec(&self, pool: &str) -> WorkerSpec {
        let wf = &self.state.workflow;
        let p = wf.pool_index(pool).unwrap_or(0);
        let spec = &wf.pools[p];
        let exe = self.config.pitboss_exe.display().to_string();
        let state_dir = self.config.state_dir.display().to_string();
        // Only run-wide placeholders make sense for a process that serves many tasks
        // (the workflow check refuses the others for persistent pools).
        let argv = spec
            .command
            .iter()
            .map(|a| {
                a.replace("{pitboss}", &exe).replace("{state_dir}", &state_dir).replace("{run_id}", &self.state.run_id)
            })
            .collect();
        let mut env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.push(("PITBOSS_RUN_ID".into(), self.state.run_id.clone()));
        env.push((MANAGER_PID_ENV.into(), std::process::id().to_string()));
        env.push(("PITBOSS_POOL".into(), pool.to_string()));
        env.push(("PITBOSS_STATE_DIR".into(), state_dir));
        WorkerSpec {
            pool: pool.to_string(),
            argv,
            env,
            cwd: spec.cwd.clone(),
            processes: spec.concurrency.div_ceil(spec.per_worker.max(1)),
            per_worker: spec.per_worker.max(1),
            recycle: spec.recycle,
            kill_grace: Duration::from_millis(wf.kill_grace_ms),
        }
    }

    /// Builds argv, stdin and environment for an attempt.
    fn attempt_spec(&self, task: &str, attempt: u32, pool: &str) -> Result<AttemptSpec, String> {
        let wf = &self.state.workflow;
        let i = self.state.task_index(task).ok_or_else(|| format!("unknown task {task:?}"))?;
        let spec = &wf.tasks[i];
        let pool_spec = wf.pool_index(pool).map(|p| &wf.pools[p]).ok_or_else(|| format!("unknown pool {pool:?}"))?;
        let payload = self.state.tasks[i].payload.as_ref().unwrap_or(&spec.payload);
        let view = TaskView { id: &spec.id, kind: &spec.kind, payload, attempt, run_id: &self.state.run_id };
        let exe = self.config.pitboss_exe.display().to_string();
        let state_dir = self.config.state_dir.display().to_string();
        let extra = |name: &str| match name {
            "pitboss" => Some(exe.clone()),
            "state_dir" => Some(state_dir.clone()),
            _ => None,
        };
        let argv = pool_spec.command.iter().map(|a| fill(a, view, &extra)).collect::<Result<Vec<_>, _>>()?;
        let stdin = match &pool_spec.stdin {
            StdinMode::None => None,
            StdinMode::Template(t) => Some(fill(t, view, &extra)?.into_bytes()),
            StdinMode::Task => {
                let inputs: Map<String, Value> = self.state.dependencies[i]
                    .iter()
                    .map(|&d| {
                        let result = self.state.tasks[d].result.clone().unwrap_or(Value::Null);
                        (self.state.task_id(d).to_string(), result)
                    })
                    .collect();
                let mut bytes = serde_json::to_vec(&task_json(view, inputs)).map_err(|e| e.to_string())?;
                bytes.push(b'\n');
                Some(bytes)
            }
        };
        let mut env: Vec<(String, String)> = pool_spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        env.push(("PITBOSS_TASK_ID".into(), spec.id.clone()));
        env.push(("PITBOSS_ATTEMPT".into(), attempt.to_string()));
        env.push(("PITBOSS_RUN_ID".into(), self.state.run_id.clone()));
        // With the run id, this marks every descendant of the worker, so that the
        // guardian and `resume` can find them after a crash (see io/guardian.rs).
        env.push((MANAGER_PID_ENV.into(), std::process::id().to_string()));
        env.push(("PITBOSS_POOL".into(), pool.to_string()));
        env.push(("PITBOSS_STATE_DIR".into(), state_dir.clone()));
        Ok(AttemptSpec {
            pool: pool.to_string(),
            task: spec.id.clone(),
            attempt,
            argv,
            stdin,
            env,
            cwd: pool_spec.cwd.clone(),
            timeout: Duration::from_millis(spec.timeout_ms),
            kill_grace: Duration::from_millis(wf.kill_grace_ms),
            output_dir: self.config.output_dir.clone(),
            live: Some(self.output.clone()),
            stall_after: pool_spec.stall_after_ms.map(Duration::from_millis),
            stall_kill_after: pool_spec.stall_kill_after_ms.map(Duration::from_millis),
        })
    }
}
