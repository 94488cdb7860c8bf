//! `[[notify]]` hooks (DESIGN §12): which records start which command. Plain data,
//! stored with the workflow so that `resume` notifies as the first manager did.
//!
//! An `on` name is an event type (`breaker_opened`, `run_finished`, any name of
//! [`Event::kind`]) or the name of a state a task *enters* (`dead_lettered`,
//! `completed`, `awaiting_approval`, any [`TaskStateName`]). The event names are read
//! from the event enum itself (see [`event_names`]), so an event added later is a valid
//! name at once, with no list here to forget.

use serde::{Deserialize, Serialize};

use crate::core::event::Event;
use crate::core::task::TaskStateName;

/// How long a hook may run when its entry sets no `timeout`.
pub const DEFAULT_NOTIFY_TIMEOUT_MS: u64 = 10_000;
/// Hooks of one entry running at once when it sets no `concurrency`.
pub const DEFAULT_NOTIFY_CONCURRENCY: usize = 4;
/// The most hooks one entry may run at once: a notification is a side job, and a
/// fleet of them must not take the workers' processes and file descriptors.
pub const MAX_NOTIFY_CONCURRENCY: usize = 64;

/// One `[[notify]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifySpec {
    /// Event types and task state names that start the command.
    pub on: Vec<String>,
    /// argv (program first, absolute when the file gave a relative path); never run
    /// through a shell.
    pub command: Vec<String>,
    /// How long one run of the command may take before its process group is killed.
    pub timeout_ms: u64,
    /// Runs of this entry's command at once; further matches wait in a bounded queue.
    pub concurrency: usize,
}

/// Every event type name, as in the log (`run_finished`, `breaker_opened`…).
///
/// serde knows the full list of the enum's tags and says it when asked for a tag that
/// does not exist; reading it from there keeps this list whole as events are added.
/// A unit test checks the list against [`Event::kind`] of known events and that each
/// name is a tag serde accepts.
pub fn event_names() -> Vec<String> {
    let probe = serde_json::json!({ "type": "\u{1}" });
    let Err(error) = serde_json::from_value::<Event>(probe) else { return Vec::new() };
    let message = error.to_string();
    let Some(list) = message.split("expected one of").nth(1) else { return Vec::new() };
    list.split(',')
        .filter_map(|name| name.trim().strip_prefix('`')?.split('`').next().map(str::to_string))
        .filter(|name| !name.is_empty())
        .collect()
}

/// Every task state name (`queued`, `dead_lettered`…).
pub fn state_names() -> Vec<&'static str> {
    TaskStateName::ALL.iter().map(|s| s.as_str()).collect()
}

/// The state named `name`, if it is one.
pub fn state_named(name: &str) -> Option<TaskStateName> {
    TaskStateName::ALL.iter().copied().find(|s| s.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_every_tag_serde_accepts() {
        let names = event_names();
        for known in ["run_started", "attempt_failed", "breaker_opened", "task_held", "run_finished"] {
            assert!(names.iter().any(|n| n == known), "{known} missing from {names:?}");
        }
        assert!(names.len() >= 36, "{names:?}");
        for name in &names {
            // A known tag fails on its missing fields, never as an unknown variant.
            let error = serde_json::from_value::<Event>(serde_json::json!({ "type": name })).err();
            let said = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(!said.contains("unknown variant"), "{name}: {said}");
        }
        let finished = Event::RunFinished { success: true };
        assert!(names.iter().any(|n| n == finished.kind()));
    }

    #[test]
    fn state_names_are_the_states() {
        assert!(state_names().contains(&"dead_lettered"));
        assert_eq!(state_named("awaiting_approval"), Some(TaskStateName::AwaitingApproval));
        assert_eq!(state_named("run_finished"), None);
    }
}
