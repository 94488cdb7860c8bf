//! The `gemini` preset: `gemini --output-format stream-json --prompt=…`, Google's Gemini
//! CLI run headless.
//!
//! `stream-json` rather than `json` (which the issue named): with `json` an API error
//! leaves stdout empty and puts the JSON on stderr after a stack trace, while
//! `stream-json` says everything on stdout, one event per line (docs/AGENT-CLIS.md §3.2;
//! fixtures in `tests/fixtures/agents/gemini/`, captured from the real CLI):
//! - `init` `session_id`: the session (`--resume ID` continues it, from the same cwd);
//! - `tool_use` `tool_name`, `parameters`: the agent acting (live progress);
//!   `tool_result` `status:"error"`: a tool that failed or was not offered
//!   (`tool_not_registered`: headless gemini offers no shell tool without
//!   `--approval-mode yolo`, the nearest thing to a permission denial);
//! - `message` `role:"assistant"` `delta:true`: pieces of the answer, concatenated;
//! - `result` `status` `"success"`/`"error"` with `error.message` and `stats`
//!   (`input_tokens`, `output_tokens` for the run; no dollar figure, so no `cost_usd`).
//!
//! The prompt goes as `--prompt=TEXT` (one argument, so a prompt starting with `-` stays a
//! prompt). Gemini appends a piped stdin to the prompt, so the runner gives it `/dev/null`.
//! Without a `model` it asks a model router first (and hung on a stand-in that could not
//! answer it): pools should name one.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{AgentReader, Call};
use crate::core::protocol::text_result;
use crate::core::truncate::{keep_tail, truncate_chars};

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "0.61.0";

/// Whether a retried attempt can continue the agent's session: observed, `--resume ID`
/// printed the same `session_id` and sent the earlier turns with the new prompt
/// (fixture `resume.out`); it works only from the cwd of the first attempt.
pub const RESUMES_SESSIONS: bool = true;

/// Characters of a tool's detail kept in a progress line.
const PROGRESS_CHARS: usize = 200;

/// Tool calls remembered for naming their results; past this, results go unnamed.
const TOOLS_REMEMBERED: usize = 256;

/// The argv of one attempt: `gemini --output-format stream-json --skip-trust [-m MODEL]
/// [--resume SESSION] ARGS… --prompt=PROMPT`. `--skip-trust` because headless gemini
/// refuses an untrusted cwd (exit 55) and a task's cwd is the operator's choice already.
/// Tools stay gemini's default (no shell); widen them with `args`
/// (`--approval-mode yolo`).
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv: Vec<String> = ["gemini", "--output-format", "stream-json", "--skip-trust"].map(String::from).to_vec();
    if let Some(model) = call.model {
        argv.extend(["-m".to_string(), model.to_string()]);
    }
    if let Some(session) = call.resume {
        argv.extend(["--resume".to_string(), session.to_string()]);
    }
    argv.extend(call.args.iter().cloned());
    argv.push(format!("--prompt={}", call.prompt));
    argv
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader {
    session: Option<String>,
    /// The assistant's text so far (its deltas, in order).
    answer: String,
    /// Tool names by `tool_id`, to name a failed result.
    tools: HashMap<String, String>,
    /// The `result` record's verdict: `Ok(())` success, `Err(message)` error.
    outcome: Option<Result<(), String>>,
}

impl AgentReader for Reader {
    fn line(&mut self, line: &str) -> Vec<Value> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        let field = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default();
        match field("type") {
            "init" => {
                let id = field("session_id");
                if id.is_empty() || self.session.as_deref() == Some(id) {
                    return Vec::new();
                }
                self.session = Some(id.to_string());
                vec![json!({"pitboss": "session", "id": id})]
            }
            "message" if field("role") == "assistant" => {
                self.answer.push_str(field("content"));
                keep_tail(&mut self.answer, super::llm::HELD_BYTES);
                Vec::new()
            }
            "tool_use" => {
                let name = field("tool_name");
                if self.tools.len() < TOOLS_REMEMBERED {
                    self.tools.insert(field("tool_id").to_string(), name.to_string());
                }
                let detail = event.get("parameters").map(tool_detail).unwrap_or_default();
                vec![progress(if detail.is_empty() {
                    format!("tool {name}")
                } else {
                    format!("tool {name}: {detail}")
                })]
            }
            "tool_result" if field("status") == "error" => {
                let name = self.tools.get(field("tool_id")).map_or("", String::as_str);
                let why = event.pointer("/error/message").and_then(Value::as_str).unwrap_or(field("output"));
                vec![progress(format!("tool {name} failed: {why}"))]
            }
            "result" => self.result(&event),
            _ => Vec::new(),
        }
    }

    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value> {
        match (self.outcome.take(), exit_code) {
            (Some(Err(error)), _) => vec![json!({"status": "failed", "error": error})],
            (Some(Ok(())), _) | (None, Some(0)) => {
                vec![json!({"status": "completed", "result": text_result(&self.answer)})]
            }
            // No result record and a failing exit (gemini puts some errors on stderr
            // only): the runner's rule quotes stderr's last line with the exit code.
            (None, _) => Vec::new(),
        }
    }
}

impl Reader {
    fn result(&mut self, event: &Value) -> Vec<Value> {
        let mut lines = Vec::new();
        let stats = event.get("stats");
        let count = |k: &str| stats.and_then(|s| s.get(k)).and_then(Value::as_u64);
        if let (Some(input), Some(output)) = (count("input_tokens"), count("output_tokens")) {
            lines.push(json!({"pitboss": "usage", "input_tokens": input, "output_tokens": output}));
        }
        self.outcome = Some(match event.get("status").and_then(Value::as_str) {
            Some("success") => Ok(()),
            _ => {
                let raw = event.pointer("/error/message").and_then(Value::as_str).unwrap_or("gemini reported an error");
                Err(readable_error(raw))
            }
        });
        lines
    }
}

/// The part of a tool call's parameters that says what it does: the command, path or
/// query when there is one, else the first text parameter.
fn tool_detail(params: &Value) -> String {
    let text = |k: &str| params.get(k).and_then(Value::as_str);
    ["command", "file_path", "path", "dir_path", "pattern", "query", "url"]
        .into_iter()
        .find_map(text)
        .or_else(|| params.as_object()?.values().find_map(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn progress(msg: String) -> Value {
    let first = msg.lines().next().unwrap_or_default();
    json!({"pitboss": "progress", "msg": truncate_chars(first, PROGRESS_CHARS)})
}

/// Gemini's API errors read `[API Error: {"error":{"code":400,…,"message":"…"}}]`:
/// then `API Error 400: …` with the API's own message; anything else as it is.
fn readable_error(raw: &str) -> String {
    let trimmed = raw.trim();
    let inner = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(trimmed);
    let Some(body) = inner.strip_prefix("API Error:") else {
        return trimmed.to_string();
    };
    let parsed = serde_json::from_str::<Value>(body.trim()).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    match error.and_then(|e| e.get("message")).and_then(Value::as_str) {
        Some(message) => match error.and_then(|e| e.get("code")).and_then(Value::as_i64) {
            Some(code) => format!("API Error {code}: {message}"),
            None => format!("API Error: {message}"),
        },
        None => inner.to_string(),
    }
}
