//! Worker runners: how one attempt of a task becomes work somewhere. The engine hands
//! a runner an [`AttemptJob`] (what to run, a stop channel, two report callbacks) and
//! awaits its [`AttemptEnd`]. Runners know nothing of time limits: the engine owns the
//! attempt's timeout and stall watch on its injected clock and asks the runner to stop
//! ([`Stop::Timeout`], [`Stop::Stalled`]), so the same timing rules hold for every
//! runner and can be tested on paused time with a scripted one.
//!
//! - [`LocalRunner`]: real processes on this machine, a fresh one per attempt
//!   ([`spawn`]) or a long-lived pool of them ([`persistent`]).
//! - [`remote::BrokerRunner`]: attempts published on a broker for `pitboss worker`s
//!   elsewhere (DESIGN §7); command gates still run here.

pub mod agent_lines;
pub mod capture;
pub mod control_lines;
pub mod env;
#[cfg_attr(windows, path = "orphans_windows.rs")]
pub mod orphans;
pub mod persistent;
pub mod process;
pub mod remote;
pub mod spawn;
pub mod spawn_lines;
pub mod usage_lines;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};

use crate::core::decide::Outcome;
use crate::core::event::{OutputStream, WorkerRef};
use crate::core::{FailureClass, SmallOutput};
use env::RunEnv;
use persistent::{Job, PersistentPool, WorkerSpec};

/// Everything needed to start one attempt.
#[derive(Debug, Clone)]
pub struct AttemptSpec {
    /// Pool name (for messages).
    pub pool: String,
    /// Task id.
    pub task: String,
    /// Attempt number.
    pub attempt: u32,
    /// Program and arguments, placeholders already filled.
    pub argv: Vec<String>,
    /// Bytes for stdin, or `None` for /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// The attempt's time limit. The engine enforces it; a persistent pool also uses
    /// it to tell which of a process's tasks made it restart.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Folder for the capture files.
    pub output_dir: PathBuf,
    /// Where output is also sent as it arrives (the TUI's live panes), if anywhere.
    pub live: Option<broadcast::Sender<OutputChunk>>,
    /// For a persistent pool: how its processes start (`None`: a process per attempt).
    pub persistent: Option<Arc<WorkerSpec>>,
    /// The capture files' name before `.stdout`/`.stderr` when not `TASK.ATTEMPT`
    /// (a consensus replica's `TASK.ATTEMPT.rR`, a judge's `TASK.ATTEMPT.judge`).
    pub file_base: Option<String>,
    /// True when the attempt already runs somewhere (a remote worker, after a manager
    /// restart): the runner waits for its end instead of starting it again.
    pub reattach: bool,
    /// The pool's agent preset: its output is read by the preset's reader (DESIGN §13).
    pub agent: Option<crate::core::agents::Preset>,
    /// Where `session` and `flag` control lines go as they are printed (spawned and
    /// persistent workers on this host; `None`: nowhere).
    pub on_control: Option<control_lines::ControlSink>,
}

/// A piece of an attempt's output as it arrives, for live views. Chunks are whatever
/// one read returned, not lines; views split them.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    /// Task id.
    pub task: Arc<str>,
    /// Attempt number.
    pub attempt: u32,
    /// True for stderr.
    pub stderr: bool,
    /// The bytes read.
    pub bytes: Arc<[u8]>,
}

/// Why the engine stops an attempt early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// An operator cancelled the task.
    Cancel,
    /// The manager is shutting down.
    Interrupt,
    /// The attempt ran past its timeout.
    Timeout,
    /// The attempt was silent past its pool's `stall_kill_after`.
    Stalled,
}

/// What is known of an attempt that was stopped: its process's end and output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Remains {
    /// Exit code, if the process exited.
    pub exit_code: Option<i32>,
    /// Signal that ended the process, if one did.
    pub signal: Option<i32>,
    /// How long the attempt ran.
    pub duration_ms: u64,
    /// Its output, when small enough to keep in the log.
    pub output: SmallOutput,
}

/// How an attempt ended, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// Ran to an outcome (success or failure, spawn failures included).
    Outcome(Outcome),
    /// Stopped at the engine's request; its process group is gone.
    Stopped(Stop, Remains),
    /// Succeeded having printed `{"pitboss":"spawn"}` lines (a planner, DESIGN §11):
    /// the outcome, and the tasks of those lines or why they cannot be taken.
    Planned(Outcome, spawn_lines::SpawnTasks),
    /// The remote worker that held the attempt was lost (its delivery was taken back
    /// past the lease): not the task's fault, and its attempt is not spent.
    Lost {
        /// The worker that held it.
        worker: WorkerRef,
        /// Why it counts as lost.
        reason: String,
        /// True when the worker had started the attempt's command.
        started: bool,
    },
}

impl AttemptEnd {
    /// A failure with no exit code, signal or output: the attempt could not start, or
    /// its process was ended for it (persistent workers).
    pub fn failed(class: FailureClass, error: String, duration: Duration) -> AttemptEnd {
        AttemptEnd::Outcome(Outcome::Failure {
            class,
            error,
            exit_code: None,
            signal: None,
            duration_ms: millis(duration),
            output: SmallOutput::default(),
        })
    }

    /// A lost worker's attempt as a failure, for parts of a task that are not retried
    /// on their own (replicas, judges, reviews): class `worker_lost`.
    pub fn lost_as_failure(worker: &WorkerRef, reason: &str) -> Outcome {
        Outcome::Failure {
            class: FailureClass::WorkerLost,
            error: format!("worker {} on {} lost: {reason}", worker.id, worker.host),
            exit_code: None,
            signal: None,
            duration_ms: 0,
            output: SmallOutput::default(),
        }
    }

    /// Stopped with nothing known of the process (it never started, or a pool ended it).
    pub fn stopped(stop: Stop) -> AttemptEnd {
        AttemptEnd::Stopped(stop, Remains::default())
    }
}

/// One attempt handed to a runner.
pub struct AttemptJob {
    /// What to run.
    pub spec: AttemptSpec,
    /// Set once when the engine wants the attempt ended early.
    pub stop: watch::Receiver<Option<Stop>>,
    /// Called with the process (group) id once the work has a process.
    pub on_spawn: Box<dyn FnOnce(u32) + Send>,
    /// Called whenever the attempt prints something (the engine's stall watch).
    pub on_output: Arc<dyn Fn() + Send + Sync>,
    /// Called (at most once per stream) when the attempt's output cannot be written
    /// to its file: which stream, and the error with the file's path.
    pub on_capture_failed: CaptureFailed,
    /// Called once when a remote worker starts the attempt's command: the engine's
    /// time limits count from then (time in the queue is not the task's).
    pub on_remote_start: Box<dyn FnOnce(RemoteStart) + Send>,
    /// Called for each `{"pitboss":"usage"}` line as it is read (spawned and
    /// persistent workers; a remote worker's usage lines are not forwarded yet).
    pub on_usage: UsageReport,
}

/// A remote worker started an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStart {
    /// The worker and its host.
    pub worker: WorkerRef,
    /// The command's process id on that host.
    pub pid: u32,
}

/// The report of a usage line (DESIGN §13): its numbers, or why it was refused.
pub type UsageReport = Arc<dyn Fn(usage_lines::UsageLine) + Send + Sync>;

/// The report of an output stream that could not be saved.
pub type CaptureFailed = Arc<dyn Fn(OutputStream, String) + Send + Sync>;

/// The future of one attempt.
pub type AttemptFuture = Pin<Box<dyn Future<Output = AttemptEnd> + Send>>;

/// Runs attempts somewhere. The future must resolve once the attempt's work is over
/// (its processes gone), whatever happened; it is never cancelled by dropping.
pub trait Runner: Send + Sync {
    /// Starts `job`; the future gives how it ended.
    fn run(&self, job: AttemptJob) -> AttemptFuture;

    /// The run's own secret values as (NAME, value): the `secret_env` values of every
    /// pool, which the runner passes to workers and redacts from their output. The
    /// `security` gate looks for them in results; they are never recorded. None by
    /// default (a runner without a workflow has no secrets).
    fn secret_values(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// True when `spec` runs elsewhere: its time limits start at
    /// [`AttemptJob::on_remote_start`], and its pid is not this host's.
    fn is_remote(&self, _spec: &AttemptSpec) -> bool {
        false
    }
}

/// Real processes on this machine: one per attempt, or a persistent pool's.
#[derive(Default)]
pub struct LocalRunner {
    /// Actors of persistent pools, started on first use. A std mutex: held only to
    /// look up or insert, never across an await.
    pools: Mutex<HashMap<String, PersistentPool>>,
    /// Each pool's environment and the run's redactor (DESIGN §14).
    env: Arc<RunEnv>,
}

impl LocalRunner {
    /// A runner with no persistent pool started yet, whose workers inherit the whole
    /// environment and whose output is not redacted: for tests and tools without a
    /// workflow. Runs use [`LocalRunner::for_run`].
    pub fn new() -> LocalRunner {
        LocalRunner::default()
    }

    /// A runner whose workers get their pool's environment, with output redacted.
    pub fn for_run(env: RunEnv) -> LocalRunner {
        LocalRunner { pools: Mutex::default(), env: Arc::new(env) }
    }

    /// A runner for a manager process: it also becomes the child subreaper of its
    /// workers' descendants and reaps the orphans it adopts ([`orphans`]). Only for a
    /// process whose every child is started the way the runners start them (tests
    /// that spawn their own helpers use [`LocalRunner::new`]). Needs a tokio runtime.
    pub fn for_manager(env: RunEnv) -> LocalRunner {
        if orphans::become_subreaper() {
            tokio::spawn(orphans::reaper());
        }
        LocalRunner::for_run(env)
    }

    /// Ends every persistent pool cleanly and waits for their processes to be gone
    /// (the end of a run: otherwise dropping the runtime would only SIGKILL them,
    /// and the guardian would report them as leftovers). Attempts still sent to a
    /// pool afterwards start it again.
    pub async fn shutdown(&self) {
        let pools: Vec<PersistentPool> = {
            let mut pools = self.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pools.drain().map(|(_, pool)| pool).collect()
        };
        for pool in pools {
            pool.close().await;
        }
    }

    fn pool(&self, spec: &WorkerSpec) -> PersistentPool {
        let mut pools = self.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pool) = pools.get(&spec.pool) {
            return pool.clone();
        }
        let pool = PersistentPool::start_in(spec.clone(), self.env.pool(&spec.pool));
        pools.insert(spec.pool.clone(), pool.clone());
        pool
    }
}

impl Runner for LocalRunner {
    fn secret_values(&self) -> Vec<(String, String)> {
        self.env.secret_values().to_vec()
    }

    fn run(&self, job: AttemptJob) -> AttemptFuture {
        let env = self.env.clone();
        let Some(worker) = job.spec.persistent.clone() else {
            let reports = spawn::Reports {
                on_output: job.on_output,
                on_capture_failed: job.on_capture_failed,
                on_usage: job.on_usage,
            };
            let attempt = spawn::run_attempt_in(job.spec, env.clone(), job.stop, job.on_spawn, reports);
            // Nothing of a worker's secrets leaves the runner (DESIGN §14).
            return Box::pin(async move {
                let mut end = attempt.await;
                env.redact_end(&mut end);
                end
            });
        };
        let pool = self.pool(&worker);
        let mut line = job.spec.stdin.unwrap_or_default();
        while line.last() == Some(&b'\n') {
            line.pop();
        }
        let (done_tx, done_rx) = oneshot::channel();
        pool.submit(Job {
            task: job.spec.task,
            line,
            timeout: job.spec.timeout,
            stop: job.stop,
            on_start: job.on_spawn,
            done: done_tx,
            on_usage: job.on_usage,
            on_control: job.spec.on_control,
        });
        // A pool that went away took the job with it: as if the manager stopped it.
        Box::pin(async move {
            let mut end = done_rx.await.unwrap_or(AttemptEnd::stopped(Stop::Interrupt));
            env.redact_end(&mut end);
            end
        })
    }
}

/// A duration in whole ms, saturating.
pub fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
