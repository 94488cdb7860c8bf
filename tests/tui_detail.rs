//! The task detail over attempts (issue 15 item 12): stepping back shows that step's
//! attempt output, a finished task is not "following", long history lines wrap; and
//! a dead-letter group opens to list its members (item 11).

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::keys::Action;
use pitboss::tui::model::Fleet;
use pitboss::tui::screens::detail::{history_rows, output_pane};
use pitboss::tui::view::{Screen, ViewState};

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[run]
name = "detail"
[defaults]
retry = { max_attempts = 3, initial = "1s", jitter = false }
[[pool]]
name = "reviewer"
command = ["agent"]
concurrency = 4
[[task]]
id = "lint"
pool = "reviewer"
[[task]]
id = "lint-b"
pool = "reviewer"
[[task]]
id = "lint-c"
pool = "reviewer"
"#;

struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new() -> Script {
        let workflow = config::parse(WORKFLOW, "detail.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let mut s = Script { state, records: vec![Record { seq: 1, ts: T0, event: first }], now: T0 };
        s.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
        s
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

    fn fail(&mut self, attempt: u32) {
        self.fail_task("lint", attempt);
    }

    fn fail_task(&mut self, task: &str, attempt: u32) {
        let outcome = Outcome::Failure {
            class: FailureClass::Worker,
            error: format!(
                "exit code 2: lint found {} problems in the long list of files it was asked to check",
                attempt
            ),
            exit_code: Some(2),
            signal: None,
            duration_ms: 300,
            output: SmallOutput { stdout: None, stderr: Some(format!("attempt {attempt} says no\n")) },
        };
        self.input(Input::Finished { task: task.into(), attempt, outcome });
        let i = self.state.task_index(task).unwrap();
        if let pitboss::core::TaskState::RetryWait { due_ms } = self.state.tasks[i].state {
            self.input(Input::RetryTimer { task: task.into(), due_ms });
        }
    }

    fn succeed(&mut self, attempt: u32) {
        let outcome = Outcome::Success {
            result: serde_json::json!({ "summary": "clean" }),
            exit_code: Some(0),
            duration_ms: 1_200,
            output: SmallOutput { stdout: Some(format!("attempt {attempt} all clean\n")), stderr: None },
        };
        self.input(Input::Finished { task: "lint".into(), attempt, outcome });
    }

    fn fleet(&self) -> Fleet {
        Fleet::from_records(&self.records).unwrap()
    }
}

/// The index of the first step of lint's history whose event matches.
fn step_where(fleet: &Fleet, f: impl Fn(&Event) -> bool) -> usize {
    let i = fleet.state.task_index("lint").unwrap();
    fleet.history(i).iter().position(|s| f(&s.event)).expect("no such step")
}

#[test]
fn stepping_back_shows_that_steps_attempt_output() {
    let mut s = Script::new();
    s.fail(1);
    s.fail(2);
    s.succeed(3);
    let fleet = s.fleet();
    let i = fleet.state.task_index("lint").unwrap();
    // The step where attempt 1 failed shows attempt 1's output, not the latest's.
    let failed1 = step_where(&fleet, |e| matches!(e, Event::AttemptFailed { attempt: 1, .. }));
    let pane = output_pane(&fleet, i, Some(failed1), true);
    assert!(pane.contains("attempt 1 says no"), "{pane:?}");
    assert!(pane.title.contains("attempt 1"), "{pane:?}");
    assert!(!pane.title.contains("following"), "{pane:?}");
    // Attempt 2's start: attempt 2's output, which it printed when it ended.
    let started2 = step_where(&fleet, |e| matches!(e, Event::AttemptStarted { attempt: 2, .. }));
    let pane = output_pane(&fleet, i, Some(started2), true);
    assert!(pane.contains("attempt 2 says no"), "{pane:?}");
    // The latest: the successful attempt, finished, not "following".
    let pane = output_pane(&fleet, i, None, true);
    assert!(pane.contains("attempt 3 all clean"), "{pane:?}");
    assert!(pane.title.contains("finished") && !pane.title.contains("following"), "{pane:?}");
    // Completed: no stale error from the failed attempts.
    assert_eq!(fleet.state.tasks[i].why(), None);
    let past = fleet.task_after(i, failed1).unwrap();
    assert!(past.why().unwrap().contains("lint found 1 problems"), "{:?}", past.why());
}

#[test]
fn long_history_lines_wrap_to_show_their_end() {
    let mut s = Script::new();
    s.fail(1);
    let fleet = s.fleet();
    let i = fleet.state.task_index("lint").unwrap();
    let history = fleet.history(i);
    let failed1 = step_where(&fleet, |e| matches!(e, Event::AttemptFailed { attempt: 1, .. }));
    let rows = history_rows(&history, None, 40, 30);
    assert!(rows.iter().all(|(_, r)| r.chars().count() <= 40), "{rows:?}");
    let failed: String = rows.iter().filter(|(n, _)| *n == failed1).map(|(_, r)| r.as_str()).collect();
    assert!(failed.ends_with("retry in 1.0s"), "the backoff delay is shown: {failed:?}");
    // A small window ends with the cursor's step, whole.
    let rows = history_rows(&history, Some(failed1), 40, 3);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.last().unwrap().0, failed1, "{rows:?}");
    assert!(rows.last().unwrap().1.ends_with("retry in 1.0s"), "{rows:?}");
}

#[test]
fn a_dead_letter_group_opens_to_list_its_members_and_enter_opens_one() {
    let mut s = Script::new();
    for task in ["lint", "lint-b", "lint-c"] {
        for attempt in 1..=3 {
            s.fail_task(task, attempt);
        }
    }
    let fleet = s.fleet();
    let total = fleet.records.len();
    let mut vs = ViewState::default();
    let press = |vs: &mut ViewState, a: Action| {
        vs.update(&fleet, total, a);
    };
    press(&mut vs, Action::DeadLetters);
    assert_eq!(vs.screen, Screen::DeadLetters);
    // Enter on the group lists its three members instead of opening the first task.
    press(&mut vs, Action::Open);
    assert_eq!(vs.screen, Screen::DeadLetters, "Enter on a group opened {:?}", vs.screen);
    assert_eq!(pitboss::tui::screens::dead_letters::members(&fleet, &vs), ["lint", "lint-b", "lint-c"]);
    let screen = render(&fleet, &vs);
    assert!(
        screen.contains("3 with cause") && screen.contains("lint-b") && screen.contains("dead_lettered"),
        "{screen}"
    );
    // Down twice, Enter: the third member's detail.
    press(&mut vs, Action::Down);
    press(&mut vs, Action::Down);
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("lint-c"));
    press(&mut vs, Action::Open);
    let Screen::Detail(d) = &vs.screen else { panic!("not in detail: {:?}", vs.screen) };
    assert_eq!(d.task, "lint-c");
    // Esc: back to the members, still on lint-c; Esc again: the groups.
    press(&mut vs, Action::Back);
    assert_eq!(vs.screen, Screen::DeadLetters);
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("lint-c"));
    press(&mut vs, Action::Back);
    assert_eq!(vs.dead_letter_members, None);
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("lint"));
}

fn render(fleet: &Fleet, vs: &ViewState) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(140, 12)).unwrap();
    let keys = pitboss::tui::keys::Keymap::default();
    let theme = pitboss::tui::draw::Theme { color: false };
    let scene = pitboss::tui::draw::Scene {
        fleet,
        total: fleet.records.len(),
        view: vs,
        keys: &keys,
        now_ms: fleet.last_ts,
        theme,
    };
    terminal.draw(|frame| pitboss::tui::draw::draw(frame, &scene)).unwrap();
    format!("{}", terminal.backend())
}
