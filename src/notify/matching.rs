//! Which committed records start which hooks, and what each hook reads.
//!
//! The watcher keeps its own copy of the run's state, folded from the same records
//! the engine commits, so it can tell the state a task *enters* (its state before and
//! after the record) and describe the task as it is after the record. Only the tasks a
//! record can move are compared: the task it names, and tasks it adds (a planner's
//! spawn); a record that names no task (a manager's start) is compared task by task,
//! which is rare.

use serde_json::{json, Value};

use crate::core::task::TaskStateName;
use crate::core::workflow::{state_named, NotifySpec};
use crate::core::RunState;
use crate::io::journal::Record;

/// One hook to start: which `[[notify]]` entry, and the document for its stdin.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Index of the entry in the workflow's `notify`.
    pub entry: usize,
    /// The name that matched.
    pub on: String,
    /// The record's sequence number (for notify.log).
    pub seq: u64,
    /// The task concerned, if any (for notify.log).
    pub task: Option<String>,
    /// `{"on", "record", "task"}`: the hook's stdin.
    pub input: Value,
}

/// What an entry listens for, split once.
struct Wants {
    events: Vec<String>,
    states: Vec<TaskStateName>,
}

/// Folds records and finds the hooks they start.
pub struct Watcher {
    wants: Vec<Wants>,
    state: RunState,
    /// False once a record could not be folded (a bug or a record of a newer build):
    /// event names still match, state names no longer can.
    folding: bool,
}

impl Watcher {
    /// A watcher of `specs` from `state` (the state before the next record).
    pub fn new(specs: &[NotifySpec], state: RunState) -> Watcher {
        let wants = specs
            .iter()
            .map(|s| Wants {
                events: s.on.iter().filter(|n| state_named(n).is_none()).cloned().collect(),
                states: s.on.iter().filter_map(|n| state_named(n)).collect(),
            })
            .collect();
        Watcher { wants, state, folding: true }
    }

    /// The hooks a record the state already holds starts (a new run's first record,
    /// written before the engine started): event names only.
    pub fn observe_folded(&self, record: &Record) -> Vec<Job> {
        self.jobs(record, &[])
    }

    /// Folds `record` and returns the hooks it starts, in entry order. `Err` says why
    /// the record could not be folded (once; state names stop matching after it).
    pub fn observe(&mut self, record: &Record) -> (Vec<Job>, Option<String>) {
        if !self.folding {
            return (self.jobs(record, &[]), None);
        }
        let watch_states = self.wants.iter().any(|w| !w.states.is_empty());
        let named = record.event.task().and_then(|id| self.state.task_index(id));
        let before: Vec<(usize, TaskStateName)> = if !watch_states {
            Vec::new()
        } else if let Some(i) = named {
            vec![(i, self.state.tasks[i].state.name())]
        } else if record.event.task().is_none() {
            self.state.tasks.iter().enumerate().map(|(i, t)| (i, t.state.name())).collect()
        } else {
            Vec::new()
        };
        let known = self.state.tasks.len();
        if let Err(e) = self.state.apply(&record.event, record.ts) {
            self.folding = false;
            let why = format!(
                "record {} ({}) could not be followed: {e}; state names no longer match",
                record.seq,
                record.event.kind()
            );
            return (self.jobs(record, &[]), Some(why));
        }
        let mut entered = Vec::new();
        if watch_states {
            for (i, was) in before {
                let now = self.state.tasks[i].state.name();
                if now != was {
                    entered.push((i, now));
                }
            }
            // A task the record named only now exists (an id added by this record).
            if let Some(i) = record.event.task().and_then(|id| self.state.task_index(id)) {
                if named.is_none() && i >= known {
                    entered.push((i, self.state.tasks[i].state.name()));
                }
            }
            for i in known..self.state.tasks.len() {
                if !entered.iter().any(|(j, _)| *j == i) {
                    entered.push((i, self.state.tasks[i].state.name()));
                }
            }
        }
        (self.jobs(record, &entered), None)
    }

    fn jobs(&self, record: &Record, entered: &[(usize, TaskStateName)]) -> Vec<Job> {
        let mut jobs = Vec::new();
        let kind = record.event.kind();
        for (entry, wants) in self.wants.iter().enumerate() {
            if wants.events.iter().any(|e| e == kind) {
                let task = record.event.task().and_then(|id| self.state.task_index(id));
                jobs.push(self.job(entry, kind, record, task));
            }
            for &(i, state) in entered {
                if wants.states.contains(&state) {
                    jobs.push(self.job(entry, state.as_str(), record, Some(i)));
                }
            }
        }
        jobs
    }

    fn job(&self, entry: usize, on: &str, record: &Record, task: Option<usize>) -> Job {
        let summary = task.map_or(Value::Null, |i| summary(&self.state, i));
        let input = json!({
            "on": on,
            "record": {"seq": record.seq, "ts": record.ts, "event": record.event},
            "task": summary,
        });
        Job { entry, on: on.to_string(), seq: record.seq, task: task.map(|i| self.state.task_id(i).to_string()), input }
    }
}

/// `{id, state, attempts, pool, why, result?}` of task `i` as it is now.
pub fn summary(state: &RunState, i: usize) -> Value {
    let task = &state.tasks[i];
    let mut summary = json!({
        "id": state.task_id(i),
        "state": task.state.name().as_str(),
        "attempts": task.attempts,
        "pool": task.pool,
        "why": task.why(),
    });
    if let (Some(result), Some(map)) = (&task.result, summary.as_object_mut()) {
        map.insert("result".to_string(), result.value());
    }
    summary
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::event::{AfterFailure, Event, FailureClass};
    use crate::core::workflow::Workflow;

    fn workflow() -> Workflow {
        let text = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n";
        crate::config::parse(text, "wf.toml", std::path::Path::new("/")).expect("valid")
    }

    fn spec(on: &[&str]) -> NotifySpec {
        NotifySpec {
            on: on.iter().map(|s| s.to_string()).collect(),
            command: vec!["x".into()],
            timeout_ms: 1,
            concurrency: 1,
        }
    }

    fn record(seq: u64, event: Event) -> Record {
        Record { seq, ts: 1_000 + seq, event }
    }

    fn watcher(on: &[&str]) -> Watcher {
        Watcher::new(&[spec(on)], RunState::new("r".into(), Arc::new(workflow())))
    }

    fn started(task: &str) -> Event {
        Event::AttemptStarted { task: task.into(), attempt: 1, pool: "p".into() }
    }

    fn failed(task: &str, then: AfterFailure) -> Event {
        Event::AttemptFailed {
            task: task.into(),
            attempt: 1,
            class: FailureClass::Worker,
            error: "exit 1".into(),
            exit_code: Some(1),
            signal: None,
            duration_ms: 5,
            output: Default::default(),
            then,
        }
    }

    #[test]
    fn a_state_matches_when_a_task_enters_it_and_not_while_it_stays() {
        let mut w = watcher(&["running", "dead_lettered"]);
        let (jobs, _) = w.observe(&record(2, Event::TaskReady { task: "a".into() }));
        assert!(jobs.is_empty(), "queued is not watched");
        let (jobs, _) = w.observe(&record(3, started("a")));
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].on.as_str(), jobs[0].task.as_deref()), ("running", Some("a")));
        // Still running: a note on the attempt is no new entry.
        let (jobs, _) = w.observe(&record(
            4,
            Event::AttemptSpawned { task: "a".into(), attempt: 1, pid: 9, worker: None, host: None, resumes: None },
        ));
        assert!(jobs.is_empty(), "{jobs:?}");
        let dead = AfterFailure::DeadLetter { reason: "attempts spent".into() };
        let (jobs, _) = w.observe(&record(5, failed("a", dead)));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].on, "dead_lettered");
        assert_eq!(jobs[0].input["record"]["event"]["type"], "attempt_failed");
        assert_eq!(jobs[0].input["record"]["seq"], 5);
        assert_eq!(jobs[0].input["task"]["state"], "dead_lettered");
    }

    #[test]
    fn event_names_match_the_record_type_with_or_without_a_task() {
        let mut w = watcher(&["task_ready", "run_finished"]);
        let (jobs, _) = w.observe(&record(2, Event::TaskReady { task: "b".into() }));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].input["task"]["id"], "b");
        assert_eq!(jobs[0].input["on"], "task_ready");
        let (jobs, _) = w.observe(&record(3, Event::RunFinished { success: false }));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].input["task"], Value::Null);
        assert_eq!(jobs[0].input["record"]["event"]["success"], false);
    }

    #[test]
    fn a_record_that_cannot_be_folded_stops_state_matches_only() {
        let mut w = watcher(&["running", "attempt_started"]);
        let (jobs, why) = w.observe(&record(2, started("a")));
        assert!(why.is_some(), "a blocked task cannot start");
        assert_eq!(jobs.iter().map(|j| j.on.as_str()).collect::<Vec<_>>(), ["attempt_started"]);
        let (_, why) = w.observe(&record(3, started("b")));
        assert!(why.is_none(), "said once");
    }

    #[test]
    fn a_summary_holds_the_result_only_once_there_is_one() {
        let mut state = RunState::new("r".into(), Arc::new(workflow()));
        let s = summary(&state, 0);
        assert_eq!(s, json!({"id": "a", "state": "blocked", "attempts": 0, "pool": null, "why": null}));
        for e in [Event::TaskReady { task: "a".into() }, started("a")] {
            state.apply(&e, 1).unwrap();
        }
        let done = Event::AttemptSucceeded {
            task: "a".into(),
            attempt: 1,
            result: json!({"n": 1}),
            exit_code: Some(0),
            duration_ms: 1,
            output: Default::default(),
        };
        state.apply(&done, 2).unwrap();
        let s = summary(&state, 0);
        assert_eq!(s["state"], "completed");
        assert_eq!((s["attempts"].clone(), s["pool"].clone()), (json!(1), json!("p")));
        assert_eq!(s["result"], json!({"n": 1}));
    }
}
