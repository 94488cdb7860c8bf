//! Time travel in bounded time. The live model keeps checkpoints of the run as of
//! every `spacing` records (the state and its caches, without the workers' output),
//! so moving the cursor to record N clones the nearest checkpoint at or before N and
//! folds at most `spacing` records; stepping forward folds only the records stepped
//! over. Entering time travel folds nothing: the live model is the run as of the
//! newest record.
//!
//! A checkpoint is a clone of the live state, whose tasks are copy-on-write chunks
//! (`core::state::Chunked`): it shares every chunk the run has not written since, so
//! what it holds is what changed in its span, not the whole run. Checkpoints are
//! bounded by that: at most [`MAX_CHECKPOINTS`], and at most [`CHECKPOINT_BYTES`]
//! that they do not share with the next newer copy (a run that writes every task in
//! every span keeps fewer). Past a bound every other one is dropped and the spacing
//! doubles, so a step costs a clone (O(chunks) plus the queue) and at most `spacing`
//! folds, with `spacing` ≤ 2 × records / checkpoints.
//!
//! While travelling, the past is what the screens see (`Fleet::shown`) and the live
//! model is parked here; records that arrive meanwhile are folded into the parked
//! one, and leaving time travel swaps it back.
//!
//! The records come from the model's [`Log`]: in memory, or read from the log on
//! disk. A model opened on a run folder folded none of its records, so it has no
//! checkpoints at first: the first time travel (or a history step's task) asks for
//! them, and the owner loop builds them by one pass over the log in bounded slices
//! ([`Fleet::index_some`]), the screens staying live meanwhile; a move of the cursor
//! then reads only the records it folds.

use std::mem::{self, size_of};
use std::sync::atomic::{AtomicBool, Ordering};

use super::log::Log;
use super::{AsOf, Fleet, FoldError, Live};
use crate::core::Task;

/// Records between checkpoints at first.
pub const CHECKPOINT_EVERY: usize = 4096;
/// Checkpoints kept at most: at 1,000,000 records the spacing stays 8,192 (a worst
/// step back ~8 ms of fold).
pub const MAX_CHECKPOINTS: usize = 128;
/// Checkpoints kept whatever their memory (the spacing stays ≤ records / 2).
const MIN_CHECKPOINTS: usize = 4;
/// Bytes all checkpoints may hold apart from each other and the live run (see
/// `RunState::bytes_apart_from`): about what the old bound of 2,000,000 task copies
/// held, which at 250,000 tasks was 7 checkpoints and now is 128 when the run writes
/// a few thousand tasks a span.
pub const CHECKPOINT_BYTES: usize = 512 << 20;

/// Checkpoints, and the live model while a past one is shown.
#[derive(Debug)]
pub(super) struct Travel {
    /// Records between checkpoints now (doubles when the checkpoints are thinned).
    spacing: usize,
    /// (records folded, the run as of then), oldest first.
    checkpoints: Vec<(usize, AsOf)>,
    /// While travelling: records folded in the past shown, and the live model.
    parked: Option<(usize, Box<AsOf>)>,
    /// Records folded for time travel so far (tests and benches check a step's cost).
    folds: u64,
    /// True once the checkpoints cover the log (from the start for a model that
    /// folded every record; after the indexing pass for one opened on a folder).
    indexed: bool,
    /// The indexing pass under way: records folded, and the run as of then.
    pass: Option<(usize, Box<AsOf>)>,
    /// Something asked for checkpoints before the log was indexed.
    wanted: AtomicBool,
}

impl Clone for Travel {
    fn clone(&self) -> Travel {
        Travel {
            spacing: self.spacing,
            checkpoints: self.checkpoints.clone(),
            parked: self.parked.clone(),
            folds: self.folds,
            indexed: self.indexed,
            pass: self.pass.clone(),
            wanted: AtomicBool::new(self.wanted.load(Ordering::Relaxed)),
        }
    }
}

impl Default for Travel {
    fn default() -> Travel {
        Travel {
            spacing: CHECKPOINT_EVERY,
            checkpoints: Vec::new(),
            parked: None,
            folds: 0,
            indexed: true,
            pass: None,
            wanted: AtomicBool::new(false),
        }
    }
}

impl Travel {
    /// The live model while it is parked (time travel on).
    pub(super) fn parked_live(&mut self) -> Option<&mut AsOf> {
        self.parked.as_mut().map(|(_, live)| live.as_mut())
    }

    /// No checkpoint until the log on disk is indexed (by [`Fleet::index_some`]).
    pub(super) fn indexed_later() -> Travel {
        Travel { indexed: false, ..Travel::default() }
    }

    /// The live model: parked while travelling, else the one shown.
    pub(super) fn live<'a>(&'a self, shown: &'a AsOf) -> &'a AsOf {
        match &self.parked {
            Some((_, live)) => live.as_ref(),
            None => shown,
        }
    }

    /// After the live model folded its `len`th record: a checkpoint when due. Before
    /// the log is indexed the indexing pass makes them (it reads this record too).
    pub(super) fn after_apply(&mut self, shown: &AsOf, len: usize) {
        if !self.indexed {
            return;
        }
        // The parked model is taken out while a checkpoint is kept: the bound reads it.
        let parked = self.parked.take();
        let live = parked.as_ref().map_or(shown, |(_, live)| live.as_ref());
        if let Some(checkpoint) = self.due(live, len) {
            self.keep(checkpoint, len, live);
        }
        self.parked = parked;
    }

    /// A copy of `as_of` to keep when a checkpoint is due after `len` records.
    fn due(&self, as_of: &AsOf, len: usize) -> Option<AsOf> {
        len.is_multiple_of(self.spacing).then(|| as_of.replayed())
    }

    /// Keeps the run as of `len` records as a checkpoint (thinning them past the bound).
    fn keep(&mut self, checkpoint: AsOf, len: usize, live: &AsOf) {
        self.checkpoints.push((len, checkpoint));
        while self.checkpoints.len() > MIN_CHECKPOINTS
            && (self.checkpoints.len() > MAX_CHECKPOINTS || self.held_bytes(live) > CHECKPOINT_BYTES)
        {
            // Thinning keeps every second checkpoint: the spacing doubles and the
            // checkpoints stay evenly spread over the whole log.
            self.spacing *= 2;
            let spacing = self.spacing;
            self.checkpoints.retain(|(at, _)| at.is_multiple_of(spacing));
        }
    }

    /// Bytes the checkpoints hold apart from each other and from `live`: each one's
    /// unshared part against the next newer copy (shared chunks are counted once, by
    /// the newest copy that holds them; the live run's are not counted).
    pub(super) fn held_bytes(&self, live: &AsOf) -> usize {
        let newer = self.checkpoints.iter().skip(1).map(|(_, c)| c).chain([live]);
        self.checkpoints.iter().zip(newer).map(|((_, c), newer)| bytes_apart_from(c, newer)).sum()
    }

    /// Task `i` as of the first `n` records, folded from the nearest checkpoint;
    /// `None` (and the index asked for) before the log is indexed.
    pub(super) fn task_after(&self, records: &Log, n: usize, i: usize) -> Option<Task> {
        if !self.indexed {
            self.wanted.store(true, Ordering::Relaxed);
            return None;
        }
        let checkpoint = self.checkpoints.iter().rev().find(|(c, _)| *c <= n);
        let (start, mut state) = match checkpoint {
            Some((c, past)) => (*c, past.state.clone()),
            None => {
                let first = records.first().ok()?;
                (1, crate::core::RunState::from_first(&first.event).ok()?)
            }
        };
        records
            .for_each(start, n, |r| {
                state.apply(&r.event, r.ts).map_err(|e| FoldError { seq: r.seq, message: e.to_string() })
            })
            .ok()?;
        state.tasks.get(i).cloned()
    }
}

/// Bytes of `as_of` that `newer` does not share: its state's (see
/// `RunState::bytes_apart_from`) and its caches, which a clone copies whole.
fn bytes_apart_from(as_of: &AsOf, newer: &AsOf) -> usize {
    const ENTRY: usize = 32; // a set's or map's entry with its share of the nodes
    let sparkline = as_of.queue_depth.len() * size_of::<(u64, u64)>()
        + as_of.pool_depth.iter().map(|p| size_of::<Vec<u64>>() + p.len() * size_of::<u64>()).sum::<usize>()
        + as_of.completions.len() * size_of::<u64>()
        + as_of.timeline.bytes();
    let live = as_of.live.keys().map(|task| size_of::<(String, Live)>() + task.len()).sum::<usize>();
    let dead = as_of.dead.values().map(|why| ENTRY + why.len()).sum::<usize>();
    let sets = (as_of.running.len() + as_of.held.len() + as_of.held_at.len()) * ENTRY;
    as_of.state.bytes_apart_from(&newer.state) + sparkline + live + dead + sets
}

impl Fleet {
    /// Time travel's cursor: the number of records the shown run has folded (None =
    /// live).
    pub fn travelling(&self) -> Option<usize> {
        self.travel.parked.as_ref().map(|(n, _)| *n)
    }

    /// Records folded for time travel so far: a move of the cursor costs at most
    /// [`Fleet::checkpoint_spacing`] of them.
    pub fn travel_folds(&self) -> u64 {
        self.travel.folds
    }

    /// Records between checkpoints now.
    pub fn checkpoint_spacing(&self) -> usize {
        self.travel.spacing
    }

    /// Checkpoints held now.
    pub fn checkpoints(&self) -> usize {
        self.travel.checkpoints.len()
    }

    /// Bytes the checkpoints hold apart from each other and the live run, estimated
    /// (bounded by [`CHECKPOINT_BYTES`] once there are more than a few).
    pub fn checkpoint_bytes(&self) -> usize {
        let live = self.travel.parked.as_ref().map_or(&self.shown, |(_, live)| live.as_ref());
        self.travel.held_bytes(live)
    }

    /// While the log on disk is being indexed for time travel, or is wanted to be:
    /// (records indexed, records in the log). The owner loop then calls
    /// [`Fleet::index_some`] until this is `None`.
    pub fn indexing(&self) -> Option<(usize, usize)> {
        let travel = &self.travel;
        if travel.indexed || (travel.pass.is_none() && !travel.wanted.load(Ordering::Relaxed)) {
            return None;
        }
        Some((travel.pass.as_ref().map_or(0, |(n, _)| *n), self.records.len()))
    }

    /// Indexes up to `budget` more records of the log on disk for time travel: folds
    /// them from where the pass stopped and keeps checkpoints as the live model does.
    /// The last slice reaches the records that arrived meanwhile, so the checkpoints
    /// then cover the log and the live model keeps them from there.
    pub fn index_some(&mut self, budget: usize) -> Result<(), FoldError> {
        if self.travel.indexed {
            return Ok(());
        }
        let (mut done, mut as_of) = match self.travel.pass.take() {
            Some(pass) => pass,
            None => (1, Box::new(AsOf::first(&self.records.first()?)?)),
        };
        let to = (done + budget.max(1)).min(self.records.len());
        let travel = &mut self.travel;
        self.records.for_each(done, to, |record| {
            as_of.fold(record)?;
            done += 1;
            if let Some(checkpoint) = travel.due(&as_of, done) {
                travel.keep(checkpoint, done, &as_of);
            }
            Ok(())
        })?;
        if done >= self.records.len() {
            self.travel.indexed = true;
            self.travel.wanted.store(false, Ordering::Relaxed);
        } else {
            self.travel.pass = Some((done, as_of));
        }
        Ok(())
    }

    /// Shows the run as of its first `n` records (clamped to the log), or the live run
    /// for None. Folds at most [`Fleet::checkpoint_spacing`] records.
    pub fn travel_to(&mut self, wanted: Option<usize>) -> Result<(), FoldError> {
        let Some(n) = wanted else {
            if let Some((_, live)) = self.travel.parked.take() {
                self.shown = *live;
            }
            return Ok(());
        };
        if !self.travel.indexed {
            // Shown live until the log is indexed; the owner loop asks again then.
            self.travel.wanted.store(true, Ordering::Relaxed);
            return Ok(());
        }
        let n = n.clamp(1, self.records.len());
        let total = self.records.len();
        let at = match &mut self.travel.parked {
            Some((at, _)) => *at,
            None => {
                // Entering: the live model is the run as of the newest record.
                let past = self.shown.replayed();
                let live = mem::replace(&mut self.shown, past);
                self.travel.parked = Some((total, Box::new(live)));
                total
            }
        };
        if n == at {
            return Ok(());
        }
        let from = if n == total {
            // The newest record: the live model as it is, without its output.
            let live = self.travel.parked.as_ref().map(|(_, l)| l.replayed());
            self.shown = live.unwrap_or_else(|| self.shown.replayed());
            total
        } else {
            let checkpoint = self.travel.checkpoints.iter().rev().find(|(c, _)| *c <= n);
            let start = checkpoint.map_or(1, |(c, _)| *c);
            if n > at && (at >= start || n - at <= self.travel.spacing) {
                // Forward from the cursor: within the bound, and a checkpoint's clone
                // costs more than folding a few records (a step → never clones).
                at
            } else {
                self.shown = match checkpoint {
                    Some((_, past)) => past.clone(),
                    None => AsOf::first(&self.records.first()?)?,
                };
                start
            }
        };
        let shown = &mut self.shown;
        self.records.for_each(from, n, |record| shown.fold(record))?;
        self.travel.folds += (n - from) as u64;
        if let Some((cursor, _)) = &mut self.travel.parked {
            *cursor = n;
        }
        Ok(())
    }
}
