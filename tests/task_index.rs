//! The index against the log it indexes: every task's records and the run's own, as
//! a decode of every line finds them; built in steps as snapshots build it; and never
//! believed when damaged or stale.

use std::path::Path;
use std::sync::Arc;

use pitboss::core::{Event, RunState};
use pitboss::io::journal::{self, Journal, LOG_FILE};
use pitboss::io::roll;
use pitboss::io::task_index::{extend, TaskIndex, INDEX_FILE};

const TASKS: usize = 12;

fn state() -> RunState {
    let mut text = "[[pool]]\nname = \"p\"\ncommand = [\"agent\"]\n".to_string();
    for i in 0..TASKS {
        text += &format!("[[task]]\nid = \"t{i}\"\n");
    }
    let workflow = pitboss::config::parse(&text, "wf.toml", Path::new("/base")).expect("a valid workflow");
    RunState::from_first(&Event::RunStarted { run_id: "r".into(), workflow: Arc::new(workflow) }).expect("folds")
}

/// Records of tasks (ids prefixes of one another), of no task, and of a task the run
/// does not have, in batches; `round` varies them.
fn batch(round: usize) -> Vec<Event> {
    let mut events = vec![Event::ManagerStarted { pid: round as u32, version: "v".into(), resumed: round > 0 }];
    for i in 0..TASKS {
        if !(i + round).is_multiple_of(3) {
            events.push(Event::TaskReady { task: format!("t{i}") });
        }
    }
    events.push(Event::TaskReady { task: "nobody".into() });
    events
}

/// A run folder with `rounds` batches, a roll into the archive after the first when
/// `rolled`; the journal, to append more.
fn run(dir: &Path, rounds: usize, rolled: bool) -> Journal {
    let first = Event::RunStarted { run_id: "r".into(), workflow: Arc::clone(&state().workflow) };
    let mut journal = Journal::create(dir, 1, &first).expect("created");
    for round in 0..rounds {
        journal.append(2, &batch(round)).expect("appended");
        if rolled && round == 0 {
            // Rolled, then opened again as a resume opens it (`adopt` keeps the old
            // file's offsets: the engine's writer tracks a roll itself).
            drop(journal);
            roll::roll(dir).expect("rolled");
            let scan = pitboss::io::segments::scan(dir, |_, _| Ok(())).expect("scanned");
            journal = Journal::open(dir, &scan).expect("opened");
        }
    }
    journal
}

/// Each slot's seqs as a decode of every record finds them.
fn truth(dir: &Path, state: &RunState) -> Vec<Vec<u64>> {
    let mut slots = vec![Vec::new(); TASKS + 1];
    pitboss::io::segments::scan(dir, |rec, _| {
        match rec.event.task() {
            _ if rec.seq == 1 => {}
            None => slots[TASKS].push(rec.seq),
            Some(id) => {
                if let Some(i) = state.task_index(id) {
                    slots[i].push(rec.seq);
                }
            }
        }
        Ok(())
    })
    .expect("scanned");
    slots
}

/// Each slot's seqs through the index, every record read and checked.
fn through_index(dir: &Path, state: &RunState) -> Result<Vec<Vec<u64>>, String> {
    let (mut index, _) = TaskIndex::open(dir, "r", TASKS)?;
    let mut slots = Vec::new();
    for i in 0..TASKS {
        let records = index.records(dir, &[(i, state.task_id(i))])?;
        slots.push(records.iter().filter(|r| r.event.task().is_some()).map(|r| r.seq).collect());
    }
    slots.push(index.records(dir, &[])?.iter().map(|r| r.seq).collect());
    Ok(slots)
}

#[test]
fn the_index_gives_each_tasks_records_and_the_runs_own_built_in_steps() {
    for rolled in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let state = state();
        let mut journal = run(dir.path(), 2, rolled);
        extend(dir.path(), &state, journal.position().unwrap()).unwrap();
        assert_eq!(through_index(dir.path(), &state).unwrap(), truth(dir.path(), &state), "rolled: {rolled}");
        // More records, and the index brought up to them from where it ended.
        journal.append(3, &batch(2)).unwrap();
        journal.append(3, &batch(3)).unwrap();
        let at = journal.position().unwrap();
        extend(dir.path(), &state, at).unwrap();
        assert_eq!(TaskIndex::open(dir.path(), "r", TASKS).unwrap().0.at(), at);
        assert_eq!(through_index(dir.path(), &state).unwrap(), truth(dir.path(), &state), "rolled: {rolled}");
    }
}

#[test]
fn a_damaged_index_is_refused_or_its_records_do_not_check() {
    let dir = tempfile::tempdir().unwrap();
    let state = state();
    let journal = run(dir.path(), 3, false);
    extend(dir.path(), &state, journal.position().unwrap()).unwrap();
    let path = dir.path().join(INDEX_FILE);
    let good = std::fs::read(&path).unwrap();
    let want = truth(dir.path(), &state);
    for at in 0..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[at] ^= flip;
            std::fs::write(&path, &bad).unwrap();
            // Never a wrong answer: refused, or every slot right.
            if let Ok(got) = through_index(dir.path(), &state) {
                panic!("byte {at} ^ {flip:#x} gave {got:?}, the log has {want:?}");
            }
        }
    }
    // Cut short, or longer than its head says.
    for bad in [&good[..good.len() - 1], &[good.as_slice(), &[0]].concat()[..]] {
        std::fs::write(&path, bad).unwrap();
        assert!(TaskIndex::open(dir.path(), "r", TASKS).is_err());
    }
}

#[test]
fn a_stale_index_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let state = state();
    let journal = run(dir.path(), 3, false);
    let at = journal.position().unwrap();
    extend(dir.path(), &state, at).unwrap();
    assert!(TaskIndex::open(dir.path(), "r", TASKS).is_ok());
    // Another run's, or one of another number of tasks.
    assert!(TaskIndex::open(dir.path(), "other", TASKS).is_err());
    assert!(TaskIndex::open(dir.path(), "r", TASKS + 1).is_err());
    // The log cut before the record it ends at, then grown again to past it: the
    // record at its position is another one.
    drop(journal);
    let log = dir.path().join(LOG_FILE);
    let bytes = std::fs::read(&log).unwrap();
    std::fs::write(&log, &bytes[..at.start as usize]).unwrap();
    assert!(TaskIndex::open(dir.path(), "r", TASKS).is_err(), "cut");
    let scan = journal::scan(&log, |_, _| Ok(())).unwrap();
    let mut journal = Journal::open(dir.path(), &scan).unwrap();
    journal.append(9, &[Event::TaskReady { task: "t1".into() }, Event::TaskReady { task: "t2".into() }]).unwrap();
    assert!(TaskIndex::open(dir.path(), "r", TASKS).is_err(), "grown again");
    // Brought up to date: built again from the log's start, right.
    extend(dir.path(), &state, journal.position().unwrap()).unwrap();
    assert_eq!(through_index(dir.path(), &state).unwrap(), truth(dir.path(), &state));
}

#[test]
fn a_line_that_is_not_the_expected_record_writes_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let state = state();
    let journal = run(dir.path(), 2, false);
    let at = journal.position().unwrap();
    drop(journal);
    // A record's seq changed (and sealed again would not help: the seqs must run on).
    let log = dir.path().join(LOG_FILE);
    let text = std::fs::read_to_string(&log).unwrap().replacen("{\"seq\":5,", "{\"seq\":6,", 1);
    std::fs::write(&log, text).unwrap();
    extend(dir.path(), &state, at).unwrap();
    assert!(!dir.path().join(INDEX_FILE).exists());
}
