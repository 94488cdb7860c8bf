//! Broker mode in the pure core (DESIGN §5, §7, issue 16): a lost remote worker's
//! attempt is interrupted and not spent (a poison pill after 3 lost managers or
//! workers in a row); a stale loss changes nothing; a broker outage pauses dispatch;
//! a broker pool takes no more attempts than its live workers have slots (plus one
//! read ahead per worker); a late
//! result is recorded and ignored; and the fleet folds the same from the log, and
//! through a snapshot, as it was live.

use std::path::Path;
use std::sync::Arc;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::event::{WorkerRef, WorkerRegistered};
use pitboss::core::state::remote::{Presence, VANISHED_KEPT};
use pitboss::core::state::{BodyIn, BodyOut};
use pitboss::core::{step, AfterFailure, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState};

const BROKER: &str = "redis://127.0.0.1:6379";

/// A core driven by hand, keeping every record as the journal would.
struct Core {
    state: RunState,
    now: u64,
    first: Event,
    log: Vec<(Event, u64)>,
}

impl Core {
    fn new(toml: &str) -> Core {
        let workflow = config::parse(toml, "broker.toml", Path::new("/base")).expect("test workflow is valid");
        let first = Event::RunStarted { run_id: "r".into(), workflow: Arc::new(workflow) };
        let state = RunState::from_first(&first).expect("run_started starts a state");
        let mut core = Core { state, now: 1_000_000, first, log: Vec::new() };
        core.input(Input::Start { pid: 1, version: "t".into(), resumed: false });
        core
    }

    /// Two tasks on one broker pool `p` that asks for `gpu`, concurrency 4.
    fn fleet() -> Core {
        Core::new(&format!(
            "[run]\nbroker = \"{BROKER}\"\n[[pool]]\nname = \"p\"\ncapabilities = [\"gpu\"]\nconcurrency = 4\n\
             [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n"
        ))
    }

    fn ctx(&self) -> StepContext {
        StepContext { now_ms: self.now, jitter: 0.0 }
    }

    fn input(&mut self, input: Input) -> Vec<Event> {
        let ctx = self.ctx();
        let events = step(&mut self.state, input, ctx).expect("the core accepts its own events");
        self.log.extend(events.iter().map(|e| (e.clone(), self.now)));
        events
    }

    fn dispatch(&mut self) -> Vec<Event> {
        let ctx = self.ctx();
        let events = dispatch(&mut self.state, ctx).expect("dispatch accepts its own events");
        self.log.extend(events.iter().map(|e| (e.clone(), self.now)));
        events
    }

    fn task(&self, id: &str) -> &pitboss::core::Task {
        &self.state.tasks[self.state.task_index(id).expect("task exists")]
    }

    fn running(&self, id: &str) -> u32 {
        match &self.task(id).state {
            TaskState::Running { attempt, .. } => *attempt,
            other => panic!("{id} is not running but {other:?}"),
        }
    }

    /// Worker `n` of pool `p` on host `hN`, with `slots` slots and the `gpu` capability.
    fn worker_seen(&mut self, n: u32, slots: usize) -> Vec<Event> {
        self.input(Input::WorkerSeen(registration(n, slots, &["gpu"])))
    }

    /// `task`'s running attempt starts on worker `n`.
    fn spawned_on(&mut self, task: &str, n: u32) {
        let attempt = self.running(task);
        let worker = Some(worker_ref(n));
        self.input(Input::Spawned { task: task.into(), attempt, pid: 500 + n, worker });
    }

    fn lost(&mut self, task: &str, attempt: u32, n: u32, started: bool) -> Vec<Event> {
        let reason = "lease expired".to_string();
        self.input(Input::WorkerLost { task: task.into(), attempt, worker: worker_ref(n), reason, started })
    }

    /// The state folded again from the log.
    fn refold(&self) -> RunState {
        let mut state = RunState::from_first(&self.first).expect("first record");
        for (event, ts) in &self.log {
            state.apply(event, *ts).expect("the log folds");
        }
        state
    }
}

fn registration(n: u32, slots: usize, caps: &[&str]) -> WorkerRegistered {
    WorkerRegistered {
        pool: "p".into(),
        worker: format!("h{n}:{}:00ff", 500 + n),
        host: format!("h{n}"),
        pid: 500 + n,
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
        version: "0.1.0".into(),
        concurrency: slots,
    }
}

fn worker_ref(n: u32) -> WorkerRef {
    WorkerRef { id: format!("h{n}:{}:00ff", 500 + n), host: format!("h{n}") }
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn success() -> Outcome {
    Outcome::Success {
        result: serde_json::json!({"ok": 1}),
        exit_code: Some(0),
        duration_ms: 3,
        output: SmallOutput::default(),
    }
}

#[test]
fn a_broker_pool_waits_for_workers_and_takes_no_more_than_their_slots() {
    let mut core = Core::fleet();
    assert!(core.dispatch().is_empty(), "no worker: both tasks stay queued in the manager");
    // A worker without the pool's capability offers nothing.
    core.input(Input::WorkerSeen(registration(9, 8, &[])));
    assert!(core.dispatch().is_empty());
    assert_eq!(kinds(&core.worker_seen(1, 1)), ["worker_registered"]);
    // One slot, and one attempt read ahead so that the slot never waits for a trip
    // through the manager: both are sent, neither runs until a worker starts it.
    assert_eq!(kinds(&core.dispatch()), ["attempt_started", "attempt_started"], "one slot + one read ahead");
    assert_eq!((core.state.pool_capacity(0), core.state.pool_slots(0)), (2, 1));
    assert_eq!(core.state.pool_waiting_remote(0), 2, "sent, not started");
    core.spawned_on("a", 1);
    assert_eq!(core.state.pool_waiting_remote(0), 1, "a runs, b is on the broker");
    // Seeing it again unchanged records nothing; a second worker adds its slot and
    // its read-ahead.
    assert!(core.worker_seen(1, 1).is_empty());
    core.worker_seen(2, 1);
    assert_eq!((core.state.pool_capacity(0), core.state.pool_slots(0)), (4, 2));
    // The pool's concurrency still caps many slots.
    core.worker_seen(3, 100);
    assert_eq!((core.state.pool_capacity(0), core.state.pool_slots(0)), (4, 4));
}

#[test]
fn a_lost_worker_interrupts_its_attempt_without_spending_it() {
    let mut core = Core::fleet();
    core.worker_seen(1, 2);
    core.dispatch();
    core.spawned_on("a", 1);
    assert_eq!(core.state.remote.placement("a", 1).map(|p| p.host.as_str()), Some("h1"));
    let events = core.lost("a", 1, 1, true);
    assert_eq!(kinds(&events), ["worker_lost", "attempt_interrupted"]);
    let Event::AttemptInterrupted { reason, .. } = &events[1] else { unreachable!() };
    assert_eq!(reason, "worker lost (h1)");
    let Event::WorkerLost(lost) = &events[0] else { unreachable!() };
    assert_eq!((lost.pool.as_str(), lost.task.as_deref(), lost.attempt, lost.started), ("p", Some("a"), Some(1), true));
    assert_eq!(core.task("a").state, TaskState::Queued);
    assert_eq!(core.task("a").attempts, 0, "the attempt is not spent");
    assert_eq!(core.task("a").crashes, 1);
    assert!(matches!(core.state.remote.workers["h1:501:00ff"].presence, Presence::Gone { .. }));
    // Its worker gone, nothing runs until one registers; then `a` runs attempt 1 again.
    assert!(core.dispatch().iter().all(|e| e.task() != Some("a")));
    core.worker_seen(2, 2);
    core.dispatch();
    assert_eq!(core.running("a"), 1);
}

#[test]
fn three_started_losses_in_a_row_make_a_poison_pill_and_a_success_breaks_the_row() {
    let mut core = Core::fleet();
    for round in 1..=3u32 {
        core.worker_seen(round, 2);
        core.dispatch();
        core.spawned_on("a", round);
        let events = core.lost("a", 1, round, true);
        if round < 3 {
            assert_eq!(kinds(&events), ["worker_lost", "attempt_interrupted"], "round {round}");
        } else {
            assert_eq!(kinds(&events), ["worker_lost", "attempt_failed"]);
            let Event::AttemptFailed { class, then, .. } = &events[1] else { unreachable!() };
            assert_eq!(*class, FailureClass::WorkerLost);
            let AfterFailure::DeadLetter { reason } = then else { panic!("{then:?}") };
            assert_eq!(reason, "poison pill: in flight during 3 lost managers or workers in a row");
        }
    }
    assert_eq!(core.task("a").state.name().as_str(), "dead_lettered");
    // `b` lost twice, then succeeding: its row starts over.
    let mut core = Core::fleet();
    core.worker_seen(1, 2);
    core.dispatch();
    for _ in 0..2 {
        core.spawned_on("b", 1);
        core.lost("b", 1, 1, true);
        core.worker_seen(1, 2);
        core.dispatch();
    }
    assert_eq!(core.task("b").crashes, 2);
    core.input(Input::Finished { task: "b".into(), attempt: 1, outcome: success() });
    assert_eq!(core.task("b").crashes, 0);
}

#[test]
fn manager_crashes_and_lost_workers_count_in_one_row() {
    let mut core = Core::fleet();
    core.worker_seen(1, 2);
    core.dispatch();
    core.spawned_on("a", 1);
    core.lost("a", 1, 1, true);
    core.worker_seen(1, 2);
    core.dispatch();
    core.spawned_on("a", 1);
    // A manager dies with `a` in flight: the new one counts the second in the row,
    // and keeps `a` (and `b`) running on their workers.
    let events = core.input(Input::Start { pid: 2, version: "t".into(), resumed: true });
    assert_eq!(kinds(&events), ["manager_started"], "remote attempts outlive the manager");
    assert_eq!(core.task("a").crashes, 2);
    assert_eq!(core.running("a"), 1);
    // The workers are not counted until they register with the new manager.
    assert!(core.dispatch().is_empty());
    assert_eq!(kinds(&core.worker_seen(1, 2)), ["worker_registered"], "seen again after the takeover");
    let events = core.lost("a", 1, 1, true);
    assert_eq!(kinds(&events), ["worker_lost", "attempt_failed"], "third in a row: the poison pill");
}

#[test]
fn a_delivery_never_started_or_a_stale_loss_counts_nothing() {
    let mut core = Core::fleet();
    core.worker_seen(1, 2);
    core.dispatch();
    // Reclaimed before the worker started it: interrupted, not counted.
    assert_eq!(kinds(&core.lost("a", 1, 1, false)), ["worker_lost", "attempt_interrupted"]);
    assert_eq!(core.task("a").crashes, 0);
    core.worker_seen(1, 2);
    core.dispatch();
    core.input(Input::Finished { task: "a".into(), attempt: 1, outcome: success() });
    // A loss reported after the attempt ended: only the note.
    let events = core.lost("a", 1, 1, true);
    assert_eq!(kinds(&events), ["worker_lost"]);
    let Event::WorkerLost(lost) = &events[0] else { unreachable!() };
    assert!(!lost.started, "a stale loss counts toward nothing");
    assert_eq!(core.task("a").state.name().as_str(), "completed");
    // An unknown task: nothing at all.
    let input = Input::WorkerLost {
        task: "ghost".into(),
        attempt: 1,
        worker: worker_ref(1),
        reason: "lease expired".into(),
        started: true,
    };
    assert!(core.input(input).is_empty());
}

#[test]
fn dispatch_pauses_while_the_broker_is_down_and_resumes_when_it_is_back() {
    let mut core = Core::fleet();
    core.worker_seen(1, 4);
    let down = Input::BrokerDown { broker: BROKER.into(), reason: "connection refused".into() };
    assert_eq!(kinds(&core.input(down.clone())), ["broker_down"]);
    assert!(core.input(down).is_empty(), "already down");
    assert!(core.state.remote.is_down());
    assert!(core.dispatch().is_empty(), "nothing starts while the broker is down");
    core.now += 12_000;
    let up = Input::BrokerUp { broker: BROKER.into(), down_ms: 12_000, republished: 0 };
    assert_eq!(kinds(&core.input(up.clone())), ["broker_up"]);
    assert!(core.input(up).is_empty(), "already up");
    assert_eq!(kinds(&core.dispatch()), ["attempt_started", "attempt_started"]);
}

#[test]
fn a_late_result_is_recorded_and_changes_nothing() {
    let mut core = Core::fleet();
    core.worker_seen(1, 4);
    core.dispatch();
    core.input(Input::Finished { task: "a".into(), attempt: 1, outcome: success() });
    let before = core.state.tasks[0].clone();
    let late =
        Input::ResultDuplicate { task: "a".into(), attempt: 1, worker: "h1:501:00ff".into(), reason: "late".into() };
    assert_eq!(kinds(&core.input(late)), ["result_duplicate"]);
    assert_eq!(core.state.tasks[0], before);
}

#[test]
fn a_gone_worker_is_noted_once_and_vanished_ones_are_bounded() {
    let mut core = Core::fleet();
    core.worker_seen(1, 1);
    let gone =
        Input::WorkerGone { pool: "p".into(), worker: "h1:501:00ff".into(), reason: "registration expired".into() };
    assert_eq!(kinds(&core.input(gone.clone())), ["worker_lost"]);
    assert!(core.input(gone).is_empty(), "already gone");
    assert_eq!(core.state.pool_capacity(0), 0);
    let unknown = Input::WorkerGone { pool: "p".into(), worker: "never-seen".into(), reason: "left".into() };
    assert!(core.input(unknown).is_empty());
    for n in 0..(VANISHED_KEPT as u32 + 10) {
        core.now += 1;
        core.worker_seen(100 + n, 1);
        let worker = format!("h{}:{}:00ff", 100 + n, 600 + n);
        core.input(Input::WorkerGone { pool: "p".into(), worker, reason: "left".into() });
    }
    let vanished = core.state.remote.workers.values().filter(|w| matches!(w.presence, Presence::Gone { .. })).count();
    assert_eq!(vanished, VANISHED_KEPT);
    assert!(!core.state.remote.workers.contains_key("h1:501:00ff"), "the longest gone is forgotten first");
}

#[test]
fn the_fleet_folds_the_same_from_the_log_and_through_a_snapshot() {
    let mut core = Core::fleet();
    core.worker_seen(1, 2);
    core.worker_seen(2, 1);
    core.dispatch();
    core.spawned_on("a", 1);
    core.spawned_on("b", 2);
    core.lost("b", 1, 2, true);
    core.input(Input::BrokerDown { broker: BROKER.into(), reason: "reset".into() });
    let refolded = core.refold();
    assert_eq!(refolded.remote, core.state.remote);
    assert_eq!(refolded.tasks[1], core.state.tasks[1]);
    let body = serde_json::to_string(&BodyOut(&core.state)).expect("a body");
    let body: BodyIn = serde_json::from_str(&body).expect("it reads back");
    let workflow = pitboss::core::workflow::Workflow::clone(&core.state.workflow);
    let reopened = RunState::from_parts(RunState::prepare(workflow).unwrap(), body).expect("joins");
    assert_eq!(reopened.remote, core.state.remote);
    assert!(reopened.remote.is_down());
    // A body written before broker mode (no `remote`) still opens, with none.
    let mut old: serde_json::Value = serde_json::to_value(BodyOut(&core.state)).unwrap();
    old.as_object_mut().unwrap().remove("remote");
    let body: BodyIn = serde_json::from_value(old).expect("an older body reads");
    let workflow = pitboss::core::workflow::Workflow::clone(&core.state.workflow);
    let reopened = RunState::from_parts(RunState::prepare(workflow).unwrap(), body).expect("joins");
    assert!(reopened.remote.is_empty());
}

#[test]
fn a_run_without_a_broker_is_untouched() {
    let mut core = Core::new("[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\nconcurrency = 2\n[[task]]\nid = \"a\"\n");
    assert_eq!(kinds(&core.dispatch()), ["attempt_started"], "local pools need no workers");
    assert!(core.state.remote.is_empty());
    assert!(!serde_json::to_string(&BodyOut(&core.state)).unwrap().contains("remote"));
}

#[test]
fn an_attempt_started_again_is_not_placed_where_it_ran_before() {
    let mut core = Core::fleet();
    core.worker_seen(1, 1);
    core.worker_seen(2, 1);
    core.dispatch();
    core.spawned_on("a", 1);
    core.lost("a", 1, 1, true);
    core.worker_seen(3, 1);
    core.dispatch();
    assert_eq!(core.running("a"), 1, "attempt 1 again");
    assert_eq!(core.state.remote.placement("a", 1), None, "not on the lost worker");
    core.spawned_on("a", 3);
    assert_eq!(core.state.remote.placement("a", 1).map(|p| p.host.as_str()), Some("h3"));
}

#[test]
fn a_manager_crash_keeps_remote_attempts_running_and_takes_their_result_once() {
    let mut core = Core::fleet();
    core.worker_seen(1, 4);
    core.dispatch();
    core.spawned_on("a", 1);
    let events = core.input(Input::Start { pid: 2, version: "t".into(), resumed: true });
    assert_eq!(kinds(&events), ["manager_started"]);
    // Both attempts still run, under their own numbers: nothing spent, nothing re-dispatched.
    assert_eq!((core.running("a"), core.running("b")), (1, 1));
    assert_eq!((core.task("a").crashes, core.task("b").crashes), (1, 1), "the crash counts");
    assert!(core.dispatch().is_empty(), "no second attempt of a running task");
    // The result the worker wrote while no manager ran is taken, once.
    let done = core.input(Input::Finished { task: "a".into(), attempt: 1, outcome: success() });
    assert_eq!(kinds(&done), ["attempt_succeeded"]);
    assert_eq!(core.task("a").crashes, 0, "a result breaks the row");
    let late = Input::ResultDuplicate {
        task: "a".into(),
        attempt: 1,
        worker: "h1:501:00ff".into(),
        reason: "duplicate".into(),
    };
    let before = core.task("a").clone();
    assert_eq!(kinds(&core.input(late)), ["result_duplicate"]);
    assert_eq!(*core.task("a"), before);
    assert_eq!(core.refold().tasks, core.state.tasks, "the log folds to the same tasks");
}

#[test]
fn three_manager_crashes_with_a_remote_attempt_in_flight_make_a_poison_pill() {
    let mut core = Core::fleet();
    core.worker_seen(1, 4);
    core.dispatch();
    for pid in 2..=3 {
        let events = core.input(Input::Start { pid, version: "t".into(), resumed: true });
        assert_eq!(kinds(&events), ["manager_started"], "crash {}", pid - 1);
    }
    let events = core.input(Input::Start { pid: 4, version: "t".into(), resumed: true });
    assert_eq!(kinds(&events), ["manager_started", "attempt_failed", "attempt_failed"], "a and b");
    let Event::AttemptFailed { class, then, .. } = &events[1] else { unreachable!() };
    assert_eq!(*class, FailureClass::ManagerCrashed);
    assert!(matches!(then, AfterFailure::DeadLetter { .. }), "{then:?}");
    assert_eq!(core.task("a").state.name().as_str(), "dead_lettered");
}

#[test]
fn a_local_run_still_hands_back_its_attempts_at_a_manager_crash() {
    let mut core = Core::new("[[pool]]\nname = \"p\"\ncommand = [\"true\"]\n[[task]]\nid = \"a\"\n");
    core.dispatch();
    let events = core.input(Input::Start { pid: 2, version: "t".into(), resumed: true });
    assert_eq!(kinds(&events), ["manager_started", "attempt_interrupted"]);
}

#[test]
fn a_task_whose_worker_died_runs_next_not_behind_the_queue() {
    let mut core = Core::new(&format!(
        "[run]\nbroker = \"{BROKER}\"\n[[pool]]\nname = \"p\"\nconcurrency = 2\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n[[task]]\nid = \"c\"\n[[task]]\nid = \"d\"\n"
    ));
    // The pool's concurrency (2) is the worker's slots: no extra attempt waits on
    // the broker (read-ahead), so c and d stay queued in the manager.
    core.input(Input::WorkerSeen(registration(1, 2, &[])));
    core.dispatch();
    core.spawned_on("a", 1);
    core.spawned_on("b", 1);
    // Worker 1 dies with a and b; c and d were queued before them meanwhile.
    core.lost("b", 1, 1, true);
    core.lost("a", 1, 1, true);
    assert_eq!(core.state.dispatch_order().collect::<Vec<_>>(), [1, 0, 2, 3], "lost first, in the order lost");
    // One slot: the first task lost goes next, then the other.
    core.input(Input::WorkerSeen(registration(2, 1, &[])));
    core.dispatch();
    assert_eq!(core.running("b"), 1, "c was dispatched before the task whose worker died");
    assert_eq!(core.task("c").state, TaskState::Queued);
    core.input(Input::Finished { task: "b".into(), attempt: 1, outcome: success() });
    core.dispatch();
    assert_eq!(core.running("a"), 1);
    assert!(core.state.remote.first.is_empty(), "both left the front when they started");
    // The order is part of the state: folded from the log the same.
    assert_eq!(core.refold().remote, core.state.remote);
}
