//! The P3 frame benches' run (`render.rs` at 10,000 tasks, `render_100k.rs` at
//! 100,000): a fleet folded from real core steps, and its frames drawn to ratatui's
//! `TestBackend` at 200×60.

use std::path::Path;

use criterion::Criterion;
use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::Fleet;
use pitboss::tui::view::ViewState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const WORKERS: usize = 64;

/// `tasks` tasks over four pools of 16; a third done, a few dead letters, 64 running.
fn fleet(tasks: usize) -> Fleet {
    // Ids of one width, as many digits as the count needs.
    let width = tasks.to_string().len();
    let mut text = "[run]\nname = \"p3\"\nmax_parallel = 64\n[defaults]\nretry = { max_attempts = 1 }\n".to_string();
    for p in 0..4 {
        text += &format!("[[pool]]\nname = \"pool-{p}\"\ncommand = [\"agent\"]\nconcurrency = 16\n");
    }
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:0width$}\"\n");
    }
    let workflow = config::parse(&text, "p3.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "bench".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: 1_790_000_000_000, event: first }];
    let mut now = 1_790_000_000_000;
    let push = |events: Vec<Event>, now: u64, records: &mut Vec<Record>| {
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts: now, event });
        }
    };
    let ctx = |now| StepContext { now_ms: now, jitter: 0.5 };
    let mut events = step(&mut state, Input::Start { pid: 1, version: "b".into(), resumed: false }, ctx(now)).unwrap();
    events.extend(dispatch(&mut state, ctx(now)).unwrap());
    push(events, now, &mut records);
    for i in 0..tasks / 3 {
        now += 10;
        let TaskState::Running { attempt, .. } = state.tasks[i].state else { panic!("task {i} not running") };
        let outcome = if i % 97 == 0 {
            Outcome::Failure {
                class: pitboss::core::FailureClass::Worker,
                error: format!("exit code {}: rate limited", i % 3),
                exit_code: Some(1),
                signal: None,
                duration_ms: 900,
                output: SmallOutput::default(),
            }
        } else {
            Outcome::Success {
                result: serde_json::json!({"ok": i}),
                exit_code: Some(0),
                duration_ms: 900,
                output: SmallOutput::default(),
            }
        };
        let mut events =
            step(&mut state, Input::Finished { task: format!("task-{i:0width$}"), attempt, outcome }, ctx(now))
                .unwrap();
        events.extend(dispatch(&mut state, ctx(now)).unwrap());
        push(events, now, &mut records);
    }
    let mut fleet = Fleet::from_records(&records).unwrap();
    let running: Vec<String> = (0..tasks)
        .filter(|&i| matches!(fleet.state.tasks[i].state, TaskState::Running { .. }))
        .map(|i| fleet.state.task_id(i).to_string())
        .collect();
    assert_eq!(running.len(), WORKERS);
    for task in &running {
        for line in 0..30 {
            let text = format!("{task}: step {line} of the plan, thinking about the next paragraph\n");
            fleet.add_output(task, 1, text.as_bytes(), now);
        }
        fleet.add_output(task, 1, b"{\"pitboss\":\"progress\",\"pct\":55,\"msg\":\"drafting\"}\n", now);
    }
    fleet
}

/// One dashboard frame and one tasks-table frame of a run of `tasks` tasks;
/// `label` names the size in the bench names ("10k").
pub fn bench(c: &mut Criterion, tasks: usize, label: &str) {
    let fleet = fleet(tasks);
    let keys = Keymap::default();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let dashboard = ViewState::default();
    let mut tasks = ViewState::default();
    tasks.update(&fleet, fleet.records.len(), Action::Tasks);
    tasks.update(&fleet, fleet.records.len(), Action::PageDown);
    // Sorted by duration (the sixth column `s` reaches), reversed: every frame sorts
    // the 10,000 rows by a value worked out once per row.
    let mut by_duration = tasks.clone();
    for _ in 0..5 {
        by_duration.update(&fleet, fleet.records.len(), Action::Sort);
    }
    by_duration.update(&fleet, fleet.records.len(), Action::SortReverse);
    let now = fleet.last_ts + 1_000;
    let mut frame = |name: &str, view: &ViewState| {
        let scene = Scene {
            fleet: &fleet,
            total: fleet.records.len(),
            view,
            keys: &keys,
            now_ms: now,
            theme: Theme { color: true },
        };
        c.bench_function(name, |b| {
            b.iter(|| {
                terminal.draw(|f| draw(f, &scene)).unwrap();
            });
        });
    };
    frame(&format!("dashboard frame, {label} tasks, 64 workers, 200x60"), &dashboard);
    frame(&format!("tasks table frame, {label} tasks, 200x60"), &tasks);
    frame(&format!("tasks table frame sorted by duration reversed, {label} tasks, 200x60"), &by_duration);
}
