//! `inspect TASK` and `inspect TASK --json` show a consensus task's votes (issue 12
//! item 5), from a real run of the bundled sim-agent: each replica's worker, digest,
//! result or abstention, and the outcome, per attempt; a task without votes has no
//! `votes` key (so documents of older logs stay as they were).

mod common;

use common::{OutputWithin, Scratch};
use serde_json::{json, Value};

fn workflow() -> String {
    let pitboss = env!("CARGO_BIN_EXE_pitboss");
    format!(
        "[defaults]\nretry = {{ max_attempts = 1 }}\n\
         [[pool]]\nname = \"writer\"\ncommand = [{p:?}, \"sim-agent\", \"--role\", \"writer\"]\nconcurrency = 2\n\
         [[pool]]\nname = \"judges\"\ncommand = [{p:?}, \"sim-agent\", \"--role\", \"judge\"]\n\
         [[task]]\nid = \"headline\"\npool = \"writer\"\n\
         consensus = {{ replicas = 3, strategy = \"judge\", judge = \"judges\" }}\n\
         payload = {{ latency_ms = 0, fail_replicas = [1], answers = [\"Release 2.0\", \"x\", \"Release 2.0 is out\"] }}\n\
         [[task]]\nid = \"plain\"\npool = \"writer\"\npayload = {{ latency_ms = 0 }}\n",
        p = pitboss
    )
}

fn inspect(s: &Scratch, task: &str, json_out: bool) -> Vec<u8> {
    let mut cmd = s.pitboss();
    cmd.arg("inspect").arg(s.run_dir()).arg(task);
    if json_out {
        cmd.arg("--json");
    }
    let out = cmd.output_within("pitboss inspect");
    assert!(out.status.success(), "inspect {task}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn inspect_shows_each_vote_and_the_outcome() {
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&workflow());
    assert_eq!(code, 0, "stderr: {}", String::from_utf8_lossy(&out.stderr));

    let doc: Value = serde_json::from_slice(&inspect(&s, "headline", true)).expect("JSON");
    let rounds = doc["votes"].as_array().unwrap_or_else(|| panic!("no `votes` in {doc}"));
    assert_eq!(rounds.len(), 1, "{doc}");
    let round = &rounds[0];
    assert_eq!(round["attempt"], 1);
    let mut cast: Vec<Value> = round["cast"].as_array().expect("cast").clone();
    cast.sort_by_key(|v| v["replica"].as_u64());
    assert_eq!(cast.len(), 3, "{round}");
    assert_eq!(cast[0]["worker"], "writer");
    assert_eq!(cast[0]["result"], json!("Release 2.0"));
    assert_eq!(cast[0]["abstained"], false);
    assert!(cast[0]["digest"].is_string(), "{round}");
    assert_eq!(cast[1]["abstained"], true);
    assert!(cast[1].get("result").is_none() || cast[1]["result"].is_null(), "{round}");
    assert!(cast[1]["error"].as_str().is_some_and(|e| e.contains("simulated failure")), "{round}");
    let outcome = &round["outcome"];
    assert_eq!(outcome["decision"], "reached", "{round}");
    assert_eq!(outcome["winner"], 2, "the judge picks the longest: {round}");
    assert_eq!(outcome["dissenters"], json!([0]));
    assert_eq!(outcome["abstained"], json!([1]));
    assert!(outcome["judge"].is_string(), "{round}");

    let plain: Value = serde_json::from_slice(&inspect(&s, "plain", true)).expect("JSON");
    assert!(plain.get("votes").is_none(), "a task without votes has no `votes`: {plain}");

    let text = String::from_utf8(inspect(&s, "headline", false)).expect("utf-8");
    assert!(text.contains("votes (attempt 1):"), "{text}");
    assert!(text.contains("replica 1 on writer abstained"), "{text}");
    assert!(text.contains("picked by the judge"), "{text}");
}
