//! The pure core's handling of gate verdicts: a successful attempt of a task with
//! gates enters `validating`; gates pass in order; a failed gate or one that could not
//! run is a failed attempt (retry, then dead letter naming the gate); verdicts are
//! kept for `feedback`; and a fold of the events gives the live state.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::gates::{feedback, GateOutcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState, TaskStateName};

const WORKFLOW: &str = "[defaults]\nretry = { max_attempts = 2, initial = \"1s\", jitter = false }\n\
    [[pool]]\nname = \"p\"\ncommand = [\"echo\"]\n\
    [[task]]\nid = \"t\"\ngates = [{ command = [\"true\"] }, { command = [\"check\"] }]\n\
    [[task]]\nid = \"after\"\ndepends_on = [\"t\"]\n";

struct Core {
    state: RunState,
    now: u64,
    log: Vec<(Event, u64)>,
}

impl Core {
    fn new() -> Core {
        let workflow = config::parse(WORKFLOW, "gates.toml", Path::new(".")).expect("valid workflow");
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).expect("state");
        let mut core = Core { state, now: 1_000_000, log: vec![(first, 0)] };
        core.batch(Input::Start { pid: 1, version: "t".into(), resumed: false });
        core
    }

    fn batch(&mut self, input: Input) -> Vec<Event> {
        let ctx = StepContext { now_ms: self.now, jitter: 0.0 };
        let mut events = step(&mut self.state, input, ctx).expect("the core accepts its own events");
        events.extend(dispatch(&mut self.state, ctx).expect("dispatch"));
        self.log.extend(events.iter().map(|e| (e.clone(), self.now)));
        events
    }

    fn task(&self, id: &str) -> &pitboss::core::Task {
        &self.state.tasks[self.state.task_index(id).expect("task")]
    }

    fn succeed(&mut self, attempt: u32) -> Vec<Event> {
        let result = serde_json::json!({"n": attempt});
        let outcome = Outcome::Success { result, exit_code: Some(0), duration_ms: 1, output: SmallOutput::default() };
        self.batch(Input::Finished { task: "t".into(), attempt, outcome })
    }

    fn gate(&mut self, attempt: u32, index: usize, outcome: GateOutcome) -> Vec<Event> {
        self.batch(Input::GateDone { task: "t".into(), attempt, index, outcome, duration_ms: 5 })
    }
}

fn passed() -> GateOutcome {
    GateOutcome::Passed { reason: "exit 0".into(), score: None, critique: None }
}

#[test]
fn gates_run_in_order_and_a_failure_is_a_failed_attempt() {
    let mut core = Core::new();
    core.succeed(1);
    assert_eq!(core.task("t").state, TaskState::Validating { attempt: 1, gate: 0 });
    // A verdict for a gate that is not the current one is stale: nothing happens.
    assert!(core.gate(1, 1, passed()).is_empty());
    core.gate(1, 0, passed());
    assert_eq!(core.task("t").state, TaskState::Validating { attempt: 1, gate: 1 });
    assert_eq!(core.task("after").state, TaskState::Blocked, "a validating result does not count yet");
    let critique = "  line one\n\tline two é \u{1b}[0m".to_string();
    let events = core.gate(
        1,
        1,
        GateOutcome::Failed { reason: "exit code 1".into(), score: Some(3), critique: Some(critique.clone()) },
    );
    assert!(matches!(&events[0], Event::GateFailed { error, .. } if error == "gate 2 (command) failed: exit code 1"));
    assert_eq!(core.task("t").state.name(), TaskStateName::RetryWait);
    assert_eq!(core.task("t").result.as_ref().map(|r| r.value()), None, "a result that failed a gate does not count");
    // Every verdict is kept, the critique byte for byte.
    let fb = feedback(core.task("t").verdicts());
    assert_eq!(fb[0]["verdict"], "passed");
    assert_eq!(fb[1]["verdict"], "failed");
    assert_eq!(fb[1]["gate"], "command");
    assert_eq!(fb[1]["score"], 3);
    assert_eq!(fb[1]["critique"].as_str(), Some(critique.as_str()));
    // Attempt 2: a gate that cannot run is a failed attempt too; attempts are spent.
    let due = match core.task("t").state {
        TaskState::RetryWait { due_ms } => due_ms,
        _ => unreachable!(),
    };
    core.now = due;
    core.batch(Input::RetryTimer { task: "t".into(), due_ms: due });
    core.succeed(2);
    core.gate(2, 0, passed());
    let events = core.gate(2, 1, GateOutcome::Error { reason: "command not found: check".into() });
    assert!(matches!(&events[0], Event::GateError { .. }), "{events:?}");
    match &core.task("t").state {
        TaskState::DeadLettered { reason } => {
            assert_eq!(reason, "attempts spent (2/2): gate 2 (command) could not run: command not found: check")
        }
        other => panic!("not dead-lettered: {other:?}"),
    }
    assert_eq!(core.task("after").state.name(), TaskStateName::Skipped);
    // The fold of the log is the live state.
    let mut folded = RunState::from_first(&core.log[0].0).expect("state");
    for (event, ts) in &core.log[1..] {
        folded.apply(event, *ts).expect("the log folds");
    }
    assert_eq!(folded.tasks, core.state.tasks);
}

#[test]
fn the_last_gate_passing_completes_the_task() {
    let mut core = Core::new();
    core.succeed(1);
    core.gate(1, 0, passed());
    core.gate(1, 1, GateOutcome::Passed { reason: "score 8".into(), score: Some(8), critique: Some("fine".into()) });
    assert_eq!(core.task("t").state, TaskState::Completed { degraded: false });
    assert_eq!(core.task("t").result.as_ref().map(|r| r.value()), Some(serde_json::json!({"n": 1})));
    assert_eq!(core.task("after").state.name(), TaskStateName::Running);
}

#[test]
fn a_cancel_during_validating_ends_the_task() {
    let mut core = Core::new();
    core.succeed(1);
    core.batch(Input::Cancel { task: "t".into(), reason: "operator".into() });
    assert_eq!(core.task("t").state.name(), TaskStateName::Cancelled);
    // The gate's late verdict changes nothing.
    assert!(core.gate(1, 0, passed()).is_empty());
}
