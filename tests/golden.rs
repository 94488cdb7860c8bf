//! Logs written by earlier builds (`tests/golden/`) replay to the documents those
//! builds printed: a change to anything serialised into the log must keep reading them.

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

fn check(name: &str, task: &str) {
    let scratch = Scratch::new();
    let dir = scratch_copy(&scratch, name);
    let dir = dir.to_str().expect("utf-8 path");
    assert_eq!(inspect(&scratch, &[dir]), expected(name, "inspect.json"), "{name}: run document differs");
    assert_eq!(
        inspect(&scratch, &[dir, task]),
        expected(name, &format!("history-{task}.json")),
        "{name}: history of {task} differs"
    );
}

#[test]
fn a_finished_run_replays_to_the_same_document() {
    check("v1-finished", "lint-changelog");
}

#[test]
fn a_crashed_and_resumed_run_replays_to_the_same_document() {
    check("v1-crashed", "collect-issues");
}

#[test]
fn dead_letters_replays_and_breaker_trips_replay_to_the_same_document() {
    check("v1-dead-letters", "first-failure");
}

#[test]
fn an_output_capture_failure_replays_to_the_same_document() {
    check("v1-output-capture-failed", "a");
}
