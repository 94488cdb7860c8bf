//! `pitboss run --headless` and `pitboss resume --headless`: hold the run folder,
//! open or create the log, run the engine until the run finishes or a signal stops
//! it, report progress on stderr and the result on stdout.
//!
//! Progress goes to stderr so that `--json` leaves stdout to the one JSON document: a
//! progress bar when stderr is a terminal, otherwise one plain line per transition.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::broadcast;

use super::report::{counts_line, json_document};
use super::{clock, human_ms, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE};
use crate::core::workflow::Workflow;
use crate::core::{AfterFailure, Event, Input, RunState, TaskStateName};
use crate::engine::{now_ms, Ending, Engine, EngineConfig};
use crate::io::guardian::{self, Guardian};
use crate::io::journal::{self, Journal, Record, LOG_FILE};
use crate::io::rundir::RunDir;

/// Options shared by run and resume.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the JSON document on stdout at the end.
    pub json: bool,
    /// Open the TUI (otherwise headless progress on stderr).
    pub tui: bool,
}

/// Outcome of a command: an exit code, with the message for stderr if it failed early.
pub type CmdResult = Result<u8, (u8, String)>;

fn usage(msg: impl std::fmt::Display) -> (u8, String) {
    (EXIT_USAGE, msg.to_string())
}

/// A fresh folder for a run under the pitboss home: `runs/<utc time>-<name>-<id>`.
pub fn default_state_dir(name: &str, run_id: &str) -> PathBuf {
    let (y, mo, d, h, mi, s, _) = super::civil(now_ms());
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(40).collect();
    super::home().join("runs").join(format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{slug}-{}", &run_id[..8]))
}

/// Starts a new run of `workflow` headless.
pub fn start(workflow: Workflow, state_dir: Option<PathBuf>, opts: RunOptions) -> CmdResult {
    check_secrets(&workflow).map_err(usage)?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let dir = state_dir.unwrap_or_else(|| default_state_dir(&workflow.name, &run_id));
    let run_dir = RunDir::hold(&dir).map_err(usage)?;
    if run_dir.path.join(LOG_FILE).exists() {
        return Err(usage(format!(
            "{} already holds a run; continue it with `pitboss resume {}` or choose another --state-dir",
            run_dir.path.display(),
            run_dir.path.display()
        )));
    }
    let first = Event::RunStarted { run_id: run_id.clone(), workflow: Box::new(workflow.clone()) };
    let journal = Journal::create(&run_dir.path, now_ms(), &first).map_err(usage)?;
    let state = RunState::new(run_id, Arc::new(workflow));
    drive(run_dir, state, journal, false, opts)
}

/// Resumes the run in `dir` headless. `truncate_at` first cuts the log before that seq.
pub fn resume(dir: &Path, truncate_at: Option<u64>, opts: RunOptions) -> CmdResult {
    if !dir.join(LOG_FILE).exists() && !dir.join(LOG_FILE).is_symlink() {
        return Err(usage(format!("{}: no event log here (is this a pitboss run folder?)", dir.display())));
    }
    let run_dir = RunDir::hold(dir).map_err(usage)?;
    if let Some(seq) = truncate_at {
        let cut = journal::truncate_at(&run_dir.path, seq).map_err(usage)?;
        eprintln!("pitboss: cut {cut} bytes from record {seq} on; they are saved in {}", journal::BROKEN_FILE);
    }
    let log = run_dir.path.join(LOG_FILE);
    let (state, scan) = journal::replay(&log).map_err(usage)?;
    check_secrets(&state.workflow).map_err(usage)?;
    let mut journal = Journal::open(&run_dir.path, &scan).map_err(usage)?;
    if let Some(torn) = &scan.torn {
        eprintln!(
            "pitboss: {}:{}: cut a damaged tail of {} bytes ({}); saved to {}",
            log.display(),
            torn.line,
            torn.len,
            torn.reason,
            journal::BROKEN_FILE
        );
        let note = Event::LogRepaired { cut_bytes: torn.len, line: torn.line, reason: torn.reason.clone() };
        journal.append(now_ms(), &[note]).map_err(usage)?;
    }
    end_leftover_workers(&state);
    drive(run_dir, state, journal, true, opts)
}

/// Workers of a crashed manager are ended by its guardian; if the guardian died too,
/// they may still run. End every process marked with this run before replaying, so no
/// attempt runs twice at once.
fn end_leftover_workers(state: &RunState) {
    let ended = guardian::sweep(&state.run_id, None);
    if ended > 0 {
        eprintln!("pitboss: ended {ended} leftover worker process(es) of an earlier manager of this run");
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

fn drive(run_dir: RunDir, state: RunState, journal: Journal, resumed: bool, opts: RunOptions) -> CmdResult {
    // One thread runs the engine and every attempt's I/O (the journal has its own):
    // the work is small and I/O-bound, and a single thread spends less CPU on
    // hand-offs than a pool, CPU the workers need more.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(usage)?;
    let guardian = match Guardian::start(
        &std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pitboss")),
        &state.run_id,
    ) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("pitboss: warning: cannot start the guardian process ({e}); workers would outlive a crash of this manager");
            None
        }
    };
    let state_dir = run_dir.path.clone();
    let output_dir = run_dir.output_dir();
    let pitboss_exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pitboss"));
    let name = state.workflow.name.clone();
    let total = state.tasks.len();
    let started = now_ms();
    let tui = if opts.tui {
        let options = crate::tui::TuiOptions::from_environment().map_err(usage)?;
        let mut records = Vec::new();
        journal::scan(&run_dir.path.join(LOG_FILE), |record, _| {
            records.push(record);
            Ok(())
        })
        .map_err(usage)?;
        Some((options, records))
    } else {
        None
    };
    let start = Input::Start { pid: std::process::id(), version: env!("CARGO_PKG_VERSION").to_string(), resumed };
    let result = runtime.block_on(async move {
        let exit_when_done = tui.is_none();
        let config = EngineConfig { state_dir: state_dir.clone(), output_dir, pitboss_exe, exit_when_done };
        let engine = Engine::new(state, journal, config);
        if let Some((options, records)) = tui {
            return crate::tui::run(engine, start, records, options).await;
        }
        let handle = engine.handle();
        let reporter = tokio::spawn(report(handle.subscribe(), total));
        handle.send(start);
        let result = engine.run(shutdown_signal()).await;
        drop(handle);
        let _ = reporter.await;
        result.map_err(|e| e.to_string())
    });
    drop(runtime);
    drop(guardian);
    let (state, ending) = result.map_err(|e| (EXIT_USAGE, e))?;
    let dir = run_dir.path.clone();
    drop(run_dir);
    if opts.json {
        println!("{}", json_document(&state, &dir));
    }
    let elapsed = human_ms(now_ms().saturating_sub(started));
    match ending {
        Ending::Interrupted => {
            eprintln!("pitboss: run {name:?} interrupted after {elapsed}: {}", counts_line(&state));
            eprintln!("pitboss: continue it with: pitboss resume {}", dir.display());
            Ok(EXIT_INTERRUPTED)
        }
        Ending::Finished => {
            eprintln!("pitboss: run {name:?} finished in {elapsed}: {}", counts_line(&state));
            let ok = state.count(TaskStateName::Completed) == state.tasks.len();
            if !ok {
                eprintln!("pitboss: see what failed with: pitboss inspect {}", dir.display());
            }
            Ok(if ok { EXIT_OK } else { EXIT_FAILED })
        }
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
pub async fn shutdown_signal() -> String {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT".to_string(),
        _ = term.recv() => "SIGTERM".to_string(),
    }
}

/// One line for a record, or None for records that are not transitions.
pub fn describe(record: &Record) -> Option<String> {
    let e = &record.event;
    let what = match e {
        Event::RunStarted { run_id, workflow } => {
            format!("run {:?} started ({} tasks, run id {run_id})", workflow.name, workflow.tasks.len())
        }
        Event::ManagerStarted { pid, resumed: true, .. } => format!("manager pid {pid} resumed the run"),
        Event::ManagerStarted { pid, .. } => format!("manager pid {pid} started"),
        Event::TaskReady { task } => format!("{task}: queued"),
        Event::AttemptStarted { task, attempt, pool } => format!("{task}: running attempt {attempt} on pool {pool}"),
        Event::AttemptSpawned { .. } => return None,
        Event::AttemptSucceeded { task, attempt, duration_ms, .. } => {
            format!("{task}: completed (attempt {attempt}, {})", human_ms(*duration_ms))
        }
        Event::AttemptFailed { task, attempt, error, then, .. } => match then {
            AfterFailure::Retry { delay_ms, .. } => {
                format!("{task}: attempt {attempt} failed: {error}; retry in {}", human_ms(*delay_ms))
            }
            AfterFailure::Defer { delay_ms, .. } => {
                format!("{task}: could not start attempt {attempt}: {error}; trying again in {}", human_ms(*delay_ms))
            }
            AfterFailure::DeadLetter { reason } => format!("{task}: dead-lettered: {reason}"),
            AfterFailure::Fallback { reason } => {
                format!("{task}: attempt {attempt} failed: {error}; fallback used ({reason})")
            }
        },
        Event::FallbackUsed { task, reason } => format!("{task}: fallback used ({reason})"),
        Event::PayloadEdited { task, .. } => format!("{task}: payload edited by an operator"),
        Event::AttemptStalled { task, attempt, quiet_ms } => {
            format!("{task}: attempt {attempt} stalled? no output for {}", human_ms(*quiet_ms))
        }
        Event::AttemptActive { task, attempt } => format!("{task}: attempt {attempt} is printing again"),
        Event::BreakerOpened { pool, until_ms: Some(until), reason } => {
            format!("pool {pool}: breaker open ({reason}); probes from {}", clock(*until))
        }
        Event::BreakerOpened { pool, until_ms: None, reason } => {
            format!("pool {pool}: breaker open ({reason}) until reset")
        }
        Event::BreakerHalfOpened { pool } => format!("pool {pool}: breaker half-open, probing"),
        Event::PoolPaused { pool } => format!("pool {pool}: paused by an operator"),
        Event::PoolResumed { pool } => format!("pool {pool}: resumed by an operator"),
        Event::ConcurrencyChanged { pool, concurrency } => format!("pool {pool}: concurrency set to {concurrency}"),
        Event::BreakerClosed { pool, reason } => format!("pool {pool}: breaker closed ({reason})"),
        Event::AttemptInterrupted { task, attempt, reason } => {
            format!("{task}: attempt {attempt} stopped ({reason}); queued again")
        }
        Event::RetryDue { task } => format!("{task}: queued (retry)"),
        Event::TaskCancelled { task, reason } => format!("{task}: cancelled ({reason})"),
        Event::TaskSkipped { task, because } => {
            format!("{task}: skipped (dependency {because} did not complete)")
        }
        Event::TaskRequeued { task, reason } => format!("{task}: requeued by {reason}"),
        Event::TaskRevived { task, because } => {
            format!("{task}: back to blocked ({because} was requeued)")
        }
        Event::RunInterrupted { reason } => {
            format!("run interrupted ({reason}); stopping running attempts")
        }
        Event::LogRepaired { cut_bytes, line, reason } => {
            format!("log repaired: cut {cut_bytes} bytes from line {line} ({reason})")
        }
        Event::RunFinished { success: true } => "run finished: every task completed".to_string(),
        Event::RunFinished { success: false } => "run finished with failures".to_string(),
    };
    Some(what)
}

/// Prints progress until the engine goes away.
async fn report(mut rx: broadcast::Receiver<Arc<[Record]>>, total: usize) {
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} done  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let mut done = 0u64;
    loop {
        let batch = match rx.recv().await {
            Ok(batch) => batch,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("pitboss: progress display skipped {n} batches (the log has them all)");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        // One write per batch, not per line: a busy fleet makes thousands of lines.
        let mut plain = String::new();
        for record in batch.iter() {
            let Some(line) = describe(record) else {
                continue;
            };
            match &bar {
                None => {
                    plain.push_str(&clock(record.ts));
                    plain.push(' ');
                    plain.push_str(&line);
                    plain.push('\n');
                }
                Some(bar) => {
                    let terminal = matches!(
                        record.event,
                        Event::AttemptSucceeded { .. }
                            | Event::AttemptFailed { then: AfterFailure::DeadLetter { .. }, .. }
                            | Event::TaskCancelled { .. }
                            | Event::TaskSkipped { .. }
                    );
                    if terminal {
                        done += 1;
                        bar.set_position(done);
                    }
                    let loud = matches!(
                        record.event,
                        Event::AttemptFailed { .. }
                            | Event::TaskSkipped { .. }
                            | Event::TaskCancelled { .. }
                            | Event::RunInterrupted { .. }
                    );
                    if loud {
                        bar.println(format!("{} {line}", clock(record.ts)));
                    }
                    bar.set_message(line);
                }
            }
        }
        if !plain.is_empty() {
            use std::io::Write;
            let _ = std::io::stderr().lock().write_all(plain.as_bytes());
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
