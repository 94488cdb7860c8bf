//! Specs read on first use (issue 14): a format-4 snapshot of a finished run keeps its
//! spec rows as bytes, checked at open, and decodes them only when something asks for
//! them. The ids, the index by id and a snapshot written again need no decoding; what
//! is decoded is the workflow written; a damaged row that would not decode is refused
//! at open (so that decoding later can never fail), never a panic.

mod common;

use std::path::Path;
use std::sync::Arc;

use pitboss::cli::verify::canonical;
use pitboss::config;
use pitboss::core::{step, Event, Input, RunState, StepContext};
use pitboss::io::journal::LogPosition;
use pitboss::io::snapshot;

use common::reseal;

/// A workflow whose specs set every field between them (every row kind: plain, with
/// a timeout, a retry policy, rare fields, dependencies, non-ASCII ids and payloads).
fn every_field_workflow() -> pitboss::core::workflow::Workflow {
    let text = "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\ncapabilities = [\"gpu\"]\n\
        [[pool]]\nname = \"q\"\ncommand = [\"true\"]\n\
        [[task]]\nid = \"plain\"\n\
        [[task]]\nid = \"full\"\ntype = \"review\"\npool = \"q\"\npayload = { a = [1, 2.5, \"x\"] }\n\
        depends_on = [\"plain\"]\ntimeout = \"7s\"\n\
        retry = { max_attempts = 5, initial = \"2ms\", max = \"9ms\", never_on = [2, 64] }\n\
        fallback = { result = \"cached\" }\ngates = [{ command = [\"true\"] }]\ninput_guard = true\n\
        [[task]]\nid = \"needs\"\nrequires = [\"gpu\"]\nfallback = { pool = \"q\" }\n\
        consensus = { replicas = 3, strategy = \"majority\", key = \"/a\" }\n\
        [[task]]\nid = \"skips\"\nfallback = { skip = true }\ndepends_on = [\"full\", \"needs\"]\n\
        [[task]]\nid = \"u.n-i_2\"\npayload = \"ünï a\\nb\"\n";
    config::parse(text, "every.toml", Path::new("/")).expect("the test workflow is valid")
}

/// The workflow's run with every task cancelled by an operator: every task terminal,
/// as a finished run's are.
fn finished() -> RunState {
    let mut state = RunState::new("lazy".into(), Arc::new(every_field_workflow()));
    for i in 0..state.tasks.len() {
        let task = state.task_id(i).to_string();
        state.apply(&Event::TaskCancelled { task, reason: "operator".into() }, 5).expect("cancel folds");
    }
    assert!(state.all_terminal());
    state
}

const AT: LogPosition = LogPosition { seq: 3, start: 0, end: 10, crc: 7 };

#[test]
fn a_finished_run_is_read_without_decoding_its_specs_until_asked() {
    let state = finished();
    let bytes = snapshot::encode(&state, AT);
    let read = snapshot::decode(&bytes).expect("opens").state;
    assert!(read.workflow.is_lazy(), "a finished run's specs are read on first use");
    // Ids, the index by id, the head and the snapshot written again: still lazy.
    for i in 0..state.tasks.len() {
        assert_eq!(read.task_id(i), state.task_id(i));
        assert_eq!(read.task_index(state.task_id(i)), Some(i), "index by id");
    }
    assert_eq!(read.task_index("nope"), None);
    assert_eq!(read.workflow.head().name, state.workflow.name);
    assert_eq!(snapshot::encode(&read, AT), bytes, "written again, byte for byte, from the rows");
    assert!(read.workflow.is_lazy(), "nothing above decoded the specs");
    // Asked for: the workflow and the graph written, the state the one written.
    assert_eq!(*read.workflow, *state.workflow, "the decoded workflow");
    assert!(!read.workflow.is_lazy());
    assert_eq!(read.dependencies[3], state.dependencies[3], "the graph built from them");
    assert!(canonical(&read) == canonical(&state), "the whole state");
    assert_eq!(snapshot::encode(&read, AT), bytes, "and written again once decoded");
}

#[test]
fn a_lazily_read_state_that_grows_is_the_eager_one_grown() {
    // A write (an operator's submit to a finished run) decodes first and writes the
    // plain copy; a clone taken before keeps the rows.
    let state = finished();
    let bytes = snapshot::encode(&state, AT);
    let mut lazy = snapshot::decode(&bytes).expect("opens").state;
    let before = lazy.clone();
    let mut eager = state.clone();
    let more = serde_json::json!([{"id": "late"}]);
    for s in [&mut lazy, &mut eager] {
        let tasks = config::tasks_from_json(&more, &s.workflow).expect("valid tasks");
        s.apply(&Event::TasksSubmitted { tasks, source: "op".into() }, 9).expect("submit folds");
    }
    assert!(canonical(&lazy) == canonical(&eager), "grown alike");
    assert_eq!(lazy.task_index("late"), Some(5));
    // (The decoded specs are shared with the clone, which still reads from its rows.)
    assert!(before.workflow.rows().is_some() && before.task_index("late").is_none(), "the clone is untouched");
    assert_eq!((before.tasks.len(), before.workflow.tasks.len()), (5, 5));
    assert_eq!(snapshot::encode(&lazy, AT), snapshot::encode(&eager, AT));
}

#[test]
fn a_damaged_spec_row_is_refused_at_open_never_when_decoded() {
    // Every byte of the rows set to four values and sealed again: whatever opens
    // decodes (the workflow, the graph, the state) without a panic.
    let state = finished();
    let good = snapshot::encode(&state, AT);
    let newline = good.iter().position(|&b| b == b'\n').expect("head line");
    let (mut opened, mut refused) = (0, 0);
    for i in newline + 1..good.len() - 18 {
        for value in [0u8, 0xff, good[i] ^ 0x80, good[i].wrapping_add(1)] {
            let mut bad = good.clone();
            bad[i] = value;
            let bad = reseal(&bad);
            let used = std::panic::catch_unwind(|| match snapshot::decode(&bad) {
                Ok(read) => {
                    let _ = canonical(&read.state);
                    let _ = read.state.dependencies.len();
                    true
                }
                Err(_) => false,
            });
            match used {
                Ok(true) => opened += 1,
                Ok(false) => refused += 1,
                Err(_) => panic!("byte {i} set to {value} and sealed again: decoding on first use panicked"),
            }
        }
    }
    assert!(opened > 0 && refused > 0, "{opened} opened, {refused} refused: both sides taken");
}

#[test]
fn a_run_with_work_left_decodes_its_specs_at_once() {
    // Its engine needs the graph at once: read on the specs' thread as before.
    let mut state = RunState::new("live".into(), Arc::new(every_field_workflow()));
    state.apply(&Event::TaskCancelled { task: "plain".into(), reason: "op".into() }, 5).expect("folds");
    let read = snapshot::decode(&snapshot::encode(&state, AT)).expect("opens").state;
    assert!(!read.workflow.is_lazy());
    assert!(canonical(&read) == canonical(&state));
}

#[test]
fn resuming_a_finished_run_decodes_no_spec() {
    // `resume` of a finished run: the manager's start is decided and folded (its
    // dispatch reads the budget and the pools' capacity from the workflow's head), and
    // the specs stay rows. Decoding them was a quarter of `resume` at 1M records.
    let mut state = finished();
    state.apply(&Event::RunFinished { success: false }, 6).expect("the end folds");
    let mut read = snapshot::decode(&snapshot::encode(&state, AT)).expect("opens").state;
    let start = Input::Start { pid: 7, version: "0".into(), resumed: true };
    let ctx = StepContext { now_ms: 9, jitter: 0.5 };
    let events = step(&mut read, start, ctx).expect("the start folds");
    assert!(matches!(events.as_slice(), [Event::ManagerStarted { resumed: true, .. }]), "{events:?}");
    // As the engine does after every batch.
    let started = pitboss::core::decide::dispatch(&mut read, ctx).expect("dispatch folds");
    assert!(started.is_empty(), "a finished run starts nothing: {started:?}");
    assert!(read.workflow.is_lazy(), "the manager's start decoded the specs");
}

#[test]
fn the_tuis_first_frame_of_a_finished_run_decodes_no_spec() {
    // The TUI opened on a finished run draws its dashboard first: the pools panel
    // reads the pools from the workflow's head. Decoding every spec there was a third
    // of the TUI's open at 1M records.
    use pitboss::io::journal::Record;
    use pitboss::tui::draw::{draw, Scene, Theme};
    use pitboss::tui::keys::Keymap;
    use pitboss::tui::model::Fleet;
    use pitboss::tui::view::ViewState;
    let mut state = finished();
    state.apply(&Event::RunFinished { success: false }, 6).expect("the end folds");
    let first = Event::RunStarted { run_id: "lazy".into(), workflow: Arc::clone(&state.workflow) };
    let mut fleet = Fleet::from_records(&[Record { seq: 1, ts: 1, event: first }]).expect("folds");
    fleet.state = snapshot::decode(&snapshot::encode(&state, AT)).expect("opens").state;
    let (keys, view) = (Keymap::default(), ViewState::default());
    let scene = Scene { fleet: &fleet, total: 1, view: &view, keys: &keys, now_ms: 10, theme: Theme { color: false } };
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 48)).unwrap();
    terminal.draw(|frame| draw(frame, &scene)).unwrap();
    assert!(fleet.state.workflow.is_lazy(), "the first frame decoded the specs");
}
