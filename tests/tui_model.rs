//! The TUI's read model is kept up to date record by record, never refolded per frame:
//! folding a long log (10,000+ records of successes, failures, retries, dead letters,
//! replays, cancels, payload edits, pauses, a crash and a clean stop) in batches of
//! every size gives the same per-task history, running tasks and dead letters as a
//! fold from scratch; a batch only appends to what earlier batches built; and each
//! history step holds exactly the task that replaying the log up to that step gives.

use pitboss::core::{Event, RunState, TaskState};
use pitboss::io::journal::Record;
use pitboss::tui::model::{Fleet, Step};

mod scripted_log;
use scripted_log::*;

/// What must hold of a model folded from `records`, checked against a plain fold: the
/// running tasks and dead letters are the state's, and every task's history is every
/// record about it (spawn notes aside), each with the task as replay leaves it.
fn check_against_fold(fleet: &Fleet, records: &[Record]) {
    let mut state = RunState::from_first(&records[0].event).unwrap();
    let mut seen = vec![0usize; TASKS];
    for (index, record) in records.iter().enumerate().skip(1) {
        state.apply(&record.event, record.ts).unwrap();
        let Some(i) = record.event.task().and_then(|t| state.task_index(t)) else { continue };
        if matches!(record.event, Event::AttemptSpawned { .. }) {
            continue;
        }
        let history = fleet.history(i);
        let step = history.get(seen[i]);
        let want =
            Step { record: index, ts: record.ts, event: record.event.clone(), task: Some(state.tasks[i].clone()) };
        assert_eq!(step, Some(&want), "task {} step {} (record {index})", state.task_id(i), seen[i]);
        seen[i] += 1;
    }
    for (i, n) in seen.iter().enumerate() {
        assert_eq!(fleet.history(i).len(), *n, "task {}: history has extra steps", state.task_id(i));
    }
    let scan = |keep: fn(&TaskState) -> bool| (0..TASKS).filter(|&i| keep(&state.tasks[i].state)).collect::<Vec<_>>();
    assert_eq!(fleet.running().collect::<Vec<_>>(), scan(|s| matches!(s, TaskState::Running { .. })));
    assert_eq!(fleet.dead_letters().collect::<Vec<_>>(), scan(|s| matches!(s, TaskState::DeadLettered { .. })));
    assert_eq!(fleet.held().collect::<Vec<_>>(), scan(|s| matches!(s, TaskState::AwaitingApproval { .. })));
}

#[test]
fn history_is_extended_record_by_record_and_equals_a_fold_from_scratch() {
    let records = long_log();
    assert!(records.len() >= RECORDS);
    // The script reaches every kind of step the history shows.
    for kind in
        ["attempt_spawned", "attempt_failed", "task_skipped", "task_revived", "task_cancelled", "payload_edited"]
    {
        assert!(records.iter().any(|r| r.event.kind() == kind), "no {kind} in the scripted log");
    }
    assert!(records
        .iter()
        .any(|r| matches!(&r.event, Event::AttemptInterrupted { reason, .. } if reason == "manager crashed")));

    let mut fleet = Fleet::from_records(&records[..1]).unwrap();
    let mut folded = 1;
    let mut size = 1;
    while folded < records.len() {
        let before: Vec<Vec<Step>> = (0..TASKS).map(|i| fleet.history(i).to_vec()).collect();
        let end = (folded + size).min(records.len());
        for record in &records[folded..end] {
            fleet.apply(record).unwrap();
        }
        folded = end;
        size = size * 3 + 1;
        // Earlier steps are kept as they were: a batch only appends.
        for (i, old) in before.iter().enumerate() {
            assert_eq!(&fleet.history(i)[..old.len()], &old[..], "task {i}'s history was rewritten");
        }
        // And the whole equals a model built from scratch over the same prefix.
        let scratch = Fleet::from_records(&records[..folded]).unwrap();
        for i in 0..TASKS {
            assert_eq!(fleet.history(i), scratch.history(i), "task {i} after {folded} records");
        }
        assert_eq!(fleet.running().collect::<Vec<_>>(), scratch.running().collect::<Vec<_>>());
        assert_eq!(fleet.dead_letter_groups(), scratch.dead_letter_groups());
    }
    check_against_fold(&fleet, &records);
}
