//! Opening a run folder with snapshots, through the real binary (DESIGN §6): a clean
//! stop leaves a snapshot of the final state, so `inspect`, `dlq` and `resume` fold
//! only what follows it and never re-read the records it covers (shown by damaging
//! one of those: opening does not trip on it, `pitboss verify` does). A snapshot that
//! cannot be written is a warning, never a failed run.

mod common;

use std::path::Path;

use common::{OutputWithin, Scratch};
use pitboss::io::journal::{self, LOG_FILE};
use pitboss::io::snapshot;

use common::{output_text as text, THREE_TASKS as WORKFLOW};

/// Flips one byte inside record `seq`'s event (its checksum no longer matches).
fn damage_record(dir: &Path, seq: usize) {
    let log = dir.join(LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    let start = bytes.split(|&b| b == b'\n').take(seq - 1).map(|l| l.len() + 1).sum::<usize>();
    let i = start + bytes[start..].windows(7).position(|w| w == b"\"type\":").unwrap() + 8;
    bytes[i] ^= 0x20;
    std::fs::write(&log, bytes).unwrap();
}

#[test]
fn a_finished_run_opens_from_its_snapshot_without_reading_the_records_it_covers() {
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    let snaps = snapshot::list(&dir);
    let (records, _) = {
        let (state, scan) = journal::fold_all(&dir.join(LOG_FILE)).unwrap();
        (scan.records, state)
    };
    assert_eq!(snaps.first().map(|s| s.0), Some(records), "a clean stop snapshots the final state: {snaps:?}");
    let opened = snapshot::open_state(&dir).unwrap();
    assert_eq!((opened.snapshot, opened.folded), (Some(records), 0), "nothing left to fold");

    // A record the snapshot covers is damaged: the full fold refuses the log ...
    damage_record(&dir, 2);
    let err = journal::fold_all(&dir.join(LOG_FILE)).unwrap_err();
    assert!(err.to_string().contains(":2: record seq 2 is corrupt"), "{err}");
    // ... but opening reads only after the snapshot, so every reader still works.
    let inspect = s.pitboss().arg("inspect").arg(&dir).output_within("pitboss inspect");
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect));
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("3 completed"), "{}", text(&inspect));
    let dlq = s.pitboss().arg("dlq").arg(&dir).output_within("pitboss dlq");
    assert_eq!(dlq.status.code(), Some(0), "{}", text(&dlq));
    let json = s.pitboss().args(["inspect", "--json"]).arg(&dir).output_within("pitboss inspect --json");
    let again: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(again["tasks"], doc["tasks"], "the same tasks as the run reported");
    let resume = s.pitboss().args(["resume", "--headless"]).arg(&dir).output_within("pitboss resume");
    assert_eq!(resume.status.code(), Some(0), "{}", text(&resume));

    // `verify` reads everything, and names the damaged line.
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("pitboss verify");
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(text(&verify).contains("events.jsonl:2: record 2: checksum mismatch"), "{}", text(&verify));
}

#[test]
fn verify_passes_a_sound_folder_and_names_a_snapshot_that_is_not_the_logs_fold() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(WORKFLOW);
    assert_eq!(code, 0, "{}", text(&out));
    let dir = s.run_dir();
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("pitboss verify");
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    assert!(text(&verify).contains("all good"), "{}", text(&verify));

    // A snapshot sealed properly but holding another state: only verify can tell.
    let (seq, path) = snapshot::list(&dir)[0].clone();
    let mut snap = snapshot::read(&path).unwrap();
    snap.state.tasks[0].attempts = 9;
    std::fs::write(&path, snapshot::encode(&snap.state, snap.at)).unwrap();
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("pitboss verify");
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(
        text(&verify)
            .contains(&format!("snapshot-{seq}.json: its state differs from the fold of the log up to record {seq}")),
        "{}",
        text(&verify)
    );
}

#[test]
fn a_snapshot_that_cannot_be_written_is_a_warning_and_the_run_goes_on() {
    let s = Scratch::new();
    let dir = s.run_dir();
    // Folders where the snapshots would go: every rename onto them fails.
    for seq in 1..=60 {
        std::fs::create_dir_all(dir.join(snapshot::file_name(seq))).unwrap();
    }
    let file = s.write("workflow.toml", WORKFLOW);
    let out = s
        .pitboss()
        .env(snapshot::EVERY_ENV, "1")
        .args(["run", "--headless", "--state-dir"])
        .arg(&dir)
        .arg(&file)
        .output_within("pitboss run with snapshots failing");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let opened = snapshot::open_state(&dir).unwrap();
    assert_eq!(opened.snapshot, None, "no snapshot was written");
    assert!(opened.notes.iter().any(|n| n.contains("snapshot not used")), "{:?}", opened.notes);
    let (state, _) = journal::fold_all(&dir.join(LOG_FILE)).unwrap();
    assert!(state.finished && state.all_terminal());
}

#[test]
fn resume_cut_before_a_snapshot_removes_it_and_the_folder_verifies() {
    let s = Scratch::new();
    let dir = s.run_dir();
    let file = s.write("workflow.toml", WORKFLOW);
    let run = |cmd: &mut std::process::Command, what: &str| {
        let out = cmd.env(snapshot::EVERY_ENV, "2").output_within(what);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out));
        out
    };
    run(s.pitboss().args(["run", "--headless", "--state-dir"]).arg(&dir).arg(&file), "pitboss run");
    let before = snapshot::list(&dir);
    let newest = before[0].0;
    let cut = newest - 2;
    let out = run(
        s.pitboss().args(["resume", "--headless", "--truncate-at", &cut.to_string()]).arg(&dir),
        "pitboss resume --truncate-at",
    );
    assert!(text(&out).contains("removed"), "a note says stale snapshots were removed: {}", text(&out));
    let (state, scan) = journal::fold_all(&dir.join(LOG_FILE)).unwrap();
    assert!(state.finished && state.all_terminal());
    for (seq, path) in snapshot::list(&dir) {
        assert!(seq <= scan.records, "{} outlived the cut", path.display());
        assert!(snapshot::in_log(&dir.join(LOG_FILE), &snapshot::read(&path).unwrap().at), "{}", path.display());
    }
    let verify = s.pitboss().arg("verify").arg(&dir).output_within("pitboss verify");
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}
