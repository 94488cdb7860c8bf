//! The log's lines as bytes, over its archived segments and then the live log (the
//! order of [`super::segments`]), for readers that want a few records of a big log and
//! must not decode every one (`inspect TASK`, issue 14): each line's first bytes are
//! shown to a sifter, which says whether to read the whole line, skip it (without
//! holding it: a run's first record is its whole workflow, tens of MB), or stop.
//!
//! Nothing here is checked or decoded: the caller decodes the lines it reads (a damaged
//! one fails there). A line skipped is never looked at beyond its head, so a reader
//! that needs every record checked folds the log instead ([`super::segments::scan`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::journal::{self, JournalError, LOG_FILE};
use super::segments::{self, Cursor, FileId};

/// How many of a line's first bytes the sifter sees at most (fewer when the line is
/// shorter, or when it crosses the end of the read buffer: a sifter that cannot decide
/// from a short head reads the line).
pub const HEAD: usize = 256;

/// What to do with a line, told from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sift {
    /// Not wanted: passed over.
    Skip,
    /// Read whole and handed to the visitor.
    Read,
    /// Stop reading (the caller does it another way).
    Stop,
}

/// How a read of the lines ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every line was sifted.
    Done,
    /// The sifter or the visitor stopped it.
    Stopped,
    /// The log rolled while it was read (the live log's path names another file now):
    /// the lines seen may miss some; read again, or fold.
    Rolled,
}

/// Sifts every line of the log in `dir` by its head and hands the lines read (without
/// their newline; a torn last line as it is) to `visit`.
pub fn sift(
    dir: &Path,
    mut sifter: impl FnMut(&[u8]) -> Sift,
    mut visit: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<Ended, JournalError> {
    sift_from(dir, None, |head, _| sifter(head), |line, _| visit(line))
}

/// [`sift`] from `from` on (the line after a record found by [`segments::find`]; the
/// first line of the log when `None`), each head and line shown with the byte offset
/// where its line starts in its file. A file `from` names that is no longer among the
/// log's files (a fork, a cut) ends it as [`Ended::Rolled`]: the caller reads another way.
pub fn sift_from(
    dir: &Path,
    from: Option<Cursor>,
    mut sifter: impl FnMut(&[u8], u64) -> Sift,
    mut visit: impl FnMut(&[u8], u64) -> ControlFlow<()>,
) -> Result<Ended, JournalError> {
    let live_path = dir.join(LOG_FILE);
    let live = journal::open_read(&live_path)?;
    let live_id = FileId::of(&live).map_err(|source| JournalError::Io { path: live_path.clone(), source })?;
    let mut files: Vec<(PathBuf, Option<File>, FileId)> =
        segments::archived(dir, Some(live_id))?.into_iter().map(|a| (a.path, None, a.id)).collect();
    files.push((live_path.clone(), Some(live), live_id));
    let mut start = 0;
    if let Some(from) = from {
        let Some(k) = files.iter().position(|(_, _, id)| *id == from.id) else { return Ok(Ended::Rolled) };
        files.drain(..k);
        start = from.offset;
    }
    for (path, file, _) in files {
        let mut file = match file {
            Some(file) => file,
            None => journal::open_read(&path)?,
        };
        if start > 0 {
            file.seek(SeekFrom::Start(start)).map_err(|source| JournalError::Io { path: path.clone(), source })?;
        }
        if sift_file(&path, file, start, &mut sifter, &mut visit)? == Ended::Stopped {
            return Ok(Ended::Stopped);
        }
        start = 0;
    }
    Ok(if FileId::at(&live_path).ok() == Some(live_id) { Ended::Done } else { Ended::Rolled })
}

fn sift_file(
    path: &Path,
    file: File,
    mut at: u64,
    sifter: &mut impl FnMut(&[u8], u64) -> Sift,
    visit: &mut impl FnMut(&[u8], u64) -> ControlFlow<()>,
) -> Result<Ended, JournalError> {
    let io = |source| JournalError::Io { path: path.to_path_buf(), source };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().map_err(io)?;
        if buf.is_empty() {
            return Ok(Ended::Done);
        }
        let head = &buf[..buf.len().min(HEAD)];
        let head = memchr::memchr(b'\n', head).map_or(head, |end| &head[..end]);
        match sifter(head, at) {
            Sift::Skip => {
                at += reader.skip_until(b'\n').map_err(io)? as u64;
            }
            Sift::Stop => return Ok(Ended::Stopped),
            Sift::Read => {
                line.clear();
                let read = reader.read_until(b'\n', &mut line).map_err(io)? as u64;
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if visit(&line, at).is_break() {
                    return Ok(Ended::Stopped);
                }
                at += read;
            }
        }
    }
}

/// Records that change the workflow or the graph: readers that start from a
/// snapshot's workflow (the small fold of `inspect TASK`, the task index) stop at them.
const RESHAPING: [&[u8]; 3] = [b"tasks_spawned", b"tasks_submitted", b"payload_edited"];

/// `"event":{"type":"` as every record writes it, after its seq, time and version
/// (numbers only: its first occurrence is the event's own).
const EVENT: &[u8] = b"\"event\":{\"type\":\"";

/// [`EVENT`]'s searcher, built once: not `windows().position()` (a compare at every
/// byte of a million heads was 10 % of `inspect TASK`, issue 14), nor `memmem::find`,
/// which builds its searcher at each call (14 % then).
static EVENT_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(EVENT));

/// What a record line's head says of its record, without decoding it.
pub enum HeadSays<'a> {
    /// The run's first record.
    RunStarted,
    /// A record that reshapes the run ([`RESHAPING`]).
    Reshaping,
    /// Its event names this task first, plainly (no escape in the id): the id's bytes.
    Task(&'a [u8]),
    /// Anything else (no task, an escaped id, a head cut short): decode to be sure.
    Other,
}

/// Reads a record line's head (see [`HeadSays`]).
pub fn head_says(head: &[u8]) -> HeadSays<'_> {
    let Some(at) = EVENT_FINDER.find(head) else { return HeadSays::Other };
    let rest = &head[at + EVENT.len()..];
    let Some(end) = memchr::memchr(b'"', rest) else { return HeadSays::Other };
    let kind = &rest[..end];
    if kind == b"run_started" {
        return HeadSays::RunStarted;
    }
    if RESHAPING.contains(&kind) {
        return HeadSays::Reshaping;
    }
    let Some(task) = rest[end + 1..].strip_prefix(b",\"task\":\"".as_slice()) else { return HeadSays::Other };
    match memchr::memchr2(b'"', b'\\', task) {
        Some(close) if task[close] == b'"' => HeadSays::Task(&task[..close]),
        _ => HeadSays::Other,
    }
}
