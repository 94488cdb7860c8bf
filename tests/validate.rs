//! `pitboss validate` reports every kind of bad workflow as FILE:LINE:COL and exits 2.

mod common;

use common::{OutputWithin, Scratch};

/// Runs validate on `text`; returns (exit code, stderr).
fn validate(text: &str) -> (i32, String) {
    let s = Scratch::new();
    let file = s.write("wf.toml", text);
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "wf.toml");
    (out.status.code().unwrap_or(-1), stderr)
}

const POOL: &str = "[[pool]]\nname = \"p\"\ncommand = [\"echo\"]\ncapabilities = [\"write\"]\n";

fn assert_reports(text: &str, expected: &str) {
    let (code, stderr) = validate(text);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn toml_syntax_error() {
    assert_reports("[run\nname = \"x\"\n", "wf.toml:1:5: ");
}

#[test]
fn unknown_key() {
    assert_reports(&format!("{POOL}[[task]]\nid = \"a\"\nretries = 3\n"), "wf.toml:7:1: unknown field `retries`");
}

#[test]
fn duplicate_ids() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\n[[task]]\nid = \"a\"\n"),
        "wf.toml:8:6: duplicate task id \"a\"",
    );
}

#[test]
fn unknown_dependency() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"nope\"]\n"),
        "wf.toml:7:15: task \"a\" depends on unknown task \"nope\"",
    );
}

#[test]
fn cycle_is_named() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"b\"]\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n"),
        "dependency cycle: a -> b -> a",
    );
}

#[test]
fn unknown_pool() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\npool = \"gpu\"\n"),
        "wf.toml:7:8: task \"a\" names unknown pool \"gpu\"",
    );
}

#[test]
fn unmatched_capability() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\nrequires = [\"fly\"]\n"),
        "wf.toml:7:13: task \"a\": no pool has all of the capabilities [\"fly\"]",
    );
}

#[test]
fn bad_duration() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ntimeout = \"10 minutes\"\n"),
        "wf.toml:7:11: bad duration \"10 minutes\"",
    );
}

#[test]
fn empty_command() {
    assert_reports("[[pool]]\nname = \"p\"\ncommand = []\n", "wf.toml:3:11: pool \"p\" has an empty command");
}

#[test]
fn not_supported_yet_is_refused() {
    assert_reports(
        &format!("{POOL}[[task]]\nid = \"a\"\ngates = [{{ command = [\"true\"] }}]\n"),
        "wf.toml:7:9: `gates` is not supported yet",
    );
}

#[test]
fn several_problems_are_all_reported() {
    let (code, stderr) = validate(&format!(
        "{POOL}[[task]]\nid = \"a\"\ndepends_on = [\"x\"]\ntimeout = \"soon\"\n[[task]]\nid = \"a\"\npool = \"q\"\n"
    ));
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().filter(|l| l.starts_with("wf.toml:")).count(), 4, "{stderr}");
}

#[test]
fn missing_file_is_a_clear_error() {
    let s = Scratch::new();
    let out = s.pitboss().args(["validate", "/nonexistent/wf.toml"]).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("/nonexistent/wf.toml:1:1: cannot read the workflow"), "{stderr}");
}

#[test]
fn valid_workflow_and_bundled_demo_pass() {
    let s = Scratch::new();
    let file = s.write("wf.toml", &format!("{POOL}[[task]]\nid = \"a\"\nrequires = [\"write\"]\n"));
    let out = s.pitboss().arg("validate").arg(&file).output_within("pitboss validate");
    assert_eq!(out.status.code(), Some(0));
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/workflows/demo.toml");
    let out = s.pitboss().args(["validate", demo]).output_within("pitboss validate on the demo");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
