//! When the engine writes snapshots of its state (DESIGN §6): every
//! [`crate::io::snapshot::every`] records, off the engine's loop, and at a clean
//! stop. A snapshot is a convenience for the next open, never part of the run's
//! record: one that cannot be written (a full disk) is a warning and the run goes on.
//!
//! A snapshot costs in proportion to the run's size (the state is cloned on the
//! engine's thread, then serialized whole), records in proportion to the rate: at
//! 100,000 tasks and 10k tasks/s, one every 50,000 records cost a quarter of the
//! throughput (issue 14). So a snapshot that took long ([`SLOW`] or more, from its
//! start until the engine saw it done) is followed by a pause of [`PAUSE_FACTOR`]
//! times its duration: snapshots then take at most ~5% of the run's time, and a
//! snapshot is further apart than `every` records only while the run is fast. Quick
//! ones (small runs, tests) keep the plain schedule.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::core::RunState;
use crate::io::journal::LogPosition;
use crate::io::snapshot;

/// The engine's snapshot schedule.
pub(super) struct Snapshots {
    /// Records between two snapshots (0: only at a clean stop).
    every: u64,
    /// The seq counting starts from: the first batch of this manager, then each
    /// snapshot started (a resumed run does not snapshot at its first batch).
    from: Option<u64>,
    /// The seq of the last snapshot started.
    written: Option<u64>,
    /// The snapshot being written, if any, and when it started.
    writing: Option<(JoinHandle<()>, Instant)>,
    /// No snapshot starts before this (the pause after a slow one).
    not_before: Option<Instant>,
}

/// A snapshot that took at least this long is followed by a pause.
const SLOW: Duration = Duration::from_millis(20);
/// The pause after a slow snapshot, in multiples of its duration: 19 keeps snapshots
/// to ~5% of the time.
const PAUSE_FACTOR: u32 = 19;

impl Snapshots {
    pub(super) fn new(every: u64) -> Snapshots {
        Snapshots { every, from: None, written: None, writing: None, not_before: None }
    }

    /// After a committed batch ending at `at`: starts a snapshot when `every` records
    /// passed since the last one and none is being written. The state is cloned here
    /// (the fold must not change under the writer) and serialized and written on a
    /// blocking thread, so the loop only pays for the clone.
    pub(super) fn after_batch(&mut self, dir: &Path, state: &RunState, at: Option<LogPosition>) {
        let Some(at) = at else { return };
        let from = *self.from.get_or_insert(at.seq);
        if self.every == 0 || at.seq < from.saturating_add(self.every) {
            return;
        }
        if let Some((writing, started)) = &self.writing {
            if !writing.is_finished() {
                return;
            }
            let took = started.elapsed();
            self.not_before = (took >= SLOW).then(|| Instant::now() + took * PAUSE_FACTOR);
            self.writing = None;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let started = Instant::now();
        (self.from, self.written) = (Some(at.seq), Some(at.seq));
        let (dir, state) = (dir.to_path_buf(), state.clone());
        self.writing = Some((tokio::task::spawn_blocking(move || write_or_warn(&dir, &state, at)), started));
    }

    /// At a clean stop: waits for a snapshot being written, then writes one of the
    /// final state unless the last one is of it already.
    pub(super) async fn at_stop(&mut self, dir: &Path, state: &RunState, at: Option<LogPosition>) {
        if let Some((writing, _)) = self.writing.take() {
            let _ = writing.await;
        }
        let Some(at) = at else { return };
        if self.written == Some(at.seq) {
            return;
        }
        self.written = Some(at.seq);
        let (dir, state) = (dir.to_path_buf(), state.clone());
        let _ = tokio::task::spawn_blocking(move || write_or_warn(&dir, &state, at)).await;
    }
}

fn write_or_warn(dir: &Path, state: &RunState, at: LogPosition) {
    if let Err(e) = snapshot::write(dir, state, at) {
        tracing::warn!(
            "{}: cannot write the snapshot after record {} ({e}); the run goes on, and the next open folds more of the log",
            dir.display(),
            at.seq
        );
    }
}
