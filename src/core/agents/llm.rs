//! The `llm` preset: `llm prompt [-m MODEL] -- PROMPT`, Simon Willison's `llm`.
//!
//! stdout is the reply text and nothing else (docs/AGENT-CLIS.md §5.2; fixtures in
//! `tests/fixtures/agents/llm/`, captured from the real CLI). Everything else goes to
//! stderr, which this reader does not see: an API error (`Error: Error code: 400 - …`,
//! exit 1), token usage (`-u`: `Token usage: 100 input, 20 output`), tool calls
//! (`--td`). So the reader reports no usage and no progress; a failing exit is left
//! to the runner's rule, which quotes stderr's last line, `Error: …`, the CLI's own
//! message. No session id is printed either (it is in `llm logs`), so no resume.
//!
//! The prompt follows `--`, so a prompt starting with `-` stays a prompt. llm prepends
//! a piped stdin to the prompt, so the runner gives it `/dev/null`.

use serde_json::{json, Value};

use super::{AgentReader, Call};
use crate::core::protocol::text_result;
use crate::core::truncate::keep_tail;

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "0.30";

/// `llm --cid ID` continues a conversation, but the id is never printed on stdout
/// (only `llm logs` has it), so a retry starts afresh.
pub const RESUMES_SESSIONS: bool = false;

/// Bytes of reply held while reading: more than a result keeps ([`text_result`] keeps
/// the tail), so a runaway reply cannot fill memory and the result is unchanged.
pub(super) const HELD_BYTES: usize = 2 * crate::core::protocol::TEXT_RESULT_CAP;

/// The argv of one attempt: `llm prompt [-m MODEL] ARGS… -- PROMPT`.
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv: Vec<String> = vec!["llm".into(), "prompt".into()];
    if let Some(model) = call.model {
        argv.extend(["-m".to_string(), model.to_string()]);
    }
    argv.extend(call.args.iter().cloned());
    argv.extend(["--".to_string(), call.prompt.to_string()]);
    argv
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader {
    reply: String,
}

impl AgentReader for Reader {
    fn line(&mut self, line: &str) -> Vec<Value> {
        self.reply.push_str(line);
        self.reply.push('\n');
        keep_tail(&mut self.reply, HELD_BYTES);
        Vec::new()
    }

    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value> {
        match exit_code {
            Some(0) => vec![json!({"status": "completed", "result": text_result(&self.reply)})],
            _ => Vec::new(),
        }
    }
}
