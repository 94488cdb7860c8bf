//! Time travel in bounded time. The live model keeps checkpoints of the run as of
//! every `spacing` records (the state and its caches, without the workers' output),
//! so moving the cursor to record N clones the nearest checkpoint at or before N and
//! folds at most `spacing` records; stepping forward folds only the records stepped
//! over. Entering time travel folds nothing: the live model is the run as of the
//! newest record. Checkpoints are whole states, so their number is bounded
//! ([`MAX_CHECKPOINTS`], fewer for runs with many tasks): past the bound every other
//! one is dropped and the spacing doubles, so a step costs at most `spacing` folds
//! with `spacing` ≤ 2 × records / checkpoints.
//!
//! While travelling, the past is what the screens see (`Fleet::shown`) and the live
//! model is parked here; records that arrive meanwhile are folded into the parked
//! one, and leaving time travel swaps it back.

use std::mem;

use super::{AsOf, Fleet, FoldError};

/// Records between checkpoints at first.
pub const CHECKPOINT_EVERY: usize = 4096;
/// Checkpoints kept at most (fewer when the run has many tasks, see `max_checkpoints`).
pub const MAX_CHECKPOINTS: usize = 32;
/// Task copies all checkpoints may hold together: bounds their memory by the run's
/// size (a 100,000-task run keeps 20 checkpoints, a small run [`MAX_CHECKPOINTS`]).
const TASK_COPIES: usize = 2_000_000;

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
        if self.checkpoints.len() > max_checkpoints(live.state.tasks.len()) {
            // Thinning keeps every second checkpoint: the spacing doubles and the
            // checkpoints stay evenly spread over the whole log.
            self.spacing *= 2;
            let spacing = self.spacing;
            self.checkpoints.retain(|(at, _)| at.is_multiple_of(spacing));
        }
    }
}

/// Checkpoints kept for a run of `tasks` tasks.
fn max_checkpoints(tasks: usize) -> usize {
    (TASK_COPIES / tasks.max(1)).clamp(4, MAX_CHECKPOINTS)
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
