//! The header's clock and rate (issue 15 item 8): after a resume they count from the
//! resuming manager's start, not across the hour the run was stopped, and once the
//! run has ended they stay where the end left them.

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::Keymap;
use pitboss::tui::model::Fleet;
use pitboss::tui::view::ViewState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;
const HOUR: u64 = 3_600_000;

const WORKFLOW: &str = r#"
[[pool]]
name = "agent"
command = ["agent"]
concurrency = 1
[[task]]
id = "a"
[[task]]
id = "b"
[[task]]
id = "c"
"#;

struct Script {
    state: RunState,
    records: Vec<Record>,
}

impl Script {
    fn new() -> Script {
        let workflow = config::parse(WORKFLOW, "h.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        Script { state, records: vec![Record { seq: 1, ts: T0, event: first }] }
    }

    fn at(&mut self, ms: u64, input: Input) {
        let ctx = StepContext { now_ms: T0 + ms, jitter: 0.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            self.records.push(Record { seq: self.records.len() as u64 + 1, ts: T0 + ms, event });
        }
    }

    fn succeed(&mut self, ms: u64, task: &str, attempt: u32) {
        let outcome = Outcome::Success {
            result: serde_json::json!({}),
            exit_code: Some(0),
            duration_ms: 1,
            output: SmallOutput::default(),
        };
        self.at(ms, Input::Finished { task: task.into(), attempt, outcome });
    }

    /// a done in the first 10 s, then stopped (b handed back) for an hour; resumed,
    /// c done 4 s after the resume (b queued behind it).
    fn resumed() -> Script {
        let mut s = Script::new();
        s.at(1_000, Input::Start { pid: 1, version: "t".into(), resumed: false });
        s.succeed(5_000, "a", 1);
        s.at(10_000, Input::Interrupt { reason: "operator quit".into() });
        s.at(10_000, Input::AttemptStopped { task: "b".into(), attempt: 1, reason: "run stopped".into() });
        s.at(HOUR, Input::Start { pid: 2, version: "t".into(), resumed: true });
        s.succeed(HOUR + 4_000, "c", 1);
        s
    }
}

/// The header line as drawn at `now`.
fn header(records: &[Record], now: u64) -> String {
    let fleet = Fleet::from_records(records).unwrap();
    let vs = ViewState::default();
    let mut terminal = Terminal::new(TestBackend::new(160, 10)).unwrap();
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
    (0..160).map(|x| buffer[(x, 0)].symbol().to_string()).collect()
}

#[test]
fn after_a_resume_the_clock_and_the_rate_count_from_the_resume() {
    let s = Script::resumed();
    let line = header(&s.records, T0 + HOUR + 10_000);
    assert!(line.contains(" 10s since resume "), "not the hour it was stopped: {line}");
    // One completion in the 10 s since the resume, not over a minute half spent stopped.
    assert!(line.contains("0.1/s"), "{line}");
}

#[test]
fn once_the_run_has_ended_the_clock_and_the_rate_stay_put() {
    let mut s = Script::resumed();
    let pitboss::core::TaskState::Running { attempt, .. } = s.state.tasks[1].state else { panic!("b runs") };
    s.succeed(HOUR + 20_000, "b", attempt);
    assert!(s.state.finished);
    let at_end = header(&s.records, T0 + HOUR + 20_000);
    let later = header(&s.records, T0 + HOUR + 20_000 + 10 * 60_000);
    assert!(at_end.contains(" 20s since resume ") && at_end.contains("0.1/s"), "{at_end}");
    assert_eq!(later, at_end, "ten minutes after the end nothing moved");
    // Interrupted (the operator quit a live run): stopped at its record too.
    let mut s = Script::new();
    s.at(1_000, Input::Start { pid: 1, version: "t".into(), resumed: false });
    s.succeed(3_000, "a", 1);
    s.at(5_000, Input::Interrupt { reason: "operator quit".into() });
    let stopped = header(&s.records, T0 + 5_000);
    assert!(stopped.contains(" 5.0s ") && stopped.contains("0.2/s"), "{stopped}");
    assert_eq!(header(&s.records, T0 + 65_000), stopped, "a minute after the stop nothing moved");
}
