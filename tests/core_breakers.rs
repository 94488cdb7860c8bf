//! Breaker and fallback decisions of the pure core, each pinned by a small scripted
//! history: which pool's breaker hears an attempt's end (and only the current
//! attempt's), when a breaker opens and for exactly how long, when probes close it,
//! and when fallbacks are taken. `core_decisions.rs` holds the other single
//! decisions; both drive the core by hand through `core_common`.

mod core_common;

use core_common::{failure, finished, kinds, success, two_on_a_breaker_pool, Core, BREAKER_POOL, RETRY};
use pitboss::core::breaker::Circuit;
use pitboss::core::{step, Event, FailureClass, Input, StepContext, TaskState};

#[test]
fn a_counted_failure_opens_the_breaker_for_exactly_its_cooldown() {
    let mut core = two_on_a_breaker_pool();
    core.now = 5_000_000;
    let events = core.input(finished("a", 1, failure(FailureClass::Worker)));
    let opened: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::BreakerOpened { pool, until_ms, reason } => Some((pool.as_str(), *until_ms, reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(opened, [("p", Some(5_000_100), "1 failed attempts within 1m")], "{events:?}");
    assert_eq!(core.circuit("p"), Circuit::Open { until_ms: Some(5_000_100) });
}

#[test]
fn failures_that_say_nothing_about_the_pool_leave_its_breaker_closed() {
    let mut core = two_on_a_breaker_pool();
    let events = core.input(finished("a", 1, failure(FailureClass::SpawnResource)));
    assert_eq!(kinds(&events), ["attempt_failed"]);
    let events = core.input(finished("b", 1, failure(FailureClass::ManagerCrashed)));
    assert_eq!(kinds(&events), ["attempt_failed"]);
    assert_eq!(core.circuit("p"), Circuit::Closed);
}

#[test]
fn a_success_on_a_closed_breaker_records_no_breaker_event() {
    let mut core = two_on_a_breaker_pool();
    assert_eq!(kinds(&core.input(finished("a", 1, success()))), ["attempt_succeeded"]);
    assert_eq!(core.circuit("p"), Circuit::Closed);
}

/// `a` and `b` started; `a` cancelled (its process still running), `b` fails and opens
/// the breaker, the cooldown passes, `a` is requeued and starts attempt 2 as the probe.
fn probe_running_while_an_older_attempt_is_still_out() -> Core {
    let mut core = two_on_a_breaker_pool();
    core.batch(Input::Cancel { task: "a".into(), reason: "operator".into() });
    core.batch(finished("b", 1, failure(FailureClass::Worker)));
    let Circuit::Open { until_ms: Some(until) } = core.circuit("p") else { panic!("breaker not open") };
    core.now = until;
    assert_eq!(kinds(&core.batch(Input::BreakerTimer { pool: "p".into(), until_ms: until })), ["breaker_half_opened"]);
    let events = core.batch(Input::Requeue { task: "a".into(), reason: "operator".into() });
    assert_eq!(kinds(&events), ["task_requeued", "attempt_started"]);
    assert_eq!(core.running("a"), 2);
    assert_eq!(core.circuit("p"), Circuit::HalfOpen { probes_started: 1 });
    core
}

#[test]
fn a_late_failure_of_an_older_attempt_does_not_reopen_a_half_open_breaker() {
    let mut core = probe_running_while_an_older_attempt_is_still_out();
    let events = core.input(finished("a", 1, failure(FailureClass::Worker)));
    assert!(events.is_empty(), "a stale end changes nothing: {events:?}");
    assert_eq!(core.circuit("p"), Circuit::HalfOpen { probes_started: 1 });
    assert_eq!(core.running("a"), 2);
}

#[test]
fn a_late_success_of_an_older_attempt_does_not_close_a_half_open_breaker() {
    let mut core = probe_running_while_an_older_attempt_is_still_out();
    let events = core.input(finished("a", 1, success()));
    assert!(events.is_empty(), "a stale end changes nothing: {events:?}");
    assert_eq!(core.circuit("p"), Circuit::HalfOpen { probes_started: 1 });
}

#[test]
fn the_probe_succeeding_closes_the_breaker_and_its_failing_reopens_it() {
    let mut core = probe_running_while_an_older_attempt_is_still_out();
    let mut other = core.state.clone();
    let events = core.input(finished("a", 2, success()));
    assert_eq!(kinds(&events), ["attempt_succeeded", "breaker_closed"]);
    assert!(matches!(&events[1], Event::BreakerClosed { reason, .. } if reason == "a probe attempt succeeded"));
    assert_eq!(core.circuit("p"), Circuit::Closed);

    let ctx = StepContext { now_ms: 7_000_000, jitter: 0.0 };
    let events = step(&mut other, finished("a", 2, failure(FailureClass::Timeout)), ctx).unwrap();
    assert_eq!(kinds(&events), ["attempt_failed", "breaker_opened"]);
    assert!(
        matches!(&events[1], Event::BreakerOpened { until_ms: Some(7_000_100), reason, .. } if reason == "a probe attempt failed"),
        "{events:?}"
    );
}

#[test]
fn a_half_open_breaker_admits_its_probes_only() {
    let mut core = Core::new(&format!(
        "{RETRY}{BREAKER_POOL}[[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\n[[task]]\nid = \"d\"\n"
    ));
    core.dispatch();
    core.batch(finished("a", 1, failure(FailureClass::Worker)));
    let Circuit::Open { until_ms: Some(until) } = core.circuit("p") else { panic!("breaker not open") };
    // While open, nothing starts even though a slot is free.
    assert!(!kinds(&core.batch(finished("b", 1, success()))).contains(&"attempt_started"));
    // A timer for another time is stale: the breaker stays open.
    assert!(core.batch(Input::BreakerTimer { pool: "p".into(), until_ms: until - 1 }).is_empty());
    core.now = until;
    let events = core.batch(Input::BreakerTimer { pool: "p".into(), until_ms: until });
    assert_eq!(kinds(&events), ["breaker_half_opened", "attempt_started"], "one probe for half_open = 1");
    assert_eq!(core.circuit("p"), Circuit::HalfOpen { probes_started: 1 });
    assert!(core.dispatch().is_empty(), "no second probe while the first runs");
}

#[test]
fn an_operator_trip_opens_for_the_cooldown_and_a_reset_closes() {
    let mut core = two_on_a_breaker_pool();
    core.now = 2_000_000;
    let events = core.input(Input::BreakerTrip { pool: "p".into() });
    assert!(matches!(&events[..], [Event::BreakerOpened { until_ms: Some(2_000_100), .. }]), "{events:?}");
    assert!(core.input(Input::BreakerTrip { pool: "p".into() }).is_empty(), "already open");
    assert_eq!(kinds(&core.input(Input::BreakerReset { pool: "p".into() })), ["breaker_closed"]);
    assert!(core.input(Input::BreakerReset { pool: "p".into() }).is_empty(), "already closed");
}

/// `x` holds the breaker pool's only slot; `y` waits behind it with a fallback result.
fn fallback_waiting_behind_a_busy_pool() -> Core {
    let pool = BREAKER_POOL.replace("concurrency = 2", "concurrency = 1");
    let mut core = Core::new(&format!(
        "{RETRY}{pool}[[task]]\nid = \"x\"\n[[task]]\nid = \"y\"\nfallback = {{ result = \"cached\" }}\n"
    ));
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"]);
    core
}

#[test]
fn a_queued_task_behind_an_open_breaker_takes_its_fallback() {
    let mut core = fallback_waiting_behind_a_busy_pool();
    let events = core.batch(Input::BreakerTrip { pool: "p".into() });
    assert_eq!(kinds(&events), ["breaker_opened", "fallback_used"]);
    assert!(matches!(&events[1], Event::FallbackUsed { task, reason } if task == "y" && reason == "breaker open on p"));
    assert_eq!(core.task("y").state, TaskState::Completed { degraded: true });
}

#[test]
fn no_fallback_is_taken_while_the_run_is_interrupted() {
    let mut core = fallback_waiting_behind_a_busy_pool();
    assert_eq!(kinds(&core.batch(Input::Interrupt { reason: "SIGINT".into() })), ["run_interrupted"]);
    let events = core.batch(Input::BreakerTrip { pool: "p".into() });
    assert_eq!(kinds(&events), ["breaker_opened"], "the next manager decides the fallback");
    assert_eq!(core.task("y").state, TaskState::Queued);
    // Nothing starts either, even once the breaker is reset and the slot is free.
    core.batch(Input::BreakerReset { pool: "p".into() });
    let events = core.batch(Input::AttemptStopped { task: "x".into(), attempt: 1, reason: "interrupted".into() });
    assert_eq!(kinds(&events), ["attempt_interrupted"]);
    assert!(core.dispatch().is_empty());
}

#[test]
fn a_degraded_task_does_not_take_a_second_fallback() {
    // `y`'s fallback sends it to pool `p` itself: once degraded there, an open
    // breaker leaves it queued instead of falling back again.
    let pool = BREAKER_POOL.replace("concurrency = 2", "concurrency = 1");
    let mut core =
        Core::new(&format!("{RETRY}{pool}[[task]]\nid = \"x\"\n[[task]]\nid = \"y\"\nfallback = {{ pool = \"p\" }}\n"));
    core.dispatch();
    let events = core.batch(Input::BreakerTrip { pool: "p".into() });
    assert_eq!(kinds(&events), ["breaker_opened", "fallback_used"]);
    assert!(core.task("y").degraded);
    assert_eq!(core.task("y").state, TaskState::Queued);
    assert!(core.dispatch().is_empty(), "no second fallback, no start on the open pool");
}

#[test]
fn a_task_without_fallback_waits_behind_an_open_breaker() {
    let pool = BREAKER_POOL.replace("concurrency = 2", "concurrency = 1");
    let mut core = Core::new(&format!("{RETRY}{pool}[[task]]\nid = \"x\"\n[[task]]\nid = \"y\"\n"));
    core.dispatch();
    assert_eq!(kinds(&core.batch(Input::BreakerTrip { pool: "p".into() })), ["breaker_opened"]);
    // x ends and frees the slot; y has no fallback, so it waits for the breaker.
    assert_eq!(kinds(&core.batch(finished("x", 1, success()))), ["attempt_succeeded"]);
    assert_eq!(core.task("y").state, TaskState::Queued);
}
