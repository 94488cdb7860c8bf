//! Attempts start once their `attempt_started` is written, not once it is durable
//! (issue 14, P1). The fdatasync of the batch (0.2 ms on a quiet disk, 4 ms and more
//! under load) then runs while the processes start, instead of in front of them:
//! every slot that ended during a commit used to idle for the next one too.
//!
//! What still holds, and why:
//! - **The record is in the file before the process exists.** The engine spawns only
//!   after the journal thread's `write` returned and the log's path was checked, so
//!   a crash of the manager alone (SIGKILL, a panic, the OOM killer: the crashes a
//!   worker can cause) leaves the record in the kernel's page cache: `resume` reads
//!   the attempt as in flight, hands it back uncharged, and counts it towards the
//!   poison pill (DESIGN §5) exactly as before. A failed write (a full disk, a
//!   replaced log) starts nothing.
//! - **Only a crash of the machine** between the write and the fdatasync can lose
//!   the record. Its process dies with the machine; `resume` finds the task `queued`
//!   and runs it again under the same attempt number: not charged, not counted
//!   towards the poison pill (a task that crashes the *machine* within a
//!   millisecond of its start, three times, is not caught; the window is one
//!   commit). Any process that did survive (the record lost on a machine that kept
//!   running, e.g. a log on a network disk) carries the run's marks and is ended by
//!   `resume`'s sweep before replay (`io::guardian`), as any leftover is.
//! - **Nothing is recorded before its start.** The process exists only once its
//!   `attempt_started` is written, and the journal writes batches in the order the
//!   engine hands them over (while earlier ones wait for their fdatasync,
//!   [`super::in_flight`]), so an attempt's end, output notes and `attempt_spawned`
//!   always follow its `attempt_started` in the log, durable or not.
//! - **Everything else waits for durability**: timers, gates, cancels and stops,
//!   the fan-out (TUI, ctl, subscribers), snapshots, and every effect that reaches
//!   outside this machine: a broker run's attempts are messages other hosts act on,
//!   which outlive a crash of this machine, so they keep the write-ahead; so do the
//!   replicas and judges of consensus tasks (rare, and started from fold state that
//!   other events of the batch change).
//! - **Stops come before starts.** A batch that stops anything (a cancel, an
//!   interruption, a consensus decided, whose losers are stopped) keeps the
//!   write-ahead for its starts too: the slot a stop frees is reused only after the
//!   stop was sent, as before (`engine_consensus`'s one-slot pool test).

use super::Engine;
use crate::core::Event;

impl Engine {
    /// Starts the attempts of a batch that may start before it is durable (see the
    /// module's notes); gives, per event, whether its effect was done.
    pub(super) fn start_early(&mut self, events: &[Event]) -> Vec<bool> {
        if self.state.workflow.head().broker.is_some() || events.iter().any(stops) {
            return vec![false; events.len()];
        }
        events
            .iter()
            .map(|event| match event {
                Event::AttemptStarted { task, attempt, pool } if self.consensus_of(task).is_none() => {
                    self.start_attempt(task, *attempt, pool, false);
                    true
                }
                _ => false,
            })
            .collect()
    }
}

/// Events whose effect stops running work (see `effect` and `replica_effect`).
fn stops(event: &Event) -> bool {
    matches!(
        event,
        Event::TaskCancelled { .. }
            | Event::RunInterrupted { .. }
            | Event::ConsensusReached { .. }
            | Event::ConsensusFailed { .. }
    )
}
