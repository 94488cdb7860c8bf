//! Opening the read model on a run folder: from the state `resume` opens (the newest
//! valid snapshot and the log after it, [`snapshot::open_state`]), without holding a
//! record. What a fold from the first record would also have gathered on the way and
//! a snapshot does not hold starts at the open: the queue-depth sparkline and the
//! completions of the last minute start empty, and a task held for approval counts
//! as held since the newest record.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::history::Histories;
use super::log::Log;
use super::travel::Travel;
use super::{AsOf, Fleet, FoldError, Live};
use crate::core::{RunState, TaskState};
use crate::io::journal::{self, LOG_FILE};
use crate::io::{segments, snapshot};

impl Fleet {
    /// Opens the run in `dir`: the newest valid snapshot and the log after it (a
    /// damaged or missing snapshot falls back to an older one or the whole log, with
    /// a note in [`Fleet::notes`]). Reads no more of the log than that.
    pub fn open(dir: &Path) -> Result<Fleet, FoldError> {
        let opened = snapshot::open_state(dir).map_err(|e| FoldError { seq: 0, message: e.to_string() })?;
        let len = usize::try_from(opened.scan.records).unwrap_or(usize::MAX);
        let mut fleet = Fleet::opened(dir, opened.state, len)?;
        fleet.notes = opened.notes;
        Ok(fleet)
    }

    /// The model of the run in `dir` whose log holds `len` records, `state` their
    /// fold (what the launcher opened for the engine).
    pub fn opened(dir: &Path, state: RunState, len: usize) -> Result<Fleet, FoldError> {
        let started_ms = first_ts(dir)?;
        let last_ts = last_ts(dir)?.unwrap_or(started_ms);
        Ok(Fleet {
            shown: AsOf::opened(state, last_ts),
            records: Log::disk(dir, len),
            started_ms,
            histories: Histories::read_when_asked(),
            travel: Travel::indexed_later(),
            notes: Vec::new(),
        })
    }
}

impl AsOf {
    /// The run as `state` holds it, its newest record at `last_ts`.
    fn opened(state: RunState, last_ts: u64) -> AsOf {
        let mut as_of = AsOf::with_state(state, last_ts);
        for i in 0..as_of.state.tasks.len() {
            as_of.track(i, last_ts);
            // Attempts in flight, as their `attempt_started` left them.
            if let TaskState::Running { attempt, started_ms, .. } = &as_of.state.tasks[i].state {
                let live =
                    Live { attempt: *attempt, last_output_ms: *started_ms, started_ms: *started_ms, ..Live::default() };
                let id = as_of.state.task_id(i).to_string();
                as_of.live.insert(id, live);
            }
        }
        as_of.timeline.seed_running(&as_of.state);
        as_of.sample_queue(last_ts);
        as_of
    }
}

/// The time of the log's first record, read from its line's first bytes
/// (`{"seq":1,"ts":T,`) in the oldest file: the workflow it holds is not read.
fn first_ts(dir: &Path) -> Result<u64, FoldError> {
    let err = |e: journal::JournalError| FoldError { seq: 1, message: e.to_string() };
    let oldest = segments::archived(dir, None).map_err(err)?.into_iter().next();
    let path = oldest.map_or_else(|| dir.join(LOG_FILE), |a| a.path);
    let mut head = Vec::with_capacity(64);
    journal::open_read(&path)
        .map_err(err)?
        .take(64)
        .read_to_end(&mut head)
        .map_err(|source| err(journal::JournalError::Io { path, source }))?;
    ts_of(&head).ok_or(FoldError { seq: 1, message: "the log's first record has no time".into() })
}

/// The time of the log's newest record: the last line of the live log, or of the
/// newest archived segment when the live log is empty (just rolled).
fn last_ts(dir: &Path) -> Result<Option<u64>, FoldError> {
    let err = |e: journal::JournalError| FoldError { seq: 0, message: e.to_string() };
    let mut files = vec![dir.join(LOG_FILE)];
    files.extend(segments::archived(dir, None).map_err(err)?.into_iter().rev().map(|a| a.path));
    for path in files {
        if let Some(line) = last_line(&path).map_err(|source| err(journal::JournalError::Io { path, source }))? {
            return Ok(ts_of(&line));
        }
    }
    Ok(None)
}

/// The last complete line of the file at `path`, read back from its end.
fn last_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let from = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        (&mut file).take(len - from).read_to_end(&mut buf)?;
        // A line still being written (no newline yet) is not the last record.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if from == 0 {
                return Ok(None);
            }
            chunk *= 4;
            continue;
        };
        match buf[..end].iter().rposition(|&b| b == b'\n') {
            Some(start) => return Ok(Some(buf[start + 1..end].to_vec())),
            None if from == 0 => return Ok(Some(buf[..end].to_vec())),
            None => chunk *= 4,
        }
    }
}

/// The time a record line carries, from its start (`{"seq":N,"ts":T,`).
fn ts_of(line: &[u8]) -> Option<u64> {
    const MARK: &[u8] = b",\"ts\":";
    let head = &line[..line.len().min(64)];
    let at = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = head[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&head[at..at + digits]).ok()?.parse().ok()
}
