//! The reading side of the journal: decoding and verifying a line, scanning a log
//! (a torn tail reported, damage before valid records refused), repairing it (a cut
//! tail saved to `events.jsonl.broken` first) and folding it into a state.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;

use super::error::io_err;
use super::{first_format, Damage, DecodeError, JournalError, Record, BROKEN_FILE, FORMAT_VERSION, LOG_FILE};
use crate::core::{ApplyError, Event, RunState};
use crate::io::fsutil::private_file;

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

/// Copies the bytes from `offset` to the end of `log` onto the end of `broken`,
/// durably. On failure `broken` is put back as it was (removed if this call created
/// it), so a full disk leaves neither an empty nor a partial `.broken` file.
pub(super) fn save_tail(log: &Path, broken: &Path, offset: u64) -> Result<(), JournalError> {
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
/// after it, else the whole log ([`crate::io::snapshot::open_state`], which also gives the
/// notes on snapshots skipped). Returns the state and the scan of the whole log (which
/// reports a damaged tail, if any).
pub fn replay(path: &Path) -> Result<(RunState, Scan), JournalError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if path.file_name() != Some(std::ffi::OsStr::new(LOG_FILE)) {
        // Not a run folder's log (a test's or a tool's file): nothing to snapshot from.
        return fold_all(path);
    }
    let opened = crate::io::snapshot::open_state(dir)?;
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
