//! Consensus on screen (issue 12 item 5): the task detail lists the latest attempt's
//! votes and outcome, `v` opens the disagreement view built from those votes (←/→
//! candidates, ↑/↓ paths, Esc back), a task without votes says so, and a running
//! consensus task shows how many replicas have voted. Keys go through the same
//! `ViewState::update` the app uses; frames are drawn to ratatui's `TestBackend`.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::{Screen, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::{json, Value};

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[run]
name = "votes"
[defaults]
retry = { max_attempts = 2, initial = "1s", jitter = false }
[[pool]]
name = "writer"
command = ["agent"]
concurrency = 3
[[pool]]
name = "second"
command = ["agent"]
[[task]]
id = "capital"
pool = "writer"
consensus = { replicas = 3, strategy = "majority", key = "/answer", pools = ["writer", "second"] }
[[task]]
id = "poll"
pool = "writer"
consensus = { replicas = 3, strategy = "majority" }
[[task]]
id = "plain"
pool = "writer"
"#;

struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new() -> Script {
        let wf = config::parse(WORKFLOW, "votes.toml", Path::new(".")).expect("valid workflow");
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(wf) };
        let state = RunState::from_first(&first).expect("state");
        let mut s = Script { state, records: vec![Record { seq: 1, ts: T0, event: first }], now: T0 };
        s.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
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

    fn vote(&mut self, task: &str, replica: u32, pool: &str, result: Option<Value>) {
        let outcome = match result {
            Some(result) => {
                Outcome::Success { result, exit_code: Some(0), duration_ms: 800, output: SmallOutput::default() }
            }
            None => Outcome::Failure {
                class: pitboss::core::FailureClass::Worker,
                error: "exit code 3".into(),
                exit_code: Some(3),
                signal: None,
                duration_ms: 100,
                output: SmallOutput::default(),
            },
        };
        self.input(Input::ReplicaFinished { task: task.into(), attempt: 1, replica, pool: pool.into(), outcome });
    }

    /// `capital`: Paris, Lyon, Paris (majority with a dissenter, completed);
    /// `poll`: one vote of three in (still running); `plain`: no consensus.
    fn voted() -> Script {
        let mut s = Script::new();
        s.vote("capital", 0, "writer", Some(json!({"answer": "Paris", "note": "capital since 987"})));
        s.vote("capital", 1, "second", Some(json!({"answer": "Lyon", "note": "silk \u{1b}[31mtown"})));
        s.vote("capital", 2, "writer", Some(json!({"answer": "Paris", "note": "seat of government"})));
        s.vote("poll", 1, "writer", Some(json!({"x": 1})));
        s
    }

    fn fleet(&self) -> Fleet {
        Fleet::from_records(&self.records).expect("fleet")
    }

    fn render(&self, vs: &ViewState, width: u16, height: u16) -> String {
        let fleet = self.fleet();
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
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

/// Presses the key named `key` as the app does: the keymap's action, then `update`.
fn press(vs: &mut ViewState, fleet: &Fleet, key: &str) {
    let action = Keymap::default().action(key).unwrap_or_else(|| panic!("no action is bound to the key {key:?}"));
    vs.update(fleet, fleet.records.len(), action);
}

/// The tasks table, then the detail of the task on row `row`.
fn open_detail(vs: &mut ViewState, fleet: &Fleet, row: usize) {
    vs.update(fleet, fleet.records.len(), Action::Tasks);
    for _ in 0..row {
        vs.update(fleet, fleet.records.len(), Action::Down);
    }
    vs.update(fleet, fleet.records.len(), Action::Open);
    assert!(matches!(vs.screen, Screen::Detail(_)), "{:?}", vs.screen);
}

#[test]
fn v_opens_the_disagreement_view_of_a_consensus_task_and_esc_goes_back() {
    let s = Script::voted();
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    open_detail(&mut vs, &fleet, 0);
    let detail = vs.screen.clone();
    press(&mut vs, &fleet, "v");
    let screen = s.render(&vs, 110, 20);
    assert!(screen.contains("Disagreement: capital, attempt 1"), "{screen}");
    assert!(screen.contains("/answer") && screen.contains("\"Lyon\""), "{screen}");
    assert!(!screen.contains('\u{1b}'), "worker text is escaped: {screen}");
    insta::assert_snapshot!("disagreement_from_detail", screen);
    // ↓ scrolls the paths, → moves the candidates (clamped), ← back.
    press(&mut vs, &fleet, "down");
    let scrolled = s.render(&vs, 110, 20);
    assert_ne!(scrolled, screen, "down scrolls the differing paths");
    for _ in 0..5 {
        press(&mut vs, &fleet, "right");
        press(&mut vs, &fleet, "left");
        press(&mut vs, &fleet, "right");
    }
    s.render(&vs, 30, 10);
    press(&mut vs, &fleet, "v");
    assert_eq!(vs.screen, detail, "v again returns to the task's detail");
    press(&mut vs, &fleet, "v");
    assert!(matches!(vs.screen, Screen::Disagreement(_)), "{:?}", vs.screen);
    press(&mut vs, &fleet, "esc");
    assert_eq!(vs.screen, detail, "Esc returns to the task's detail");
    press(&mut vs, &fleet, "esc");
    assert_eq!(vs.screen, Screen::Tasks, "and Esc again to the table it came from");
}

#[test]
fn v_on_a_task_without_votes_says_so() {
    let s = Script::voted();
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    open_detail(&mut vs, &fleet, 2);
    let before = vs.screen.clone();
    press(&mut vs, &fleet, "v");
    assert_eq!(vs.screen, before, "no view opens");
    let screen = s.render(&vs, 120, 24);
    assert!(screen.contains("plain has no votes"), "{screen}");
}

#[test]
fn the_detail_lists_the_latest_attempts_votes_and_outcome() {
    let s = Script::voted();
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    open_detail(&mut vs, &fleet, 0);
    let screen = s.render(&vs, 140, 30);
    assert!(screen.contains("votes (attempt 1, 3/3 in)"), "{screen}");
    assert!(screen.contains("r0 writer"), "{screen}");
    assert!(screen.contains("r1 second"), "{screen}");
    assert!(screen.contains("consensus reached"), "{screen}");
    assert!(screen.contains("dissent: replica 1"), "{screen}");
    assert!(screen.contains("v: disagreement view"), "the key is offered: {screen}");
    let wide = s.render(&vs, 220, 30);
    assert!(wide.contains(".1.r*.*)"), "the output pane names the replicas' files: {wide}");
}

#[test]
fn a_running_consensus_task_shows_how_many_replicas_voted() {
    let s = Script::voted();
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    let dashboard = s.render(&vs, 140, 30);
    assert!(dashboard.contains("1/3 votes"), "{dashboard}");
    vs.update(&fleet, fleet.records.len(), Action::Tasks);
    let table = s.render(&vs, 140, 24);
    let poll = table.lines().find(|l| l.contains("poll")).unwrap_or_default();
    assert!(poll.contains("1/3 votes"), "{table}");
}

#[test]
fn a_round_still_running_opens_with_the_votes_in_so_far() {
    let s = Script::voted();
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    open_detail(&mut vs, &fleet, 1);
    press(&mut vs, &fleet, "v");
    let screen = s.render(&vs, 120, 16);
    assert!(screen.contains("Disagreement: poll, attempt 1 — 1 answers, 1/3 replicas voted"), "{screen}");
    assert!(screen.contains("r1 writer"), "{screen}");
}
