//! Single decisions of the pure core, each pinned by a small scripted history: how
//! attempts are numbered and what `run_finished` says, how balancers pick pools, which
//! timers are stale, what operator edits record, and how manager crashes count. The
//! breaker and fallback decisions are in `core_breakers.rs`. The property tests
//! (`core_properties.rs`) check that random histories stay legal; these check that
//! each decision is the right one, so that a changed operator or guard in
//! `core::decide` fails here in milliseconds instead of hanging a real run.

mod core_common;

use core_common::{failure, finished, kinds, run_finished, success, two_on_a_breaker_pool, Core, BREAKER_POOL, RETRY};
use pitboss::core::{Event, FailureClass, Input, SmallOutput, TaskState};

#[test]
fn attempts_are_numbered_from_one_and_run_finished_reports_success() {
    let mut core = Core::new(&format!(
        "{RETRY}[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n"
    ));
    let events = core.dispatch();
    assert!(matches!(&events[..], [Event::AttemptStarted { attempt: 1, .. }]), "{events:?}");
    let events = core.batch(finished("a", 1, failure(FailureClass::Worker)));
    assert_eq!(run_finished(&events), None, "not every task is terminal");
    let TaskState::RetryWait { due_ms } = core.task("a").state else { panic!("a is not waiting") };
    assert_eq!(due_ms, core.now + 10);
    core.now = due_ms;
    let events = core.batch(Input::RetryTimer { task: "a".into(), due_ms });
    assert_eq!(kinds(&events), ["retry_due", "attempt_started"]);
    assert!(matches!(&events[1], Event::AttemptStarted { attempt: 2, .. }), "{events:?}");
    let events = core.batch(finished("a", 2, success()));
    assert_eq!(kinds(&events), ["attempt_succeeded", "task_ready", "attempt_started"]);
    assert_eq!(run_finished(&events), None);
    let events = core.batch(finished("b", 1, success()));
    assert_eq!(run_finished(&events), Some(true), "{events:?}");
    assert!(core.state.finished);
    assert!(core.dispatch().is_empty(), "run_finished is recorded once");
}

#[test]
fn run_finished_reports_failure_when_a_task_is_dead_lettered() {
    let mut core = Core::new(
        "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\nconcurrency = 2\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n",
    );
    core.dispatch();
    assert_eq!(run_finished(&core.batch(finished("a", 1, success()))), None);
    let events = core.batch(finished("b", 1, failure(FailureClass::Worker)));
    assert_eq!(run_finished(&events), Some(false), "{events:?}");
}

#[test]
fn an_interrupted_run_starts_nothing_and_a_finished_run_is_not_interrupted() {
    let mut core = Core::new(&format!(
        "{RETRY}[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\nconcurrency = 1\n[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n"
    ));
    core.dispatch();
    core.batch(Input::Interrupt { reason: "SIGTERM".into() });
    assert!(core.input(Input::Interrupt { reason: "again".into() }).is_empty(), "interrupted once");
    let events = core.batch(finished("a", 1, success()));
    assert_eq!(kinds(&events), ["attempt_succeeded"], "b stays queued while interrupted");
    // The next manager carries on.
    let events = core.batch(Input::Start { pid: 2, version: "t".into(), resumed: true });
    assert_eq!(kinds(&events), ["manager_started", "attempt_started"]);
    let events = core.batch(finished("b", 1, success()));
    assert_eq!(run_finished(&events), Some(true));
    assert!(core.input(Input::Interrupt { reason: "quit".into() }).is_empty(), "a finished run records no interrupt");
}

/// The pools each `attempt_started` went to, in order.
fn pools_started(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::AttemptStarted { pool, .. } => Some(pool.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn round_robin_rotates_within_one_dispatch_and_a_pinned_task_does_not_move_it() {
    let mut text = "[run]\nmax_parallel = 6\n[balancer]\nstrategy = \"round-robin\"\n".to_string();
    for p in ["p0", "p1", "p2"] {
        text += &format!("[[pool]]\nname = \"{p}\"\ncommand = [\"agent\"]\nconcurrency = 2\n");
    }
    text += "[[task]]\nid = \"pinned\"\npool = \"p1\"\n";
    for i in 1..=5 {
        text += &format!("[[task]]\nid = \"f{i}\"\n");
    }
    let mut core = Core::new(&text);
    // f5's turn is p1's, which is full: strict rotation makes it wait.
    assert_eq!(pools_started(&core.dispatch()), ["p1", "p0", "p1", "p2", "p0"]);
    assert_eq!(core.task("f5").state, TaskState::Queued);
}

#[test]
fn least_connections_compares_load_as_a_fraction_of_each_pools_concurrency() {
    // `wide` runs 1 of 4, `narrow` 1 of 2: the next free task goes to `wide`, whichever
    // pool the workflow names first.
    let wide = "[[pool]]\nname = \"wide\"\ncommand = [\"agent\"]\nconcurrency = 4\n";
    let narrow = "[[pool]]\nname = \"narrow\"\ncommand = [\"agent\"]\nconcurrency = 2\n";
    let tasks = "[[task]]\nid = \"w\"\npool = \"wide\"\n[[task]]\nid = \"n\"\npool = \"narrow\"\n\
                 [[task]]\nid = \"gate\"\npool = \"wide\"\n[[task]]\nid = \"free\"\ndepends_on = [\"gate\"]\n";
    for pools in [format!("{wide}{narrow}"), format!("{narrow}{wide}")] {
        let mut core = Core::new(&format!("[balancer]\nstrategy = \"least-connections\"\n{pools}{tasks}"));
        assert_eq!(pools_started(&core.dispatch()).len(), 3);
        let events = core.batch(finished("gate", 1, success()));
        assert_eq!(pools_started(&events), ["wide"], "{pools}");
    }
}

#[test]
fn a_retry_timer_for_another_due_time_is_stale() {
    let mut core = Core::new(&format!("{RETRY}[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n"));
    core.dispatch();
    core.batch(finished("a", 1, failure(FailureClass::Worker)));
    let TaskState::RetryWait { due_ms } = core.task("a").state else { panic!("a is not waiting") };
    // A timer set for an earlier wait (the task was retried and failed since).
    assert!(core.batch(Input::RetryTimer { task: "a".into(), due_ms: due_ms - 1 }).is_empty());
    assert_eq!(core.task("a").state, TaskState::RetryWait { due_ms });
    assert_eq!(kinds(&core.batch(Input::RetryTimer { task: "a".into(), due_ms })), ["retry_due", "attempt_started"]);
}

#[test]
fn pausing_and_resuming_a_pool_are_recorded_once() {
    let mut core = two_on_a_breaker_pool();
    let pause = || Input::PausePool { pool: "p".into() };
    let resume = || Input::ResumePool { pool: "p".into() };
    assert!(core.input(resume()).is_empty(), "a running pool is not resumed");
    assert_eq!(kinds(&core.input(pause())), ["pool_paused"]);
    assert!(core.input(pause()).is_empty(), "already paused");
    assert_eq!(kinds(&core.input(resume())), ["pool_resumed"]);
    assert!(core.input(resume()).is_empty(), "already running");
    assert!(core.input(Input::PausePool { pool: "nope".into() }).is_empty(), "unknown pool");
}

#[test]
fn a_concurrency_change_is_recorded_only_when_it_changes_to_at_least_one() {
    let mut core = two_on_a_breaker_pool();
    let set = |concurrency| Input::SetConcurrency { pool: "p".into(), concurrency };
    assert!(core.input(set(0)).is_empty(), "zero is refused");
    assert!(core.input(set(10_001)).is_empty(), "above the workflow's ceiling is refused");
    assert!(core.input(set(usize::MAX)).is_empty(), "the largest number is refused");
    assert!(core.input(set(2)).is_empty(), "the pool has 2 already");
    let events = core.input(set(5));
    assert!(matches!(&events[..], [Event::ConcurrencyChanged { concurrency: 5, .. }]), "{events:?}");
    assert_eq!(core.state.pools[0].concurrency, 5);
    assert!(core.input(set(5)).is_empty(), "no change");
}

#[test]
fn a_payload_is_edited_only_while_no_attempt_runs() {
    let mut core = Core::new(&format!(
        "{RETRY}{BREAKER_POOL}[[task]]\nid = \"a\"\n[[task]]\nid = \"later\"\ndepends_on = [\"a\"]\n"
    ));
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    let edit = |task: &str| Input::EditPayload { task: task.into(), payload: serde_json::json!({"x": 1}) };
    assert!(core.input(edit("a")).is_empty(), "a running task's payload is not changed under it");
    assert_eq!(kinds(&core.input(edit("later"))), ["payload_edited"], "a blocked task's payload can change");
    assert!(core.input(edit("nope")).is_empty(), "unknown task");
}

/// The events a new manager's start records for the attempts the last one left running.
fn crash_and_restart(core: &mut Core) -> Vec<Event> {
    core.now += 1_000;
    core.input(Input::Start { pid: 2, version: "t".into(), resumed: true })
}

#[test]
fn a_manager_crash_hands_the_attempt_back_and_the_dependents_still_run() {
    let mut core = Core::new(
        "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n",
    );
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    let events = crash_and_restart(&mut core);
    assert_eq!(kinds(&events), ["manager_started", "attempt_interrupted"], "{events:?}");
    assert!(
        matches!(&events[1], Event::AttemptInterrupted { task, attempt: 1, reason } if task == "a" && reason == "manager crashed"),
        "{events:?}"
    );
    assert_eq!(core.task("a").state, TaskState::Queued);
    assert_eq!(core.task("a").attempts, 0, "the crashed attempt is not spent");
    assert_eq!(core.task("a").crashes, 1, "but it counts towards a poison pill");
    assert_eq!(core.task("b").state, TaskState::Blocked, "the dependent still waits, not skipped");
    let started = core.dispatch();
    assert!(matches!(&started[..], [Event::AttemptStarted { attempt: 1, .. }]), "{started:?}");
    assert_eq!(kinds(&core.batch(finished("a", 1, success()))), ["attempt_succeeded", "task_ready", "attempt_started"]);
}

#[test]
fn a_task_in_flight_at_three_manager_crashes_in_a_row_is_a_poison_pill_and_not_before() {
    // One attempt only: had a crash spent it, the first crash would dead-letter.
    let mut core = Core::new(
        "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n\
         [[task]]\nid = \"pill\"\n",
    );
    for crash in 1..=2 {
        assert_eq!(kinds(&core.dispatch()), ["attempt_started"], "crash {crash}");
        let events = crash_and_restart(&mut core);
        assert_eq!(kinds(&events), ["manager_started", "attempt_interrupted"], "crash {crash}");
        assert_eq!(core.task("pill").attempts, 0, "crash {crash}");
    }
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    let events = crash_and_restart(&mut core);
    let then = events.iter().find_map(|e| match e {
        Event::AttemptFailed { class: FailureClass::ManagerCrashed, then, .. } => Some(then.clone()),
        _ => None,
    });
    match then {
        Some(pitboss::core::AfterFailure::DeadLetter { reason }) => assert!(reason.contains("poison pill"), "{reason}"),
        other => panic!("third crash: {other:?} in {events:?}"),
    }
    assert_eq!(core.task("pill").state.name().as_str(), "dead_lettered");
}

#[test]
fn an_attempt_that_ends_by_itself_breaks_a_row_of_crashes() {
    let mut core = Core::new(&format!("{RETRY}[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n"));
    for _ in 0..2 {
        core.dispatch();
        crash_and_restart(&mut core);
    }
    assert_eq!(core.task("a").crashes, 2);
    let started = core.dispatch();
    let Some(Event::AttemptStarted { attempt, .. }) = started.first() else { panic!("{started:?}") };
    let events = core.input(finished("a", *attempt, failure(FailureClass::Worker)));
    assert_eq!(kinds(&events), ["attempt_failed"]);
    assert_eq!(core.task("a").crashes, 0, "the row is broken by an attempt that ended on its own");
}

#[test]
fn a_crash_recorded_as_a_failure_by_an_older_pitboss_counts_once() {
    // Older logs record a crashed attempt as `attempt_failed` (manager_crashed) right
    // after the new manager's start; the fold counts that crash once, not twice.
    let mut core = Core::new(&format!("{RETRY}[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n"));
    core.dispatch();
    let old = [
        Event::ManagerStarted { pid: 2, version: "0.1".into(), resumed: true },
        Event::AttemptFailed {
            task: "a".into(),
            attempt: 1,
            class: FailureClass::ManagerCrashed,
            error: "manager crashed".into(),
            exit_code: None,
            signal: None,
            duration_ms: 5,
            output: SmallOutput::default(),
            then: pitboss::core::AfterFailure::Retry { delay_ms: 10, due_ms: core.now + 10 },
        },
    ];
    for event in &old {
        core.state.apply(event, core.now).expect("an older log replays");
    }
    assert_eq!(core.task("a").crashes, 1);
    assert_eq!(core.task("a").attempts, 1, "an older log keeps what it recorded");
}

#[test]
fn a_resource_shortage_defers_with_a_growing_delay_and_spends_no_attempt() {
    let mut core = Core::new(&format!("{RETRY}[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n"));
    let mut delays = Vec::new();
    for round in 1..=2 {
        assert_eq!(kinds(&core.dispatch()), ["attempt_started"], "round {round}");
        core.now += 1_000;
        let events = core.input(finished("a", core.running("a"), failure(FailureClass::SpawnResource)));
        let Some(Event::AttemptFailed { then: pitboss::core::AfterFailure::Defer { delay_ms, due_ms }, .. }) =
            events.first()
        else {
            panic!("round {round}: not deferred: {events:?}")
        };
        assert_eq!(*due_ms, core.now + delay_ms, "due is now plus the delay");
        delays.push(*delay_ms);
        core.now = *due_ms;
        let due_ms = *due_ms;
        assert_eq!(kinds(&core.input(Input::RetryTimer { task: "a".into(), due_ms })), ["retry_due"]);
    }
    assert_eq!(delays, [10, 20], "the deferral backoff grows with consecutive deferrals");
    assert_eq!(core.task("a").attempts - core.task("a").budget_start, 0, "a deferral spends no attempt");
}

#[test]
fn a_replayed_dead_letter_brings_back_the_dependents_it_skipped() {
    let mut core = Core::new(
        "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"q\"\ncommand = [\"agent\"]\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n",
    );
    core.dispatch();
    let events = core.batch(finished("a", 1, failure(FailureClass::Worker)));
    assert_eq!(kinds(&events), ["attempt_failed", "task_skipped", "task_skipped", "run_finished"]);
    let events = core.batch(Input::Requeue { task: "a".into(), reason: "operator".into() });
    assert_eq!(kinds(&events), ["task_requeued", "task_revived", "task_revived", "attempt_started"]);
    assert_eq!(core.task("c").state, TaskState::Blocked);
    let events = core.batch(finished("a", 2, success()));
    assert_eq!(kinds(&events), ["attempt_succeeded", "task_ready", "attempt_started"]);
}

#[test]
fn a_task_validating_at_three_manager_crashes_in_a_row_is_a_poison_pill_naming_its_gate() {
    // A gate that kills the manager every time: the task is in flight (validating)
    // at each crash, and each resume would run the same gate again.
    let mut core = Core::new(
        "[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n\
         [[task]]\nid = \"pill\"\ngates = [{ command = [\"true\"] }, { command = [\"check\"] }]\n",
    );
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    assert_eq!(kinds(&core.input(finished("pill", 1, success()))), ["attempt_succeeded"]);
    let passed = pitboss::core::gates::GateOutcome::Passed { reason: "ok".into(), score: None, critique: None };
    let events =
        core.input(Input::GateDone { task: "pill".into(), attempt: 1, index: 0, outcome: passed, duration_ms: 5 });
    assert_eq!(kinds(&events), ["gate_passed"]);
    for crash in 1..=2 {
        let events = crash_and_restart(&mut core);
        assert_eq!(kinds(&events), ["manager_started"], "crash {crash}: the gate runs again");
        assert_eq!(core.task("pill").state, TaskState::Validating { attempt: 1, gate: 1 }, "crash {crash}");
        assert_eq!(core.task("pill").crashes, crash, "crash {crash} counts like a running attempt's");
    }
    let events = crash_and_restart(&mut core);
    let dead = events.iter().find_map(|e| match e {
        Event::GateError { index: 1, then: pitboss::core::AfterFailure::DeadLetter { reason }, .. } => {
            Some(reason.clone())
        }
        _ => None,
    });
    let Some(reason) = dead else { panic!("third crash did not dead-letter the validating task: {events:?}") };
    assert!(reason.contains("poison pill") && reason.contains("gate 2 (command)"), "{reason}");
    assert_eq!(core.task("pill").state.name().as_str(), "dead_lettered");
}

#[test]
fn a_gate_verdict_breaks_a_row_of_crashes() {
    let mut core = Core::new(&format!(
        "{RETRY}[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n\
         gates = [{{ command = [\"true\"] }}, {{ command = [\"check\"] }}]\n"
    ));
    core.dispatch();
    core.input(finished("a", 1, success()));
    for _ in 0..2 {
        crash_and_restart(&mut core);
    }
    assert_eq!(core.task("a").crashes, 2);
    let passed = pitboss::core::gates::GateOutcome::Passed { reason: "ok".into(), score: None, critique: None };
    core.input(Input::GateDone { task: "a".into(), attempt: 1, index: 0, outcome: passed, duration_ms: 5 });
    assert_eq!(core.task("a").crashes, 0, "the gate ended on its own: the row is broken");
}

#[test]
fn an_unchanged_payload_or_a_completed_task_records_no_edit() {
    let mut core = Core::new(&format!(
        "{RETRY}{BREAKER_POOL}[[task]]\nid = \"a\"\npayload = {{ x = 1 }}\n[[task]]\nid = \"later\"\ndepends_on = [\"a\"]\n"
    ));
    let edit = |task: &str, payload| Input::EditPayload { task: task.into(), payload };
    assert!(core.input(edit("later", serde_json::json!({}))).is_empty(), "the workflow's payload, unchanged");
    assert_eq!(kinds(&core.input(edit("later", serde_json::json!({"y": 2})))), ["payload_edited"]);
    assert!(core.input(edit("later", serde_json::json!({"y": 2}))).is_empty(), "the edited payload, unchanged");
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    core.input(finished("a", 1, success()));
    assert_eq!(core.task("a").state.name(), pitboss::core::TaskStateName::Completed);
    assert!(core.input(edit("a", serde_json::json!({"x": 2}))).is_empty(), "a completed task never runs again");
}
