//! Readiness is linear in the size of the dependency graph: a wide fan-in (one task
//! waiting for thousands) or fan-out (thousands waiting for one) costs a bounded
//! number of dependency-edge visits per task over a whole run, counted by the core
//! itself (`RunState::dependency_visits`), not timed. A rescan of every dependency at
//! each transition would cost N² visits (50,000 tasks: seconds of CPU before the
//! first dispatch).

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState};

const N: usize = 3_000;

/// Visits allowed per task and per edge over a whole run: a constant, whatever N.
const PER_ITEM: u64 = 12;

fn state(toml: &str) -> RunState {
    let workflow = config::parse(toml, "readiness.toml", Path::new(".")).expect("test workflow is valid");
    RunState::from_first(&Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) })
        .expect("state")
}

fn ctx() -> StepContext {
    StepContext { now_ms: 1_000_000, jitter: 0.0 }
}

const HEADER: &str = "[run]\nmax_parallel = 64\n[defaults]\nretry = { max_attempts = 1 }\n\
                      [[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 64\n";

/// One task `sink` depending on `leaf-0` … `leaf-{n-1}`.
fn fan_in(n: usize) -> String {
    let mut text = HEADER.to_string();
    let mut deps = Vec::with_capacity(n);
    for i in 0..n {
        text += &format!("[[task]]\nid = \"leaf-{i}\"\n");
        deps.push(format!("\"leaf-{i}\""));
    }
    text += &format!("[[task]]\nid = \"sink\"\ndepends_on = [{}]\n", deps.join(", "));
    text
}

/// `leaf-0` … `leaf-{n-1}` each depending on one task `root`.
fn fan_out(n: usize) -> String {
    let mut text = HEADER.to_string() + "[[task]]\nid = \"root\"\n";
    for i in 0..n {
        text += &format!("[[task]]\nid = \"leaf-{i}\"\ndepends_on = [\"root\"]\n");
    }
    text
}

fn outcome(ok: bool) -> Outcome {
    if ok {
        Outcome::Success {
            result: serde_json::json!(1),
            exit_code: Some(0),
            duration_ms: 1,
            output: SmallOutput::default(),
        }
    } else {
        Outcome::Failure {
            class: FailureClass::Worker,
            error: "no".into(),
            exit_code: Some(1),
            signal: None,
            duration_ms: 1,
            output: SmallOutput::default(),
        }
    }
}

/// Runs the whole workflow as the engine would (start, then batches of ends and
/// dispatches); `fails` says which tasks fail. Returns the visits before the first
/// dispatch and over the whole run.
fn run(state: &mut RunState, fails: impl Fn(&str) -> bool) -> (u64, u64) {
    step(state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx()).expect("start");
    let before_dispatch = state.dependency_visits;
    dispatch(state, ctx()).expect("dispatch");
    while !state.finished {
        let running: Vec<(String, u32)> = state
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.state {
                TaskState::Running { attempt, .. } => Some((state.task_id(i).to_string(), attempt)),
                _ => None,
            })
            .collect();
        assert!(!running.is_empty(), "nothing runs and the run is not finished");
        for (task, attempt) in running {
            let ok = !fails(&task);
            step(state, Input::Finished { task, attempt, outcome: outcome(ok) }, ctx()).expect("finished");
        }
        dispatch(state, ctx()).expect("dispatch");
    }
    (before_dispatch, state.dependency_visits)
}

#[track_caller]
fn assert_linear(what: &str, visits: u64) {
    let bound = PER_ITEM * (2 * N as u64 + 1);
    assert!(visits <= bound, "{what}: {visits} dependency visits for {N} tasks (linear bound {bound})");
}

#[test]
fn a_wide_fan_in_costs_visits_linear_in_its_width() {
    let mut state = state(&fan_in(N));
    let (start, total) = run(&mut state, |_| false);
    assert_linear("fan-in, before the first dispatch", start);
    assert_linear("fan-in, whole run", total);
    let sink = state.task_index("sink").expect("sink");
    assert_eq!(state.tasks[sink].state, TaskState::Completed { degraded: false });
}

#[test]
fn a_wide_fan_out_costs_visits_linear_in_its_width() {
    let mut state = state(&fan_out(N));
    let (start, total) = run(&mut state, |_| false);
    assert_linear("fan-out, before the first dispatch", start);
    assert_linear("fan-out, whole run", total);
    assert!(state.tasks.iter().all(|t| t.state == TaskState::Completed { degraded: false }));
}

#[test]
fn a_failed_leaf_of_a_wide_fan_in_skips_the_sink_naming_it_and_a_requeue_revives_it() {
    let mut state = state(&fan_in(N));
    let (_, total) = run(&mut state, |t| t == "leaf-1234");
    assert_linear("fan-in with a dead letter", total);
    let sink = state.task_index("sink").expect("sink");
    assert_eq!(state.tasks[sink].state, TaskState::Skipped { because: "leaf-1234".into() });
    let events = step(&mut state, Input::Requeue { task: "leaf-1234".into(), reason: "operator".into() }, ctx())
        .expect("requeue");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["task_requeued", "task_revived"]);
    assert_eq!(state.tasks[sink].state, TaskState::Blocked);
}
