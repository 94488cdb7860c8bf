//! 80×24 as a first-class size, on the view state and a test backend: help scrolls
//! (movement keys move it, Esc / q / ? close it, nothing else does) and lists every
//! key; below the minimum size the whole screen says so; dead-letter causes and
//! reasons are cut at a word with "…", the count kept; `E` asks for the editor.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme, MIN_SIZE};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::screens::dead_letters::fit;
use pitboss::tui::view::{Request, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

const REFUSED: &str = "connection refused while fetching the upstream dependency manifest from the registry mirror";

/// Three pools; `fetch-N` dead-lettered with exit 3 and a long reason, `parse-N` with
/// exit 64, and two tasks running on the third pool.
fn fleet() -> Fleet {
    let mut text = "[run]\nname = \"small\"\n[defaults]\nretry = { max_attempts = 1 }\n".to_string();
    for (pool, n) in [("alpha", 2), ("beta", 2), ("gamma", 2)] {
        text += &format!("[[pool]]\nname = \"{pool}\"\ncommand = [\"agent\"]\nconcurrency = {n}\n");
    }
    for (prefix, pool) in [("fetch", "alpha"), ("parse", "beta"), ("long", "gamma")] {
        for i in 0..2 {
            text += &format!("[[task]]\nid = \"{prefix}-{i}\"\npool = \"{pool}\"\n");
        }
    }
    let workflow = config::parse(&text, "small.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "small".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: T0, event: first }];
    let ctx = StepContext { now_ms: T0, jitter: 1.0 };
    let failed = |code: i32, why: &str| Outcome::Failure {
        class: FailureClass::Worker,
        error: format!("exit code {code}: {why}"),
        exit_code: Some(code),
        signal: None,
        duration_ms: 5,
        output: SmallOutput::default(),
    };
    let mut inputs = vec![Input::Start { pid: 1, version: "t".into(), resumed: false }];
    for i in 0..2 {
        inputs.push(Input::Finished { task: format!("fetch-{i}"), attempt: 1, outcome: failed(3, REFUSED) });
        inputs.push(Input::Finished { task: format!("parse-{i}"), attempt: 1, outcome: failed(64, "bad envelope") });
    }
    for input in inputs {
        let mut events = step(&mut state, input, ctx).unwrap();
        events.extend(dispatch(&mut state, ctx).unwrap());
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts: T0, event });
        }
    }
    Fleet::from_records(&records).unwrap()
}

/// The screen as lines of text.
fn render(fleet: &Fleet, vs: &ViewState, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet,
        total: fleet.records.len(),
        view: vs,
        keys: &keys,
        now_ms: fleet.last_ts + 1_000,
        theme: Theme { color: false },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect()).collect()
}

fn press(vs: &mut ViewState, fleet: &Fleet, actions: &[Action]) -> Vec<Request> {
    actions.iter().flat_map(|a| vs.update(fleet, fleet.records.len(), *a)).collect()
}

#[test]
fn help_scrolls_with_the_movement_keys_and_only_esc_q_or_question_close_it() {
    let fleet = fleet();
    let mut vs = ViewState { terminal: ratatui::layout::Rect::new(0, 0, 80, 24), ..ViewState::default() };
    press(&mut vs, &fleet, &[Action::Help]);
    let top = render(&fleet, &vs, 80, 24).join("\n");
    assert!(top.contains("Help 1-22/"), "the title says what is shown:\n{top}");
    assert!(top.contains("move up") && !top.contains("ctrl-z"), "{top}");
    // Down scrolls by one, PgDn by a page, G to the end: the last line comes into view.
    press(&mut vs, &fleet, &[Action::Down]);
    assert_eq!(vs.help_scroll, 1);
    assert!(vs.help, "a movement key keeps help open");
    press(&mut vs, &fleet, &[Action::Bottom]);
    let bottom = render(&fleet, &vs, 80, 24).join("\n");
    assert!(bottom.contains("ctrl-z") && bottom.contains("esc, q or ? closes"), "{bottom}");
    assert!(!bottom.contains("move up"), "{bottom}");
    // Scrolling past the end stays at the end; up comes back by one at once.
    let end = vs.help_scroll;
    press(&mut vs, &fleet, &[Action::Down, Action::PageDown]);
    assert_eq!(vs.help_scroll, end);
    press(&mut vs, &fleet, &[Action::Up]);
    assert_eq!(vs.help_scroll, end - 1);
    press(&mut vs, &fleet, &[Action::Top]);
    assert_eq!(vs.help_scroll, 0);
    // Other keys do nothing while help is open: no retry, no screen change.
    assert!(press(&mut vs, &fleet, &[Action::Retry, Action::Tasks]).is_empty());
    assert!(vs.help && vs.message.is_none());
    // Esc, q and ? close it; q does not ask to quit.
    press(&mut vs, &fleet, &[Action::Back]);
    for close in [Action::Back, Action::Quit, Action::Help] {
        press(&mut vs, &fleet, &[Action::Help, Action::Down]);
        assert!(vs.help);
        assert!(press(&mut vs, &fleet, &[close]).is_empty());
        assert!(!vs.help && vs.confirm.is_none(), "{close:?} closes help and does nothing else");
        assert_eq!(vs.help_scroll, 0, "help opens at its top again");
    }
}

#[test]
fn help_lists_the_palette_filter_dead_letter_and_terminal_keys() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Help]);
    let all = render(&fleet, &vs, 100, 60).join("\n");
    for words in [
        "tab completes",
        "↑/↓ history",
        "ctrl-u deletes",
        "ctrl-w a word",
        "state:NAME",
        "stalled",
        "pool:NAME",
        "open the group",
        "close the open group",
        "replay the dead letter / the selected group",
        "$VISUAL / $EDITOR",
        "ctrl-z",
        "ctrl-c twice quits",
        "time travel",
    ] {
        assert!(all.contains(words), "help lacks {words:?}:\n{all}");
    }
    // Every line fits 80 columns: the popup is 78 wide, its text 76.
    let mut vs80 = vs.clone();
    for _ in 0..40 {
        let screen = render(&fleet, &vs80, 80, 24);
        for line in &screen {
            assert!(!line.contains("…") || line.contains("running…"), "a help line is cut at 80 columns: {line}");
        }
        press(&mut vs80, &fleet, &[Action::Down]);
    }
}

#[test]
fn below_the_minimum_size_the_whole_screen_says_so() {
    let fleet = fleet();
    let vs = ViewState::default();
    let (w, h) = MIN_SIZE;
    let small = render(&fleet, &vs, 50, 12).join("\n");
    assert!(small.contains(&format!("terminal too small (need {w}×{h}, have 50×12)")), "{small}");
    assert!(!small.contains("pitboss"), "nothing else is drawn:\n{small}");
    let short = render(&fleet, &vs, 100, h - 1).join("\n");
    assert!(short.contains(&format!("have 100×{}", h - 1)), "{short}");
    // At the minimum and at 80×24 the screens are back.
    for (width, height) in [(w, h), (80, 24)] {
        let screen = render(&fleet, &vs, width, height).join("\n");
        assert!(!screen.contains("too small") && screen.contains("pitboss"), "{screen}");
    }
    // A question asked while too small is still shown.
    let mut asking = ViewState::default();
    press(&mut asking, &fleet, &[Action::Quit]);
    let asked = render(&fleet, &asking, 50, 12).join("\n");
    assert!(asked.contains("Confirm"), "{asked}");
}

#[test]
fn dead_letter_causes_and_reasons_are_cut_at_a_word_at_80_columns() {
    let fleet = fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::DeadLetters]);
    let screen = render(&fleet, &vs, 80, 24);
    let row = |needle: &str| screen.iter().find(|l| l.contains(needle)).cloned().unwrap_or_default();
    let refused = row("exit code 3:");
    // The count, the attempts, and the cause up to a whole word, then "…".
    assert!(refused.starts_with("│2      2        attempts spent (#/#): exit code 3: connection refused"), "{refused}");
    assert!(refused.trim_end_matches([' ', '│']).ends_with('…'), "{refused}");
    let cut = refused.trim_end_matches([' ', '│']).trim_end_matches('…');
    assert!(REFUSED.split(' ').any(|w| cut.ends_with(w)), "cut mid-word: {refused}");
    assert!(row("exit code 64:").contains("exit code 64: bad envelope"), "{screen:?}");
    assert!(!screen.join("\n").contains("IDS"), "no room for the ids at 80 columns");
    // The members list: the reason in the room left, cut at a word.
    press(&mut vs, &fleet, &[Action::Open]);
    let members = render(&fleet, &vs, 80, 24);
    let member = members.iter().find(|l| l.contains("fetch-0")).cloned().unwrap_or_default();
    assert!(member.contains("dead_lettered 1        attempts spent (1/1): exit code 3: connection"), "{member}");
    assert!(member.trim_end_matches([' ', '│']).ends_with('…'), "{member}");
    // Wide: the ids come back.
    press(&mut vs, &fleet, &[Action::Back]);
    let wide = render(&fleet, &vs, 160, 24).join("\n");
    assert!(wide.contains("IDS") && wide.contains("fetch-0, fetch-1"), "{wide}");
}

#[test]
fn fit_cuts_at_a_word_boundary_with_an_ellipsis() {
    assert_eq!(fit("exit code 3: connection refused", 40), "exit code 3: connection refused");
    assert_eq!(fit("exit code 3: connection refused", 24), "exit code 3: connection…");
    assert_eq!(fit("exit code 3: connection refused", 20), "exit code 3…");
    assert_eq!(fit("exit code 3: connection refused", 30), "exit code 3: connection…");
    // No word boundary near: cut in the word rather than lose most of the room.
    assert_eq!(fit("abcdefghijklmnop", 8), "abcdefg…");
    assert_eq!(fit("abc", 0), "");
    assert_eq!(fit("abc", 1), "…");
}

#[test]
fn e_without_an_editor_says_how_to_set_one_and_e_on_a_running_task_says_why_not() {
    let fleet = fleet();
    // The process's environment is shared by the tests of this file: only this test
    // reads or changes it.
    std::env::remove_var("VISUAL");
    std::env::remove_var("EDITOR");
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::DeadLetters]);
    assert!(press(&mut vs, &fleet, &[Action::EditInEditor]).is_empty());
    assert!(vs.message.as_deref().unwrap_or("").contains("set $VISUAL or $EDITOR"), "{:?}", vs.message);
    std::env::set_var("EDITOR", "true");
    let asked = press(&mut vs, &fleet, &[Action::EditInEditor]);
    match asked.as_slice() {
        [Request::Edit { task, text }] => {
            assert_eq!(task, "fetch-0");
            assert_eq!(text.trim(), "{}");
        }
        other => panic!("expected an edit request, got {other:?}"),
    }
    let mut on_running = ViewState::default();
    let running = fleet.state.task_id(fleet.running().next().expect("a running task")).to_string();
    on_running.run_command(&fleet, fleet.records.len(), &format!("inspect {running}"));
    assert!(press(&mut on_running, &fleet, &[Action::EditInEditor]).is_empty());
    assert!(on_running.message.as_deref().unwrap_or("").contains("is running"), "{:?}", on_running.message);
}
