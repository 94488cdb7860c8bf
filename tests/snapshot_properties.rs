//! Snapshots never change what a run folder opens to (DESIGN §6): a log built by the
//! core's own steps (dispatches, spawns that grow the workflow, submits, failures,
//! requeues) with snapshots written at several points, then damaged at random —
//! snapshots deleted, a byte flipped, cut short, swapped for another seq's or another
//! run's, the log cut or torn — always opens to the state of the full fold.
//!
//! PITBOSS_SNAPSHOT_SEED replays a failing case.

use std::path::Path;

use pitboss::cli::verify::canonical;
use pitboss::config;
use pitboss::core::decide::{dispatch, Outcome};
use pitboss::core::{step, Event, FailureClass, Input, RunState, SmallOutput, StepContext, TaskState};
use pitboss::io::journal::{self, Journal, LOG_FILE};
use pitboss::io::snapshot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const WORKFLOW: &str = "[[pool]]\nname = \"p\"\ncommand = [\"true\"]\nconcurrency = 6\ncapabilities = [\"write\"]\n\
    [[task]]\nid = \"plan\"\nretry = { max_attempts = 1 }\n\
    [[task]]\nid = \"plan2\"\n\
    [[task]]\nid = \"publish\"\ndepends_on = [\"plan\", \"plan2\"]\n\
    [[task]]\nid = \"solo\"\nretry = { max_attempts = 2, initial = \"1ms\", max = \"1ms\" }\n";

fn ok(result: Value) -> Outcome {
    Outcome::Success { result, exit_code: Some(0), duration_ms: 1, output: SmallOutput::default() }
}

fn failure() -> Outcome {
    Outcome::Failure {
        class: FailureClass::Worker,
        error: "no".into(),
        exit_code: Some(1),
        signal: None,
        duration_ms: 1,
        output: SmallOutput::default(),
    }
}

/// Writes a run's log into `dir` from random core steps, with a snapshot after about
/// every `every` records; gives the number of records.
fn build_run(dir: &Path, run_id: &str, rng: &mut StdRng, every: u64) -> u64 {
    let workflow = config::parse(WORKFLOW, "snap.toml", Path::new(".")).expect("test workflow is valid");
    let first = Event::RunStarted { run_id: run_id.into(), workflow: std::sync::Arc::new(workflow) };
    let mut state = RunState::from_first(&first).expect("first");
    let mut journal = Journal::create(dir, 1, &first).expect("create log");
    let mut last_snapshot = 0;
    let mut now = 1_000u64;
    let mut serial = 0;
    let batch = |state: &mut RunState, input: Input, now: u64, journal: &mut Journal| {
        let ctx = StepContext { now_ms: now, jitter: 0.5 };
        let mut events = step(state, input, ctx).expect("the core accepts its inputs");
        events.extend(dispatch(state, ctx).expect("dispatch"));
        journal.append(now, &events).expect("append");
    };
    batch(&mut state, Input::Start { pid: 1, version: "t".into(), resumed: false }, now, &mut journal);
    for _ in 0..5_000 {
        if journal.next_seq() > 240 {
            break;
        }
        now += 7;
        let running: Vec<(String, u32, bool)> = (0..state.tasks.len())
            .filter_map(|i| match state.tasks[i].state {
                TaskState::Running { attempt, .. } => {
                    Some((state.task_id(i).to_string(), attempt, state.tasks[i].children().is_empty()))
                }
                _ => None,
            })
            .collect();
        let waiting: Vec<String> = (0..state.tasks.len())
            .filter(|&i| matches!(state.tasks[i].state, TaskState::RetryWait { .. }))
            .map(|i| state.task_id(i).to_string())
            .collect();
        let dead: Vec<String> = (0..state.tasks.len())
            .filter(|&i| matches!(state.tasks[i].state, TaskState::DeadLettered { .. } | TaskState::Cancelled { .. }))
            .map(|i| state.task_id(i).to_string())
            .collect();
        let roll = rng.random_range(0..100);
        let input = if roll < 8 {
            serial += 1;
            let dep = state.task_id(rng.random_range(0..state.tasks.len())).to_string();
            let text =
                format!("[[task]]\nid = \"s{serial}\"\ndepends_on = [{dep:?}]\nretry = {{ max_attempts = 1 }}\n");
            match config::tasks_from_toml(&text, "submit.toml", &state.workflow) {
                Ok(tasks) => Input::Submit { tasks, source: "test".into() },
                Err(_) => continue,
            }
        } else if roll < 14 && !dead.is_empty() {
            Input::Requeue { task: dead[rng.random_range(0..dead.len())].clone(), reason: "again".into() }
        } else if roll < 20 && !waiting.is_empty() {
            let task = waiting[rng.random_range(0..waiting.len())].clone();
            let i = state.task_index(&task).expect("task");
            let TaskState::RetryWait { due_ms } = state.tasks[i].state else { unreachable!() };
            now = now.max(due_ms);
            Input::RetryTimer { task, due_ms }
        } else if let Some((task, attempt, childless)) =
            (!running.is_empty()).then(|| running[rng.random_range(0..running.len())].clone())
        {
            match rng.random_range(0..10) {
                0..=2 if childless && task.matches('/').count() < 2 => {
                    serial += 1;
                    let tasks = json!([
                        {"id": format!("a{serial}"), "retry": {"max_attempts": 1}},
                        {"id": format!("b{serial}"), "depends_on": [format!("a{serial}")]}
                    ]);
                    let spawn = config::tasks_from_json(&tasks, &state.workflow);
                    Input::Planned { task, attempt, outcome: ok(json!("planned")), spawn }
                }
                3..=4 => Input::Finished { task, attempt, outcome: failure() },
                _ => Input::Finished { task, attempt, outcome: ok(json!({"n": serial})) },
            }
        } else {
            continue;
        };
        batch(&mut state, input, now, &mut journal);
        let at = journal.position().expect("written");
        if at.seq >= last_snapshot + every {
            last_snapshot = at.seq;
            snapshot::write(dir, &state, at).expect("snapshot written");
        }
    }
    journal.next_seq() - 1
}

/// What opening `dir` gives, against the full fold of its log.
fn assert_opens_to_the_full_fold(dir: &Path, what: &str) {
    let log = dir.join(LOG_FILE);
    let full = journal::fold_all(&log);
    let opened = snapshot::open_state(dir);
    match (full, opened) {
        (Ok((state, scan)), Ok(opened)) => {
            assert!(canonical(&opened.state) == canonical(&state), "{what}: the state differs from the full fold");
            assert_eq!(opened.scan, scan, "{what}: the scan differs");
            assert_eq!(opened.folded + opened.snapshot.unwrap_or(0), scan.records, "{what}");
        }
        (Err(full), Err(opened)) => assert_eq!(full.to_string(), opened.to_string(), "{what}"),
        (full, opened) => panic!("{what}: full fold {:?} but open {:?}", full.map(|_| ()), opened.map(|_| ())),
    }
}

/// The event types of `dir`'s log.
fn common_kinds(dir: &Path) -> Vec<String> {
    let mut kinds = Vec::new();
    journal::scan(&dir.join(LOG_FILE), |rec, _| {
        kinds.push(rec.event.kind().to_string());
        Ok(())
    })
    .unwrap();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn damaged_deleted_or_swapped_snapshots_always_open_to_the_full_fold() {
    let seed = std::env::var("PITBOSS_SNAPSHOT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("PITBOSS_SNAPSHOT_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let base = tempfile::tempdir().unwrap();
    let (run, other) = (base.path().join("run"), base.path().join("other"));
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let records = build_run(&run, "run-1", &mut rng, 37);
    build_run(&other, "run-2", &mut rng, 37);
    let kept = snapshot::list(&run);
    assert_eq!(kept.len(), snapshot::KEEP, "the newest {} snapshots are kept", snapshot::KEEP);
    assert!(records > 200, "a run of {records} records");
    let kinds: Vec<String> = common_kinds(&run);
    for kind in ["tasks_spawned", "tasks_submitted", "attempt_failed", "task_requeued"] {
        assert!(kinds.iter().any(|k| k == kind), "the log has no {kind}: {kinds:?}");
    }
    let undamaged = snapshot::open_state(&run).unwrap();
    assert_eq!(undamaged.snapshot, Some(kept[0].0), "the newest snapshot is used");
    assert!(undamaged.notes.is_empty(), "{:?}", undamaged.notes);
    assert_opens_to_the_full_fold(&run, "undamaged");

    for case in 0..120 {
        let dir = base.path().join(format!("case{case}"));
        copy_dir(&run, &dir);
        let mut done = Vec::new();
        for _ in 0..rng.random_range(1..=3) {
            let snaps = snapshot::list(&dir);
            let log = dir.join(LOG_FILE);
            let op = rng.random_range(0..7);
            if snaps.is_empty() && op < 5 {
                continue;
            }
            let pick = |rng: &mut StdRng| snaps[rng.random_range(0..snaps.len())].1.clone();
            match op {
                0 => {
                    let p = pick(&mut rng);
                    std::fs::remove_file(&p).unwrap();
                    done.push(format!("deleted {}", p.display()));
                }
                1 => {
                    let p = pick(&mut rng);
                    let mut bytes = std::fs::read(&p).unwrap();
                    if bytes.is_empty() {
                        continue;
                    }
                    let i = rng.random_range(0..bytes.len());
                    bytes[i] ^= 1 << rng.random_range(0..8);
                    std::fs::write(&p, bytes).unwrap();
                    done.push(format!("flipped byte {i} of {}", p.display()));
                }
                2 => {
                    let p = pick(&mut rng);
                    let len = std::fs::metadata(&p).unwrap().len();
                    let cut = rng.random_range(0..len.max(1));
                    std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(cut).unwrap();
                    done.push(format!("cut {} to {cut} bytes", p.display()));
                }
                3 => {
                    let (a, b) = (pick(&mut rng), pick(&mut rng));
                    std::fs::copy(&a, &b).unwrap();
                    done.push(format!("copied {} over {}", a.display(), b.display()));
                }
                4 => {
                    // Another run's snapshot, under its own name or one of ours.
                    let theirs = snapshot::list(&other);
                    let (_, from) = &theirs[rng.random_range(0..theirs.len())];
                    let to = if rng.random_bool(0.5) { dir.join(from.file_name().unwrap()) } else { pick(&mut rng) };
                    std::fs::copy(from, &to).unwrap();
                    done.push(format!("another run's {} put at {}", from.display(), to.display()));
                }
                5 => {
                    // The log cut at a record (resume --truncate-at).
                    let seq = rng.random_range(2..=records);
                    journal::truncate_at(&dir, seq).unwrap();
                    done.push(format!("log cut before record {seq}"));
                }
                _ => {
                    // A torn tail: the log cut in the middle of a line.
                    let len = std::fs::metadata(&log).unwrap().len();
                    let cut = rng.random_range(len / 2..len);
                    std::fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(cut).unwrap();
                    done.push(format!("log torn at byte {cut}"));
                }
            }
        }
        assert_opens_to_the_full_fold(&dir, &format!("case {case} (seed {seed}): {}", done.join("; ")));
    }
}

#[test]
fn a_snapshot_is_used_only_if_the_log_still_holds_its_record() {
    let mut rng = StdRng::seed_from_u64(7);
    let dir = tempfile::tempdir().unwrap();
    let records = build_run(dir.path(), "run-1", &mut rng, 20);
    let newest = snapshot::list(dir.path())[0].0;
    assert!(newest > 10 && newest <= records);
    // Cut the log before the newest snapshot's record: it must not be used.
    journal::truncate_at(dir.path(), newest).unwrap();
    let opened = snapshot::open_state(dir.path()).unwrap();
    assert!(opened.snapshot.is_some_and(|s| s < newest), "{:?}", opened.snapshot);
    assert!(
        opened
            .notes
            .iter()
            .any(|n| n.contains(&format!("snapshot-{newest}.json")) && n.contains("the log does not hold its record")),
        "{:?}",
        opened.notes
    );
    assert_opens_to_the_full_fold(dir.path(), "cut before the newest snapshot");
}
