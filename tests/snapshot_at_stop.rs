//! The snapshot at a clean stop (DESIGN §6, issue 14): written when the records since
//! the newest snapshot are worth it, skipped when they are a few. A finished run
//! resumed only appends its manager's start: writing the whole state again (a quarter
//! million tasks at 1M records) cost more than folding that record at the next open.
//! Skipped or written, the next open gives the same state.

mod common;

use common::{OutputWithin, Scratch};
use pitboss::io::snapshot;

use common::{output_text as text, THREE_TASKS as WORKFLOW};

/// A finished run of [`WORKFLOW`], its `inspect --json` document and its snapshots' seqs.
fn finished(s: &Scratch) -> (serde_json::Value, Vec<u64>) {
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", text(&out));
    (inspect_json(s), seqs(s))
}

fn seqs(s: &Scratch) -> Vec<u64> {
    snapshot::list(&s.run_dir()).into_iter().map(|(seq, _)| seq).collect()
}

fn inspect_json(s: &Scratch) -> serde_json::Value {
    let out = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("pitboss inspect --json");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("inspect --json is JSON")
}

fn resume(s: &Scratch, every: Option<&str>) {
    let mut cmd = s.pitboss();
    if let Some(every) = every {
        cmd.env(snapshot::EVERY_ENV, every);
    }
    let out = cmd.args(["resume", "--headless"]).arg(s.run_dir()).output_within("pitboss resume --headless");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn resuming_a_finished_run_writes_no_snapshot_for_a_tiny_tail_and_opens_to_the_same_state() {
    let s = Scratch::new();
    let (doc, before) = finished(&s);
    let newest = before[0];
    for round in 1..=3 {
        resume(&s, None);
        assert_eq!(seqs(&s), before, "round {round}: no new snapshot for a tail of {round} record(s)");
        let opened = snapshot::open_state(&s.run_dir()).expect("opens");
        assert_eq!((opened.snapshot, opened.folded), (Some(newest), round), "opened from the old one, tail folded");
        assert_eq!(inspect_json(&s)["tasks"], doc["tasks"], "round {round}: the same tasks");
    }
}

#[test]
fn a_stop_after_a_long_tail_or_without_a_usable_snapshot_writes_one() {
    let s = Scratch::new();
    let (doc, before) = finished(&s);
    // Snapshots every 50 records: a stop one record after the newest is a long tail
    // for that period (1/50 of it), so it is written.
    resume(&s, Some("50"));
    let after = seqs(&s);
    assert_eq!(after[0], before[0] + 1, "a snapshot of the resumed state: {after:?}");
    // Every snapshot damaged: the open folds the whole log, and the stop writes one.
    for (_, path) in snapshot::list(&s.run_dir()) {
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    }
    resume(&s, None);
    let opened = snapshot::open_state(&s.run_dir()).expect("opens");
    assert_eq!((opened.snapshot, opened.folded), (Some(after[0] + 1), 0), "{:?}", opened.notes);
    assert_eq!(inspect_json(&s)["tasks"], doc["tasks"], "the same tasks");
}
