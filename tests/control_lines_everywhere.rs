//! Control lines from every kind of local worker (issue 17) with the real binary: a
//! persistent worker's `usage`, `session` and `flag` lines are recorded for the task
//! it is serving, as a spawned attempt's are; a gate's check program that prints a
//! usage line is charged to the task, the event naming the gate; an agent preset that
//! prints JSON events keeps only its reader's lines in the attempt's output, the raw
//! lines in `TASK.ATTEMPT.stdout.raw`.

mod common;

use common::{read_events, toml_string, OutputWithin, Scratch};
use serde_json::Value;

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn inspect_json(s: &Scratch) -> Value {
    let out = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).output_within("pitboss inspect --json");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_persistent_workers_usage_session_and_flag_lines_are_recorded_for_its_task() {
    // One process serves every task: per task a usage line, its session (twice: said
    // once), a flag, a torn usage line, then the reply.
    let script = r#"while IFS= read -r line; do
        id=$(printf '%s' "$line" | grep -o '"id":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
        echo '{"pitboss":"usage","cost_usd":0.5,"input_tokens":100,"output_tokens":7}'
        echo "{\"pitboss\":\"session\",\"id\":\"S-$id\"}"
        echo "{\"pitboss\":\"session\",\"id\":\"S-$id\"}"
        echo '{"pitboss":"flag","flag":"looping","detail":"the same call"}'
        echo '{"pitboss":"usage","cost_usd":'
        echo 'log {"pitboss":"usage","cost_usd":9}'
        echo "{\"id\":\"$id\",\"pid\":$$}"
    done"#;
    let workflow = format!(
        "[[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 1\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\n",
        toml_string(script)
    );
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&workflow);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(doc["tasks"][0]["result"]["pid"], doc["tasks"][1]["result"]["pid"], "one process served both");
    let events = read_events(&s.run_dir());
    let usage = of_kind(&events, "usage_recorded");
    assert_eq!(usage.len(), 2, "one good usage line per task, the torn and quoted ones not counted: {usage:?}");
    for (line, task) in usage.iter().zip(["a", "b"]) {
        assert_eq!((line["task"].as_str(), line["pool"].as_str()), (Some(task), Some("p")), "{line}");
        assert_eq!(line["cost_usd"], 0.5);
    }
    // Each usage line is in the log before its task's end.
    let at = |kind: &str, task: &str| events.iter().position(|e| e["type"] == kind && e["task"] == task);
    assert!(at("usage_recorded", "b") < at("attempt_succeeded", "b"));
    let sessions: Vec<(&str, &str)> = of_kind(&events, "session_recorded")
        .iter()
        .map(|e| (e["task"].as_str().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(sessions, [("a", "S-a"), ("b", "S-b")]);
    let flags = of_kind(&events, "attempt_flagged");
    assert_eq!(flags.len(), 2, "{flags:?}");
    assert_eq!(flags[0]["flag"], "looping");
    // The torn usage line is said in the task's output (its process's stderr).
    let failed_note = events
        .iter()
        .filter(|e| e["type"] == "attempt_succeeded")
        .filter_map(|e| e["output"]["stderr"].as_str())
        .any(|err| err.contains("pitboss: ignored a usage line: a usage line is not valid JSON"));
    assert!(failed_note, "{:?}", of_kind(&events, "attempt_succeeded"));
    let doc = inspect_json(&s);
    assert_eq!(doc["spend"]["run"]["cost_usd"], 1.0, "{}", doc["spend"]);
    assert_eq!(doc["spend"]["pools"]["p"]["input_tokens"], 200);
}

#[test]
fn a_gates_usage_line_is_charged_to_its_task_and_names_the_gate() {
    let worker = r#"cat >/dev/null; echo '{"pitboss":"usage","cost_usd":1.0}'; echo '{"ok":true}'"#;
    let check = r#"cat >/dev/null; echo '{"pitboss":"usage","cost_usd":0.25,"output_tokens":3}'; exit 0"#;
    let workflow = format!(
        "[[pool]]\nname = \"w\"\ncommand = [\"sh\", \"-c\", {}]\n\
         [[task]]\nid = \"t\"\ngates = [ {{ command = [\"sh\", \"-c\", {}] }} ]\n",
        toml_string(worker),
        toml_string(check)
    );
    let s = Scratch::new();
    let (code, doc, out) = s.run_json(&workflow);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(doc["tasks"][0]["state"], "completed", "{doc}");
    let events = read_events(&s.run_dir());
    let usage = of_kind(&events, "usage_recorded");
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert!(usage[0].get("gate").is_none(), "the worker's own line names no gate: {}", usage[0]);
    assert_eq!(usage[1]["gate"], 1, "{}", usage[1]);
    assert_eq!((usage[1]["task"].as_str(), usage[1]["pool"].as_str()), (Some("t"), Some("w")));
    let doc = inspect_json(&s);
    assert_eq!(doc["tasks"][0]["spend"]["total"]["cost_usd"], 1.25, "{}", doc["tasks"][0]);
    assert_eq!(doc["spend"]["run"]["cost_usd"], 1.25);
}

#[test]
fn an_event_agents_output_keeps_its_readers_lines_and_its_raw_lines_go_to_the_raw_file() {
    // A stand-in `claude` printing what the real CLI printed for "say hello".
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents/claude/text.jsonl");
    let s = Scratch::new();
    let bin = s.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let claude = s.write("bin/claude", &format!("#!/bin/sh\ncat >/dev/null\ncat '{}'\n", fixture.display()));
    std::fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let workflow =
        "[[pool]]\nname = \"c\"\npreset = \"claude\"\n[[task]]\nid = \"hello\"\npayload = { prompt = \"say hello\" }\n";
    let file = s.write("workflow.toml", workflow);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = s
        .pitboss()
        .env("PATH", path)
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run (claude stand-in)");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    let done = of_kind(&events, "attempt_succeeded");
    assert_eq!(done.len(), 1, "{events:?}");
    // The stored output is the reader's lines only: progress, session, usage, the envelope.
    let stdout = done[0]["output"]["stdout"].as_str().unwrap_or_default();
    assert!(!stdout.contains("\"type\":\"system\""), "no raw stream-json line in the output: {stdout}");
    assert!(stdout.contains("{\"pitboss\":\"session\""), "{stdout}");
    assert!(!of_kind(&events, "session_recorded").is_empty() && !of_kind(&events, "usage_recorded").is_empty());
    // The raw lines are on disk as printed, for inspect and debugging.
    let raw = std::fs::read(s.run_dir().join("output/hello.1.stdout.raw")).expect("the raw file");
    assert_eq!(raw, std::fs::read(&fixture).unwrap());
}

#[test]
fn a_persistent_workers_usage_line_printed_after_its_reply_is_charged_to_that_task() {
    // Each reply comes first, then the spend: nothing is in flight when it is read
    // (or already the next task is), and the line names the task it was for. (The
    // task's own id is the line's first "id": its inputs hold the dependency's reply,
    // `{"id": …}` too.)
    let script = r#"while IFS= read -r line; do
        id=$(printf '%s' "$line" | grep -o '"id":"[^"]*"' | head -n 1 | cut -d '"' -f 4)
        echo "{\"id\":\"$id\"}"
        echo "{\"pitboss\":\"usage\",\"task\":\"$id\",\"cost_usd\":0.25}"
    done"#;
    let workflow = format!(
        "[[pool]]\nname = \"p\"\nmode = \"persistent\"\ncommand = [\"sh\", \"-c\", {}]\nconcurrency = 1\n\
         [[task]]\nid = \"a\"\n[[task]]\nid = \"b\"\ndepends_on = [\"a\"]\n[[task]]\nid = \"c\"\ndepends_on = [\"b\"]\n",
        toml_string(script)
    );
    let s = Scratch::new();
    let (code, _, out) = s.run_json(&workflow);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    let usage = of_kind(&events, "usage_recorded");
    // The last task's line may come after the run ended; the others' cannot.
    let tasks: Vec<&str> = usage.iter().filter_map(|u| u["task"].as_str()).collect();
    assert!(tasks.starts_with(&["a", "b"]), "each charged to its own task: {usage:?}");
    assert!(usage.iter().all(|u| u["cost_usd"] == 0.25 && u["pool"] == "p" && u["attempt"] == 1), "{usage:?}");
}
