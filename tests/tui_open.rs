//! The TUI's model opened on a run folder (issue 14): from the newest valid snapshot
//! and the log after it, holding no record, it shows the same run, the same task
//! histories (read from disk, across `archive/` segments) and the same time-travel
//! states as a fold of every record from the first; a damaged snapshot falls back to
//! an older one with a note. The log is the scripted run of `tui_model.rs`, written
//! to a folder as the engine writes it: two archived segments and the live log, a
//! snapshot in each; some tests also write the task index with each snapshot, as the
//! engine does, and read the histories through it.

use std::path::Path;

use pitboss::core::{RunState, TaskStateName};
use pitboss::io::journal::{self, Record, LOG_FILE};
use pitboss::io::{roll, segments, snapshot, task_index};
use pitboss::tui::model::Fleet;

mod scripted_log;
use scripted_log::*;

/// Where the log is cut into files, and where snapshots are taken.
const FIRST_ROLL: usize = 3_000;
const SECOND_ROLL: usize = 6_500;
const SNAPSHOTS: [usize; 3] = [2_000, 5_000, 8_000];

fn log() -> &'static [Record] {
    static LOG: std::sync::OnceLock<Vec<Record>> = std::sync::OnceLock::new();
    LOG.get_or_init(long_log)
}

/// The scripted log without its payload edits (renumbered): a run with one is not
/// indexed (`inspect TASK` and the index start from the snapshot's workflow).
fn unreshaped_log() -> &'static [Record] {
    static LOG: std::sync::OnceLock<Vec<Record>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let kept = log().iter().filter(|r| !matches!(r.event, pitboss::core::Event::PayloadEdited { .. }));
        kept.enumerate().map(|(i, r)| Record { seq: i as u64 + 1, ..r.clone() }).collect()
    })
}

/// Writes `records` to `dir` as the engine would: appended to the live log, rolled
/// into `archive/` at the rolls, a snapshot of the fold at each snapshot point.
fn write_run(dir: &Path, records: &[Record]) {
    write_run_indexed(dir, records, false);
}

/// [`write_run`], the task index brought up to each snapshot when `indexed` (as the
/// engine does with each snapshot).
fn write_run_indexed(dir: &Path, records: &[Record], indexed: bool) {
    let mut state: Option<RunState> = None;
    let mut live = Vec::new();
    for record in records {
        let seq = record.seq as usize;
        match &mut state {
            None => state = Some(RunState::from_first(&record.event).unwrap()),
            Some(s) => s.apply(&record.event, record.ts).unwrap(),
        }
        journal::encode(record.seq, record.ts, &record.event, &mut live);
        if SNAPSHOTS.contains(&seq) || seq == FIRST_ROLL || seq == SECOND_ROLL {
            append(dir, &std::mem::take(&mut live));
        }
        if SNAPSHOTS.contains(&seq) {
            let len = std::fs::metadata(dir.join(LOG_FILE)).unwrap().len();
            let at = segments::last_position(dir, len, record.seq).unwrap().expect("the record just written");
            snapshot::write(dir, state.as_ref().unwrap(), at).unwrap();
            if indexed {
                task_index::extend(dir, state.as_ref().unwrap(), at).unwrap();
            }
        }
        if seq == FIRST_ROLL || seq == SECOND_ROLL {
            roll::roll(dir).unwrap();
        }
    }
    append(dir, &live);
}

fn append(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(LOG_FILE)).unwrap();
    file.write_all(bytes).unwrap();
}

/// The run shown by `fleet` is the run `expected` shows (a fold from the first
/// record), as far as the state and the caches derived from it go.
fn assert_same_run(fleet: &Fleet, expected: &Fleet, what: &str) {
    assert_eq!(fleet.state.tasks, expected.state.tasks, "{what}: tasks");
    for name in TaskStateName::ALL {
        assert_eq!(fleet.state.count(name), expected.state.count(name), "{what}: {name} count");
    }
    let queued = |f: &Fleet| f.state.pools.iter().map(|p| p.queued).collect::<Vec<_>>();
    assert_eq!(queued(fleet), queued(expected), "{what}: pool queues");
    assert_eq!(fleet.state.finished, expected.state.finished, "{what}: finished");
    assert_eq!(fleet.running().collect::<Vec<_>>(), expected.running().collect::<Vec<_>>(), "{what}: running");
    assert_eq!(fleet.dead_letters().collect::<Vec<_>>(), expected.dead_letters().collect::<Vec<_>>(), "{what}: dead");
    assert_eq!(fleet.held().collect::<Vec<_>>(), expected.held().collect::<Vec<_>>(), "{what}: held");
    assert_eq!(fleet.dead_letter_groups(), expected.dead_letter_groups(), "{what}: dead-letter groups");
    assert_eq!(fleet.last_ts, expected.last_ts, "{what}: last_ts");
    assert_eq!(fleet.started_ms, expected.started_ms, "{what}: started");
    let mut live: Vec<_> = fleet.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    let mut want: Vec<_> = expected.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    live.sort();
    want.sort();
    assert_eq!(live, want, "{what}: attempts in flight");
}

/// Tasks whose histories are compared: every seventh (each one read is a pass over
/// the log on disk, slow in a debug build), spread over the workflow.
fn sampled() -> impl Iterator<Item = usize> {
    (0..TASKS).step_by(7)
}

/// The sampled tasks' histories (records, times, events) are the full fold's.
fn assert_same_histories(fleet: &Fleet, expected: &Fleet, what: &str) {
    for i in sampled() {
        let (got, want) = (fleet.history(i), expected.history(i));
        let key =
            |h: &[pitboss::tui::model::Step]| h.iter().map(|s| (s.record, s.ts, s.event.clone())).collect::<Vec<_>>();
        assert_eq!(key(&got), key(&want), "{what}: history of task {i}");
    }
}

fn index(fleet: &mut Fleet) {
    let mut slices = 0;
    while fleet.indexing().is_some() {
        fleet.index_some(1_000).unwrap();
        slices += 1;
        assert!(slices < 1_000, "indexing does not end");
    }
}

#[test]
fn a_compacted_run_opens_to_the_full_fold_with_its_histories_and_travel() {
    let records = log();
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), records);
    assert_eq!(segments::archived(dir.path(), None).unwrap().len(), 2, "two archived segments");
    let mut fleet = Fleet::open(dir.path()).unwrap();
    assert!(fleet.notes().is_empty(), "{:?}", fleet.notes());
    assert!(fleet.records.on_disk());
    let expected = Fleet::from_records(records).unwrap();
    assert_same_run(&fleet, &expected, "opened");
    assert_eq!(fleet.records.len(), records.len(), "every record counted");
    // Histories are read from disk, across the archived segments and the live log.
    assert_same_histories(&fleet, &expected, "opened");

    // A step's task needs the log indexed: asked for, it is indexed in slices.
    let busy = (0..TASKS).max_by_key(|&i| expected.history(i).len()).unwrap();
    assert_eq!(fleet.task_after(busy, 0), None, "not indexed yet");
    assert!(fleet.indexing().is_some(), "asking for a step's task asks for the index");
    index(&mut fleet);
    assert_eq!(fleet.checkpoints(), expected.checkpoints(), "the index keeps the live model's checkpoints");
    for c in 0..expected.history(busy).len() {
        assert_eq!(fleet.task_after(busy, c), expected.history(busy)[c].task, "task {busy} after step {c}");
    }

    // Time travel reads from disk only what it folds; each cursor is the fold to it.
    for n in [1, 2, 1_999, 2_000, 3_001, 4_097, 6_500, 6_501, 9_000, records.len() - 1, 8_193, 700] {
        let before = fleet.travel_folds();
        fleet.travel_to(Some(n)).unwrap();
        assert_eq!(fleet.travelling(), Some(n));
        assert!(fleet.travel_folds() - before <= fleet.checkpoint_spacing() as u64, "cursor {n}: bounded");
        let then = Fleet::from_records(&records[..n]).unwrap();
        assert_same_run(&fleet, &then, &format!("cursor {n}"));
        assert_eq!(fleet.queue_depth, then.queue_depth, "cursor {n}: queue depth");
        assert_eq!(fleet.completions, then.completions, "cursor {n}: completions");
        for i in [0, busy, TASKS - 1] {
            assert_eq!(fleet.history(i).len(), then.history(i).len(), "cursor {n}: history of {i}");
        }
    }
    fleet.travel_to(None).unwrap();
    assert_same_run(&fleet, &expected, "back to live");
}

#[test]
fn records_that_arrive_after_the_open_extend_the_histories_read_and_the_index() {
    let records = log();
    let opened_at = 7_000;
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), &records[..opened_at]);
    let mut fleet = Fleet::open(dir.path()).unwrap();
    let then = Fleet::from_records(&records[..opened_at]).unwrap();
    assert!(then.running().len() > 0, "attempts in flight at the open");
    assert_same_run(&fleet, &then, "opened mid-run");
    // Some histories read before the rest arrives, some after.
    for i in sampled().filter(|i| i % 2 == 0) {
        let _ = fleet.history(i);
    }
    // The engine writes, then hands the batch over.
    let mut rest = Vec::new();
    for record in &records[opened_at..] {
        journal::encode(record.seq, record.ts, &record.event, &mut rest);
    }
    append(dir.path(), &rest);
    // A record the model was opened with is not folded twice.
    fleet.apply(&records[opened_at - 1]).unwrap();
    for record in &records[opened_at..] {
        fleet.apply(record).unwrap();
    }
    let expected = Fleet::from_records(records).unwrap();
    assert_same_run(&fleet, &expected, "live");
    assert_same_histories(&fleet, &expected, "live");
    fleet.travel_to(Some(8_000)).unwrap();
    index(&mut fleet);
    fleet.travel_to(Some(8_000)).unwrap();
    assert_same_run(&fleet, &Fleet::from_records(&records[..8_000]).unwrap(), "travelled after records arrived");
}

#[test]
fn a_damaged_snapshot_falls_back_with_a_note_to_the_same_run() {
    let records = log();
    let dir = tempfile::tempdir().unwrap();
    write_run(dir.path(), records);
    let newest = snapshot::list(dir.path()).into_iter().next().expect("a snapshot").1;
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&newest, bytes).unwrap();
    let fleet = Fleet::open(dir.path()).unwrap();
    assert_eq!(fleet.notes().len(), 1, "{:?}", fleet.notes());
    assert!(fleet.notes()[0].contains("snapshot not used"), "{:?}", fleet.notes());
    let expected = Fleet::from_records(records).unwrap();
    assert_same_run(&fleet, &expected, "fallen back");
    assert_same_histories(&fleet, &expected, "fallen back");
    // Every snapshot gone: the whole log, no note.
    for (_, path) in snapshot::list(dir.path()) {
        std::fs::remove_file(path).unwrap();
    }
    let fleet = Fleet::open(dir.path()).unwrap();
    assert!(fleet.notes().is_empty(), "{:?}", fleet.notes());
    assert_same_run(&fleet, &expected, "no snapshot");
}

/// The histories of the sampled tasks read through the task index (up to its last
/// snapshot, over two archived segments and the live log) and the lines after it are
/// the full fold's; the index path was taken for each.
#[test]
fn a_history_is_read_through_the_task_index_and_the_lines_after_it() {
    // Cut at 7,000 records: the index ends at the snapshot at 5,000, and tasks move
    // after it (the scripted run's last records are pool pauses).
    let records = &unreshaped_log()[..7_000];
    let dir = tempfile::tempdir().unwrap();
    write_run_indexed(dir.path(), records, true);
    assert!(dir.path().join(task_index::INDEX_FILE).exists(), "the index was written");
    let fleet = Fleet::open(dir.path()).unwrap();
    let expected = Fleet::from_records(records).unwrap();
    assert_same_histories(&fleet, &expected, "through the index");
    assert_eq!(fleet.histories_indexed(), sampled().count(), "every history read through the index");
    // Tasks with steps after where the index ends: those steps come from the lines after it.
    let through = task_index::read(dir.path(), &fleet.state, &[], false).unwrap().through as usize;
    assert!(through < records.len(), "records after the index");
    let late: Vec<usize> =
        (0..TASKS).filter(|&i| expected.history(i).iter().any(|s| s.record >= through)).take(20).collect();
    assert!(!late.is_empty(), "no task has a step after the index at {through}");
    for &i in &late {
        let key = |h: &[pitboss::tui::model::Step]| h.iter().map(|s| (s.record, s.event.clone())).collect::<Vec<_>>();
        assert_eq!(key(&fleet.history(i)), key(&expected.history(i)), "history of task {i}, partly after the index");
    }
    // Without the index: the same histories, read by a pass over the log.
    std::fs::remove_file(dir.path().join(task_index::INDEX_FILE)).unwrap();
    let scanned = Fleet::open(dir.path()).unwrap();
    assert_same_histories(&scanned, &expected, "scanned");
    assert_eq!(scanned.histories_indexed(), 0);
}

/// An index written past what the model folded (the engine's next snapshot, on a
/// live run) gives only the records the model has; those after arrive and extend the
/// history once, as they do for a history read by a scan.
#[test]
fn an_index_past_the_models_records_gives_no_record_twice() {
    let records = unreshaped_log();
    let opened_at = 7_000;
    let dir = tempfile::tempdir().unwrap();
    write_run_indexed(dir.path(), &records[..opened_at], true);
    let mut fleet = Fleet::open(dir.path()).unwrap();
    let mut rest = Vec::new();
    for record in &records[opened_at..] {
        journal::encode(record.seq, record.ts, &record.event, &mut rest);
    }
    append(dir.path(), &rest);
    let (state, scan) = segments::fold_all(dir.path()).unwrap();
    let len = std::fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
    let at = segments::last_position(dir.path(), len, scan.records).unwrap().unwrap();
    task_index::extend(dir.path(), &state, at).unwrap();
    // Read while the model has folded 7,000 records, the index covering 10,000.
    for i in sampled() {
        let _ = fleet.history(i);
    }
    assert_eq!(fleet.histories_indexed(), sampled().count());
    assert_same_histories(&fleet, &Fleet::from_records(&records[..opened_at]).unwrap(), "before the rest arrives");
    for record in &records[opened_at..] {
        fleet.apply(record).unwrap();
    }
    assert_same_histories(&fleet, &Fleet::from_records(records).unwrap(), "after the rest arrived");
}

/// A damaged index (a byte changed in its head, its slots or its entries; cut
/// short) never changes a history: refused whole, or an entry that does not check
/// sends that history to the plain pass.
#[test]
fn a_damaged_index_gives_the_same_histories() {
    let records = unreshaped_log();
    let dir = tempfile::tempdir().unwrap();
    write_run_indexed(dir.path(), records, true);
    let path = dir.path().join(task_index::INDEX_FILE);
    let good = std::fs::read(&path).unwrap();
    let expected = Fleet::from_records(records).unwrap();
    // The head and the slots (refused whole: checksummed), an entry in the middle,
    // the last entry (each found when read: its line is not the record it names).
    for at in [20, 100, good.len() / 2 + 7, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let fleet = Fleet::open(dir.path()).unwrap();
        assert_same_histories(&fleet, &expected, &format!("byte {at} changed"));
        if at == 20 {
            assert_eq!(fleet.histories_indexed(), 0, "a damaged head is refused");
        }
    }
    std::fs::write(&path, &good[..good.len() - 5]).unwrap();
    let fleet = Fleet::open(dir.path()).unwrap();
    assert_same_histories(&fleet, &expected, "cut short");
    assert_eq!(fleet.histories_indexed(), 0, "an index cut short is refused");
}
