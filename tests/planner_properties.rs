//! Properties of a growing run (DESIGN §11): whatever mix of spawns (with sibling
//! dependencies, over the limits), results, failures, approvals, rejections, replays,
//! cancels and submits, the fold of the log equals the live state, every readiness
//! count matches the graph, no held task starts before an operator approves it (or
//! retries it after rejecting it), and every dependent of a planner depends on all of
//! its descendants.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::state::Standing;
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState};
use proptest::prelude::*;
use serde_json::{json, Value};

const WORKFLOW: &str = "[planner]\nmax_children = 3\nmax_depth = 2\nmax_tasks = 40\n\
    [[pool]]\nname = \"p\"\ncommand = [\"true\"]\nconcurrency = 1000\n\
    [run]\nmax_parallel = 1000\n\
    [[task]]\nid = \"root\"\nretry = { max_attempts = 1 }\n\
    [[task]]\nid = \"other\"\nretry = { max_attempts = 1 }\n\
    [[task]]\nid = \"end\"\ndepends_on = [\"root\", \"other\"]\n";

#[derive(Debug, Clone)]
enum Op {
    /// A running task plans `deps.len()` children; child k depends on the earlier
    /// siblings whose bit is set in `deps[k]`.
    Plan(usize, Vec<u8>),
    Finish(usize),
    Fail(usize),
    Approve(usize),
    Reject(usize),
    Requeue(usize),
    Cancel(usize),
    /// Tasks submitted, each depending on the task at this position (mod the run).
    Submit(Vec<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<usize>(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(w, d)| Op::Plan(w, d)),
        4 => any::<usize>().prop_map(Op::Finish),
        1 => any::<usize>().prop_map(Op::Fail),
        2 => any::<usize>().prop_map(Op::Approve),
        1 => any::<usize>().prop_map(Op::Reject),
        1 => any::<usize>().prop_map(Op::Requeue),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => prop::collection::vec(any::<usize>(), 1..3).prop_map(Op::Submit),
    ]
}

fn pick(state: &RunState, who: usize, fits: impl Fn(&TaskState) -> bool) -> Option<String> {
    let ids: Vec<usize> = (0..state.tasks.len()).filter(|&i| fits(&state.tasks[i].state)).collect();
    (!ids.is_empty()).then(|| state.task_id(ids[who % ids.len()]).to_string())
}

fn input(state: &RunState, op: &Op, serial: &mut usize) -> Option<Input> {
    let running = |s: &TaskState| matches!(s, TaskState::Running { .. });
    let attempt = |id: &str| state.tasks[state.task_index(id).unwrap()].attempts;
    let ok = Outcome::Success { result: json!(1), exit_code: Some(0), duration_ms: 1, output: SmallOutput::default() };
    Some(match op {
        Op::Plan(who, deps) => {
            let task = pick(state, *who, running)?;
            let tasks: Vec<Value> = deps
                .iter()
                .enumerate()
                .map(|(k, bits)| {
                    let on: Vec<String> = (0..k).filter(|j| bits & (1 << j) != 0).map(|j| format!("c{j}")).collect();
                    json!({"id": format!("c{k}"), "depends_on": on, "retry": {"max_attempts": 1}})
                })
                .collect();
            let spawn = config::tasks_from_json(&Value::Array(tasks), &state.workflow);
            Input::Planned { attempt: attempt(&task), task, outcome: ok, spawn }
        }
        Op::Finish(who) => {
            let task = pick(state, *who, running)?;
            Input::Finished { attempt: attempt(&task), task, outcome: ok }
        }
        Op::Fail(who) => {
            let task = pick(state, *who, running)?;
            let outcome = Outcome::Failure {
                class: FailureClass::Worker,
                error: "no".into(),
                exit_code: Some(1),
                signal: None,
                duration_ms: 1,
                output: SmallOutput::default(),
            };
            Input::Finished { attempt: attempt(&task), task, outcome }
        }
        Op::Approve(who) => {
            Input::Approve { task: pick(state, *who, |s| matches!(s, TaskState::AwaitingApproval { .. }))? }
        }
        Op::Reject(who) => {
            let task = pick(state, *who, |s| matches!(s, TaskState::AwaitingApproval { .. }))?;
            Input::Reject { task, reason: None }
        }
        Op::Requeue(who) => Input::Requeue {
            task: pick(state, *who, |s| matches!(s, TaskState::DeadLettered { .. } | TaskState::Cancelled { .. }))?,
            reason: "replay".into(),
        },
        Op::Cancel(who) => Input::Cancel { task: pick(state, *who, |s| !s.is_terminal())?, reason: "op".into() },
        Op::Submit(on) => {
            let mut text = String::new();
            for at in on {
                *serial += 1;
                let dep = state.task_id(at % state.tasks.len());
                text.push_str(&format!(
                    "[[task]]\nid = \"s{serial}\"\ndepends_on = [{dep:?}]\nretry = {{ max_attempts = 1 }}\n"
                ));
            }
            let tasks = config::tasks_from_toml(&text, "submit.toml", &state.workflow).ok()?;
            Input::Submit { tasks, source: "prop".into() }
        }
    })
}

fn check(state: &RunState, log: &[Event]) -> Result<(), TestCaseError> {
    let mut folded = RunState::from_first(&log[0]).unwrap();
    for e in &log[1..] {
        folded.apply(e, 5).map_err(|e| TestCaseError::fail(format!("the log does not replay: {e}")))?;
    }
    prop_assert_eq!(&folded.tasks, &state.tasks);
    prop_assert_eq!(&*folded.workflow, &*state.workflow);
    prop_assert_eq!(&folded.dependencies, &state.dependencies);
    for i in 0..state.tasks.len() {
        let deps = &state.dependencies[i];
        let unsatisfied = deps.iter().filter(|&&d| state.standing(d) != Standing::Satisfied).count() as u32;
        let failed = deps.iter().filter(|&&d| state.standing(d) == Standing::Failed).count() as u32;
        prop_assert_eq!(state.unsatisfied_dependencies(i), unsatisfied, "unsatisfied count of {}", state.task_id(i));
        prop_assert_eq!(state.failed_dependencies(i), failed, "failed count of {}", state.task_id(i));
        prop_assert_eq!(folded.unsatisfied_dependencies(i), unsatisfied);
        // Whatever depends on a task depends on all of its descendants.
        for &d in deps {
            for k in state.with_descendants(d) {
                prop_assert!(deps.contains(&k), "{} misses {}", state.task_id(i), state.task_id(k));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, max_shrink_time: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn a_growing_run_replays_and_keeps_its_counts(ops in prop::collection::vec(op(), 1..40)) {
        let workflow = config::parse(WORKFLOW, "p.toml", Path::new(".")).expect("valid");
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let mut state = RunState::from_first(&first).unwrap();
        let mut log = vec![first];
        let ctx = StepContext { now_ms: 5, jitter: 0.0 };
        let mut serial = 0;
        let mut inputs = vec![Input::Start { pid: 1, version: "t".into(), resumed: false }];
        for op in &ops {
            let events = step(&mut state, inputs.pop().unwrap_or(Input::Interrupt { reason: "x".into() }), ctx);
            let mut events = events.map_err(|e| TestCaseError::fail(format!("step: {e}")))?;
            events.extend(dispatch(&mut state, ctx).map_err(|e| TestCaseError::fail(format!("dispatch: {e}")))?);
            log.extend(events.iter().cloned());
            for e in &events {
                if let Event::AttemptStarted { task, .. } = e {
                    let i = state.task_index(task).unwrap();
                    let held = log.iter().any(|e| matches!(e, Event::TasksSpawned { held, .. } if held.iter().any(|h| &h.task == task)));
                    // An operator's explicit retry of a rejected task runs it too (DESIGN §5).
                    let retried = log.iter().any(|e| matches!(e, Event::TaskRequeued { task: t, .. } if t == task));
                    prop_assert!(!held || state.tasks[i].approved() || retried, "{} started while held", task);
                }
            }
            check(&state, &log)?;
            if let Some(next) = input(&state, op, &mut serial) {
                inputs.push(next);
            }
        }
    }
}
