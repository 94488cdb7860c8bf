//! Issue 15 items 15 and 19 without a terminal: the row position in every table's
//! title, Ctrl-D/Ctrl-U half pages and PgUp/PgDn full pages, sorting the tasks table
//! by any column (duration and start time too) both ways with ties in id order and the
//! selection kept, Esc cancelling a filter, and the mouse in every view, hit-tested
//! with the screens' own layout functions (`pitboss::tui::mouse`).

use pitboss::tui::draw::{draw, frame_rows, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::mouse::{hit, on_mouse, page_rows, Hit};
use pitboss::tui::screens::{dashboard, dead_letters, detail, tasks};
use pitboss::tui::view::{Screen, SortKey, TextKey, ViewState};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use ratatui::Terminal;

mod tui_run;
use tui_run::Run;

/// Seven tasks: four finish with known durations (two ties), two keep running, `g`
/// waits on `e` (no attempt: no duration, no start).
const SORTS: &str = r#"
[run]
name = "habits"
[defaults]
retry = { max_attempts = 1 }
[[pool]]
name = "p"
command = ["agent"]
concurrency = 8
[[task]]
id = "a"
[[task]]
id = "b"
[[task]]
id = "c"
[[task]]
id = "d"
[[task]]
id = "e"
[[task]]
id = "f"
[[task]]
id = "g"
depends_on = ["e"]
"#;

/// Forty tasks that all run at once (pages), three of which fail for good.
fn many() -> String {
    let mut wf = String::from(
        "[run]\nname = \"many\"\n[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 50\n",
    );
    for n in 0..40 {
        wf += &format!("[[task]]\nid = \"t{n:02}\"\n");
    }
    wf
}

impl Run {
    /// The sorting fixture: a 300, b 100, c 300, d 200 ms; e and f running 1 s.
    fn sorts() -> Run {
        let mut run = Run::start(SORTS);
        run.succeed("a", 300);
        run.succeed("b", 100);
        run.succeed("c", 300);
        run.succeed("d", 200);
        run
    }

    /// Forty running tasks, then t05, t06 dead-lettered with one cause and t07 with
    /// another.
    fn many() -> Run {
        let mut run = Run::start(&many());
        run.fail("t05", "exit code 2: disk full");
        run.fail("t06", "exit code 2: disk full");
        run.fail("t07", "timed out after 5s");
        run
    }

    fn press(&self, vs: &mut ViewState, actions: &[Action]) {
        for a in actions {
            vs.update(&self.fleet, self.fleet.records.len(), *a);
        }
    }

    fn type_text(&self, vs: &mut ViewState, text: &str) {
        for c in text.chars() {
            vs.type_key(&self.fleet, self.fleet.records.len(), TextKey::Char(c));
        }
    }

    fn key(&self, vs: &mut ViewState, key: TextKey) {
        vs.type_key(&self.fleet, self.fleet.records.len(), key);
    }

    fn render(&self, vs: &ViewState) -> String {
        let area = vs.terminal;
        let mut terminal = Terminal::new(TestBackend::new(area.width, area.height)).unwrap();
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

    fn click(&self, vs: &mut ViewState, x: u16, y: u16) {
        on_mouse(vs, &self.fleet, self.fleet.records.len(), mouse(MouseEventKind::Down(MouseButton::Left), x, y));
    }

    fn wheel(&self, vs: &mut ViewState, up: bool, x: u16, y: u16) {
        let kind = if up { MouseEventKind::ScrollUp } else { MouseEventKind::ScrollDown };
        on_mouse(vs, &self.fleet, self.fleet.records.len(), mouse(kind, x, y));
    }

    /// The tasks table's ids, top to bottom, as the view orders them.
    fn order(&self, vs: &ViewState) -> Vec<String> {
        tasks::task_rows(&self.fleet, vs).into_iter().map(|i| self.fleet.state.task_id(i).to_string()).collect()
    }
}

fn mouse(kind: MouseEventKind, column: u16, row: u16) -> MouseEvent {
    MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE }
}

fn view(width: u16, height: u16) -> ViewState {
    ViewState { terminal: Rect::new(0, 0, width, height), ..ViewState::default() }
}

/// The screen's line `y` (a rendered TestBackend puts each line in quotes).
fn line(screen: &str, y: usize) -> String {
    screen.lines().nth(y).unwrap_or_default().to_string()
}

fn selected(run: &Run, vs: &ViewState) -> String {
    vs.selected_task(&run.fleet).unwrap_or_default()
}

// ---- the row position -------------------------------------------------------------

#[test]
fn every_table_title_says_where_the_selection_is_and_how_many_a_filter_shows() {
    let run = Run::many();
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks]);
    assert!(run.render(&vs).contains("Tasks 1/40 "), "{}", run.render(&vs));
    run.press(&mut vs, &[Action::Down, Action::Down]);
    assert!(run.render(&vs).contains("Tasks 3/40 "));
    // Filtered: the row among the shown, and of how many.
    run.press(&mut vs, &[Action::Filter]);
    run.type_text(&mut vs, "state:dead");
    run.key(&mut vs, TextKey::Enter);
    assert!(run.render(&vs).contains("Tasks 1/3 of 40 "), "{}", run.render(&vs));

    // Dead letters: the groups, filtered, then an open group's members.
    run.press(&mut vs, &[Action::Back, Action::DeadLetters]);
    assert!(run.render(&vs).contains("Dead letters by cause 1/2 "), "{}", run.render(&vs));
    run.press(&mut vs, &[Action::Filter]);
    run.type_text(&mut vs, "t07");
    run.key(&mut vs, TextKey::Enter);
    // The long title does not fit with the filter in it: the short one keeps the position.
    assert!(run.render(&vs).contains("Dead letters 1/1 of 2 "), "{}", run.render(&vs));
    run.press(&mut vs, &[Action::Back, Action::Top, Action::Open]);
    assert!(run.render(&vs).contains("Dead letters · 1/2 with cause"), "{}", run.render(&vs));
    run.press(&mut vs, &[Action::Down]);
    assert!(run.render(&vs).contains("Dead letters · 2/2 with cause"));
}

// ---- pages ------------------------------------------------------------------------

#[test]
fn ctrl_d_and_ctrl_u_move_half_the_rows_shown_and_pgdn_a_whole_page() {
    let run = Run::many();
    // 80×24: the screen has 21 rows, the table 18 of them for tasks.
    let mut vs = view(80, 24);
    run.press(&mut vs, &[Action::Tasks]);
    assert_eq!(page_rows(&vs, &run.fleet), 18);
    run.press(&mut vs, &[Action::HalfPageDown]);
    assert_eq!(selected(&run, &vs), "t09");
    run.press(&mut vs, &[Action::HalfPageDown, Action::HalfPageDown, Action::HalfPageDown, Action::HalfPageDown]);
    assert_eq!(selected(&run, &vs), "t39", "past the end stops at the last row");
    run.press(&mut vs, &[Action::HalfPageUp]);
    assert_eq!(selected(&run, &vs), "t30");
    run.press(&mut vs, &[Action::PageUp]);
    assert_eq!(selected(&run, &vs), "t12");
    run.press(&mut vs, &[Action::PageDown]);
    assert_eq!(selected(&run, &vs), "t30");
    // A taller terminal has bigger pages.
    vs.terminal = Rect::new(0, 0, 80, 44);
    run.press(&mut vs, &[Action::Top, Action::HalfPageDown]);
    assert_eq!(selected(&run, &vs), "t19");

    // The members of a dead-letter group page too (two members: the end).
    let mut vs = view(80, 24);
    run.press(&mut vs, &[Action::DeadLetters, Action::Open, Action::HalfPageDown]);
    assert_eq!(selected(&run, &vs), "t06");
    run.press(&mut vs, &[Action::HalfPageUp]);
    assert_eq!(selected(&run, &vs), "t05");
}

#[test]
fn half_pages_scroll_the_detail_output() {
    let mut run = Run::many();
    let lines: String = (0..100).map(|n| format!("line {n}\n")).collect();
    run.fleet.add_output("t00", 1, lines.as_bytes(), run.now);
    let mut vs = view(80, 24);
    run.press(&mut vs, &[Action::Tasks, Action::Open]);
    let page = page_rows(&vs, &run.fleet);
    assert_eq!(page, 12, "21 screen rows less the task box and the borders");
    run.press(&mut vs, &[Action::HalfPageUp]);
    let Screen::Detail(d) = &vs.screen else { panic!("no detail") };
    assert_eq!((d.scroll, d.follow), (6, false));
    run.press(&mut vs, &[Action::PageUp, Action::HalfPageDown]);
    let Screen::Detail(d) = &vs.screen else { panic!("no detail") };
    assert_eq!(d.scroll, 12);
}

// ---- sorting ------------------------------------------------------------------------

#[test]
fn duration_sorts_longest_first_s_reverses_and_ties_keep_id_order() {
    let run = Run::sorts();
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks]);
    while vs.sort != SortKey::Duration {
        run.press(&mut vs, &[Action::Sort]);
    }
    // Running e and f (1 s so far, a tie) first, a and c tied at 300 ms, g never ran: last.
    assert_eq!(run.order(&vs), ["e", "f", "a", "c", "d", "b", "g"]);
    assert!(run.render(&vs).contains("TIME▼"), "{}", run.render(&vs));
    assert!(run.render(&vs).contains("sort: duration ▼"));
    run.press(&mut vs, &[Action::SortReverse]);
    // Reversed: shortest first; ties still in id order, the task without one still last.
    assert_eq!(run.order(&vs), ["b", "d", "a", "c", "e", "f", "g"]);
    assert!(run.render(&vs).contains("TIME▲"));
    assert!(vs.message.as_deref().unwrap_or_default().contains("duration ▲"));
}

/// A running attempt sorts by the duration the table shows for it (the view's clock),
/// not by its duration at the newest record: long after the last record, a running
/// task is longer than one that took 5 s.
#[test]
fn running_attempts_sort_by_the_duration_shown_now() {
    let mut run = Run::start("[defaults]\nretry = { max_attempts = 1 }\n[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\nconcurrency = 4\n[[task]]\nid = \"done\"\n[[task]]\nid = \"busy\"\n");
    run.succeed("done", 5_000);
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks]);
    while vs.sort != SortKey::Duration {
        run.press(&mut vs, &[Action::Sort]);
    }
    // As of the newest record `busy` has run 250 ms: shorter than 5 s.
    assert_eq!(run.order(&vs), ["done", "busy"]);
    // Ten seconds later on the view's clock it has run longer: it comes first.
    vs.now_ms = run.now + 10_000;
    assert_eq!(run.order(&vs), ["busy", "done"]);
    let screen = run.render(&vs);
    let busy = screen.lines().position(|l| l.contains("│busy")).unwrap();
    let done = screen.lines().position(|l| l.contains("│done")).unwrap();
    assert!(busy < done, "{screen}");
}

#[test]
fn start_time_id_state_pool_and_attempts_sort_both_ways() {
    let run = Run::sorts();
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks]);
    let mut seen = Vec::new();
    for _ in 0..7 {
        run.press(&mut vs, &[Action::Sort]);
        seen.push(vs.sort);
        let forward = run.order(&vs);
        run.press(&mut vs, &[Action::SortReverse]);
        let backward = run.order(&vs);
        run.press(&mut vs, &[Action::SortReverse]);
        assert_eq!(forward.len(), 7);
        match vs.sort {
            SortKey::Id => {
                assert_eq!(forward, ["a", "b", "c", "d", "e", "f", "g"]);
                assert_eq!(backward, ["g", "f", "e", "d", "c", "b", "a"]);
            }
            // All six started together: a tie, in id order both ways; g never started.
            SortKey::Started => {
                assert_eq!(forward, ["a", "b", "c", "d", "e", "f", "g"]);
                assert_eq!(backward, forward);
                assert!(run.render(&vs).contains("STARTED▲"), "{}", run.render(&vs));
            }
            SortKey::State => {
                // Pending before running before completed in the life cycle.
                assert_eq!(forward.first().map(String::as_str), Some("g"));
                assert_eq!(backward.last().map(String::as_str), Some("g"));
            }
            SortKey::Workflow => assert_eq!(backward, ["g", "f", "e", "d", "c", "b", "a"]),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            SortKey::Id,
            SortKey::State,
            SortKey::Pool,
            SortKey::Attempts,
            SortKey::Duration,
            SortKey::Started,
            SortKey::Workflow
        ]
    );
}

#[test]
fn a_new_order_keeps_the_selected_task_selected() {
    let run = Run::sorts();
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks, Action::Down, Action::Down, Action::Down]);
    assert_eq!(selected(&run, &vs), "d");
    while vs.sort != SortKey::Duration {
        run.press(&mut vs, &[Action::Sort]);
        assert_eq!(selected(&run, &vs), "d", "sorting by {:?} moved the selection", vs.sort);
    }
    // e f a c d b g: d is the fifth row, and the title says so.
    assert!(run.render(&vs).contains("Tasks 5/7 "), "{}", run.render(&vs));
    run.press(&mut vs, &[Action::SortReverse]);
    assert_eq!(selected(&run, &vs), "d");
    assert!(run.render(&vs).contains("Tasks 2/7 "));
    run.press(&mut vs, &[Action::Down]);
    assert_eq!(selected(&run, &vs), "a", "the next row in the order shown");
}

// ---- Esc ----------------------------------------------------------------------------

#[test]
fn esc_cancels_the_filter_while_typing_and_after_it_was_set() {
    let run = Run::many();
    for screen in [Action::Tasks, Action::DeadLetters, Action::Dashboard] {
        let mut vs = view(100, 30);
        run.press(&mut vs, &[screen, Action::Filter]);
        run.type_text(&mut vs, "t07");
        assert_eq!(vs.filter, "t07", "the table follows the typing");
        run.key(&mut vs, TextKey::Esc);
        assert!(vs.filter_input.is_none());
        assert_eq!(vs.filter, "", "Esc in the field cancels the filter ({screen:?})");
        // Set with Enter, then Esc on the view clears it.
        run.press(&mut vs, &[Action::Filter]);
        run.type_text(&mut vs, "t07");
        run.key(&mut vs, TextKey::Enter);
        assert_eq!(vs.filter, "t07");
        run.press(&mut vs, &[Action::Back]);
        assert_eq!(vs.filter, "", "Esc on the view clears the filter ({screen:?})");
    }
}

// ---- the mouse ----------------------------------------------------------------------

#[test]
fn a_click_selects_the_task_row_drawn_under_it_even_when_scrolled() {
    let run = Run::many();
    let mut vs = view(80, 24);
    run.press(&mut vs, &[Action::Tasks]);
    let rows = tasks::rows_area(frame_rows(vs.terminal)[1]);
    run.click(&mut vs, 5, rows.y + 2);
    assert_eq!(selected(&run, &vs), "t02");
    // Scrolled down: the click counts from the first row shown.
    run.press(&mut vs, &[Action::Bottom]);
    let screen = run.render(&vs);
    run.click(&mut vs, 5, rows.y);
    let clicked = selected(&run, &vs);
    assert!(line(&screen, rows.y as usize).contains(&clicked), "{clicked} is not drawn on that row:\n{screen}");
    assert_eq!(clicked, "t22");
    // The column titles and the borders select nothing.
    run.click(&mut vs, 5, rows.y - 1);
    assert_eq!(selected(&run, &vs), "t22");
    assert_eq!(hit(&vs, &run.fleet, 0, rows.y), Hit::Nothing);
}

#[test]
fn a_click_selects_a_dead_letter_group_and_a_member() {
    let run = Run::many();
    let mut vs = view(80, 24);
    run.press(&mut vs, &[Action::DeadLetters]);
    let rows = pitboss::tui::screens::tasks::rows_area(frame_rows(vs.terminal)[1]);
    let screen = run.render(&vs);
    // At 80 columns the ids are left out: the cause names the group.
    assert!(line(&screen, rows.y as usize + 1).contains("timed out"), "{screen}");
    run.click(&mut vs, 10, rows.y + 1);
    assert_eq!(selected(&run, &vs), "t07");
    assert!(run.render(&vs).contains("Dead letters by cause 2/2 "));
    run.click(&mut vs, 10, rows.y);
    run.press(&mut vs, &[Action::Open]);
    run.click(&mut vs, 10, rows.y + 1);
    assert_eq!(selected(&run, &vs), "t06");
    let screen = run.render(&vs);
    assert!(screen.contains("Dead letters · 2/2 with "), "{screen}");
    // Below the last member: nothing.
    run.click(&mut vs, 10, rows.y + 5);
    assert_eq!(selected(&run, &vs), "t06");
}

/// The dashboard's worker panes on screen (row among the workers, rectangle), laid
/// out as the frame draws them.
fn dashboard_panes(run: &Run, vs: &ViewState) -> Vec<(usize, Rect)> {
    let body = frame_rows(vs.terminal)[1];
    let groups = dead_letters::groups(&run.fleet, &vs.filter).len();
    let workers = dashboard::parts(&run.fleet, groups, body, vs.terminal.height).workers;
    dashboard::grid(&run.fleet, vs, workers).panes
}

#[test]
fn a_click_selects_a_worker_pane_and_a_click_on_the_selected_one_opens_it() {
    let run = Run::many();
    // Stacked on a small terminal; beside the panels with the timeline on a large one.
    for (width, height) in [(80, 24), (140, 40)] {
        let mut vs = view(width, height);
        let panes = dashboard_panes(&run, &vs);
        assert!(panes.len() >= 2, "{panes:?}");
        let (row, rect) = panes[1];
        let screen = run.render(&vs);
        // The pane's title line names the task that is clicked.
        let id = run.fleet.state.task_id(dashboard::worker_rows(&run.fleet)[row]).to_string();
        assert!(line(&screen, rect.y as usize).contains(&id), "{id} not at {rect:?}:\n{screen}");
        run.click(&mut vs, rect.x + 2, rect.y + 2);
        assert_eq!(selected(&run, &vs), id);
        assert_eq!(vs.screen, Screen::Dashboard);
        run.click(&mut vs, rect.x + 2, rect.y + 2);
        assert!(matches!(&vs.screen, Screen::Detail(d) if d.task == id), "{:?}", vs.screen);
    }
}

#[test]
fn a_click_on_the_grids_next_page_selects_the_pane_drawn_there() {
    let run = Run::many();
    // 8 running; a page of the stacked grid at 80×24 holds fewer.
    let mut vs = view(80, 24);
    let first_page = dashboard_panes(&run, &vs);
    run.render(&vs);
    run.press(&mut vs, &[Action::PageDown]);
    let panes = dashboard_panes(&run, &vs);
    assert_eq!(panes[0].0, first_page.len(), "PgDn turned the grid's page");
    let (row, rect) = panes[panes.len() - 1];
    let screen = run.render(&vs);
    let id = run.fleet.state.task_id(dashboard::worker_rows(&run.fleet)[row]).to_string();
    assert!(line(&screen, rect.y as usize).contains(&id), "{id} not at {rect:?}:\n{screen}");
    run.click(&mut vs, rect.x + rect.width - 2, rect.y + rect.height - 1);
    assert_eq!(selected(&run, &vs), id);
}

#[test]
fn the_wheel_scrolls_the_detail_pane_under_the_pointer() {
    let mut run = Run::many();
    let lines: String = (0..100).map(|n| format!("line {n}\n")).collect();
    run.fleet.add_output("t00", 1, lines.as_bytes(), run.now);
    let mut vs = view(100, 30);
    run.press(&mut vs, &[Action::Tasks, Action::Open]);
    let [history, output] = detail::columns(frame_rows(vs.terminal)[1]);
    run.wheel(&mut vs, true, output.x + 3, output.y + output.height - 3);
    let Screen::Detail(d) = &vs.screen else { panic!("no detail") };
    assert_eq!((d.scroll, d.cursor), (3, None), "the output scrolled, the history did not");
    run.wheel(&mut vs, true, history.x + 3, history.y + history.height - 3);
    let Screen::Detail(d) = &vs.screen else { panic!("no detail") };
    assert_eq!(d.scroll, 3);
    assert!(d.cursor.is_some(), "the history stepped back");
    run.wheel(&mut vs, false, output.x + 3, output.y + output.height - 3);
    let Screen::Detail(d) = &vs.screen else { panic!("no detail") };
    assert_eq!(d.scroll, 0);
}
