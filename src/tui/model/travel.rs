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

use std::mem::{self, size_of};

use super::{AsOf, Fleet, FoldError, Live};

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
#[derive(Debug, Clone)]
pub(super) struct Travel {
    /// Records between checkpoints now (doubles when the checkpoints are thinned).
    spacing: usize,
    /// (records folded, the run as of then), oldest first.
    checkpoints: Vec<(usize, AsOf)>,
    /// While travelling: records folded in the past shown, and the live model.
    parked: Option<(usize, Box<AsOf>)>,
    /// Records folded for time travel so far (tests and benches check a step's cost).
    folds: u64,
}

impl Default for Travel {
    fn default() -> Travel {
        Travel { spacing: CHECKPOINT_EVERY, checkpoints: Vec::new(), parked: None, folds: 0 }
    }
}

impl Travel {
    /// The live model while it is parked (time travel on).
    pub(super) fn parked_live(&mut self) -> Option<&mut AsOf> {
        self.parked.as_mut().map(|(_, live)| live.as_mut())
    }

    /// After the live model folded its `len`th record: a checkpoint when due.
    pub(super) fn after_apply(&mut self, shown: &AsOf, len: usize) {
        if !len.is_multiple_of(self.spacing) {
            return;
        }
        let live = match &self.parked {
            Some((_, live)) => live.as_ref(),
            None => shown,
        };
        self.checkpoints.push((len, live.replayed()));
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
}

/// Bytes of `as_of` that `newer` does not share: its state's (see
/// `RunState::bytes_apart_from`) and its caches, which a clone copies whole.
fn bytes_apart_from(as_of: &AsOf, newer: &AsOf) -> usize {
    const ENTRY: usize = 32; // a set's or map's entry with its share of the nodes
    let sparkline = as_of.queue_depth.len() * size_of::<(u64, u64)>()
        + as_of.pool_depth.iter().map(|p| size_of::<Vec<u64>>() + p.len() * size_of::<u64>()).sum::<usize>()
        + as_of.completions.len() * size_of::<u64>();
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

    /// Shows the run as of its first `n` records (clamped to the log), or the live run
    /// for None. Folds at most [`Fleet::checkpoint_spacing`] records.
    pub fn travel_to(&mut self, wanted: Option<usize>) -> Result<(), FoldError> {
        let Some(n) = wanted else {
            if let Some((_, live)) = self.travel.parked.take() {
                self.shown = *live;
            }
            return Ok(());
        };
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
                    None => AsOf::first(&self.records[0])?,
                };
                start
            }
        };
        for record in &self.records[from..n] {
            self.shown.fold(record)?;
        }
        self.travel.folds += (n - from) as u64;
        if let Some((cursor, _)) = &mut self.travel.parked {
            *cursor = n;
        }
        Ok(())
    }
}
