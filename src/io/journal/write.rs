//! The writing side of the journal: records encoded and sealed with their checksum,
//! appended in group-committed batches by a [`Journal`] (on the caller's thread) or a
//! [`JournalWriter`] (on a thread of its own, for the engine).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{io_err, write_err};
use super::read::save_tail;
use super::{JournalError, Scan, BROKEN_FILE, FORMAT_VERSION, LOG_FILE};
use crate::core::Event;
use crate::io::fsutil::private_file;
use crate::io::logfile::{OpenLog, WriteError};
use sync::SyncJob;

mod sync;

#[derive(Serialize)]
struct RecordOut<'a> {
    seq: u64,
    ts: u64,
    v: u32,
    event: &'a Event,
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

/// The engine's side of the log: each batch is encoded and written on the engine's
/// thread (a `write` into the page cache, microseconds) and fdatasync'd by a thread of
/// its own (`sync`), so that while the disk works the engine keeps reading worker
/// output, noticing exits and writing the next batches. The engine still waits for
/// each batch to be durable before acting on it (but for the attempts it starts,
/// `engine::early`).
pub struct JournalWriter {
    path: PathBuf,
    /// The log (none only while a roll has it on a blocking thread).
    log: Option<OpenLog>,
    next_seq: u64,
    syncs: std::sync::mpsc::Sender<SyncJob>,
    buf: Vec<u8>,
    at: Tracker,
}

impl Journal {
    /// Hands the file's fdatasyncs to a thread of their own (see `sync`).
    pub fn into_writer(self) -> JournalWriter {
        let path = self.log.path().to_path_buf();
        let syncs = match self.log.file_handle().and_then(sync::spawn) {
            Ok(syncs) => syncs,
            Err(e) => {
                // Without the thread every durable append reports the error; nothing
                // is lost silently.
                tracing::error!("cannot start the journal's sync thread: {e}");
                std::sync::mpsc::channel().0
            }
        };
        JournalWriter { path, log: Some(self.log), next_seq: self.next_seq, syncs, buf: self.buf, at: self.at }
    }
}

impl JournalWriter {
    /// Appends a batch (one write; fdatasync when `durable`); returns its first seq.
    pub async fn append(&mut self, ts: u64, events: &[Event], durable: bool) -> Result<u64, JournalError> {
        let (first, synced) = self.append_written(ts, events, durable).await?;
        synced.await?;
        Ok(first)
    }

    /// Appends a batch in two steps: resolves once its bytes are written to the file
    /// (in the page cache, the path checked), giving its first seq and the future of
    /// its fdatasync (when `durable`). Batches are written in the order they are
    /// handed over, so nothing appended later can reach the file before this one.
    pub async fn append_written(
        &mut self,
        ts: u64,
        events: &[Event],
        durable: bool,
    ) -> Result<(u64, Synced), JournalError> {
        let first = self.next_seq;
        if events.is_empty() {
            return Ok((first, Box::pin(std::future::ready(Ok(())))));
        }
        let log = self.log.as_mut().ok_or_else(|| io_err(&self.path)(rolling_failed()))?;
        self.buf.clear();
        let at = self.at.encode(first, ts, events, &mut self.buf);
        // The batch may be partly in the file after an error; it reads as a torn tail next time.
        let written = log.write_checked(&self.buf);
        if self.buf.capacity() > BUF_KEEP {
            self.buf = Vec::with_capacity(BUF_KEEP);
        }
        written.map_err(write_err(&self.path))?;
        let (done, wait) = tokio::sync::oneshot::channel();
        self.syncs.send(SyncJob::Batch { durable, done }).map_err(|_| io_err(&self.path)(thread_gone()))?;
        self.next_seq = first + events.len() as u64;
        self.at = at;
        let path = self.path.clone();
        let synced: Synced = Box::pin(async move {
            let result = wait.await.unwrap_or_else(|_| Err(WriteError::Io(thread_gone())));
            result.map_err(write_err(&path))
        });
        Ok((first, synced))
    }

    /// Where the last record this writer wrote sits (none before its first append).
    pub fn position(&self) -> Option<LogPosition> {
        self.at.last
    }

    /// Bytes in the live log file.
    pub fn live_len(&self) -> u64 {
        self.at.end
    }

    /// Rolls the log to a new file (compaction on a live run, DESIGN §6): on a
    /// blocking thread, after every batch written before, the file is made durable,
    /// then `make` archives it and gives the new empty file now at the log's path,
    /// which the writer adopts (so the replaced-log check never takes the roll for a
    /// replacement) and the sync thread syncs from then on. The last position stays
    /// where it was (a snapshot finds its record by seq).
    pub async fn roll(
        &mut self,
        make: impl FnOnce() -> std::io::Result<File> + Send + 'static,
    ) -> Result<(), JournalError> {
        let mut log = self.log.take().ok_or_else(|| io_err(&self.path)(rolling_failed()))?;
        let rolled = tokio::task::spawn_blocking(move || {
            let result = (|| -> Result<File, WriteError> {
                log.write_batch(&[], true)?;
                log.adopt(make()?)?;
                Ok(log.file_handle()?)
            })();
            (log, result)
        });
        let (log, result) = rolled.await.map_err(|_| io_err(&self.path)(rolling_failed()))?;
        self.log = Some(log);
        let file = result.map_err(write_err(&self.path))?;
        self.syncs.send(SyncJob::File(file)).map_err(|_| io_err(&self.path)(thread_gone()))?;
        self.at.end = 0;
        Ok(())
    }
}

/// The fdatasync of a batch already written ([`JournalWriter::append_written`]).
pub type Synced = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), JournalError>> + Send + 'static>>;

/// Why an append got no answer: the sync thread is gone.
fn thread_gone() -> std::io::Error {
    std::io::Error::other("the journal's sync thread stopped")
}

/// Why the log is not there to write: a roll of it failed half-way (its thread died).
fn rolling_failed() -> std::io::Error {
    std::io::Error::other("the log's roll into the archive did not finish")
}

#[cfg(test)]
mod tests;
