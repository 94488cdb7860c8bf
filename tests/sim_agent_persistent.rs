//! `pitboss sim-agent --persistent` (issue 14): the bundled agent as a persistent
//! worker, one task JSON per stdin line and one reply line per task, alone and
//! serving a real run (the worker of benches/throughput.sh).

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{finish_within, task, Scratch};
use serde_json::{json, Value};

#[test]
fn it_answers_each_line_by_id_in_order_until_stdin_ends() {
    let s = Scratch::new();
    let mut child = s
        .pitboss()
        .args(["sim-agent", "--persistent", "--role", "w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sim-agent");
    let mut pipe = child.stdin.take().expect("stdin");
    let lines = [
        json!({"id": "a", "attempt": 1, "payload": {}}),
        json!({"id": "b", "attempt": 1, "payload": {"fail_attempts": 1}}),
        json!({"id": "b", "attempt": 2, "payload": {"fail_attempts": 1, "result": {"x": 1}}}),
    ];
    for line in &lines {
        writeln!(pipe, "{line}").expect("write a task line");
    }
    writeln!(pipe, "not json").expect("write a bad line");
    drop(pipe);
    let out = finish_within(child, "sim-agent --persistent");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("reply {l:?} is not JSON: {e}")))
        .collect();
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert_eq!(replies[0], json!({"id": "a", "status": "completed", "result": {"by": "w", "task": "a"}}));
    assert_eq!(replies[1]["id"], "b");
    assert_eq!(replies[1]["status"], "failed");
    assert_eq!(replies[2], json!({"id": "b", "status": "completed", "result": {"x": 1}}));
    assert_eq!(replies[3]["status"], "failed", "a bad line gets a failure, not silence");
}

#[test]
fn it_serves_a_persistent_pool_with_retries() {
    let s = Scratch::new();
    let exe = env!("CARGO_BIN_EXE_pitboss");
    let mut wf = format!(
        "[defaults]\nretry = {{ max_attempts = 2, initial = \"10ms\" }}\n\
         [[pool]]\nname = \"p\"\nmode = \"persistent\"\nconcurrency = 4\nper_worker = 2\n\
         command = [{exe:?}, \"sim-agent\", \"--persistent\"]\n"
    );
    for i in 0..40 {
        let payload = if i % 10 == 0 { "{ fail_attempts = 1 }" } else { "{ n = 1 }" };
        wf += &format!("[[task]]\nid = \"t{i:02}\"\npayload = {payload}\n");
    }
    let (code, doc, out) = s.run_json(&wf);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    for i in 0..40 {
        let t = task(&doc, &format!("t{i:02}"));
        assert_eq!(t["state"], "completed", "{t}");
        assert_eq!(t["attempts"], if i % 10 == 0 { 2 } else { 1 }, "{t}");
    }
}
