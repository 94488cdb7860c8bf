//! The fixture of the TUI's view-state tests: a run driven through the core as the
//! engine drives it (a step, then a dispatch, on a virtual clock 250 ms apart), its
//! records folded into the TUI's read model one by one, as the feed delivers them.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::model::Fleet;

/// The virtual epoch of the run's first record.
pub const T0: u64 = 1_790_000_000_000;

/// The run's state as the engine holds it, and the model the TUI folds from its records.
pub struct Run {
    pub state: RunState,
    pub fleet: Fleet,
    pub seq: u64,
    pub now: u64,
}

impl Run {
    /// `workflow` (TOML) started and its first attempts dispatched.
    pub fn start(workflow: &str) -> Run {
        let workflow = config::parse(workflow, "workflow.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let fleet = Fleet::from_records(&[Record { seq: 1, ts: T0, event: first }]).unwrap();
        let mut run = Run { state, fleet, seq: 1, now: T0 };
        run.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
        run
    }

    /// One input 250 ms after the last, its events and the dispatch after it folded.
    pub fn input(&mut self, input: Input) {
        self.now += 250;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            self.seq += 1;
            self.fleet.apply(&Record { seq: self.seq, ts: self.now, event }).unwrap();
        }
    }

    /// `task`'s first attempt succeeds, having taken `duration_ms`.
    pub fn succeed(&mut self, task: &str, duration_ms: u64) {
        let outcome = Outcome::Success {
            result: serde_json::json!({}),
            exit_code: Some(0),
            duration_ms,
            output: SmallOutput::default(),
        };
        self.input(Input::Finished { task: task.into(), attempt: 1, outcome });
    }

    /// `task`'s first attempt fails with exit code 2 and `error`.
    pub fn fail(&mut self, task: &str, error: &str) {
        let outcome = Outcome::Failure {
            class: FailureClass::Worker,
            error: error.into(),
            exit_code: Some(2),
            signal: None,
            duration_ms: 100,
            output: SmallOutput::default(),
        };
        self.input(Input::Finished { task: task.into(), attempt: 1, outcome });
    }
}
