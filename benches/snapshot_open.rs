//! Opening a finished 1,000,000-event run with and without a snapshot (issue 14):
//! `snapshot::open_state` (what `resume`, `inspect` and `dlq` do first) on a folder
//! whose newest snapshot is of its last record, against the full fold of the log
//! (the same folder without its snapshot) and the plain `serde_json::Value` parse of
//! every line, in the same process, alternating; and the same open from a format-2
//! snapshot of the same state (the format before 3, in a second folder holding a
//! hard link to the same log), the before of the format-3 change. Also the cost of
//! writing the snapshot. Prints each round and the median ratios.
//!
//!     cargo bench --bench snapshot_open            # 1,000,000 events, 5 rounds
//!     cargo bench --bench snapshot_open -- 200000 3

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{encode, fold_all, LogPosition};
use pitboss::io::snapshot;

/// Writes a log of about `target` events shaped like a real run: tasks over three
/// pools going ready → started → spawned → succeeded, a small result each.
fn write_log(path: &Path, target: usize) -> (usize, RunState, LogPosition) {
    let tasks = target / 4;
    let mut text = "[run]\nname = \"p2\"\nmax_parallel = 64\n".to_string();
    for p in 0..3 {
        text += &format!(
            "[[pool]]\nname = \"pool-{p}\"\ncommand = [\"agent\", \"--task\", \"{{id}}\"]\nconcurrency = 32\n"
        );
    }
    for i in 0..tasks {
        text += &format!("[[task]]\nid = \"task-{i:07}\"\npayload = {{ prompt = \"summarise chapter {i}\" }}\n");
    }
    let workflow = config::parse(&text, "p2.toml", Path::new(".")).unwrap();
    let first = Event::RunStarted { run_id: "bench".into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).unwrap();
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut buf = Vec::new();
    let mut seq = 0;
    let mut offset = 0u64;
    let mut last = LogPosition { seq: 0, start: 0, end: 0, crc: 0 };
    let mut ts = 1_790_000_000_000;
    let mut write = |events: Vec<Event>, ts: u64, buf: &mut Vec<u8>| {
        for event in events {
            seq += 1;
            buf.clear();
            encode(seq, ts, &event, buf);
            out.write_all(buf).unwrap();
            let line = std::str::from_utf8(&buf[..buf.len() - 2]).unwrap();
            let crc = line.rsplit(":").next().unwrap().parse().unwrap();
            last = LogPosition { seq, start: offset, end: offset + buf.len() as u64, crc };
            offset += buf.len() as u64;
        }
    };
    write(vec![first], ts, &mut buf);
    let ctx = |ts| StepContext { now_ms: ts, jitter: 0.5 };
    let mut events =
        step(&mut state, Input::Start { pid: 1, version: "bench".into(), resumed: false }, ctx(ts)).unwrap();
    events.extend(dispatch(&mut state, ctx(ts)).unwrap());
    write(events, ts, &mut buf);
    for i in 0..tasks {
        ts += 3;
        let id = format!("task-{i:07}");
        let TaskState::Running { attempt, .. } = state.tasks[i].state else { panic!("task {i} not running") };
        let spawned = Input::Spawned { task: id.clone(), attempt, pid: 40_000 + i as u32 % 20_000, worker: None };
        let mut events = step(&mut state, spawned, ctx(ts)).unwrap();
        let outcome = Outcome::Success {
            result: serde_json::json!({ "summary": format!("chapter {i} in two lines"), "tokens": 812 }),
            exit_code: Some(0),
            duration_ms: 1_234,
            output: SmallOutput::default(),
        };
        events.extend(step(&mut state, Input::Finished { task: id, attempt, outcome }, ctx(ts)).unwrap());
        events.extend(dispatch(&mut state, ctx(ts)).unwrap());
        write(events, ts, &mut buf);
    }
    out.flush().unwrap();
    (seq as usize, state, last)
}

fn plain_parse(path: &Path) -> usize {
    let reader = BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let mut n = 0;
    for line in reader.lines() {
        let value: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        n += value.is_object() as usize;
    }
    n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let target = args.first().copied().unwrap_or(1_000_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let (events, state, last) = write_log(&path, target);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("log: {events} events, {:.1} MB", bytes as f64 / 1e6);
    // What the engine's loop pays for a periodic snapshot: the clone (the rest is on
    // a blocking thread).
    let t = Instant::now();
    let copy = state.clone();
    let cloned = t.elapsed().as_secs_f64();
    drop(copy);
    println!("state clone (the engine loop's share of a snapshot): {:.1} ms", cloned * 1e3);
    let t = Instant::now();
    let snap = snapshot::write(dir.path(), &state, last).unwrap();
    let written = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&snap).unwrap().len();
    println!("snapshot: {:.1} MB, written (serialize + fsync + rename) in {written:.3}s", size as f64 / 1e6);
    // The same state as a format-2 snapshot, in a folder of its own over the same log.
    let v2_dir = tempfile::tempdir().unwrap();
    std::fs::hard_link(&path, v2_dir.path().join("events.jsonl")).unwrap();
    std::fs::write(v2_dir.path().join(snapshot::file_name(last.seq)), snapshot::encode_format2(&state, last)).unwrap();
    println!(
        "format-2 snapshot of the same state: {:.1} MB",
        snapshot::encode_format2(&state, last).len() as f64 / 1e6
    );
    drop(state);
    let (mut open_ratios, mut fold_ratios, mut v2_ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let t = Instant::now();
        assert_eq!(plain_parse(&path), events);
        let plain = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let opened = snapshot::open_state(dir.path()).unwrap();
        let open = t.elapsed().as_secs_f64();
        assert_eq!((opened.snapshot, opened.folded), (Some(events as u64), 0));
        assert!(opened.state.finished);
        drop(opened);
        let t = Instant::now();
        let opened = snapshot::open_state(v2_dir.path()).unwrap();
        let open_v2 = t.elapsed().as_secs_f64();
        assert_eq!((opened.snapshot, opened.folded), (Some(events as u64), 0));
        drop(opened);
        let t = Instant::now();
        let (state, _) = fold_all(&path).unwrap();
        let fold = t.elapsed().as_secs_f64();
        assert!(state.finished);
        drop(state);
        println!(
            "round {round}: plain parse {plain:.3}s  full fold {fold:.3}s  open from snapshot {open:.3}s  \
             from format 2 {open_v2:.3}s  (open/plain {:.3}, format 2/plain {:.3}, fold/plain {:.2})",
            open / plain,
            open_v2 / plain,
            fold / plain
        );
        v2_ratios.push(open_v2 / plain);
        open_ratios.push(open / plain);
        fold_ratios.push(fold / plain);
    }
    println!(
        "median open-from-snapshot/plain: {:.3} (target <= 0.10); from format 2: {:.3}; full fold/plain: {:.2}",
        median(open_ratios),
        median(v2_ratios),
        median(fold_ratios)
    );
}
