//! The `codex` preset: `codex exec --json`, OpenAI's Codex CLI run headless, one turn.
//!
//! Its stdout is JSONL events (docs/AGENT-CLIS.md §2.2; fixtures in
//! `tests/fixtures/agents/codex/`, captured from the real CLI):
//! - `thread.started` `thread_id`: the session (`codex exec resume ID PROMPT` continues
//!   it, from any cwd);
//! - `item.started`/`item.completed` with an `item.type`: `command_execution`,
//!   `file_change`, `mcp_tool_call`, `web_search` are the agent acting (live progress),
//!   `agent_message` is what it says (the last one is the result), `error` items are
//!   warnings (e.g. "Model metadata … not found"), never fatal;
//! - `turn.completed` `usage`: tokens, no dollar figure (so no `cost_usd`: pitboss never
//!   invents a price). The figures are the **thread's running total** (observed: 100,
//!   200, 300 input tokens over a run and two resumes), so each usage line says what
//!   grew since the last one this reader saw, and a resumed attempt's first line, which
//!   counts the earlier attempts' turns again, is cut down by the engine to what is new
//!   ([`super::carried`]);
//! - `turn.failed` `error.message`: the failure, whatever else was printed; the message
//!   is the API's body as a string, whose own `error.message` is the readable part. A
//!   top-level `error` event alone is not fatal (0.171 prints retry notices with it).
//!
//! The prompt is the last argument, after `--` (a prompt starting with `-` stays a
//! prompt). Codex appends a piped stdin to the prompt as a `<stdin>` block, so the
//! runner gives it `/dev/null` (DESIGN §13 wiring, docs/AGENT-CLIS.md trap 1).

use serde_json::{json, Value};

use super::{AgentReader, Call};
use crate::core::protocol::text_result;
use crate::core::truncate::truncate_chars;

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "codex-cli 0.171.0";

/// Whether a retried attempt can continue the agent's session: observed,
/// `codex exec resume --json THREAD_ID PROMPT` printed the same `thread_id` and sent the
/// earlier turns with the new prompt (fixture `resume.out`).
pub const RESUMES_SESSIONS: bool = true;

/// Whether `turn.completed` usage is the thread's running total, earlier attempts'
/// turns included: observed, a resumed thread of one 100-token turn reported 200
/// after its second (fixtures `success.out`, `resume.out`). The engine takes what the
/// thread's earlier attempts recorded out of a resumed attempt's usage.
pub const USAGE_IS_SESSION_TOTAL: bool = true;

/// Characters of a command or message kept in a progress line.
const PROGRESS_CHARS: usize = 200;

/// The argv of one attempt: `codex exec [resume] --json --skip-git-repo-check [-m MODEL]
/// ARGS… -- [SESSION] PROMPT`. `--skip-git-repo-check` because a task's cwd need not be
/// a git repository (codex refuses to run outside one otherwise); the sandbox stays
/// codex's default (read-only), widened by the pool's `args` (`-s workspace-write`).
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["codex".into(), "exec".into()];
    if call.resume.is_some() {
        argv.push("resume".into());
    }
    argv.extend(["--json".to_string(), "--skip-git-repo-check".to_string()]);
    if let Some(model) = call.model {
        argv.extend(["-m".to_string(), model.to_string()]);
    }
    argv.extend(call.args.iter().cloned());
    argv.push("--".into());
    if let Some(session) = call.resume {
        argv.push(session.to_string());
    }
    argv.push(call.prompt.to_string());
    argv
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader {
    /// The thread id last reported, so a repeated `thread.started` is not re-sent.
    session: Option<String>,
    /// The text of the last `agent_message`: the result.
    answer: Option<String>,
    /// The readable message of `turn.failed`, once seen.
    failure: Option<String>,
    /// The last top-level `error` message: quoted if codex exits non-zero without a
    /// `turn.failed`.
    last_error: Option<String>,
    /// Whether a `turn.completed` was seen.
    finished: bool,
    /// The running totals already reported (input, output tokens).
    counted: (u64, u64),
}

impl AgentReader for Reader {
    fn line(&mut self, line: &str) -> Vec<Value> {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        match event.get("type").and_then(Value::as_str) {
            Some("thread.started") => self.thread(&event),
            Some("item.started") => item_started(event.get("item")),
            Some("item.completed") => self.item_completed(event.get("item")),
            Some("turn.completed") => self.turn_completed(&event),
            Some("turn.failed") => {
                let raw = event.pointer("/error/message").and_then(Value::as_str).unwrap_or("turn failed");
                self.failure = Some(readable_error(raw));
                Vec::new()
            }
            Some("error") => {
                let raw = event.get("message").and_then(Value::as_str).unwrap_or("error");
                self.last_error = Some(readable_error(raw));
                vec![progress(format!("codex error: {}", self.last_error.as_deref().unwrap_or_default()))]
            }
            _ => Vec::new(),
        }
    }

    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value> {
        if let Some(error) = self.failure.take() {
            return vec![json!({"status": "failed", "error": error})];
        }
        match exit_code {
            // Exit 0 is codex's own word that the turn ended; no answer is an empty one.
            Some(0) => {
                let text = text_result(self.answer.as_deref().unwrap_or_default());
                vec![json!({"status": "completed", "result": text})]
            }
            // Otherwise its last error says why; with none, the runner's rule (exit
            // code and stderr's last line) is the best message there is.
            _ => match self.last_error.take() {
                Some(error) if !self.finished => vec![json!({"status": "failed", "error": error})],
                _ => Vec::new(),
            },
        }
    }
}

impl Reader {
    fn thread(&mut self, event: &Value) -> Vec<Value> {
        let Some(id) = event.get("thread_id").and_then(Value::as_str).filter(|id| !id.is_empty()) else {
            return Vec::new();
        };
        if self.session.as_deref() == Some(id) {
            return Vec::new();
        }
        self.session = Some(id.to_string());
        vec![json!({"pitboss": "session", "id": id})]
    }

    fn item_completed(&mut self, item: Option<&Value>) -> Vec<Value> {
        let Some(item) = item else { return Vec::new() };
        let field = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
        match field("type") {
            "agent_message" => {
                self.answer = Some(field("text").to_string());
                Vec::new()
            }
            "error" => vec![progress(format!("codex warning: {}", field("message")))],
            "command_execution" => match field("status") {
                // A command that failed or was declined is worth a line of its own
                // (a sandbox denial looks like this); a success was named when it started.
                status @ ("failed" | "declined") => {
                    let code = item.get("exit_code").and_then(Value::as_i64);
                    let code = code.map(|c| format!(", exit {c}")).unwrap_or_default();
                    vec![progress(format!("command {status}{code}: {}", field("command")))]
                }
                _ => Vec::new(),
            },
            // These have no start event of their own in every version: name them done.
            "file_change" | "web_search" | "mcp_tool_call" => acting(item).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn turn_completed(&mut self, event: &Value) -> Vec<Value> {
        self.finished = true;
        let Some(usage) = event.get("usage") else { return Vec::new() };
        let count = |k: &str| usage.get(k).and_then(Value::as_u64);
        let (Some(input), Some(output)) = (count("input_tokens"), count("output_tokens")) else {
            return Vec::new();
        };
        // Running totals: report the growth; a smaller total (a new thread) counts whole.
        let grew = |now: u64, before: u64| if now >= before { now - before } else { now };
        let line = json!({
            "pitboss": "usage",
            "input_tokens": grew(input, self.counted.0),
            "output_tokens": grew(output, self.counted.1),
        });
        self.counted = (input, output);
        vec![line]
    }
}

/// A progress line for an item that starts the agent acting.
fn item_started(item: Option<&Value>) -> Vec<Value> {
    item.and_then(acting).into_iter().collect()
}

/// What an acting item does, as a progress line, if it is one.
fn acting(item: &Value) -> Option<Value> {
    let field = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
    let msg = match field("type") {
        "command_execution" => format!("command: {}", field("command")),
        "mcp_tool_call" => format!("tool {}.{}", field("server"), field("tool")),
        "web_search" => format!("web search: {}", field("query")),
        "file_change" => {
            let paths: Vec<&str> = item
                .get("changes")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c.get("path").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            format!("edit: {}", paths.join(", "))
        }
        _ => return None,
    };
    Some(progress(msg))
}

fn progress(msg: String) -> Value {
    let first = msg.lines().next().unwrap_or_default();
    json!({"pitboss": "progress", "msg": truncate_chars(first, PROGRESS_CHARS)})
}

/// The readable part of a codex error: its message is often the API's JSON body as a
/// string (`{"error": {"message": "stand-in refuses", …}}`); then that inner message.
fn readable_error(raw: &str) -> String {
    let inner = serde_json::from_str::<Value>(raw).ok().and_then(|body| {
        let msg = body.pointer("/error/message").or_else(|| body.get("message"))?.as_str()?.to_string();
        Some(msg)
    });
    inner.unwrap_or_else(|| raw.trim().to_string())
}
