//! Issue 14, time travel at scale: a checkpoint shares the tasks it did not see change
//! (copy-on-write chunks), so a run of many tasks keeps many checkpoints (≥ 64, a
//! spacing ≤ 16k records) within the memory bound, and the run shown at any cursor
//! is still exactly a fold of the log up to there.

use std::path::Path;
use std::sync::Arc;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState, TaskStateName};
use pitboss::io::journal::Record;
use pitboss::tui::model::{Fleet, CHECKPOINT_BYTES};

/// Tasks of the big run: 4 records each, so ~280,000 records, 68 spans of 4,096.
/// (The old bound of 2,000,000 task copies kept 28 checkpoints of it.)
const BIG: usize = 70_000;

/// A run of `tasks` independent tasks over three pools, each ready → started →
/// spawned → succeeded, as the engine writes it (the shape of `benches/travel.rs`).
fn run_of(tasks: usize) -> Vec<Record> {
    let mut text = "[run]\nname = \"chunks\"\nmax_parallel = 64\n".to_string();
    for p in 0..3 {
        text += &format!("[[pool]]\nname = \"pool-{p}\"\ncommand = [\"agent\"]\nconcurrency = 32\n");
    }
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:07}\"\n");
    }
    let workflow = config::parse(&text, "chunks.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "chunks".into(), workflow: Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut ts = 1_790_000_000_000;
    let mut records = vec![Record { seq: 1, ts, event: first }];
    let ctx = |ts| StepContext { now_ms: ts, jitter: 0.5 };
    let push = |events: Vec<Event>, ts: u64, records: &mut Vec<Record>| {
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts, event });
        }
    };
    let mut events = step(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, ctx(ts)).unwrap();
    events.extend(dispatch(&mut state, ctx(ts)).unwrap());
    push(events, ts, &mut records);
    for i in 0..tasks {
        ts += 3;
        let id = format!("task-{i:07}");
        let TaskState::Running { attempt, .. } = state.tasks[i].state else { panic!("task {i} not running") };
        let mut events =
            step(&mut state, Input::Spawned { task: id.clone(), attempt, pid: 4000, worker: None }, ctx(ts)).unwrap();
        let outcome = Outcome::Success {
            result: serde_json::json!({ "n": i }),
            exit_code: Some(0),
            duration_ms: 10,
            output: SmallOutput::default(),
        };
        events.extend(step(&mut state, Input::Finished { task: id, attempt, outcome }, ctx(ts)).unwrap());
        events.extend(dispatch(&mut state, ctx(ts)).unwrap());
        push(events, ts, &mut records);
    }
    records
}

/// The state shown equals `expected`, a plain fold of the same prefix.
fn assert_same(fleet: &Fleet, expected: &RunState, what: &str) {
    assert!(fleet.state.tasks == expected.tasks, "{what}: tasks differ");
    for name in TaskStateName::ALL {
        assert_eq!(fleet.state.count(name), expected.count(name), "{what}: {name} count");
    }
    assert!(fleet.state.queue().eq(expected.queue()), "{what}: queue");
    let queued = |s: &RunState| s.pools.iter().map(|p| (p.queued, p.running)).collect::<Vec<_>>();
    assert_eq!(queued(&fleet.state), queued(expected), "{what}: pools");
    for i in (0..expected.tasks.len()).step_by(97) {
        assert_eq!(fleet.state.unsatisfied_dependencies(i), expected.unsatisfied_dependencies(i), "{what}: {i}");
    }
}

#[test]
fn a_big_run_keeps_many_checkpoints_and_every_cursor_shows_a_fold_of_its_prefix() {
    let records = run_of(BIG);
    let total = records.len();
    let mut fleet = Fleet::from_records(&records).unwrap();
    let spacing = fleet.checkpoint_spacing();
    assert!(fleet.checkpoints() >= 64, "{} checkpoints at {BIG} tasks", fleet.checkpoints());
    assert!(spacing <= 16_384, "spacing {spacing} at {BIG} tasks");
    assert!(fleet.checkpoint_bytes() <= CHECKPOINT_BYTES, "checkpoints hold {} bytes", fleet.checkpoint_bytes());

    // Cursors around every checkpoint (just before, at, after, and the far end of its
    // span: the worst step back), and a stride through the rest.
    let mut cursors: Vec<usize> = (1..total).step_by(4_999).collect();
    for c in (spacing..total).step_by(spacing) {
        cursors.extend([c - 1, c, c + 1, (c + spacing - 1).min(total)]);
    }
    cursors.extend([1, 2, total - 1, total]);
    cursors.sort_unstable();
    cursors.dedup();
    // The expected states, from one plain fold (a clone shares its chunks, so keeping
    // hundreds of them is cheap).
    let mut expected = Vec::with_capacity(cursors.len());
    let mut state = RunState::from_first(&records[0].event).unwrap();
    let mut folded = 1;
    for &n in &cursors {
        for record in &records[folded..n] {
            state.apply(&record.event, record.ts).unwrap();
        }
        folded = n;
        expected.push(state.clone());
    }
    // Visited backwards, as ← steps: each move folds at most the spacing.
    for (&n, want) in cursors.iter().zip(&expected).rev() {
        let before = fleet.travel_folds();
        fleet.travel_to(Some(n)).unwrap();
        assert!(fleet.travel_folds() - before <= spacing as u64, "cursor {n} folded more than the spacing");
        assert_same(&fleet, want, &format!("cursor {n}"));
    }
    // And forwards, one record at a time across a checkpoint, as → steps.
    let c = spacing * 3;
    let k = cursors.binary_search(&(c - 1)).unwrap();
    for (&n, want) in cursors[k..k + 3].iter().zip(&expected[k..k + 3]) {
        fleet.travel_to(Some(n)).unwrap();
        assert_same(&fleet, want, &format!("forward to {n}"));
    }
    fleet.travel_to(None).unwrap();
    assert_same(&fleet, expected.last().unwrap(), "live again");
}

#[test]
fn a_copy_holds_apart_only_the_chunks_written_since() {
    let records = run_of(3_000);
    let mut state = RunState::from_first(&records[0].event).unwrap();
    for record in &records[1..2_000] {
        state.apply(&record.event, record.ts).unwrap();
    }
    let copy = state.clone();
    // A clone holds only what every clone copies (the queue, the pools): no chunk of
    // tasks. (Measured against a chunk's bytes until `Task` shrank to 160 bytes,
    // issue 14: a chunk is now smaller than the queue of this run's ~2,000 queued.)
    let queue_only = copy.bytes_apart_from(&state);
    let one_chunk = pitboss::core::state::CHUNK * std::mem::size_of::<pitboss::core::Task>();
    assert_eq!(copy.tasks.chunks_apart_from(&state.tasks), 0, "a fresh clone holds chunks apart");
    assert!(queue_only < 2 * one_chunk, "a fresh clone holds {queue_only} bytes apart");
    // Folding a few records writes a few tasks: a chunk or two of them (and their
    // readiness counts) are held apart, not the whole run.
    for record in &records[2_000..2_010] {
        state.apply(&record.event, record.ts).unwrap();
    }
    let apart = copy.bytes_apart_from(&state);
    assert!(apart >= queue_only + one_chunk, "written chunks are not counted: {apart} bytes");
    assert!(apart <= queue_only + 4 * one_chunk, "{apart} bytes apart after 10 records");
}
