//! What the journal reports: its failures ([`JournalError`]), and what is wrong with
//! a line ([`DecodeError`]) or with the first damaged record of a log ([`Damage`]),
//! whose texts are part of the log format.

use std::path::{Path, PathBuf};

use super::{BROKEN_FILE, FORMAT_VERSION};
use crate::core::ApplyError;
use crate::io::logfile::{LogGone, WriteError};

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

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io { path: path.to_path_buf(), source }
}

pub(super) fn write_err(path: &Path) -> impl FnOnce(WriteError) -> JournalError + '_ {
    move |e| match e {
        WriteError::Io(source) => JournalError::Io { path: path.to_path_buf(), source },
        WriteError::Gone(gone) => JournalError::Gone(gone),
    }
}
