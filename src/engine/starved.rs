//! Giving up on a run whose workers cannot start (issue 11, item 8). A spawn that
//! fails for lack of a resource (EMFILE, ENFILE, EAGAIN, ENOMEM) is deferred without
//! spending an attempt, which is right for a moment's shortage; but a shortage that
//! lasts used to defer for ever, silently. The core counts a task's deferrals in a
//! row (reset when it starts); at [`DEFERRAL_LIMIT`] the engine stops the run, which
//! stays resumable, and reports why with the limit to raise.
//!
//! The bound is a count, so its duration follows the task's retry policy: with the
//! default one (1 s doubling to 1 min, jittered) ten deferrals take 2 to 4 minutes.

use std::path::Path;

use crate::core::{AfterFailure, Event, RunState};

/// Deferrals in a row of one task after which the run gives up.
pub const DEFERRAL_LIMIT: u32 = 10;

/// Why the run gives up, if `events` (applied to `state` already) deferred a task
/// for the [`DEFERRAL_LIMIT`]-th time in a row.
pub fn give_up(state: &RunState, events: &[Event], dir: &Path) -> Option<String> {
    events.iter().find_map(|event| match event {
        Event::AttemptFailed { task, error, then: AfterFailure::Defer { .. }, .. } => {
            let deferrals = state.tasks[state.task_index(task)?].deferrals;
            (deferrals >= DEFERRAL_LIMIT).then(|| reason(task, deferrals, error, dir))
        }
        _ => None,
    })
}

fn reason(task: &str, deferrals: u32, error: &str, dir: &Path) -> String {
    let advice = if error.contains("too many open files") {
        match crate::io::fdlimit::current() {
            Some(limits) => {
                let more = limits.soft.saturating_mul(2).max(crate::io::fdlimit::BASE);
                format!("The open-file limit is {}: raise it, e.g. `ulimit -n {more}`, then", limits.soft)
            }
            None => "Raise the open-file limit (`ulimit -n`), then".to_string(),
        }
    } else {
        "Free some (processes, memory), then".to_string()
    };
    format!(
        "gave up: task {task:?} could not start {deferrals} times in a row ({error}); nothing was charged. \
         {advice} continue with `pitboss resume {}`",
        dir.display()
    )
}
