//! `preset = "claude"` (and `model`, `args`, `prompt`) on a `[[pool]]` → the pool's
//! [`AgentSpec`], and the command, stdin and environment the preset gives it
//! (DESIGN §13). A preset pool has no `command` or `stdin` of its own (the preset
//! owns both: the CLIs append stdin to their prompt, so the task JSON must never reach
//! them) and runs one process per attempt. `model`, `args` and `prompt` apply only
//! with a preset. The command is filled here, so the workflow's checks of commands
//! and templates (placeholders, payload keys) cover presets as written.

use toml::Spanned;

use crate::core::agents::{AgentSpec, Call, Preset, DEFAULT_PROMPT};
use crate::core::workflow::{PoolSpec, StdinMode};

use super::check::Checker;
use super::parse::RawPool;

impl Checker<'_> {
    /// The pool's preset, after reporting what does not go with it.
    pub(super) fn agent(&mut self, raw: &RawPool) -> Option<AgentSpec> {
        let Some(name) = &raw.preset else {
            for (key, span) in [
                ("model", raw.model.as_ref().map(Spanned::span)),
                ("args", raw.args.as_ref().map(Spanned::span)),
                ("prompt", raw.prompt.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    self.report(span, format!("`{key}` only applies to a pool with a `preset`"));
                }
            }
            return None;
        };
        let Some(preset) = Preset::from_name(name.get_ref()) else {
            let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
            let message = format!("unknown preset {:?}: expected one of {}", name.get_ref(), names.join(", "));
            self.report(name.span(), message);
            return None;
        };
        if let Some(command) = &raw.command {
            let message = format!(
                "a pool with preset = {:?} has no `command`: the preset gives it (add flags with `args`)",
                preset.name()
            );
            self.report(command.span(), message);
        }
        if let Some(stdin) = &raw.stdin {
            let message = format!(
                "a pool with preset = {:?} has no `stdin`: the preset gives the prompt (set it with `prompt`)",
                preset.name()
            );
            self.report(stdin.span(), message);
        }
        if let Some(mode) = raw.mode.as_ref().filter(|m| m.get_ref() != "spawn") {
            self.report(mode.span(), "a pool with a `preset` runs one process per attempt (mode = \"spawn\")");
        }
        Some(AgentSpec {
            preset,
            model: raw.model.as_ref().map(|m| m.get_ref().clone()),
            args: raw.args.iter().flat_map(|a| a.get_ref()).map(|a| a.get_ref().clone()).collect(),
            prompt: raw.prompt.as_ref().map_or_else(|| DEFAULT_PROMPT.to_string(), |p| p.get_ref().clone()),
        })
    }
}

/// Gives a preset pool its command, stdin and environment.
pub(super) fn apply(pool: &mut PoolSpec) {
    let Some(agent) = &pool.agent else { return };
    let call = Call { prompt: &agent.prompt, model: agent.model.as_deref(), args: &agent.args, resume: None };
    pool.command = agent.preset.argv(&call);
    pool.stdin =
        if agent.preset.prompt_on_stdin() { StdinMode::Template(agent.prompt.clone()) } else { StdinMode::None };
    for (name, value) in agent.preset.env() {
        pool.env.entry(name.to_string()).or_insert_with(|| value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, ConfigError};
    use crate::core::agents::Preset;
    use crate::core::workflow::{StdinMode, Workflow};

    fn check(text: &str) -> Result<Workflow, ConfigError> {
        parse(text, "wf.toml", Path::new("/base"))
    }

    const TASK: &str = "[[task]]\nid = \"a\"\npayload = { prompt = \"hi\", file = \"x.rs\" }\n";

    #[test]
    fn a_claude_pool_gets_the_presets_command_stdin_prompt_and_env() {
        let wf = check(&format!(
            "[[pool]]\nname = \"c\"\npreset = \"claude\"\nmodel = \"sonnet\"\nargs = [\"--max-turns\", \"3\"]\n\
             prompt = \"Review {{payload.file}}\"\nenv = {{ CLAUDE_CODE_MAX_RETRIES = \"0\" }}\n{TASK}"
        ))
        .unwrap();
        let pool = &wf.pools[0];
        assert_eq!(pool.agent.as_ref().unwrap().preset, Preset::Claude);
        assert_eq!(
            pool.command,
            ["claude", "-p", "--output-format", "stream-json", "--verbose", "--model", "sonnet", "--max-turns", "3"]
        );
        assert_eq!(pool.stdin, StdinMode::Template("Review {payload.file}".into()));
        assert_eq!(pool.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1");
        assert_eq!(pool.env["CLAUDE_CODE_MAX_RETRIES"], "0", "the pool's own env wins");
        // The default prompt is the payload's.
        let wf = check(&format!("[[pool]]\nname = \"c\"\npreset = \"claude\"\n{TASK}")).unwrap();
        assert_eq!(wf.pools[0].stdin, StdinMode::Template("{payload.prompt}".into()));
        assert_eq!(wf.pools[0].env["CLAUDE_CODE_MAX_RETRIES"], "2");
    }

    #[test]
    fn every_preset_is_accepted_by_the_workflow_check() {
        for preset in Preset::ALL {
            let wf = check(&format!("[[pool]]\nname = \"c\"\npreset = \"{}\"\nmodel = \"m\"\n{TASK}", preset.name()));
            let wf = wf.unwrap_or_else(|e| panic!("{}: {e}", preset.name()));
            assert_eq!(wf.pools[0].agent.as_ref().unwrap().preset, preset);
            assert!(!wf.pools[0].command.is_empty());
        }
    }

    #[test]
    fn preset_errors_are_placed_at_their_values() {
        let all = check("[[pool]]\nname = \"c\"\npreset = \"gpt\"\n").unwrap_err().to_string();
        assert!(
            all.contains("wf.toml:3:10: unknown preset \"gpt\": expected one of claude, codex, gemini, aider, llm"),
            "{all}"
        );
        let all = check(
            "[[pool]]\nname = \"c\"\npreset = \"claude\"\ncommand = [\"x\"]\nstdin = \"none\"\nmode = \"persistent\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(all.contains("wf.toml:4:11: a pool with preset = \"claude\" has no `command`"), "{all}");
        assert!(all.contains("wf.toml:5:9: a pool with preset = \"claude\" has no `stdin`"), "{all}");
        assert!(all.contains("wf.toml:6:8: a pool with a `preset` runs one process per attempt"), "{all}");
        let all = check("[[pool]]\nname = \"c\"\ncommand = [\"x\"]\nmodel = \"m\"\nargs = []\nprompt = \"p\"\n")
            .unwrap_err()
            .to_string();
        for (at, key) in [("4:9", "model"), ("5:8", "args"), ("6:10", "prompt")] {
            assert!(all.contains(&format!("wf.toml:{at}: `{key}` only applies to a pool with a `preset`")), "{all}");
        }
        let all = check("[[pool]]\nname = \"c\"\npreset = 3\n").unwrap_err().to_string();
        assert!(all.contains("wf.toml:3:10"), "{all}");
    }

    #[test]
    fn a_prompt_naming_a_missing_payload_key_is_caught_before_the_run() {
        let all =
            check("[[pool]]\nname = \"c\"\npreset = \"claude\"\n[[task]]\nid = \"a\"\npayload = { text = \"x\" }\n")
                .unwrap_err()
                .to_string();
        assert!(all.contains("payload") && all.contains("prompt"), "{all}");
    }
}
