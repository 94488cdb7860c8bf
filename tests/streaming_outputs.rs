//! `inspect --json` and `events --json` write as they go; their bytes are exactly
//! what the one-document versions printed (fixtures captured from them on every
//! golden log), and a reader that stops early (`| head`) ends them quietly.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const GOLDEN: &[&str] = &[
    "v1-consensus",
    "v1-crashed",
    "v1-dead-letters",
    "v1-finished",
    "v1-gates",
    "v1-held",
    "v1-output-capture-failed",
    "v1-planner",
];

fn pitboss(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_pitboss")).args(args).output().unwrap();
    assert!(out.status.success(), "pitboss {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/streaming/{name}")).unwrap()
}

/// The first task of each golden run, as the fixtures were captured with.
fn first_task(golden: &str) -> String {
    let doc: serde_json::Value = serde_json::from_slice(&fixture(&format!("{golden}.inspect.json"))).unwrap();
    doc["tasks"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn streamed_outputs_are_byte_for_byte_the_old_documents() {
    for golden in GOLDEN {
        let dir = format!("tests/golden/{golden}");
        assert_eq!(
            String::from_utf8(pitboss(&["inspect", &dir, "--json"])).unwrap(),
            String::from_utf8(fixture(&format!("{golden}.inspect.json"))).unwrap(),
            "inspect --json of {golden}"
        );
        assert_eq!(
            String::from_utf8(pitboss(&["events", &dir, "--json"])).unwrap(),
            String::from_utf8(fixture(&format!("{golden}.events.jsonl"))).unwrap(),
            "events --json of {golden}"
        );
        let task = first_task(golden);
        assert_eq!(
            String::from_utf8(pitboss(&["inspect", &dir, &task, "--json"])).unwrap(),
            String::from_utf8(fixture(&format!("{golden}.task.json"))).unwrap(),
            "inspect {task} --json of {golden}"
        );
    }
}

#[test]
fn a_reader_that_stops_early_ends_the_stream_quietly() {
    for args in [["events", "tests/golden/v1-crashed", "--json"], ["inspect", "tests/golden/v1-crashed", "--json"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pitboss"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with('{'), "{args:?}: {first:?}");
        // The reader is gone (the pipe closed when the reader above was dropped).
        let out = child.wait_with_output().unwrap();
        let quiet = out.status.success() || out.status.signal() == Some(13);
        assert!(quiet, "{args:?} ended with {:?}", out.status);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
