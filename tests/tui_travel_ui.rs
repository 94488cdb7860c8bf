//! Time travel says where it is (issue 15 item 13) and forks from there (item 18):
//! the status line names the record at the cursor (kind, task, what happened), `?`
//! lists time travel's keys, and `F` asks (No by default, naming the new folder)
//! before a fork whose log is this run's prefix up to the cursor. The log is the
//! scripted run of `tui_model.rs`, cut short and written to a temporary run folder.

use std::path::Path;

use pitboss::core::text::describe;
use pitboss::io::journal::{self, Record, LOG_FILE};
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::{Request, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

mod scripted_log;
use scripted_log::*;

/// Records of the scripted run kept (past its 1,500 `task_ready`s: attempts,
/// retries and dead letters; small enough to fork in a test).
const KEPT: usize = 2_500;

fn records() -> Vec<Record> {
    long_log().into_iter().take(KEPT).collect()
}

/// Writes `records` to `dir`'s live log as the engine would.
fn write_run(dir: &Path, records: &[Record]) {
    let mut bytes = Vec::new();
    for r in records {
        journal::encode(r.seq, r.ts, &r.event, &mut bytes);
    }
    std::fs::write(dir.join(LOG_FILE), bytes).unwrap();
}

fn render(fleet: &Fleet, vs: &ViewState) -> String {
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).unwrap();
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
    format!("{}", terminal.backend())
}

/// The first record at or after `from` that `describe` words with a task in it.
fn described_at_or_after(records: &[Record], from: usize) -> usize {
    (from..records.len())
        .find(|&i| records[i].event.task().is_some() && describe(&records[i].event).is_some())
        .expect("a task record")
}

#[test]
fn the_status_line_names_the_record_at_the_cursor_and_follows_it() {
    let records = records();
    let mut fleet = Fleet::from_records(&records).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    for i in [described_at_or_after(&records, 1_700), described_at_or_after(&records, 2_300)] {
        let n = i + 1;
        vs.travel = Some(n);
        fleet.travel_to(vs.travel).unwrap();
        let screen = render(&fleet, &vs);
        let record = &records[i];
        let what = describe(&record.event).unwrap();
        let head: String = what.chars().take(60).collect();
        assert!(screen.contains(&format!("at #{n} {}: ", record.event.kind())), "record {n} not named:\n{screen}");
        assert!(screen.contains(&head), "record {n}'s words {head:?} not shown:\n{screen}");
        // A step moves the caption with the cursor.
        vs.update(&fleet, records.len(), Action::Left);
        fleet.travel_to(vs.travel).unwrap();
        assert!(render(&fleet, &vs).contains(&format!("at #{} ", n - 1)), "the caption did not follow a step back");
    }
}

#[test]
fn help_in_time_travel_lists_time_travels_keys() {
    let records = records();
    let fleet = Fleet::from_records(&records).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    vs.update(&fleet, records.len(), Action::Help);
    let screen = render(&fleet, &vs);
    for words in ["one record back", "fifty records forward", "fork the run here", "back to the live run"] {
        assert!(screen.contains(words), "help lacks {words:?}:\n{screen}");
    }
    assert!(!screen.contains("retry the task"), "help lists keys time travel refuses:\n{screen}");
}

#[test]
fn fork_asks_first_and_no_is_the_default() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    let records = records();
    write_run(&dir, &records);
    let fleet = Fleet::open(&dir).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    vs.travel = Some(120);
    assert!(vs.update(&fleet, records.len(), Action::Fork).is_empty(), "F forked without asking");
    let question = vs.confirm.as_ref().expect("F asks first").question.clone();
    assert!(question.contains("record 120") && question.contains("run-fork-120"), "{question}");
    // Any key but y is No: nothing is made.
    assert!(vs.update(&fleet, records.len(), Action::Down).is_empty());
    assert!(vs.confirm.is_none());
    assert!(!scratch.path().join("run-fork-120").exists());
}

#[test]
fn fork_then_yes_makes_a_folder_whose_log_is_the_prefix() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    let records = records();
    write_run(&dir, &records);
    let original = std::fs::read(dir.join(LOG_FILE)).unwrap();
    let fleet = Fleet::open(&dir).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    vs.travel = Some(120);
    vs.update(&fleet, records.len(), Action::Fork);
    let requests = vs.answer(true);
    let [Request::Fork { dir: from, seq, to }] = requests.as_slice() else { panic!("y gave {requests:?}") };
    assert_eq!((from.as_path(), *seq), (dir.as_path(), 120));
    let message = pitboss::tui::screens::travel::fork(from, *seq, to);
    let forked = scratch.path().join("run-fork-120");
    assert!(message.contains(&forked.display().to_string()), "{message}");
    assert!(message.contains(&format!("pitboss resume {}", forked.display())), "{message}");
    let lines =
        |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap().lines().map(str::to_string).collect::<Vec<_>>();
    let fork_log = lines(&std::fs::read(forked.join(LOG_FILE)).unwrap());
    let original_lines = lines(&original);
    assert_eq!(fork_log[..120], original_lines[..120], "the fork's log is not the prefix up to the cursor");
    assert!(fork_log[120].contains("forked_from"), "{}", fork_log[120]);
    assert_eq!(std::fs::read(dir.join(LOG_FILE)).unwrap(), original, "the original log changed");
}

#[test]
fn fork_in_an_attached_tui_says_how_to_fork_from_the_shell() {
    let records = records();
    let fleet = Fleet::from_records(&records).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    vs.travel = Some(50);
    assert!(vs.update(&fleet, records.len(), Action::Fork).is_empty());
    assert!(vs.confirm.is_none());
    let message = vs.message.clone().unwrap_or_default();
    assert!(message.contains("pitboss fork DIR --at 50"), "{message}");
}

#[test]
fn worker_panes_in_time_travel_say_what_was_running_then() {
    let records = records();
    let mut fleet = Fleet::from_records(&records).unwrap();
    let mut vs = ViewState::default();
    vs.update(&fleet, records.len(), Action::Travel);
    // A cursor with attempts in flight.
    let n = (1..=records.len())
        .rev()
        .find(|&n| {
            fleet.travel_to(Some(n)).unwrap();
            fleet.running().len() > 0
        })
        .expect("some record with a running attempt");
    vs.travel = Some(n);
    fleet.travel_to(vs.travel).unwrap();
    let screen = render(&fleet, &vs);
    let first = fleet.running().next().unwrap();
    assert!(screen.contains(fleet.state.task_id(first)), "the running task is not named:\n{screen}");
    assert!(screen.contains("running at this record"), "an empty pane at record {n}:\n{screen}");
}

#[test]
fn fork_on_the_live_run_says_where_forks_are_made() {
    let records = records();
    let fleet = Fleet::from_records(&records).unwrap();
    let mut vs = ViewState::default();
    assert!(vs.update(&fleet, records.len(), Action::Fork).is_empty());
    assert!(vs.confirm.is_none());
    let message = vs.message.clone().unwrap_or_default();
    assert!(message.contains("time travel"), "F on the live run said {message:?}");
}
