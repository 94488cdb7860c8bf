//! Time travel in bounded time: the run shown at any cursor equals a fold of the log
//! up to there (whatever path the cursor took, and while records keep arriving); a
//! move of the cursor folds at most a checkpoint's spacing of records, entering folds
//! none; the per-task history at the cursor is the history of that prefix.
//! The log is the scripted run of `tui_model.rs` (retries, dead letters, replays,
//! cancels, payload edits, pauses, spawn notes, a crash and a clean stop).

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState, TaskStateName};
use pitboss::io::journal::Record;
use pitboss::tui::model::Fleet;
use proptest::prelude::*;

const T0: u64 = 1_790_000_000_000;
const TASKS: usize = 1_500;
const RECORDS: usize = 10_000;

/// 1,500 tasks over three pools; every fourth depends on the one before it (so dead
/// letters skip dependents, and replays revive them).
fn workflow_text() -> String {
    let mut text =
        "[run]\nname = \"long\"\n[defaults]\nretry = { max_attempts = 2, initial = \"1s\", jitter = false }\n"
            .to_string();
    for p in ["a", "b", "c"] {
        text += &format!("[[pool]]\nname = \"{p}\"\ncommand = [\"agent\"]\nconcurrency = 6\n");
    }
    for i in 0..TASKS {
        let pool = ["a", "b", "c"][i % 3];
        text += &format!("[[task]]\nid = \"t{i:04}\"\npool = \"{pool}\"\n");
        if i % 4 == 3 {
            text += &format!("depends_on = [\"t{:04}\"]\n", i - 1);
        }
    }
    text
}

/// Drives the core as the engine does, with a fixed pseudo-random operator and fleet.
struct Driver {
    state: RunState,
    records: Vec<Record>,
    now: u64,
    seed: u64,
    /// Attempts in flight: (task, attempt).
    running: Vec<(String, u32)>,
}

impl Driver {
    fn new() -> Driver {
        let workflow = config::parse(&workflow_text(), "long.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-long".into(), workflow: Box::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let mut driver = Driver {
            state,
            records: vec![Record { seq: 1, ts: T0, event: first }],
            now: T0,
            seed: 7,
            running: Vec::new(),
        };
        driver.input(Input::Start { pid: 1, version: "test".into(), resumed: false });
        driver
    }

    fn random(&mut self) -> u64 {
        // xorshift: fixed seed, so the log is the same on every run.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn input(&mut self, input: Input) {
        self.now += 100;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            // The attempts in flight, for the next tick to pick from.
            match &event {
                Event::AttemptStarted { task, attempt, .. } => self.running.push((task.clone(), *attempt)),
                Event::AttemptSucceeded { task, .. }
                | Event::AttemptFailed { task, .. }
                | Event::AttemptInterrupted { task, .. }
                | Event::TaskCancelled { task, .. } => self.running.retain(|(t, _)| t != task),
                _ => {}
            }
            let seq = self.records.len() as u64 + 1;
            self.records.push(Record { seq, ts: self.now, event });
        }
    }

    fn ids_where(&self, keep: impl Fn(&TaskState) -> bool) -> Vec<String> {
        (0..TASKS).filter(|&i| keep(&self.state.tasks[i].state)).map(|i| self.state.task_id(i).to_string()).collect()
    }

    /// One attempt ends (or reports its process), then whatever the operator does.
    fn tick(&mut self) {
        let r = self.random();
        let pick = r as usize % self.running.len().max(1);
        if let Some((task, attempt)) = self.running.get(pick).cloned() {
            let input = match r % 7 {
                0 => Input::Spawned { task: task.clone(), attempt, pid: 1000 + attempt },
                1 | 2 => Input::Finished { task: task.clone(), attempt, outcome: failure(attempt) },
                _ => Input::Finished { task: task.clone(), attempt, outcome: success() },
            };
            self.input(input);
            // A retry's timer fires at once: time is not what this test is about.
            let i = self.state.task_index(&task).unwrap();
            if let TaskState::RetryWait { due_ms } = self.state.tasks[i].state {
                self.input(Input::RetryTimer { task, due_ms });
            }
        }
        self.operator(r);
    }

    fn operator(&mut self, r: u64) {
        if r.is_multiple_of(5) {
            let dead = self.ids_where(|s| matches!(s, TaskState::DeadLettered { .. }));
            if let Some(task) = dead.first().cloned() {
                self.input(Input::EditPayload { task: task.clone(), payload: serde_json::json!({ "n": r % 100 }) });
                self.input(Input::Requeue { task, reason: "test".into() });
            }
        }
        if r.is_multiple_of(23) {
            let waiting = self.ids_where(|s| matches!(s, TaskState::Queued | TaskState::Blocked));
            if let Some(task) = waiting.get(r as usize % waiting.len().max(1)).cloned() {
                self.input(Input::Cancel { task, reason: "test".into() });
            }
        }
        if r.is_multiple_of(29) {
            self.input(Input::PausePool { pool: "b".into() });
        } else if r % 29 == 1 {
            self.input(Input::ResumePool { pool: "b".into() });
        }
        if self.state.count(TaskStateName::Running) == 0 {
            // Nothing moves on its own: the operator brings everything back.
            self.input(Input::ResumePool { pool: "b".into() });
            for task in self.ids_where(|s| matches!(s, TaskState::DeadLettered { .. } | TaskState::Cancelled { .. })) {
                self.input(Input::Requeue { task, reason: "test".into() });
            }
        }
    }

    /// A manager crash (attempts in flight fail as crashed) and a clean stop (attempts
    /// interrupted), each followed by a resume.
    fn crash_and_stop(&mut self) {
        self.input(Input::Start { pid: 2, version: "test".into(), resumed: true });
        self.input(Input::Interrupt { reason: "test stop".into() });
        for (task, attempt) in self.running.clone() {
            self.input(Input::AttemptStopped { task, attempt, reason: "test stop".into() });
        }
        self.input(Input::Start { pid: 3, version: "test".into(), resumed: true });
    }
}

fn success() -> Outcome {
    Outcome::Success {
        result: serde_json::json!({ "ok": true }),
        exit_code: Some(0),
        duration_ms: 500,
        output: SmallOutput { stdout: Some("done\n".into()), stderr: None },
    }
}

fn failure(attempt: u32) -> Outcome {
    Outcome::Failure {
        class: FailureClass::Worker,
        error: format!("exit code {attempt}: flaky"),
        exit_code: Some(attempt as i32),
        signal: None,
        duration_ms: 300,
        output: SmallOutput::default(),
    }
}

fn long_log() -> Vec<Record> {
    let mut driver = Driver::new();
    let mut ticks = 0;
    while driver.records.len() < RECORDS {
        driver.tick();
        ticks += 1;
        if ticks == 400 {
            driver.crash_and_stop();
        }
        assert!(ticks < 100_000, "the scripted run stopped growing at {} records", driver.records.len());
    }
    driver.records
}

/// The run shown by `fleet` is the run `expected` folded from scratch.
fn assert_same(fleet: &Fleet, expected: &Fleet, what: &str) {
    assert_eq!(fleet.state.tasks, expected.state.tasks, "{what}: tasks");
    for name in TaskStateName::ALL {
        assert_eq!(fleet.state.count(name), expected.state.count(name), "{what}: {name} count");
    }
    let queued = |f: &Fleet| f.state.pools.iter().map(|p| p.queued).collect::<Vec<_>>();
    assert_eq!(queued(fleet), queued(expected), "{what}: pool queues");
    assert_eq!(fleet.state.finished, expected.state.finished, "{what}: finished");
    assert_eq!(fleet.running().collect::<Vec<_>>(), expected.running().collect::<Vec<_>>(), "{what}: running");
    assert_eq!(fleet.dead_letters().collect::<Vec<_>>(), expected.dead_letters().collect::<Vec<_>>(), "{what}: dead");
    assert_eq!(fleet.held().collect::<Vec<_>>(), expected.held().collect::<Vec<_>>(), "{what}: held");
    assert_eq!(fleet.last_ts, expected.last_ts, "{what}: last_ts");
    assert_eq!(fleet.queue_depth, expected.queue_depth, "{what}: queue depth");
    assert_eq!(fleet.completions, expected.completions, "{what}: completions");
    let mut live: Vec<_> = fleet.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    let mut want: Vec<_> = expected.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    live.sort();
    want.sort();
    assert_eq!(live, want, "{what}: attempts in flight");
    for i in 0..TASKS {
        assert_eq!(fleet.history(i), expected.history(i), "{what}: history of task {i}");
    }
}

fn log() -> &'static [Record] {
    static LOG: std::sync::OnceLock<Vec<Record>> = std::sync::OnceLock::new();
    LOG.get_or_init(long_log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Jumps and steps in any order: each cursor shows the fold of the log up to it.
    #[test]
    fn travel_at_any_cursor_equals_a_fold_from_the_start(
        moves in prop::collection::vec((1usize..RECORDS, -3i64..3), 1..5)
    ) {
        let records = log();
        let mut fleet = Fleet::from_records(records).unwrap();
        prop_assert!(fleet.checkpoints() >= 2, "the log spans checkpoints");
        for (jump, step) in moves {
            for n in [jump, (jump as i64 + step).clamp(1, records.len() as i64) as usize] {
                let before = fleet.travel_folds();
                fleet.travel_to(Some(n)).unwrap();
                prop_assert_eq!(fleet.travelling(), Some(n));
                prop_assert!(fleet.travel_folds() - before <= fleet.checkpoint_spacing() as u64);
                assert_same(&fleet, &Fleet::from_records(&records[..n]).unwrap(), &format!("cursor {n}"));
            }
        }
        fleet.travel_to(None).unwrap();
        prop_assert_eq!(fleet.travelling(), None);
        assert_same(&fleet, &Fleet::from_records(records).unwrap(), "back to live");
    }
}

#[test]
fn entering_folds_nothing_and_each_step_back_folds_at_most_the_spacing() {
    let records = log();
    let mut fleet = Fleet::from_records(records).unwrap();
    let spacing = fleet.checkpoint_spacing() as u64;
    fleet.travel_to(Some(records.len())).unwrap();
    assert_eq!(fleet.travel_folds(), 0, "entering time travel refolds nothing");
    // Step back one record at a time across a checkpoint, as ← does.
    let checkpoint = (records.len() - 1) / spacing as usize * spacing as usize;
    fleet.travel_to(Some(checkpoint + 20)).unwrap();
    let mut worst = 0;
    for n in (checkpoint - 20..checkpoint + 20).rev() {
        let before = fleet.travel_folds();
        fleet.travel_to(Some(n)).unwrap();
        worst = worst.max(fleet.travel_folds() - before);
    }
    assert!(worst <= spacing, "a step back folded {worst} records (spacing {spacing})");
    assert!(worst > 0, "steps back fold from a checkpoint");
    // Stepping forward folds only the record stepped over.
    let before = fleet.travel_folds();
    let n = fleet.travelling().unwrap();
    fleet.travel_to(Some(n + 1)).unwrap();
    assert_eq!(fleet.travel_folds() - before, 1);
}

#[test]
fn records_arriving_while_travelling_reach_the_live_run_not_the_past() {
    let records = log();
    let half = records.len() / 2;
    let mut fleet = Fleet::from_records(&records[..half]).unwrap();
    fleet.travel_to(Some(1_000)).unwrap();
    fleet.add_output("t0000", 1, b"ignored while travelling, or kept for live\n", T0);
    for record in &records[half..] {
        fleet.apply(record).unwrap();
    }
    // The past stays where it was…
    assert_same(&fleet, &Fleet::from_records(&records[..1_000]).unwrap(), "past while records arrive");
    // …the cursor can now reach the new records…
    fleet.travel_to(Some(records.len() - 1)).unwrap();
    assert_same(&fleet, &Fleet::from_records(&records[..records.len() - 1]).unwrap(), "a new record");
    // …and leaving shows the live run with every record.
    fleet.travel_to(None).unwrap();
    assert_same(&fleet, &Fleet::from_records(records).unwrap(), "live again");
    assert_eq!(fleet.records.len(), records.len());
}

#[test]
fn checkpoints_stay_bounded_on_a_long_log() {
    let records = log();
    let mut fleet = Fleet::from_records(&records[..1]).unwrap();
    // The same log three times over is not a valid run; a long log of the same
    // shape is: count checkpoints while folding, whatever the length.
    for record in &records[1..] {
        fleet.apply(record).unwrap();
        assert!(fleet.checkpoints() <= pitboss::tui::model::MAX_CHECKPOINTS);
    }
    assert_eq!(fleet.checkpoints(), records.len() / fleet.checkpoint_spacing());
}
