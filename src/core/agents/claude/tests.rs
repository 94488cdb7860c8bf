//! The reader on real stream-json (tests/fixtures/agents/claude, see its README).

use serde_json::{json, Value};

use super::*;
use crate::core::agents::{Call, Preset};

fn read(name: &str, exit: Option<i32>) -> Vec<Value> {
    // Compiled in: the core reads no files, not even in its tests.
    let text = match name {
        "text" => include_str!("../../../../tests/fixtures/agents/claude/text.jsonl"),
        "json_result" => include_str!("../../../../tests/fixtures/agents/claude/json_result.jsonl"),
        "api_error" => include_str!("../../../../tests/fixtures/agents/claude/api_error.jsonl"),
        "denied_tool" => include_str!("../../../../tests/fixtures/agents/claude/denied_tool.jsonl"),
        "looping" => include_str!("../../../../tests/fixtures/agents/claude/looping.jsonl"),
        other => panic!("no fixture {other}"),
    };
    let mut reader = Preset::Claude.reader();
    let mut out = Vec::new();
    for line in text.lines() {
        out.extend(reader.line(line));
    }
    out.extend(reader.end(exit));
    out
}

fn of_kind<'a>(out: &'a [Value], kind: &str) -> Vec<&'a Value> {
    out.iter().filter(|v| v["pitboss"] == kind).collect()
}

fn envelope(out: &[Value]) -> &Value {
    let envelopes: Vec<&Value> = out.iter().filter(|v| v.get("status").is_some()).collect();
    assert_eq!(envelopes.len(), 1, "{out:#?}");
    assert!(std::ptr::eq(envelopes[0], out.last().unwrap()), "the envelope comes last");
    envelopes[0]
}

#[test]
fn a_plain_answer_completes_with_its_text_session_and_usage() {
    let out = read("text", Some(0));
    assert_eq!(envelope(&out), &json!({"status": "completed", "result": "STANDIN-OK messages=2"}));
    let sessions = of_kind(&out, "session");
    assert_eq!(sessions.len(), 1, "one session line, from the first line");
    assert_eq!(out[0]["pitboss"], "session");
    assert_eq!(sessions[0]["id"].as_str().unwrap().len(), 36);
    let usage = of_kind(&out, "usage");
    assert_eq!(usage.len(), 1);
    assert!(usage[0]["cost_usd"].as_f64().unwrap() > 0.0, "{}", usage[0]);
    assert_eq!(usage[0]["input_tokens"], 100);
    assert_eq!(usage[0]["output_tokens"], 20);
    assert_eq!(usage[0]["num_turns"], 1);
    let progress: Vec<String> =
        of_kind(&out, "progress").iter().map(|p| p["msg"].as_str().unwrap().to_string()).collect();
    assert!(progress[0].starts_with("claude 2.1.197 started"), "{progress:?}");
    assert!(progress.contains(&"says: STANDIN-OK messages=2".to_string()), "{progress:?}");
    assert!(of_kind(&out, "flag").is_empty());
}

#[test]
fn a_json_result_text_is_parsed() {
    let out = read("json_result", Some(0));
    assert_eq!(envelope(&out)["result"], json!({"ok": true, "messages": 2}));
}

#[test]
fn an_api_error_fails_with_the_apis_message_though_subtype_says_success() {
    let out = read("api_error", Some(1));
    assert_eq!(envelope(&out), &json!({"status": "failed", "error": "API Error: 400 stand-in refuses: PLEASE_FAIL"}));
    // Whatever the exit code: is_error decides.
    assert_eq!(envelope(&read("api_error", Some(0)))["status"], "failed");
}

#[test]
fn a_denied_tool_is_flagged_with_the_tool_named_and_the_call_shown() {
    let out = read("denied_tool", Some(0));
    assert_eq!(envelope(&out)["status"], "completed", "a denial does not fail the run");
    let flags = of_kind(&out, "flag");
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["flag"], "denied_permission");
    assert_eq!(flags[0]["tools"], json!(["Bash"]));
    assert_eq!(flags[0]["detail"], "Bash: touch standin-file");
    let progress: Vec<&str> = of_kind(&out, "progress").iter().map(|p| p["msg"].as_str().unwrap()).collect();
    assert!(progress.contains(&"tool Bash: touch standin-file"), "{progress:?}");
}

#[test]
fn the_same_call_five_times_is_looping_once_and_max_turns_fails_with_its_errors() {
    let out = read("looping", Some(1));
    let flags = of_kind(&out, "flag");
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["flag"], "looping");
    assert_eq!(flags[0]["tools"], json!(["Bash"]));
    assert!(flags[0]["detail"].as_str().unwrap().contains("5 times in a row"), "{}", flags[0]);
    let env = envelope(&out);
    assert_eq!(env["status"], "failed");
    assert!(env["error"].as_str().unwrap().contains("maximum number of turns"), "{env}");
}

#[test]
fn four_identical_calls_or_alternating_ones_are_not_a_loop() {
    let call = |cmd: &str| {
        json!({"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":cmd}}]}})
            .to_string()
    };
    let mut reader = Reader::default();
    let mut flags = 0;
    for cmd in ["a", "a", "a", "a", "b", "a", "b", "a", "b", "a"] {
        flags += reader.line(&call(cmd)).iter().filter(|v| v["pitboss"] == "flag").count();
    }
    assert_eq!(flags, 0);
}

#[test]
fn no_result_record_leaves_a_failed_exit_to_the_usual_rule() {
    let mut reader = Reader::default();
    assert!(reader.line("Error: When using --print, --output-format=stream-json requires --verbose").is_empty());
    assert!(reader.end(Some(1)).is_empty(), "stderr and the exit code say it");
    let mut reader = Reader::default();
    assert_eq!(reader.end(Some(0))[0]["status"], "failed");
}

#[test]
fn argv_puts_model_resume_and_extra_args_after_the_preset_flags() {
    let args = vec!["--allowedTools".to_string(), "Bash(git *)".to_string()];
    let call = Call { prompt: "ignored: on stdin", model: Some("sonnet"), args: &args, resume: Some("S1") };
    assert_eq!(
        argv(&call),
        [
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            "--resume",
            "S1",
            "--allowedTools",
            "Bash(git *)"
        ]
    );
    let plain = Call { prompt: "p", model: None, args: &[], resume: None };
    assert_eq!(argv(&plain).len(), 5);
}
