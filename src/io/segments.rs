//! The event log as one stream over its files (DESIGN §6): the archived segments
//! `archive/NNN.jsonl` (oldest first, by number), then the live `events.jsonl`.
//! Compaction ([`super::roll`]) archives the live log whole, so a segment is a former
//! live log, byte for byte: its records keep their seqs and their byte offsets, and
//! the next file's first record continues the seqs.
//!
//! Only the live log may end in a torn tail (a crash mid-write); an archived segment
//! was complete when it was archived, so damage anywhere in it is a hard error naming
//! the segment and line ([`JournalError::Sealed`]), never cut.
//!
//! Readers run beside a live manager, which may roll its log at any moment. A roll
//! hard-links the live file into the archive, then renames a new empty file over the
//! log's path. So the reader opens the live log *first* and lists the archive after:
//! an archived segment that is the very file it opened is that same live log (a roll
//! under way, or one a crash cut short between the link and the rename), read once,
//! as the live log. When the log's path names another file once the live log is read,
//! the log rolled meanwhile: the reader goes on from where it stopped in that file
//! (now in the archive) and then through the newer files, so no record is missed or
//! read twice.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::journal::{self, JournalError, LogPosition, Record, Scan, LOG_FILE};
use crate::core::{ApplyError, RunState};

/// The folder of archived segments, inside a run folder.
pub const ARCHIVE_DIR: &str = "archive";

/// Which file a path names (device and inode): a segment and the live log are the
/// same file while a roll is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of an open file.
    pub fn of(file: &File) -> std::io::Result<FileId> {
        let (dev, ino) = super::platform::file_id(file)?;
        Ok(FileId { dev, ino })
    }

    /// The identity of the file at `path` (not following a link).
    pub fn at(path: &Path) -> std::io::Result<FileId> {
        let (dev, ino) = super::platform::path_id(path)?;
        Ok(FileId { dev, ino })
    }
}

/// One archived segment.
#[derive(Debug, Clone)]
pub struct Archived {
    /// Its number (NNN).
    pub number: u64,
    /// Its path.
    pub path: PathBuf,
    /// Its identity.
    pub id: FileId,
}

/// The archived segments of `dir`, oldest first, leaving out any that is the file
/// `live` (a roll under way or cut short: it is read as the live log).
pub fn archived(dir: &Path, live: Option<FileId>) -> Result<Vec<Archived>, JournalError> {
    let folder = dir.join(ARCHIVE_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(JournalError::Io { path: folder, source }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| JournalError::Io { path: folder.clone(), source })?;
        let name = entry.file_name();
        let Some(number) = segment_number(&name.to_string_lossy()) else { continue };
        let path = entry.path();
        let id = FileId::at(&path).map_err(|source| JournalError::Io { path: path.clone(), source })?;
        if Some(id) != live {
            found.push(Archived { number, path, id });
        }
    }
    found.sort_by_key(|a| a.number);
    Ok(found)
}

/// The number in a segment's file name `NNN.jsonl` (digits only), if it is one.
pub fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".jsonl")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The file name of segment `number`: zero-padded to three digits (more when needed),
/// so that the names also sort in order.
pub fn segment_name(number: u64) -> String {
    format!("{number:03}.jsonl")
}

/// Where a reader starts inside one file of the log: after record `records`, whose
/// line (the `lines`-th of that file) ends at byte `offset`.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    /// The file.
    pub id: FileId,
    /// Where the next line starts.
    pub offset: u64,
    /// Lines of that file before it.
    pub lines: usize,
}

/// The outcome of reading the log to its end.
#[derive(Debug, Clone)]
pub struct LogRead {
    /// Records counted over every file; offsets, tail and newline of the live log.
    pub scan: Scan,
    /// The live log that was read last.
    pub live: FileId,
}

/// Every record of the run in `dir`, in order, over the archive and the live log.
/// The returned [`Scan`] counts records over every file; its offsets and tail are the
/// live log's (what `Journal::open` cuts and appends after).
pub fn scan(dir: &Path, visit: impl FnMut(Record, usize) -> Result<(), ApplyError>) -> Result<Scan, JournalError> {
    read_from(dir, 0, None, visit).map(|read| read.scan)
}

/// Reads the log's records after record `records`: from `at` in the file it names
/// (the files before it are skipped), or from the first file when `at` is `None`.
pub fn read_from(
    dir: &Path,
    mut records: u64,
    mut at: Option<Cursor>,
    mut visit: impl FnMut(Record, usize) -> Result<(), ApplyError>,
) -> Result<LogRead, JournalError> {
    let live_path = dir.join(LOG_FILE);
    loop {
        let live = journal::open_read(&live_path)?;
        let live_id = FileId::of(&live).map_err(|source| JournalError::Io { path: live_path.clone(), source })?;
        let segments = archived(dir, Some(live_id))?;
        let mut started = at.is_none();
        for segment in &segments {
            let (offset, lines) = match at {
                Some(c) if c.id == segment.id => {
                    started = true;
                    (c.offset, c.lines)
                }
                _ if started => (0, 0),
                _ => continue,
            };
            at = None;
            records = read_sealed(segment, offset, records, lines, &mut visit)?;
        }
        let (offset, lines) = match at {
            Some(c) if c.id == live_id => (c.offset, c.lines),
            Some(_) if !started => {
                return Err(JournalError::Io {
                    path: live_path,
                    source: std::io::Error::other("the log file being read is gone from the run folder"),
                })
            }
            _ => (0, 0),
        };
        if offset == 0 && !segments.is_empty() {
            check_continues(&live_path, &live, records)?;
        }
        let scan = journal::scan_file(&live_path, live, offset, records, lines, &mut visit)?;
        // Still the live log: nothing was archived while it was read.
        if FileId::at(&live_path).ok() == Some(live_id) {
            return Ok(LogRead { scan, live: live_id });
        }
        let lines = lines + usize::try_from(scan.records - records).unwrap_or(usize::MAX);
        at = Some(Cursor { id: live_id, offset: scan.valid_len, lines });
        records = scan.records;
    }
}

/// Reads an archived segment from `offset` (after `records` records and `lines` of
/// its lines): any damage in it is an error. Gives the records counted after it.
fn read_sealed(
    segment: &Archived,
    offset: u64,
    records: u64,
    lines: usize,
    visit: &mut impl FnMut(Record, usize) -> Result<(), ApplyError>,
) -> Result<u64, JournalError> {
    let path = &segment.path;
    let file = journal::open_read(path)?;
    if FileId::of(&file).ok() != Some(segment.id) {
        return Err(JournalError::Io {
            path: path.clone(),
            source: std::io::Error::other("the segment was replaced while the log was read"),
        });
    }
    let scan = journal::scan_file(path, file, offset, records, lines, visit).map_err(|e| match e {
        JournalError::Corrupt { path, line, cut_seq, reason } => {
            JournalError::Sealed { path, line, seq: cut_seq, reason }
        }
        other => other,
    })?;
    if let Some(torn) = scan.torn {
        return Err(JournalError::Sealed {
            path: path.clone(),
            line: torn.line,
            seq: scan.records + 1,
            reason: torn.reason,
        });
    }
    Ok(scan.records)
}

/// The live log after an archive must start at record `records + 1`: a lost segment
/// would otherwise read as a gap in the live log and be cut as a torn tail. Read
/// through the file already open (`pread`, its offset untouched), not its path, which
/// a roll may have given to a new file meanwhile.
fn check_continues(path: &Path, live: &File, records: u64) -> Result<(), JournalError> {
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // The first record of a run holds its whole workflow; 64 MiB is far beyond any.
    while !line.contains(&b'\n') && line.len() < 64 << 20 {
        let n = super::platform::read_at(live, &mut chunk, line.len() as u64)
            .map_err(|source| JournalError::Io { path: path.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&chunk[..n]);
    }
    let Some(end) = line.iter().position(|&b| b == b'\n') else { return Ok(()) };
    let Ok(first) = journal::decode(&line[..end]) else { return Ok(()) };
    if first.seq == records + 1 {
        return Ok(());
    }
    Err(JournalError::Gap { path: path.to_path_buf(), expected: records + 1, found: first.seq })
}

/// The seq the first line of the file at `path` starts with, read from its first bytes
/// only (`{"seq":N,`, how every record is written): the first record of a run holds
/// its whole workflow, which opening a compacted run must not read. Unverified: a
/// caller checks the record it then looks for (its seq and checksum).
pub fn first_seq(path: &Path) -> Result<Option<u64>, JournalError> {
    const START: &[u8] = b"{\"seq\":";
    let file = journal::open_read(path)?;
    let mut head = Vec::with_capacity(48);
    file.take(START.len() as u64 + 21)
        .read_to_end(&mut head)
        .map_err(|source| JournalError::Io { path: path.to_path_buf(), source })?;
    let Some(rest) = head.strip_prefix(START) else { return Ok(None) };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if rest.get(digits) != Some(&b',') {
        return Ok(None);
    }
    Ok(std::str::from_utf8(&rest[..digits]).ok().and_then(|d| d.parse().ok()))
}

/// The file that holds record `seq`, with where that file's lines start counting:
/// the archived segment or live log with the greatest first seq not after `seq`.
/// Gives the path, its identity and its first record's seq.
pub fn holding(dir: &Path, seq: u64) -> Result<Option<(PathBuf, FileId, u64)>, JournalError> {
    let live_path = dir.join(LOG_FILE);
    let live = journal::open_read(&live_path)?;
    let live_id = FileId::of(&live).map_err(|source| JournalError::Io { path: live_path.clone(), source })?;
    let mut files: Vec<(PathBuf, FileId)> = archived(dir, Some(live_id))?.into_iter().map(|a| (a.path, a.id)).collect();
    files.push((live_path, live_id));
    let mut best = None;
    for (path, id) in files {
        match first_seq(&path)? {
            Some(first) if first <= seq => best = Some((path, id, first)),
            Some(_) => break,
            None => {}
        }
    }
    Ok(best)
}

/// True when the log holds, where `at` says in the file that holds record `at.seq`,
/// that very record (its seq and checksum). Gives where reading after it starts.
pub fn find(dir: &Path, at: &LogPosition) -> Option<Cursor> {
    let (path, id, first) = holding(dir, at.seq).ok()??;
    if !super::snapshot::in_log(&path, at) {
        return None;
    }
    let lines = usize::try_from(at.seq - first + 1).ok()?;
    Some(Cursor { id, offset: at.end, lines })
}

/// Folds the whole log from its first record, over every file, whatever snapshots
/// there are: the source of truth a snapshot must equal.
pub fn fold_all(dir: &Path) -> Result<(RunState, Scan), JournalError> {
    let mut state: Option<RunState> = None;
    let scan = scan(dir, |rec, _| match &mut state {
        None => {
            state = Some(RunState::from_first(&rec.event)?);
            Ok(())
        }
        Some(s) => s.apply(&rec.event, rec.ts),
    })?;
    let path = dir.join(LOG_FILE);
    match (state, scan.torn) {
        (Some(state), torn) => Ok((state, Scan { torn, ..scan })),
        (None, Some(torn)) => Err(JournalError::NoRecord { path, line: torn.line, reason: torn.reason }),
        (None, None) => Err(JournalError::Empty(path)),
    }
}

/// Where the live log's last valid record sits, given the live log's valid length
/// and the seq of its last record: what a snapshot of the state after it records.
/// `None` when the live log holds no record.
pub fn last_position(dir: &Path, valid_len: u64, seq: u64) -> Result<Option<LogPosition>, JournalError> {
    if valid_len == 0 {
        return Ok(None);
    }
    let path = dir.join(LOG_FILE);
    let io = |source| JournalError::Io { path: path.clone(), source };
    let mut file = journal::open_read(&path)?;
    // Reads back from the end in growing chunks until the line before the last.
    let mut chunk = 64 * 1024u64;
    loop {
        let from = valid_len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut buf = vec![0u8; usize::try_from(valid_len - from).unwrap_or(usize::MAX)];
        file.read_exact(&mut buf).map_err(io)?;
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let start = match body.iter().rposition(|&b| b == b'\n') {
            Some(k) => from + k as u64 + 1,
            None if from == 0 => 0,
            None => {
                chunk *= 4;
                continue;
            }
        };
        let line = &body[usize::try_from(start - from).unwrap_or(0)..];
        let record = journal::decode(line).ok().filter(|r| r.seq == seq);
        let crc = line_crc(line);
        return Ok(match (record, crc) {
            (Some(_), Some(crc)) => Some(LogPosition { seq, start, end: valid_len, crc }),
            _ => None,
        });
    }
}

/// The checksum a record line carries.
fn line_crc(line: &[u8]) -> Option<u32> {
    const MARK: &[u8] = b",\"crc\":";
    let pos = line.windows(MARK.len()).rposition(|w| w == MARK)?;
    std::str::from_utf8(line.get(pos + MARK.len()..line.len().checked_sub(1)?)?).ok()?.parse().ok()
}

/// Cuts the live log before record `seq` (`resume --truncate-at`). A record in an
/// archived segment cannot be cut: archived segments are sealed.
pub fn truncate_at(dir: &Path, seq: u64) -> Result<u64, JournalError> {
    let live = dir.join(LOG_FILE);
    match holding(dir, seq)? {
        Some((path, _, first)) if path == live => journal::truncate_at(dir, seq - first + 1),
        // After every record (the live log is empty): nothing to cut.
        Some(_) if seq > scan(dir, |_, _| Ok(()))?.records => Ok(0),
        Some((path, ..)) => Err(JournalError::Io {
            path,
            source: std::io::Error::other(format!(
                "record {seq} is in this archived segment; archived segments are sealed and cannot be cut"
            )),
        }),
        // Before every file's first record: only an empty live log after an archive.
        None if archived(dir, None)?.is_empty() => journal::truncate_at(dir, seq),
        None => Ok(0),
    }
}

/// Reads the log's raw lines in order over the archive and the live log, from `at`
/// (the first file's start when `None`), giving each complete line (without its
/// newline) and the cursor just after it, until `visit` breaks or the log ends. Lines
/// are not decoded here, so a reader that wants a few records (one task's history)
/// skips the others by their bytes; a line still being written (no newline yet) is
/// not given. A live log rolled meanwhile is followed into the newer files, as
/// [`read_from`] does. Gives the cursor after the last line given (`at` when none).
pub fn read_lines(
    dir: &Path,
    mut at: Option<Cursor>,
    mut visit: impl FnMut(&[u8], Cursor) -> std::ops::ControlFlow<()>,
) -> Result<Option<Cursor>, JournalError> {
    use std::io::BufRead;
    let live_path = dir.join(LOG_FILE);
    loop {
        let live = journal::open_read(&live_path)?;
        let live_id = FileId::of(&live).map_err(|source| JournalError::Io { path: live_path.clone(), source })?;
        let mut files: Vec<(PathBuf, FileId, Option<File>)> =
            archived(dir, Some(live_id))?.into_iter().map(|a| (a.path, a.id, None)).collect();
        files.push((live_path.clone(), live_id, Some(live)));
        let first = match at {
            None => 0,
            Some(c) => files.iter().position(|(_, id, _)| *id == c.id).ok_or_else(|| JournalError::Io {
                path: live_path.clone(),
                source: std::io::Error::other("the log file being read is gone from the run folder"),
            })?,
        };
        for (path, id, file) in files.into_iter().skip(first) {
            let io = |source| JournalError::Io { path: path.clone(), source };
            let (mut offset, mut lines) = match at {
                Some(c) if c.id == id => (c.offset, c.lines),
                _ => (0, 0),
            };
            let mut file = match file {
                Some(file) => file,
                None => journal::open_read(&path)?,
            };
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
            let mut line = Vec::with_capacity(4096);
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                offset += n as u64;
                lines += 1;
                let cursor = Cursor { id, offset, lines };
                at = Some(cursor);
                if visit(&line[..n - 1], cursor).is_break() {
                    return Ok(at);
                }
            }
        }
        // Still the live log: nothing was archived while it was read.
        if FileId::at(&live_path).ok() == Some(live_id) {
            return Ok(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::core::Event;

    fn records(seqs: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in seqs {
            journal::encode(seq, 0, &Event::TaskReady { task: format!("t{seq}") }, &mut buf);
        }
        buf
    }

    fn seqs_read(dir: &Path, mut during: impl FnMut(u64)) -> Result<(Vec<u64>, Scan), JournalError> {
        let mut seen = Vec::new();
        let scan = scan(dir, |rec, _| {
            seen.push(rec.seq);
            during(rec.seq);
            Ok(())
        })?;
        Ok((seen, scan))
    }

    #[test]
    fn a_roll_while_the_log_is_read_loses_and_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::write(dir.join(LOG_FILE), records(1..=5)).unwrap();
        let (seen, scan) = seqs_read(dir, |seq| {
            if seq == 2 {
                // The writer appends to the file being read, rolls it, and goes on in the new one.
                let mut old = std::fs::OpenOptions::new().append(true).open(dir.join(LOG_FILE)).unwrap();
                old.write_all(&records(6..=7)).unwrap();
                let (mut new, segment) = super::super::roll::roll(dir).unwrap();
                assert!(segment.ends_with("archive/001.jsonl"));
                new.write_all(&records(8..=9)).unwrap();
            }
        })
        .unwrap();
        assert_eq!(seen, (1..=9).collect::<Vec<_>>());
        assert_eq!((scan.records, scan.valid_len), (9, records(8..=9).len() as u64), "the live log's own length");
        // Read again, at rest: the same stream.
        assert_eq!(seqs_read(dir, |_| {}).unwrap().0, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn a_segment_that_is_still_the_live_log_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::write(dir.join(LOG_FILE), records(1..=3)).unwrap();
        std::fs::create_dir(dir.join(ARCHIVE_DIR)).unwrap();
        // A roll cut short between its link and its rename.
        std::fs::hard_link(dir.join(LOG_FILE), dir.join(ARCHIVE_DIR).join(segment_name(1))).unwrap();
        assert_eq!(seqs_read(dir, |_| {}).unwrap().0, vec![1, 2, 3]);
        let cursor = find(dir, &last_position(dir, records(1..=3).len() as u64, 3).unwrap().unwrap());
        assert!(cursor.is_some(), "the last record is found where it is");
        let undone = super::super::roll::recover(dir).unwrap();
        assert_eq!(undone.len(), 1, "{undone:?}");
        assert!(archived(dir, None).unwrap().is_empty());
        assert_eq!(seqs_read(dir, |_| {}).unwrap().0, vec![1, 2, 3]);
    }

    #[test]
    fn truncate_at_cuts_only_the_live_log() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::write(dir.join(LOG_FILE), records(1..=3)).unwrap();
        super::super::roll::roll(dir).unwrap();
        assert_eq!(truncate_at(dir, 9).unwrap(), 0, "past the end: nothing to cut");
        let err = truncate_at(dir, 2).unwrap_err();
        assert!(err.to_string().contains("archive/001.jsonl: record 2 is in this archived segment"), "{err}");
        std::fs::write(dir.join(LOG_FILE), records(4..=6)).unwrap();
        assert_eq!(truncate_at(dir, 5).unwrap(), records(5..=6).len() as u64);
        assert_eq!(seqs_read(dir, |_| {}).unwrap().0, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_torn_tail_is_cut_only_in_the_live_log() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let mut torn = records(1..=3);
        torn.extend_from_slice(b"{\"seq\":4,");
        std::fs::write(dir.join(LOG_FILE), &torn).unwrap();
        let (seen, scan) = seqs_read(dir, |_| {}).unwrap();
        assert_eq!((seen.len(), scan.torn.map(|t| t.line)), (3, Some(4)), "the live log's tail is a crash tail");
        // Archived as it is (only `compact` refuses a torn log): now damage, named.
        super::super::roll::roll(dir).unwrap();
        let err = seqs_read(dir, |_| {}).unwrap_err();
        assert!(matches!(err, JournalError::Sealed { line: 4, seq: 4, .. }), "{err}");
        assert!(err.to_string().contains("archive/001.jsonl:4: record seq 4 is damaged"), "{err}");
    }
}
