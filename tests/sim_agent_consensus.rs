//! The built-in `sim-agent` as a consensus replica and as a judge (DESIGN §10), run as
//! the real binary with a task JSON on stdin, as a pool would run it.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::{finish_within, Scratch};
use pitboss::core::consensus::judge_pick;
use serde_json::{json, Value};

fn sim(role: &str, stdin: &Value) -> Output {
    let scratch = Scratch::new();
    let mut child = scratch
        .pitboss()
        .args(["sim-agent", "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sim-agent");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.to_string().as_bytes()).expect("write stdin");
    drop(pipe);
    finish_within(child, "sim-agent")
}

/// The result: the last line on stdout, as pitboss reads it.
fn answer(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line {last:?} is not JSON ({e}); stderr: {}", err(out)))
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn task(payload: Value, extra: Value) -> Value {
    let mut t = json!({"id": "q", "type": "ask", "attempt": 1, "run_id": "r", "inputs": {}, "payload": payload});
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        t.extend(extra.clone());
    }
    t
}

#[test]
fn each_replica_answers_its_entry_of_answers() {
    let payload = json!({"latency_ms": 0, "answers": [{"a": 1}, {"a": 1}, {"a": 2}]});
    let got: Vec<Value> = (0..3)
        .map(|r| {
            let out = sim("writer", &task(payload.clone(), json!({"replica": r})));
            assert!(out.status.success(), "replica {r}: {}", err(&out));
            answer(&out)
        })
        .collect();
    assert_eq!(got, [json!({"a": 1}), json!({"a": 1}), json!({"a": 2})]);
    // Without a replica index (a task run once) it answers the first entry; past the
    // end the entries repeat.
    assert_eq!(answer(&sim("writer", &task(payload.clone(), json!({})))), json!({"a": 1}));
    assert_eq!(answer(&sim("writer", &task(payload, json!({"replica": 5})))), json!({"a": 2}));
}

#[test]
fn listed_replicas_fail_so_they_abstain() {
    let payload = json!({"latency_ms": 0, "answers": ["x"], "fail_replicas": [1]});
    let failed = sim("writer", &task(payload.clone(), json!({"replica": 1})));
    assert_eq!(failed.status.code(), Some(1), "stderr: {}", err(&failed));
    assert!(err(&failed).contains("replica 1"), "{}", err(&failed));
    let fine = sim("writer", &task(payload, json!({"replica": 2})));
    assert!(fine.status.success());
    assert_eq!(answer(&fine), json!("x"));
}

#[test]
fn the_judge_picks_by_the_payload_rule_in_the_protocol_shape() {
    let candidates = json!(["short", {"long": "a much longer answer"}, "mid-size"]);
    let cases = [(json!(null), 1), (json!("longest"), 1), (json!("first"), 0), (json!("last"), 2), (json!(2), 2)];
    for (rule, expected) in cases {
        let out = sim(
            "judge",
            &task(json!({"latency_ms": 0, "judge_pick": rule}), json!({"candidates": candidates.clone()})),
        );
        assert!(out.status.success(), "{rule}: {}", err(&out));
        let verdict = answer(&out);
        let (pick, reason) = judge_pick(&verdict, 3).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(pick, expected, "{rule}: {verdict}");
        assert!(reason.is_some_and(|r| !r.is_empty()), "{rule}: {verdict}");
    }
    // An index out of range is passed on as given, so the manager's check can be seen.
    let out = sim("judge", &task(json!({"latency_ms": 0, "judge_pick": 7}), json!({"candidates": candidates})));
    assert_eq!(answer(&out)["pick"], json!(7));
    assert!(judge_pick(&answer(&out), 3).is_err());
}

#[test]
fn a_judge_without_candidates_says_so() {
    let out = sim("judge", &task(json!({"latency_ms": 0}), json!({})));
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("no \"candidates\""), "{}", err(&out));
}
