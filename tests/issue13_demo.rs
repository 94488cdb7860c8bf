//! The bundled demo (`pitboss` with no arguments) tells the planner story as the
//! README says: alongside retries, a dead letter, the review gate and a consensus,
//! the `translate` planner grows the run by four children, the fourth one over
//! `max_children` is held, and a headless `--exit-when-blocked` run stops with it
//! held (exit 3); approving it over `ctl` lets it and its waiting dependent finish.

mod common;

use common::{read_events, task, KillOnPanic, OutputWithin, Scratch};
use serde_json::Value;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/workflows/demo.toml");

#[test]
fn the_demo_grows_a_planners_children_holds_one_over_the_limit_and_finishes_once_it_is_approved() {
    let s = Scratch::new();
    let out = s
        .pitboss()
        .args(["run", "--headless", "--exit-when-blocked", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(DEMO)
        .output_within("the demo, headless");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("1 task held for approval"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("--json document");
    // The demo's existing story is unchanged.
    for (id, state) in [
        ("lint-changelog", "dead_lettered"),
        ("lint-report", "skipped"),
        ("draft-intro", "completed"),
        ("proofread", "completed"),
        ("announce-blog", "completed"),
        ("translate/part-1", "completed"),
        ("translate/part-3", "completed"),
        ("translate/combine", "awaiting_approval"),
        ("publish-translations", "blocked"),
    ] {
        assert_eq!(task(&doc, id)["state"], state, "{id}: {doc}");
    }
    assert_eq!(task(&doc, "translate/combine")["finding"]["rule"], "planner/max-children", "{doc}");
    let events = read_events(&s.run_dir());
    for kind in ["tasks_spawned", "gate_failed", "consensus_reached", "attempt_failed", "task_skipped"] {
        assert!(events.iter().any(|e| e["type"] == kind), "the demo has no {kind}");
    }

    // Resumed headless, the run waits for an operator; `ctl approve` lets it finish.
    let mut manager = s
        .pitboss()
        .args(["resume", "--headless", "--json"])
        .arg(s.run_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("resume the demo");
    let _guard = KillOnPanic::new(&[manager.id()]);
    let ctl = |args: &[&str]| s.pitboss().arg("ctl").arg(s.run_dir()).args(args).output_within("pitboss ctl");
    let up = common::wait_for(common::deadline(), || ctl(&["status"]).status.code() == Some(0));
    assert!(up, "the resumed demo's socket never answered");
    let out = ctl(&["approve", "translate/combine"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let status = common::wait_within(&mut manager, "the resumed demo");
    assert_eq!(status.code(), Some(1), "the demo ends with its dead letter");
    let out = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("inspect");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("inspect --json");
    assert_eq!(task(&doc, "publish-translations")["state"], "completed", "{doc}");
    // The aggregator replaces the planner's input by its children's results.
    let combined = &task(&doc, "publish-translations")["result"]["combined"];
    for child in ["translate/part-1", "translate/part-2", "translate/part-3", "translate/combine"] {
        assert!(combined.get(child).is_some(), "publish-translations got {child}'s result: {combined}");
    }
    assert_eq!(doc["counts"]["completed"], 24, "{doc}");
    // The demo's agents report what they spend (issue 17): the run's spend is the sum of
    // every attempt's `cost_usd`, under the demo's budget, and each task has its session.
    let spent = doc["spend"]["run"]["cost_usd"].as_f64().unwrap_or(0.0);
    assert!(spent > 1.0 && spent < 5.0, "the demo's spend: {}", doc["spend"]);
    assert_eq!(doc["spend"]["max_cost_usd"], 5.0, "{}", doc["spend"]);
    assert_eq!(task(&doc, "publish-translations")["session"], "sim-session-publish-translations", "{doc}");
}
