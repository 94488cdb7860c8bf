//! The `claude` preset end to end with the real CLI (`@anthropic-ai/claude-code@2.1.197`
//! from npm, cached under target/tmp/npm) against the Messages-API stand-in of
//! `agent_common`: a task completes with the stand-in's text and records its session;
//! an API error is a dead letter carrying the API's message; a denied tool is flagged;
//! and after kill -9 of the manager mid-request, `resume` continues the session
//! (`--resume`, the stand-in sees the earlier turns).

mod agent_common;
mod common;
mod npm_common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use agent_common::StandIn;
use common::{
    alive, kill_pid, read_events, task, toml_string, wait_for, wait_within, KillOnPanic, OutputWithin, Scratch,
};
use serde_json::Value;

const CLAUDE: &str = "@anthropic-ai/claude-code@2.1.197";

/// The folder holding the `claude` command, once installed (`None`: skipped loudly).
fn claude_bin() -> Option<PathBuf> {
    npm_common::installed(CLAUDE, "claude").map(|c| c.parent().expect("bin folder").to_path_buf())
}

/// A workflow with a `claude` preset pool on `stand_in` and `tasks`.
fn workflow(s: &Scratch, stand_in: &StandIn, tasks: &str) -> String {
    let (home, ws) = (s.path().join("claude-home"), s.path().join("ws"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&ws).unwrap();
    format!(
        "[[pool]]\nname = \"claude\"\npreset = \"claude\"\nconcurrency = 2\ncwd = {}\n\
         secret_env = [\"ANTHROPIC_API_KEY\"]\n\
         env = {{ HOME = {}, ANTHROPIC_BASE_URL = {}, CLAUDE_CODE_MAX_RETRIES = \"0\" }}\n{tasks}",
        toml_string(&ws.display().to_string()),
        toml_string(&home.display().to_string()),
        toml_string(&stand_in.base_url()),
    )
}

/// `pitboss …` with `claude` on PATH and the stand-in's key in the manager's
/// environment (passed to the pool by its `secret_env` only).
fn pitboss(s: &Scratch, bin: &Path) -> std::process::Command {
    let mut cmd = s.pitboss();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    cmd.env("PATH", path).env("ANTHROPIC_API_KEY", "test");
    cmd
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn inspect_task(s: &Scratch, id: &str) -> Value {
    let out = s.pitboss().args(["inspect", "--json"]).arg(s.run_dir()).arg(id).output_within("pitboss inspect TASK");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn claude_completes_with_the_stand_ins_text_records_its_session_and_flags_a_denied_tool() {
    let Some(bin) = claude_bin() else { return };
    let stand_in = StandIn::start();
    let s = Scratch::new();
    let tasks = "[[task]]\nid = \"hello\"\npool = \"claude\"\npayload = { prompt = \"say hello\" }\n\
                 [[task]]\nid = \"json\"\npayload = { question = \"REPLY_JSON\" }\n\
                 [[task]]\nid = \"tool\"\npool = \"claude\"\npayload = { prompt = \"USE_TOOL please\" }\n";
    let mut wf = workflow(&s, &stand_in, tasks);
    // A pool of its own with a prompt template.
    wf = wf.replace("[[task]]\nid = \"json\"", "[[task]]\nid = \"json\"\npool = \"templated\"");
    let templated = workflow(&s, &stand_in, "")
        .replace("name = \"claude\"", "name = \"templated\"")
        .replace("preset = \"claude\"", "preset = \"claude\"\nprompt = \"Answer {payload.question} please\"");
    let file = s.write("workflow.toml", &format!("{templated}\n{wf}"));
    let out = pitboss(&s, &bin)
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run with claude");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    // The result is the stand-in's text (two messages: claude's reminder and the prompt).
    assert_eq!(task(&doc, "hello")["result"], "STANDIN-OK messages=2", "{doc}");
    // A template fills the prompt; a JSON answer is the result as JSON.
    assert_eq!(task(&doc, "json")["result"], serde_json::json!({"ok": true, "messages": 2}), "{doc}");
    assert!(stand_in.wait_for_request("Answer REPLY_JSON please", Duration::ZERO), "the template reached claude");

    // The session id, as claude said it, in the log and in `inspect --json TASK`.
    let events = read_events(&s.run_dir());
    let sessions = of_type(&events, "session_recorded");
    let hello = sessions.iter().find(|e| e["task"] == "hello").expect("hello's session recorded");
    let id = hello["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let detail = inspect_task(&s, "hello");
    assert_eq!(detail["task"]["session"], id, "{detail}");
    // Recorded during the attempt, before its end.
    let at = |kind: &str| events.iter().position(|e| e["type"] == kind && e["task"] == "hello");
    assert!(at("session_recorded").unwrap() < at("attempt_succeeded").unwrap(), "recorded as soon as it is seen");

    // What the attempt cost, as claude's result said, is recorded (a usage line of the
    // preset's reader, counted as any worker's) and is in the run's spend.
    let usage = of_type(&events, "usage_recorded");
    let spent = usage.iter().find(|e| e["task"] == "hello").expect("hello's usage recorded");
    assert!(spent["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "cost > 0: {spent}");
    assert!(spent["input_tokens"].as_u64().is_some_and(|n| n > 0), "tokens: {spent}");
    assert!(doc["spend"]["run"]["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "the run's spend: {doc}");

    // The denied `touch` is flagged with the tool named; the task still completes.
    let flags = of_type(&events, "attempt_flagged");
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["task"], "tool");
    assert_eq!(flags[0]["flag"], "denied_permission");
    assert_eq!(flags[0]["tools"], serde_json::json!(["Bash"]));
    assert_eq!(task(&doc, "tool")["state"], "completed");
    assert_eq!(inspect_task(&s, "tool")["task"]["flags"][0]["flag"], "denied_permission");
    // The agent never saw the task JSON: stdin is the prompt.
    assert!(!stand_in.requests().iter().any(|r| r.to_string().contains("\\\"payload\\\"")), "no task JSON in a prompt");
}

#[test]
fn an_api_error_is_a_dead_letter_with_the_apis_message() {
    let Some(bin) = claude_bin() else { return };
    let stand_in = StandIn::start();
    let s = Scratch::new();
    let tasks = "[[task]]\nid = \"bad\"\npayload = { prompt = \"PLEASE_FAIL now\" }\nretry = { max_attempts = 1 }\n";
    let file = s.write("workflow.toml", &workflow(&s, &stand_in, tasks));
    let out = pitboss(&s, &bin)
        .args(["run", "--headless", "--json", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .output_within("pitboss run with a failing API");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let bad = task(&doc, "bad");
    assert_eq!(bad["state"], "dead_lettered", "{doc}");
    let error = bad["error"].as_str().unwrap_or_default();
    assert!(error.contains("API Error: 400 stand-in refuses: PLEASE_FAIL"), "{error}");
}

#[test]
fn after_kill_9_of_the_manager_resume_continues_the_claude_session() {
    let Some(bin) = claude_bin() else { return };
    let stand_in = StandIn::start();
    let s = Scratch::new();
    let tasks = "[[task]]\nid = \"long\"\npayload = { prompt = \"BLOCK_ONCE write the report\" }\n";
    let file = s.write("workflow.toml", &workflow(&s, &stand_in, tasks));
    let mut manager = pitboss(&s, &bin)
        .args(["run", "--headless", "--state-dir"])
        .arg(s.run_dir())
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pitboss");
    let guard = KillOnPanic::new(&[manager.id()]);
    // The request is held by the stand-in and the session recorded: kill -9 then.
    assert!(stand_in.wait_for_request("BLOCK_ONCE", common::deadline()), "claude asked the stand-in");
    let recorded = wait_for(common::deadline(), || !of_type(&read_events(&s.run_dir()), "session_recorded").is_empty());
    assert!(recorded, "the session was recorded while the attempt ran");
    let events = read_events(&s.run_dir());
    let session = of_type(&events, "session_recorded")[0]["id"].as_str().unwrap().to_string();
    let agent_pid = of_type(&events, "attempt_spawned")[0]["pid"].as_i64().unwrap() as i32;
    // claude writes the conversation to HOME/.claude/projects/…/SESSION.jsonl a moment
    // after it says the session: killed before that (a loaded box), `--resume` finds no
    // conversation and the test would measure claude's timing, not pitboss's resume.
    let home = s.path().join("claude-home");
    let saved = wait_for(common::deadline(), || transcript_holds(&home, &session, "BLOCK_ONCE"));
    assert!(saved, "claude saved session {session} under {}", home.display());
    kill_pid(manager.id() as i32);
    assert!(wait_within(&mut manager, "the killed manager").code().is_none());
    drop(guard);
    // The guardian ends the dead manager's workers; by pid if it has not in time.
    if !wait_for(common::deadline(), || !alive(agent_pid)) {
        kill_pid(agent_pid);
        panic!("claude (pid {agent_pid}) outlived its killed manager");
    }

    let out =
        pitboss(&s, &bin).args(["resume", "--headless", "--json"]).arg(s.run_dir()).output_within("pitboss resume");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{doc}\n{}", String::from_utf8_lossy(&out.stderr));
    let events = read_events(&s.run_dir());
    // The retried attempt carried the session...
    let spawned = of_type(&events, "attempt_spawned");
    assert_eq!(spawned.len(), 2, "{spawned:?}");
    assert_eq!(spawned[1]["resumes"], session.as_str(), "the retry resumes the session");
    assert!(spawned[0].get("resumes").is_none());
    let detail = inspect_task(&s, "long");
    assert_eq!(detail["task"]["resumed_by"], serde_json::json!([spawned[1]["attempt"]]), "{detail}");
    // ... and claude continued it: the stand-in's last request holds the earlier
    // prompt and the continuation, the reply counts them.
    let requests = stand_in.requests();
    let last = requests.last().expect("requests").to_string();
    assert!(last.contains("BLOCK_ONCE write the report"), "the earlier turn is in the resumed conversation: {last}");
    assert!(last.contains("This is a continuation"), "{last}");
    let result = task(&doc, "long")["result"].as_str().unwrap_or_default().to_string();
    let messages: usize = result.trim_start_matches("STANDIN-OK messages=").parse().unwrap_or(0);
    assert!(messages > 2, "more than a fresh conversation's two messages: {result}");
    // The same session throughout.
    let ids: Vec<&str> = of_type(&events, "session_recorded").iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(ids.iter().all(|i| *i == session), "{ids:?}");
}

/// True when a `SESSION.jsonl` under `dir` (any depth) contains `text`.
fn transcript_holds(dir: &Path, session: &str, text: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            return transcript_holds(&path, session, text);
        }
        path.file_name().is_some_and(|n| n.to_string_lossy() == format!("{session}.jsonl"))
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(text))
    })
}
