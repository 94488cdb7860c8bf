//! The `:` palette as an operator types into it (issue 15 item 5 and 8): a refused
//! line stays open for correction, ↑/↓ history, Ctrl-U/Ctrl-W, Tab's candidates, a
//! long line scrolled so the cursor stays in view, and `travel N`.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::screens::palette;
use pitboss::tui::view::{Request, TextKey, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[[pool]]
name = "agent"
command = ["agent"]
concurrency = 1
[[task]]
id = "alpha"
[[task]]
id = "alpine"
depends_on = ["alpha"]
[[task]]
id = "beta"
depends_on = ["alpha"]
"#;

/// `alpha` completed; `alpine` running, `beta` queued.
fn fleet() -> Fleet {
    let workflow = config::parse(WORKFLOW, "p.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: T0, event: first }];
    let mut now = T0;
    let success = Outcome::Success {
        result: serde_json::json!({}),
        exit_code: Some(0),
        duration_ms: 5,
        output: SmallOutput::default(),
    };
    let inputs = [
        Input::Start { pid: 1, version: "t".into(), resumed: false },
        Input::Finished { task: "alpha".into(), attempt: 1, outcome: success },
    ];
    for input in inputs {
        now += 1_000;
        let ctx = StepContext { now_ms: now, jitter: 0.0 };
        let mut events = step(&mut state, input, ctx).unwrap();
        events.extend(dispatch(&mut state, ctx).unwrap());
        for event in events {
            records.push(Record { seq: records.len() as u64 + 1, ts: now, event });
        }
    }
    Fleet::from_records(&records).unwrap()
}

fn key(vs: &mut ViewState, fleet: &Fleet, key: TextKey) -> Vec<Request> {
    vs.type_key(fleet, fleet.records.len(), key)
}

fn type_text(vs: &mut ViewState, fleet: &Fleet, text: &str) {
    for c in text.chars() {
        key(vs, fleet, TextKey::Char(c));
    }
}

fn line(vs: &ViewState) -> &str {
    vs.palette.as_ref().expect("the palette is open").value()
}

fn open(vs: &mut ViewState, fleet: &Fleet) {
    vs.update(fleet, fleet.records.len(), Action::Palette);
}

fn render(fleet: &Fleet, vs: &ViewState, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet,
        total: fleet.records.len(),
        view: vs,
        keys: &keys,
        now_ms: fleet.last_ts,
        theme: Theme { color: false },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>()).collect()
}

#[test]
fn a_refused_line_stays_open_with_its_reason_for_correction() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    open(&mut vs, &fleet);
    type_text(&mut vs, &fleet, "retry nope");
    assert!(key(&mut vs, &fleet, TextKey::Enter).is_empty());
    assert_eq!(line(&vs), "retry nope", "the text is kept");
    let note = vs.palette_memory.note.clone().expect("a note");
    assert!(note.contains("no task \"nope\""), "{note}");
    // The run refuses it (parsed fine): kept too.
    key(&mut vs, &fleet, TextKey::DeleteToStart);
    type_text(&mut vs, &fleet, r#"payload alpha {"x": 1}"#);
    assert!(key(&mut vs, &fleet, TextKey::Enter).is_empty());
    assert_eq!(line(&vs), r#"payload alpha {"x": 1}"#);
    assert!(vs.palette_memory.note.as_deref().unwrap_or("").contains("alpha is completed"));
    let screen = render(&fleet, &vs, 80, 24).join("\n");
    assert!(screen.contains("alpha is completed"), "the reason is on screen:\n{screen}");
    // Corrected, it runs and closes.
    key(&mut vs, &fleet, TextKey::DeleteToStart);
    type_text(&mut vs, &fleet, r#"payload beta {"x": 1}"#);
    let out = key(&mut vs, &fleet, TextKey::Enter);
    assert!(matches!(&out[..], [Request::Engine(Input::EditPayload { .. })]), "{out:?}");
    assert!(vs.palette.is_none());
}

#[test]
fn history_walks_back_and_forth_and_gives_the_draft_back() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    for cmd in ["pause agent", "resume agent"] {
        open(&mut vs, &fleet);
        type_text(&mut vs, &fleet, cmd);
        assert!(!key(&mut vs, &fleet, TextKey::Enter).is_empty(), "{cmd} runs");
    }
    open(&mut vs, &fleet);
    type_text(&mut vs, &fleet, "cancel b");
    key(&mut vs, &fleet, TextKey::Up);
    assert_eq!(line(&vs), "resume agent");
    key(&mut vs, &fleet, TextKey::Up);
    assert_eq!(line(&vs), "pause agent");
    key(&mut vs, &fleet, TextKey::Up);
    assert_eq!(line(&vs), "pause agent", "the oldest stays");
    key(&mut vs, &fleet, TextKey::Down);
    assert_eq!(line(&vs), "resume agent");
    key(&mut vs, &fleet, TextKey::Down);
    assert_eq!(line(&vs), "cancel b", "past the newest: the draft");
}

#[test]
fn ctrl_w_deletes_a_word_and_ctrl_u_the_line_before_the_cursor() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    open(&mut vs, &fleet);
    type_text(&mut vs, &fleet, "retry alpine");
    key(&mut vs, &fleet, TextKey::DeleteWord);
    assert_eq!(line(&vs), "retry ");
    type_text(&mut vs, &fleet, "beta");
    key(&mut vs, &fleet, TextKey::DeleteToStart);
    assert_eq!(line(&vs), "");
}

#[test]
fn tab_lists_the_candidates_when_several_fit() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    open(&mut vs, &fleet);
    type_text(&mut vs, &fleet, "retry al");
    key(&mut vs, &fleet, TextKey::Tab);
    assert_eq!(line(&vs), "retry alp");
    assert_eq!(vs.palette_memory.note.as_deref(), Some("2 fit: alpha alpine"));
    let screen = render(&fleet, &vs, 80, 24);
    assert!(screen[23].contains("2 fit: alpha alpine"), "{}", screen[23]);
    type_text(&mut vs, &fleet, "i");
    key(&mut vs, &fleet, TextKey::Tab);
    assert_eq!(line(&vs), "retry alpine ");
    assert_eq!(vs.palette_memory.note, None, "one fits: nothing to list");
}

#[test]
fn a_long_line_scrolls_so_the_cursor_stays_in_view_at_80_columns() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    open(&mut vs, &fleet);
    let long = format!(r#"payload beta {{"prompt": "{}END"}}"#, "word ".repeat(30));
    type_text(&mut vs, &fleet, &long);
    let screen = render(&fleet, &vs, 80, 24);
    assert!(screen[22].starts_with(':'), "{}", screen[22]);
    assert!(screen[22].contains("END\"}"), "the end being typed is shown: {:?}", screen[22]);
    let (scroll, cursor) = palette::window(vs.palette.as_ref().unwrap(), 79);
    assert!(scroll > 0 && cursor == 78, "scroll {scroll}, cursor {cursor}");
    // Home: the start again.
    key(&mut vs, &fleet, TextKey::Home);
    let screen = render(&fleet, &vs, 80, 24);
    assert!(screen[22].starts_with(":payload beta"), "{}", screen[22]);
}

#[test]
fn travel_goes_to_the_record_asked_for_and_refuses_one_past_the_log() {
    let fleet = fleet();
    let total = fleet.records.len();
    let mut vs = ViewState::default();
    vs.run_command(&fleet, total, "travel 2");
    assert_eq!(vs.travel, Some(2));
    let mut vs = ViewState::default();
    vs.run_command(&fleet, total, &format!("travel {}", total + 1));
    assert_eq!(vs.travel, None);
    assert_eq!(vs.message, Some(format!("travel {}: the log has records 1 to {total}", total + 1)));
    vs.run_command(&fleet, total, "travel x");
    assert!(vs.message.as_deref().unwrap_or("").contains("not a record number"));
    vs.run_command(&fleet, total, "travel");
    assert_eq!(vs.travel, Some(total));
}
