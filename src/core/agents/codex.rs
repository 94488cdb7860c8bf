//! The `codex` preset. Skeleton: h17c fills in the command and the reader.

use serde_json::Value;

use super::{AgentReader, Call};

/// The CLI version this preset was written against (docs/AGENT-CLIS.md).
pub const CHECKED_AGAINST: &str = "codex-cli 0.171.0";

/// Whether a retried attempt can continue the agent's session.
pub const RESUMES_SESSIONS: bool = false;

/// The argv of one attempt.
pub fn argv(call: &Call<'_>) -> Vec<String> {
    let mut argv = vec!["codex".to_string(), call.prompt.to_string()];
    argv.extend(call.args.iter().cloned());
    argv
}

/// Reads one attempt's stdout.
#[derive(Debug, Default)]
pub struct Reader;

impl AgentReader for Reader {
    fn line(&mut self, _line: &str) -> Vec<Value> {
        Vec::new()
    }

    fn end(&mut self, _exit_code: Option<i32>) -> Vec<Value> {
        Vec::new()
    }
}
