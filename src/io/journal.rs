//! The event journal: `events.jsonl`, one record per line,
//! `{"seq":N,"ts":MS,"v":V,"event":{…},"crc":C}`, where V is the log format version
//! ([`FORMAT_VERSION`]; absent in logs written before it was recorded, which are
//! version 1) and C is the CRC-32 of the line with the `,"crc":C` part removed. Appends are group-committed: the engine hands over a
//! whole batch, which is written with one `write` and made durable with one
//! `fdatasync` before any of its effects happen.
//!
//! Opening verifies every record (checksum, and `seq` running 1, 2, 3… without gaps).
//! Damage at the *tail* (a torn last write, NUL bytes from a crash, bad records up to
//! the end) is what a crash leaves: it is cut off, saved to `events.jsonl.broken`, and
//! reported. Damage followed by valid records is not a crash: it is refused, naming the
//! line and seq, and never skipped silently. A record whose checksum is valid is never
//! damage, whatever it holds: one this build cannot read (a newer format version, an
//! event type it does not know) is refused as "written by a newer pitboss", and the log
//! is left as it is.
//!
//! While a run writes, every batch also checks that the path still names the file
//! being written ([`super::logfile`]): a log removed or replaced under a live run
//! stops it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fsutil::private_file;
use super::logfile::{LogGone, OpenLog, WriteError};
use crate::core::{ApplyError, Event, RunState};

/// File name of the log inside a run folder.
pub const LOG_FILE: &str = "events.jsonl";
/// Where a cut tail is saved.
pub const BROKEN_FILE: &str = "events.jsonl.broken";

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// 1-based sequence number.
    pub seq: u64,
    /// When it was recorded (ms since the epoch).
    pub ts: u64,
    /// What happened.
    pub event: Event,
}

#[derive(Deserialize)]
struct StoredRecord {
    seq: u64,
    ts: u64,
    #[serde(default = "first_format")]
    v: u32,
    event: Event,
    #[allow(dead_code)] // checked on the raw bytes before parsing
    crc: u32,
}

/// The log format this build writes, and the newest it reads. Raise it when a record
/// changes in a way an older build would misread, and add a golden log of the new
/// version to `tests/golden/`.
pub const FORMAT_VERSION: u32 = 1;

fn first_format() -> u32 {
    1
}

#[derive(Serialize)]
struct RecordOut<'a> {
    seq: u64,
    ts: u64,
    v: u32,
    event: &'a Event,
}

/// Journal failures.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record with a valid checksum that this build does not know (a newer format
    /// version, or an event type added since): the log is not damaged, this build is
    /// too old for it.
    #[error("{path}:{line}: written by a newer pitboss ({reason}); upgrade pitboss to open this run")]
    Newer {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// [`DecodeError::Newer`] or [`DecodeError::UnknownType`].
        reason: DecodeError,
    },
    /// A record with a valid checksum that this build cannot read although it knows
    /// its version and type: written so (by another build, or edited and re-sealed),
    /// not torn by a crash, so it is never cut as damage.
    #[error("{path}:{line}: record seq {seq} has a valid checksum but this build cannot read it ({reason}); was it written by a newer pitboss? The log is left as it is")]
    Unreadable {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The seq expected there.
        seq: u64,
        /// The parser's message.
        reason: String,
    },
    /// The log holds no valid record at all, so there is no run to replay.
    #[error("{path}:{line}: the event log holds no valid record ({reason}); there is no run to replay")]
    NoRecord {
        /// The log.
        path: PathBuf,
        /// 1-based line of the first damaged record.
        line: usize,
        /// What is wrong with it.
        reason: Damage,
    },
    /// The log is an empty file.
    #[error("{0}: the event log is empty; there is no run to replay")]
    Empty(PathBuf),
    /// The damaged tail could not be saved to `events.jsonl.broken` (a full disk):
    /// the log is not cut, so nothing is lost.
    #[error("{broken}: cannot save the damaged tail of the log there ({source}); the log was left as it was and nothing was cut: make room and resume again")]
    TailNotSaved {
        /// The `.broken` file.
        broken: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The log was removed or replaced under the live run.
    #[error(transparent)]
    Gone(#[from] LogGone),
    /// The log is a symlink, which could redirect writes anywhere.
    #[error("{0}: the event log is a symbolic link; refusing to use it")]
    Symlink(PathBuf),
    /// No log in the folder.
    #[error("{0}: no event log here (is this a pitboss run folder?)")]
    Missing(PathBuf),
    /// Damage in an archived segment (DESIGN §6): a segment was a whole log when it was
    /// archived, so nothing in it is a crash tail, and nothing there is ever cut.
    #[error("{path}:{line}: record seq {seq} is damaged ({reason}) in an archived segment of the log; archived segments are sealed, so this is not a crash tail and nothing is cut: restore the file from a backup")]
    Sealed {
        /// The segment file.
        path: PathBuf,
        /// 1-based line in it.
        line: usize,
        /// The seq expected there.
        seq: u64,
        /// What is wrong with it.
        reason: Damage,
    },
    /// The live log does not continue the archive: a segment is missing (DESIGN §6).
    #[error("{path}:1: the log file starts at record {found} but the records before it end at {}: an archived segment is missing; put it back in archive/", expected - 1)]
    Gap {
        /// The file that does not continue the ones before it.
        path: PathBuf,
        /// The seq it should start with.
        expected: u64,
        /// The seq it starts with.
        found: u64,
    },
    /// Valid records follow a damaged one: not a crash tail.
    #[error(
        "{path}:{line}: record seq {cut_seq} is corrupt ({reason}) but valid records follow it; \
         refusing to guess. Inspect the file, or cut the log there with `pitboss resume --truncate-at {cut_seq}` \
         (the cut records are saved to {BROKEN_FILE})"
    )]
    Corrupt {
        /// The log.
        path: PathBuf,
        /// 1-based line of the bad record.
        line: usize,
        /// The seq expected there: the one to pass to `--truncate-at`.
        cut_seq: u64,
        /// What is wrong with it.
        reason: Damage,
    },
    /// A record that is well formed but cannot be folded (a bug or a hand edit).
    #[error("{path}:{line}: record seq {seq} cannot be replayed: {reason}")]
    Replay {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Its seq.
        seq: u64,
        /// Why the fold refused it.
        reason: ApplyError,
    },
}

/// Why one line of the log is not a valid record. The texts are part of the log's
/// format: they are recorded in `log_repaired` events, so they never change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The line holds NUL bytes: the file grew but the data never landed (a crash).
    #[error("NUL bytes")]
    Nul,
    /// The line has no `,"crc":` part.
    #[error("no checksum")]
    NoChecksum,
    /// The line does not end with the record's closing brace.
    #[error("truncated")]
    Truncated,
    /// The line ends in CR LF: the file was converted to Windows line endings.
    #[error("the line ends in CR LF (a Windows line ending)")]
    Crlf,
    /// The checksum is not a number.
    #[error("bad checksum")]
    BadChecksum,
    /// The checksum does not match the line: its bytes changed after it was written.
    #[error("checksum mismatch")]
    ChecksumMismatch,
    /// The checksum matches but the record is not one this build reads (the JSON
    /// parser's message; kept as text so a scan stays comparable and cloneable).
    #[error("unreadable record: {0}")]
    Unreadable(String),
    /// The checksum matches and the record says it is in a newer format.
    #[error("log format {0}; this build reads up to {FORMAT_VERSION}")]
    Newer(u32),
    /// The checksum matches and the record is of an event type this build does not know.
    #[error("event type {0:?}, unknown to this build (log format {FORMAT_VERSION})")]
    UnknownType(String),
}

impl DecodeError {
    /// True for a line whose checksum is valid: it is exactly what a pitboss wrote,
    /// so it is never damage, whether or not this build can read it.
    pub fn is_sealed(&self) -> bool {
        matches!(self, DecodeError::Unreadable(_) | DecodeError::Newer(_) | DecodeError::UnknownType(_))
    }
}

/// What is wrong with the first damaged record of a log. Its text is recorded in
/// `log_repaired` events, so the wording is part of the log format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The line is not a valid record.
    #[error(transparent)]
    Record(#[from] DecodeError),
    /// A valid record whose seq breaks the 1, 2, 3… sequence.
    #[error("seq {found} where {expected} was expected")]
    OutOfOrder {
        /// The seq it carries.
        found: u64,
        /// The seq that belongs there.
        expected: u64,
    },
    /// The damage is on a last line without its newline (a torn last write).
    #[error("{0}, partial last line")]
    PartialLine(Box<Damage>),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { path: path.to_path_buf(), source }
}

fn write_err(path: &Path) -> impl FnOnce(WriteError) -> JournalError + '_ {
    move |e| match e {
        WriteError::Io(source) => JournalError::Io { path: path.to_path_buf(), source },
        WriteError::Gone(gone) => JournalError::Gone(gone),
    }
}

/// A damaged tail found while scanning.
#[derive(Debug, Clone, PartialEq)]
pub struct TornTail {
    /// Byte offset where the valid part ends.
    pub offset: u64,
    /// Bytes after it.
    pub len: u64,
    /// 1-based line of the first damaged record.
    pub line: usize,
    /// What was wrong with it.
    pub reason: Damage,
}

/// The outcome of scanning a log.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Valid records seen.
    pub records: u64,
    /// Length of the valid part in bytes.
    pub valid_len: u64,
    /// Damage at the tail, if any.
    pub torn: Option<TornTail>,
    /// True when the last valid record lacked its newline.
    pub missing_newline: bool,
}

/// Encodes one record as a line (with its newline) onto `buf`.
pub fn encode(seq: u64, ts: u64, event: &Event, buf: &mut Vec<u8>) {
    encode_sealed(seq, ts, event, buf);
}

/// [`encode`], giving the record's checksum (a snapshot names the record it follows
/// by its seq, place and checksum).
fn encode_sealed(seq: u64, ts: u64, event: &Event, buf: &mut Vec<u8>) -> u32 {
    let start = buf.len();
    // Serializing our own types into a Vec cannot fail.
    if serde_json::to_writer(&mut *buf, &RecordOut { seq, ts, v: FORMAT_VERSION, event }).is_err() {
        buf.truncate(start);
        return 0;
    }
    buf.pop(); // the closing brace; the checksum goes before it
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&buf[start..]);
    hasher.update(b"}");
    let crc = hasher.finalize();
    let _ = writeln!(buf, ",\"crc\":{crc}}}");
    crc
}

/// Where the last record written sits in the log: what a snapshot taken after it
/// records, so that opening can check the log still holds that very record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// The record's seq.
    pub seq: u64,
    /// Byte offset where its line starts.
    pub start: u64,
    /// Byte offset just after its newline (where the next record starts).
    pub end: u64,
    /// Its checksum.
    pub crc: u32,
}

/// The log's end as a writer tracks it (shared by [`Journal`] and [`JournalWriter`]).
#[derive(Debug, Clone, Copy)]
struct Tracker {
    end: u64,
    last: Option<LogPosition>,
}

impl Tracker {
    /// Encodes `events` from `first` onto `buf` (empty first); gives the tracker as it
    /// will be once `buf` is written.
    fn encode(&self, first: u64, ts: u64, events: &[Event], buf: &mut Vec<u8>) -> Tracker {
        let mut last = self.last;
        for (k, event) in events.iter().enumerate() {
            let start = buf.len() as u64;
            let crc = encode_sealed(first + k as u64, ts, event, buf);
            let seq = first + k as u64;
            last = Some(LogPosition { seq, start: self.end + start, end: self.end + buf.len() as u64, crc });
        }
        Tracker { end: self.end + buf.len() as u64, last }
    }
}

/// Decodes and verifies one line (without its newline).
pub fn decode(line: &[u8]) -> Result<Record, DecodeError> {
    const MARK: &[u8] = b",\"crc\":";
    if line.contains(&0) {
        return Err(DecodeError::Nul);
    }
    if line.ends_with(b"}\r") {
        return Err(DecodeError::Crlf);
    }
    let pos = line.windows(MARK.len()).rposition(|w| w == MARK).ok_or(DecodeError::NoChecksum)?;
    if line.last() != Some(&b'}') {
        return Err(DecodeError::Truncated);
    }
    let crc_text =
        std::str::from_utf8(&line[pos + MARK.len()..line.len() - 1]).map_err(|_| DecodeError::BadChecksum)?;
    let stored: u32 = crc_text.parse().map_err(|_| DecodeError::BadChecksum)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&line[..pos]);
    hasher.update(b"}");
    if hasher.finalize() != stored {
        return Err(DecodeError::ChecksumMismatch);
    }
    let rec: StoredRecord = match serde_json::from_slice(line) {
        Ok(rec) => rec,
        Err(e) => return Err(why_unreadable(line, e)),
    };
    if rec.v > FORMAT_VERSION {
        return Err(DecodeError::Newer(rec.v));
    }
    Ok(Record { seq: rec.seq, ts: rec.ts, event: rec.event })
}

/// Why a sealed line (its checksum is valid) does not parse: a newer build's record
/// may not parse at all, and its version or its event type says so.
fn why_unreadable(line: &[u8], e: serde_json::Error) -> DecodeError {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default = "first_format")]
        v: u32,
        event: Option<PeekEvent>,
    }
    #[derive(Deserialize)]
    struct PeekEvent {
        #[serde(rename = "type")]
        kind: String,
    }
    match serde_json::from_slice::<Peek>(line) {
        Ok(Peek { v, .. }) if v > FORMAT_VERSION => DecodeError::Newer(v),
        Ok(Peek { event: Some(PeekEvent { kind }), .. }) if !is_known_event_type(&kind) => {
            DecodeError::UnknownType(kind)
        }
        _ => DecodeError::Unreadable(e.to_string()),
    }
}

/// The event types this build reads, as the `Event` enum itself lists them (serde
/// hands its variant names to `unknown_variant`), so no list here can fall out of
/// date as event types are added.
pub fn known_event_types() -> &'static [&'static str] {
    /// A deserializer error that keeps the list `unknown_variant` is given.
    #[derive(Debug)]
    struct Probe(Option<&'static [&'static str]>);
    impl std::fmt::Display for Probe {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Probe {}
    impl serde::de::Error for Probe {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Probe(None)
        }
        fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
            Probe(Some(expected))
        }
    }
    static TYPES: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    TYPES.get_or_init(|| {
        let probe = serde::de::value::MapDeserializer::<_, Probe>::new(std::iter::once(("type", "\u{0}")));
        match Event::deserialize(probe) {
            Err(Probe(Some(expected))) => expected,
            _ => &[],
        }
    })
}

fn is_known_event_type(kind: &str) -> bool {
    let known = known_event_types();
    // Should serde ever stop naming its variants, every type counts as known: a record
    // is then reported unreadable, which is still never cut.
    known.is_empty() || known.contains(&kind)
}

/// Reads every valid record of `path` in order, calling `visit(record, line)`.
/// A damaged tail is reported in the result; damage before valid records is an error.
/// `visit` errors stop the scan as [`JournalError::Replay`].
pub fn scan(path: &Path, visit: impl FnMut(Record, usize) -> Result<(), ApplyError>) -> Result<Scan, JournalError> {
    scan_from(path, 0, 0, visit)
}

/// [`scan`] from byte `offset`, where record `before + 1` starts (a verified
/// snapshot covers the records before it, which are not read). Line numbers and the
/// returned [`Scan`] count the whole log, as if it had been read from its start (one
/// record per line, so record `before` ends line `before`).
pub fn scan_from(
    path: &Path,
    offset: u64,
    before: u64,
    visit: impl FnMut(Record, usize) -> Result<(), ApplyError>,
) -> Result<Scan, JournalError> {
    let file = open_read(path)?;
    let lines_before = usize::try_from(before).unwrap_or(usize::MAX);
    scan_file(path, file, offset, before, lines_before, visit)
}

/// [`scan_from`] on `file`, already opened at `path` (the log's segments, DESIGN §6,
/// are read through the very file opened, whatever its path names by then), whose
/// line `lines_before + 1` starts at `offset` (a segment's lines count from its own
/// start, its records' seqs from the run's).
pub fn scan_file(
    path: &Path,
    mut file: File,
    offset: u64,
    before: u64,
    lines_before: usize,
    mut visit: impl FnMut(Record, usize) -> Result<(), ApplyError>,
) -> Result<Scan, JournalError> {
    file.seek(SeekFrom::Start(offset)).map_err(io_err(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(4096);
    let mut offset: u64 = offset;
    let mut records: u64 = before;
    let mut line_no = lines_before;
    let mut missing_newline = false;
    let mut first_bad: Option<TornTail> = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let terminated = line.last() == Some(&b'\n');
        let body = if terminated { &line[..line.len() - 1] } else { &line[..] };
        if let Some(bad) = &first_bad {
            // Past the damage: any sealed record here means the damage is not a tail.
            if decode(body).map_or_else(|e| e.is_sealed(), |_| true) {
                let bad = bad.clone();
                return Err(JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: bad.line,
                    cut_seq: records + 1,
                    reason: bad.reason,
                });
            }
            continue;
        }
        let decoded = decode(body).map_err(Damage::from).and_then(|rec| {
            if rec.seq == records + 1 {
                Ok(rec)
            } else {
                Err(Damage::OutOfOrder { found: rec.seq, expected: records + 1 })
            }
        });
        match decoded {
            Ok(rec) => {
                let seq = rec.seq;
                visit(rec, line_no).map_err(|reason| JournalError::Replay {
                    path: path.to_path_buf(),
                    line: line_no,
                    seq,
                    reason,
                })?;
                records += 1;
                offset += n as u64;
                missing_newline = !terminated;
            }
            // Not damage: never cut as a torn tail.
            Err(Damage::Record(reason @ (DecodeError::Newer(_) | DecodeError::UnknownType(_)))) => {
                return Err(JournalError::Newer { path: path.to_path_buf(), line: line_no, reason });
            }
            Err(Damage::Record(DecodeError::Unreadable(reason))) => {
                return Err(JournalError::Unreadable {
                    path: path.to_path_buf(),
                    line: line_no,
                    seq: records + 1,
                    reason,
                });
            }
            Err(reason) => {
                let reason = if terminated { reason } else { Damage::PartialLine(Box::new(reason)) };
                first_bad = Some(TornTail { offset, len: 0, line: line_no, reason });
            }
        }
    }
    let total = reader.get_ref().metadata().map_err(io_err(path))?.len();
    let torn = first_bad.map(|mut t| {
        t.len = total - t.offset;
        t
    });
    Ok(Scan { records, valid_len: offset, torn, missing_newline })
}

/// Opens a log file for reading, refusing a symbolic link.
pub fn open_read(path: &Path) -> Result<File, JournalError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(JournalError::Symlink(path.to_path_buf())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(JournalError::Missing(path.to_path_buf())),
        Err(e) => return Err(io_err(path)(e)),
    }
    private_file().read(true).open(path).map_err(io_err(path))
}

/// Capacity the append buffer keeps between batches; a bigger batch's is given back.
const BUF_KEEP: usize = 64 * 1024;

/// The append side of a log.
pub struct Journal {
    log: OpenLog,
    next_seq: u64,
    buf: Vec<u8>,
    at: Tracker,
}

impl Journal {
    /// Creates `dir/events.jsonl` (0600, refusing to overwrite) holding `first`.
    pub fn create(dir: &Path, ts: u64, first: &Event) -> Result<Journal, JournalError> {
        let path = dir.join(LOG_FILE);
        // Readable too: a log removed under the run is copied out through this file.
        let file = private_file().read(true).append(true).create_new(true).open(&path).map_err(io_err(&path))?;
        let log = OpenLog::new(path.clone(), file).map_err(io_err(&path))?;
        let at = Tracker { end: 0, last: None };
        let mut journal = Journal { log, next_seq: 1, buf: Vec::with_capacity(BUF_KEEP), at };
        journal.append(ts, std::slice::from_ref(first))?;
        // The file's existence must survive a crash too.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(journal)
    }

    /// Opens an existing log for appending after `scan` checked it. A torn tail is cut
    /// off, the bytes saved to `events.jsonl.broken` first; if they cannot be saved the
    /// log is not cut ([`JournalError::TailNotSaved`]).
    pub fn open(dir: &Path, scan: &Scan) -> Result<Journal, JournalError> {
        let path = dir.join(LOG_FILE);
        if let Some(torn) = &scan.torn {
            save_tail(&path, &dir.join(BROKEN_FILE), torn.offset)?;
        }
        let mut file = private_file().read(true).write(true).open(&path).map_err(io_err(&path))?;
        file.set_len(scan.valid_len).map_err(io_err(&path))?;
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        if scan.missing_newline {
            file.write_all(b"\n").map_err(io_err(&path))?;
        }
        file.sync_data().map_err(io_err(&path))?;
        let log = OpenLog::new(path.clone(), file).map_err(io_err(&path))?;
        let at = Tracker { end: scan.valid_len + u64::from(scan.missing_newline), last: None };
        Ok(Journal { log, next_seq: scan.records + 1, buf: Vec::with_capacity(BUF_KEEP), at })
    }

    /// Appends a batch with one write and one fdatasync; returns the first seq used.
    pub fn append(&mut self, ts: u64, events: &[Event]) -> Result<u64, JournalError> {
        self.append_with(ts, events, true)
    }

    /// Appends a batch with one write; `durable` adds the fdatasync. A batch of notes
    /// that nothing acts on may skip it: the next durable batch covers it, and a crash
    /// before then loses only those notes (the file stays a valid prefix).
    pub fn append_with(&mut self, ts: u64, events: &[Event], durable: bool) -> Result<u64, JournalError> {
        let first = self.next_seq;
        if events.is_empty() {
            return Ok(first);
        }
        self.buf.clear();
        let at = self.at.encode(first, ts, events, &mut self.buf);
        // The batch may be partly on disk after an error; it reads as a torn tail next time.
        self.log.write_batch(&self.buf, durable).map_err(write_err(self.log.path()))?;
        self.next_seq = first + events.len() as u64;
        self.at = at;
        // A big batch (the first record carries the whole workflow, tens of MB for
        // 100,000 tasks) would otherwise keep its capacity for the journal's life.
        if self.buf.capacity() > BUF_KEEP {
            self.buf = Vec::with_capacity(BUF_KEEP);
        }
        Ok(first)
    }

    /// Capacity of the encode buffer (for tests).
    #[cfg(test)]
    fn buf_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Seq the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Where the last record this journal wrote sits (none before its first append).
    pub fn position(&self) -> Option<LogPosition> {
        self.at.last
    }

    /// Makes `file` the log from now on: for a deliberate roll to a new file at the
    /// log's path (compaction, DESIGN §6), which must not read as a replacement.
    pub fn adopt(&mut self, file: File) -> Result<(), JournalError> {
        let path = self.log.path().to_path_buf();
        self.log.adopt(file).map_err(io_err(&path))
    }
}

/// A batch handed to the writer thread, with where to report the outcome.
struct WriteJob {
    bytes: Vec<u8>,
    durable: bool,
    done: tokio::sync::oneshot::Sender<Result<(), WriteError>>,
    /// Instead of writing: a roll to a new file ([`JournalWriter::roll`]).
    roll: Option<RollJob>,
}

/// Makes the file the log rolls to (it runs on the writer thread, in order with the writes).
type RollJob = Box<dyn FnOnce(&mut OpenLog) -> Result<(), WriteError> + Send>;

/// The engine's side of the log: batches are encoded on the engine's thread and
/// written (and fdatasync'd) by a dedicated thread, so that while the disk works the
/// engine's thread keeps reading worker output and noticing exits. The engine still
/// waits for each batch to be durable before acting on it.
pub struct JournalWriter {
    path: PathBuf,
    next_seq: u64,
    jobs: std::sync::mpsc::Sender<WriteJob>,
    at: Tracker,
}

impl Journal {
    /// Moves the file to a writer thread.
    pub fn into_writer(self) -> JournalWriter {
        let (jobs, rx) = std::sync::mpsc::channel::<WriteJob>();
        let path = self.log.path().to_path_buf();
        let mut log = self.log;
        let spawned = std::thread::Builder::new().name("pitboss-journal".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                let result = match job.roll {
                    Some(roll) => roll(&mut log),
                    None => log.write_batch(&job.bytes, job.durable),
                };
                let _ = job.done.send(result);
            }
        });
        if let Err(e) = spawned {
            // Without the thread every append reports the error; nothing is lost silently.
            tracing::error!("cannot start the journal thread: {e}");
        }
        JournalWriter { path, next_seq: self.next_seq, jobs, at: self.at }
    }
}

impl JournalWriter {
    /// Appends a batch (one write; fdatasync when `durable`); returns its first seq.
    pub async fn append(&mut self, ts: u64, events: &[Event], durable: bool) -> Result<u64, JournalError> {
        let first = self.next_seq;
        if events.is_empty() {
            return Ok(first);
        }
        let mut bytes = Vec::with_capacity(events.len() * 256);
        let at = self.at.encode(first, ts, events, &mut bytes);
        let (done, wait) = tokio::sync::oneshot::channel();
        let gone = || std::io::Error::other("the journal thread stopped");
        self.jobs.send(WriteJob { bytes, durable, done, roll: None }).map_err(|_| io_err(&self.path)(gone()))?;
        let result = wait.await.unwrap_or_else(|_| Err(WriteError::Io(gone())));
        result.map_err(write_err(&self.path))?;
        self.next_seq = first + events.len() as u64;
        self.at = at;
        Ok(first)
    }

    /// Where the last record this writer wrote sits (none before its first append).
    pub fn position(&self) -> Option<LogPosition> {
        self.at.last
    }

    /// Bytes in the live log file.
    pub fn live_len(&self) -> u64 {
        self.at.end
    }

    /// Rolls the log to a new file (compaction on a live run, DESIGN §6): on the writer
    /// thread, after every batch handed over before, the file is made durable, then
    /// `make` archives it and gives the new empty file now at the log's path, which the
    /// writer adopts, so the replaced-log check never takes the roll for a replacement.
    /// The last position stays where it was (a snapshot finds its record by seq).
    pub async fn roll(
        &mut self,
        make: impl FnOnce() -> std::io::Result<File> + Send + 'static,
    ) -> Result<(), JournalError> {
        let roll: RollJob = Box::new(move |log: &mut OpenLog| {
            log.write_batch(&[], true)?;
            let file = make()?;
            log.adopt(file)?;
            Ok(())
        });
        let (done, wait) = tokio::sync::oneshot::channel();
        let gone = || std::io::Error::other("the journal thread stopped");
        let job = WriteJob { bytes: Vec::new(), durable: false, done, roll: Some(roll) };
        self.jobs.send(job).map_err(|_| io_err(&self.path)(gone()))?;
        let result = wait.await.unwrap_or_else(|_| Err(WriteError::Io(gone())));
        result.map_err(write_err(&self.path))?;
        self.at.end = 0;
        Ok(())
    }
}

/// Copies the bytes from `offset` to the end of `log` onto the end of `broken`,
/// durably. On failure `broken` is put back as it was (removed if this call created
/// it), so a full disk leaves neither an empty nor a partial `.broken` file.
fn save_tail(log: &Path, broken: &Path, offset: u64) -> Result<(), JournalError> {
    let mut src = open_read(log)?;
    src.seek(SeekFrom::Start(offset)).map_err(io_err(log))?;
    let mut tail = Vec::new();
    src.read_to_end(&mut tail).map_err(io_err(log))?;
    if tail.is_empty() {
        return Ok(());
    }
    let not_saved = |source| JournalError::TailNotSaved { broken: broken.to_path_buf(), source };
    let (mut out, created, old_len) = match private_file().append(true).create_new(true).open(broken) {
        Ok(out) => (out, true, 0),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let out = private_file().append(true).open(broken).map_err(not_saved)?;
            let len = out.metadata().map_err(not_saved)?.len();
            (out, false, len)
        }
        Err(e) => return Err(not_saved(e)),
    };
    if let Err(e) = out.write_all(&tail).and_then(|_| out.sync_all()) {
        // Shrinking needs no room, so this works on a full disk too.
        let _ = if created { std::fs::remove_file(broken) } else { out.set_len(old_len) };
        return Err(not_saved(e));
    }
    Ok(())
}

/// Cuts a log so that it ends before record `seq` (for `--truncate-at`); the cut part
/// is saved to `events.jsonl.broken`. Returns the number of bytes cut.
pub fn truncate_at(dir: &Path, seq: u64) -> Result<u64, JournalError> {
    let path = dir.join(LOG_FILE);
    let file = open_read(&path)?;
    let mut reader = BufReader::new(file);
    let mut offset = 0u64;
    let mut line = Vec::new();
    for _ in 1..seq {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
        if n == 0 {
            break;
        }
        offset += n as u64;
    }
    let total = std::fs::metadata(&path).map_err(io_err(&path))?.len();
    save_tail(&path, &dir.join(BROKEN_FILE), offset)?;
    let f = private_file().write(true).open(&path).map_err(io_err(&path))?;
    f.set_len(offset).and_then(|_| f.sync_all()).map_err(io_err(&path))?;
    Ok(total - offset)
}

/// Opens the run whose log is `path`: from its newest usable snapshot and the records
/// after it, else the whole log ([`super::snapshot::open_state`], which also gives the
/// notes on snapshots skipped). Returns the state and the scan of the whole log (which
/// reports a damaged tail, if any).
pub fn replay(path: &Path) -> Result<(RunState, Scan), JournalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if path.file_name() != Some(std::ffi::OsStr::new(LOG_FILE)) {
        // Not a run folder's log (a test's or a tool's file): nothing to snapshot from.
        return fold_all(path);
    }
    let opened = super::snapshot::open_state(dir)?;
    for note in &opened.notes {
        tracing::warn!("{note}");
    }
    Ok((opened.state, opened.scan))
}

/// Folds a whole log from its first record, whatever snapshots there are: the source
/// of truth that a snapshot must equal (`pitboss verify`, tests).
pub fn fold_all(path: &Path) -> Result<(RunState, Scan), JournalError> {
    let mut state: Option<RunState> = None;
    let scan = scan(path, |rec, _| match &mut state {
        None => {
            state = Some(RunState::from_first(&rec.event)?);
            Ok(())
        }
        Some(s) => s.apply(&rec.event, rec.ts),
    })?;
    match (state, scan.torn) {
        (Some(state), torn) => Ok((state, Scan { torn, ..scan })),
        (None, Some(torn)) => {
            Err(JournalError::NoRecord { path: path.to_path_buf(), line: torn.line, reason: torn.reason })
        }
        (None, None) => Err(JournalError::Empty(path.to_path_buf())),
    }
}

#[cfg(test)]
mod tests;
