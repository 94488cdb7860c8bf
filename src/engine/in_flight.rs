//! Batches in flight: written to the log, not yet durable (issue 14, P1).
//!
//! A batch's effects wait for its fdatasync, but the engine need not wait for ever:
//! once a batch is written (and its local attempts started, [`super::early`]) and its
//! fdatasync has taken longer than a usual one ([`PATIENCE`]), the engine goes on
//! folding and writing the next batches while the disk works, and does each batch's
//! waiting effects when its fdatasync returns, oldest first. On this box's virtual disk
//! an fdatasync takes 1.5 ms on average and now and then 20–500 ms; when the engine
//! waited for each one, every slot that ended meanwhile stayed empty (benchmark P1
//! measured both cores idle for 350 ms at a time, and a tenth of the run's CPU idle).
//! A usual fdatasync is still waited for: what arrives meanwhile makes the next batch
//! big, which is what carries throughput on persistent workers.
//!
//! What keeps this as safe as one batch at a time:
//! - **Effects keep their order and their durability.** The journal writes batches in
//!   the order handed over and tells them durable in that order; each batch's effects
//!   (timers, gates, stops, the fan-out, snapshots) run only after its own fdatasync,
//!   and after every earlier batch's. A crash of the machine loses a suffix of the
//!   batches in flight, none of whose waiting effects happened.
//! - **Only harmless lateness overlaps.** A batch lets later ones be taken while it
//!   waits only when what it still has to do may run after later batches were folded:
//!   effects that look at the state when they run (a gate starts only if the task is
//!   still at it) or that set a timer for a fixed time. A batch that stops anything,
//!   starts anything on the write-ahead (a broker's message, a consensus's replicas)
//!   or resumes a broker's attempts is waited for before the next, as before.
//! - **Readers, snapshots and rolls see durable state.** A reader (`EngineHandle::read`)
//!   is answered, and a snapshot or a roll of the log started, only when nothing is in
//!   flight; while one waits, no new batch is taken, so they are not starved.

use std::collections::VecDeque;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::{Engine, EngineError};
use crate::core::Event;
use crate::io::journal::{JournalError, Record, Synced};

/// Batches written but not yet durable, at most.
const MAX_IN_FLIGHT: usize = 16;

/// How long the engine waits for a batch's fdatasync before it takes later batches
/// anyway. A usual fdatasync (0.2–2 ms here) is waited for, as it always was: the
/// messages that arrive meanwhile make the next batch, and big batches are what
/// carry 30k tasks/s on persistent workers (taking each message at once cost 6 %
/// of that). Only a slow one (tens to hundreds of ms when the disk hiccups) is
/// overtaken.
const PATIENCE: Duration = Duration::from_millis(3);

/// A batch written, waiting for its fdatasync.
pub(super) struct Unsynced {
    pub(super) synced: Synced,
    pub(super) events: Vec<Event>,
    /// Per event, whether its effect was done already (an attempt started early).
    pub(super) done: Vec<bool>,
    pub(super) first_seq: u64,
    /// Its records' timestamp.
    pub(super) now: u64,
    /// Whether it waits for an fdatasync at all.
    pub(super) durable: bool,
    /// When its write was handed over (tokio's clock: paused in tests).
    pub(super) writing: Instant,
    /// Whether later batches may be taken while it waits (see the module's notes).
    pub(super) overlaps: bool,
}

/// The batches in flight, oldest first.
#[derive(Default)]
pub(super) struct InFlight(VecDeque<Unsynced>);

impl InFlight {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn push(&mut self, batch: Unsynced) {
        self.0.push_back(batch);
    }

    /// Whether a new batch may be taken while these wait (once the oldest's patience
    /// is over).
    fn admit(&self) -> bool {
        self.0.len() < MAX_IN_FLIGHT && self.0.iter().all(|b| b.overlaps)
    }

    /// When the oldest batch's patience is over.
    fn patience_over(&self) -> Option<Instant> {
        self.0.front().map(|b| b.writing + PATIENCE)
    }

    /// The oldest batch's fdatasync (pending for ever when none is in flight).
    pub(super) fn oldest_synced(&mut self) -> impl Future<Output = Result<(), JournalError>> + '_ {
        std::future::poll_fn(move |cx| match self.0.front_mut() {
            Some(batch) => batch.synced.as_mut().poll(cx),
            None => Poll::Pending,
        })
    }
}

/// When the loop may take a new batch.
pub(super) enum Take {
    Now,
    /// Once the oldest batch's patience is over (unless it is durable before).
    From(Instant),
    /// Once the batches in flight are durable.
    AfterSync,
}

impl Engine {
    /// When the loop may take a new batch (see the module's notes).
    pub(super) fn take(&self) -> Take {
        let Some(over) = self.in_flight.patience_over() else { return Take::Now };
        let may = self.in_flight.admit()
            && self.readers.is_empty()
            && !self.snapshots.due(self.store.position(), self.store.live_len());
        match (may, over <= Instant::now()) {
            (false, _) => Take::AfterSync,
            (true, true) => Take::Now,
            (true, false) => Take::From(over),
        }
    }

    /// Whether a batch whose effects `done` are done may let later batches overtake
    /// the rest of its effects.
    pub(super) fn may_overlap(&self, events: &[Event], done: &[bool]) -> bool {
        self.replicas.is_idle() && events.iter().zip(done).all(|(event, done)| *done || late_is_harmless(event))
    }

    /// The oldest batch in flight is durable (or could not be made so: `result`): its
    /// waiting effects run, its records go to the fan-out, and with nothing left in
    /// flight a due snapshot or roll starts.
    pub(super) async fn synced(&mut self, result: Result<(), JournalError>) -> Result<(), EngineError> {
        let Some(batch) = self.in_flight.0.pop_front() else { return Ok(()) };
        result?;
        let Unsynced { events, done, first_seq, now, durable, writing, .. } = batch;
        self.next_seq = Some(first_seq + events.len() as u64);
        let took = writing.elapsed();
        for (event, done) in events.iter().zip(done) {
            match done {
                // What `effect` does for every event besides its own (it is state-based).
                true => self.start_seated_judges(),
                false => self.effect(event),
            }
        }
        if durable {
            // What the next batch may wait for (see `commit`).
            let started = events.iter().any(|e| matches!(e, Event::AttemptStarted { .. }));
            self.gather.committed(took, started, self.running.len());
        }
        // Issue 11 (item 8): stop a run whose workers keep failing to start for lack of a resource.
        if self.starved.is_none() {
            self.starved = super::starved::give_up(&self.state, &events, &self.config.state_dir);
            if self.starved.is_some() {
                let _ = self.tx.send(super::Msg::Stop("workers could not start: out of resources".into()));
            }
        }
        let records: std::sync::Arc<[Record]> = events
            .into_iter()
            .enumerate()
            .map(|(k, event)| Record { seq: first_seq + k as u64, ts: now, event })
            .collect();
        self.fanout.publish(records);
        if self.in_flight.is_empty() {
            let at = self.store.position();
            self.snapshots.after_batch(&self.config.state_dir, &self.state, at);
            self.snapshots.roll_if_due(&self.config.state_dir, self.store.as_mut()).await;
        }
        Ok(())
    }
}

/// Events whose effect (`Engine::effect`) may run after later batches were folded:
/// none, a look at the state when it runs, or a timer for a fixed time.
fn late_is_harmless(event: &Event) -> bool {
    matches!(
        event,
        Event::TaskReady { .. }
            | Event::AttemptSpawned { .. }
            | Event::AttemptSucceeded { .. }
            | Event::AttemptFailed { .. }
            | Event::GatePassed { .. }
            | Event::GateFailed { .. }
            | Event::GateError { .. }
            | Event::RetryDue { .. }
            | Event::AttemptStalled { .. }
            | Event::AttemptActive { .. }
            | Event::OutputCaptureFailed { .. }
            | Event::FallbackUsed { .. }
            | Event::BreakerOpened { .. }
            | Event::BreakerHalfOpened { .. }
            | Event::BreakerClosed { .. }
            | Event::UsageRecorded(_)
            | Event::SessionRecorded(_)
            | Event::AttemptFlagged(_)
            | Event::RunFinished { .. }
    )
}
