//! The dashboard that uses its space (issue 15 item 16) and the timeline, without a
//! terminal: a scripted fleet of 3 pools with a stalled attempt, retries, a time out,
//! a breaker opening and a dead letter, drawn to ratatui's `TestBackend` at 80×24,
//! 140×40 and 160×45; and the timeline's read model (spans, outcomes, the bounded
//! window, time travel).

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome as Finish};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::{Action, Keymap};
use pitboss::tui::model::{Fleet, Outcome, TIMELINE_SPANS};
use pitboss::tui::view::{Screen, ViewState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;

const WORKFLOW: &str = r#"
[run]
name = "fleet"
max_parallel = 32
[defaults]
retry = { max_attempts = 3, initial = "2s", jitter = false }
[[pool]]
name = "fast"
command = ["agent"]
concurrency = 8
[[pool]]
name = "slow"
command = ["agent"]
concurrency = 4
breaker = { failures = 2, window = "1m", cooldown = "30s" }
[[pool]]
name = "review"
command = ["agent"]
concurrency = 2
"#;

/// Drives the core like the engine does and keeps the records, at fixed times.
struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new(tasks: &str) -> Script {
        let text = format!("{WORKFLOW}{tasks}");
        let workflow = config::parse(&text, "fleet.toml", Path::new(".")).unwrap();
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let mut script = Script { state, records: vec![Record { seq: 1, ts: T0, event: first }], now: T0 };
        script.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
        script
    }

    fn input(&mut self, input: Input) {
        self.now += 500;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            let seq = self.records.len() as u64 + 1;
            self.records.push(Record { seq, ts: self.now, event });
        }
    }

    fn succeed(&mut self, task: &str, attempt: u32) {
        let outcome = Finish::Success {
            result: serde_json::json!({ "summary": "done" }),
            exit_code: Some(0),
            duration_ms: 1_200,
            output: SmallOutput::default(),
        };
        self.input(Input::Finished { task: task.into(), attempt, outcome });
    }

    fn fail(&mut self, task: &str, attempt: u32, class: FailureClass) {
        let outcome = Finish::Failure {
            class,
            error: "exit code 2".into(),
            exit_code: Some(2),
            signal: None,
            duration_ms: 300,
            output: SmallOutput::default(),
        };
        self.input(Input::Finished { task: task.into(), attempt, outcome });
    }

    fn retry_when_due(&mut self, task: &str) {
        let i = self.state.task_index(task).unwrap();
        let pitboss::core::TaskState::RetryWait { due_ms } = self.state.tasks[i].state else {
            panic!("{task} waits not")
        };
        self.now = self.now.max(due_ms);
        self.input(Input::RetryTimer { task: task.into(), due_ms });
    }

    fn stall(&mut self, task: &str, attempt: u32) {
        self.input(Input::Stall { task: task.into(), attempt, quiet_ms: Some(90_000) });
    }

    /// 6 fast, 6 slow, 2 review tasks and a dead letter: f04 retries (attempt 2),
    /// s02 stalls, s01 fails and s03 times out (the slow breaker opens), r01 is done.
    fn fleet_of_three_pools() -> Script {
        let mut tasks = String::new();
        for (prefix, pool, n) in [("f", "fast", 6), ("s", "slow", 6), ("r", "review", 2)] {
            for k in 1..=n {
                tasks.push_str(&format!("[[task]]\nid = \"{prefix}{k:02}\"\npool = \"{pool}\"\n"));
            }
        }
        tasks.push_str(
            "[[task]]\nid = \"d01\"\npool = \"review\"\nretry = { max_attempts = 1 }\ndepends_on = [\"r01\"]\n",
        );
        let mut s = Script::new(&tasks);
        s.fail("f04", 1, FailureClass::Worker);
        s.retry_when_due("f04");
        s.stall("s02", 1);
        s.succeed("r01", 1);
        s.fail("d01", 1, FailureClass::Worker);
        s.fail("s01", 1, FailureClass::Worker);
        s.fail("s03", 1, FailureClass::Timeout);
        s
    }

    fn fleet(&self) -> Fleet {
        let mut fleet = Fleet::from_records(&self.records).unwrap();
        for i in fleet.running().collect::<Vec<_>>() {
            let id = fleet.state.task_id(i).to_string();
            let attempt = fleet.live.get(&id).map_or(1, |l| l.attempt);
            fleet.add_output(&id, attempt, format!("{id} is working\nstill {id}\n").as_bytes(), self.now);
        }
        fleet
    }
}

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
    let buffer = terminal.backend().buffer();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_string()).collect::<String>()).collect()
}

/// Task ids whose pane title is on screen, top left to bottom right.
fn panes(screen: &[String], fleet: &Fleet) -> Vec<String> {
    let mut found: Vec<(usize, usize, String)> = Vec::new();
    for i in fleet.running() {
        let id = fleet.state.task_id(i);
        for (y, line) in screen.iter().enumerate() {
            if let Some(x) = line.find(&format!("┌ {id} #")) {
                found.push((y, x, id.to_string()));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, _, id)| id).collect()
}

/// The rows between a box's top border (whose title starts with `title`) and its
/// bottom border, as (first column, inner rows).
fn box_rows<'a>(screen: &'a [String], title: &str) -> Vec<&'a str> {
    let (top, line) = screen.iter().enumerate().find(|(_, l)| l.contains(&format!("┌ {title}"))).expect(title);
    let x = line.find(&format!("┌ {title}")).unwrap();
    let col = line[..x].chars().count();
    screen[top + 1..]
        .iter()
        .take_while(|l| l.chars().nth(col) == Some('│'))
        .map(|l| {
            let start = l.char_indices().nth(col).unwrap().0;
            &l[start..]
        })
        .collect()
}

#[test]
fn the_worker_grid_fills_its_area_at_each_size_and_pages_the_rest() {
    let script = Script::fleet_of_three_pools();
    let fleet = script.fleet();
    let running = fleet.running().len();
    assert_eq!(running, 10, "6 fast (f04 retrying), 3 slow (the breaker opened), 1 review");
    // (size, panes that fit on a page)
    // 160×45 holds them all: no page note.
    for ((w, h), fit) in [((80, 24), 4), ((140, 40), 8), ((160, 45), 10)] {
        let vs = ViewState::default();
        let screen = render(&fleet, &vs, w, h);
        let shown = panes(&screen, &fleet);
        assert_eq!(shown.len(), fit, "{w}x{h}:\n{}", screen.join("\n"));
        let pages = running.div_ceil(fit);
        let note = format!("page 1/{pages} (pgup/pgdn)");
        assert_eq!(screen[1].contains(&note), pages > 1, "{w}x{h}: {}", screen[1]);
    }
}

#[test]
fn panels_are_sized_to_their_content() {
    let fleet = Script::fleet_of_three_pools().fleet();
    for (w, h) in [(80, 24), (140, 40), (160, 45)] {
        let screen = render(&fleet, &ViewState::default(), w, h);
        let text = screen.join("\n");
        // One row per pool, one per dead-letter cause: nothing blank inside.
        let pools = box_rows(&screen, "Pools");
        assert_eq!(pools.len(), 3, "{w}x{h}:\n{text}");
        let dead = box_rows(&screen, "Dead letters");
        assert_eq!(dead.len(), 1, "{w}x{h}:\n{text}");
        // The cause keeps its room (the ids need a panel wider than these).
        assert!(dead[0].contains("attempts spent (1/1): exit code 2"), "{w}x{h}: {}", dead[0]);
        for row in box_rows(&screen, "Workers") {
            let inside: String = row.chars().skip(1).collect();
            assert!(
                !inside.trim_end_matches('│').trim().is_empty(),
                "{w}x{h}: a blank row in the workers box:\n{text}"
            );
        }
        // The timeline joins the dashboard from 120×35 on.
        assert_eq!(text.contains("┌ Timeline"), w >= 120 && h >= 35, "{w}x{h}:\n{text}");
        if std::env::var_os("SHOW").is_some() {
            println!("{text}");
        }
    }
}

#[test]
fn the_most_interesting_panes_come_first_and_the_selection_follows_the_task() {
    let mut script = Script::fleet_of_three_pools();
    let fleet = script.fleet();
    let screen = render(&fleet, &ViewState::default(), 140, 40);
    let shown = panes(&screen, &fleet);
    // Stalled first, then the retry, then the longest running (the workflow's start order).
    assert_eq!(&shown[..3], ["s02", "f04", "f01"], "{}", screen.join("\n"));
    assert!(screen.iter().any(|l| l.contains("┌ s02 #1 slow") && l.contains("STALLED")));

    // Select f02 (row 3), then f01 stalls: the order changes, the selection stays on f02.
    let mut vs = ViewState::default();
    for _ in 0..3 {
        vs.update(&fleet, fleet.records.len(), Action::Down);
    }
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("f02"));
    script.stall("f01", 1);
    let fleet = script.fleet();
    let screen = render(&fleet, &vs, 140, 40);
    assert_eq!(&panes(&screen, &fleet)[..4], ["f01", "s02", "f04", "f02"]);
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("f02"));
    vs.update(&fleet, fleet.records.len(), Action::Down);
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some("f03"), "down moves from f02's new row");
}

#[test]
fn page_keys_turn_the_grid_pages_and_select_the_first_pane_of_the_page() {
    let fleet = Script::fleet_of_three_pools().fleet();
    let mut vs = ViewState::default();
    let first = render(&fleet, &vs, 140, 40);
    let page_one = panes(&first, &fleet);
    vs.update(&fleet, fleet.records.len(), Action::PageDown);
    let screen = render(&fleet, &vs, 140, 40);
    assert!(screen[1].contains("page 2/2"), "{}", screen[1]);
    let page_two = panes(&screen, &fleet);
    assert_eq!(page_two.len(), 2);
    assert!(page_two.iter().all(|id| !page_one.contains(id)));
    assert_eq!(vs.selected_task(&fleet).as_deref(), Some(page_two[0].as_str()));
    vs.update(&fleet, fleet.records.len(), Action::PageUp);
    assert_eq!(panes(&render(&fleet, &vs, 140, 40), &fleet), page_one);
}

#[test]
fn the_timeline_holds_attempts_with_their_outcomes_and_breaker_openings() {
    let script = Script::fleet_of_three_pools();
    let fleet = script.fleet();
    let state = &fleet.state;
    let span = |task: &str, attempt: u32| {
        let i = state.task_index(task).unwrap();
        fleet.timeline.spans().find(|s| s.task == i && s.attempt == attempt).cloned().unwrap()
    };
    assert_eq!((span("f04", 1).outcome, span("f04", 1).retried), (Outcome::Failed, true));
    assert_eq!(span("f04", 2).outcome, Outcome::Running);
    assert_eq!(span("f04", 2).end_ms, None);
    assert_eq!(span("r01", 1).outcome, Outcome::Ok);
    assert_eq!((span("d01", 1).outcome, span("d01", 1).retried), (Outcome::Failed, false));
    assert_eq!(span("s03", 1).outcome, Outcome::TimedOut);
    assert_eq!(span("s03", 1).pool, 1);
    let slow = state.workflow.pool_index("slow").unwrap();
    assert_eq!(fleet.timeline.breaker_openings().map(|(_, p)| p).collect::<Vec<_>>(), vec![slow]);
    // The full screen draws them: a failure, a retry's start, the breaker mark.
    let mut vs = ViewState::default();
    vs.update(&fleet, fleet.records.len(), Action::Timeline);
    assert_eq!(vs.screen, Screen::Timeline);
    let text = render(&fleet, &vs, 100, 30).join("\n");
    for mark in ["┌ Timeline", "fast", "slow", "review", "▓", "▒", "↻", "!", "━", "█", "now"] {
        assert!(text.contains(mark), "{mark} missing:\n{text}");
    }
}

#[test]
fn the_timeline_keeps_a_bounded_window_of_the_newest_attempts() {
    let n = TIMELINE_SPANS + 150;
    let mut tasks = String::new();
    for k in 0..n {
        tasks.push_str(&format!("[[task]]\nid = \"t{k:05}\"\npool = \"fast\"\n"));
    }
    let mut script = Script::new(&tasks);
    for k in 0..n {
        script.succeed(&format!("t{k:05}"), 1);
    }
    let fleet = Fleet::from_records(&script.records).unwrap();
    assert_eq!(fleet.timeline.spans().len(), TIMELINE_SPANS);
    let first = fleet.timeline.spans().next().unwrap();
    assert_eq!(fleet.state.task_id(first.task), format!("t{:05}", n - TIMELINE_SPANS));
    assert!(fleet.timeline.spans().all(|s| s.outcome == Outcome::Ok && s.end_ms.is_some()));
}

#[test]
fn in_time_travel_the_timeline_and_the_queue_are_as_of_the_cursor() {
    let script = Script::fleet_of_three_pools();
    let mut fleet = script.fleet();
    let f04 = fleet.state.task_index("f04").unwrap();
    // The record where f04's first attempt failed: before it, the attempt runs.
    let failed = script
        .records
        .iter()
        .position(|r| matches!(&r.event, Event::AttemptFailed { task, .. } if task == "f04"))
        .unwrap();
    let live_spans = fleet.timeline.spans().len();
    let screen = render(&fleet, &ViewState::default(), 140, 40);
    assert!(box_rows(&screen, "Timeline").iter().any(|row| row.contains('!')), "{}", screen.join("\n"));
    fleet.travel_to(Some(failed)).unwrap();
    let spans: Vec<_> = fleet.timeline.spans().filter(|s| s.task == f04).cloned().collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].outcome, Outcome::Running);
    assert!(fleet.timeline.spans().len() < live_spans);
    assert_eq!(fleet.timeline.breaker_openings().count(), 0);
    // The queue's samples are the run's as of the cursor too.
    let mut state = RunState::from_first(&script.records[0].event).unwrap();
    for r in &script.records[1..failed] {
        state.apply(&r.event, r.ts).unwrap();
    }
    let queued = state.count(pitboss::core::TaskStateName::Queued) as u64;
    assert_eq!(fleet.queue_depth.back().map(|(_, d)| *d), Some(queued));
    assert_eq!(fleet.queue_depth.back().map(|(s, _)| *s), Some(script.records[failed - 1].ts / 1000));
    // And drawn so: the time-travelled dashboard shows the running attempt, no breaker.
    let vs = ViewState { travel: Some(failed), ..ViewState::default() };
    let screen = render(&fleet, &vs, 140, 40);
    assert!(box_rows(&screen, "Timeline").iter().all(|row| !row.contains('!')), "{}", screen.join("\n"));
    assert!(box_rows(&screen, "Timeline").iter().any(|row| row.contains('━')));
    // At the newest record the past shown is the live run's copy: the same timeline.
    fleet.travel_to(Some(script.records.len())).unwrap();
    assert_eq!(fleet.timeline.spans().len(), live_spans);
    fleet.travel_to(None).unwrap();
    assert_eq!(fleet.timeline.spans().len(), live_spans);
}
