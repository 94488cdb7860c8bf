//! Where the engine appends its events, behind a small trait: the fsync'd journal in
//! a real run, a vector in the engine's unit tests (whose virtual clock must not move
//! while a test waits for a disk).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::journal::{JournalError, JournalWriter, LogPosition, Record, Synced};
use crate::core::Event;

/// The future of one append: the sequence number of its first record.
pub type Append<'a> = Pin<Box<dyn Future<Output = Result<u64, JournalError>> + Send + 'a>>;

/// The future of the first step of [`EventStore::append_written`].
pub type Written<'a> = Pin<Box<dyn Future<Output = Result<(u64, Synced), JournalError>> + Send + 'a>>;

/// An append-only store of events.
pub trait EventStore: Send {
    /// Appends `events` stamped `ts`; with `durable` the future resolves only once
    /// they are on disk. Gives the sequence number of the first.
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], durable: bool) -> Append<'a>;

    /// [`EventStore::append`] in two steps: resolves once the batch is written where
    /// a crash of this process cannot lose it (a file's page cache), giving its first
    /// seq and the future that resolves once it is durable. Later appends reach the
    /// store after it. By default the whole append happens in the first step.
    fn append_written<'a>(&'a mut self, ts: u64, events: &'a [Event], durable: bool) -> Written<'a> {
        Box::pin(async move {
            let first = self.append(ts, events, durable).await?;
            let synced: Synced = Box::pin(std::future::ready(Ok(())));
            Ok((first, synced))
        })
    }

    /// Where the last record appended sits in a log file, for a snapshot to name it
    /// (none for a store that is not a file: no snapshots are taken of it).
    fn position(&self) -> Option<LogPosition> {
        None
    }

    /// Bytes in the live log file (none for a store that is not a file: it never rolls).
    fn live_len(&self) -> Option<u64> {
        None
    }

    /// Rolls the live log of the run in `dir` into the archive and goes on in a new
    /// file ([`super::roll`], DESIGN §6). Never called on a store without
    /// [`EventStore::live_len`].
    fn roll<'a>(&'a mut self, dir: &'a Path) -> Rolled<'a> {
        let _ = dir;
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The future of a roll.
pub type Rolled<'a> = Pin<Box<dyn Future<Output = Result<(), JournalError>> + Send + 'a>>;

impl EventStore for JournalWriter {
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], durable: bool) -> Append<'a> {
        Box::pin(JournalWriter::append(self, ts, events, durable))
    }

    fn append_written<'a>(&'a mut self, ts: u64, events: &'a [Event], durable: bool) -> Written<'a> {
        Box::pin(JournalWriter::append_written(self, ts, events, durable))
    }

    fn position(&self) -> Option<LogPosition> {
        JournalWriter::position(self)
    }

    fn live_len(&self) -> Option<u64> {
        Some(JournalWriter::live_len(self))
    }

    fn roll<'a>(&'a mut self, dir: &'a Path) -> Rolled<'a> {
        let dir = dir.to_path_buf();
        Box::pin(JournalWriter::roll(self, move || super::roll::roll(&dir).map(|(file, _)| file)))
    }
}

/// Records kept in memory (tests of the engine's logic). Shares its records so the
/// test can read what was appended.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Everything appended, in order.
    pub records: Arc<Mutex<Vec<Record>>>,
}

impl MemoryStore {
    /// A store whose first record is `first` (a run's `run_started`), stamped `ts`.
    pub fn starting_with(ts: u64, first: Event) -> MemoryStore {
        let store = MemoryStore::default();
        if let Ok(mut records) = store.records.lock() {
            records.push(Record { seq: 1, ts, event: first });
        }
        store
    }
}

impl EventStore for MemoryStore {
    fn append<'a>(&'a mut self, ts: u64, events: &'a [Event], _durable: bool) -> Append<'a> {
        let mut records = self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let first = records.last().map_or(1, |r| r.seq + 1);
        for (k, event) in events.iter().enumerate() {
            records.push(Record { seq: first + k as u64, ts, event: event.clone() });
        }
        Box::pin(std::future::ready(Ok(first)))
    }
}
