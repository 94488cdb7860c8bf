//! The TUI without a terminal: views rendered to ratatui's `TestBackend` from scripted
//! event sequences (fixed times and ids, so snapshots are stable), and the view-state
//! update function driven key by key and command by command.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::{Request, Screen, SortKey, TextKey, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[run]
name = "release-notes"
[defaults]
retry = { max_attempts = 3, initial = "1s", jitter = false }
[[pool]]
name = "planner"
command = ["agent"]
concurrency = 1
[[pool]]
name = "writer"
command = ["agent"]
concurrency = 3
[[pool]]
name = "reviewer"
command = ["agent"]
concurrency = 2
breaker = { failures = 3, window = "1m", cooldown = "30s" }
[[task]]
id = "plan"
pool = "planner"
payload = { prompt = "plan the notes" }
[[task]]
id = "draft-a"
pool = "writer"
depends_on = ["plan"]
[[task]]
id = "draft-b"
pool = "writer"
depends_on = ["plan"]
[[task]]
id = "draft-c"
pool = "writer"
depends_on = ["plan"]
[[task]]
id = "review"
pool = "reviewer"
depends_on = ["draft-a", "draft-b", "draft-c"]
[[task]]
id = "lint"
pool = "reviewer"
[[task]]
id = "lint-report"
pool = "reviewer"
depends_on = ["lint"]
"#;

/// Drives the core like the engine does and keeps the records, at fixed times.
struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new() -> Script {
        let workflow = config::parse(WORKFLOW, "release-notes.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let mut script = Script { state, records: vec![Record { seq: 1, ts: T0, event: first }], now: T0 };
        script.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
        script
    }

    fn input(&mut self, input: Input) {
        self.now += 250;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            let seq = self.records.len() as u64 + 1;
            self.records.push(Record { seq, ts: self.now, event });
        }
    }

    fn succeed(&mut self, task: &str, attempt: u32) {
        let outcome = Outcome::Success {
            result: serde_json::json!({ "summary": format!("{task} done") }),
            exit_code: Some(0),
            duration_ms: 1_200,
            output: SmallOutput { stdout: Some(format!("working on {task}\n")), stderr: None },
        };
        self.input(Input::Finished { task: task.into(), attempt, outcome });
    }

    fn fail(&mut self, task: &str, attempt: u32) {
        let outcome = Outcome::Failure {
            class: FailureClass::Worker,
            error: format!("exit code 2: lint found {} problems", 10 + attempt),
            exit_code: Some(2),
            signal: None,
            duration_ms: 300,
            output: SmallOutput { stdout: None, stderr: Some("problems found\n".into()) },
        };
        self.input(Input::Finished { task: task.into(), attempt, outcome });
    }

    /// plan done; drafts running (draft-b failed once and waits); lint dead-lettered.
    fn busy() -> Script {
        let mut s = Script::new();
        s.succeed("plan", 1);
        s.fail("lint", 1);
        let due = s.due("lint");
        s.input(Input::RetryTimer { task: "lint".into(), due_ms: due });
        s.fail("lint", 2);
        let due = s.due("lint");
        s.input(Input::RetryTimer { task: "lint".into(), due_ms: due });
        s.fail("lint", 3);
        s.fail("draft-b", 1);
        s
    }

    fn due(&self, task: &str) -> u64 {
        let i = self.state.task_index(task).unwrap();
        match self.state.tasks[i].state {
            pitboss::core::TaskState::RetryWait { due_ms } => due_ms,
            ref other => panic!("{task} is {other:?}"),
        }
    }

    fn fleet(&self) -> Fleet {
        let mut fleet = Fleet::from_records(&self.records).unwrap();
        let ts = self.now;
        fleet.add_output(
            "draft-a",
            1,
            b"reading the changelog\n{\"pitboss\":\"progress\",\"pct\":40,\"msg\":\"drafting\"}\nwrote 3 paragraphs\n",
            ts,
        );
        fleet.add_output("draft-c", 1, b"thinking...\n", ts);
        fleet
    }
}

fn render(fleet: &Fleet, vs: &ViewState, width: u16, height: u16) -> String {
    render_with_total(fleet, fleet.records.len(), vs, width, height)
}

fn render_with_total(fleet: &Fleet, total: usize, vs: &ViewState, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let keys = Keymap::default();
    let scene =
        Scene { fleet, total, view: vs, keys: &keys, now_ms: fleet.last_ts + 2_000, theme: Theme { color: false } };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    format!("{}", terminal.backend())
}

fn press(vs: &mut ViewState, fleet: &Fleet, actions: &[Action]) -> Vec<Request> {
    let mut out = Vec::new();
    for a in actions {
        out.extend(vs.update(fleet, fleet.records.len(), *a));
    }
    out
}

fn type_text(vs: &mut ViewState, fleet: &Fleet, text: &str) -> Vec<Request> {
    let mut out = Vec::new();
    for c in text.chars() {
        out.extend(vs.type_key(fleet, fleet.records.len(), TextKey::Char(c)));
    }
    out
}

// ---- snapshots -------------------------------------------------------------

#[test]
fn dashboard_on_a_large_terminal() {
    let fleet = Script::busy().fleet();
    insta::assert_snapshot!(render(&fleet, &ViewState::default(), 140, 36));
}

#[test]
fn dashboard_on_80x24() {
    let fleet = Script::busy().fleet();
    insta::assert_snapshot!(render(&fleet, &ViewState::default(), 80, 24));
}

#[test]
fn tasks_view_sorted_by_state() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Tasks, Action::Sort, Action::Sort]);
    assert_eq!(vs.sort, SortKey::State);
    insta::assert_snapshot!(render(&fleet, &vs, 100, 20));
}

#[test]
fn tasks_view_filtered() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Filter]);
    type_text(&mut vs, &fleet, "draft");
    vs.type_key(&fleet, fleet.records.len(), TextKey::Enter);
    assert_eq!(vs.filter, "draft");
    assert_eq!(vs.screen, Screen::Tasks);
    insta::assert_snapshot!(render(&fleet, &vs, 100, 14));
}

#[test]
fn dead_letters_view() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::DeadLetters]);
    insta::assert_snapshot!(render(&fleet, &vs, 100, 10));
}

#[test]
fn task_detail_stepping_through_history() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Tasks, Action::Bottom, Action::Up, Action::Open]);
    let Screen::Detail(d) = &vs.screen else { panic!("not in detail: {:?}", vs.screen) };
    assert_eq!(d.task, "lint");
    let latest = render(&fleet, &vs, 120, 22);
    insta::assert_snapshot!("detail_latest", latest);
    // Three steps back: the task as it was then, with that step highlighted.
    press(&mut vs, &fleet, &[Action::Left, Action::Left, Action::Left]);
    let Screen::Detail(d) = &vs.screen else { unreachable!() };
    assert!(d.cursor.is_some());
    insta::assert_snapshot!("detail_stepped_back", render(&fleet, &vs, 120, 22));
    // Forward to the end returns to the live view.
    press(&mut vs, &fleet, &[Action::Right, Action::Right, Action::Right]);
    let Screen::Detail(d) = &vs.screen else { unreachable!() };
    assert_eq!(d.cursor, None);
}

#[test]
fn time_travel_shows_the_run_as_of_event_n() {
    let script = Script::busy();
    let live = script.fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &live, &[Action::Travel]);
    assert_eq!(vs.travel, Some(live.records.len()));
    press(&mut vs, &live, &[Action::Top, Action::Right, Action::Right, Action::Right, Action::Right]);
    assert_eq!(vs.travel, Some(5));
    // The same fold as replay, over the first 5 records.
    let then = Fleet::from_records(&script.records[..5]).unwrap();
    insta::assert_snapshot!(render_with_total(&then, live.records.len(), &vs, 100, 24));
    // Actions are refused while travelling; Esc returns to live.
    assert!(press(&mut vs, &then, &[Action::Retry]).is_empty());
    assert!(vs.message.as_deref().unwrap_or_default().contains("read-only"));
    press(&mut vs, &then, &[Action::Back]);
    assert_eq!(vs.travel, None);
}

#[test]
fn help_and_confirm_overlays() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Help]);
    insta::assert_snapshot!("help", render(&fleet, &vs, 100, 30));
    press(&mut vs, &fleet, &[Action::Back]); // Esc closes help (movement keys scroll it)
    assert!(!vs.help);
    press(&mut vs, &fleet, &[Action::Cancel]); // the selected worker pane
    assert!(vs.confirm.is_some());
    insta::assert_snapshot!("confirm_cancel", render(&fleet, &vs, 100, 24));
}

#[test]
fn pools_panel_shows_circuits_countdowns_and_pauses() {
    let mut script = Script::busy();
    // lint's three failures opened the reviewer breaker.
    assert!(script.records.iter().any(|r| matches!(&r.event, Event::BreakerOpened { pool, .. } if pool == "reviewer")));
    script.input(Input::PausePool { pool: "writer".into() });
    let screen = render(&script.fleet(), &ViewState::default(), 140, 36);
    let reviewer = screen.lines().find(|l| l.contains("reviewer ") && l.contains("queued")).unwrap();
    assert!(reviewer.contains("open 27s"), "{reviewer}");
    let writer = screen.lines().find(|l| l.contains("writer ") && l.contains("queued")).unwrap();
    assert!(writer.contains("— paused"), "{writer}");
    insta::assert_snapshot!(screen);
}

#[test]
fn no_color_uses_no_colours() {
    let fleet = Script::busy().fleet();
    let keys = Keymap::default();
    let vs = ViewState::default();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let scene =
        Scene { fleet: &fleet, total: 1, view: &vs, keys: &keys, now_ms: fleet.last_ts, theme: Theme { color: false } };
    terminal.draw(|f| draw(f, &scene)).unwrap();
    let colours = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .filter(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
        .count();
    assert_eq!(colours, 0);
    let scene = Scene { theme: Theme { color: true }, ..scene };
    terminal.draw(|f| draw(f, &scene)).unwrap();
    assert!(terminal.backend().buffer().content().iter().any(|c| c.fg != ratatui::style::Color::Reset));
}

// ---- the update function, key by key ----------------------------------------

#[test]
fn navigation_keys_move_and_clamp_the_selection() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Tasks]);
    press(&mut vs, &fleet, &[Action::Up]);
    assert_eq!(vs.selected, 0);
    press(&mut vs, &fleet, &[Action::Down, Action::Down]);
    assert_eq!(vs.selected, 2);
    press(&mut vs, &fleet, &[Action::Bottom]);
    assert_eq!(vs.selected, 6);
    press(&mut vs, &fleet, &[Action::Down, Action::PageDown]);
    assert_eq!(vs.selected, 6);
    press(&mut vs, &fleet, &[Action::Top]);
    assert_eq!(vs.selected, 0);
    press(&mut vs, &fleet, &[Action::NextPane]);
    assert_eq!(vs.screen, Screen::DeadLetters);
    press(&mut vs, &fleet, &[Action::NextPane]);
    assert_eq!(vs.screen, Screen::Dashboard);
}

#[test]
fn retry_requeues_a_dead_letter_and_refuses_a_running_task() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    let out = vs.run_command(&fleet, fleet.records.len(), "retry lint");
    assert_eq!(out, vec![Request::Engine(Input::Requeue { task: "lint".into(), reason: "operator (tui)".into() })]);
    let out = vs.run_command(&fleet, fleet.records.len(), "retry draft-a");
    assert!(out.is_empty());
    assert!(vs.message.as_deref().unwrap().contains("running"), "{:?}", vs.message);
    // A task waiting to retry is retried now.
    let out = vs.run_command(&fleet, fleet.records.len(), "retry draft-b");
    assert!(matches!(&out[..], [Request::Engine(Input::RetryTimer { task, .. })] if task == "draft-b"));
}

#[test]
fn cancel_asks_first_and_no_is_the_default() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    assert!(vs.run_command(&fleet, fleet.records.len(), "cancel draft-a").is_empty());
    assert!(vs.confirm.as_ref().unwrap().question.contains("draft-a"));
    // Any answer but yes is no.
    assert!(vs.answer(false).is_empty());
    assert!(vs.confirm.is_none());
    vs.run_command(&fleet, fleet.records.len(), "cancel draft-a");
    let out = vs.answer(true);
    assert_eq!(out, vec![Request::Engine(Input::Cancel { task: "draft-a".into(), reason: "operator (tui)".into() })]);
    // Another key while asked also means no.
    vs.run_command(&fleet, fleet.records.len(), "cancel draft-a");
    assert!(press(&mut vs, &fleet, &[Action::Open]).is_empty());
    assert!(vs.confirm.is_none());
}

#[test]
fn replay_all_previews_how_many_tasks_come_back() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    assert!(press(&mut vs, &fleet, &[Action::ReplayAll]).is_empty());
    let question = vs.confirm.as_ref().unwrap().question.clone();
    // lint plus its skipped dependent lint-report.
    assert!(question.contains("2 tasks in all"), "{question}");
    assert!(question.contains("1 skipped dependents"), "{question}");
    let out = vs.answer(true);
    assert_eq!(out, vec![Request::Engine(Input::Requeue { task: "lint".into(), reason: "operator (tui)".into() })]);
}

#[test]
fn quit_asks_when_work_is_running_and_not_when_finished() {
    let script = Script::busy();
    let fleet = script.fleet();
    let mut vs = ViewState::default();
    assert!(press(&mut vs, &fleet, &[Action::Quit]).is_empty());
    assert!(vs.confirm.as_ref().unwrap().question.contains("running attempt"));
    assert_eq!(vs.answer(true), vec![Request::Quit]);

    let mut done = Script::new();
    done.succeed("plan", 1);
    for t in ["draft-a", "draft-b", "draft-c", "lint"] {
        done.succeed(t, 1);
    }
    done.succeed("review", 1);
    done.succeed("lint-report", 1);
    let fleet = done.fleet();
    assert!(fleet.state.finished);
    let mut vs = ViewState::default();
    assert_eq!(press(&mut vs, &fleet, &[Action::Quit]), vec![Request::Quit]);
}

#[test]
fn palette_completes_commands_and_task_ids() {
    let fleet = Script::busy().fleet();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::Palette]);
    type_text(&mut vs, &fleet, "ret");
    vs.type_key(&fleet, fleet.records.len(), TextKey::Tab);
    assert_eq!(vs.palette.as_ref().unwrap().value(), "retry ");
    type_text(&mut vs, &fleet, "dr");
    vs.type_key(&fleet, fleet.records.len(), TextKey::Tab);
    assert_eq!(vs.palette.as_ref().unwrap().value(), "retry draft-");
    type_text(&mut vs, &fleet, "b");
    let out = vs.type_key(&fleet, fleet.records.len(), TextKey::Enter);
    assert!(vs.palette.is_none());
    assert!(matches!(&out[..], [Request::Engine(Input::RetryTimer { .. })]));
    // replay completes "all" too.
    press(&mut vs, &fleet, &[Action::Palette]);
    type_text(&mut vs, &fleet, "replay al");
    vs.type_key(&fleet, fleet.records.len(), TextKey::Tab);
    assert_eq!(vs.palette.as_ref().unwrap().value(), "replay all ");
    vs.type_key(&fleet, fleet.records.len(), TextKey::Esc);
    assert!(vs.palette.is_none());
    // Pools complete after pause, breaker's verbs and then pools after breaker.
    assert_eq!(pitboss::tui::screens::palette::complete(&fleet, "pause wr"), "pause writer ");
    assert_eq!(pitboss::tui::screens::palette::complete(&fleet, "breaker t"), "breaker trip ");
    assert_eq!(pitboss::tui::screens::palette::complete(&fleet, "breaker trip rev"), "breaker trip reviewer ");
}

#[test]
fn palette_commands_each_do_their_thing() {
    let fleet = Script::busy().fleet();
    let total = fleet.records.len();
    let mut vs = ViewState::default();
    vs.run_command(&fleet, total, "inspect review");
    assert!(matches!(&vs.screen, Screen::Detail(d) if d.task == "review"));
    vs.run_command(&fleet, total, "travel");
    assert_eq!(vs.travel, Some(total));
    vs.travel = None;
    vs.run_command(&fleet, total, "filter state:dead");
    assert_eq!((vs.filter.as_str(), &vs.screen), ("state:dead", &Screen::Tasks));
    vs.run_command(&fleet, total, "replay nosuch");
    assert_eq!(vs.message.as_deref(), Some("no task \"nosuch\""));
    assert_eq!(
        vs.run_command(&fleet, total, "pause writer"),
        vec![Request::Engine(Input::PausePool { pool: "writer".into() })]
    );
    assert_eq!(vs.run_command(&fleet, total, "resume all").len(), 3, "one resume per pool");
    assert!(vs.run_command(&fleet, total, "pause nosuch").is_empty());
    assert!(vs.message.as_deref().unwrap().contains("no pool \"nosuch\""));
    assert_eq!(
        vs.run_command(&fleet, total, "concurrency writer 5"),
        vec![Request::Engine(Input::SetConcurrency { pool: "writer".into(), concurrency: 5 })]
    );
    assert!(vs.run_command(&fleet, total, "concurrency writer 0").is_empty(), "at least 1");
    assert_eq!(
        vs.run_command(&fleet, total, "breaker trip reviewer"),
        vec![Request::Engine(Input::BreakerTrip { pool: "reviewer".into() })]
    );
    assert_eq!(
        vs.run_command(&fleet, total, "breaker reset reviewer"),
        vec![Request::Engine(Input::BreakerReset { pool: "reviewer".into() })]
    );
    vs.run_command(&fleet, total, "frobnicate");
    assert!(vs.message.as_deref().unwrap().contains("unknown command"));
    assert!(vs.run_command(&fleet, total, "quit").is_empty(), "quit with work running asks");
    assert!(vs.confirm.is_some());
}

#[test]
fn editing_a_payload_goes_through_the_palette_and_must_be_json() {
    let fleet = Script::busy().fleet();
    let total = fleet.records.len();
    let mut vs = ViewState::default();
    press(&mut vs, &fleet, &[Action::DeadLetters, Action::EditPayload]);
    assert_eq!(vs.palette.as_ref().unwrap().value(), "payload lint {}");
    vs.type_key(&fleet, total, TextKey::Backspace);
    type_text(&mut vs, &fleet, "\"strict\":false}");
    let out = vs.type_key(&fleet, total, TextKey::Enter);
    assert_eq!(
        out,
        vec![Request::Engine(Input::EditPayload {
            task: "lint".into(),
            payload: serde_json::json!({"strict": false})
        })]
    );
    assert!(vs.run_command(&fleet, total, "payload lint {not json").is_empty());
    assert!(vs.message.as_deref().unwrap().contains("not valid JSON"));
    assert!(vs.run_command(&fleet, total, "payload draft-a {}").is_empty(), "draft-a is running");
    assert!(vs.message.as_deref().unwrap().contains("is running"));
}

#[test]
fn filter_words_match_state_pool_and_error_text() {
    let fleet = Script::busy().fleet();
    let ids = |filter: &str| {
        let vs = ViewState { filter: filter.into(), ..ViewState::default() };
        pitboss::tui::screens::tasks::task_rows(&fleet, &vs)
            .into_iter()
            .map(|i| fleet.state.task_id(i).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("state:dead"), ["lint"]);
    assert_eq!(ids("pool:planner"), ["plan"]);
    assert_eq!(ids("problems"), ["draft-b", "lint"]);
    assert_eq!(ids("draft state:running"), ["draft-a", "draft-c"]);
}

#[test]
fn task_detail_warns_of_output_that_was_not_saved() {
    let mut s = Script::new();
    s.now += 100;
    let event = Event::OutputCaptureFailed {
        task: "plan".into(),
        attempt: 1,
        stream: pitboss::core::event::OutputStream::Stdout,
        error: "cannot write output/plan.1.stdout: No space left on device (os error 28)".into(),
    };
    s.state.apply(&event, s.now).unwrap();
    s.records.push(Record { seq: s.records.len() as u64 + 1, ts: s.now, event });
    s.succeed("plan", 1);
    let fleet = s.fleet();
    let mut vs = ViewState::default();
    pitboss::tui::screens::detail::open(&mut vs, "plan".into());
    let screen = render(&fleet, &vs, 160, 24);
    assert!(screen.contains("warning: output not saved (attempt 1 stdout)"), "{screen}");
    assert!(screen.contains("plan: warning: attempt 1's stdout is not being saved"), "{screen}");
}
