//! Every screen draws at any terminal size without a panic (0×0, 1×1, 10×3 and a few
//! more), and an attached TUI's quit question says it only detaches.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::{Request, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

/// Six tasks on one pool of two: two running (with output), one dead letter.
fn fleet() -> Fleet {
    let mut text = "[run]\nname = \"tiny\"\n[defaults]\nretry = { max_attempts = 1 }\n".to_string();
    text += "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 2\n";
    for i in 0..6 {
        text += &format!("[[task]]\nid = \"t{i}\"\n");
    }
    let workflow = config::parse(&text, "tiny.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "tiny".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: T0, event: first }];
    let ctx = StepContext { now_ms: T0, jitter: 1.0 };
    let failed = Outcome::Failure {
        class: FailureClass::Worker,
        error: "exit code 1".into(),
        exit_code: Some(1),
        signal: None,
        duration_ms: 5,
        output: SmallOutput::default(),
    };
    for input in [
        Input::Start { pid: 1, version: "t".into(), resumed: false },
        Input::Finished { task: "t0".into(), attempt: 1, outcome: failed },
    ] {
        let mut events = step(&mut state, input, ctx).unwrap();
        events.extend(dispatch(&mut state, ctx).unwrap());
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts: T0, event });
        }
    }
    let mut fleet = Fleet::from_records(&records).unwrap();
    fleet.add_output("t1", 1, b"line one\nline two\n", T0);
    fleet
}

fn render(fleet: &Fleet, vs: &ViewState, width: u16, height: u16) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet,
        total: fleet.records.len(),
        view: vs,
        keys: &keys,
        now_ms: fleet.last_ts + 1_000,
        theme: Theme { color: true },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
}

#[test]
fn every_screen_draws_at_tiny_sizes() {
    let fleet = fleet();
    assert_eq!(fleet.running().len(), 2);
    assert_eq!(fleet.dead_letters().len(), 1);
    let screens: &[&[Action]] = &[
        &[],
        &[Action::Tasks],
        &[Action::Tasks, Action::Down, Action::Open],
        &[Action::DeadLetters],
        &[Action::Held],
        &[Action::Help],
        &[Action::Travel],
        &[Action::Quit],
        &[Action::Palette],
    ];
    for keys in screens {
        let mut vs = ViewState::default();
        for key in *keys {
            vs.update(&fleet, fleet.records.len(), *key);
        }
        for (w, h) in [(0, 0), (1, 1), (10, 3), (0, 40), (120, 0), (3, 10), (38, 5), (40, 7)] {
            let drawn = std::panic::catch_unwind(|| render(&fleet, &vs, w, h));
            assert!(drawn.is_ok(), "screen after {keys:?} panicked at {w}x{h}");
        }
    }
}

#[test]
fn an_attached_tui_asks_to_detach_not_to_stop_attempts() {
    let fleet = fleet();
    let mut vs = ViewState { attached: true, ..ViewState::default() };
    assert!(vs.update(&fleet, fleet.records.len(), Action::Quit).is_empty());
    let question = vs.confirm.as_ref().map(|c| c.question.clone()).unwrap_or_default();
    assert_eq!(question, "Detach? The run keeps going.");
    // The same TUI over its own run asks about the attempts it would stop.
    let mut own = ViewState::default();
    own.update(&fleet, fleet.records.len(), Action::Quit);
    assert!(own.confirm.as_ref().unwrap().question.starts_with("Stop 2 running attempts and quit?"));
    let _ = Request::Quit;
}
