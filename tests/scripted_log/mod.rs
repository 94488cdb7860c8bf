//! A long scripted run for the TUI's read-model tests (`tui_model.rs`,
//! `tui_travel.rs`): 10,000+ records of successes, failures, retries, dead letters,
//! replays, cancels, payload edits, pauses, spawn notes, a crash and a clean stop,
//! made by the real core from a real workflow.
#![allow(dead_code)] // each test file uses a different part

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState, TaskStateName};
use pitboss::io::journal::Record;

pub const T0: u64 = 1_790_000_000_000;
pub const TASKS: usize = 1_500;
pub const RECORDS: usize = 10_000;

/// 1,500 tasks over three pools; every fourth depends on the one before it (so dead
/// letters skip dependents, and replays revive them).
pub fn workflow_text() -> String {
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
pub struct Driver {
    pub state: RunState,
    pub records: Vec<Record>,
    pub now: u64,
    pub seed: u64,
    /// Attempts in flight: (task, attempt).
    pub running: Vec<(String, u32)>,
}

impl Driver {
    pub fn new() -> Driver {
        let workflow = config::parse(&workflow_text(), "long.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-long".into(), workflow: std::sync::Arc::new(workflow) };
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

    pub fn random(&mut self) -> u64 {
        // xorshift: fixed seed, so the log is the same on every run.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    pub fn input(&mut self, input: Input) {
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

    pub fn ids_where(&self, keep: impl Fn(&TaskState) -> bool) -> Vec<String> {
        (0..TASKS).filter(|&i| keep(&self.state.tasks[i].state)).map(|i| self.state.task_id(i).to_string()).collect()
    }

    /// One attempt ends (or reports its process), then whatever the operator does.
    pub fn tick(&mut self) {
        let r = self.random();
        let pick = r as usize % self.running.len().max(1);
        if let Some((task, attempt)) = self.running.get(pick).cloned() {
            let input = match r % 7 {
                0 => Input::Spawned { task: task.clone(), attempt, pid: 1000 + attempt, worker: None },
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

    pub fn operator(&mut self, r: u64) {
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
    pub fn crash_and_stop(&mut self) {
        self.input(Input::Start { pid: 2, version: "test".into(), resumed: true });
        self.input(Input::Interrupt { reason: "test stop".into() });
        for (task, attempt) in self.running.clone() {
            self.input(Input::AttemptStopped { task, attempt, reason: "test stop".into() });
        }
        self.input(Input::Start { pid: 3, version: "test".into(), resumed: true });
    }
}

pub fn success() -> Outcome {
    Outcome::Success {
        result: serde_json::json!({ "ok": true }),
        exit_code: Some(0),
        duration_ms: 500,
        output: SmallOutput { stdout: Some("done\n".into()), stderr: None },
    }
}

pub fn failure(attempt: u32) -> Outcome {
    Outcome::Failure {
        class: FailureClass::Worker,
        error: format!("exit code {attempt}: flaky"),
        exit_code: Some(attempt as i32),
        signal: None,
        duration_ms: 300,
        output: SmallOutput::default(),
    }
}

pub fn long_log() -> Vec<Record> {
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
