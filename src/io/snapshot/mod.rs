//! Snapshots of the folded state (DESIGN §6): `snapshot-SEQ.json` holds the
//! [`RunState`] after record SEQ, so that opening a run folds only the records after
//! it instead of the whole history.
//!
//! A snapshot of formats 1 and 2 is one JSON document, `{"v":V,"run_id":…,"seq":SEQ,
//! "start":S,"end":E,"record_crc":R,"state":{…},"crc":C}`, sealed like a log record: C
//! is the CRC-32 of the document with its `,"crc":C` part removed. Format 3, which this
//! build writes, has the same fields on two lines under the same one seal (the head
//! and workflow, then the rest of the state: `parts`). S and E are the byte offsets of record
//! SEQ's line in the log and R its checksum: opening reads that one line and uses the
//! snapshot only when the log still holds that very record there (a log cut before SEQ,
//! or a snapshot of another run, is never used), then folds from E on. It is written to
//! a temporary file, fsynced, renamed and the folder fsynced, so a crash leaves either
//! the old set of snapshots or the new one, never half a file under the final name.
//!
//! The log stays the source of truth: a snapshot that is damaged, of another version,
//! or does not match the log is skipped for an older one, and at the last for the whole
//! log, with a note saying so ([`open_state`]). `pitboss verify` checks what opening
//! trusts: every record, and each snapshot against the fold of the log up to its SEQ.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod binary;
mod parts;

use super::fsutil::private_file;
use super::journal::{self, JournalError, LogPosition, Scan};
use super::segments;
use crate::core::RunState;

/// The snapshot format this build writes. Raise it when [`RunState`]'s serialized
/// form changes: snapshots a build cannot read are then skipped (the log is folded
/// instead), never misread. 2: a task's fields at their start value are left out
/// (so a build that reads only 1 skips these). 3: two parts on two lines, the
/// workflow's specs without their usual fields, no graph tables (see `parts`).
/// 4: a JSON head line, then the specs and tasks as binary rows (see `binary`).
pub const SNAPSHOT_VERSION: u32 = binary::FORMAT;

/// The formats this build reads: 1 had every field of a task written out, which
/// format 2 reads the same; both are one line, 3 is two, 4 a line and binary rows.
const READABLE: [u32; 4] = [1, 2, parts::FORMAT, SNAPSHOT_VERSION];

/// How many snapshots are kept: the newest, and older ones to fall back on.
pub const KEEP: usize = 3;

/// The environment variable that sets how many records apart snapshots are taken
/// (`0` turns periodic snapshots off; a clean stop still writes one).
pub const EVERY_ENV: &str = "PITBOSS_SNAPSHOT_EVERY";

/// Records between two snapshots unless [`EVERY_ENV`] says otherwise: at 50,000 a
/// snapshot of a 100k-task run costs well under 1% of its time (docs/BENCHMARKS.md).
pub const DEFAULT_EVERY: u64 = 50_000;

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".json";
const TEMP_SUFFIX: &str = ".json.tmp";

/// Records between snapshots: [`EVERY_ENV`] when it is a number, else [`DEFAULT_EVERY`].
pub fn every() -> u64 {
    std::env::var(EVERY_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_EVERY)
}

/// The file name of the snapshot after record `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq}{SUFFIX}")
}

#[derive(Serialize)]
struct SnapshotOut<'a> {
    v: u32,
    run_id: &'a str,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    state: &'a RunState,
}

#[derive(Deserialize)]
struct SnapshotIn {
    v: u32,
    run_id: String,
    seq: u64,
    start: u64,
    end: u64,
    record_crc: u32,
    state: RunState,
}

/// The seal's marker, as in the log.
const MARK: &[u8] = b",\"crc\":";

/// Encodes the sealed snapshot document of `state` after the record at `at`.
pub fn encode(state: &RunState, at: LogPosition) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 << 16);
    // Writing into a Vec cannot fail.
    let _ = encode_to(state, at, &mut buf);
    buf
}

/// [`encode`] written straight to `out` (issue 14, memory: the document of a big run
/// is tens of MB, and was held whole beside the state it was made of). The seal is
/// computed on the way.
pub fn encode_to(state: &RunState, at: LogPosition, out: impl Write) -> std::io::Result<()> {
    binary::encode_to(state, at, out)
}

/// The format-3 document (a JSON head line and a JSON body line), as builds before
/// format 4 wrote it: kept so that tests can make the snapshots an older build left.
pub fn encode_format3(state: &RunState, at: LogPosition) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 << 16);
    // Writing into a Vec cannot fail.
    let _ = parts::encode_to(state, at, &mut buf);
    buf
}

/// The format-2 document (one line, the state as its `Serialize` writes it, graph
/// tables included), as builds before format 3 wrote it: kept so that tests can make
/// the snapshots an older build left, and check that this one still opens them.
pub fn encode_format2(state: &RunState, at: LogPosition) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 << 16);
    // Writing into a Vec cannot fail.
    let _ = encode_format2_to(state, at, &mut buf);
    buf
}

fn encode_format2_to(state: &RunState, at: LogPosition, out: impl Write) -> std::io::Result<()> {
    let doc = SnapshotOut {
        v: 2,
        run_id: &state.run_id,
        seq: at.seq,
        start: at.start,
        end: at.end,
        record_crc: at.crc,
        state,
    };
    let mut sealing = Sealing { out, hasher: crc32fast::Hasher::new(), held: None };
    // Our own types have no maps keyed by anything but strings and numbers: only
    // the writer can fail.
    serde_json::to_writer(&mut sealing, &doc).map_err(std::io::Error::other)?;
    sealing.seal()
}

/// Passes bytes on and into the checksum, always holding the last one back.
struct Sealing<W> {
    out: W,
    hasher: crc32fast::Hasher,
    held: Option<u8>,
}

impl<W: Write> Sealing<W> {
    /// Ends the document with its seal. The document's closing brace was held back:
    /// the seal goes before it, and the checksum covers the document as if it closed
    /// there.
    fn seal(self) -> std::io::Result<()> {
        let Sealing { mut out, mut hasher, held } = self;
        if held != Some(b'}') {
            return Err(std::io::Error::other("the snapshot document did not end with '}'"));
        }
        hasher.update(b"}");
        write!(out, ",\"crc\":{}}}", hasher.finalize())?;
        out.flush()
    }
}

impl<W: Write> Write for Sealing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some((&last, rest)) = buf.split_last() else { return Ok(0) };
        if let Some(held) = self.held.take() {
            self.out.write_all(&[held])?;
            self.hasher.update(&[held]);
        }
        self.out.write_all(rest)?;
        self.hasher.update(rest);
        self.held = Some(last);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// What a snapshot file holds once its seal and version are checked.
#[derive(Debug)]
pub struct Snapshot {
    /// The run it belongs to.
    pub run_id: String,
    /// Where the record it follows sits in the log.
    pub at: LogPosition,
    /// The state after that record.
    pub state: RunState,
}

/// Why a snapshot was not used. Shown in notes and by `verify`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unusable {
    /// Reading the file failed.
    #[error("cannot read it ({0})")]
    Io(String),
    /// The checksum does not match: its bytes changed after it was written.
    #[error("checksum mismatch")]
    Checksum,
    /// Written in a format this build does not read.
    #[error("snapshot format {0}; this build reads {SNAPSHOT_VERSION}")]
    Version(u32),
    /// Sealed but not readable as a state.
    #[error("unreadable state ({0})")]
    Unreadable(String),
    /// The file name and the content disagree.
    #[error("its name says seq {named} but it holds seq {held}")]
    Misnamed {
        /// From the name.
        named: u64,
        /// From the content.
        held: u64,
    },
    /// The log does not hold, where the snapshot says, the record it follows.
    #[error("the log does not hold its record {seq} where it was (the log was cut or replaced)")]
    NotInLog {
        /// The record.
        seq: u64,
    },
    /// The log's records after it do not fold onto it.
    #[error("the log's records after it do not fold onto it ({0})")]
    DoesNotFold(String),
}

/// [`check_seal`] reading the file as a stream: the seal from its last bytes, the
/// checksum over the rest. `Err(None)` is a bad seal, `Err(Some(_))` an I/O error.
/// Gives where the first newline is, if there is one (a format-3 or 4 document), and
/// where the seal starts.
fn check_seal_stream(file: &mut File) -> Result<(Option<u64>, u64), Option<std::io::Error>> {
    let bad = || Err(None);
    let len = file.seek(SeekFrom::End(0)).map_err(Some)?;
    // `,"crc":` and at most 10 digits and `}`.
    let tail_len = len.min((MARK.len() + 11) as u64);
    file.seek(SeekFrom::Start(len - tail_len)).map_err(Some)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    Read::take(&*file, tail_len).read_to_end(&mut tail).map_err(Some)?;
    let Some(pos) = tail.windows(MARK.len()).rposition(|w| w == MARK) else { return bad() };
    if tail.last() != Some(&b'}') {
        return bad();
    }
    let Some(stored) =
        std::str::from_utf8(&tail[pos + MARK.len()..tail.len() - 1]).ok().and_then(|t| t.parse::<u32>().ok())
    else {
        return bad();
    };
    let body_len = len - tail_len + pos as u64;
    file.seek(SeekFrom::Start(0)).map_err(Some)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut body = BufReader::with_capacity(1 << 16, Read::take(&*file, body_len));
    let mut newline = None;
    let mut read = 0u64;
    loop {
        let chunk = body.fill_buf().map_err(Some)?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        if newline.is_none() {
            newline = memchr::memchr(b'\n', chunk).map(|i| read + i as u64);
        }
        let n = chunk.len();
        read += n as u64;
        body.consume(n);
    }
    hasher.update(b"}");
    if hasher.finalize() == stored {
        Ok((newline, body_len))
    } else {
        bad()
    }
}

/// Checks the seal of a snapshot document; gives where the seal starts.
fn check_seal(bytes: &[u8]) -> Result<usize, Unusable> {
    let pos = bytes.windows(MARK.len()).rposition(|w| w == MARK).ok_or(Unusable::Checksum)?;
    if bytes.last() != Some(&b'}') {
        return Err(Unusable::Checksum);
    }
    let stored: u32 = std::str::from_utf8(&bytes[pos + MARK.len()..bytes.len() - 1])
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Unusable::Checksum)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..pos]);
    hasher.update(b"}");
    if hasher.finalize() == stored {
        Ok(pos)
    } else {
        Err(Unusable::Checksum)
    }
}

/// Reads and checks the snapshot at `path` (seal, version, content), not yet against
/// the log.
///
/// The file is read twice as a stream (the seal, then the state) rather than held
/// whole: a big run's document is tens of MB, and was the largest single block at
/// the peak of `resume` and `inspect` (issue 14, memory).
pub fn read(path: &Path) -> Result<Snapshot, Unusable> {
    let io = |e: std::io::Error| Unusable::Io(e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let (newline, mark) = check_seal_stream(&mut file).map_err(|e| e.map_or(Unusable::Checksum, io))?;
    if let Some(newline) = newline {
        let mut start = [0; binary::HEAD_START.len()];
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        if file.read_exact(&mut start).is_ok() && start == binary::HEAD_START {
            return binary::read(path, newline, mark);
        }
        return parts::read(path, newline);
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let parsed = serde_json::from_reader(BufReader::with_capacity(1 << 16, &file));
    finish(parsed, || {
        file.seek(SeekFrom::Start(0)).ok()?;
        serde_json::from_reader(BufReader::new(&file)).ok()
    })
}

/// [`read`] on a document in memory.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, Unusable> {
    let mark = check_seal(bytes)?;
    if let Some(newline) = memchr::memchr(b'\n', bytes) {
        if bytes.starts_with(binary::HEAD_START) {
            return binary::decode(bytes, newline, mark);
        }
        return parts::decode(bytes, newline);
    }
    finish(serde_json::from_slice(bytes), || serde_json::from_slice(bytes).ok())
}

/// The version field alone, to tell a newer format from a damaged document.
#[derive(Deserialize)]
struct Version {
    v: u32,
}

/// A parsed document checked and turned into a snapshot; `version` re-reads the
/// document's version when it did not parse.
fn finish(
    parsed: Result<SnapshotIn, serde_json::Error>,
    version: impl FnOnce() -> Option<Version>,
) -> Result<Snapshot, Unusable> {
    let doc = match parsed {
        Ok(doc) if READABLE.contains(&doc.v) => doc,
        Ok(doc) => return Err(Unusable::Version(doc.v)),
        Err(e) => return Err(finish_version(e, version().map(|v| v.v))),
    };
    let state = doc.state.restored().map_err(Unusable::Unreadable)?;
    if state.run_id != doc.run_id {
        return Err(Unusable::Unreadable("its run id and its state's disagree".into()));
    }
    let at = LogPosition { seq: doc.seq, start: doc.start, end: doc.end, crc: doc.record_crc };
    Ok(Snapshot { run_id: doc.run_id, at, state })
}

/// Why a document did not parse: a format this build does not read when its version
/// (read again alone) says so, else unreadable.
fn finish_version(e: serde_json::Error, version: Option<u32>) -> Unusable {
    match version {
        Some(v) if !READABLE.contains(&v) => Unusable::Version(v),
        _ => Unusable::Unreadable(e.to_string()),
    }
}

/// The snapshots in `dir` by the seq their name gives, newest first.
pub fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let seq = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()?;
            Some((seq, e.path()))
        })
        .collect();
    found.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    found
}

/// True when the log at `log` holds, at `at.start..at.end`, the record `at` names.
pub fn in_log(log: &Path, at: &LogPosition) -> bool {
    let Ok(mut file) = private_file().read(true).open(log) else { return false };
    if file.seek(SeekFrom::Start(at.start)).is_err() {
        return false;
    }
    let Some(len) = at.end.checked_sub(at.start) else { return false };
    let mut line = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
    let mut reader = BufReader::new(file).take(len);
    if reader.read_until(b'\n', &mut line).is_err() || line.len() as u64 != len || line.last() != Some(&b'\n') {
        return false;
    }
    line.pop();
    let Ok(record) = journal::decode(&line) else { return false };
    // The checksum is that of the whole line, so it pins the record's every byte.
    record.seq == at.seq && line_crc(&line) == Some(at.crc)
}

/// The checksum a record line carries.
fn line_crc(line: &[u8]) -> Option<u32> {
    let pos = line.windows(MARK.len()).rposition(|w| w == MARK)?;
    std::str::from_utf8(line.get(pos + MARK.len()..line.len().checked_sub(1)?)?).ok()?.parse().ok()
}

/// Writes the snapshot of `state` after the record at `at` into `dir` durably (temp
/// file, fsync, rename, fsync of the folder), then removes all but the newest
/// [`KEEP`] snapshots and any temp file a crash left. Gives the snapshot's path.
pub fn write(dir: &Path, state: &RunState, at: LogPosition) -> std::io::Result<PathBuf> {
    let name = file_name(at.seq);
    let temp = dir.join(format!(".{PREFIX}{}{TEMP_SUFFIX}", at.seq));
    let done = (|| {
        let file = private_file().write(true).create(true).truncate(true).open(&temp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        encode_to(state, at, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(&name))?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = done {
        // A half-written temp file is nobody's: a full disk should not keep it.
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    prune(dir, KEEP);
    Ok(dir.join(name))
}

/// Removes all snapshots but the newest `keep`, and leftover temp files.
pub fn prune(dir: &Path, keep: usize) {
    for (_, path) in list(dir).into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(TEMP_SUFFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes the snapshots after record `records`: the log was cut before them (a torn
/// tail, `--truncate-at`), so they describe records that are gone. Left in place they
/// would be skipped at every open, and would pass for the newest when pruning.
pub fn discard_after(dir: &Path, records: u64) -> usize {
    let stale: Vec<PathBuf> = list(dir).into_iter().filter(|(seq, _)| *seq > records).map(|(_, p)| p).collect();
    stale.iter().filter(|p| std::fs::remove_file(p).is_ok()).count()
}

/// A run folder's state as opened.
#[derive(Debug)]
pub struct Opened {
    /// The folded state.
    pub state: RunState,
    /// The log as scanned (for the whole log, whatever part of it was read).
    pub scan: Scan,
    /// The seq of the snapshot used, if one was.
    pub snapshot: Option<u64>,
    /// Records folded after it (all of them without a snapshot).
    pub folded: u64,
    /// What the operator should know: snapshots skipped, and why.
    pub notes: Vec<String>,
}

/// Opens the run in `dir`: the newest usable snapshot and the records after it, else
/// the whole log. A snapshot is used only if its seal and version are good and the
/// log holds, where it says, the record it follows; each one skipped leaves a note.
/// Errors are the log's own (a snapshot's trouble never is one).
pub fn open_state(dir: &Path) -> Result<Opened, JournalError> {
    let mut notes = Vec::new();
    for (named, path) in list(dir) {
        match try_snapshot(dir, named, &path) {
            Ok(opened) => return Ok(Opened { notes, ..opened }),
            Err(Tried::Skip(why)) => notes.push(skip_note(&path, &why)),
            Err(Tried::Log(e)) => return Err(e),
        }
    }
    let (state, scan) = segments::fold_all(dir)?;
    Ok(Opened { folded: scan.records, state, scan, snapshot: None, notes })
}

fn skip_note(path: &Path, why: &Unusable) -> String {
    format!("{}: snapshot not used: {why}; using an older one or the whole log", path.display())
}

/// Why a snapshot gave no state: it is skipped, or the log itself is in trouble (which
/// the whole fold would meet too, so it is reported at once).
enum Tried {
    Skip(Unusable),
    Log(JournalError),
}

impl From<Unusable> for Tried {
    fn from(why: Unusable) -> Tried {
        Tried::Skip(why)
    }
}

/// The state from the snapshot at `path` and the log's records after it.
/// The log is read as one stream over its archived segments and the live log
/// ([`segments`]): the record a snapshot follows is found by its seq in the file that
/// holds it (a segment keeps the byte offsets it had as the live log).
fn try_snapshot(dir: &Path, named: u64, path: &Path) -> Result<Opened, Tried> {
    let snap = read(path)?;
    if snap.at.seq != named {
        return Err(Unusable::Misnamed { named, held: snap.at.seq }.into());
    }
    let Some(cursor) = segments::find(dir, &snap.at) else {
        return Err(Unusable::NotInLog { seq: snap.at.seq }.into());
    };
    let mut state = snap.state;
    let scanned = segments::read_from(dir, snap.at.seq, Some(cursor), |rec, _| state.apply(&rec.event, rec.ts))
        .map(|read| read.scan);
    match scanned {
        Ok(scan) => {
            let folded = scan.records - snap.at.seq;
            Ok(Opened { state, scan, snapshot: Some(snap.at.seq), folded, notes: Vec::new() })
        }
        // The records after it do not fit it: the snapshot is not this log's fold.
        Err(JournalError::Replay { line, reason, .. }) => {
            Err(Unusable::DoesNotFold(format!("record at line {line}: {reason}")).into())
        }
        Err(e) => Err(Tried::Log(e)),
    }
}
