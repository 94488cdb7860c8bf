//! Issue 15, bugs 1–4, without a terminal: the selection follows the task (not the
//! row) as the run changes under it; the filter is shown by and applies to the dead
//! letters; every action says what came of it, a cancel confirmed after its task
//! ended included; a scrolled output pane stays put while lines arrive. The run is
//! driven through the core as the engine drives it, and records are folded into the
//! read model one by one as they would arrive.

use pitboss::core::Input;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::view::{Request, Screen, TextKey, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

mod tui_run;
use tui_run::Run;

/// Five tasks that all run at once, and three that fail for good on their first
/// attempt (two with one cause, one with another) once `doomed` is started.
const WORKFLOW: &str = r#"
[run]
name = "selection"
[defaults]
retry = { max_attempts = 1 }
[[pool]]
name = "p"
command = ["agent"]
concurrency = 8
[[task]]
id = "t1"
[[task]]
id = "t2"
[[task]]
id = "t3"
[[task]]
id = "t4"
[[task]]
id = "t5"
[[task]]
id = "x1"
[[task]]
id = "x2"
[[task]]
id = "y1"
"#;

impl Run {
    fn new() -> Run {
        Run::start(WORKFLOW)
    }

    /// x1 and x2 dead-lettered with one cause, y1 with another.
    fn with_dead_letters() -> Run {
        let mut run = Run::new();
        run.fail("x1", "exit code 2: disk full");
        run.fail("x2", "exit code 2: disk full");
        run.fail("y1", "timed out after 5s");
        run
    }

    fn press(&self, vs: &mut ViewState, actions: &[Action]) -> Vec<Request> {
        let mut out = Vec::new();
        for a in actions {
            out.extend(vs.update(&self.fleet, self.fleet.records.len(), *a));
        }
        out
    }

    fn type_text(&self, vs: &mut ViewState, text: &str) {
        for c in text.chars() {
            vs.type_key(&self.fleet, self.fleet.records.len(), TextKey::Char(c));
        }
    }

    fn enter(&self, vs: &mut ViewState) {
        vs.type_key(&self.fleet, self.fleet.records.len(), TextKey::Enter);
    }

    fn render(&self, vs: &ViewState, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let keys = Keymap::default();
        let scene = Scene {
            fleet: &self.fleet,
            total: self.fleet.records.len(),
            view: vs,
            keys: &keys,
            now_ms: self.fleet.last_ts + 2_000,
            theme: Theme { color: false },
        };
        terminal.draw(|frame| draw(frame, &scene)).unwrap();
        format!("{}", terminal.backend())
    }
}

fn question(vs: &ViewState) -> String {
    vs.confirm.as_ref().map(|c| c.question.clone()).unwrap_or_default()
}

fn message(vs: &ViewState) -> String {
    vs.message.clone().unwrap_or_default()
}

// ---- bug 1: the selection follows the task --------------------------------------

#[test]
fn a_filtered_tasks_table_keeps_the_selected_task_when_a_row_above_leaves() {
    let mut run = Run::new();
    let mut vs = ViewState::default();
    run.press(&mut vs, &[Action::Tasks, Action::Filter]);
    run.type_text(&mut vs, "state:running");
    run.enter(&mut vs);
    run.press(&mut vs, &[Action::Down, Action::Down]);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t3"));

    // t1 leaves the filter: the rows move up, the selection stays on t3.
    run.succeed("t1", 100);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t3"));
    let screen = run.render(&vs, 100, 16);
    assert!(!screen.contains("t1 "), "{screen}");
    run.press(&mut vs, &[Action::Cancel]);
    assert!(question(&vs).starts_with("Cancel t3"), "{}", question(&vs));
    vs.answer(false);

    // t3 itself leaves: the title says so, and the keys still act on t3, never t4.
    run.succeed("t3", 100);
    let screen = run.render(&vs, 120, 16);
    assert!(screen.contains("selected t3 left the view (now completed"), "{screen}");
    run.press(&mut vs, &[Action::Cancel]);
    assert!(vs.confirm.is_none());
    assert!(message(&vs).contains("t3 is completed: nothing to cancel"), "{}", message(&vs));
    // Moving picks the task now where t3 was.
    run.press(&mut vs, &[Action::Down]);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t4"));
}

#[test]
fn the_worker_panes_and_the_dead_letters_select_by_task_and_cause() {
    let mut run = Run::new();
    let mut vs = ViewState::default();
    run.press(&mut vs, &[Action::Dashboard, Action::Down, Action::Down]);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t3"));
    run.succeed("t2", 100);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t3"), "a worker ending above moved the selection");
    run.succeed("t3", 100);
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("t3"));
    assert!(run.render(&vs, 140, 36).contains("selected t3 left the view"));

    let mut run = Run::with_dead_letters();
    let mut vs = ViewState::default();
    run.press(&mut vs, &[Action::DeadLetters, Action::Down]);
    // Groups: "disk full" (2 tasks) first, then the timeout.
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("y1"));
    run.input(Input::Requeue { task: "x1".into(), reason: "test".into() });
    run.input(Input::Requeue { task: "x2".into(), reason: "test".into() });
    assert_eq!(vs.selected_task(&run.fleet).as_deref(), Some("y1"), "a group above left and the selection moved");
}

// ---- bug 2: the filter is visible and applies to the dead letters ------------------

#[test]
fn the_dead_letters_show_and_act_on_the_filter_and_esc_clears_it() {
    let run = Run::with_dead_letters();
    let mut vs = ViewState::default();
    run.press(&mut vs, &[Action::DeadLetters, Action::Filter]);
    run.type_text(&mut vs, "x");
    run.enter(&mut vs);
    assert_eq!(vs.screen, Screen::DeadLetters, "Enter on the dead letters keeps them up");
    let screen = run.render(&vs, 120, 12);
    assert!(screen.contains("filter: x"), "the filter is not in the title:\n{screen}");
    assert!(screen.contains("x1, x2") && !screen.contains("y1"), "{screen}");
    run.press(&mut vs, &[Action::ReplayAll]);
    assert!(question(&vs).contains("2 dead letters"), "{}", question(&vs));
    vs.answer(false);

    // A filter that hides every dead letter: A says so, and how to clear it.
    let mut hidden = ViewState { filter: "nothing-matches".into(), ..ViewState::default() };
    run.press(&mut hidden, &[Action::DeadLetters]);
    assert!(run.render(&hidden, 120, 12).contains("filter: nothing-matches"));
    run.press(&mut hidden, &[Action::ReplayAll]);
    assert!(
        message(&hidden).contains("matches the filter") && message(&hidden).contains("Esc"),
        "{}",
        message(&hidden)
    );

    // The dashboard's dead-letters panel names the filter too.
    let mut dash = ViewState { filter: "x".into(), ..ViewState::default() };
    run.press(&mut dash, &[Action::Dashboard]);
    assert!(run.render(&dash, 140, 36).contains("Dead letters 2 · filter: x"));

    run.press(&mut vs, &[Action::Back]);
    assert!(vs.filter.is_empty());
    let screen = run.render(&vs, 120, 12);
    assert!(screen.contains("y1") && !screen.contains("filter:"), "{screen}");
}

// ---- bug 3: every action says what came of it --------------------------------------

#[test]
fn a_cancel_confirmed_after_the_task_ended_says_so_and_sends_nothing() {
    let mut run = Run::new();
    let mut vs = ViewState::default();
    vs.run_command(&run.fleet, run.fleet.records.len(), "cancel t1");
    assert!(question(&vs).contains("Cancel t1"));
    run.succeed("t1", 100);
    let sent = vs.answer_with(&run.fleet, true);
    assert!(sent.is_empty(), "a cancel of a completed task was sent: {sent:?}");
    assert!(message(&vs).contains("t1 is completed now"), "{}", message(&vs));

    // Confirmed in time: sent, and said.
    vs.run_command(&run.fleet, run.fleet.records.len(), "cancel t2");
    assert_eq!(vs.answer_with(&run.fleet, true).len(), 1);
    assert!(message(&vs).contains("cancelling t2"), "{}", message(&vs));
    // No: nothing done, and said.
    vs.run_command(&run.fleet, run.fleet.records.len(), "cancel t2");
    assert!(vs.answer_with(&run.fleet, false).is_empty());
    assert!(message(&vs).contains("nothing done"), "{}", message(&vs));
}

#[test]
fn replays_say_what_they_did_or_why_not() {
    let mut run = Run::with_dead_letters();
    let mut vs = ViewState::default();
    // R on the dashboard: its selection is a running worker, not a dead letter.
    run.press(&mut vs, &[Action::Dashboard, Action::Replay]);
    assert!(message(&vs).contains("not a dead letter"), "{}", message(&vs));

    // Group replay and A: a replay confirmed after the task came back is left out, said.
    run.press(&mut vs, &[Action::DeadLetters, Action::Replay]);
    assert!(question(&vs).contains("2 dead letters"), "{}", question(&vs));
    run.input(Input::Requeue { task: "x1".into(), reason: "elsewhere".into() });
    let sent = vs.answer_with(&run.fleet, true);
    assert_eq!(sent.len(), 1);
    let said = message(&vs);
    assert!(said.contains("replayed x2") && said.contains("x1 is"), "{said}");

    run.press(&mut vs, &[Action::ReplayAll]);
    assert!(vs.confirm.is_some() || !message(&vs).is_empty());
    vs.answer_with(&run.fleet, true);
    assert!(message(&vs).contains("replayed"), "{}", message(&vs));

    // Nothing left to replay: said, on every screen.
    let run = Run::new();
    for screen in [Action::Dashboard, Action::Tasks, Action::DeadLetters] {
        let mut vs = ViewState::default();
        run.press(&mut vs, &[screen, Action::ReplayAll]);
        assert!(message(&vs).contains("no dead letters"), "{screen:?}: {}", message(&vs));
        run.press(&mut vs, &[Action::Replay]);
        assert!(!message(&vs).is_empty(), "{screen:?}: R said nothing");
    }
    // No worker running and R on the dashboard.
    let mut done = Run::new();
    for t in ["t1", "t2", "t3", "t4", "t5", "x1", "x2", "y1"] {
        done.succeed(t, 100);
    }
    let mut vs = ViewState::default();
    done.press(&mut vs, &[Action::Replay]);
    assert!(message(&vs).contains("no task selected"), "{}", message(&vs));
}

// ---- bug 4: a scrolled output pane stays put ----------------------------------------

#[test]
fn scrolled_output_stays_put_while_lines_arrive_until_follow_resumes() {
    let mut run = Run::new();
    let lines = |from: usize, to: usize| (from..to).map(|n| format!("line-{n:03}\n")).collect::<String>();
    let now = run.now;
    run.fleet.add_output("t1", 1, lines(0, 40).as_bytes(), now);
    let mut vs = ViewState::default();
    vs.run_command(&run.fleet, run.fleet.records.len(), "inspect t1");
    run.press(&mut vs, &[Action::Up, Action::Up, Action::Up, Action::Up, Action::Up]);
    let output = |screen: &str| -> Vec<String> {
        screen.lines().filter_map(|l| l.split("line-").nth(1).map(|n| n[..3].to_string())).collect()
    };
    let before = run.render(&vs, 120, 30);
    assert!(before.contains("scrolled (f: follow)"), "{before}");
    let shown = output(&before);
    assert_eq!(shown.last().map(String::as_str), Some("034"), "{before}");

    run.fleet.add_output("t1", 1, lines(40, 52).as_bytes(), now);
    let after = run.render(&vs, 120, 30);
    assert_eq!(output(&after), shown, "the scrolled pane moved with new lines:\n{after}");
    // Scrolling goes on from where the pane is, not from where it would have drifted.
    run.press(&mut vs, &[Action::Down]);
    assert_eq!(output(&run.render(&vs, 120, 30)).last().map(String::as_str), Some("035"));

    // `f` pauses a following pane where it is too, and resumes it.
    run.press(&mut vs, &[Action::Bottom]);
    let following = run.render(&vs, 120, 30);
    assert_eq!(output(&following).last().map(String::as_str), Some("051"), "{following}");
    assert!(following.contains("following"));
    run.press(&mut vs, &[Action::Follow]);
    run.fleet.add_output("t1", 1, lines(52, 60).as_bytes(), now);
    assert_eq!(output(&run.render(&vs, 120, 30)).last().map(String::as_str), Some("051"));
    run.press(&mut vs, &[Action::Follow]);
    assert_eq!(output(&run.render(&vs, 120, 30)).last().map(String::as_str), Some("059"));
}
