//! A fork of a run (DESIGN §6, `pitboss fork DIR --at SEQ`): a new run folder whose
//! log is the original's records 1..=SEQ, byte for byte (each keeps its checksum),
//! then a `forked_from` record naming the original run and SEQ. The fork is then an
//! ordinary stopped run: `pitboss resume NEWDIR` continues it.
//!
//! What the fork changes, and why:
//! - It gets a run id of its own (in `forked_from`, which the fold takes): the run id
//!   marks the run's worker processes (a resume ends a dead manager's leftovers by
//!   it), names the control socket when the folder's path is too long for one there,
//!   and is given to workers and hooks (`PITBOSS_RUN_ID`). Under one id, the two runs
//!   would end each other's orphans, replace each other's socket, and look like one
//!   run to anything outside.
//! - Attempts running at SEQ are handed back (`attempt_interrupted`, not spent), as
//!   after a crash but without counting one towards the poison-pill limit: the fork is
//!   not a crash. An attempt whose gates were checking its result at SEQ has its gate
//!   run again on resume, as after a crash (that counts one).
//! - The captured output of every attempt that had ended by SEQ is copied into the
//!   fork's `output/`, so the fork reads like the original did at SEQ; an attempt that
//!   was running gets none (it runs again and writes its own).
//!
//! The original folder is only read, never locked or written: a live run can be
//! forked. Its log is read through [`segments`] (the archive, then the live log), so
//! the prefix may cross archived segments; the fork's own log is one live file.
//! On any failure the new folder is removed: nothing is left behind.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::fsutil::{create_private_dir, private_file};
use super::journal::{self, Journal, JournalError, LOG_FILE};
use super::rundir::OUTPUT_DIR;
use super::segments;
use crate::core::task::TaskState;
use crate::core::{ApplyError, Event, RunState};

/// A fork's failure, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    /// The original folder holds no log.
    #[error("{}: no event log here ({LOG_FILE} is missing); is this a run folder?", .0.display())]
    NoLog(PathBuf),
    /// SEQ is 0: records are numbered from 1.
    #[error(
        "--at 0: records are numbered from 1 (record 1 is run_started; --at 1 forks the run before any task started)"
    )]
    Zero,
    /// SEQ is past the last record.
    #[error("{}: --at {seq} is past the end of the log, which holds {records} record(s){tail}", .dir.display())]
    PastEnd {
        /// The original folder.
        dir: PathBuf,
        /// The SEQ asked for.
        seq: u64,
        /// Records the log holds.
        records: u64,
        /// A note on a damaged tail, if the log ends in one.
        tail: String,
    },
    /// The log could not be read up to SEQ (damage names the file and line).
    #[error("{0}")]
    Log(JournalError),
    /// A payload edit cannot be made at SEQ.
    #[error("--edit {task}: {why}")]
    Edit {
        /// The task named.
        task: String,
        /// Why not.
        why: String,
    },
    /// The fork's own records do not fold onto the state at SEQ (a bug, never input).
    #[error("the fork's own records do not fit the run at that record: {0}")]
    Unfit(String),
    /// The new folder exists already (a fork never overwrites).
    #[error("{}: already exists; a fork never writes into an existing folder (choose another --to)", .0.display())]
    Exists(PathBuf),
    /// The new folder could not be made or written.
    #[error("{}: cannot write the fork there: {source}", .path.display())]
    Write {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What a fork made.
#[derive(Debug, Clone)]
pub struct Forked {
    /// The new run folder.
    pub dir: PathBuf,
    /// The new run's id.
    pub run_id: String,
    /// The original run's id.
    pub from_run: String,
    /// Attempts handed back (task ids).
    pub handed_back: Vec<String>,
    /// Tasks whose payload was replaced (an edit that changed nothing is left out).
    pub edited: Vec<String>,
    /// Output files copied.
    pub outputs: usize,
}

/// The default folder of a fork of `dir` at `seq`: beside it, `DIR-fork-SEQ`, or
/// `DIR-fork-SEQ-2`, `-3`… when that exists (never an existing folder).
pub fn default_dir(dir: &Path, seq: u64) -> PathBuf {
    let name = dir.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let parent = dir.parent().unwrap_or(Path::new("."));
    let base = parent.join(format!("{name}-fork-{seq}"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.symlink_metadata().is_ok() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// What a fork is asked for besides its folder.
#[derive(Debug, Clone, Default)]
pub struct ForkOptions {
    /// The fork's run id.
    pub run_id: String,
    /// Payloads to give tasks in the fork (`payload_edited` after `forked_from`).
    pub edits: Vec<(String, serde_json::Value)>,
    /// When the fork's own records are stamped (ms since the epoch).
    pub now_ms: u64,
}

/// Forks the run in `dir` at record `seq` into the new folder `to` (see the module).
pub fn fork(dir: &Path, seq: u64, to: &Path, options: ForkOptions) -> Result<Forked, ForkError> {
    if seq == 0 {
        return Err(ForkError::Zero);
    }
    let log = dir.join(LOG_FILE);
    if log.symlink_metadata().is_err() {
        return Err(ForkError::NoLog(dir.to_path_buf()));
    }
    let state = fold_to(dir, seq)?;
    // Everything the fork adds is known, and checked against the state, before the
    // folder exists: a refused edit leaves nothing behind.
    let added = fork_events(&state, seq, &options)?;
    if to.symlink_metadata().is_ok() {
        return Err(ForkError::Exists(to.to_path_buf()));
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ForkError::Write { path, source }
    };
    // `create_dir` (not recursive) on the folder itself: it fails when the folder
    // appeared meanwhile, so a fork never writes into one it did not make.
    if let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(write_err(parent))?;
    }
    super::platform::private_dir_builder().create(to).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => ForkError::Exists(to.to_path_buf()),
        _ => ForkError::Write { path: to.to_path_buf(), source },
    })?;
    let made = write_fork(dir, seq, to, &state, added, options.now_ms);
    if made.is_err() {
        let _ = std::fs::remove_dir_all(to);
    }
    made
}

/// Folds the original's records 1..=`seq`, reading no further than record `seq + 1`.
fn fold_to(dir: &Path, seq: u64) -> Result<RunState, ForkError> {
    let mut state: Option<RunState> = None;
    let mut folded = 0u64;
    // Reading stops at the record after `seq` by refusing it: this error, with that
    // record's seq, is the reader's signal that the prefix is whole.
    let read = segments::read_from(dir, 0, None, |rec, _| {
        if rec.seq > seq {
            return Err(ApplyError::NotStarted);
        }
        match &mut state {
            None => state = Some(RunState::from_first(&rec.event)?),
            Some(s) => s.apply(&rec.event, rec.ts)?,
        }
        folded = rec.seq;
        Ok(())
    });
    match read {
        // Whatever is wrong after record `seq` (a damaged tail, a record this build
        // cannot read) does not touch the prefix the fork copies.
        _ if folded == seq => {}
        Ok(read) => {
            let tail = read.scan.torn.map_or_else(String::new, |t| {
                format!(
                    " (the log ends in a damaged record at {}:{}: {})",
                    dir.join(LOG_FILE).display(),
                    t.line,
                    t.reason
                )
            });
            return Err(ForkError::PastEnd { dir: dir.to_path_buf(), seq, records: read.scan.records, tail });
        }
        Err(e) => return Err(ForkError::Log(e)),
    }
    state.ok_or_else(|| ForkError::PastEnd { dir: dir.to_path_buf(), seq, records: 0, tail: String::new() })
}

/// The records a fork adds after the copied prefix, with the tasks handed back and
/// edited.
struct Added {
    events: Vec<Event>,
    run_id: String,
    handed_back: Vec<String>,
    edited: Vec<String>,
}

/// `forked_from`, an `attempt_interrupted` for each attempt running at `seq`, then
/// each edit that changes a payload, all checked by folding them onto `state`.
fn fork_events(state: &RunState, seq: u64, options: &ForkOptions) -> Result<Added, ForkError> {
    let run_id = options.run_id.clone();
    let mut events = vec![Event::ForkedFrom { run_id: state.run_id.clone(), seq, new_run_id: run_id.clone() }];
    let mut handed_back = Vec::new();
    for (i, task) in state.tasks.iter().enumerate() {
        if let TaskState::Running { attempt, .. } = task.state {
            let id = state.task_id(i).to_string();
            events.push(Event::AttemptInterrupted {
                task: id.clone(),
                attempt,
                reason: format!("the run was forked at record {seq}; the attempt runs again in the fork"),
            });
            handed_back.push(id);
        }
    }
    let mut check = state.clone();
    for event in &events {
        check.apply(event, options.now_ms).map_err(|e| ForkError::Unfit(e.to_string()))?;
    }
    let mut edited = Vec::new();
    for (task, payload) in &options.edits {
        let edit_err = |why: String| ForkError::Edit { task: task.clone(), why };
        let i =
            check.task_index(task).ok_or_else(|| edit_err(format!("no task {task:?} in the run at record {seq}")))?;
        match &check.tasks[i].state {
            TaskState::Completed { .. } => {
                return Err(edit_err(format!(
                    "the task had completed by record {seq}, so it never runs again with a new payload; fork at an earlier record"
                )))
            }
            TaskState::Validating { .. } => {
                return Err(edit_err(format!(
                    "a gate was checking the task's result at record {seq}; fork before its attempt started"
                )))
            }
            _ => {}
        }
        let spec = &check.workflow.tasks[i].payload;
        let current = check.tasks[i].payload().unwrap_or(spec).value();
        if &current == payload {
            continue;
        }
        let event = Event::PayloadEdited { task: task.clone(), payload: payload.clone() };
        check.apply(&event, options.now_ms).map_err(|e| edit_err(e.to_string()))?;
        events.push(event);
        edited.push(task.clone());
    }
    Ok(Added { events, run_id, handed_back, edited })
}

/// Writes the fork's log and outputs into `to` (made empty by the caller).
fn write_fork(
    dir: &Path,
    seq: u64,
    to: &Path,
    state: &RunState,
    added: Added,
    now_ms: u64,
) -> Result<Forked, ForkError> {
    let log = to.join(LOG_FILE);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ForkError::Write { path, source }
    };
    let mut out = private_file().write(true).create_new(true).open(&log).map_err(io(&log))?;
    copy_prefix(dir, seq, &mut out, &log)?;
    out.sync_data().map_err(io(&log))?;
    drop(out);
    // The copy is checked as the journal checks any log it opens: seqs 1..=seq, each
    // record sealed by its checksum, nothing after. A roll of a live original between
    // the fold and the copy cannot change records already written, but this is the
    // proof that the bytes are the ones folded.
    let scan = journal::scan(&log, |_, _| Ok(())).map_err(ForkError::Log)?;
    if scan.records != seq || scan.torn.is_some() {
        return Err(ForkError::Write {
            path: log,
            source: std::io::Error::other(format!(
                "the copied log holds {} whole record(s), not {seq}: the original changed while it was read",
                scan.records
            )),
        });
    }
    let mut journal = Journal::open(to, &scan).map_err(ForkError::Log)?;
    journal.append(now_ms, &added.events).map_err(ForkError::Log)?;
    drop(journal);
    let outputs = copy_outputs(dir, to, state)?;
    if let Ok(d) = File::open(to) {
        let _ = d.sync_all();
    }
    let Added { run_id, handed_back, edited, .. } = added;
    Ok(Forked { dir: to.to_path_buf(), run_id, from_run: state.run_id.clone(), handed_back, edited, outputs })
}

/// Copies the original's record lines 1..=`seq` into `out` as they are: whole files
/// before the one that holds record `seq`, then that file's lines up to it.
fn copy_prefix(dir: &Path, seq: u64, out: &mut File, log: &Path) -> Result<(), ForkError> {
    let (holder, holder_id, first) = segments::holding(dir, seq)
        .map_err(ForkError::Log)?
        .ok_or_else(|| ForkError::Log(JournalError::Missing(dir.to_path_buf())))?;
    let live = segments::FileId::at(&dir.join(LOG_FILE)).ok();
    let mut files: Vec<PathBuf> = segments::archived(dir, live)
        .map_err(ForkError::Log)?
        .into_iter()
        .take_while(|a| a.id != holder_id)
        .map(|a| a.path)
        .collect();
    files.push(holder.clone());
    let write_err = |source| ForkError::Write { path: log.to_path_buf(), source };
    for path in files {
        let file = journal::open_read(&path).map_err(ForkError::Log)?;
        let read_err = |source| ForkError::Log(JournalError::Io { path: path.clone(), source });
        let mut reader = BufReader::with_capacity(1 << 20, file);
        if path != holder {
            std::io::copy(&mut reader, out).map_err(write_err)?;
            continue;
        }
        let mut line = Vec::with_capacity(4096);
        for _ in first..=seq {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(read_err)? == 0 {
                break;
            }
            out.write_all(&line).map_err(write_err)?;
        }
        // The original's last copied line may lack its newline (a live log cut short):
        // the fork's next record starts on a line of its own.
        if line.last() != Some(&b'\n') && !line.is_empty() {
            out.write_all(b"\n").map_err(write_err)?;
        }
    }
    Ok(())
}

/// Copies the output files of every attempt that had ended by the fork's record into
/// the fork's `output/` (and `output/gates/`): files named `STEM.ATTEMPT.…`.
fn copy_outputs(dir: &Path, to: &Path, state: &RunState) -> Result<usize, ForkError> {
    let mut ended: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (i, task) in state.tasks.iter().enumerate() {
        // The attempt in flight, if any, is not ended; `attempts` counts the spent ones
        // (a handed-back attempt is not counted, and its number is used again).
        let last = match task.state {
            TaskState::Running { attempt, .. } | TaskState::Validating { attempt, .. } => attempt.saturating_sub(1),
            _ => task.attempts,
        };
        let stem = crate::core::spawn::file_stem(state.task_id(i));
        for attempt in 1..=last {
            ended.insert(format!("{stem}.{attempt}."));
        }
    }
    let mut copied = 0;
    for sub in [PathBuf::from(OUTPUT_DIR), Path::new(OUTPUT_DIR).join("gates")] {
        let from = dir.join(&sub);
        let Ok(entries) = std::fs::read_dir(&from) else { continue };
        let into = to.join(&sub);
        create_private_dir(&into).map_err(|source| ForkError::Write { path: into.clone(), source })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().is_ok_and(|t| t.is_file()) || !is_ended(&name, &ended) {
                continue;
            }
            let target = into.join(&name);
            copy_private(&entry.path(), &target)?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// True when the output file `name` (`STEM.ATTEMPT.stream`, `STEM.ATTEMPT.rN.stream`…)
/// belongs to an ended attempt.
fn is_ended(name: &str, ended: &std::collections::HashSet<String>) -> bool {
    // The stem may hold dots: try every `STEM.ATTEMPT.` prefix the name has.
    name.match_indices('.').any(|(i, _)| {
        let rest = &name[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest.as_bytes().get(digits) == Some(&b'.') && ended.contains(&name[..i + 1 + digits + 1])
    })
}

/// Copies `from` to a new private file `to` (never through a link).
fn copy_private(from: &Path, to: &Path) -> Result<(), ForkError> {
    let mut source = File::open(from).map_err(|source| ForkError::Write { path: from.to_path_buf(), source })?;
    let mut target = private_file()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|source| ForkError::Write { path: to.to_path_buf(), source })?;
    std::io::copy(&mut source, &mut target).map_err(|source| ForkError::Write { path: to.to_path_buf(), source })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_match_their_attempt_only() {
        let ended: std::collections::HashSet<String> = ["a.1.".to_string(), "x.y.2.".to_string()].into();
        assert!(is_ended("a.1.stdout", &ended));
        assert!(is_ended("a.1.r2.stderr", &ended));
        assert!(is_ended("x.y.2.stdout", &ended));
        assert!(!is_ended("a.2.stdout", &ended));
        assert!(!is_ended("a.11.stdout", &ended));
        assert!(!is_ended("b.1.stdout", &ended));
    }

    #[test]
    fn the_default_folder_never_names_an_existing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        assert_eq!(default_dir(&run, 7), tmp.path().join("run-fork-7"));
        std::fs::create_dir(tmp.path().join("run-fork-7")).unwrap();
        assert_eq!(default_dir(&run, 7), tmp.path().join("run-fork-7-2"));
    }
}
