//! Time travel in bounded time: the run shown at any cursor equals a fold of the log
//! up to there (whatever path the cursor took, and while records keep arriving); a
//! move of the cursor folds at most a checkpoint's spacing of records, entering folds
//! none; the per-task history at the cursor is the history of that prefix.
//! The log is the scripted run of `tui_model.rs` (retries, dead letters, replays,
//! cancels, payload edits, pauses, spawn notes, a crash and a clean stop).

use pitboss::core::TaskStateName;
use pitboss::io::journal::Record;
use pitboss::tui::model::Fleet;
use proptest::prelude::*;

mod scripted_log;
use scripted_log::*;

/// The run shown by `fleet` is the run `expected` folded from scratch.
fn assert_same(fleet: &Fleet, expected: &Fleet, what: &str) {
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
    assert_eq!(fleet.last_ts, expected.last_ts, "{what}: last_ts");
    assert_eq!(fleet.queue_depth, expected.queue_depth, "{what}: queue depth");
    assert_eq!(fleet.completions, expected.completions, "{what}: completions");
    let mut live: Vec<_> = fleet.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    let mut want: Vec<_> = expected.live.iter().map(|(t, l)| (t.clone(), l.attempt, l.started_ms)).collect();
    live.sort();
    want.sort();
    assert_eq!(live, want, "{what}: attempts in flight");
    for i in 0..TASKS {
        assert_eq!(fleet.history(i), expected.history(i), "{what}: history of task {i}");
    }
}

fn log() -> &'static [Record] {
    static LOG: std::sync::OnceLock<Vec<Record>> = std::sync::OnceLock::new();
    LOG.get_or_init(long_log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Jumps and steps in any order: each cursor shows the fold of the log up to it.
    #[test]
    fn travel_at_any_cursor_equals_a_fold_from_the_start(
        moves in prop::collection::vec((1usize..RECORDS, -3i64..3), 1..5)
    ) {
        let records = log();
        let mut fleet = Fleet::from_records(records).unwrap();
        prop_assert!(fleet.checkpoints() >= 2, "the log spans checkpoints");
        for (jump, step) in moves {
            for n in [jump, (jump as i64 + step).clamp(1, records.len() as i64) as usize] {
                let before = fleet.travel_folds();
                fleet.travel_to(Some(n)).unwrap();
                prop_assert_eq!(fleet.travelling(), Some(n));
                prop_assert!(fleet.travel_folds() - before <= fleet.checkpoint_spacing() as u64);
                assert_same(&fleet, &Fleet::from_records(&records[..n]).unwrap(), &format!("cursor {n}"));
            }
        }
        fleet.travel_to(None).unwrap();
        prop_assert_eq!(fleet.travelling(), None);
        assert_same(&fleet, &Fleet::from_records(records).unwrap(), "back to live");
    }
}

#[test]
fn entering_folds_nothing_and_each_step_back_folds_at_most_the_spacing() {
    let records = log();
    let mut fleet = Fleet::from_records(records).unwrap();
    let spacing = fleet.checkpoint_spacing() as u64;
    fleet.travel_to(Some(records.len())).unwrap();
    assert_eq!(fleet.travel_folds(), 0, "entering time travel refolds nothing");
    // Step back one record at a time across a checkpoint, as ← does.
    let checkpoint = (records.len() - 1) / spacing as usize * spacing as usize;
    fleet.travel_to(Some(checkpoint + 20)).unwrap();
    let mut worst = 0;
    for n in (checkpoint - 20..checkpoint + 20).rev() {
        let before = fleet.travel_folds();
        fleet.travel_to(Some(n)).unwrap();
        worst = worst.max(fleet.travel_folds() - before);
    }
    assert!(worst <= spacing, "a step back folded {worst} records (spacing {spacing})");
    assert!(worst > 0, "steps back fold from a checkpoint");
    // Stepping forward folds only the record stepped over.
    let before = fleet.travel_folds();
    let n = fleet.travelling().unwrap();
    fleet.travel_to(Some(n + 1)).unwrap();
    assert_eq!(fleet.travel_folds() - before, 1);
}

#[test]
fn records_arriving_while_travelling_reach_the_live_run_not_the_past() {
    let records = log();
    let half = records.len() / 2;
    let mut fleet = Fleet::from_records(&records[..half]).unwrap();
    fleet.travel_to(Some(1_000)).unwrap();
    fleet.add_output("t0000", 1, b"ignored while travelling, or kept for live\n", T0);
    for record in &records[half..] {
        fleet.apply(record).unwrap();
    }
    // The past stays where it was…
    assert_same(&fleet, &Fleet::from_records(&records[..1_000]).unwrap(), "past while records arrive");
    // …the cursor can now reach the new records…
    fleet.travel_to(Some(records.len() - 1)).unwrap();
    assert_same(&fleet, &Fleet::from_records(&records[..records.len() - 1]).unwrap(), "a new record");
    // …and leaving shows the live run with every record.
    fleet.travel_to(None).unwrap();
    assert_same(&fleet, &Fleet::from_records(records).unwrap(), "live again");
    assert_eq!(fleet.records.len(), records.len());
}

#[test]
fn checkpoints_stay_bounded_on_a_long_log() {
    let records = log();
    let mut fleet = Fleet::from_records(&records[..1]).unwrap();
    // The same log three times over is not a valid run; a long log of the same
    // shape is: count checkpoints while folding, whatever the length.
    for record in &records[1..] {
        fleet.apply(record).unwrap();
        assert!(fleet.checkpoints() <= pitboss::tui::model::MAX_CHECKPOINTS);
    }
    assert_eq!(fleet.checkpoints(), records.len() / fleet.checkpoint_spacing());
}
