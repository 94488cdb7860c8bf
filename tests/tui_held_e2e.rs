//! The Held view in a real terminal: `pitboss run assets/workflows/guard.toml` in a
//! pseudo-terminal of its own (`common::pty`); the operator opens the Held view, marks
//! the held task, approves it through the preview, and sees it and its dependent run.
//! Screens are only checked by waiting for a condition (a capture can land in the
//! middle of a redraw).

mod common;

use std::path::Path;
use std::time::Duration;

use common::pty::Terminal;
use common::{read_events, Scratch};

/// How long a screen or an exit may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn marking_and_approving_in_the_held_view_lets_the_held_task_and_its_dependent_run() {
    let s = Scratch::new();
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/workflows/guard.toml");
    let mut cmd = s.pitboss();
    cmd.args(["run", "--state-dir"]).arg(s.run_dir()).arg(&workflow).env("PITBOSS_CONFIG", s.path().join("config"));
    let mut t = Terminal::spawn(cmd, 100, 30);

    // The header counts the held task and names the key of its view.
    t.wait_for(LIMIT, "the held count in the header", |sc| sc.contains("1 held for approval (4)"));
    t.send_keys("4");
    t.wait_for(LIMIT, "the Held view", |sc| {
        sc.contains("Held for approval 1/1 · 0 marked") && sc.contains("translate") && sc.contains("publish")
    });
    t.send_keys(" ");
    t.wait_for(LIMIT, "the mark", |sc| sc.contains("1 marked") && sc.contains(" ● "));
    t.send_keys("a");
    t.wait_for(LIMIT, "the preview", |sc| {
        sc.contains("Approve translate?") && sc.contains("guard/ignore-instructions")
    });
    // Nothing ran before the answer.
    let before = read_events(&s.run_dir());
    assert!(!before.iter().any(|e| e["type"] == "attempt_started" && e["task"] == "translate"));
    t.send_keys("y");
    t.wait_for(LIMIT, "the approval acknowledged", |sc| sc.contains("approved translate"));
    t.wait_for(LIMIT, "every task done", |sc| sc.contains("4 done") && sc.contains("finished"));
    t.wait_for(LIMIT, "the Held view empty", |sc| sc.contains("Nothing is held for approval."));

    let events = read_events(&s.run_dir());
    let position = |kind: &str, task: &str| events.iter().position(|e| e["type"] == kind && e["task"] == task);
    let approved = position("task_approved", "translate").expect("task_approved recorded");
    let started = position("attempt_started", "translate").expect("translate ran");
    assert!(approved < started, "translate started only after its approval");
    assert!(position("attempt_succeeded", "publish").is_some(), "its dependent ran");
    t.send_keys("q");
    assert_eq!(t.wait_exit(LIMIT), 0);
}
