//! The launcher: the one place that builds a run's world — the held run folder, the
//! journal, the engine with its clock and runners, the guardian, the stop signals —
//! and hands a [`RunHandle`] to whichever front end runs it (TUI, headless reporter,
//! later the control socket). No front end starts or owns the engine, and none knows
//! another: `main` picks the front end and gives it to [`Prepared::run`].
//!
//! ```text
//! main ─▶ launch::new_run / launch::resume ─▶ Prepared ─run(front)─▶ engine task
//!                                                        └─▶ front(LocalHandle)
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::core::workflow::Workflow;
use crate::core::{Event, Input, RunState};
use crate::engine::fanout::Records;
use crate::engine::{Ending, Engine, EngineConfig, EngineError, EngineHandle, World};
use crate::io::clock::{wall_ms, SystemClock};
use crate::io::guardian::{self, Guardian};
use crate::io::journal::{self, Journal, Record, LOG_FILE};
use crate::io::rundir::{self, RunDir};
use crate::io::runner::env::RunEnv;
use crate::io::runner::{LocalRunner, OutputChunk};
use crate::io::{roll, segments, snapshot};

mod broker;

use broker::{broker_pumps, first_record, Runners};
pub use broker::{check_broker, BrokerSetup};

/// Why a run could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The run could not start: the folder, the log or the environment is not right.
    #[error("{0}")]
    Start(String),
    /// The engine stopped with an error; the log holds everything before it.
    #[error("the run stopped: {0}")]
    Engine(#[from] EngineError),
    /// The front end failed (the terminal went away, …); the run was stopped cleanly.
    #[error("{0}")]
    FrontEnd(String),
}

fn start_err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Start(e.to_string())
}

/// A new run: its workflow, id and folder.
pub struct NewRun {
    /// The validated workflow.
    pub workflow: Workflow,
    /// The run id (a fresh uuid).
    pub run_id: String,
    /// The run folder (created if missing; must not hold a run).
    pub dir: PathBuf,
}

/// A run ready to go: folder held, log open, state folded.
pub struct Prepared {
    run_dir: RunDir,
    state: RunState,
    journal: Journal,
    resumed: bool,
    /// The seq of the snapshot the state was opened from (resume), if one was used.
    snapshot: Option<u64>,
    services: Vec<Service>,
    /// The broker whose workers run the attempts, if any.
    broker: Option<BrokerSetup>,
    /// What the operator should know before the run starts (a repaired log, workers
    /// of an earlier manager ended).
    pub notes: Vec<String>,
}

/// Holds `run.dir` and starts its log with the workflow.
pub fn new_run(run: NewRun) -> Result<Prepared, LaunchError> {
    check_secrets(&run.workflow).map_err(start_err)?;
    let run_dir = RunDir::hold(&run.dir).map_err(start_err)?;
    if run_dir.path.join(LOG_FILE).exists() {
        return Err(start_err(format!(
            "{} already holds a run; continue it with `pitboss resume {}` or choose another --state-dir",
            run_dir.path.display(),
            run_dir.path.display()
        )));
    }
    let first = Event::RunStarted { run_id: run.run_id, workflow: Arc::new(run.workflow) };
    let journal = Journal::create(&run_dir.path, wall_ms(), &first).map_err(start_err)?;
    // The workflow moves from the record written into the state: never two copies.
    let state = RunState::from_started(first).map_err(start_err)?;
    Ok(Prepared {
        run_dir,
        state,
        journal,
        resumed: false,
        snapshot: None,
        services: Vec::new(),
        broker: None,
        notes: Vec::new(),
    })
}

/// Forks the run in `dir` at record `seq` into `to` (by default `DIR-fork-SEQ` beside
/// it) with a fresh run id: see [`crate::io::fork`]. The original is only read; the
/// fork is a stopped run that [`resume`] continues. `edits` give tasks new payloads
/// in the fork (`payload_edited` records).
pub fn fork(
    dir: &Path,
    seq: u64,
    to: Option<&Path>,
    edits: Vec<(String, serde_json::Value)>,
) -> Result<crate::io::fork::Forked, LaunchError> {
    let to = to.map_or_else(|| crate::io::fork::default_dir(dir, seq), Path::to_path_buf);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let options = crate::io::fork::ForkOptions { run_id, edits, now_ms: wall_ms() };
    crate::io::fork::fork(dir, seq, &to, options).map_err(start_err)
}

/// Holds `dir`, replays its log (first cutting it before `truncate_at`, if given) and
/// ends workers an earlier manager of the run left behind.
pub fn resume(dir: &Path, truncate_at: Option<u64>) -> Result<Prepared, LaunchError> {
    check_resumable(dir)?;
    let run_dir = RunDir::hold(dir).map_err(start_err)?;
    // A compaction a crash cut short is put back in order first (DESIGN §6).
    let mut notes = roll::recover(&run_dir.path).map_err(start_err)?;
    if let Some(seq) = truncate_at {
        let cut = segments::truncate_at(&run_dir.path, seq).map_err(start_err)?;
        notes.push(format!("cut {cut} bytes from record {seq} on; they are saved in {}", journal::BROKEN_FILE));
    }
    let log = run_dir.path.join(LOG_FILE);
    // The newest usable snapshot and the records after it; a skipped one is a note.
    let opened = snapshot::open_state(&run_dir.path).map_err(start_err)?;
    notes.extend(opened.notes);
    let (state, scan, snapshot) = (opened.state, opened.scan, opened.snapshot);
    check_secrets(state.workflow.head()).map_err(start_err)?;
    let mut journal = Journal::open(&run_dir.path, &scan).map_err(start_err)?;
    let stale = snapshot::discard_after(&run_dir.path, scan.records);
    if stale > 0 {
        notes.push(format!("removed {stale} snapshot(s) of records the log no longer holds"));
    }
    if let Some(torn) = &scan.torn {
        notes.push(format!(
            "{}:{}: cut a damaged tail of {} bytes ({}); saved to {}",
            log.display(),
            torn.line,
            torn.len,
            torn.reason,
            journal::BROKEN_FILE
        ));
        let note = Event::LogRepaired { cut_bytes: torn.len, line: torn.line, reason: torn.reason.to_string() };
        journal.append(wall_ms(), &[note]).map_err(start_err)?;
    }
    // Workers of a crashed manager are ended by its guardian; if the guardian died
    // too they may still run. End every process marked with this run before
    // replaying, so no attempt runs twice at once.
    match guardian::sweep(&state.run_id, None) {
        Ok(0) => {}
        Ok(ended) => notes.push(format!("ended {ended} leftover worker process(es) of an earlier manager of this run")),
        Err(e) => notes.push(format!("warning: workers of an earlier manager of this run may still be running ({e})")),
    }
    Ok(Prepared { run_dir, state, journal, resumed: true, snapshot, services: Vec::new(), broker: None, notes })
}

/// A folder `resume` can carry on: it has a log. "No event log here" only when there
/// is none; a folder this user may not read or write, or a file, is said as such.
fn check_resumable(dir: &Path) -> Result<(), LaunchError> {
    match std::fs::symlink_metadata(dir.join(LOG_FILE)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(start_err(journal::JournalError::Missing(dir.to_path_buf())))
        }
        // Why the log cannot be looked at: the folder's mode or owner, or a file.
        Err(e) => Err(start_err(match rundir::check_usable(dir) {
            Err(unusable) => unusable.to_string(),
            Ok(()) => format!("{}: {}", dir.join(LOG_FILE).display(), rundir::explain_io(&e)),
        })),
    }
}

fn check_secrets(workflow: &Workflow) -> Result<(), String> {
    for pool in &workflow.pools {
        for name in &pool.secret_env {
            if std::env::var_os(name).is_none() {
                return Err(format!(
                    "pool {:?} needs the secret {name} but it is not set in pitboss's environment",
                    pool.name
                ));
            }
        }
    }
    Ok(())
}

/// What a front end reads: the records so far, then every new batch in order (none
/// lost, none twice), and workers' live output.
pub struct Feed {
    /// The run's records before the feed started, when they came over a connection
    /// (`attach`); empty otherwise.
    pub backlog: Vec<Record>,
    /// The run folder as the launcher opened it, for a front end that reads history
    /// from the log on disk (the TUI): the records before the feed are there.
    pub on_disk: Option<OnDisk>,
    live: Records,
    next_seq: u64,
    /// Workers' output as it arrives (live panes; a slow reader may miss chunks).
    pub output: broadcast::Receiver<OutputChunk>,
}

impl Feed {
    /// A feed of `live` batches after `backlog` (records the backlog holds are not
    /// given twice).
    pub fn new(backlog: Vec<Record>, live: Records, output: broadcast::Receiver<OutputChunk>) -> Feed {
        let next_seq = backlog.last().map_or(0, |r| r.seq + 1);
        Feed { backlog, on_disk: None, live, next_seq, output }
    }

    /// A feed of `live` batches after the records the run folder's log holds.
    pub fn after_log(on_disk: OnDisk, live: Records, output: broadcast::Receiver<OutputChunk>) -> Feed {
        let next_seq = on_disk.records + 1;
        Feed { backlog: Vec::new(), on_disk: Some(on_disk), live, next_seq, output }
    }

    /// The next batch of records, or `None` once the run has stopped and every
    /// record was given. Batches are shared with other subscribers, not copied, unless
    /// part of one was in the backlog already.
    pub async fn next(&mut self) -> Option<Arc<[Record]>> {
        loop {
            let batch = self.live.recv().await?;
            let Some(last) = batch.last().map(|r| r.seq) else { continue };
            if last < self.next_seq {
                continue;
            }
            let first = batch.first().map_or(last, |r| r.seq);
            let fresh = if first >= self.next_seq {
                batch
            } else {
                batch.iter().filter(|r| r.seq >= self.next_seq).cloned().collect()
            };
            self.next_seq = last + 1;
            return Some(fresh);
        }
    }

    /// True when a batch is waiting (the next [`Feed::next`] will not wait for one).
    pub fn has_more(&self) -> bool {
        !self.live.is_empty()
    }
}

/// A run folder as the launcher opened it: its log's records on disk, and their fold.
#[derive(Debug, Clone)]
pub struct OnDisk {
    /// The run folder.
    pub dir: PathBuf,
    /// The state the run starts from (the newest valid snapshot and the log after it).
    pub state: RunState,
    /// Records the log holds.
    pub records: u64,
}

/// What a front end holds of a run: commands in, records out. In-process for `run`
/// and `resume` ([`LocalHandle`]); a control-socket client will implement it for
/// `attach`, so a front end never knows which.
pub trait RunHandle {
    /// Sends an operator command; false once the run has stopped.
    fn send(&self, input: Input) -> bool;
    /// Asks the run to stop: running attempts end and the run stays resumable.
    fn stop(&self, reason: &str);
    /// The records: call once (later calls give `None`).
    fn take_feed(&mut self) -> Option<Feed>;
}

/// The handle to an engine in this process.
pub struct LocalHandle {
    engine: EngineHandle,
    feed: Option<Feed>,
}

impl LocalHandle {
    /// The engine, for reading its state (see [`EngineHandle::read`]).
    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }
}

impl RunHandle for LocalHandle {
    fn send(&self, input: Input) -> bool {
        self.engine.send(input)
    }

    fn stop(&self, reason: &str) {
        self.engine.stop(reason);
    }

    fn take_feed(&mut self) -> Option<Feed> {
        self.feed.take()
    }
}

/// The control socket's file in a run folder (DESIGN §12), or, when its path is too
/// long for a socket, the file naming where the socket is.
pub const CTL_SOCKET: &str = "ctl.sock";
/// See [`CTL_SOCKET`].
pub const CTL_SOCKET_POINTER: &str = "ctl.sock.path";

/// What a service running beside the engine gets (the control socket): the engine,
/// the run folder, the state the run starts from, and every record from then on.
pub struct ServiceContext {
    /// The engine.
    pub engine: EngineHandle,
    /// The run folder (held by this manager).
    pub dir: PathBuf,
    /// The run's id (its state is read from the engine: [`EngineHandle::read`]).
    pub run_id: String,
    /// Every batch the engine commits; ends when the run stops.
    pub records: Records,
}

/// A service's work for the whole run: it ends once its records end.
pub type ServiceFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service: started inside the run's runtime before the engine's first step; `Err`
/// says why it could not start (the run goes on without it).
pub type Service = Box<dyn FnOnce(ServiceContext) -> Result<ServiceFuture, String>>;

/// A front end's future.
pub type FrontFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// A front end, as the launcher runs it.
pub struct FrontEnd<'a> {
    /// The run ends by itself once every task is terminal (headless), instead of
    /// waiting for the operator to quit (TUI).
    pub exits_when_done: bool,
    /// The front end reads history from the log on disk (the TUI's history and time
    /// travel), so its feed names the run folder and the state opened from it.
    pub needs_history: bool,
    /// Runs the front end until its feed ends (or it fails).
    pub run: Box<dyn FnOnce(LocalHandle) -> FrontFuture<'a> + 'a>,
}

/// How a run ended.
pub struct Finished {
    /// The final state.
    pub state: RunState,
    /// Finished or interrupted.
    pub ending: Ending,
    /// The run folder.
    pub dir: PathBuf,
}

impl Prepared {
    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.run_dir.path
    }

    /// The state the run starts from.
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// Adds a service that runs beside the engine while this manager holds the run.
    pub fn serve(&mut self, service: Service) {
        self.services.push(service);
    }

    /// Runs the attempts of this run's pools on `broker`'s workers (checked reachable
    /// with [`check_broker`] before the run folder was made).
    pub fn use_broker(&mut self, broker: BrokerSetup) {
        self.broker = Some(broker);
    }

    /// Runs the engine with `front` until the run ends (finished, or stopped by a
    /// signal or the front end). The folder is released when this returns.
    pub fn run(self, front: FrontEnd<'_>) -> Result<Finished, LaunchError> {
        let Prepared { run_dir, state, journal, resumed, snapshot, services, broker, .. } = self;
        // The state as opened, not the log: history is read from disk when wanted.
        let on_disk = front.needs_history.then(|| OnDisk {
            dir: run_dir.path.clone(),
            state: state.clone(),
            records: journal.next_seq().saturating_sub(1),
        });
        // One thread runs the engine and every attempt's I/O (the journal has its own):
        // the work is small and I/O-bound, and a single thread spends less CPU on
        // hand-offs than a pool, CPU the workers need more.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(start_err)?;
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pitboss"));
        let guardian = match Guardian::start(&exe, &state.run_id) {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("pitboss: warning: cannot start the guardian process ({e}); workers would outlive a crash of this manager");
                None
            }
        };
        let config = EngineConfig {
            state_dir: run_dir.path.clone(),
            output_dir: run_dir.output_dir(),
            pitboss_exe: exe,
            exit_when_done: front.exits_when_done,
        };
        // Each pool's environment and the secrets to redact, from this environment.
        let run_env = RunEnv::from_process(state.workflow.head());
        for warning in run_env.warnings() {
            eprintln!("pitboss: {warning}");
        }
        let start = Input::Start { pid: std::process::id(), version: env!("CARGO_PKG_VERSION").to_string(), resumed };
        let hooks = crate::notify::Hooks::prepare(&state, resumed, &run_dir.path);
        let service_dir = run_dir.path.clone();
        let result: Result<(RunState, Ending), LaunchError> = runtime.block_on(async move {
            let local = LocalRunner::for_manager(run_env);
            let run_id = state.run_id.clone();
            let (runners, broker_inputs) = match &broker {
                None => (Runners::Local(Arc::new(local)), None),
                Some(setup) => {
                    let (remote, inputs) = setup.start(local, &state).await.map_err(start_err)?;
                    (Runners::Broker(remote), Some(inputs))
                }
            };
            let world = World { clock: Arc::new(SystemClock), runner: runners.runner() };
            let engine =
                Engine::new(state, Box::new(journal.into_writer()), config, world).opened_from_snapshot(snapshot);
            let engine_handle = engine.handle();
            // Broker news (down, up, workers) becomes the engine's inputs; every
            // committed batch is published, and its results acked, once durable.
            let broker_tasks = match (&runners, broker_inputs) {
                (Runners::Broker(remote), Some(inputs)) => {
                    // A new run's first record was written before the engine: it is
                    // published first, so subscribers get the whole log.
                    if !resumed {
                        if let Some(first) = first_record(&service_dir) {
                            remote.committed(std::slice::from_ref(&first));
                        }
                    }
                    Some(broker_pumps(remote.clone(), inputs, &engine_handle))
                }
                _ => None,
            };
            let notifier = hooks.map(|hooks| hooks.start(engine_handle.subscribe()));
            let (live, output) = (engine_handle.subscribe(), engine_handle.subscribe_output());
            let feed = match on_disk {
                Some(on_disk) => Feed::after_log(on_disk, live, output),
                None => Feed::new(Vec::new(), live, output),
            };
            let mut running_services = Vec::new();
            for service in services {
                let context = ServiceContext {
                    engine: engine_handle.clone(),
                    dir: service_dir.clone(),
                    run_id: run_id.clone(),
                    records: engine_handle.subscribe(),
                };
                match service(context) {
                    Ok(work) => running_services.push(tokio::spawn(work)),
                    Err(e) => eprintln!("pitboss: warning: {e}"),
                }
            }
            let handle = LocalHandle { engine: engine_handle.clone(), feed: Some(feed) };
            engine_handle.send(start);
            let engine_task = tokio::spawn(engine.run(crate::io::signal::shutdown_signal()));
            let front_result = (front.run)(handle).await;
            // A front end returns once the run has stopped, or when it failed: then the
            // run is stopped cleanly before we go (a stop after the end is ignored).
            engine_handle.stop("the control panel closed");
            let engine_result = engine_task.await.map_err(|e| LaunchError::FrontEnd(format!("engine task: {e}")));
            // Persistent workers end cleanly and are waited for, before the runtime goes.
            let finished = matches!(engine_result, Ok(Ok((_, Ending::Finished))));
            if let Some(tasks) = broker_tasks {
                tasks.finish().await;
            }
            runners.shutdown(finished).await;
            // Hooks still running or waiting get their timeout, then are killed.
            if let Some(notifier) = notifier {
                notifier.finish().await;
            }
            // Services end once the records end (the socket file removed); one that
            // does not within a few seconds is cut off.
            for service in running_services {
                let abort = service.abort_handle();
                if tokio::time::timeout(std::time::Duration::from_secs(5), service).await.is_err() {
                    abort.abort();
                }
            }
            let engine_result = engine_result?;
            let (state, ending) = engine_result?;
            front_result.map_err(LaunchError::FrontEnd)?;
            Ok((state, ending))
        });
        drop(runtime);
        drop(guardian);
        let (state, ending) = result?;
        let dir = run_dir.path.clone();
        drop(run_dir);
        Ok(Finished { state, ending, dir })
    }
}
