//! Benchmark P2: fold 1,000,000 logged events into the live state, side by side with
//! a plain JSON-lines parse of the same file (`serde_json::Value` per line) in the same
//! process. The fold does everything recovery does: read, checksum, `seq` check,
//! typed decode, apply. Prints each round and the median ratio.
//!
//!     cargo bench --bench fold            # 1,000,000 events, 5 rounds
//!     cargo bench --bench fold -- 200000 3

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{encode, replay};

/// Writes a log of about `target` events shaped like a real run: tasks over three
/// pools going ready → started → spawned → succeeded, a small result each.
fn write_log(path: &Path, target: usize) -> usize {
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
    let mut ts = 1_790_000_000_000;
    let mut write = |events: Vec<Event>, ts: u64, buf: &mut Vec<u8>| {
        for event in events {
            seq += 1;
            buf.clear();
            encode(seq, ts, &event, buf);
            out.write_all(buf).unwrap();
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
    seq as usize
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

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let target = args.first().copied().unwrap_or(1_000_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let events = write_log(&path, target);
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!("log: {events} events, {:.1} MB, {:.0} bytes/event", bytes as f64 / 1e6, bytes as f64 / events as f64);
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let t = Instant::now();
        let parsed = plain_parse(&path);
        let plain = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (state, scan) = replay(&path).unwrap();
        let fold = t.elapsed().as_secs_f64();
        assert_eq!(parsed, events);
        assert!(scan.torn.is_none());
        assert!(state.finished, "the folded run is finished");
        println!("round {round}: plain parse {plain:.3}s  fold {fold:.3}s  ratio {:.2}", fold / plain);
        ratios.push(fold / plain);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio fold/plain: {:.2} (target <= 2.00)", ratios[ratios.len() / 2]);
}
