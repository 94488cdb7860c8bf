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
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::Path;

use super::journal::{self, JournalError, LOG_FILE};
use super::segments::{self, FileId};

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
    let live_path = dir.join(LOG_FILE);
    let live = journal::open_read(&live_path)?;
    let live_id = FileId::of(&live).map_err(|source| JournalError::Io { path: live_path.clone(), source })?;
    for segment in segments::archived(dir, Some(live_id))? {
        let file = journal::open_read(&segment.path)?;
        if sift_file(&segment.path, file, &mut sifter, &mut visit)? == Ended::Stopped {
            return Ok(Ended::Stopped);
        }
    }
    if sift_file(&live_path, live, &mut sifter, &mut visit)? == Ended::Stopped {
        return Ok(Ended::Stopped);
    }
    Ok(if FileId::at(&live_path).ok() == Some(live_id) { Ended::Done } else { Ended::Rolled })
}

fn sift_file(
    path: &Path,
    file: File,
    sifter: &mut impl FnMut(&[u8]) -> Sift,
    visit: &mut impl FnMut(&[u8]) -> ControlFlow<()>,
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
        match sifter(head) {
            Sift::Skip => {
                reader.skip_until(b'\n').map_err(io)?;
            }
            Sift::Stop => return Ok(Ended::Stopped),
            Sift::Read => {
                line.clear();
                reader.read_until(b'\n', &mut line).map_err(io)?;
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if visit(&line).is_break() {
                    return Ok(Ended::Stopped);
                }
            }
        }
    }
}
