//! `pitboss compact DIR`: moves the records of a run's live log into the archive
//! (DESIGN §6), so that opening the run never reads them again. On a folder no manager
//! holds: first a durable snapshot of the state after the last record (unless the
//! newest usable one is of it already), so the newest snapshot holds the workflow and
//! opening needs neither record 1 nor the archive; then the live log is rolled whole
//! into `archive/NNN.jsonl` and a new empty live log takes its place
//! ([`crate::io::roll`], crash-safe at every step). A live run rolls its own log.

use std::path::Path;

use super::run::CmdResult;
use super::{logcheck, usage, EXIT_OK};
use crate::io::journal::{JournalError, LOG_FILE};
use crate::io::rundir::{is_held, RunDir, RunDirError};
use crate::io::{roll, segments, snapshot};

/// `pitboss compact DIR`.
pub fn compact(dir: &Path) -> CmdResult {
    let live_manager = |path: &Path, pid: &str| {
        usage(format!(
            "{}: a live manager (pid {pid}) holds this run; it rolls its own log past {}, so compact it once the manager has stopped",
            path.display(),
            roll::ROLL_ENV
        ))
    };
    // First, so a manager that is just starting (its log not yet written) is named.
    if let Some(pid) = is_held(dir) {
        return Err(live_manager(dir, &pid));
    }
    if !dir.join(LOG_FILE).is_file() {
        return Err(usage(JournalError::Missing(dir.to_path_buf())));
    }
    let held = RunDir::hold(dir).map_err(|e| match e {
        RunDirError::Held { path, pid } => live_manager(&path, &pid),
        other => usage(other),
    })?;
    let dir = held.path.as_path();
    for note in roll::recover(dir).map_err(usage)? {
        eprintln!("pitboss: {note}");
    }
    let opened = snapshot::open_state(dir).map_err(|e| usage(logcheck::explain(e)))?;
    for note in &opened.notes {
        eprintln!("pitboss: note: {note}");
    }
    let scan = &opened.scan;
    if let Some(torn) = &scan.torn {
        return Err(usage(format!(
            "{}:{}: the log ends in a damaged record ({}); `pitboss resume {}` cuts it (saved to {}), then compact",
            dir.join(LOG_FILE).display(),
            torn.line,
            torn.reason,
            dir.display(),
            crate::io::journal::BROKEN_FILE
        )));
    }
    if scan.missing_newline {
        return Err(usage(format!(
            "{}: the log's last record lacks its newline (a cut-short write); `pitboss resume {}` completes it, then compact",
            dir.join(LOG_FILE).display(),
            dir.display()
        )));
    }
    let Some(at) = segments::last_position(dir, scan.valid_len, scan.records).map_err(usage)? else {
        println!(
            "{}: nothing to compact: the live log holds no record ({} records archived)",
            dir.display(),
            scan.records
        );
        return Ok(EXIT_OK);
    };
    if opened.snapshot != Some(at.seq) {
        snapshot::write(dir, &opened.state, at).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    }
    roll::kill_point(1);
    let (_, segment) = roll::roll(dir).map_err(usage)?;
    println!(
        "{}: compacted: records up to {} moved to {}; {} holds the state after them",
        dir.display(),
        at.seq,
        segment.strip_prefix(dir).unwrap_or(&segment).display(),
        snapshot::file_name(at.seq)
    );
    drop(held);
    Ok(EXIT_OK)
}
