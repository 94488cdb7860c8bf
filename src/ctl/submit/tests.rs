//! A submit into a big run: checked against the run's own index, it gives the tasks
//! and the refusals the check against the whole workflow gave, and records the same
//! events.

use std::path::Path;
use std::sync::Arc;

use super::tasks_for;
use crate::core::{step, Event, Input, RunState, StepContext};

/// A run of `tasks` tasks on one pool, started (its tasks ready or running).
fn big_run(tasks: usize) -> RunState {
    let mut text =
        "[run]\nname = \"big\"\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 4\n".to_string();
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:06}\"\n");
    }
    let workflow = crate::config::parse(&text, "big.toml", Path::new("/base")).expect("a valid workflow");
    let first = Event::RunStarted { run_id: "big".into(), workflow: Arc::new(workflow) };
    let mut state = RunState::from_first(&first).expect("a fresh run folds");
    let start = Input::Start { pid: 1, version: "test".into(), resumed: false };
    step(&mut state, start, ctx()).expect("the run starts");
    state
}

fn ctx() -> StepContext {
    StepContext { now_ms: 1_790_000_000_000, jitter: 0.5 }
}

/// What the control socket did before: the text checked against the whole workflow.
fn as_before(state: &RunState, toml: &str) -> Result<Vec<crate::core::workflow::TaskSpec>, String> {
    crate::config::tasks_from_toml(toml, "more.toml", &state.workflow).map_err(|e| e.to_string())
}

/// Submits `toml` as the control socket does; the events recorded, or the refusal.
fn submit(state: &mut RunState, toml: &str) -> Result<Vec<Event>, String> {
    let source = || "operator (ctl): submit more.toml".to_string();
    let tasks = tasks_for(state, toml, "more.toml")?;
    let before = as_before(state, toml).expect("accepted before too");
    let recorded_before = step(&mut state.clone(), Input::Submit { tasks: before, source: source() }, ctx());
    let recorded = step(state, Input::Submit { tasks, source: source() }, ctx()).expect("a checked submit applies");
    assert_eq!(Ok(&recorded), recorded_before.as_ref(), "the same events as before for:\n{toml}");
    Ok(recorded)
}

#[test]
fn a_submit_into_a_big_run_records_what_it_did_before() {
    let mut state = big_run(20_000);
    let events = submit(&mut state, "[[task]]\nid = \"extra\"\ndepends_on = [\"task-019999\"]\n").expect("valid");
    let Some(Event::TasksSubmitted { source, tasks }) = events.first() else { panic!("{events:?}") };
    assert_eq!(source, "operator (ctl): submit more.toml");
    assert_eq!(tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["extra"]);
    assert_eq!(tasks[0].depends_on, ["task-019999"]);
    assert_eq!(state.tasks.len(), 20_001);

    // The run's index knows the submitted task now: a second submit may depend on it,
    // and may not take its id.
    let events = submit(&mut state, "[[task]]\nid = \"after\"\ndepends_on = [\"extra\", \"task-000000\"]\n");
    assert!(matches!(events.as_deref(), Ok([Event::TasksSubmitted { .. }, ..])), "{events:?}");
    for (toml, says) in [
        ("[[task]]\nid = \"extra\"\n", "extra"),
        ("[[task]]\nid = \"task-000007\"\n", "task-000007"),
        ("[[task]]\nid = \"x\"\ndepends_on = [\"ghost\"]\n", "ghost"),
        ("[[task]]\nid = \"x\"\ndepends_on = [\"y\"]\n[[task]]\nid = \"y\"\ndepends_on = [\"x\"]\n", "cycle"),
        ("[[task]]\nid = \"x\"\npool = \"no-such-pool\"\n", "no-such-pool"),
    ] {
        let refused = tasks_for(&state, toml, "more.toml").expect_err(toml);
        assert_eq!(Err(refused.clone()), as_before(&state, toml), "the same refusal as before for:\n{toml}");
        assert!(refused.starts_with("more.toml:") && refused.contains(says), "{refused}");
    }
    assert_eq!(state.tasks.len(), 20_002, "a refused submit adds nothing");
}
