//! Budget decisions of the pure core (DESIGN §13), each pinned by a small scripted
//! history: a task that spent its budget is dead-lettered `budget spent` instead of
//! retried (or handed to its fallback); a run that spent its budget records
//! `budget_exhausted` and starts nothing more while running attempts finish; an
//! operator's raise resumes dispatch, and a raise that would stop it again is refused.
//! Usage is folded as `usage_recorded` notes, as the engine records them.

mod core_common;

use core_common::{failure, finished, success, Core};
use pitboss::core::decide::raise_budget;
use pitboss::core::event::{SessionRecorded, UsageRecorded};
use pitboss::core::usage::{Usage, Usd};
use pitboss::core::{AfterFailure, Event, FailureClass, Input, RunState, TaskState};

const POOLS: &str = r#"
[[pool]]
name = "agent"
command = ["true"]
concurrency = 2

[[pool]]
name = "cheap"
command = ["true"]
"#;

#[test]
fn a_task_that_spent_its_budget_is_dead_lettered_not_retried_nor_fallen_back() {
    let toml = format!(
        "[budget]\ntask_cost_usd = 2.0\n{POOLS}\n[[task]]\nid = \"t\"\npool = \"agent\"\nretry = {{ max_attempts = 5 }}\n\
         fallback = {{ pool = \"cheap\" }}\n"
    );
    let mut core = Core::new(&toml);
    core.dispatch();
    // Under the budget: an ordinary retry.
    core.spend("t", 1, "agent", 1.5);
    let events = core.input(finished("t", 1, failure(FailureClass::Worker)));
    assert!(matches!(events.last(), Some(Event::AttemptFailed { then: AfterFailure::Retry { .. }, .. })), "{events:?}");
    let due = match core.state_of("t") {
        TaskState::RetryWait { due_ms } => *due_ms,
        other => panic!("{other:?}"),
    };
    core.now = due;
    core.input(Input::RetryTimer { task: "t".into(), due_ms: due });
    core.dispatch();
    // Reaching it: no retry, no fallback.
    core.spend("t", 2, "agent", 0.5);
    let events = core.input(finished("t", 2, failure(FailureClass::Worker)));
    let reason = match events.iter().find(|e| matches!(e, Event::AttemptFailed { .. })) {
        Some(Event::AttemptFailed { then: AfterFailure::DeadLetter { reason }, .. }) => reason.clone(),
        other => panic!("not dead-lettered: {other:?} in {events:?}"),
    };
    assert!(reason.starts_with("budget spent ($2.00 of the task's $2.00)"), "{reason}");
    assert!(matches!(core.state_of("t"), TaskState::DeadLettered { .. }));
}

#[test]
fn a_pool_budget_stands_over_the_runs_and_a_raise_over_both() {
    let toml = "[budget]\ntask_cost_usd = 100\n[[pool]]\nname = \"agent\"\ncommand = [\"true\"]\ntask_cost_usd = 1\n\
                [[task]]\nid = \"t\"\npool = \"agent\"\n";
    let mut core = Core::new(toml);
    let t = core.state.task_index("t").unwrap();
    assert_eq!(core.state.task_cost_usd(t), Some(Usd(100_000_000)), "the run's, before the task has a pool");
    core.dispatch();
    assert_eq!(core.state.task_cost_usd(t), Some(Usd(1_000_000)), "its pool's");
    let raise = Input::RaiseBudget { max_cost_usd: None, task_cost_usd: Some(3.0), source: "operator (test)".into() };
    core.input(raise);
    assert_eq!(core.state.task_cost_usd(t), Some(Usd(3_000_000)), "the operator's");
}

#[test]
fn a_run_budget_stops_new_attempts_lets_running_ones_finish_and_a_raise_resumes() {
    let toml = format!(
        "[budget]\nmax_cost_usd = 5.0\n{POOLS}\n{}",
        (1..=4).map(|i| format!("[[task]]\nid = \"t{i}\"\npool = \"agent\"\n")).collect::<String>()
    );
    let mut core = Core::new(&toml);
    core.dispatch();
    assert_eq!(core.all_running(), ["t1", "t2"]);
    core.spend("t1", 1, "agent", 3.0);
    // Reaching the budget: recorded once, and the running attempts go on.
    let events = core.spend("t2", 1, "agent", 2.0);
    let exhausted: Vec<_> = events.iter().filter(|e| matches!(e, Event::BudgetExhausted(_))).collect();
    assert_eq!(exhausted.len(), 1, "{events:?}");
    assert!(core.state.spend.exhausted);
    assert_eq!(core.all_running(), ["t1", "t2"]);
    // An attempt ends: its slot is free, yet nothing starts.
    core.input(finished("t1", 1, success()));
    let events = core.dispatch();
    assert!(!events.iter().any(|e| matches!(e, Event::AttemptStarted { .. })), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::BudgetExhausted(_))), "said once: {events:?}");
    assert_eq!(core.all_running(), ["t2"]);
    // Not finished while tasks wait.
    core.input(finished("t2", 1, success()));
    let events = core.dispatch();
    assert!(!events.iter().any(|e| matches!(e, Event::RunFinished { .. })), "{events:?}");
    assert!(core.all_running().is_empty());
    // A raise to what was spent is refused with the reason; a real one resumes.
    let refused = raise_budget(&core.state, Some(5.0), None, "operator (test)".into()).unwrap_err();
    assert!(refused.contains("has spent $5.00"), "{refused}");
    let refused = raise_budget(&core.state, Some(-1.0), None, "operator (test)".into()).unwrap_err();
    assert!(refused.contains("negative"), "{refused}");
    let events = core.input(Input::RaiseBudget { max_cost_usd: Some(8.0), task_cost_usd: None, source: "op".into() });
    assert!(matches!(events.as_slice(), [Event::BudgetRaised(_)]), "{events:?}");
    let events = core.dispatch();
    let started = events.iter().filter(|e| matches!(e, Event::AttemptStarted { .. })).count();
    assert_eq!(started, 2, "dispatch resumes: {events:?}");
    assert_eq!(core.state.max_cost_usd(), Some(Usd(8_000_000)));
    // Spending up to the new budget stops it again.
    let events = core.spend("t3", 1, "agent", 3.0);
    assert!(events.iter().any(|e| matches!(e, Event::BudgetExhausted(_))), "{events:?}");
}

#[test]
fn a_fold_of_the_events_gives_the_same_spend_as_live() {
    let toml = format!("[budget]\nmax_cost_usd = 1.0\n{POOLS}\n[[task]]\nid = \"t\"\npool = \"agent\"\n");
    let mut core = Core::new(&toml);
    let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::clone(&core.state.workflow) };
    let mut log = core.input(Input::Start { pid: 2, version: "t".into(), resumed: true });
    log.extend(core.dispatch());
    let usage = Usage { cost: Usd(700_000), input_tokens: 5, output_tokens: 1, ..Usage::default() };
    for _ in 0..2 {
        let e = Event::UsageRecorded(UsageRecorded::new("t".into(), 1, "agent".into(), &usage));
        core.state.apply(&e, core.now).unwrap();
        log.push(e);
        log.extend(core.dispatch());
    }
    // Only the spend part is compared: the events above are all it folds from.
    let mut spend_only = RunState::from_first(&first).unwrap();
    for e in log.iter().filter(|e| matches!(e, Event::UsageRecorded(_) | Event::BudgetExhausted(_))) {
        spend_only.apply(e, 0).unwrap();
    }
    assert_eq!(spend_only.spend, core.state.spend);
    assert_eq!(core.state.spend.run.cost_usd, Usd(1_400_000));
    assert!(core.state.spend.exhausted);
    // And through a snapshot's JSON.
    let json = serde_json::to_vec(&core.state).unwrap();
    let back = RunState::from_snapshot_json(&json).unwrap();
    assert_eq!(back.spend, core.state.spend);
}

#[test]
fn a_sessions_usage_is_what_the_attempts_that_printed_it_recorded() {
    let toml = format!("{POOLS}\n[[task]]\nid = \"t\"\npool = \"agent\"\n");
    let mut core = Core::new(&toml);
    let session = |core: &mut Core, attempt: u32, id: &str| {
        let e = Event::SessionRecorded(SessionRecorded { task: "t".into(), attempt, id: id.into() });
        core.state.apply(&e, core.now).expect("a session note applies");
    };
    let i = core.state.task_index("t").unwrap();
    assert_eq!(core.state.session_usage(i), Usage::default(), "no session, nothing carried");
    // Attempt 1 starts thread S and counts 100/10; attempt 2 continues S and counts 100/10.
    session(&mut core, 1, "S");
    core.spend("t", 1, "agent", 0.5);
    session(&mut core, 2, "S");
    core.spend("t", 2, "agent", 0.25);
    let both = core.state.session_usage(i);
    assert_eq!((both.input_tokens, both.output_tokens, both.cost), (200, 20, Usd(750_000)));
    // Attempt 3 starts a new thread: only its own usage is the session's.
    session(&mut core, 3, "T");
    core.spend("t", 3, "agent", 0.125);
    let fresh = core.state.session_usage(i);
    assert_eq!((fresh.input_tokens, fresh.output_tokens, fresh.cost), (100, 10, Usd(125_000)));
    // Kept through a snapshot's JSON, so that a resumed manager carries the same.
    let back = RunState::from_snapshot_json(&serde_json::to_vec(&core.state).unwrap()).unwrap();
    assert_eq!(back.session_usage(i), fresh);
}
