//! Numbers at the edge: the pure core's time arithmetic saturates and its balancer
//! compares loads without overflowing. A workflow file cannot hold such values any more (`validate`
//! bounds every duration), but a workflow reaches the core from other places too (a
//! log written by an older build, a submitted task), and an overflow there is a panic
//! in a debug build and a breaker that half-opens at once in a release one.

use std::path::Path;

use pitboss::config;
use pitboss::core::breaker::Circuit;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, AfterFailure, Event, FailureClass, Input, RunState, SmallOutput, StepContext};

fn failure() -> Outcome {
    Outcome::Failure {
        class: FailureClass::Worker,
        error: "boom".into(),
        exit_code: Some(1),
        signal: None,
        duration_ms: 3,
        output: SmallOutput::default(),
    }
}

#[test]
fn a_cooldown_and_a_backoff_near_the_largest_number_saturate() {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n\
                breaker = { failures = 1, window = \"1m\", cooldown = \"1s\" }\n\
                [[task]]\nid = \"a\"\nretry = { max_attempts = 3 }\n";
    let mut workflow = config::parse(text, "limits.toml", Path::new(".")).expect("valid workflow");
    if let Some(breaker) = workflow.pools[0].breaker.as_mut() {
        breaker.cooldown_ms = u64::MAX;
    }
    workflow.tasks[0].retry.initial_ms = u64::MAX;
    workflow.tasks[0].retry.max_ms = u64::MAX;
    workflow.tasks[0].retry.jitter = false;
    let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).expect("a state");
    let ctx = StepContext { now_ms: 1_800_000_000_000, jitter: 0.0 };
    step(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx).expect("start");
    dispatch(&mut state, ctx).expect("dispatch");
    let input = Input::Finished { task: "a".into(), attempt: 1, outcome: failure() };
    let events = step(&mut state, input, ctx).expect("the failure is taken");
    let due = events.iter().find_map(|e| match e {
        Event::AttemptFailed { then: AfterFailure::Retry { due_ms, .. }, .. } => Some(*due_ms),
        _ => None,
    });
    assert_eq!(due, Some(u64::MAX), "{events:?}");
    assert_eq!(state.pools[0].breaker.circuit, Circuit::Open { until_ms: Some(u64::MAX) }, "{events:?}");
}

#[test]
fn a_live_concurrency_raise_to_the_largest_number_does_not_overflow_the_balancer() {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 2\n\
                [[pool]]\nname = \"q\"\ncommand = [\"agent\"]\nconcurrency = 2\n\
                [[task]]\nid = \"a\"\npool = \"p\"\n[[task]]\nid = \"b\"\npool = \"q\"\n\
                [[task]]\nid = \"c\"\n[[task]]\nid = \"d\"\n";
    let workflow = config::parse(text, "limits.toml", Path::new(".")).expect("valid workflow");
    let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).expect("a state");
    let ctx = StepContext { now_ms: 1_000, jitter: 0.0 };
    step(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx).expect("start");
    for pool in state.pools.iter_mut() {
        // An operator's `:concurrency` is refused above 10000 now, but a log written
        // before that check may still raise a pool this far when it is replayed.
        pool.concurrency = usize::MAX;
    }
    // Least-connections compares running × concurrency across pools.
    let started = dispatch(&mut state, ctx).expect("dispatch");
    assert_eq!(started.len(), 4, "{started:?}");
}
