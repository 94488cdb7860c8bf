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
use crate::core::escape::{escape_json, escape_line};
use crate::core::text::{civil, clock, describe, human_ms};
use crate::core::workflow::Workflow;
use crate::core::workflow::{BrokerSpec, PasswordSource};
use crate::core::{Event, RunState, TaskState, TaskStateName};
use crate::engine::{now_ms, Ending, EngineError, EngineHandle};
use crate::io::broker::trust::TlsFiles;
use crate::io::fdlimit;
use crate::io::journal::{self, JournalError, LOG_FILE};
use crate::launch::{self, BrokerSetup, Feed, FrontEnd, LaunchError, NewRun, Prepared, RunHandle};

/// The TLS files of a broker connection, shared by `run`, `resume` and `worker`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BrokerTlsArgs {
    /// A CA file (PEM) to trust for a TLS broker (rediss://, amqps://) signed by a private CA; else PITBOSS_BROKER_CA_FILE, else the system's store.
    #[arg(long, value_name = "FILE")]
    pub broker_ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for a TLS broker that asks for one; else PITBOSS_BROKER_CLIENT_CERT.
    #[arg(long, value_name = "FILE")]
    pub broker_client_cert: Option<PathBuf>,
    /// Its private key (PEM, readable by its owner only); else PITBOSS_BROKER_CLIENT_KEY.
    #[arg(long, value_name = "FILE")]
    pub broker_client_key: Option<PathBuf>,
}

impl BrokerTlsArgs {
    /// The files, for [`crate::io::broker::trust::apply`].
    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            ca_file: self.broker_ca_file.clone(),
            client_cert: self.broker_client_cert.clone(),
            client_key: self.broker_client_key.clone(),
        }
    }
}

/// Options shared by run and resume.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Print the JSON document on stdout at the end.
    pub json: bool,
}

/// Exit code: a headless run given `--exit-when-blocked` stopped because nothing can
/// move without an operator (tasks held for approval); the run is resumable.
pub const EXIT_BLOCKED: u8 = 3;

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
    prepare_new_with(workflow, state_dir, run_id, None)
}

/// [`prepare_new`] with its run id chosen, and the broker (checked reachable) whose
/// workers run its attempts.
pub fn prepare_new_with(
    workflow: Workflow,
    state_dir: Option<PathBuf>,
    run_id: String,
    broker: Option<BrokerSetup>,
) -> Result<Prepared, (u8, String)> {
    let dir = state_dir.unwrap_or_else(|| default_state_dir(&workflow.name, &run_id));
    let mut prepared = launch::new_run(NewRun { workflow, run_id, dir }).map_err(usage)?;
    if let Some(broker) = broker {
        prepared.use_broker(broker);
    }
    Ok(prepared)
}

/// Prepares the run in `dir` to carry on; `truncate_at` first cuts the log before that seq.
pub fn prepare_resume(dir: &Path, truncate_at: Option<u64>) -> Result<Prepared, (u8, String)> {
    launch::resume(dir, truncate_at).map_err(usage)
}

/// Prepares the run in `dir` to carry on (as [`prepare_resume`]); a run recorded
/// with a broker (or given `--broker`) reconnects to it first, and an unreachable
/// broker is an error before anything else happens.
pub fn prepare_resume_with(
    dir: &Path,
    truncate_at: Option<u64>,
    broker: Option<&str>,
    password_file: Option<&Path>,
    tls: &TlsFiles,
) -> Result<Prepared, (u8, String)> {
    let mut prepared = launch::resume(dir, truncate_at).map_err(usage)?;
    // The broker's part alone: a clone of the whole workflow was 42 MB of a
    // quarter-million-task run's `resume` peak (issue 14), for one field.
    let mut spec = prepared.state().workflow.head().broker.clone();
    if let Some(setup) = broker_setup(&mut spec, broker, password_file, tls)? {
        let state = prepared.state();
        launch::check_broker(&setup, &state.run_id, state.workflow.head()).map_err(usage)?;
        prepared.use_broker(setup);
    }
    Ok(prepared)
}

/// `--broker URL` read (a password in it refused without repeating it), for the
/// workflow check: a run given a broker may have pools without `command`.
pub fn broker_flag(flag: Option<&str>) -> Result<Option<crate::core::workflow::BrokerUrl>, (u8, String)> {
    flag.map(|text| crate::core::workflow::BrokerUrl::parse(text.trim()).map_err(|e| usage(format!("--broker: {e}"))))
        .transpose()
}

/// The broker a run uses: `--broker` (which then becomes the workflow's `[run]
/// broker`, so the URL is recorded with the workflow), else the workflow's own. The
/// password comes from `--broker-password-file`, the workflow's file, or
/// `PITBOSS_BROKER_PASSWORD`; never from the command line or the URL. A TLS URL
/// takes its CA and client certificate from `tls` or their variables (not recorded:
/// like the password file flag, files of this host, given again to `resume`).
pub fn broker_setup(
    broker: &mut Option<BrokerSpec>,
    flag: Option<&str>,
    password_file: Option<&Path>,
    tls: &TlsFiles,
) -> Result<Option<BrokerSetup>, (u8, String)> {
    if let Some(url) = broker_flag(flag)? {
        let mut spec = broker.clone().unwrap_or_else(|| BrokerSpec::new(&url));
        spec.url = url.to_string();
        *broker = Some(spec);
    }
    let Some(spec) = &*broker else {
        if password_file.is_some() {
            return Err(usage("--broker-password-file needs --broker URL (or [run] broker in the workflow)"));
        }
        if let Some(flag) = tls.first_given() {
            return Err(usage(format!("{flag} needs --broker URL (or [run] broker in the workflow)")));
        }
        return Ok(None);
    };
    let url = crate::io::broker::url::parse(&spec.url).map_err(|e| usage(format!("--broker: {e}")))?;
    let url = crate::io::broker::trust::apply(url, tls).map_err(usage)?;
    let file = match (password_file, &spec.password) {
        (Some(file), _) => Some(file.to_path_buf()),
        (None, PasswordSource::File(file)) => Some(file.clone()),
        _ => None,
    };
    let password = crate::io::broker::url::password(file.as_deref()).map_err(usage)?;
    let lease = std::time::Duration::from_millis(spec.lease_ms);
    Ok(Some(BrokerSetup { url, password, lease }))
}

/// Makes sure the open-file limit allows a run of `workflow` (raising the soft limit
/// if it can), or says which limit it needs (exit 2).
pub fn check_files(workflow: &Workflow) -> Result<(), (u8, String)> {
    fdlimit::ensure(fdlimit::needed(workflow), "for this run").map(|_| ()).map_err(usage)
}

/// Runs a prepared run with `front` and reports how it ended.
pub fn drive(prepared: Prepared, front: FrontEnd<'_>, opts: RunOptions) -> CmdResult {
    // A resumed run's size is known only now; a new run was checked before its folder was made.
    check_files(prepared.state().workflow.head())?;
    for note in &prepared.notes {
        eprintln!("pitboss: {note}");
    }
    let name = prepared.state().workflow.head().name.clone();
    let (run_id, dir) = (prepared.state().run_id.clone(), prepared.dir().to_path_buf());
    let started = now_ms();
    let finished = match prepared.run(front) {
        Ok(finished) => finished,
        Err(LaunchError::Engine(e)) => return Err(stopped(&e, &run_id, &dir, &opts)),
        Err(e) => return Err(usage(e)),
    };
    let (state, dir) = (&finished.state, &finished.dir);
    if opts.json {
        let mut doc = json_document(state, dir);
        // Stopped by `--exit-when-blocked`: why, and that `resume` carries on.
        if matches!(finished.ending, Ending::Interrupted) && crate::core::hold::only_held_remain(state) {
            doc["blocked"] = crate::core::hold::held_line(state).into();
            doc["resumable"] = true.into();
        } else if let (Ending::Interrupted, Some(spent)) =
            (&finished.ending, crate::core::decide::budget_blocked(state))
        {
            doc["blocked"] = spent.into();
            doc["resumable"] = true.into();
        }
        println!("{}", escape_json(&doc.to_string()));
    }
    let elapsed = human_ms(now_ms().saturating_sub(started));
    let code = exit_code(state, dir, &finished.ending, &name, &elapsed);
    // The process ends right after this: freeing a large run's state piece by piece
    // (a quarter million tasks) was a tenth of `resume`'s instructions (issue 14), and
    // the OS takes the memory back whole. Nothing in it needs a drop to run (the log
    // is closed, the folder released, by the engine and the launcher).
    std::mem::forget(finished);
    code
}

/// What `drive` says at the end of the run `name` and the code it exits with.
fn exit_code(state: &RunState, dir: &Path, ending: &Ending, name: &str, elapsed: &str) -> CmdResult {
    match ending {
        // Stopped with tasks held for approval (`--exit-when-blocked`): not a success,
        // not an interruption to shrug off; each held task and its finding, then how
        // to answer (DESIGN §2: exit 3, resumable).
        Ending::Interrupted if crate::core::hold::only_held_remain(state) => {
            eprintln!("pitboss: run {name:?} stopped after {elapsed}: {}", crate::core::hold::held_line(state));
            for (i, task) in state.tasks.iter().enumerate() {
                if let TaskState::AwaitingApproval { finding } = &task.state {
                    let id = state.task_id(i);
                    eprintln!("pitboss: held {id}: {}", escape_line(&crate::core::hold::finding_text(finding)));
                }
            }
            eprintln!("pitboss: approve (a) or reject (X) them in: pitboss resume {}", dir.display());
            Ok(EXIT_BLOCKED)
        }
        // Stopped with the run's budget spent (`--exit-when-blocked`): exit 3, and how
        // to go on.
        Ending::Interrupted if crate::core::decide::budget_blocked(state).is_some() => {
            let spent = crate::core::decide::budget_blocked(state).unwrap_or_default();
            eprintln!("pitboss: run {name:?} stopped after {elapsed}: {spent}");
            eprintln!(
                "pitboss: resume it with `pitboss resume {d}` and raise the budget with `pitboss ctl {d} budget --max-cost-usd N`",
                d = dir.display()
            );
            Ok(EXIT_BLOCKED)
        }
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

/// A run the engine stopped (its log could not record it: a full disk, the log
/// removed or replaced): exit 2 with what happened and how to carry on, and with
/// `--json` the document of the state the log holds, which is where `resume` carries
/// on from, plus `"error"` and `"resumable"`.
fn stopped(e: &EngineError, run_id: &str, dir: &Path, opts: &RunOptions) -> (u8, String) {
    let error = format!("the run stopped: {e}");
    // A log removed or replaced is not this run's any more: never fold what is there.
    let gone = matches!(e, EngineError::Journal(JournalError::Gone(_)));
    let recorded = if gone { None } else { journal::replay(&dir.join(LOG_FILE)).ok().map(|(state, _)| state) };
    let mut message = format!("pitboss: {error}");
    if recorded.is_some() {
        message.push_str(&format!(
            "\npitboss: the log holds everything recorded before that; once the cause is fixed (room on the disk), continue with: pitboss resume {}",
            dir.display()
        ));
    }
    if opts.json {
        let mut doc = match &recorded {
            Some(state) => json_document(state, dir),
            None => serde_json::json!({"run_id": run_id, "state_dir": dir.display().to_string()}),
        };
        doc["error"] = error.into();
        doc["resumable"] = recorded.is_some().into();
        println!("{doc}");
    }
    usage(message)
}

/// The headless front end: progress on stderr until the run ends by itself. When
/// nothing can move without an operator (only tasks held for approval are left), it
/// says so once and waits for their answer (`pitboss ctl DIR approve ID…`), or, with
/// `exit_when_blocked`, returns, which stops the run (resumable; exit 3).
pub fn headless<'a>(exit_when_blocked: bool, dir: std::path::PathBuf) -> FrontEnd<'a> {
    FrontEnd {
        exits_when_done: true,
        needs_history: false,
        run: Box::new(move |mut handle| {
            Box::pin(async move {
                let engine = handle.engine().clone();
                if let Some(feed) = handle.take_feed() {
                    if let Some(blocked) = report(feed, &engine, exit_when_blocked, &dir).await {
                        // The log says why the run stopped (the launcher's own stop
                        // after this one is ignored).
                        handle.stop(&format!("blocked: {blocked}; --exit-when-blocked"));
                    }
                }
                Ok(())
            })
        }),
    }
}

/// "waiting for an operator: 3 tasks held for approval (a, b, c); approve with …".
fn waiting_line(state: &RunState, dir: &std::path::Path) -> String {
    if let Some(spent) = crate::core::decide::budget_blocked(state) {
        return format!(
            "pitboss: waiting for an operator: {spent}; raise it with `pitboss ctl {} budget --max-cost-usd N`, or stop and resume later",
            shell_word(&dir.display().to_string())
        );
    }
    let held: Vec<&str> = (0..state.tasks.len())
        .filter(|&i| matches!(state.tasks[i].state, TaskState::AwaitingApproval { .. }))
        .map(|i| state.task_id(i))
        .collect();
    let shown = if held.len() > 5 { format!("{}, …", held[..5].join(", ")) } else { held.join(", ") };
    format!(
        "pitboss: waiting for an operator: {} ({shown}); approve with `pitboss ctl {dir} approve ID…` or reject with `pitboss ctl {dir} reject ID…`, or stop and resume later",
        crate::core::hold::held_line(state),
        dir = shell_word(&dir.display().to_string())
    )
}

/// `word` as a shell reads it back: bare when it is plain, else single-quoted, so
/// the printed command can be pasted as it is.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Prints progress until the engine goes away (or, with `exit_when_blocked`, until
/// the run is blocked on an operator).
/// Returns why it stopped early when the run was blocked (`exit_when_blocked`).
async fn report(
    mut feed: Feed,
    engine: &EngineHandle,
    exit_when_blocked: bool,
    dir: &std::path::Path,
) -> Option<String> {
    let mut progress = engine.read(|state, _| Progress::of(state)).await?;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = ProgressBar::new(progress.total);
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} done  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    // Said once each time the run becomes blocked.
    let mut said_blocked = false;
    let mut stopped = None;
    while let Some(batch) = feed.next().await {
        // The engine's counts as of this batch or later; once it has stopped, the last
        // ones read stand. Read when the reporter has caught up with the feed, so a
        // busy run is asked once per burst, not per batch, and its batches do not
        // pile up unread behind the question.
        if !feed.has_more() {
            if let Some(now) = engine.read(|state, _| Progress::of(state)).await {
                progress = now;
            }
        }
        // One write per batch, not per line: a busy fleet makes thousands of lines.
        let mut plain = String::new();
        for record in batch.iter() {
            let Some(line) = describe(&record.event) else {
                continue;
            };
            // Errors, ids and reasons come from workers: never sent raw to a terminal.
            let line = escape_line(&line).into_owned();
            match &bar {
                None => {
                    plain.push_str(&clock(record.ts));
                    plain.push(' ');
                    plain.push_str(&line);
                    plain.push('\n');
                }
                Some(bar) => {
                    bar.set_position(progress.terminal);
                    let loud = matches!(
                        record.event,
                        Event::AttemptFailed { .. }
                            | Event::TaskSkipped { .. }
                            | Event::TaskCancelled { .. }
                            | Event::RunInterrupted { .. }
                            | Event::OutputCaptureFailed { .. }
                            // A lost broker pauses dispatch; a lost worker moves its task.
                            | Event::BrokerDown(_)
                            | Event::BrokerUp(_)
                            | Event::WorkerLost(_)
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
        let blocked = progress.held.is_some();
        if let Some(held) = &progress.held {
            if exit_when_blocked {
                // Returning stops the run: it ends interrupted with the held tasks kept.
                stopped = Some(held.clone());
                break;
            }
            if !said_blocked {
                // Naming the held tasks looks at every task: only when it is said.
                let dir = dir.to_path_buf();
                if let Some(line) = engine.read(move |state, _| waiting_line(state, &dir)).await {
                    let line = escape_line(&line).into_owned();
                    match &bar {
                        Some(bar) => bar.println(line),
                        None => eprintln!("{line}"),
                    }
                }
            }
        }
        said_blocked = blocked;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    stopped
}

/// What the headless reporter shows of a run, read from the engine's own state (the
/// reporter keeps no fold of its own): how many tasks are at an end, counting the
/// states that end a task rather than guessing from event kinds (a task can end in
/// many ways: a fallback's result, a fallback pool, a fallback skip, a dead letter,
/// a cancel; and a requeue brings one back), and whether only held tasks remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Tasks at an end.
    pub terminal: u64,
    /// Tasks in the run.
    pub total: u64,
    /// "2 tasks held for approval" when nothing can move without an operator.
    pub held: Option<String>,
}

impl Progress {
    /// The progress of `state` (from its counts: no task is looked at).
    pub fn of(state: &RunState) -> Progress {
        let terminal =
            TaskStateName::ALL.iter().filter(|name| name.is_terminal()).map(|name| state.count(*name) as u64).sum();
        let held = crate::core::hold::only_held_remain(state).then(|| crate::core::hold::held_line(state));
        // A run whose budget stopped dispatch waits for an operator too (DESIGN §13).
        let held = held.or_else(|| crate::core::decide::budget_blocked(state));
        Progress { terminal, total: state.tasks.len() as u64, held }
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn a_folder_is_printed_as_a_shell_reads_it_back() {
        assert_eq!(shell_word("/tmp/run-1"), "/tmp/run-1");
        assert_eq!(shell_word("/tmp/my run"), "'/tmp/my run'");
        assert_eq!(shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
    }
}
