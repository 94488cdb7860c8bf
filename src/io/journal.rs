//! The event journal: `events.jsonl`, one record per line,
//! `{"seq":N,"ts":MS,"v":V,"event":{…},"crc":C}`, where V is the log format version
//! ([`FORMAT_VERSION`]; absent in logs written before it was recorded, which are
//! version 1) and C is the CRC-32 of the line with the `,"crc":C` part removed. Appends are group-committed: the engine hands over a
//! whole batch, which is written with one `write` and made durable by an `fdatasync`
//! (one covers every batch written while the one before ran) before any of its effects
//! happen but the early start of local attempts.
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
//!
//! The code is split by its two sides: `read.rs` scans, decodes and repairs a log
//! (and folds it), `write.rs` appends to one ([`Journal`], [`JournalWriter`]); the
//! failures both report are in `error.rs`.

use serde::Deserialize;

use crate::core::Event;

mod error;
mod read;
mod write;

pub use error::{Damage, DecodeError, JournalError};
pub use read::{
    decode, fold_all, known_event_types, open_read, replay, scan, scan_file, scan_from, truncate_at, Scan, TornTail,
};
pub use write::{encode, Journal, JournalWriter, LogPosition, Synced};

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

/// The log format this build writes, and the newest it reads. Raise it when a record
/// changes in a way an older build would misread, and add a golden log of the new
/// version to `tests/golden/`.
pub const FORMAT_VERSION: u32 = 1;

fn first_format() -> u32 {
    1
}

#[cfg(test)]
mod tests;
