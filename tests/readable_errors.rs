//! Issue 15 item 11: a task's error is the error (exit code and the last meaningful
//! stderr line), the same in `--json`, `inspect` and `dlq`; dead letters group by
//! cause with exit codes apart, each group listing its members.

mod common;

use common::*;

const ONE_TRY: &str = "[defaults]\nretry = { max_attempts = 1 }\n";

/// Tasks `usage1`, `usage2` exit 64, `crash` exits 1, `same64` and `same1` say the
/// same words with exit 64 and 1, each after log lines and a
/// progress bar on stderr; `ok` succeeds.
fn workflow() -> String {
    let script = r#"cat >/dev/null
echo "INFO starting agent" >&2
echo "INFO loading model 7b" >&2
case "$PITBOSS_TASK_ID" in
  usage*) echo "usage: agent --model NAME" >&2; echo "[#####     ] 50%" >&2; exit 64;;
  same64) echo "fatal: giving up" >&2; exit 64;;
  same1) echo "fatal: giving up" >&2; exit 1;;
  crash) echo "Error: out of credits (account 42)" >&2; echo "" >&2; echo "=====" >&2; exit 1;;
esac
echo '{}'"#;
    format!(
        "{ONE_TRY}{}[[task]]\nid = \"usage1\"\n[[task]]\nid = \"usage2\"\n[[task]]\nid = \"crash\"\n[[task]]\nid = \"same64\"\n[[task]]\nid = \"same1\"\n[[task]]\nid = \"ok\"\n",
        sh_pool("p", script, "")
    )
}

#[test]
fn the_error_is_the_exit_code_and_the_last_meaningful_line_everywhere() {
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&workflow());
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out.stderr));
    let crash = task(&doc, "crash")["error"].as_str().expect("crash has an error").to_string();
    assert!(crash.ends_with("exit code 1: Error: out of credits (account 42)"), "{crash}");
    assert!(!crash.contains("INFO"), "the summary starts with a log line: {crash}");
    let usage = task(&doc, "usage1")["error"].as_str().expect("usage1 has an error").to_string();
    assert!(usage.ends_with("exit code 64: usage: agent --model NAME"), "{usage}");

    // inspect's table shows the same words.
    let inspect = s.pitboss().arg("inspect").arg(s.run_dir()).output_within("pitboss inspect");
    let table = String::from_utf8_lossy(&inspect.stdout);
    assert!(table.contains("exit code 1: Error: out of credits (account 42)"), "{table}");
    assert!(!table.contains("INFO starting"), "{table}");
}

#[test]
fn dead_letters_group_by_exit_code_and_list_their_members() {
    let s = Scratch::new();
    let (code, _, _) = s.run_json(&workflow());
    assert_eq!(code, 1);
    let out = s.pitboss().args(["dlq", "--json"]).arg(s.run_dir()).output_within("pitboss dlq --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dlq --json is JSON");
    let letters = doc["dead_letters"].as_array().expect("dead letters");
    let group_of =
        |id: &str| letters.iter().find(|l| l["id"] == id).map(|l| l["group"].as_str().unwrap_or_default().to_string());
    assert_eq!(group_of("usage1"), group_of("usage2"));
    assert_ne!(group_of("usage1"), group_of("crash"), "{doc}");
    // The same words, another exit code: another cause.
    assert_ne!(group_of("same64"), group_of("same1"), "exit 64 and exit 1 share a group: {doc}");
    let groups = doc["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 4, "{doc}");
    // Biggest first, each with its members.
    assert_eq!(groups[0]["tasks"], serde_json::json!(["usage1", "usage2"]), "{doc}");
    assert!(groups[0]["group"].as_str().unwrap_or_default().contains("exit code 64"), "{doc}");
    let singles: Vec<&serde_json::Value> = groups[1..].iter().map(|g| &g["tasks"]).collect();
    assert!(singles.contains(&&serde_json::json!(["crash"])), "{doc}");

    let text = s.pitboss().arg("dlq").arg(s.run_dir()).output_within("pitboss dlq");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("2 × attempts spent (#/#): exit code 64: usage: agent --model NAME: usage1, usage2"),
        "{text}"
    );
}
