//! `pitboss run` and `pitboss resume`: prepare the run through the launcher, run it
//! with the front end `main` chose (the TUI, or [`headless`] progress on stderr), and
//! report the result: a summary on stderr, the `--json` document on stdout, the exit
//! code.
//!
//! Progress goes to stderr so that `--json` leaves stdout to the one JSON document: a
//! progress bar when stderr is a terminal, otherwise one plain line per transition.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::report::{counts_line, json_document};
use super::{usage, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::core::text::{civil, clock, describe, human_ms};
use crate::core::workflow::Workflow;
use crate::core::{AfterFailure, Event, TaskStateName};
use crate::engine::{now_ms, Ending};
use crate::launch::{self, Feed, FrontEnd, LaunchError, NewRun, Prepared, RunHandle};

/// Options shared by run and resume.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the JSON document on stdout at the end.
    pub json: bool,
}

/// Outcome of a command: an exit code, with the message for stderr if it failed early.
pub type CmdResult = Result<u8, (u8, String)>;

/// A fresh folder for a run under the pitboss home: `runs/<utc time>-<name>-<id>`.
pub fn default_state_dir(name: &str, run_id: &str) -> PathBuf {
    let (y, mo, d, h, mi, s, _) = civil(now_ms());
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).take(40).collect();
    super::home().join("runs").join(format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{slug}-{}", &run_id[..8]))
}

/// Prepares a new run of `workflow` (in `state_dir`, or a fresh folder under the home).
pub fn prepare_new(workflow: Workflow, state_dir: Option<PathBuf>) -> Result<Prepared, (u8, String)> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let dir = state_dir.unwrap_or_else(|| default_state_dir(&workflow.name, &run_id));
    launch::new_run(NewRun { workflow, run_id, dir }).map_err(usage)
}

/// Prepares the run in `dir` to carry on; `truncate_at` first cuts the log before that seq.
pub fn prepare_resume(dir: &Path, truncate_at: Option<u64>) -> Result<Prepared, (u8, String)> {
    launch::resume(dir, truncate_at).map_err(usage)
}

/// Runs a prepared run with `front` and reports how it ended.
pub fn drive(prepared: Prepared, front: FrontEnd<'_>, opts: RunOptions) -> CmdResult {
    for note in &prepared.notes {
        eprintln!("pitboss: {note}");
    }
    let name = prepared.state().workflow.name.clone();
    let started = now_ms();
    let finished = match prepared.run(front) {
        Ok(finished) => finished,
        Err(e @ LaunchError::Engine(_)) => return Err(usage(format!("pitboss: {e}"))),
        Err(e) => return Err(usage(e)),
    };
    let (state, dir) = (&finished.state, &finished.dir);
    if opts.json {
        println!("{}", json_document(state, dir));
    }
    let elapsed = human_ms(now_ms().saturating_sub(started));
    match finished.ending {
        Ending::Interrupted => {
            eprintln!("pitboss: run {name:?} interrupted after {elapsed}: {}", counts_line(state));
            eprintln!("pitboss: continue it with: pitboss resume {}", dir.display());
            Ok(EXIT_INTERRUPTED)
        }
        Ending::Finished => {
            eprintln!("pitboss: run {name:?} finished in {elapsed}: {}", counts_line(state));
            let ok = state.count(TaskStateName::Completed) == state.tasks.len();
            if !ok {
                eprintln!("pitboss: see what failed with: pitboss inspect {}", dir.display());
            }
            Ok(if ok { EXIT_OK } else { EXIT_FAILED })
        }
    }
}

/// The headless front end: progress on stderr until the run ends by itself.
pub fn headless<'a>() -> FrontEnd<'a> {
    FrontEnd {
        exits_when_done: true,
        needs_history: false,
        run: Box::new(|mut handle| {
            Box::pin(async move {
                let total = handle.snapshot().tasks.len();
                if let Some(feed) = handle.take_feed() {
                    report(feed, total).await;
                }
                Ok(())
            })
        }),
    }
}

/// Prints progress until the engine goes away.
async fn report(mut feed: Feed, total: usize) {
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
    while let Some(batch) = feed.next().await {
        // One write per batch, not per line: a busy fleet makes thousands of lines.
        let mut plain = String::new();
        for record in batch.iter() {
            let Some(line) = describe(&record.event) else {
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
                            | Event::OutputCaptureFailed { .. }
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
