//! The TUI draws worker text with its control characters shown escaped (DESIGN §14):
//! live output and progress messages in the worker panes, errors in the tasks and
//! dead-letter views, and output tails and reasons in the task detail. Rendered to
//! ratatui's `TestBackend` from a scripted run, like `tui_views.rs`.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::screens::detail;
use pitboss::tui::view::ViewState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

/// An OSC title change, a clear screen, a C1 CSI and a right-to-left override.
const HOSTILE: &str = "\u{202e}evil \x1b]0;pwned\x07\x1b[2J \u{9b}Z";

const WORKFLOW: &str = r#"
[defaults]
retry = { max_attempts = 1 }
[[pool]]
name = "agents"
command = ["agent"]
concurrency = 2
[[task]]
id = "bad"
[[task]]
id = "busy"
"#;

/// `bad` dead-lettered with the escapes in its error and output; `busy` running and
/// printing them live.
fn fleet() -> Fleet {
    let workflow = config::parse(WORKFLOW, "escapes.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: T0, event: first }];
    let mut now = T0;
    let mut input = |state: &mut RunState, input: Input| {
        now += 250;
        let ctx = StepContext { now_ms: now, jitter: 1.0 };
        let mut events = step(state, input, ctx).unwrap();
        events.extend(dispatch(state, ctx).unwrap());
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts: now, event });
        }
    };
    input(&mut state, Input::Start { pid: 4242, version: "test".into(), resumed: false });
    let outcome = Outcome::Failure {
        class: FailureClass::Worker,
        error: format!("exit code 1: {HOSTILE}"),
        exit_code: Some(1),
        signal: None,
        duration_ms: 300,
        output: SmallOutput { stdout: Some(format!("{HOSTILE}\n")), stderr: Some(format!("{HOSTILE}\n")) },
    };
    input(&mut state, Input::Finished { task: "bad".into(), attempt: 1, outcome });
    let mut fleet = Fleet::from_records(&records).unwrap();
    let live = format!("{HOSTILE}\n{{\"pitboss\":\"progress\",\"pct\":40,\"msg\":\"{}\"}}\n", "\\u001b[31mred");
    fleet.add_output("busy", 1, live.as_bytes(), now);
    fleet
}

fn render(fleet: &Fleet, vs: &ViewState) -> String {
    let mut terminal = Terminal::new(TestBackend::new(140, 30)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet,
        total: fleet.records.len(),
        view: vs,
        keys: &keys,
        now_ms: fleet.last_ts + 2_000,
        theme: Theme { color: false },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    format!("{}", terminal.backend())
}

#[track_caller]
fn assert_escaped(what: &str, screen: &str) {
    assert!(screen.contains(r"\x1b]"), "{what}: the OSC sequence is not shown escaped:\n{screen}");
    assert!(screen.contains(r"\u{202e}evil"), "{what}: the bidi override is not shown escaped:\n{screen}");
    assert!(!screen.contains('\u{202e}') && !screen.contains('\u{9b}'), "{what}: raw controls drawn:\n{screen}");
}

#[test]
fn worker_panes_show_live_output_and_progress_escaped() {
    let fleet = fleet();
    let screen = render(&fleet, &ViewState::default());
    assert_escaped("dashboard", &screen);
    assert!(screen.contains(r"\x1b[31mred"), "the progress message is not shown escaped:\n{screen}");
}

#[test]
fn tasks_dead_letters_and_detail_show_errors_and_output_escaped() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    vs.update(&fleet, fleet.records.len(), Action::Tasks);
    assert_escaped("tasks view", &render(&fleet, &vs));

    let mut vs = ViewState::default();
    vs.update(&fleet, fleet.records.len(), Action::DeadLetters);
    assert_escaped("dead letters view", &render(&fleet, &vs));

    let mut vs = ViewState::default();
    detail::open(&mut vs, "bad".into());
    let screen = render(&fleet, &vs);
    assert_escaped("detail of bad", &screen);
}
