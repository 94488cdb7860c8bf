//! Issue 15 item 7 and item 15's `n`/`N`, without a terminal: the detail's output
//! pane shows a running worker's stdout lines with its progress reports as bars where
//! they arrived (live, and in a finished attempt's recorded stdout), and its search
//! finds lines, says plainly when nothing matches, holds the pane while output
//! arrives and clears with Esc. The run is driven through the core as the engine
//! drives it, its records folded into the read model one by one.

use pitboss::core::decide::Outcome;
use pitboss::core::{Input, SmallOutput};
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::screens::detail::{output_pane, PaneLine};
use pitboss::tui::view::{Screen, TextKey, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

mod tui_run;
use tui_run::Run;

const WORKFLOW: &str = r#"
[run]
name = "output"
[[pool]]
name = "p"
command = ["agent"]
[[task]]
id = "w"
"#;

const PROGRESS_40: &str = r#"{"pitboss":"progress","pct":40,"msg":"drafting"}"#;

impl Run {
    /// Task `w` running its first attempt.
    fn new() -> Run {
        Run::start(WORKFLOW)
    }

    fn print(&mut self, text: &str) {
        self.fleet.add_output("w", 1, text.as_bytes(), self.now);
    }

    fn press(&self, vs: &mut ViewState, actions: &[Action]) {
        for a in actions {
            vs.update(&self.fleet, self.fleet.records.len(), *a);
        }
    }

    fn search(&self, vs: &mut ViewState, word: &str) {
        self.press(vs, &[Action::Filter]);
        for c in word.chars() {
            vs.type_key(&self.fleet, self.fleet.records.len(), TextKey::Char(c));
        }
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
        terminal.draw(|f| draw(f, &scene)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                out.push_str(buffer[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }
}

fn message(vs: &ViewState) -> String {
    vs.message.clone().unwrap_or_default()
}

fn detail(vs: &ViewState) -> &pitboss::tui::view::Detail {
    match &vs.screen {
        Screen::Detail(d) => d,
        other => panic!("not the detail: {other:?}"),
    }
}

#[test]
fn live_stdout_lines_and_progress_reports_share_the_pane_in_arrival_order() {
    let mut run = Run::new();
    run.print(&format!("reading\n{PROGRESS_40}\n"));
    run.print(r#"{"pitboss":"progress","pct":60,"msg":"still drafting"}"#);
    run.print("\nwriting\npart");
    let pane = output_pane(&run.fleet, 0, None, true);
    assert!(pane.live, "{pane:?}");
    // Two reports in a row: one bar, moved in place to the newer one.
    assert_eq!(
        pane.lines,
        [
            PaneLine::Text("reading".into()),
            PaneLine::Progress(60.0, "still drafting".into()),
            PaneLine::Text("writing".into()),
            PaneLine::Text("part".into()),
        ]
    );
    let mut vs = ViewState::default();
    vs.run_command(&run.fleet, run.fleet.records.len(), "inspect w");
    let screen = run.render(&vs, 100, 30);
    assert!(screen.contains("60% still drafting") && screen.contains('█'), "{screen}");
    assert!(!screen.contains("pitboss\""), "raw progress JSON on screen:\n{screen}");
}

#[test]
fn a_finished_attempts_recorded_stdout_shows_its_reports_as_bars() {
    let mut run = Run::new();
    let output = SmallOutput {
        stdout: Some(format!("hello\n{PROGRESS_40}\n{{\"done\":true}}\n")),
        stderr: Some("log\n".into()),
    };
    let outcome = Outcome::Success { result: serde_json::json!({}), exit_code: Some(0), duration_ms: 100, output };
    run.input(Input::Finished { task: "w".into(), attempt: 1, outcome });
    let pane = output_pane(&run.fleet, 0, None, true);
    assert!(!pane.live && pane.title.contains("finished"), "{pane:?}");
    assert!(pane.lines.contains(&PaneLine::Progress(40.0, "drafting".into())), "{pane:?}");
    assert!(pane.contains("hello") && pane.contains("log"), "{pane:?}");
    let mut vs = ViewState::default();
    vs.run_command(&run.fleet, run.fleet.records.len(), "inspect w");
    let screen = run.render(&vs, 100, 30);
    assert!(screen.contains("40% drafting") && !screen.contains("\"pitboss\""), "{screen}");
}

#[test]
fn the_search_jumps_between_matches_and_says_when_there_is_none() {
    let mut run = Run::new();
    let lines: String =
        (0..60).map(|n| if n % 20 == 5 { format!("error {n}\n") } else { format!("ok {n}\n") }).collect();
    run.print(&lines);
    let mut vs = ViewState::default();
    vs.run_command(&run.fleet, run.fleet.records.len(), "inspect w");

    run.search(&mut vs, "nothing-like-it");
    assert!(message(&vs).contains("no match for \"nothing-like-it\""), "{}", message(&vs));
    assert!(detail(&vs).follow, "no match: the pane stays where it was");

    // Enter: the newest match at or above the bottom; N older, n newer, wrapping.
    run.search(&mut vs, "ERROR");
    assert!(message(&vs).starts_with("match 3/3"), "{}", message(&vs));
    assert_eq!(detail(&vs).search.as_ref().and_then(|s| s.at), Some(45));
    assert!(!detail(&vs).follow, "a match stops following");
    run.press(&mut vs, &[Action::SearchPrev]);
    assert!(message(&vs).starts_with("match 2/3"), "{}", message(&vs));
    let screen = run.render(&vs, 100, 30);
    assert!(screen.contains("error 25") && screen.contains("/ERROR"), "{screen}");
    assert!(!screen.contains("ok 59"), "{screen}");
    run.press(&mut vs, &[Action::SearchNext, Action::SearchNext]);
    assert!(message(&vs).starts_with("match 1/3") && message(&vs).contains("wrapped"), "{}", message(&vs));

    // Output arriving does not move a searched pane.
    run.press(&mut vs, &[Action::SearchNext]);
    let before = run.render(&vs, 100, 30);
    run.print(&(60..90).map(|n| format!("ok {n}\n")).collect::<String>());
    let after = run.render(&vs, 100, 30);
    let pane_lines = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.split('│').find(|c| c.starts_with("ok ") || c.starts_with("error ")))
            .map(|c| c.trim_end().to_string())
            .collect()
    };
    assert!(pane_lines(&before).contains(&"error 25".to_string()), "{before}");
    assert_eq!(pane_lines(&before), pane_lines(&after), "the searched pane moved:\n{after}");

    // Esc clears the search, a second Esc leaves the detail.
    run.press(&mut vs, &[Action::Back]);
    assert_eq!(message(&vs), "search cleared");
    assert!(detail(&vs).search.is_none());
    run.press(&mut vs, &[Action::Back]);
    assert_eq!(vs.screen, Screen::Dashboard);
    // n elsewhere says where it works.
    run.press(&mut vs, &[Action::SearchNext]);
    assert!(message(&vs).contains("detail"), "{}", message(&vs));
}

/// An attempt starts once its record is written, before it is durable and reaches
/// the view (`engine::early`): what it prints first comes before its
/// `attempt_started`, and is shown once that comes, not lost. A finished attempt's
/// late output is still ignored.
#[test]
fn output_printed_before_the_start_reaches_the_view_is_kept_for_it() {
    let mut run = Run::new();
    run.fail("w", "boom");
    let pitboss::core::TaskState::RetryWait { due_ms } = run.state.tasks[0].state else {
        panic!("no retry after the failure: {:?}", run.state.tasks[0].state)
    };
    run.fleet.add_output("w", 2, b"first words of the retry\n", run.now);
    run.fleet.add_output("w", 1, b"late words of the failed attempt\n", run.now);
    run.now = due_ms;
    run.input(Input::RetryTimer { task: "w".into(), due_ms });
    let live = &run.fleet.live["w"];
    assert_eq!(live.attempt, 2);
    assert_eq!(live.lines, ["first words of the retry"]);
    run.print_attempt(2, "and more\n");
    assert_eq!(run.fleet.live["w"].lines, ["first words of the retry", "and more"]);
}

impl Run {
    fn print_attempt(&mut self, attempt: u32, text: &str) {
        self.fleet.add_output("w", attempt, text.as_bytes(), self.now);
    }
}
