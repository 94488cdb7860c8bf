//! Issue 14: one time-travel step at 1,000,000 events (goal ≤ 50 ms), built in memory
//! with the core's own events (250,000 tasks over three pools, each ready → started
//! → spawned → succeeded). Measures a step back (←) from the middle of a checkpoint's
//! span (the worst case: a checkpoint cloned, then up to its spacing folded; the
//! tasks are copy-on-write chunks, so the checkpoints are many and the clone is
//! O(chunks), see `core::state::Chunked`), a step
//! forward (→), and entering time travel. Its peer is the old way: a refold of the
//! first N records (measured once, printed, not iterated).
//!
//!     cargo bench --bench travel

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::Record;
use pitboss::tui::model::Fleet;

const EVENTS: usize = 1_000_000;

fn records() -> Vec<Record> {
    let tasks = EVENTS / 4;
    let mut text = "[run]\nname = \"travel\"\nmax_parallel = 64\n".to_string();
    for p in 0..3 {
        text += &format!("[[pool]]\nname = \"pool-{p}\"\ncommand = [\"agent\"]\nconcurrency = 32\n");
    }
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:07}\"\n");
    }
    let workflow = config::parse(&text, "travel.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "bench".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut records = vec![Record { seq: 1, ts: 1_790_000_000_000, event: first }];
    let mut ts = 1_790_000_000_000;
    let ctx = |ts| StepContext { now_ms: ts, jitter: 0.5 };
    let push = |events: Vec<Event>, ts: u64, records: &mut Vec<Record>| {
        for event in events {
            let seq = records.len() as u64 + 1;
            records.push(Record { seq, ts, event });
        }
    };
    let mut events = step(&mut state, Input::Start { pid: 1, version: "b".into(), resumed: false }, ctx(ts)).unwrap();
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

fn bench(c: &mut Criterion) {
    let records = records();
    let mut fleet = Fleet::from_records(&records).unwrap();
    let total = records.len();
    let spacing = fleet.checkpoint_spacing();
    let (checkpoints, bytes) = (fleet.checkpoints(), fleet.checkpoint_bytes());
    println!("{total} records, {checkpoints} checkpoints every {spacing} records, holding ~{} MB", bytes >> 20);
    // The old way, once: a refold of the first half of the log.
    let started = Instant::now();
    let old = Fleet::from_records(&records[..total / 2]).unwrap();
    println!("peer: refold of {} records (the old step): {:?}", total / 2, started.elapsed());
    drop(old);

    c.bench_function("time travel: enter at 1M events", |b| {
        b.iter(|| {
            fleet.travel_to(Some(total)).unwrap();
            fleet.travel_to(None).unwrap();
        })
    });
    // The worst step back: the cursor just below a checkpoint, so the step folds a
    // whole spacing from the checkpoint before.
    let cursor = total / 2 / spacing * spacing + spacing - 1;
    c.bench_function("time travel: one step back at 1M events (worst case)", |b| {
        b.iter(|| {
            fleet.travel_to(Some(cursor + 1)).unwrap();
            fleet.travel_to(Some(cursor)).unwrap();
        })
    });
    c.bench_function("time travel: one step forward at 1M events", |b| {
        fleet.travel_to(Some(cursor)).unwrap();
        let mut n = cursor;
        b.iter(|| {
            n = if n + 1 >= total { cursor } else { n + 1 };
            fleet.travel_to(Some(n)).unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
