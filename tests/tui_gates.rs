//! Gates on screen: the header counts and the tasks table show `validating`, and the
//! task detail shows each verdict with its score and critique.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::gates::GateOutcome;
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::{Screen, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const WORKFLOW: &str = "[defaults]\nretry = { max_attempts = 3, initial = \"1s\", jitter = false }\n\
    [[pool]]\nname = \"writer\"\ncommand = [\"agent\"]\n[[pool]]\nname = \"reviewer\"\ncommand = [\"agent\"]\n\
    [[task]]\nid = \"essay\"\npool = \"writer\"\ngates = [{ command = [\"check\"] }, { review = \"reviewer\" }]\n";

struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new() -> Script {
        let wf = config::parse(WORKFLOW, "gates.toml", Path::new(".")).expect("valid");
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(wf) };
        let state = RunState::from_first(&first).expect("state");
        let mut s = Script {
            state,
            records: vec![Record { seq: 1, ts: 1_790_000_000_000, event: first }],
            now: 1_790_000_000_000,
        };
        s.input(Input::Start { pid: 1, version: "t".into(), resumed: false });
        s
    }

    fn input(&mut self, input: Input) {
        self.now += 250;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).expect("step");
        events.extend(dispatch(&mut self.state, ctx).expect("dispatch"));
        for event in events {
            let seq = self.records.len() as u64 + 1;
            self.records.push(Record { seq, ts: self.now, event });
        }
    }

    fn render(&self, vs: &ViewState) -> String {
        let fleet = Fleet::from_records(&self.records).expect("fleet");
        let mut terminal = Terminal::new(TestBackend::new(140, 24)).expect("terminal");
        let keys = Keymap::default();
        let scene = Scene {
            fleet: &fleet,
            total: fleet.records.len(),
            view: vs,
            keys: &keys,
            now_ms: self.now,
            theme: Theme { color: false },
        };
        terminal.draw(|frame| draw(frame, &scene)).expect("draw");
        format!("{}", terminal.backend())
    }
}

#[test]
fn validating_is_counted_and_verdicts_are_shown_in_the_detail() {
    let mut s = Script::new();
    let result = serde_json::json!({"text": "draft"});
    let outcome = Outcome::Success { result, exit_code: Some(0), duration_ms: 10, output: SmallOutput::default() };
    s.input(Input::Finished { task: "essay".into(), attempt: 1, outcome });
    let mut vs = ViewState::default();
    let screen = s.render(&vs);
    assert!(screen.contains("1 validating"), "{screen}");
    let passed = GateOutcome::Passed { reason: "check exited 0".into(), score: None, critique: None };
    s.input(Input::GateDone { task: "essay".into(), attempt: 1, index: 0, outcome: passed, duration_ms: 40 });
    let critique = "Too vague: name each changed module.".to_string();
    let failed = GateOutcome::Failed { reason: "score 3 is below 7".into(), score: Some(3), critique: Some(critique) };
    s.input(Input::GateDone { task: "essay".into(), attempt: 1, index: 1, outcome: failed, duration_ms: 900 });
    let fleet = Fleet::from_records(&s.records).expect("fleet");
    for a in [Action::Tasks, Action::Open] {
        vs.update(&fleet, fleet.records.len(), a);
    }
    assert!(matches!(&vs.screen, Screen::Detail(d) if d.task == "essay"), "{:?}", vs.screen);
    let screen = s.render(&vs);
    assert!(screen.contains("gate 1 (command) passed (attempt 1, 40ms): check exited 0"), "{screen}");
    assert!(
        screen.contains("gate 2 (review) failed (attempt 1 score 3, 900ms): Too vague: name each changed module."),
        "{screen}"
    );
}
