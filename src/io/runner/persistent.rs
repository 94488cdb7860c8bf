//! Persistent workers (`mode = "persistent"`): long-lived processes that read one task
//! JSON per line on stdin and answer one JSON line per task on stdout. A pool of them
//! is one actor task that owns the processes; the engine hands it jobs and gets each
//! job's end back, exactly as from a spawned attempt.
//!
//! - Replies are matched by `"id"` when the reply carries the task id, otherwise to the
//!   oldest task in flight on that process. `{"status":"failed","error":…}` is a
//!   failure, `{"status":"completed","result":…}` a result, any other JSON the result.
//!   Lines that are not JSON are log output; `{"pitboss":…}` lines are control lines:
//!   `usage`, `session` and `flag` lines are told for the task they name with
//!   `"task":ID`, else for the oldest task in flight on that process, exactly as a
//!   spawned attempt's (the others, progress and spawn, are not read here).
//! - A process that exits fails only the tasks it had in flight; the next one starts
//!   after a backoff that grows with consecutive crashes.
//! - `recycle`: after `max_tasks` answers, or when its RSS passes `max_rss_mb`, a process
//!   takes no new task, and is closed (stdin EOF, then SIGTERM/SIGKILL) once idle.
//! - A timed-out, cancelled or interrupted task ends its process (it may be stuck in
//!   it); other tasks in flight there fail as "worker restarted".
//! - A task's timeout runs from its hand-over (the engine's dispatch), not from when a
//!   process takes it: a task waiting for a process (more tasks than processes ×
//!   `per_worker`, after a live concurrency raise) still times out, is cancelled or
//!   stopped while it waits, and never costs a process for that.
//! - Every process is in its own group, carries the run's environment marks (the
//!   guardian ends it if the manager dies), and is killed when the actor is dropped.
//! - At the end of a run ([`PersistentPool::close`]) each process is ended cleanly:
//!   stdin closed, `kill_grace` to exit by itself, then SIGTERM and SIGKILL; the
//!   manager waits for that, so none is left for the guardian.
//! - A process's stderr is its log: the last [`crate::core::event::SMALL_OUTPUT`] bytes are kept, and each
//!   attempt it served records what it printed there while the attempt was in flight
//!   (with several tasks in flight on one process, their lines interleave).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::control_lines::ControlSink;
use super::env::PoolEnv;
use super::{AttemptEnd, Stop, UsageReport};
use crate::core::workflow::Recycle;
use crate::core::FailureClass;
use crate::io::clock::AwakeDeadline;
use worker::{answer, assign, end, failure, should_recycle, start_worker, tell, Line, Worker};

mod worker;

/// How a pool's processes are started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Pool name (messages).
    pub pool: String,
    /// Program and arguments (placeholders that name a task are not available here).
    pub argv: Vec<String>,
    /// Environment (the run's marks included).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Processes in the pool.
    pub processes: usize,
    /// Tasks in flight per process.
    pub per_worker: usize,
    /// When to replace a process.
    pub recycle: Recycle,
    /// SIGTERM → this long → SIGKILL when a process is closed.
    pub kill_grace: Duration,
}

/// One task for a persistent pool.
pub struct Job {
    /// Task id (matches replies that carry `"id"`).
    pub task: String,
    /// The task JSON line (without newline).
    pub line: Vec<u8>,
    /// Per-task timeout.
    pub timeout: Duration,
    /// Stop requests (cancel, shutdown).
    pub stop: watch::Receiver<Option<Stop>>,
    /// Called with the process id once the task is written to a process.
    pub on_start: Box<dyn FnOnce(u32) + Send>,
    /// Where the end goes.
    pub done: oneshot::Sender<AttemptEnd>,
    /// Where the job's usage lines go as they are read.
    pub on_usage: UsageReport,
    /// Where the job's `session` and `flag` lines go as they are read.
    pub on_control: Option<ControlSink>,
}

/// A handle to a pool's actor; dropping every handle ends its processes.
#[derive(Clone)]
pub struct PersistentPool {
    tx: mpsc::UnboundedSender<Job>,
    /// Becomes true when the actor has ended every process and returned.
    gone: watch::Receiver<bool>,
}

impl PersistentPool {
    /// Starts the actor for a pool (processes start on first use).
    pub fn start(spec: WorkerSpec) -> PersistentPool {
        PersistentPool::start_in(spec, Arc::default())
    }

    /// Starts the actor for a pool whose processes start from `base` (DESIGN §14).
    pub fn start_in(spec: WorkerSpec, base: Arc<PoolEnv>) -> PersistentPool {
        let (tx, rx) = mpsc::unbounded_channel();
        let (gone_tx, gone) = watch::channel(false);
        tokio::spawn(async move {
            actor(spec, base, rx).await;
            let _ = gone_tx.send(true);
        });
        PersistentPool { tx, gone }
    }

    /// Ends the pool: once every other handle is dropped too, its processes are
    /// ended cleanly (stdin closed, `kill_grace`, then signals); resolves when they
    /// are gone. Dropping the runtime instead would only SIGKILL them.
    pub async fn close(self) {
        let PersistentPool { tx, mut gone } = self;
        drop(tx);
        // An error means the actor is gone already (its sender dropped).
        let _ = gone.wait_for(|gone| *gone).await;
    }

    /// Hands a job over; if the actor is gone the job's `done` is dropped (the
    /// caller sees a closed channel).
    pub fn submit(&self, job: Job) {
        let _ = self.tx.send(job);
    }
}

/// A job waiting for a process, with the deadline it got when it was handed over.
struct Queued {
    job: Job,
    deadline: AwakeDeadline,
}

/// The pool's process slots.
struct Slots(Vec<Option<Worker>>);

impl std::ops::Deref for Slots {
    type Target = Vec<Option<Worker>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The actor's side of a persistent pool: its process slots, the jobs waiting for a
/// process, and the restart backoff after crashes. Each `on_*` method handles one arm
/// of the actor's `select!`.
struct Pool {
    spec: WorkerSpec,
    /// The environment its processes start from.
    base: Arc<PoolEnv>,
    workers: Slots,
    waiting: VecDeque<Queued>,
    /// Handed to each process's stdout reader.
    line_tx: mpsc::UnboundedSender<Line>,
    /// Crashes since the last answer (they grow the backoff).
    crashes: u32,
    /// No process starts before this (backoff after a crash).
    not_before: tokio::time::Instant,
    /// False once the engine dropped every handle.
    jobs_open: bool,
}

/// The pool's one owner loop: hands waiting jobs out, then waits for whichever comes
/// first of a new job, a line from a process, a deadline, a stop request, or the end
/// of the restart backoff.
async fn actor(spec: WorkerSpec, base: Arc<PoolEnv>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let (line_tx, mut lines) = mpsc::unbounded_channel::<Line>();
    let mut pool = Pool::new(spec, line_tx);
    pool.base = base;
    loop {
        pool.hand_out().await;
        if pool.finished() {
            return;
        }
        let next_deadline = pool.next_deadline();
        let backoff = pool.backoff();
        tokio::select! {
            // A job from the engine, or the engine is gone.
            job = jobs.recv(), if pool.jobs_open => pool.on_job(job).await,
            // A reply or an exit (the pool holds a sender, so this never ends).
            Some(line) = lines.recv() => pool.on_line(line).await,
            // The earliest task deadline passed.
            _ = tokio::time::sleep_until(next_deadline) => pool.on_deadline().await,
            // A task in flight was cancelled, or the run is stopping.
            slot = stopped(&mut pool.workers) => pool.on_stop(slot).await,
            // A task waiting for a process was stopped (its timeout, a cancel, the end).
            _ = waiting_stopped(pool.waiting.iter().map(|q| q.job.stop.clone()).collect()) => pool.on_waiting_stop(),
            // The restart backoff is over: the next turn starts a process.
            _ = async { if let Some(t) = backoff { tokio::time::sleep_until(t).await } }, if backoff.is_some() => {}
        }
    }
}

impl Pool {
    fn new(spec: WorkerSpec, line_tx: mpsc::UnboundedSender<Line>) -> Pool {
        Pool {
            workers: Slots((0..spec.processes.max(1)).map(|_| None).collect()),
            spec,
            base: Arc::default(),
            waiting: VecDeque::new(),
            line_tx,
            crashes: 0,
            not_before: tokio::time::Instant::now(),
            jobs_open: true,
        }
    }

    /// Hands waiting jobs to processes with room, starting processes as needed (not
    /// during the restart backoff).
    async fn hand_out(&mut self) {
        while let Some(slot) = free_slot(&self.workers, self.spec.per_worker) {
            let Some(queued) = self.waiting.pop_front() else { break };
            if self.workers[slot].is_none() {
                if tokio::time::Instant::now() < self.not_before {
                    self.waiting.push_front(queued);
                    break;
                }
                match start_worker(&self.spec, &self.base, slot, &self.line_tx) {
                    Ok(w) => self.workers[slot] = Some(w),
                    Err(error) => {
                        // Cannot start the agent at all: this job fails, permanently.
                        let end = AttemptEnd::failed(FailureClass::SpawnPermanent, error, Duration::ZERO);
                        let _ = queued.job.done.send(end);
                        continue;
                    }
                }
            }
            let Some(w) = self.workers[slot].as_mut() else { continue };
            assign(w, queued).await;
        }
    }

    /// True once the engine is gone and no job or process is left.
    fn finished(&self) -> bool {
        !self.jobs_open && self.waiting.is_empty() && self.workers.iter().all(|w| w.is_none())
    }

    /// The earliest deadline of a task in flight (an hour away when there is none).
    fn next_deadline(&self) -> tokio::time::Instant {
        self.workers
            .iter()
            .flatten()
            .flat_map(|w| w.in_flight.iter().map(|f| f.deadline.due()))
            .min()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))
    }

    /// When the restart backoff ends, while jobs wait for it.
    fn backoff(&self) -> Option<tokio::time::Instant> {
        (!self.waiting.is_empty() && tokio::time::Instant::now() < self.not_before).then_some(self.not_before)
    }

    /// A new job waits its turn; `None` means the engine is gone.
    async fn on_job(&mut self, job: Option<Job>) {
        match job {
            Some(job) => {
                let deadline = AwakeDeadline::after(job.timeout);
                self.waiting.push_back(Queued { job, deadline });
            }
            None => self.close().await,
        }
    }

    /// The engine is gone: every waiting job is stopped and every process is ended
    /// cleanly (stdin closed, a grace to exit, then signals), all at once, and waited
    /// for.
    async fn close(&mut self) {
        self.jobs_open = false;
        for queued in self.waiting.drain(..) {
            let _ = queued.job.done.send(AttemptEnd::stopped(Stop::Interrupt));
        }
        let endings: Vec<_> = self
            .workers
            .iter_mut()
            .filter_map(Option::take)
            .map(|w| {
                let spec = self.spec.clone();
                tokio::spawn(async move { end(w, &spec, "was stopped: the run ended", true).await })
            })
            .collect();
        for ending in endings {
            let _ = ending.await;
        }
    }

    /// Jobs still waiting for a process whose stop was asked for end now, stopped as
    /// asked (the engine's supervisor turns a `Timeout` into the timeout failure).
    fn on_waiting_stop(&mut self) {
        let (stopped, waiting): (Vec<Queued>, Vec<Queued>) =
            self.waiting.drain(..).partition(|q| q.job.stop.borrow().is_some());
        self.waiting = waiting.into();
        for queued in stopped {
            let stop = queued.job.stop.borrow().unwrap_or(Stop::Interrupt);
            let _ = queued.job.done.send(AttemptEnd::stopped(stop));
        }
    }

    /// A line from a process: a reply (lines from a process that was since replaced
    /// are ignored), or its stdout closed.
    async fn on_line(&mut self, line: Line) {
        match line {
            Line::Reply { slot, pid, value } => self.on_reply(slot, pid, value).await,
            Line::Control { slot, pid, value } => {
                let kind = value.get("pitboss").and_then(Value::as_str).unwrap_or("usage").to_string();
                let told = self.workers[slot].as_ref().filter(|w| w.pid == pid).is_some_and(|w| tell(w, value));
                if !told {
                    tracing::warn!(
                        "pool {:?}: persistent worker {pid} printed a {kind} line before it was given any task \
                         (or after it was ended): it is nobody's and not recorded",
                        self.spec.pool
                    );
                }
            }
            Line::Closed { slot, pid } => self.on_exit(slot, pid).await,
        }
    }

    /// A reply ends a task; a process due for recycling is closed once it is idle.
    async fn on_reply(&mut self, slot: usize, pid: u32, value: Value) {
        let Some(w) = self.workers[slot].as_mut().filter(|w| w.pid == pid) else { return };
        self.crashes = 0;
        answer(w, value);
        if should_recycle(w, &self.spec.recycle) {
            w.draining = true;
        }
        if w.draining && w.in_flight.is_empty() {
            if let Some(w) = self.workers[slot].take() {
                end(w, &self.spec, "was recycled", true).await;
            }
        }
    }

    /// A process closed its stdout: it is ended, and unless it was recycled, the next
    /// one waits out a backoff that grows with consecutive crashes.
    async fn on_exit(&mut self, slot: usize, pid: u32) {
        let Some(w) = self.workers[slot].take_if(|w| w.pid == pid) else { return };
        let recycled = w.draining && w.in_flight.is_empty();
        let status = end(w, &self.spec, "exited", true).await;
        if !recycled {
            self.crashes += 1;
            let delay = Duration::from_millis(100 * 2u64.pow(self.crashes.min(6))).min(Duration::from_secs(5));
            self.not_before = tokio::time::Instant::now() + delay;
            tracing::warn!(pool = %self.spec.pool, pid, %status, "persistent worker exited; restarting after {delay:?}");
        }
    }

    /// Every process with a task past its deadline is restarted: that task times out,
    /// the others it had in flight fail as collateral.
    async fn on_deadline(&mut self) {
        let now = tokio::time::Instant::now();
        for slot in 0..self.workers.len() {
            let expired =
                self.workers[slot].as_ref().is_some_and(|w| w.in_flight.iter().any(|f| f.deadline.due() <= now));
            if !expired {
                continue;
            }
            if let Some(mut w) = self.workers[slot].take() {
                for f in std::mem::take(&mut w.in_flight) {
                    let (class, error) = if f.deadline.due() <= now {
                        (FailureClass::Timeout, "timed out; its persistent worker was restarted".to_string())
                    } else {
                        (FailureClass::Worker, "persistent worker restarted after another task timed out".to_string())
                    };
                    let output = w.stderr_since(f.stderr_from);
                    let _ = f.done.send(failure(class, error, f.started.elapsed(), output));
                }
                end(w, &self.spec, "was restarted after a timeout", false).await;
            }
        }
    }

    /// A task was cancelled or the run is stopping: its process ends, and its other
    /// tasks are stopped the same way.
    async fn on_stop(&mut self, slot: usize) {
        if let Some(mut w) = self.workers[slot].take() {
            for f in w.in_flight.drain(..) {
                let stop = f.stop.borrow().unwrap_or(Stop::Interrupt);
                let _ = f.done.send(AttemptEnd::stopped(stop));
            }
            end(w, &self.spec, "was stopped", false).await;
        }
    }
}

/// A slot with room for one more task: a live process below `per_worker` that is not
/// draining, else an empty slot.
fn free_slot(workers: &[Option<Worker>], per_worker: usize) -> Option<usize> {
    workers
        .iter()
        .position(|w| w.as_ref().is_some_and(|w| !w.draining && w.in_flight.len() < per_worker))
        .or_else(|| workers.iter().position(|w| w.is_none()))
}

/// Resolves with the slot of a process one of whose tasks was asked to stop.
async fn stopped(workers: &mut [Option<Worker>]) -> usize {
    let mut waits = Vec::new();
    for (slot, w) in workers.iter_mut().enumerate() {
        if let Some(w) = w {
            for f in w.in_flight.iter_mut() {
                let mut stop = f.stop.clone();
                waits.push(Box::pin(async move {
                    loop {
                        if stop.borrow_and_update().is_some() {
                            return slot;
                        }
                        if stop.changed().await.is_err() {
                            // The engine dropped the sender: nothing will ever stop it.
                            std::future::pending::<()>().await;
                        }
                    }
                }));
            }
        }
    }
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures_select_all(waits).await
}

/// Resolves once a job waiting for a process has a stop request. Takes copies of the
/// receivers: a job (its `on_start` callback) cannot be shared across an await.
async fn waiting_stopped(stops: Vec<watch::Receiver<Option<Stop>>>) {
    let mut waits = Vec::new();
    for mut stop in stops {
        waits.push(Box::pin(async move {
            // A dropped sender: nothing will ever stop it.
            if stop.wait_for(|s| s.is_some()).await.is_err() {
                std::future::pending::<()>().await;
            }
            0
        }));
    }
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures_select_all(waits).await;
}

/// The first of several futures to finish (a tiny select_all, to avoid a dependency).
async fn futures_select_all<F: std::future::Future<Output = usize> + Unpin>(mut futures: Vec<F>) -> usize {
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}
