//! Writing the index: the old one (when it is still good) plus the records after it,
//! read by their first bytes as `inspect TASK`'s prefilter reads them (a line whose
//! head does not name its task plainly is decoded). Only the new records' entries are
//! held in memory; the old ones are copied from the old file slot by slot, so a
//! snapshot of a long run adds a few MB at most, and a `resume` of a finished run
//! (a few records) almost nothing.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::ops::ControlFlow;
use std::path::Path;

use super::{slots_bytes, Head, Shape, TaskIndex, ENTRY, INDEX_FILE};
use crate::core::{Event, RunState};
use crate::io::fsutil::private_file;
use crate::io::journal::{self, LogPosition};
use crate::io::log_lines::{self, HeadSays, Sift};

/// The temp file a new index is written to before it is renamed over the old one.
const TEMP_FILE: &str = ".tasks.idx.tmp";

/// Brings the index of the run in `dir` up to record `at` (the snapshot of `state`
/// just written there): the old index's entries and those of the records after it.
/// Nothing is written when the log does not read as expected up to `at` (a reader
/// then sifts it); an error is only the file system's.
pub fn extend(dir: &Path, state: &RunState, at: LogPosition) -> std::io::Result<()> {
    let path = dir.join(INDEX_FILE);
    let tasks = state.tasks.len();
    let old = match TaskIndex::open(dir, &state.run_id, tasks) {
        Ok((old, _)) if old.head.at.seq == at.seq => return Ok(()),
        Ok((old, cursor)) if old.head.at.seq < at.seq => Some((old, cursor)),
        // A reshaped run stays so: its log is not sifted again at every snapshot.
        Err(_) if reshaped(&path, &state.run_id) => return Ok(()),
        _ => None,
    };
    let from = old.as_ref().map_or(1, |(old, _)| old.head.at.seq + 1);
    let Some(new) = read_new(dir, state, old.as_ref().map(|(_, c)| *c), from, at.seq) else {
        return Ok(());
    };
    let run_slot = tasks;
    let head = |shape, entries, slots_crc| Head { run_id: state.run_id.clone(), at, shape, entries, slots_crc };
    let New::Entries(new) = new else {
        return write_atomically(dir, &path, |out| out.write_all(&head(Shape::Reshaped, 0, 0).encode()));
    };
    // Slot starts: each slot's old entries, then its new ones.
    let mut counts = vec![0u64; tasks + 1];
    if let Some((old, _)) = &old {
        for (slot, count) in counts.iter_mut().enumerate() {
            *count = old.starts[slot + 1] - old.starts[slot];
        }
    }
    for &(slot, _, _) in &new {
        counts[slot as usize] += 1;
    }
    let mut starts = Vec::with_capacity(tasks + 2);
    let mut total = 0u64;
    starts.push(0);
    for count in &counts {
        total += count;
        starts.push(total);
    }
    let slots = slots_bytes(&starts);
    let head = head(Shape::Tasks(tasks as u32), total, crc32fast::hash(&slots));
    // The new entries by slot, keeping log order within each (a stable sort).
    let mut new = new;
    new.sort_by_key(|&(slot, _, _)| slot);
    debug_assert_eq!(run_slot + 2, starts.len());
    write_atomically(dir, &path, |out| {
        out.write_all(&head.encode())?;
        out.write_all(&slots)?;
        let mut old = old.map(|(old, _)| old);
        if let Some(old) = &mut old {
            let base = old.head.len() + old.starts.len() as u64 * 8;
            std::io::Seek::seek(&mut old.file, std::io::SeekFrom::Start(base))?;
        }
        // The old entries are copied in runs up to each slot that gains entries (a
        // copy per slot was 250,000 small copies, 13 % of a `resume`, issue 14).
        let (mut copied, mut buf) = (0u64, vec![0u8; 1 << 16]);
        let mut copy_to = |old: &mut Option<TaskIndex>, upto: u64, out: &mut BufWriter<File>| {
            let Some(old) = old else { return Ok(()) };
            let mut left = (upto - copied) * ENTRY;
            copied = upto;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                old.file.read_exact(&mut buf[..n])?;
                out.write_all(&buf[..n])?;
                left -= n as u64;
            }
            Ok::<(), std::io::Error>(())
        };
        for (k, &(slot, seq, offset)) in new.iter().enumerate() {
            if k == 0 || new[k - 1].0 != slot {
                let upto = old.as_ref().map_or(0, |o| o.starts[slot as usize + 1]);
                copy_to(&mut old, upto, out)?;
            }
            out.write_all(&seq.to_le_bytes())?;
            out.write_all(&offset.to_le_bytes())?;
        }
        let upto = old.as_ref().map_or(0, |o| o.head.entries);
        copy_to(&mut old, upto, out)?;
        Ok(())
    })
}

/// True when the file at `path` is a whole index of run `run_id` saying it was reshaped.
fn reshaped(path: &Path, run_id: &str) -> bool {
    TaskIndex::read(path).is_ok_and(|(index, _)| index.head.shape == Shape::Reshaped && index.head.run_id == run_id)
}

/// What the records after the old index hold.
enum New {
    /// Their entries: (slot, seq, offset), in log order.
    Entries(Vec<(u32, u64, u64)>),
    /// One of them reshapes the run.
    Reshaped,
}

/// The entries of records `from..=to`, read from `cursor` (the line after record
/// `from - 1`; the log's first line when `None`); `None` when the lines are not those
/// records in order (a cut or damaged log, a torn line: no index is written).
fn read_new(
    dir: &Path,
    state: &RunState,
    cursor: Option<crate::io::segments::Cursor>,
    from: u64,
    to: u64,
) -> Option<New> {
    let run_slot = state.tasks.len() as u32;
    // Both the sifter and the visitor add entries, may find the log broken or
    // reshaped, and count the lines (the seq the next line must have).
    let entries = RefCell::new(Vec::new());
    let (broken, reshaping, next) = (Cell::new(false), Cell::new(false), Cell::new(from));
    let slot_of = |task: Option<&str>| match task {
        None => Some(run_slot),
        // A task the state does not have matters to no task's fold.
        Some(id) => state.task_index(id).map(|i| i as u32),
    };
    let ended = log_lines::sift_from(
        dir,
        cursor,
        |head, offset| {
            let seq = next.get();
            if seq > to {
                return Sift::Stop;
            }
            next.set(seq + 1);
            // A head cut short by the read buffer's end may not show its seq: the
            // line is read whole then, and checked decoded.
            match seq_of(head) {
                Some(s) if s != seq => {
                    broken.set(true);
                    return Sift::Stop;
                }
                Some(_) => {}
                None => return Sift::Read,
            }
            // A run with a reshaping record is not indexed.
            match log_lines::head_says(head) {
                HeadSays::RunStarted => Sift::Skip,
                HeadSays::Reshaping => {
                    reshaping.set(true);
                    Sift::Stop
                }
                HeadSays::Task(id) => match std::str::from_utf8(id).ok().and_then(|id| state.task_index(id)) {
                    Some(i) => {
                        entries.borrow_mut().push((i as u32, seq, offset));
                        Sift::Skip
                    }
                    None => Sift::Read,
                },
                HeadSays::Other => Sift::Read,
            }
        },
        |line, offset| {
            let Ok(rec) = journal::decode(line) else {
                broken.set(true);
                return ControlFlow::Break(());
            };
            if rec.seq + 1 != next.get() {
                broken.set(true);
                return ControlFlow::Break(());
            }
            match &rec.event {
                Event::RunStarted { .. } => {}
                Event::TasksSpawned { .. } | Event::TasksSubmitted { .. } | Event::PayloadEdited { .. } => {
                    reshaping.set(true);
                    return ControlFlow::Break(());
                }
                event => {
                    if let Some(slot) = slot_of(event.task()) {
                        entries.borrow_mut().push((slot, rec.seq, offset));
                    }
                }
            }
            ControlFlow::Continue(())
        },
    );
    if reshaping.get() {
        return Some(New::Reshaped);
    }
    (ended.is_ok() && !broken.get() && next.get() == to + 1).then(|| New::Entries(entries.into_inner()))
}

/// The seq a record line starts with (`{"seq":N,`).
fn seq_of(head: &[u8]) -> Option<u64> {
    let rest = head.strip_prefix(b"{\"seq\":".as_slice())?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if rest.get(digits) != Some(&b',') || digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Writes the index through `fill` into a temp file, syncs it, renames it over
/// `path`: a reader sees the old index or the new one, whole.
fn write_atomically(
    dir: &Path,
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let temp = dir.join(TEMP_FILE);
    let done = (|| {
        let file = private_file().write(true).create(true).truncate(true).open(&temp)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    done
}
