//! The TUI in broker mode (issue 16 item 4), drawn to ratatui's `TestBackend`: the
//! header says whether the broker is up (`redis up`) or down, for how long, and that
//! dispatch is paused; a remote attempt's pane names its host; workers that hold no
//! attempt get panes of their own, dim when idle, red when vanished (for 5 minutes).

use std::path::Path;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::event::{WorkerRef, WorkerRegistered};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext};
use pitboss::io::journal::Record;
use pitboss::tui::draw::{draw, Scene, Theme};
use pitboss::tui::keys::Keymap;
use pitboss::tui::model::Fleet;
use pitboss::tui::view::ViewState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_790_000_000_000;
const BROKER: &str = "redis://pitboss@127.0.0.1:6379";

const WORKFLOW: &str = r#"
[run]
name = "fleet"
broker = "redis://pitboss@127.0.0.1:6379"
[[pool]]
name = "gpu"
capabilities = ["cuda"]
concurrency = 4
[[task]]
id = "render"
[[task]]
id = "encode"
[[task]]
id = "publish"
depends_on = ["render", "encode"]
"#;

struct Script {
    state: RunState,
    records: Vec<Record>,
    now: u64,
}

impl Script {
    fn new() -> Script {
        let workflow = config::parse(WORKFLOW, "fleet.toml", Path::new("/golden")).unwrap();
        let first = Event::RunStarted { run_id: "run-0001".into(), workflow: std::sync::Arc::new(workflow) };
        let state = RunState::from_first(&first).unwrap();
        let mut script = Script { state, records: vec![Record { seq: 1, ts: T0, event: first }], now: T0 };
        script.input(Input::Start { pid: 4242, version: "test".into(), resumed: false });
        script
    }

    fn input(&mut self, input: Input) {
        self.now += 1_000;
        let ctx = StepContext { now_ms: self.now, jitter: 1.0 };
        let mut events = step(&mut self.state, input, ctx).unwrap();
        events.extend(dispatch(&mut self.state, ctx).unwrap());
        for event in events {
            let seq = self.records.len() as u64 + 1;
            self.records.push(Record { seq, ts: self.now, event });
        }
    }

    /// Three workers on three hosts; `render` runs on node1, `encode` on node2, node3 idle.
    fn fleet_of_three() -> Script {
        let mut s = Script::new();
        for n in 1..=3 {
            s.input(Input::WorkerSeen(registration(n)));
        }
        for (task, n) in [("render", 1), ("encode", 2)] {
            s.input(Input::Spawned { task: task.into(), attempt: 1, pid: 7000 + n, worker: Some(worker(n)) });
        }
        s
    }

    fn render(&self, now: u64, width: u16, height: u16) -> String {
        self.render_view(&ViewState::default(), now, width, height)
    }

    fn render_view(&self, vs: &ViewState, now: u64, width: u16, height: u16) -> String {
        let fleet = Fleet::from_records(&self.records).expect("fleet");
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        let keys = Keymap::default();
        let scene = Scene {
            fleet: &fleet,
            total: fleet.records.len(),
            view: vs,
            keys: &keys,
            now_ms: now,
            theme: Theme { color: false },
        };
        terminal.draw(|frame| draw(frame, &scene)).expect("draw");
        format!("{}", terminal.backend())
    }
}

fn registration(n: u32) -> WorkerRegistered {
    let r = worker(n);
    WorkerRegistered {
        pool: "gpu".into(),
        worker: r.id,
        host: r.host,
        pid: 4000 + n,
        capabilities: vec!["cuda".into()],
        version: "0.1.0".into(),
        concurrency: 1,
    }
}

fn worker(n: u32) -> WorkerRef {
    WorkerRef { id: format!("node{n}:{}:9c0{n}", 4000 + n), host: format!("node{n}") }
}

fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default()
}

#[test]
fn remote_panes_name_their_host_and_idle_workers_show_dim() {
    let s = Script::fleet_of_three();
    let screen = s.render(s.now + 5_000, 120, 30);
    assert!(header(&screen).contains("redis up"), "{}", header(&screen));
    assert!(screen.contains("render #1 gpu @node1:4001"), "{screen}");
    assert!(screen.contains("encode #1 gpu @node2:4002"), "{screen}");
    assert!(screen.contains("idle · gpu · node3"), "{screen}");
    assert!(screen.contains("Attempts (2) · workers 2 busy, 1 idle "), "{screen}");
    // The pool's limit is what its 3 one-slot workers offer, under its concurrency 4.
    assert!(screen.contains("gpu    2/3"), "{screen}");
    insta::assert_snapshot!("broker_fleet", screen);
}

#[test]
fn a_broker_pool_without_workers_says_so() {
    let s = Script::new();
    let screen = s.render(s.now, 120, 30);
    assert!(screen.contains("gpu    0/0    no workers 2 queued"), "{screen}");
    assert!(screen.contains("2 queued"), "{screen}");
}

#[test]
fn a_broker_outage_is_red_in_the_header_with_its_length() {
    let mut s = Script::fleet_of_three();
    s.input(Input::BrokerDown { broker: BROKER.into(), reason: "connection refused".into() });
    let down_at = s.now;
    let screen = s.render(down_at + 12_000, 160, 20);
    assert!(header(&screen).contains("redis DOWN 12s — dispatch paused"), "{}", header(&screen));
    // On 80 columns the outage keeps its short form; the quiet parts go first.
    let narrow = s.render(down_at + 12_000, 80, 20);
    assert!(header(&narrow).contains("redis DOWN 12s"), "{}", header(&narrow));
    s.input(Input::BrokerUp { broker: BROKER.into(), down_ms: 12_000, republished: 0 });
    let screen = s.render(s.now, 160, 20);
    assert!(header(&screen).contains("redis up") && !screen.contains("DOWN"), "{}", header(&screen));
}

#[test]
fn a_vanished_worker_is_red_for_five_minutes() {
    let mut s = Script::fleet_of_three();
    let input = Input::WorkerLost {
        task: "render".into(),
        attempt: 1,
        worker: worker(1),
        reason: "lease expired".into(),
        started: true,
    };
    s.input(input);
    let lost_at = s.now;
    let screen = s.render(lost_at + 40_000, 120, 30);
    assert!(screen.contains("vanished 40s ago · gpu · node1"), "{screen}");
    assert!(screen.contains("lease expired"), "{screen}");
    insta::assert_snapshot!("broker_vanished", screen);
    // Five minutes of the log later it is gone from the grid.
    s.now = lost_at + 5 * 60_000 + 1;
    s.input(Input::WorkerGone { pool: "gpu".into(), worker: worker(3).id, reason: "left".into() });
    let screen = s.render(s.now + 1_000, 120, 30);
    assert!(!screen.contains("node1 pid"), "{screen}");
    assert!(screen.contains("left 1.0s ago · gpu · node3"), "{screen}");
    // node2 alone is left: one attempt runs in its one slot, the other was sent again
    // and waits on the broker (node2's read-ahead), shown with the queue.
    assert!(screen.contains("gpu    1/1") && screen.contains("0+1 queued"), "{screen}");
}

#[test]
fn a_run_without_a_broker_shows_no_broker_part() {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n[[task]]\nid = \"a\"\n";
    let workflow = config::parse(text, "w.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "r".into(), workflow: std::sync::Arc::new(workflow) };
    let mut s = Script {
        state: RunState::from_first(&first).unwrap(),
        records: vec![Record { seq: 1, ts: T0, event: first }],
        now: T0,
    };
    s.input(Input::Start { pid: 1, version: "t".into(), resumed: false });
    let screen = s.render(s.now, 160, 20);
    assert!(!screen.contains("redis") && !screen.contains("idle"), "{screen}");
    // Without a broker each pane is a worker process: the box keeps its name.
    assert!(screen.contains("┌ Workers (") && !screen.contains("Attempts ("), "{screen}");
    let outcome = Outcome::Success {
        result: serde_json::json!({}),
        exit_code: Some(0),
        duration_ms: 1,
        output: SmallOutput::default(),
    };
    s.input(Input::Finished { task: "a".into(), attempt: 1, outcome });
}

/// Two workers on one host (rough edge 2 of h7's notes): the panes and the task
/// detail tell them apart by pid; the box counts attempts and says what the workers
/// do, so a vanished worker still holding an attempt reads right (rough edge 3).
#[test]
fn two_workers_on_one_host_are_told_apart_and_the_title_counts_attempts() {
    let mut s = Script::new();
    let on_vm = |pid: u32| WorkerRef { id: format!("vm:{pid}:c6ae"), host: "vm".into() };
    for pid in [986, 994] {
        let r = on_vm(pid);
        let registration = WorkerRegistered { pid, worker: r.id, host: r.host, ..registration(1) };
        s.input(Input::WorkerSeen(registration));
    }
    let screen = s.render(s.now, 120, 30);
    // Dispatched to the broker, not yet taken by a worker: both workers are idle.
    assert!(screen.contains(" Attempts (2) · workers 2 idle "), "{screen}");
    assert!(screen.contains("render #1 gpu 1.0s"), "{screen}");
    for (task, pid) in [("render", 986), ("encode", 994)] {
        s.input(Input::Spawned { task: task.into(), attempt: 1, pid, worker: Some(on_vm(pid)) });
    }
    let screen = s.render(s.now, 120, 30);
    assert!(screen.contains("render #1 gpu @vm:986 "), "{screen}");
    assert!(screen.contains("encode #1 gpu @vm:994 "), "{screen}");
    assert!(screen.contains(" Attempts (2) · workers 2 busy "), "{screen}");
    // 986's registration expires; its attempt runs on until the lease says otherwise.
    s.input(Input::WorkerGone { pool: "gpu".into(), worker: on_vm(986).id, reason: "registration expired".into() });
    let screen = s.render(s.now, 120, 30);
    assert!(screen.contains(" Attempts (2) · workers 1 busy, 1 vanished "), "{screen}");
    assert!(!screen.contains("Workers ("), "{screen}");
    // The task detail names the worker too.
    let mut vs = ViewState::default();
    pitboss::tui::screens::detail::open(&mut vs, "render".into());
    let detail = s.render_view(&vs, s.now, 120, 30);
    assert!(detail.contains("runs on vm:986 (worker vm:986:c6ae)"), "{detail}");
    let mut vs = ViewState::default();
    pitboss::tui::screens::detail::open(&mut vs, "encode".into());
    assert!(s.render_view(&vs, s.now, 120, 30).contains("runs on vm:994 (worker vm:994:c6ae)"));
}

#[test]
fn a_broker_run_with_no_worker_yet_says_no_workers() {
    let s = Script::new();
    let screen = s.render(s.now, 120, 30);
    assert!(screen.contains(" Attempts (0) · no workers "), "{screen}");
}
