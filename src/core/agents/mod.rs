//! Agent presets (DESIGN §13): `preset = "claude" | "codex" | "gemini" | "aider" | "llm"`
//! on a pool fills its command and reads the agent's own output format.
//!
//! A preset is two pure pieces, one module per agent:
//! - [`Preset::argv`]: the command of one attempt from a [`Call`] (prompt, model, extra
//!   args, the session to continue);
//! - [`Preset::reader`]: an [`AgentReader`] that turns the agent's stdout, line by line,
//!   into pitboss protocol lines (DESIGN §4): `{"pitboss":"progress",…}`,
//!   `{"pitboss":"usage",…}`, `{"pitboss":"session","id":…}`, `{"pitboss":"flag",…}`
//!   (agent-aware health, §16 `attempt_flagged`) and, at the end, at most one envelope
//!   `{"status":"completed","result":…}` / `{"status":"failed","error":…}`.
//!
//! So the rest of pitboss sees an agent exactly as it sees a worker that speaks the
//! protocol itself: the same control lines, the same envelope rule. Each module says
//! which version of its CLI it was written against ([`Preset::checked_against`]);
//! `docs/AGENT-CLIS.md` holds the research behind them.

use serde_json::Value;

pub mod aider;
pub mod carried;
pub mod claude;
pub mod codex;
pub mod gemini;
pub mod llm;

/// One agent CLI pitboss knows how to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Anthropic's Claude Code, `claude -p … --output-format stream-json --verbose`.
    Claude,
    /// OpenAI's Codex CLI, `codex exec --json`.
    Codex,
    /// Google's Gemini CLI, `gemini -p … --output-format json`.
    Gemini,
    /// aider, `aider --message …`.
    Aider,
    /// Simon Willison's `llm`.
    Llm,
}

/// What one attempt's command is built from.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The prompt, already filled from the task (`{payload.prompt}` or the pool's template).
    pub prompt: &'a str,
    /// The pool's `model`, if set.
    pub model: Option<&'a str>,
    /// The pool's `args`, appended after the preset's own.
    pub args: &'a [String],
    /// The agent session this attempt continues (a retry after a crash), when the
    /// preset can resume one ([`Preset::resumes_sessions`]).
    pub resume: Option<&'a str>,
}

/// A pool's preset as the workflow gives it (`[[pool]] preset`, `model`, `args`,
/// `prompt`), kept in the workflow so that a resumed run builds the same commands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentSpec {
    /// Which CLI.
    pub preset: Preset,
    /// `model = "…"`, passed as the CLI's model option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `args = [...]`, appended after the preset's own arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The prompt template (`{payload.prompt}` unless the pool gives one).
    pub prompt: String,
}

/// The prompt template of a preset pool without `prompt`.
pub const DEFAULT_PROMPT: &str = "{payload.prompt}";

/// The prompt of an attempt that continues an agent's session after its previous
/// attempt was cut off (a manager crash, or an operator's retry with "continue"):
/// the session holds the task and the work so far, so this only says to go on.
pub const CONTINUE_PROMPT: &str = "This is a continuation: your previous run of this task was interrupted before \
     it finished. Continue from where you left off, finish the task, and give your final answer.";

/// The prompt of an attempt that continues an agent's session because an operator
/// asked (`retry ID --continue`) after the previous attempt ended: that attempt did
/// finish, unlike the interrupted one [`CONTINUE_PROMPT`] speaks of.
pub const CONTINUE_ASKED_PROMPT: &str = "This is a continuation: your previous run of this task ended without \
     a result that was accepted, and the operator asked you to continue it. Continue from where you left off, \
     finish the task, and give your final answer.";

/// Reads one attempt's agent output as it arrives.
pub trait AgentReader: Send {
    /// One line of the agent's stdout, without its newline: the protocol lines it
    /// means (often none).
    fn line(&mut self, line: &str) -> Vec<Value>;
    /// The agent exited (`None`: killed by a signal): the protocol lines left to say,
    /// at most one envelope among them.
    fn end(&mut self, exit_code: Option<i32>) -> Vec<Value>;
}

impl Preset {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Preset; 5] = [Preset::Claude, Preset::Codex, Preset::Gemini, Preset::Aider, Preset::Llm];

    /// The preset a workflow names, if it is one.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The name a workflow uses.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Claude => "claude",
            Preset::Codex => "codex",
            Preset::Gemini => "gemini",
            Preset::Aider => "aider",
            Preset::Llm => "llm",
        }
    }

    /// The CLI version this preset's command and reader were written against.
    pub fn checked_against(self) -> &'static str {
        match self {
            Preset::Claude => claude::CHECKED_AGAINST,
            Preset::Codex => codex::CHECKED_AGAINST,
            Preset::Gemini => gemini::CHECKED_AGAINST,
            Preset::Aider => aider::CHECKED_AGAINST,
            Preset::Llm => llm::CHECKED_AGAINST,
        }
    }

    /// Whether a retried attempt can continue the agent's recorded session.
    pub fn resumes_sessions(self) -> bool {
        match self {
            Preset::Claude => claude::RESUMES_SESSIONS,
            Preset::Codex => codex::RESUMES_SESSIONS,
            Preset::Gemini => gemini::RESUMES_SESSIONS,
            Preset::Aider => aider::RESUMES_SESSIONS,
            Preset::Llm => llm::RESUMES_SESSIONS,
        }
    }

    /// True when the agent's usage is its session's running total: an attempt that
    /// continues a session reports the earlier attempts' usage again, which
    /// [`carried::Carried`] takes out.
    pub fn usage_is_session_total(self) -> bool {
        match self {
            Preset::Codex => codex::USAGE_IS_SESSION_TOTAL,
            Preset::Claude | Preset::Gemini | Preset::Aider | Preset::Llm => false,
        }
    }

    /// True when the prompt goes on the agent's stdin; otherwise it is in the argv
    /// and stdin is /dev/null (never the task JSON: the CLIs append stdin to their
    /// prompt, docs/AGENT-CLIS.md trap 1).
    pub fn prompt_on_stdin(self) -> bool {
        match self {
            Preset::Claude => claude::PROMPT_ON_STDIN,
            Preset::Codex | Preset::Gemini | Preset::Aider | Preset::Llm => false,
        }
    }

    /// Environment a preset's attempts get unless the pool's `env` sets the name.
    pub fn env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Preset::Claude => claude::ENV,
            Preset::Codex | Preset::Gemini | Preset::Aider | Preset::Llm => &[],
        }
    }

    /// The argv of one attempt (program first).
    pub fn argv(self, call: &Call<'_>) -> Vec<String> {
        match self {
            Preset::Claude => claude::argv(call),
            Preset::Codex => codex::argv(call),
            Preset::Gemini => gemini::argv(call),
            Preset::Aider => aider::argv(call),
            Preset::Llm => llm::argv(call),
        }
    }

    /// A fresh reader for one attempt's stdout.
    pub fn reader(self) -> Box<dyn AgentReader> {
        match self {
            Preset::Claude => Box::<claude::Reader>::default(),
            Preset::Codex => Box::<codex::Reader>::default(),
            Preset::Gemini => Box::<gemini::Reader>::default(),
            Preset::Aider => Box::<aider::Reader>::default(),
            Preset::Llm => Box::<llm::Reader>::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
        assert_eq!(Preset::from_name("Claude"), None);
        assert_eq!(Preset::from_name("gpt"), None);
    }
}
