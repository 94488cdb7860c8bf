//! Usage lines of running attempts and gates (DESIGN §13) into the engine: each is recorded as
//! a `usage_recorded` note as it is read, through the engine's one channel, so it is in
//! the log before its attempt's end and the run's budget sees it while attempts run.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Engine, Msg};
use crate::core::agents::carried::Carried;
use crate::core::event::{Event, UsageRecorded};
use crate::io::runner::UsageReport;

/// Records each usage line of an attempt on `pool` as a `usage_recorded` note, as it
/// is read (a refused line is said in the attempt's output by the runner), less what
/// `carried` still holds of an earlier attempt's usage (see [`Engine::carried_usage`]).
pub(super) fn usage_note(
    tx: &mpsc::UnboundedSender<Msg>,
    task: &str,
    attempt: u32,
    pool: &str,
    carried: Option<Carried>,
) -> UsageReport {
    usage_report(tx, task, attempt, pool, None, carried)
}

/// [`usage_note`] for gate `gate` (1-based) of the task's attempt: its spend is the
/// task's (its budget, its pool's sum: `pool` must be one of the run's), and the event
/// says which gate spent it.
pub(super) fn gate_usage_note(
    tx: &mpsc::UnboundedSender<Msg>,
    task: &str,
    attempt: u32,
    pool: &str,
    gate: u32,
) -> UsageReport {
    usage_report(tx, task, attempt, pool, Some(gate), None)
}

fn usage_report(
    tx: &mpsc::UnboundedSender<Msg>,
    task: &str,
    attempt: u32,
    pool: &str,
    gate: Option<u32>,
    carried: Option<Carried>,
) -> UsageReport {
    let (tx, task, pool) = (tx.clone(), task.to_string(), pool.to_string());
    let carried = carried.map(Mutex::new);
    Arc::new(move |line| {
        if let Ok(mut usage) = line {
            if let Some(carried) = &carried {
                let mut carried = carried.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                usage = carried.take(&usage);
            }
            let mut event = UsageRecorded::new(task.clone(), attempt, pool.clone(), &usage);
            event.gate = gate;
            let _ = tx.send(Msg::Note(Event::UsageRecorded(event)));
        }
    })
}

impl Engine {
    /// What task `task`'s next attempt on `pool` must not count again: when it continues
    /// the agent session of earlier attempts and the preset reports the session's
    /// running total (codex), the usage those attempts recorded. Asked before the
    /// attempt is spawned (which uses up the resume).
    pub(super) fn carried_usage(&self, task: &str, pool: &str) -> Option<Carried> {
        let i = self.state.task_index(task)?;
        self.state.session_to_resume(i)?;
        let wf = &self.state.workflow;
        let agent = wf.pool_index(pool).and_then(|p| wf.pools[p].agent.as_ref())?;
        agent.preset.usage_is_session_total().then(|| Carried::new(self.state.session_usage(i)))
    }
}
