//! The `claude` preset: Claude Code in print mode,
//! `claude -p --output-format stream-json --verbose [--model M] [--resume ID] ARGS…`,
//! with the prompt on stdin (docs/AGENT-CLIS.md §1: with a prompt argument *and* a
//! stdin, claude appends stdin to the prompt, so the prompt *is* the stdin here; it
//! also keeps long prompts off the argv).
//!
//! Its stream-json lines become protocol lines: the first line's `session_id` a
//! `session` line; assistant text and tool calls progress lines (`tool Bash: ls -la`);
//! the final `result` record a `usage` line (`total_cost_usd`, tokens, turns), a
//! `denied_permission` flag from `permission_denials`, and the envelope: `is_error`
//! decides (never `subtype`: an API error comes with `subtype:"success"`), the message
//! is `result` or `errors[]`, and a `result` text that parses as JSON is the JSON.
//! The same tool call (name and input) [`LOOP_REPEATS`] times in a row is a `looping`
//! flag.

use serde_json::{json, Value};

use super::{AgentReader, Call};

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "2.1.197";

/// Whether a retried attempt can continue the agent's session (`--resume ID`, from the
/// same working directory: claude keeps sessions per cwd).
pub const RESUMES_SESSIONS: bool = true;

/// The prompt goes on stdin (see the module notes).
pub const PROMPT_ON_STDIN: bool = true;

/// Environment of every attempt unless the pool's `env` sets it:
/// - `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`: no telemetry or update lookups
///   (an attempt talks to its API only);
/// - `CLAUDE_CODE_MAX_RETRIES=2`: claude's own retries of 5xx/529 and connection
///   errors default to 10 with backoff up to ~35 s, which hides an outage inside one
///   attempt for minutes (and its timeout). Two absorb a blip without losing the
///   session's work; past that pitboss's retry policy, breaker and fallback decide.
pub const ENV: &[(&str, &str)] = &[("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"), ("CLAUDE_CODE_MAX_RETRIES", "2")];

/// Identical tool calls in a row that make an attempt `looping`: an agent retrying a
/// step two or three times is normal (a flaky test, a file not there yet); five
/// times the same command with the same input is a loop worth an operator's look.
pub const LOOP_REPEATS: u32 = 5;

/// Characters of a tool input or a text shown in one progress message.
const SHOWN: usize = 120;

/// The argv of one attempt (the prompt is on stdin).
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv: Vec<String> =
        ["claude", "-p", "--output-format", "stream-json", "--verbose"].iter().map(|s| s.to_string()).collect();
    if let Some(model) = call.model {
        argv.extend(["--model".to_string(), model.to_string()]);
    }
    if let Some(session) = call.resume {
        argv.extend(["--resume".to_string(), session.to_string()]);
    }
    argv.extend(call.args.iter().cloned());
    argv
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader {
    session_told: bool,
    result: Option<Value>,
    last_call: Option<String>,
    repeats: u32,
    loop_told: bool,
}

impl AgentReader for Reader {
    fn line(&mut self, line: &str) -> Vec<Value> {
        let line = line.trim();
        if !line.starts_with('{') {
            return Vec::new();
        }
        let Ok(value) = serde_json::from_str::<Value>(line) else { return Vec::new() };
        let mut out = Vec::new();
        if let (false, Some(id)) = (self.session_told, value.get("session_id").and_then(Value::as_str)) {
            self.session_told = true;
            out.push(json!({"pitboss": "session", "id": id}));
        }
        match value.get("type").and_then(Value::as_str) {
            Some("system") => out.extend(system(&value)),
            Some("assistant") => {
                let blocks = value.pointer("/message/content").and_then(Value::as_array).cloned().unwrap_or_default();
                for block in &blocks {
                    out.extend(self.block(block));
                }
            }
            Some("result") => {
                out.extend(usage(&value));
                out.extend(denials(&value));
                self.result = Some(value);
            }
            _ => {}
        }
        out
    }

    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value> {
        let Some(result) = self.result.take() else {
            // No result record: a non-zero exit says why on stderr (a bad flag, a
            // crash), which the usual rule quotes; a clean exit without one is odd.
            return match exit_code {
                Some(0) => vec![json!({"status": "failed", "error": "claude exited 0 without a result record"})],
                _ => Vec::new(),
            };
        };
        if result.get("is_error").and_then(Value::as_bool).unwrap_or(false) {
            return vec![json!({"status": "failed", "error": error_of(&result)})];
        }
        let text = result.get("result").and_then(Value::as_str).unwrap_or_default();
        let parsed = serde_json::from_str::<Value>(text.trim()).ok().filter(|v| v.is_object() || v.is_array());
        vec![json!({"status": "completed", "result": parsed.unwrap_or_else(|| Value::String(text.to_string()))})]
    }
}

impl Reader {
    /// One content block of an assistant message.
    fn block(&mut self, block: &Value) -> Vec<Value> {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or_default();
                let text = one_line(text);
                if text.is_empty() {
                    return Vec::new();
                }
                vec![progress(&format!("says: {}", cut(&text)))]
            }
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("?");
                let input = block.get("input").cloned().unwrap_or(Value::Null);
                let mut out = vec![progress(&format!("tool {name}: {}", cut(&tool_summary(&input))))];
                out.extend(self.count_call(name, &input));
                out
            }
            _ => Vec::new(),
        }
    }

    /// Counts identical tool calls in a row; a `looping` flag once they reach
    /// [`LOOP_REPEATS`] (once per attempt).
    fn count_call(&mut self, name: &str, input: &Value) -> Option<Value> {
        let key = format!("{name}\u{0}{input}");
        if self.last_call.as_deref() == Some(key.as_str()) {
            self.repeats += 1;
        } else {
            self.last_call = Some(key);
            self.repeats = 1;
        }
        if self.repeats < LOOP_REPEATS || self.loop_told {
            return None;
        }
        self.loop_told = true;
        Some(json!({
            "pitboss": "flag",
            "flag": "looping",
            "tools": [name],
            "detail": format!("{name}: {} ({} times in a row)", cut(&tool_summary(input)), self.repeats),
        }))
    }
}

fn progress(msg: &str) -> Value {
    json!({"pitboss": "progress", "msg": msg})
}

/// `system` lines: the start and API retries are worth a progress line.
fn system(value: &Value) -> Option<Value> {
    match value.get("subtype").and_then(Value::as_str)? {
        "init" => {
            let model = value.get("model").and_then(Value::as_str).unwrap_or("?");
            let version = value.get("claude_code_version").and_then(Value::as_str).unwrap_or("?");
            Some(progress(&format!("claude {version} started, model {model}")))
        }
        "api_retry" => {
            let attempt = value.get("attempt").cloned().unwrap_or(Value::Null);
            let max = value.get("max_retries").cloned().unwrap_or(Value::Null);
            let error = value.get("error").and_then(Value::as_str).unwrap_or("?");
            Some(progress(&format!("API retry {attempt}/{max}: {error}")))
        }
        _ => None,
    }
}

/// The `usage` control line of a result record (DESIGN §4).
fn usage(result: &Value) -> Option<Value> {
    let mut line = json!({"pitboss": "usage"});
    let fields = [
        ("cost_usd", result.get("total_cost_usd")),
        ("input_tokens", result.pointer("/usage/input_tokens")),
        ("output_tokens", result.pointer("/usage/output_tokens")),
        ("cache_read_input_tokens", result.pointer("/usage/cache_read_input_tokens")),
        ("cache_creation_input_tokens", result.pointer("/usage/cache_creation_input_tokens")),
        ("num_turns", result.get("num_turns")),
        ("duration_ms", result.get("duration_ms")),
    ];
    let mut any = false;
    for (name, value) in fields {
        if let Some(v) = value.filter(|v| v.is_number()) {
            line[name] = v.clone();
            any = true;
        }
    }
    any.then_some(line)
}

/// A `denied_permission` flag naming the tools the result's `permission_denials` list.
fn denials(result: &Value) -> Option<Value> {
    let denied = result.get("permission_denials")?.as_array()?;
    let mut tools: Vec<String> = Vec::new();
    let mut calls: Vec<String> = Vec::new();
    for d in denied {
        let name = d.get("tool_name").and_then(Value::as_str).unwrap_or("?").to_string();
        calls.push(format!("{name}: {}", cut(&tool_summary(d.get("tool_input").unwrap_or(&Value::Null)))));
        if !tools.contains(&name) {
            tools.push(name);
        }
    }
    if tools.is_empty() {
        return None;
    }
    Some(json!({"pitboss": "flag", "flag": "denied_permission", "tools": tools, "detail": calls.join("; ")}))
}

/// The message of a failed result: `result` (an API error's text), else `errors[]`.
fn error_of(result: &Value) -> String {
    if let Some(text) = result.get("result").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) {
        return text.trim().to_string();
    }
    let errors: Vec<&str> = result
        .get("errors")
        .and_then(Value::as_array)
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !errors.is_empty() {
        return errors.join("; ");
    }
    let subtype = result.get("subtype").and_then(Value::as_str).unwrap_or("?");
    format!("claude reported an error ({subtype})")
}

/// What a tool call does, in one line: its command, file or pattern when it has one.
fn tool_summary(input: &Value) -> String {
    for key in ["command", "file_path", "path", "pattern", "url", "query", "description"] {
        if let Some(s) = input.get(key).and_then(Value::as_str) {
            return one_line(s);
        }
    }
    one_line(&input.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
