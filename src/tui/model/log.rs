//! Where the read model's records come from. A model folded from records handed to
//! it ([`Fleet::from_records`](super::Fleet::from_records): `attach`, tests) holds
//! them; a model opened on a run folder ([`Fleet::open`](super::Fleet::open)) holds
//! none: the log on disk is the source of truth, and history and time travel read
//! the records they need from it, through the one segment-aware reader
//! ([`segments::read_lines`]), when they need them.
//!
//! Reading record N of a log on disk starts at the nearest known place at or before
//! it: every pass over the log leaves a mark every [`MARK_EVERY`] records, so a read
//! skips at most that many lines (by their newlines, not decoding them) before the
//! first record it folds.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::FoldError;
use crate::io::journal::{self, Record};
use crate::io::segments::{self, Cursor};

/// Records between two marks of where a line starts in the log on disk.
pub const MARK_EVERY: usize = 4096;

/// The run's records: how many the model has folded, and where to read them.
#[derive(Debug)]
pub struct Log {
    len: usize,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// Every record, in order.
    Memory(Vec<Record>),
    /// The run folder: its log holds every record the model folded.
    Disk(Disk),
}

#[derive(Debug)]
struct Disk {
    dir: PathBuf,
    /// Records before a place → that place (where the next record's line starts).
    /// Behind a lock: reads through a shared model (a screen opening a history)
    /// leave marks too.
    marks: Mutex<BTreeMap<usize, Cursor>>,
}

impl Clone for Log {
    fn clone(&self) -> Log {
        let source = match &self.source {
            Source::Memory(records) => Source::Memory(records.clone()),
            Source::Disk(disk) => Source::Disk(Disk { dir: disk.dir.clone(), marks: Mutex::new(disk.marks()) }),
        };
        Log { len: self.len, source }
    }
}

impl Disk {
    fn marks(&self) -> BTreeMap<usize, Cursor> {
        self.marks.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn mark(&self, before: usize, at: Cursor) {
        if let Ok(mut marks) = self.marks.lock() {
            marks.insert(before, at);
        }
    }

    /// The nearest known place at or before record index `from`: (records before it,
    /// where it is; `None` = the log's start).
    fn nearest(&self, from: usize) -> (usize, Option<Cursor>) {
        let marks = self.marks.lock();
        marks.ok().and_then(|m| m.range(..=from).next_back().map(|(n, c)| (*n, Some(*c)))).unwrap_or((0, None))
    }
}

impl Log {
    /// Records held in memory (the first is `run_started`).
    pub(super) fn memory(first: &Record) -> Log {
        Log { len: 1, source: Source::Memory(vec![first.clone()]) }
    }

    /// The `len` records of the log in run folder `dir`, read from disk when wanted.
    pub(super) fn disk(dir: &Path, len: usize) -> Log {
        Log { len, source: Source::Disk(Disk { dir: dir.to_path_buf(), marks: Mutex::new(BTreeMap::new()) }) }
    }

    /// Records the model has folded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first record (never, once a model exists).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the records are read from the run folder, not held.
    pub fn on_disk(&self) -> bool {
        matches!(self.source, Source::Disk(_))
    }

    /// The run folder the records are read from (`None` when they are held: `attach`).
    pub fn dir(&self) -> Option<&Path> {
        match &self.source {
            Source::Disk(disk) => Some(&disk.dir),
            Source::Memory(_) => None,
        }
    }

    /// The record with index `index` (seq `index + 1`), read from disk if need be
    /// (from the nearest mark: at most [`MARK_EVERY`] lines skipped). `None` past the
    /// end or when it cannot be read (time travel's caption then says so).
    pub fn record(&self, index: usize) -> Option<Record> {
        let mut found = None;
        self.for_each(index, index + 1, |r| {
            found = Some(r.clone());
            Ok(())
        })
        .ok()?;
        found
    }

    /// The model folded one more record (held only when the records are in memory).
    pub(super) fn push(&mut self, record: &Record) {
        if let Source::Memory(records) = &mut self.source {
            records.push(record.clone());
        }
        self.len += 1;
    }

    /// The first record (`run_started`).
    pub(super) fn first(&self) -> Result<Record, FoldError> {
        let mut first = None;
        self.for_each(0, 1, |r| {
            first = Some(r.clone());
            Ok(())
        })?;
        first.ok_or(FoldError { seq: 1, message: "the log holds no record".into() })
    }

    /// Gives the records with indexes `from..to` (seqs `from + 1 ..= to`), in order.
    pub(super) fn for_each(
        &self,
        from: usize,
        to: usize,
        mut f: impl FnMut(&Record) -> Result<(), FoldError>,
    ) -> Result<(), FoldError> {
        let to = to.min(self.len);
        if from >= to {
            return Ok(());
        }
        let disk = match &self.source {
            Source::Memory(records) => return records[from..to].iter().try_for_each(f),
            Source::Disk(disk) => disk,
        };
        let (mut index, start) = disk.nearest(from);
        let mut failed = None;
        let read = segments::read_lines(&disk.dir, start, |line, after| {
            index += 1;
            if index.is_multiple_of(MARK_EVERY) {
                disk.mark(index, after);
            }
            if index <= from {
                return ControlFlow::Continue(());
            }
            let step = decode_at(line, index).and_then(|record| f(&record));
            if let Err(e) = step {
                failed = Some(e);
                return ControlFlow::Break(());
            }
            if index >= to {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        read.map_err(|e| FoldError { seq: index as u64 + 1, message: e.to_string() })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if index < to {
            return Err(FoldError {
                seq: index as u64 + 1,
                message: format!("the log on disk ends after record {index}, before record {to}"),
            });
        }
        Ok(())
    }

    /// Records that record index `before` (seq `before + 1`) starts at `at` in the log
    /// on disk, found by another reader (the run's task index): later reads from there
    /// on start at it. Nothing for a log in memory.
    pub(super) fn mark(&self, before: usize, at: Cursor) {
        if let Source::Disk(disk) = &self.source {
            disk.mark(before, at);
        }
    }

    /// Gives every record with an index in `from..to` whose line holds `needle`
    /// (bytes, before decoding): the others are skipped undecoded. Starts at the
    /// nearest mark at or before `from`. Only for a log on disk; a log in memory gives
    /// nothing (its model keeps what it needs as it folds).
    pub(super) fn matching(
        &self,
        needle: &[u8],
        from: usize,
        to: usize,
        mut f: impl FnMut(usize, Record),
    ) -> Result<(), FoldError> {
        let Source::Disk(disk) = &self.source else { return Ok(()) };
        let to = to.min(self.len);
        if from >= to {
            return Ok(());
        }
        let finder = memchr::memmem::Finder::new(needle);
        let (mut index, start) = disk.nearest(from);
        let mut failed = None;
        let read = segments::read_lines(&disk.dir, start, |line, after| {
            index += 1;
            if index.is_multiple_of(MARK_EVERY) {
                disk.mark(index, after);
            }
            if index > to {
                index -= 1;
                return ControlFlow::Break(());
            }
            if index > from && finder.find(line).is_some() {
                match decode_at(line, index) {
                    Ok(record) => f(index - 1, record),
                    Err(e) => {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            if index == to {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        read.map_err(|e| FoldError { seq: index as u64 + 1, message: e.to_string() })?;
        failed.map_or(Ok(()), Err)
    }
}

/// Decodes the line of the record with seq `seq` (its checksum and seq checked).
fn decode_at(line: &[u8], seq: usize) -> Result<Record, FoldError> {
    let seq = seq as u64;
    let record = journal::decode(line).map_err(|e| FoldError { seq, message: format!("unreadable: {e}") })?;
    if record.seq != seq {
        return Err(FoldError { seq, message: format!("the log on disk has record {} here", record.seq) });
    }
    Ok(record)
}
