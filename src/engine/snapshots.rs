//! When the engine writes snapshots of its state (DESIGN §6): every
//! [`crate::io::snapshot::every`] records, off the engine's loop, and at a clean
//! stop. A snapshot is a convenience for the next open, never part of the run's
//! record: one that cannot be written (a full disk) is a warning and the run goes on.
//!
//! A snapshot costs in proportion to the run's size (the state is cloned on the
//! engine's thread, then serialized whole), records in proportion to the rate: at
//! 100,000 tasks and 10k tasks/s, one every 50,000 records cost a quarter of the
//! throughput (issue 14). So in a large run (at least [`PACE_FROM`] tasks) a snapshot
//! that took long ([`SLOW`] or more: the clone on the loop plus the writer's own time,
//! measured by the writer, not when the engine next looks) is followed by a pause of
//! [`PAUSE_FACTOR`] times its duration: snapshots then take at most ~5% of the run's
//! time, and a snapshot is further apart than `every` records only while the run is
//! fast. Small runs keep the plain schedule whatever the disk's speed: their snapshots
//! are cheap, and a slow fsync on a busy machine must not change when they happen.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::core::RunState;
use crate::io::journal::LogPosition;
use crate::io::store::EventStore;
use crate::io::{roll, snapshot, task_index};

/// The engine's snapshot schedule.
pub(super) struct Snapshots {
    /// Records between two snapshots (0: only at a clean stop).
    every: u64,
    /// The seq counting starts from: the first batch of this manager, then each
    /// snapshot started (a resumed run does not snapshot at its first batch).
    from: Option<u64>,
    /// The seq of the last snapshot started.
    written: Option<u64>,
    /// The snapshot being written, if any.
    writing: Option<JoinHandle<()>>,
    /// How long the last snapshot took in microseconds (clone and write), set by its writer.
    took_us: Arc<AtomicU64>,
    /// No snapshot starts before this (the pause after a slow one).
    not_before: Option<Instant>,
    /// The seq of the last snapshot durably written (0: none yet), set by the writer.
    durable: Arc<AtomicU64>,
    /// The live log's size past which it is rolled into the archive (none: never).
    roll_past: Option<u64>,
    /// The durable snapshot the last roll followed: a roll waits for a newer one.
    rolled_after: u64,
    /// The seq of the snapshot the state was opened from (resume), if one was used:
    /// opening checked it, so it counts as the newest durable one at the stop.
    opened_from: Option<u64>,
}

/// A snapshot that took at least this long is followed by a pause.
const SLOW: Duration = Duration::from_millis(20);
/// The pause after a slow snapshot, in multiples of its duration: 19 keeps snapshots
/// to ~5% of the time.
const PAUSE_FACTOR: u32 = 19;
/// Runs with fewer tasks are never paced: a snapshot of them costs little.
const PACE_FROM: usize = 10_000;
/// A clean stop skips its snapshot when the records since the newest durable one are
/// fewer than `every / TINY_TAIL_PER_PERIOD` (1,000 at the default period): the next
/// open folds them for less than writing the whole state again costs (a finished run
/// resumed adds one record, and a snapshot of 250,000 tasks was a sixth of `resume`).
/// A period of 0 (snapshots only at a stop) or under this many records never skips.
const TINY_TAIL_PER_PERIOD: u64 = 50;

impl Snapshots {
    pub(super) fn new(every: u64) -> Snapshots {
        Snapshots {
            every,
            from: None,
            written: None,
            writing: None,
            took_us: Arc::new(AtomicU64::new(0)),
            not_before: None,
            durable: Arc::new(AtomicU64::new(0)),
            roll_past: roll::roll_bytes(),
            rolled_after: 0,
            opened_from: None,
        }
    }

    /// The state was opened from the snapshot after record `seq` (none: from the log).
    pub(super) fn opened_from(&mut self, seq: Option<u64>) {
        self.opened_from = seq;
    }

    /// True when a stop at `at` may leave its records to the next open's fold: a durable
    /// snapshot (this manager's or the one it opened from) is at most a tiny tail behind.
    fn tail_is_tiny(&self, at: u64) -> bool {
        let newest = self.durable.load(Ordering::Acquire).max(self.opened_from.unwrap_or(0));
        newest > 0 && at.saturating_sub(newest) < self.every / TINY_TAIL_PER_PERIOD
    }

    /// Whether [`Snapshots::after_batch`] at `at` would start a snapshot or
    /// [`Snapshots::roll_if_due`] roll a log of `live_len` bytes. Both take the state
    /// and the log as durable, so the engine first lets its batches in flight become
    /// durable (`in_flight`); a finished snapshot's pacing is only decided by
    /// `after_batch`, so this may say yes once for nothing (a wait for one commit).
    pub(super) fn due(&self, at: Option<LogPosition>, live_len: Option<u64>) -> bool {
        let snapshot = at.is_some_and(|at| {
            let from = self.from.unwrap_or(at.seq);
            self.every != 0
                && at.seq >= from.saturating_add(self.every)
                && self.writing.as_ref().is_none_or(|w| w.is_finished())
                && self.not_before.is_none_or(|t| Instant::now() >= t)
        });
        let roll = match (self.roll_past, live_len) {
            (Some(past), Some(len)) => len > past && self.durable.load(Ordering::Acquire) > self.rolled_after,
            _ => false,
        };
        snapshot || roll
    }

    /// After a committed batch: rolls the live log into the archive (DESIGN §6) when it
    /// is past its size and a snapshot newer than the last roll is durably written
    /// (opening then starts from it, never from the archive). The engine's own writer
    /// makes the new file and adopts it, so its replaced-log check never fires. A roll
    /// that fails changes nothing (a warning; rolling stops for this manager).
    pub(super) async fn roll_if_due(&mut self, dir: &Path, store: &mut dyn EventStore) {
        let (Some(past), Some(len)) = (self.roll_past, store.live_len()) else { return };
        let durable = self.durable.load(Ordering::Acquire);
        if len <= past || durable <= self.rolled_after {
            return;
        }
        self.rolled_after = durable;
        if let Err(e) = store.roll(dir).await {
            tracing::warn!(
                "{}: cannot roll the event log into the archive ({e}); the run goes on in the same log",
                dir.display()
            );
            self.roll_past = None;
        }
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
        if let Some(writing) = &self.writing {
            if !writing.is_finished() {
                return;
            }
            let took = Duration::from_micros(self.took_us.load(Ordering::Acquire));
            let paced = took >= SLOW && state.tasks.len() >= PACE_FROM;
            self.not_before = paced.then(|| Instant::now() + took * PAUSE_FACTOR);
            self.writing = None;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let started = Instant::now();
        (self.from, self.written) = (Some(at.seq), Some(at.seq));
        let (dir, state, durable) = (dir.to_path_buf(), state.clone(), self.durable.clone());
        let (cloned_in, took_us) = (started.elapsed(), self.took_us.clone());
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let writing = Instant::now();
            if write_or_warn(&dir, &state, at) {
                durable.fetch_max(at.seq, Ordering::AcqRel);
            }
            let took = cloned_in + writing.elapsed();
            took_us.store(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Release);
        }));
    }

    /// At a clean stop: waits for a snapshot being written, then writes one of the
    /// final state unless the last one is of it already or only a tiny tail behind it
    /// ([`TINY_TAIL_PER_PERIOD`]). The state is moved to the
    /// writer's thread and given back, not cloned: at the stop a copy of every task
    /// was the manager's (and `resume`'s) peak memory (issue 14).
    pub(super) async fn at_stop(&mut self, dir: &Path, state: RunState, at: Option<LogPosition>) -> RunState {
        if let Some(writing) = self.writing.take() {
            let _ = writing.await;
        }
        let Some(at) = at else { return state };
        if self.written == Some(at.seq) {
            return state;
        }
        let dir = dir.to_path_buf();
        if self.tail_is_tiny(at.seq) {
            // No snapshot for a tiny tail, but a run with no task index at all (one
            // from before the index, or whose index was deleted) gets one here, as
            // the skipped snapshot would have written it: otherwise a finished run
            // that is only ever resumed would never have one. One behind by a tiny
            // tail is left as it is: readers sift what follows it.
            if dir.join(task_index::INDEX_FILE).exists() {
                return state;
            }
            let indexed = tokio::task::spawn_blocking(move || {
                index_or_warn(&dir, &state, at);
                state
            });
            return indexed.await.expect("the index writer does not panic");
        }
        self.written = Some(at.seq);
        let written = tokio::task::spawn_blocking(move || {
            write_or_warn(&dir, &state, at);
            state
        });
        written.await.expect("the snapshot writer does not panic")
    }
}

/// Writes a snapshot and brings the task index up to it, side by side (neither reads
/// the other: the index is built from the log); true once the snapshot is durable.
/// At a clean stop both are what the run's end waits for (P1: 2 ms each for 2,000
/// tasks), so they overlap on the box's cores rather than add up.
fn write_or_warn(dir: &Path, state: &RunState, at: LogPosition) -> bool {
    let written = std::thread::scope(|scope| {
        // A thread that cannot start (a process limit): the index after the snapshot.
        let index = std::thread::Builder::new().spawn_scoped(scope, || index_or_warn(dir, state, at));
        let written = snapshot::write(dir, state, at);
        if index.is_err() {
            index_or_warn(dir, state, at);
        }
        written
    });
    if let Err(e) = &written {
        tracing::warn!(
            "{}: cannot write the snapshot after record {} ({e}); the run goes on, and the next open folds more of the log",
            dir.display(),
            at.seq
        );
    }
    written.is_ok()
}

/// Brings the task index up to record `at`. The index is a cache for `inspect TASK`
/// and the TUI's histories: one not written is a warning.
fn index_or_warn(dir: &Path, state: &RunState, at: LogPosition) {
    if let Err(e) = task_index::extend(dir, state, at) {
        tracing::warn!("{}: cannot write the task index after record {} ({e})", dir.display(), at.seq);
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn state_of(tasks: usize) -> RunState {
        let mut text = String::from("[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n");
        for i in 0..tasks {
            let _ = write!(text, "[[task]]\nid = \"t{i}\"\n");
        }
        let workflow = crate::config::parse(&text, "wf.toml", Path::new("/")).expect("valid");
        RunState::new("r".into(), Arc::new(workflow))
    }

    fn at(seq: u64) -> Option<LogPosition> {
        Some(LogPosition { seq, start: 0, end: 1, crc: 0 })
    }

    /// Starts the snapshot due at record 3, waits for its writer, then says it was slow.
    async fn after_a_slow_snapshot(dir: &Path, state: &RunState) -> Snapshots {
        let mut snapshots = Snapshots::new(2);
        snapshots.roll_past = None;
        snapshots.after_batch(dir, state, at(1));
        snapshots.after_batch(dir, state, at(3));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !snapshots.writing.as_ref().expect("a snapshot was due").is_finished() {
            assert!(Instant::now() < deadline, "the snapshot writer never finished");
            tokio::task::yield_now().await;
        }
        snapshots.took_us.store(1_000_000, Ordering::Release);
        snapshots
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_slow_snapshot_pauses_a_large_run_and_never_a_small_one() {
        for (tasks, paced) in [(3, false), (PACE_FROM, true)] {
            let dir = tempfile::tempdir().unwrap();
            let state = state_of(tasks);
            let mut snapshots = after_a_slow_snapshot(dir.path(), &state).await;
            snapshots.after_batch(dir.path(), &state, at(5));
            assert_eq!(snapshots.not_before.is_some(), paced, "{tasks} tasks after a 1 s snapshot");
            // A paused schedule starts nothing; a plain one starts the next snapshot.
            assert_eq!(snapshots.written, Some(if paced { 3 } else { 5 }), "{tasks} tasks");
        }
    }
}
