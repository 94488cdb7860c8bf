//! Usage lines of running attempts and gates (DESIGN §13) into the engine: each is recorded as
//! a `usage_recorded` note as it is read, through the engine's one channel, so it is in
//! the log before its attempt's end and the run's budget sees it while attempts run.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Msg;
use crate::core::event::{Event, UsageRecorded};
use crate::io::runner::UsageReport;

/// Records each usage line of an attempt on `pool` as a `usage_recorded` note, as it
/// is read (a refused line is said in the attempt's output by the runner).
pub(super) fn usage_note(tx: &mpsc::UnboundedSender<Msg>, task: &str, attempt: u32, pool: &str) -> UsageReport {
    gate_usage_note(tx, task, attempt, pool, None)
}

/// [`usage_note`] for gate `gate` (1-based) of the task's attempt, when `Some`: its
/// spend is the task's (its budget, its pool's sum: `pool` must be one of the run's),
/// and the event says which gate spent it.
pub(super) fn gate_usage_note(
    tx: &mpsc::UnboundedSender<Msg>,
    task: &str,
    attempt: u32,
    pool: &str,
    gate: Option<u32>,
) -> UsageReport {
    let (tx, task, pool) = (tx.clone(), task.to_string(), pool.to_string());
    Arc::new(move |line| {
        if let Ok(usage) = line {
            let mut event = UsageRecorded::new(task.clone(), attempt, pool.clone(), &usage);
            event.gate = gate;
            let _ = tx.send(Msg::Note(Event::UsageRecorded(event)));
        }
    })
}
