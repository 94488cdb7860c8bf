//! Logs written by earlier builds (`tests/golden/`) replay to the documents those
//! builds printed: a change to anything serialised into the log must keep reading them.
//! Every folder there is replayed (a new one needs no new test), and every event type
//! this build knows must be in one of the logs.

mod common;

use std::path::Path;

use common::{OutputWithin, Scratch};
use serde_json::Value;

/// Copies a golden log into a scratch run folder (inspect never writes, but a test
/// must not touch the committed files) and returns the folder.
fn scratch_copy(scratch: &Scratch, name: &str) -> std::path::PathBuf {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    let dir = scratch.path().join(name);
    std::fs::create_dir_all(&dir).expect("scratch run folder");
    std::fs::copy(golden.join("events.jsonl"), dir.join("events.jsonl")).expect("copy golden log");
    dir
}

fn inspect(scratch: &Scratch, args: &[&str]) -> Value {
    let out = scratch.pitboss().arg("inspect").args(args).arg("--json").output_within("pitboss inspect");
    assert!(out.status.success(), "inspect {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut doc: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    if let Some(map) = doc.as_object_mut() {
        map.remove("state_dir");
    }
    doc
}

fn expected(name: &str, file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every folder of `tests/golden/`.
fn golden_folders() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut folders: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("golden folder entry").path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

/// A golden folder added later is replayed without a test of its own: its
/// `inspect.json` and each `history-TASK.json` must come out the same.
#[test]
fn every_golden_log_replays_to_its_documents() {
    let folders = golden_folders();
    assert!(folders.len() >= 3, "the golden logs are missing: {folders:?}");
    for folder in folders {
        let name = folder.file_name().and_then(|n| n.to_str()).expect("utf-8 folder name").to_string();
        let scratch = Scratch::new();
        let dir = scratch_copy(&scratch, &name);
        let dir = dir.to_str().expect("utf-8 path");
        assert_eq!(inspect(&scratch, &[dir]), expected(&name, "inspect.json"), "{name}: run document differs");
        let mut histories = 0;
        for entry in std::fs::read_dir(&folder).expect("golden folder") {
            let file = entry.expect("golden file").file_name().to_string_lossy().into_owned();
            let Some(task) = file.strip_prefix("history-").and_then(|f| f.strip_suffix(".json")) else { continue };
            assert_eq!(inspect(&scratch, &[dir, task]), expected(&name, &file), "{name}: history of {task} differs");
            histories += 1;
        }
        assert!(histories > 0, "{name}: no history-TASK.json to compare");
    }
}

/// Event types no golden log holds yet, each with why. Shrink it, never grow it
/// without a reason: a new event type gets a golden log (tests/golden/README.md).
const NOT_YET_GOLDEN: &[(&str, &str)] = &[
    ("log_repaired", "needs a log resumed after a torn tail"),
    ("attempt_stalled", "needs a log with a stall watch"),
    ("attempt_active", "needs a log with a stall watch"),
    ("breaker_closed", "needs a log with a successful half-open probe"),
    ("task_revived", "an operator action: the TUI only, until `ctl` exists"),
    ("payload_edited", "an operator action: the TUI only, until `ctl` exists"),
];

/// Logs written by every released format replay by every build (DESIGN §6) only if
/// each event type is in one: a type added with a feature must come with a golden
/// log that holds it (or an entry in `NOT_YET_GOLDEN` saying why not yet).
#[test]
fn every_event_type_is_in_a_golden_log() {
    let mut seen = std::collections::BTreeSet::new();
    for folder in golden_folders() {
        let text = std::fs::read_to_string(folder.join("events.jsonl")).expect("golden log");
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).expect("a golden record");
            seen.insert(record["event"]["type"].as_str().expect("an event type").to_string());
        }
    }
    let known = pitboss::io::journal::known_event_types();
    assert!(known.len() > 20, "the event types: {known:?}");
    let missing: Vec<&str> =
        known.iter().copied().filter(|t| !seen.contains(*t) && !NOT_YET_GOLDEN.iter().any(|(n, _)| n == t)).collect();
    assert!(
        missing.is_empty(),
        "event types in no golden log: {missing:?}; capture a log that holds them (tests/golden/README.md)"
    );
    let stale: Vec<&str> =
        NOT_YET_GOLDEN.iter().map(|(n, _)| *n).filter(|n| seen.contains(*n) || !known.contains(n)).collect();
    assert!(stale.is_empty(), "NOT_YET_GOLDEN lists types that are golden now or gone: {stale:?}");
}
