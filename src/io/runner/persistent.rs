//! Persistent workers (`mode = "persistent"`): long-lived processes that read one task
//! JSON per line on stdin and answer one JSON line per task on stdout. A pool of them
//! is one actor task that owns the processes; the engine hands it jobs and gets each
//! job's end back, exactly as from a spawned attempt.
//!
//! - Replies are matched by `"id"` when the reply carries the task id, otherwise to the
//!   oldest task in flight on that process. `{"status":"failed","error":…}` is a
//!   failure, `{"status":"completed","result":…}` a result, any other JSON the result.
//!   Lines that are not JSON are log output; `{"pitboss":…}` lines are control lines.
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
//! - A process's stderr is its log: the last [`SMALL_OUTPUT`] bytes are kept, and each
//!   attempt it served records what it printed there while the attempt was in flight
//!   (with several tasks in flight on one process, their lines interleave).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use std::sync::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};

use tokio::sync::{mpsc, oneshot, watch};

use super::env::PoolEnv;
use super::orphans;
use super::spawn::signal_group;
use super::{millis, AttemptEnd, Stop};
use crate::core::decide::Outcome;
use crate::core::event::SMALL_OUTPUT;
use crate::core::protocol::{verdict, Verdict};
use crate::core::workflow::Recycle;
use crate::core::{FailureClass, SmallOutput};

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
    deadline: tokio::time::Instant,
}

struct InFlight {
    task: String,
    started: Instant,
    /// How much the process had printed on stderr when the task was written to it.
    stderr_from: u64,
    deadline: tokio::time::Instant,
    stop: watch::Receiver<Option<Stop>>,
    done: oneshot::Sender<AttemptEnd>,
}

struct Worker {
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    in_flight: VecDeque<InFlight>,
    answered: u64,
    draining: bool,
    stderr: Arc<Mutex<StderrTail>>,
    /// Ends when the process's stderr reaches EOF.
    stderr_done: Option<oneshot::Receiver<()>>,
    /// True once [`end`] reaped it (its pid may then belong to somebody else).
    reaped: bool,
}

/// A worker dropped before it was ended (the runtime was dropped mid-run, or an
/// ending was cut short) has its process group killed, so none outlives the pool.
impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            signal_group(self.pid, Signal::SIGKILL);
        }
    }
}

impl Worker {
    /// What the process printed on stderr since `from` (its last [`SMALL_OUTPUT`]
    /// bytes at most), as an attempt's output.
    fn stderr_since(&self, from: u64) -> SmallOutput {
        let stderr = self.stderr.lock().ok().and_then(|tail| tail.since(from));
        SmallOutput { stdout: None, stderr }
    }
}

/// The end of a process's stderr, and how much it printed in all.
#[derive(Default)]
struct StderrTail {
    bytes: VecDeque<u8>,
    total: u64,
}

impl StderrTail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let keep = &chunk[chunk.len().saturating_sub(SMALL_OUTPUT)..];
        self.bytes.extend(keep);
        let over = self.bytes.len().saturating_sub(SMALL_OUTPUT);
        self.bytes.drain(..over);
    }

    /// The bytes printed since `from` that are still kept, or `None` if there are none.
    fn since(&self, from: u64) -> Option<String> {
        let new = self.total.saturating_sub(from).min(self.bytes.len() as u64) as usize;
        if new == 0 {
            return None;
        }
        let (a, b) = self.bytes.as_slices();
        let all: Vec<u8> = a.iter().chain(b).copied().collect();
        Some(String::from_utf8_lossy(&all[all.len() - new..]).into_owned())
    }
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

/// What a process's stdout reader reports.
enum Line {
    Reply { slot: usize, pid: u32, value: Value },
    Closed { slot: usize, pid: u32 },
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
            .flat_map(|w| w.in_flight.iter().map(|f| f.deadline))
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
                let deadline = tokio::time::Instant::now() + job.timeout;
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
            let expired = self.workers[slot].as_ref().is_some_and(|w| w.in_flight.iter().any(|f| f.deadline <= now));
            if !expired {
                continue;
            }
            if let Some(mut w) = self.workers[slot].take() {
                for f in std::mem::take(&mut w.in_flight) {
                    let (class, error) = if f.deadline <= now {
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

fn start_worker(
    spec: &WorkerSpec,
    base: &PoolEnv,
    slot: usize,
    lines: &mpsc::UnboundedSender<Line>,
) -> Result<Worker, String> {
    let mut cmd = tokio::process::Command::new(&spec.argv[0]);
    cmd.args(&spec.argv[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    base.apply(&mut cmd);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => super::spawn::missing_interpreter(&spec.argv[0], spec.cwd.as_deref(), &spec.env),
            _ => None,
        };
        format!(
            "pool {:?}: cannot start persistent worker {:?}: {}",
            spec.pool,
            spec.argv[0],
            why.unwrap_or(e.to_string())
        )
    })?;
    let pid = child.id().unwrap_or(0);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let tx = lines.clone();
    tokio::spawn(async move {
        if let Some(out) = stdout {
            let mut reader = BufReader::new(out);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let Ok(value) = serde_json::from_slice::<Value>(trim(&line)) else { continue };
                        if value.get("pitboss").is_some() {
                            continue;
                        }
                        let _ = tx.send(Line::Reply { slot, pid, value });
                    }
                }
            }
        }
        let _ = tx.send(Line::Closed { slot, pid });
    });
    // stderr is the worker's log: drained so it never blocks; its tail is kept.
    let tail = Arc::new(Mutex::new(StderrTail::default()));
    let (done_tx, stderr_done) = oneshot::channel();
    if let Some(mut err) = stderr {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n @ 1..) = err.read(&mut buf).await {
                if let Ok(mut t) = tail.lock() {
                    t.push(&buf[..n]);
                }
            }
            let _ = done_tx.send(());
        });
    }
    let stdin = child.stdin.take();
    Ok(Worker {
        pid,
        child,
        stdin,
        in_flight: VecDeque::new(),
        answered: 0,
        draining: false,
        stderr: tail,
        stderr_done: Some(stderr_done),
        reaped: false,
    })
}

fn trim(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map(|i| i + 1).unwrap_or(0);
    &line[..end]
}

async fn assign(w: &mut Worker, queued: Queued) {
    let Queued { job, deadline } = queued;
    let mut line = job.line;
    line.push(b'\n');
    let written = match w.stdin.as_mut() {
        Some(stdin) => stdin.write_all(&line).await.is_ok(),
        None => false,
    };
    let stderr_from = w.stderr.lock().map(|t| t.total).unwrap_or(0);
    let flight =
        InFlight { task: job.task, started: Instant::now(), stderr_from, deadline, stop: job.stop, done: job.done };
    if written {
        (job.on_start)(w.pid);
        w.in_flight.push_back(flight);
    } else {
        // The process is going away; its reader will report it closed.
        let _ = flight.done.send(AttemptEnd::failed(
            FailureClass::Worker,
            "persistent worker closed its stdin".into(),
            Duration::ZERO,
        ));
    }
}

fn answer(w: &mut Worker, value: Value) {
    let by_id = value.get("id").and_then(Value::as_str).and_then(|id| w.in_flight.iter().position(|f| f.task == id));
    let Some(flight) = by_id.map(|i| w.in_flight.remove(i)).unwrap_or_else(|| w.in_flight.pop_front()) else {
        return; // A reply nobody asked for.
    };
    w.answered += 1;
    let elapsed = flight.started.elapsed();
    let text = value.to_string();
    let output = w.stderr_since(flight.stderr_from);
    let outcome = match verdict(text.as_bytes(), b"", Some(0)) {
        Verdict::Completed(result) => {
            Outcome::Success { result, exit_code: None, duration_ms: millis(elapsed), output }
        }
        Verdict::Failed(error) => Outcome::Failure {
            class: FailureClass::Worker,
            error,
            exit_code: None,
            signal: None,
            duration_ms: millis(elapsed),
            output,
        },
    };
    let _ = flight.done.send(AttemptEnd::Outcome(outcome));
}

fn should_recycle(w: &Worker, recycle: &Recycle) -> bool {
    if recycle.max_tasks.is_some_and(|n| w.answered >= n) {
        return true;
    }
    recycle.max_rss_mb.is_some_and(|limit| rss_mb(w.pid).is_some_and(|rss| rss > limit))
}

/// Resident set size of a process in MiB, from /proc.
fn rss_mb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// A failure of a persistent task, with what its process printed on stderr meanwhile.
fn failure(class: FailureClass, error: String, elapsed: Duration, output: SmallOutput) -> AttemptEnd {
    AttemptEnd::Outcome(Outcome::Failure {
        class,
        error,
        exit_code: None,
        signal: None,
        duration_ms: millis(elapsed),
        output,
    })
}

/// How long an ended process's stderr may stay open (a descendant that left its
/// group could hold it) before its tasks are failed without the rest of it.
const STDERR_DRAIN: Duration = Duration::from_millis(500);

/// Ends a process and fails what it still had in flight (with what it printed on
/// stderr meanwhile, read to its end). Politely (`polite`: stdin EOF, a grace
/// period to exit by itself, then signals) when it is being recycled, has exited or
/// the run ended; at once with SIGTERM, grace, SIGKILL when it may be stuck.
async fn end(mut w: Worker, spec: &WorkerSpec, why: &str, polite: bool) -> String {
    // Its descendants that left its group, found while it still holds them.
    let escaped = orphans::attempt_tree(w.pid, &[]);
    drop(w.stdin.take());
    let exited_by_itself = if polite { tokio::time::timeout(spec.kill_grace, w.child.wait()).await.ok() } else { None };
    let status = match exited_by_itself {
        Some(status) => status.ok(),
        None => {
            signal_group(w.pid, Signal::SIGTERM);
            orphans::signal_each(&escaped, Signal::SIGTERM);
            match tokio::time::timeout(spec.kill_grace, w.child.wait()).await {
                Ok(status) => status.ok(),
                Err(_) => {
                    signal_group(w.pid, Signal::SIGKILL);
                    w.child.wait().await.ok()
                }
            }
        }
    };
    // Anything left in its group or its tree goes too; after that the pid is not ours
    // to signal.
    signal_group(w.pid, Signal::SIGKILL);
    orphans::signal_each(&escaped, Signal::SIGKILL);
    w.reaped = true;
    if let Some(done) = w.stderr_done.take().filter(|_| !w.in_flight.is_empty()) {
        let _ = tokio::time::timeout(STDERR_DRAIN, done).await;
    }
    for f in std::mem::take(&mut w.in_flight) {
        let error = format!("persistent worker (pid {}) {why} with this task in flight", w.pid);
        let output = w.stderr_since(f.stderr_from);
        let _ = f.done.send(failure(FailureClass::Worker, error, f.started.elapsed(), output));
    }
    status.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stderr_tail_gives_what_was_printed_since_a_mark_within_its_bound() {
        let mut tail = StderrTail::default();
        tail.push(b"first\n");
        let mark = tail.total;
        assert_eq!(tail.since(mark), None);
        tail.push(b"second\n");
        assert_eq!(tail.since(mark).as_deref(), Some("second\n"));
        assert_eq!(tail.since(0).as_deref(), Some("first\nsecond\n"));
        // A flood keeps only the last SMALL_OUTPUT bytes.
        tail.push(&vec![b'x'; 3 * SMALL_OUTPUT]);
        tail.push(b"end");
        let kept = tail.since(mark).unwrap();
        assert_eq!(kept.len(), SMALL_OUTPUT);
        assert!(kept.ends_with("xend"));
    }
}
