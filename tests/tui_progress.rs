//! Progress at a glance (issue 15 item 10): the header shows done/total and percent,
//! the rate over the last minute and the ETA it gives, the stalled, held and
//! dead-lettered counts and the run's `max_parallel` cap; at 80 columns it drops the
//! least important parts whole (never a part cut in two); `/stalled` finds a stalled
//! attempt in the tasks table.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::header::{eta_ms, human_rate};
use pitboss::tui::keys::Keymap;
use pitboss::tui::model::Fleet;
use pitboss::tui::screens::tasks::task_rows;
use pitboss::tui::view::ViewState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[run]
name = "nightly-refactor-fleet"
max_parallel = 4
[defaults]
retry = { max_attempts = 1 }
[[pool]]
name = "agent"
command = ["agent"]
concurrency = 2
"#;

struct Script {
    state: RunState,
    records: Vec<Record>,
}

impl Script {
    fn new() -> Script {
        let mut text = WORKFLOW.to_string();
        for id in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            text.push_str(&format!("[[task]]\nid = \"{id}\"\n"));
        }
        let workflow = config::parse(&text, "p.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        Script { state, records: vec![Record { seq: 1, ts: T0, event: first }] }
    }

    fn push(&mut self, ms: u64, event: Event) {
        self.records.push(Record { seq: self.records.len() as u64 + 1, ts: T0 + ms, event });
    }

    fn at(&mut self, ms: u64, input: Input) {
        let ctx = StepContext { now_ms: T0 + ms, jitter: 0.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            self.push(ms, event);
        }
    }

    fn finish(&mut self, ms: u64, task: &str, ok: bool) {
        let output = SmallOutput::default();
        let outcome = if ok {
            Outcome::Success { result: serde_json::json!({}), exit_code: Some(0), duration_ms: 1, output }
        } else {
            let error = "exit code 1".to_string();
            let class = FailureClass::Worker;
            Outcome::Failure { class, error, exit_code: Some(1), signal: None, duration_ms: 1, output }
        };
        self.at(ms, Input::Finished { task: task.into(), attempt: 1, outcome });
    }

    /// Ten tasks, two at a time: a, c and d done (three in the first minute), b
    /// dead-lettered, e and f running and f stalled, g to j queued.
    fn minute() -> Script {
        let mut s = Script::new();
        s.at(1_000, Input::Start { pid: 1, version: "t".into(), resumed: false });
        s.finish(10_000, "a", true);
        s.finish(20_000, "b", false);
        s.finish(30_000, "c", true);
        s.finish(40_000, "d", true);
        s.push(50_000, Event::AttemptStalled { task: "f".into(), attempt: 1, quiet_ms: 10_000 });
        s
    }
}

/// The header line as drawn `width` columns wide at `now`.
fn header(records: &[Record], width: u16, now: u64) -> String {
    let fleet = Fleet::from_records(records).unwrap();
    let vs = ViewState::default();
    let mut terminal = Terminal::new(TestBackend::new(width, 10)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet: &fleet,
        total: records.len(),
        view: &vs,
        keys: &keys,
        now_ms: now,
        theme: Theme { color: false },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    (0..width).map(|x| buffer[(x, 0)].symbol().to_string()).collect()
}

#[test]
fn the_wide_header_shows_progress_rate_eta_attention_counts_and_the_cap() {
    let s = Script::minute();
    let line = header(&s.records, 160, T0 + 60_000);
    for part in [
        "nightly-refactor-fleet",
        "1m00s",
        "3 done of 10 (30%)",
        // Three completions in the last minute: 0.05/s, shown per minute.
        "3.0/min",
        // Six tasks left (three done and one dead of ten) at 0.05/s: 120 s.
        "eta 2m00s",
        "2 running",
        "1 stalled",
        "1 dead",
        "4 queued",
        "max_parallel 4",
    ] {
        assert!(line.contains(part), "{part:?} in {line:?}");
    }
}

#[test]
fn at_80_columns_the_least_important_parts_go_whole() {
    let s = Script::minute();
    let line = header(&s.records, 80, T0 + 60_000);
    let wide = header(&s.records, 160, T0 + 60_000);
    assert!(wide.trim_end().chars().count() > 80, "the wide line would not fit: {wide:?}");
    // What calls for action and progress stay; the name, the queued count and the
    // clock go first, the long forms become short ones.
    assert_eq!(line.trim_end(), " pitboss  3 done of 10  3.0/min  eta 2m00s  2 running  1 stalled  1 dead  cap 4");
}

#[test]
fn the_eta_comes_from_the_rate() {
    assert_eq!(eta_ms(6, 0.05), Some(120_000));
    assert_eq!(eta_ms(100, 2.0), Some(50_000));
    assert_eq!(eta_ms(0, 2.0), None, "nothing left");
    assert_eq!(eta_ms(5, 0.0), None, "nothing completes: no estimate");
    assert_eq!(human_rate(0.05), "3.0/min");
    assert_eq!(human_rate(2.0), "2.0/s");
    // No completion yet: the ETA is unknown, said so rather than left out.
    let mut s = Script::new();
    s.at(1_000, Input::Start { pid: 1, version: "t".into(), resumed: false });
    let line = header(&s.records, 160, T0 + 5_000);
    assert!(line.contains("0 done of 10 (0%)") && line.contains("eta ?"), "{line:?}");
    // The total is never read as a done count ("0/10 done" would be "10 done" to a
    // search, as the pty tests wait for).
    assert!(!line.contains("10 done"), "{line:?}");
}

#[test]
fn slash_stalled_finds_the_stalled_attempt() {
    let s = Script::minute();
    let fleet = Fleet::from_records(&s.records).unwrap();
    let vs = ViewState { filter: "stalled".into(), ..ViewState::default() };
    let ids: Vec<&str> = task_rows(&fleet, &vs).into_iter().map(|i| fleet.state.task_id(i)).collect();
    assert_eq!(ids, ["f"], "only the stalled one, not e that runs too");
    let vs = ViewState { filter: "state:stalled".into(), ..ViewState::default() };
    assert_eq!(task_rows(&fleet, &vs).len(), 1);
}

#[test]
fn the_tasks_table_says_stalled() {
    let s = Script::minute();
    let fleet = Fleet::from_records(&s.records).unwrap();
    let vs = ViewState { screen: pitboss::tui::view::Screen::Tasks, ..ViewState::default() };
    let mut terminal = Terminal::new(TestBackend::new(100, 20)).unwrap();
    let keys = Keymap::default();
    let scene = Scene {
        fleet: &fleet,
        total: s.records.len(),
        view: &vs,
        keys: &keys,
        now_ms: T0 + 60_000,
        theme: Theme { color: false },
    };
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let row = |task: &str| {
        (0..20)
            .map(|y| (0..100).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>())
            .find(|line| line.starts_with(&format!("│{task} ")))
            .unwrap_or_default()
    };
    assert!(row("f").contains(" stalled "), "{:?}", row("f"));
    assert!(row("e").contains(" running "), "{:?}", row("e"));
}
