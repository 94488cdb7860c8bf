//! The `aider` preset: `aider --message=PROMPT --yes-always …`, one message then exit.
//!
//! aider has no machine format: stdout is text (docs/AGENT-CLIS.md §4.2; fixtures in
//! `tests/fixtures/agents/aider/`, captured from the real CLI with `--no-pretty
//! --no-stream`):
//!
//! ```text
//! Aider v0.86.2                       ← the header, up to its first blank line
//! Model: openai/… with whole edit format
//! Git repo: none
//! Repo-map: disabled
//!
//! THE REPLY                           ← the result
//!
//! Tokens: 100 sent, 20 received. Cost: $0.00060 message, $0.00060 session.
//!
//! hello.txt
//! Applied edit to hello.txt          ← after the reply: edits and commits
//! Commit fafa1ac the commit message
//! ```
//!
//! **aider exits 0 on API errors**: it prints `litellm.BadRequestError: …` instead of a
//! reply and no `Tokens:` line. So a `litellm.…Error` line not followed by a `Tokens:`
//! line is a failure with that line as its message, whatever the exit code.
//! `Tokens:` gives usage: aider shortens counts of 1000 and more (`1.2k`, `12k`), so
//! those are approximate; `Cost:` is there only when aider knows the model's price.

use serde_json::{json, Value};

use super::{AgentReader, Call};
use crate::core::protocol::text_result;
use crate::core::truncate::{keep_tail, truncate_chars};

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "0.86.2";

/// aider has no session ids (`--restore-chat-history` replays a file in the cwd), so a
/// retry starts afresh.
pub const RESUMES_SESSIONS: bool = false;

/// Characters of a line kept in a progress line or an error.
const LINE_CHARS: usize = 300;

/// The argv of one attempt: `aider --yes-always --no-pretty --no-stream
/// --no-check-update --no-analytics --no-show-release-notes --no-show-model-warnings
/// [--model MODEL] ARGS… --message=PROMPT`.
/// - `--yes-always`, not `--yes` (which argparse took only as an abbreviation);
/// - `--no-pretty`: no colours or boxes to parse around; `--no-stream`: the token counts
///   are then the API's, not aider's estimate;
/// - no update check, analytics or release notes: a worker must not phone home or wait;
///   model warnings would be answered "yes" and try to open a browser.
///
/// `--message=PROMPT` is one argument, so a prompt starting with `-` stays a prompt.
/// aider does not read a prompt from stdin with `--message`.
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv: Vec<String> = [
        "aider",
        "--yes-always",
        "--no-pretty",
        "--no-stream",
        "--no-check-update",
        "--no-analytics",
        "--no-show-release-notes",
        "--no-show-model-warnings",
    ]
    .map(String::from)
    .to_vec();
    if let Some(model) = call.model {
        argv.extend(["--model".to_string(), model.to_string()]);
    }
    argv.extend(call.args.iter().cloned());
    argv.push(format!("--message={}", call.prompt));
    argv
}

/// Where in aider's output the reader is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Before `Aider v…` (notices such as "Added .aider* to .gitignore").
    #[default]
    Before,
    /// The header block, up to its first blank line.
    Header,
    /// The reply, up to the first `Tokens:` line.
    Reply,
    /// After it: edits applied, commits, further exchanges.
    After,
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader {
    part: Part,
    reply: String,
    /// The last `litellm.…Error` line not yet followed by a `Tokens:` line.
    error: Option<String>,
    /// Whether any `Tokens:` line was seen: aider got an answer.
    answered: bool,
    /// The last line that said something, for a failure with no error line.
    last_line: Option<String>,
}

impl AgentReader for Reader {
    fn line(&mut self, line: &str) -> Vec<Value> {
        let text = line.trim_end();
        if !text.trim().is_empty() {
            self.last_line = Some(truncate_chars(text.trim(), LINE_CHARS));
        }
        if is_api_error(text) {
            self.error = Some(truncate_chars(text.trim(), LINE_CHARS));
            return vec![progress(text.trim())];
        }
        if let Some(usage) = usage(text) {
            self.error = None;
            self.answered = true;
            self.part = Part::After;
            return vec![usage];
        }
        match self.part {
            Part::Before | Part::Header if text.starts_with("Aider v") => self.part = Part::Header,
            Part::Before => {}
            Part::Header if text.is_empty() => self.part = Part::Reply,
            Part::Header => {}
            Part::Reply => {
                self.reply.push_str(text);
                self.reply.push('\n');
                keep_tail(&mut self.reply, super::llm::HELD_BYTES);
            }
            Part::After => {
                if let Some(path) = text.strip_prefix("Applied edit to ") {
                    return vec![progress(&format!("edit: {path}"))];
                }
                if let Some(commit) = text.strip_prefix("Commit ") {
                    return vec![progress(&format!("commit {commit}"))];
                }
            }
        }
        Vec::new()
    }

    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value> {
        if let Some(error) = self.error.take() {
            return vec![json!({"status": "failed", "error": error})];
        }
        match exit_code {
            Some(0) if self.answered || !self.reply.trim().is_empty() => {
                vec![json!({"status": "completed", "result": text_result(&self.reply)})]
            }
            // Exit 0 and no reply at all: aider failed in a way it did not name.
            Some(0) => {
                let said = self.last_line.take().map(|l| format!(": {l}")).unwrap_or_default();
                vec![json!({"status": "failed", "error": format!("aider gave no reply{said}")})]
            }
            // A failing exit: the runner's rule quotes stderr (a traceback's last line).
            _ => Vec::new(),
        }
    }
}

/// `litellm.BadRequestError: OpenAIException - …` and its kin: an API call that failed.
fn is_api_error(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("litellm.") else { return false };
    rest.split_once(':').is_some_and(|(name, _)| name.ends_with("Error") && !name.contains(' '))
}

/// `Tokens: 100 sent, 20 received. Cost: $0.00060 message, $0.00060 session.` → usage.
/// Counts may read `1.2k`; the cost is the message's (this attempt's), when given.
fn usage(line: &str) -> Option<Value> {
    let rest = line.strip_prefix("Tokens: ")?;
    let (tokens, cost) = match rest.split_once(" Cost: ") {
        Some((t, c)) => (t, Some(c)),
        None => (rest, None),
    };
    let count = |unit: &str| {
        tokens
            .split(", ")
            .find_map(|part| part.trim_end_matches('.').strip_suffix(unit).map(str::trim).and_then(token_count))
    };
    let (input, output) = (count(" sent")?, count(" received")?);
    let mut usage = json!({"pitboss": "usage", "input_tokens": input, "output_tokens": output});
    let dollars = cost
        .and_then(|c| c.strip_prefix('$'))
        .and_then(|c| c.split_once(" message"))
        .and_then(|(n, _)| n.parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0);
    if let Some(dollars) = dollars {
        usage["cost_usd"] = json!(dollars);
    }
    Some(usage)
}

/// aider's token count: `842`, `1.2k`, `12k`.
fn token_count(text: &str) -> Option<u64> {
    match text.strip_suffix('k') {
        Some(thousands) => {
            let n = thousands.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e12)?;
            Some((n * 1000.0).round() as u64)
        }
        None => text.parse().ok(),
    }
}

fn progress(msg: &str) -> Value {
    json!({"pitboss": "progress", "msg": truncate_chars(msg, LINE_CHARS)})
}
