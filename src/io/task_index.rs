//! A per-task index of the log (issue 14): for each task, where its records are
//! (seq and byte offset), and where the run's own records are (those naming no task),
//! so `inspect TASK` reads only the lines of the task and of what it depends on
//! instead of sifting every line of a million-record log.
//!
//! `tasks.idx` in the run folder, written by the engine with each snapshot (beside it,
//! on a thread of the snapshot's writer, [`extend`]) and covering the log up to that snapshot's
//! record. It is a cache, never part of the run's record: a reader trusts it only when
//! every check passes, and reads the log the plain way otherwise.
//! - **Damage**: the head and the table of slots carry CRC-32s; an entry is checked
//!   when it is read (the line at its offset must be a record of its seq naming its
//!   task), so a damaged entry is found then, never believed.
//! - **Staleness**: the index names the record it ends at (a [`LogPosition`], seq,
//!   offsets and checksum, as a snapshot does): a log cut or replaced under it no
//!   longer holds that record where it says, and the index is not used. The log only
//!   grows past it, and a roll keeps byte offsets, so what it covers does not move.
//! - **Crashes**: written whole to a temp file, synced, renamed over the old one: a
//!   crash leaves the old index or the new one, each valid for what it names.
//! - **Reshaping**: a record that changes the workflow (`tasks_spawned`,
//!   `tasks_submitted`, `payload_edited`) makes `inspect TASK` fold the whole log
//!   anyway, so such a run's index says only that ([`Shape::Reshaped`]), and no later
//!   snapshot sifts the log for it again.
//!
//! Layout (little-endian): the magic; the run id (length, bytes); the record it ends
//! at (seq, start, end, crc); the number of tasks N (`u32::MAX`: reshaped); the number
//! of entries; the CRC of the slots; the CRC of all the head before it. Then N + 2
//! slot starts (`u64`: slot `i < N` is task `i` of the state, slot N the run's own
//! records; the last is the number of entries), then the entries (seq, offset), each
//! slot's in log order.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::fsutil::private_file;
use super::journal::{self, LogPosition, Record, LOG_FILE};
use super::segments::{self, Cursor, FileId};
use crate::core::RunState;

mod build;

pub use build::extend;

/// The index's file name in a run folder.
pub const INDEX_FILE: &str = "tasks.idx";
const MAGIC: &[u8; 8] = b"PBTIDX1\n";
/// The task count that says the run was reshaped: no index.
const RESHAPED: u32 = u32::MAX;
/// Bytes of one entry (seq, offset).
const ENTRY: u64 = 16;

/// Where one record is: its seq, and the byte offset of its line in the file of the
/// log that holds that seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub offset: u64,
}

/// What an index says about the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// This many tasks, each with its slot.
    Tasks(u32),
    /// A record reshaped the run: nothing indexed.
    Reshaped,
}

/// The head of an index file.
#[derive(Debug, Clone)]
struct Head {
    run_id: String,
    at: LogPosition,
    shape: Shape,
    entries: u64,
    slots_crc: u32,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.run_id.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.run_id.len() as u32).to_le_bytes());
        out.extend_from_slice(self.run_id.as_bytes());
        for n in [self.at.seq, self.at.start, self.at.end] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.at.crc.to_le_bytes());
        let tasks = match self.shape {
            Shape::Tasks(n) => n,
            Shape::Reshaped => RESHAPED,
        };
        out.extend_from_slice(&tasks.to_le_bytes());
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&self.slots_crc.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The head at the start of `reader`, checked against its CRC.
    fn read(reader: &mut impl Read) -> Result<Head, String> {
        let mut fixed = [0u8; 12];
        reader.read_exact(&mut fixed).map_err(|e| format!("head: {e}"))?;
        if &fixed[..8] != MAGIC {
            return Err("not a task index".into());
        }
        let len = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes")) as usize;
        if len > 4096 {
            return Err("run id too long".into());
        }
        let mut rest = vec![0u8; len + 8 * 3 + 4 + 4 + 8 + 4 + 4];
        reader.read_exact(&mut rest).map_err(|e| format!("head: {e}"))?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&fixed);
        crc.update(&rest[..rest.len() - 4]);
        let mut take = Take(&rest);
        let run_id = String::from_utf8(take.bytes(len).to_vec()).map_err(|_| "run id not UTF-8".to_string())?;
        let at = LogPosition { seq: take.u64(), start: take.u64(), end: take.u64(), crc: take.u32() };
        let tasks = take.u32();
        let (entries, slots_crc, head_crc) = (take.u64(), take.u32(), take.u32());
        if crc.finalize() != head_crc {
            return Err("head checksum does not match".into());
        }
        let shape = if tasks == RESHAPED { Shape::Reshaped } else { Shape::Tasks(tasks) };
        Ok(Head { run_id, at, shape, entries, slots_crc })
    }

    fn len(&self) -> u64 {
        12 + self.run_id.len() as u64 + 8 * 3 + 4 + 4 + 8 + 4 + 4
    }
}

/// Little-endian numbers off a byte slice whose length was checked before.
struct Take<'a>(&'a [u8]);

impl<'a> Take<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (got, rest) = self.0.split_at(n);
        self.0 = rest;
        got
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes(8).try_into().expect("8 bytes"))
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes(4).try_into().expect("4 bytes"))
    }
}

fn slots_bytes(starts: &[u64]) -> Vec<u8> {
    starts.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// An index opened and checked, up to its entries (read per slot, on demand).
pub struct TaskIndex {
    file: BufReader<File>,
    head: Head,
    /// Slot `i`'s entries are `starts[i]..starts[i + 1]`.
    starts: Vec<u64>,
}

impl TaskIndex {
    /// The index of the run in `dir`, when its file is there, whole, of run `run_id`
    /// with `tasks` tasks, and the log still holds the record it ends at; with where
    /// the log's lines after that record start. Why not, otherwise.
    pub fn open(dir: &Path, run_id: &str, tasks: usize) -> Result<(TaskIndex, Cursor), String> {
        let (index, _) = TaskIndex::read(&dir.join(INDEX_FILE))?;
        if index.head.run_id != run_id {
            return Err(format!("of run {:?}, not {run_id:?}", index.head.run_id));
        }
        match index.head.shape {
            Shape::Reshaped => return Err("the run was reshaped (tasks spawned, submitted or edited)".into()),
            Shape::Tasks(n) if n as usize != tasks => return Err(format!("of {n} tasks, not {tasks}")),
            Shape::Tasks(_) => {}
        }
        let Some(cursor) = segments::find(dir, &index.head.at) else {
            return Err(format!("the log no longer holds record {} where the index ends", index.head.at.seq));
        };
        Ok((index, cursor))
    }

    /// The file at `path` read up to its entries and checked (head, slots, length);
    /// with its length.
    fn read(path: &Path) -> Result<(TaskIndex, u64), String> {
        let file = private_file().read(true).open(path).map_err(|e| e.to_string())?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut file = BufReader::with_capacity(1 << 16, file);
        let head = Head::read(&mut file)?;
        let slots = match head.shape {
            Shape::Tasks(n) => n as u64 + 2,
            Shape::Reshaped => 0,
        };
        let want = slots.checked_mul(8).and_then(|s| head.entries.checked_mul(ENTRY)?.checked_add(s));
        if want.and_then(|w| w.checked_add(head.len())) != Some(len) {
            return Err(format!("{len} bytes, not what its head says"));
        }
        let mut bytes = vec![0u8; (slots * 8) as usize];
        file.read_exact(&mut bytes).map_err(|e| format!("slots: {e}"))?;
        if crc32fast::hash(&bytes) != head.slots_crc {
            return Err("slots checksum does not match".into());
        }
        let starts: Vec<u64> = bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8"))).collect();
        let ordered = starts.windows(2).all(|w| w[0] <= w[1]);
        if slots > 0 && (starts[0] != 0 || starts.last() != Some(&head.entries) || !ordered) {
            return Err("slots out of order".into());
        }
        Ok((TaskIndex { file, head, starts }, len))
    }

    /// The record the index ends at.
    pub fn at(&self) -> LogPosition {
        self.head.at
    }

    /// The slot of the run's own records (those naming no task).
    pub fn run_slot(&self) -> usize {
        self.starts.len() - 2
    }

    /// The entries of slot `slot` (task `slot`, or [`TaskIndex::run_slot`]), in log order.
    pub fn entries(&mut self, slot: usize) -> Result<Vec<Entry>, String> {
        let (from, to) = (self.starts[slot], self.starts[slot + 1]);
        let base = self.head.len() + self.starts.len() as u64 * 8;
        self.file.seek(SeekFrom::Start(base + from * ENTRY)).map_err(|e| e.to_string())?;
        let mut bytes = vec![0u8; ((to - from) * ENTRY) as usize];
        self.file.read_exact(&mut bytes).map_err(|e| format!("entries: {e}"))?;
        Ok(bytes
            .chunks_exact(16)
            .map(|c| Entry {
                seq: u64::from_le_bytes(c[..8].try_into().expect("8")),
                offset: u64::from_le_bytes(c[8..].try_into().expect("8")),
            })
            .collect())
    }
}

impl TaskIndex {
    /// The records of the tasks `tasks` (slot and id) and the run's own, up to where the
    /// index ends, in log order: each read at its offset and checked, a record (its
    /// checksum) of the seq the index gives naming the task of its slot (no task for
    /// the run's), seqs rising. Why not, when one fails: the index is not to be used.
    pub fn records(&mut self, dir: &Path, tasks: &[(usize, &str)]) -> Result<Vec<Record>, String> {
        self.records_of(dir, tasks, true)
    }

    /// [`TaskIndex::records`], with the run's own records only when `run_own` (a
    /// task's history wants its own records alone).
    fn records_of(&mut self, dir: &Path, tasks: &[(usize, &str)], run_own: bool) -> Result<Vec<Record>, String> {
        let run_slot = self.run_slot();
        let run = run_own.then_some((run_slot, None));
        let mut found: Vec<(Entry, Option<&str>)> = Vec::new();
        for (slot, id) in tasks.iter().map(|&(slot, id)| (slot, Some(id))).chain(run) {
            if slot > run_slot || (slot == run_slot && id.is_some()) {
                return Err(format!("no task {slot} in the index"));
            }
            found.extend(self.entries(slot)?.into_iter().map(|e| (e, id)));
        }
        found.sort_unstable_by_key(|(e, _)| e.seq);
        let entries: Vec<Entry> = found.iter().map(|(e, _)| *e).collect();
        let lines = lines_at(dir, &entries)?;
        let (mut records, mut last) = (Vec::with_capacity(lines.len()), 0);
        for ((entry, id), line) in found.iter().zip(lines) {
            let rec = journal::decode(&line).map_err(|e| format!("record {}: {e}", entry.seq))?;
            if rec.seq != entry.seq || rec.event.task() != *id || entry.seq <= last || entry.seq > self.head.at.seq {
                return Err(format!("the line at byte {} is not record {} of {id:?}", entry.offset, entry.seq));
            }
            last = entry.seq;
            records.push(rec);
        }
        Ok(records)
    }
}

/// Records read through a run's index: those it covers, and where the rest start.
pub struct Indexed {
    /// The records asked for, up to where the index ends, in log order.
    pub records: Vec<Record>,
    /// The seq of the record the index ends at.
    pub through: u64,
    /// Where the log's lines after that record start.
    pub after: Cursor,
}

/// The records of the tasks `tasks` (indexes into `state`, the run's state, whose run
/// id and number of tasks the index must have), and the run's own (those naming no
/// task) when `run_own`, up to where the run's index in `dir` ends: each read at its
/// offset and checked (see [`TaskIndex::records`]). The one way `inspect TASK` and
/// the TUI's task history read the index. Why not, when there is no index or it is
/// stale, damaged, of another run or of another shape: the caller reads the log the
/// plain way.
pub fn read(dir: &Path, state: &RunState, tasks: &[usize], run_own: bool) -> Result<Indexed, String> {
    let (mut index, after) = TaskIndex::open(dir, &state.run_id, state.tasks.len())?;
    let named: Vec<(usize, &str)> = tasks.iter().map(|&j| (j, state.task_id(j))).collect();
    let records = index.records_of(dir, &named, run_own)?;
    Ok(Indexed { records, through: index.at().seq, after })
}

/// The lines of the log at `entries` (in log order), each without its newline. Each
/// is found in the file of the log whose first record is the greatest not after its
/// seq; nothing is checked here (the caller decodes each line and checks its seq).
pub fn lines_at(dir: &Path, entries: &[Entry]) -> Result<Vec<Vec<u8>>, String> {
    let live_path = dir.join(LOG_FILE);
    let live = journal::open_read(&live_path).map_err(|e| e.to_string())?;
    let live_id = FileId::of(&live).map_err(|e| e.to_string())?;
    let mut files: Vec<PathBuf> =
        segments::archived(dir, Some(live_id)).map_err(|e| e.to_string())?.into_iter().map(|a| a.path).collect();
    files.push(live_path);
    let mut firsts = Vec::with_capacity(files.len());
    for path in &files {
        firsts.push(segments::first_seq(path).map_err(|e| e.to_string())?.unwrap_or(u64::MAX));
    }
    let mut open: Option<(usize, BufReader<File>)> = None;
    let mut lines = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some(k) = firsts.iter().rposition(|&first| first <= entry.seq) else {
            return Err(format!("no file of the log holds record {}", entry.seq));
        };
        if open.as_ref().is_none_or(|(at, _)| *at != k) {
            let file = journal::open_read(&files[k]).map_err(|e| e.to_string())?;
            open = Some((k, BufReader::with_capacity(1 << 14, file)));
        }
        let (_, reader) = open.as_mut().expect("just opened");
        reader.seek(SeekFrom::Start(entry.offset)).map_err(|e| e.to_string())?;
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if line.pop() != Some(b'\n') {
            return Err(format!("record {} is not a whole line at byte {}", entry.seq, entry.offset));
        }
        lines.push(line);
    }
    Ok(lines)
}
