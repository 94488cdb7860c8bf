//! Rolling the live log into the archive (compaction, DESIGN §6): the live
//! `events.jsonl` becomes `archive/NNN.jsonl` whole, and a new empty `events.jsonl`
//! takes its place. Used by `pitboss compact` on a folder no manager holds, and by the
//! engine itself on a live run past a size (it adopts the new file, so its
//! replaced-log check never fires on its own roll).
//!
//! The steps keep a file at the log's path at every moment, and every crash point
//! opens to the same records:
//! 1. `events.jsonl.next` is created empty and fsynced (a leftover one is removed);
//! 2. the live log is hard-linked as `archive/NNN.jsonl`; the archive folder fsynced.
//!    Now both names reach the same file: readers and [`recover`] know it by its
//!    inode and read it once, as the live log;
//! 3. `events.jsonl.next` is renamed over `events.jsonl`; the run folder fsynced.
//!    The archive holds the old log, the live log is the new empty file.
//!
//! A failure before 3 undoes what was done (the link removed), so nothing changes.
//! Nothing is copied: a segment is the former live log itself.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::fsutil::{create_private_dir, private_file};
use super::journal::LOG_FILE;
use super::segments::{self, FileId, ARCHIVE_DIR};

/// The new live log, before it is renamed over the old one.
pub const NEXT_FILE: &str = "events.jsonl.next";

/// The environment variable that sets the live log's size past which a live run rolls
/// it into the archive (after a snapshot is durably written); `0` never rolls.
pub const ROLL_ENV: &str = "PITBOSS_ROLL_BYTES";

/// The size past which a live run rolls its log unless [`ROLL_ENV`] says otherwise.
pub const DEFAULT_ROLL_BYTES: u64 = 256 << 20;

/// A test hook: `PITBOSS_TEST_KILL_ROLL_AT=K` kills the process (SIGKILL, as `kill -9`)
/// at step K of a roll (1: after the snapshot, 2: after the new file, 3: after the
/// link, 4: after the rename), so tests can crash it at every step.
pub const KILL_AT_ENV: &str = "PITBOSS_TEST_KILL_ROLL_AT";

/// Bytes past which a live run rolls its log ([`ROLL_ENV`], else the default); `None`
/// for never.
pub fn roll_bytes() -> Option<u64> {
    let bytes = std::env::var(ROLL_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_ROLL_BYTES);
    (bytes > 0).then_some(bytes)
}

/// Kills this process at roll step `step` when [`KILL_AT_ENV`] asks for it.
pub fn kill_point(step: u32) {
    if std::env::var(KILL_AT_ENV).ok().and_then(|v| v.trim().parse::<u32>().ok()) == Some(step) {
        super::platform::kill_self();
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn with_path(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Archives the live log of `dir` as the next segment and puts a new empty live log in
/// its place (the steps above). Gives the new log, open for reading and appending, and
/// the segment's path. The caller makes sure nothing writes the old log meanwhile (it
/// holds the run folder, or it is the manager's own writer thread).
pub fn roll(dir: &Path) -> std::io::Result<(File, PathBuf)> {
    let live = dir.join(LOG_FILE);
    let archive = dir.join(ARCHIVE_DIR);
    if !archive.is_dir() {
        create_private_dir(&archive).map_err(|e| with_path(&archive, e))?;
        sync_dir(dir).map_err(|e| with_path(dir, e))?;
    }
    // Whatever the log holds is on disk before it is archived.
    File::open(&live).and_then(|f| f.sync_all()).map_err(|e| with_path(&live, e))?;
    let next = dir.join(NEXT_FILE);
    let _ = std::fs::remove_file(&next);
    let file = private_file()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&next)
        .and_then(|f| f.sync_all().map(|_| f))
        .map_err(|e| with_path(&next, e))?;
    kill_point(2);
    let number = segments::archived(dir, None)
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .last()
        .map_or(1, |a| a.number + 1);
    let segment = archive.join(segments::segment_name(number));
    let linked = std::fs::hard_link(&live, &segment).and_then(|_| sync_dir(&archive));
    if let Err(e) = linked {
        let _ = std::fs::remove_file(&segment);
        let _ = std::fs::remove_file(&next);
        return Err(with_path(&segment, e));
    }
    kill_point(3);
    if let Err(e) = std::fs::rename(&next, &live) {
        // Undone: the log stays where it was, not also in the archive.
        let _ = std::fs::remove_file(&segment).and_then(|_| sync_dir(&archive));
        let _ = std::fs::remove_file(&next);
        return Err(with_path(&live, e));
    }
    sync_dir(dir).map_err(|e| with_path(dir, e))?;
    kill_point(4);
    Ok((file, segment))
}

/// Puts a folder back in order after a roll a crash cut short; only for a process
/// that holds the folder (a reader must not: a live manager may be mid-roll). An
/// archived segment that is still the live log (linked, not yet replaced) is unlinked,
/// as if the roll had not begun; a leftover new file is removed. Gives what it did.
pub fn recover(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut done = Vec::new();
    let live = dir.join(LOG_FILE);
    if let Ok(live_id) = FileId::at(&live) {
        let all = segments::archived(dir, None).map_err(|e| std::io::Error::other(e.to_string()))?;
        for segment in all.iter().filter(|a| a.id == live_id) {
            std::fs::remove_file(&segment.path).map_err(|e| with_path(&segment.path, e))?;
            sync_dir(&dir.join(ARCHIVE_DIR))?;
            done.push(format!(
                "{}: undid a compaction a crash cut short (the segment was still the live log)",
                segment.path.display()
            ));
        }
    }
    let next = dir.join(NEXT_FILE);
    if next.exists() {
        std::fs::remove_file(&next).map_err(|e| with_path(&next, e))?;
    }
    Ok(done)
}
